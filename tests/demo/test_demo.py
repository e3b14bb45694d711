"""``itsm-bridge demo``: sandboxes, real connectors over HTTP, scoring, report, ground truth."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from itsm_bridge.demo import Comparison, compare_with_truth, run_demo
from itsm_bridge.sandbox import generate_company
from itsm_bridge.schema import Kind, Label, Reason, ScoredItem, Status, Verdict


def test_the_demo_command_prints_the_report_and_the_comparison(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ITSM_BRIDGE_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, "-m", "itsm_bridge", "demo", "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "servicenow: ok, 3898 records" in out
    assert "jira: ok, 809 records" in out
    assert "By month" in out
    assert "By team" in out
    assert "By kind" in out
    assert f"HTML report written to {tmp_path / 'report.html'}" in out
    assert "Estimate against the generator's ground truth" in out
    assert "macro-F1" in out
    assert "DEMO INCOMPLETE" not in done.stderr
    html = (tmp_path / "report.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html")


def test_the_demo_estimate_is_close_to_the_truth(tmp_path: Path) -> None:
    out = io.StringIO()
    code = run_demo(scale=0.3, out_dir=tmp_path, as_json=True, progress=False, out=out)
    summary = json.loads(out.getvalue())
    assert code == 0, summary["missing"]
    assert summary["missing"] == []
    company = generate_company(seed=7, scale=0.3)
    synced = {s["source"]: s for s in summary["syncs"]}
    assert synced["servicenow"]["records"] == len(company.for_platform("servicenow"))
    assert synced["jira"]["records"] == len(company.for_platform("jira"))
    assert all(s["status"] == "ok" and s["quarantined"] == 0 for s in synced.values())
    c = summary["comparison"]
    assert c["matched"] == len(company)
    assert c["unmatched"] == 0
    assert c["accuracy"] > 0.85
    assert c["macro_f1"] > 0.85
    assert abs(c["estimated_share_effort"] - c["true_share_effort"]) < 0.08
    assert abs(c["true_share_effort"] - company.business_effort_share()) < 1e-4  # rounded
    assert Path(summary["html_report"]).exists()


def scored(key: str, label: Label, kind: Kind = Kind.TASK, hours: float = 1.0) -> ScoredItem:
    return ScoredItem(
        id=f"s:{key}",
        source="s",
        kind=kind,
        key=key,
        title=key,
        status=Status.CLOSED,
        updated_at="2026-01-01T00:00:00Z",
        effort_hours=hours,
        scoring=Verdict(
            label=label,
            p_business=0.9 if label is Label.BUSINESS else 0.1,
            reasons=(Reason(rule="r", weight=1.0, evidence="e"),),
        ),
    )


def test_comparison_figures_by_hand() -> None:
    company = generate_company(seed=7, scale=0.05)
    items = company.items[:4]
    truth = {t.number: t for t in items}
    # predict: the first right, the second wrong, the third undetermined, the fourth right
    guesses = []
    for n, t in enumerate(items):
        if n == 1:
            label = Label.INWARD if t.truth is Label.BUSINESS else Label.BUSINESS
        elif n == 2:
            label = Label.UNDETERMINED
        else:
            label = t.truth
        guesses.append(scored(t.number, label, hours=2.0))
    guesses.append(scored("NOT-IN-TRUTH", Label.BUSINESS))
    c: Comparison = compare_with_truth(guesses, truth, company)
    assert c.matched == 4
    assert c.unmatched == 1
    assert c.accuracy == 0.5
    assert c.coverage == 0.75
    assert c.accuracy_determined == 2 / 3
    assert c.undetermined_share_count == 0.25
    assert c.undetermined_share_effort == 0.25
    business = sum(g.scoring.label is Label.BUSINESS for g in guesses[:4])
    assert c.estimated_share_count == business / 3
    assert c.true_share_effort == company.business_effort_share(items)
