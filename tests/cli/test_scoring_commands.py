"""score, evaluate, train, export --scored: the CLI over the scoring module and the store."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import ib_fake_platform as fake
import pytest

from itsm_bridge import cli
from itsm_bridge.sync import Store

LABELLED = [
    {"title": "Restore VPN access after outage", "kind": "incident", "label": "inward-facing"},
    {"title": "Add express checkout to the online store", "label": "business-facing"},
    {"title": "Renew TLS certificate for mail gateway", "kind": "change", "label": "inward"},
    {"title": "Customer loyalty programme in the mobile app", "label": "business"},
    {"title": "Patch database servers", "label": "inward-facing", "team": "DBA"},
    {"title": "New self-service returns for customers", "label": "business-facing"},
]


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    path = tmp_path / "labelled.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in LABELLED))
    return path


def test_score_keeps_each_input_line_and_adds_a_verdict(
    labelled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "scored.jsonl"
    assert cli.main(["score", str(labelled), "--out", str(out)]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == len(LABELLED)
    for original, line in zip(LABELLED, lines):
        assert {k: line[k] for k in original} == original
        assert line["scoring"]["label"] in {"business-facing", "inward-facing", "undetermined"}
        assert 0.0 <= line["scoring"]["p_business"] <= 1.0
        assert line["scoring"]["reasons"]
    assert lines[0]["scoring"]["label"] == "inward-facing"
    assert "6 items scored" in capsys.readouterr().err


def test_score_needs_a_title_and_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "ok"}\n{"kind": "incident"}\n')
    assert cli.main(["score", str(bad), "--out", str(tmp_path / "o.jsonl")]) == 5
    assert not (tmp_path / "o.jsonl").exists()


def test_evaluate_reports_accuracy_and_macro_f1(
    labelled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["evaluate", str(labelled), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 6
    assert 0.5 <= result["accuracy"] <= 1.0
    assert 0.0 < result["macro_f1"] <= 1.0
    assert cli.main(["evaluate", str(labelled)]) == 0
    assert "macro-F1" in capsys.readouterr().out


def test_score_keeps_integers_beyond_64_bits_exactly(tmp_path: Path) -> None:
    # "Every input line is kept as it was": orjson alone would turn 2**64 into 1.8446744e+19.
    given = tmp_path / "big.jsonl"
    line = {"title": "Renew the certificate", "n": 2**64, "m": -(2**63) - 1, "k": 2**64 - 1}
    given.write_text(json.dumps(line) + "\n")
    out = tmp_path / "scored.jsonl"
    assert cli.main(["score", str(given), "--out", str(out)]) == 0
    kept = json.loads(out.read_text())
    assert {k: kept[k] for k in line} == line
    assert '"n":18446744073709551616' in out.read_text().replace(" ", "")


@pytest.mark.parametrize("folds", ["0", "1", "-2", "x"])
def test_evaluate_refuses_fewer_than_two_folds_as_a_usage_error(
    labelled: Path, folds: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["evaluate", str(labelled), "--folds", folds]) == 2
    assert "--folds" in capsys.readouterr().err


def test_train_counts_the_lines_it_learned_from(
    labelled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = labelled.read_text() + json.dumps({"title": "x", "label": "undetermined"}) + "\n"
    labelled.write_text(lines)
    assert cli.main(["train", str(labelled), "-o", str(tmp_path / "m.json"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["trained_on"], report["left_out"]) == (len(LABELLED), 1)


def test_train_then_score_with_the_model(
    labelled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model.json"
    assert cli.main(["train", str(labelled), "-o", str(model)]) == 0
    assert json.loads(model.read_text())
    out = tmp_path / "scored.jsonl"
    assert (
        cli.main(["score", str(labelled), "--model", str(model), "--out", str(out), "--json"]) == 0
    )
    payload = json.loads(capsys.readouterr().out)
    assert "+" in payload["ruleset"]  # rules version + model fingerprint
    reasons = [
        r["rule"] for x in out.read_text().splitlines() for r in json.loads(x)["scoring"]["reasons"]
    ]
    assert any(r.startswith("model") for r in reasons)


def test_score_the_store_keeps_verdicts_per_rule_set(
    plugin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, app = fake.serve(fake.make_records(30))
    db = str(tmp_path / "s.db")
    with server:
        pull = ["pull", "fake", "--url", server.url, "--user", fake.USER, "--source", "f"]
        pull += ["--password-env", "FAKE_PASSWORD", "--store", db]
        assert cli.main(pull) == 0
        capsys.readouterr()
        assert cli.main(["score", "--store", db, "--json"]) == 0
        first = json.loads(capsys.readouterr().out)
        assert first["scored"] == 60
        assert cli.main(["score", "--store", db, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["scored"] == 0  # up to date
        rules = tmp_path / "rules.toml"
        rules.write_text("[settings]\nbusiness_threshold = 0.7\n")
        assert cli.main(["score", "--store", db, "--rules", str(rules), "--json"]) == 0
        second = json.loads(capsys.readouterr().out)
        assert second["scored"] == 60
        assert second["ruleset"] != first["ruleset"]
        app.touch(["inc000003"])
        assert cli.main(pull) == 0
        capsys.readouterr()
    with Store(db) as store:
        assert sorted(store.rulesets()) == sorted([first["ruleset"], second["ruleset"]])
        assert store.stale_verdicts(first["ruleset"]) == 1
    out = tmp_path / "scored.csv"
    assert (
        cli.main(["export", "--store", db, "--scored", "--format", "csv", "--out", str(out)]) == 0
    )
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert len(rows) == 60
    assert {r["label"] for r in rows} <= {"business-facing", "inward-facing", "undetermined"}
    with Store(db) as store:
        assert store.stale_verdicts(first["ruleset"]) == 0


def test_report_from_a_file_and_from_the_store(
    plugin: Path, labelled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["report", str(labelled), "--by", "kind"]) == 0
    text = capsys.readouterr().out
    assert "By kind" in text
    assert "business-facing" in text
    server, _ = fake.serve(fake.make_records(20))
    db = str(tmp_path / "s.db")
    with server:
        pull = ["pull", "fake", "--url", server.url, "--user", fake.USER, "--source", "f"]
        assert cli.main([*pull, "--password-env", "FAKE_PASSWORD", "--store", db]) == 0
    capsys.readouterr()
    assert cli.main(["report", "--store", db, "--by", "team", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["by"] == ["team"]
    teams = {g["value"] for g in report["breakdowns"]["team"]}
    assert teams == {"Service Desk", "Network Ops", "Digital Commerce"}
    html = tmp_path / "r.html"
    assert cli.main(["report", "--store", db, "--format", "html", "--out", str(html)]) == 0
    assert "<html" in html.read_text().lower()
    with Store(db) as store:
        assert store.rulesets()  # the report scored the store and kept the verdicts
    assert cli.main(["report", str(labelled), "--store", db]) == 2
