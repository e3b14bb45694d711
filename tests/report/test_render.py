"""Renderers: terminal table, JSON, CSV, and a self-contained HTML page that Chromium renders."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from itsm_bridge.errors import InvalidOptionsError
from itsm_bridge.report import Report, build_report, render
from itsm_bridge.schema import Label

from .conftest import scored

B, IN, U = Label.BUSINESS, Label.INWARD, Label.UNDETERMINED


def sample() -> Report:
    items = []
    teams = ["Digital Commerce", "Service Desk", "Platform <Ops> & Co"]  # escaping is tested
    for month in range(1, 7):
        for n in range(6):
            label = B if n < month // 2 + 1 else (U if n == 5 else IN)
            items.append(
                scored(
                    f"K{month}-{n}",
                    label,
                    float(1 + n),
                    month=month,
                    team=teams[n % 3],
                    service="Online Store" if n % 2 else "VPN",
                    category="Software" if label is IN else "Feature",
                    kind="incident" if label is IN else "task",
                )
            )
    return build_report(items, by=["month", "team", "kind"])


def test_table_has_the_headline_and_every_dimension() -> None:
    text = render(sample(), "table")
    assert "business-facing" in text
    assert "of effort" in text
    assert "By month" in text
    assert "By team" in text
    assert "By kind" in text
    assert "Trend of the business-facing effort share" in text
    assert "Inward-facing effort by category" in text
    assert "effort coverage" in text


def test_json_is_the_report_dict() -> None:
    report = sample()
    data = json.loads(render(report, "json"))
    assert data == json.loads(json.dumps(report.to_dict()))
    assert set(data["total"]["shares"]) == {B.value, IN.value, U.value}
    assert data["breakdowns"]["kind"]


def test_csv_long_format() -> None:
    report = sample()
    rows = list(csv.DictReader(io.StringIO(render(report, "csv"))))
    groups = 1 + sum(len(report.breakdowns[d]) for d in report.by)
    assert len(rows) == 3 * groups
    total = [r for r in rows if r["dimension"] == "total"]
    assert {r["label"] for r in total} == {B.value, IN.value, U.value}
    assert sum(float(r["effort_share"]) for r in total) == pytest.approx(1.0, abs=1e-3)


def test_hostile_team_names_neither_run_in_a_spreadsheet_nor_forge_table_rows() -> None:
    names = ['=HYPERLINK("http://x","y")', "Ops\nEvil   99   100%", "\x1b[2JBlue", "-Minus"]
    items = [scored(f"K{n}", IN, 1.0, team=name) for n, name in enumerate(names)]
    report = build_report(items, by=["team"])
    rows = list(csv.DictReader(io.StringIO(render(report, "csv"))))
    values = {r["value"] for r in rows if r["dimension"] == "team"}
    assert values == {"'" + names[0], "Ops\nEvil   99   100%", "\x1b[2JBlue", "'-Minus"}
    table = render(report, "table")
    assert "\x1b" not in table
    assert "Ops\\x0aEvil" in table  # one row, the newline shown, not obeyed
    assert not any(line.startswith("Evil") for line in table.splitlines())


def test_unknown_format() -> None:
    with pytest.raises(InvalidOptionsError, match="unknown report format"):
        render(sample(), "pdf")


def test_html_is_self_contained() -> None:
    page = render(sample(), "html")
    assert page.startswith("<!DOCTYPE html>")
    assert 'id="chart-shares-over-time"' in page
    assert 'id="chart-effort-by-team"' in page
    assert "<script" not in page.lower()
    assert "@import" not in page
    # No external resources: the only URL is the SVG namespace.
    urls = set(re.findall(r"https?://[^\s\"'<>]+", page))
    assert urls <= {"http://www.w3.org/2000/svg"}
    assert "Platform &lt;Ops&gt; &amp; Co" in page
    assert "Platform <Ops>" not in page


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.skipif(_chromium() is None, reason="no chromium on PATH (CI installs it)")
def test_html_renders_in_headless_chromium(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render(sample(), "html"), encoding="utf-8")
    browser = _chromium()
    assert browser is not None
    result = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-dev-shm-usage",
            "--enable-logging=stderr",
            "--v=0",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    # The charts are in the rendered DOM, with their bars.
    assert re.search(r'<svg[^>]*id="chart-shares-over-time"', dom)
    assert re.search(r'<svg[^>]*id="chart-effort-by-team"', dom)
    assert dom.count('class="bar ') >= 6 * 3 + 3 * 3
    # No console errors or blocked loads from the page.
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console
    assert "Refused to" not in result.stderr
    assert "Uncaught" not in result.stderr
