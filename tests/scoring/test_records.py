"""Lenient JSONL input: any field but the title may be missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from itsm_bridge.errors import DataError
from itsm_bridge.schema import EffortSource, Kind, Label, Status
from itsm_bridge.scoring import (
    Scorer,
    parse_label,
    read_records,
    record_to_item,
    records_to_items,
    score_records,
)


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    return path


def test_a_title_is_enough() -> None:
    item = record_to_item({"title": "Restore VPN"})
    assert item.title == "Restore VPN"
    assert item.kind is Kind.TASK
    assert item.status is Status.NEW
    assert item.key


def test_known_fields_are_kept_and_bad_values_are_not_fatal() -> None:
    item = record_to_item(
        {
            "title": "x",
            "key": "OPS-7",
            "kind": "Incident",
            "status": "In Progress",
            "created_at": "2026-01-02T03:04:05+05:30",
            "resolved_at": "yesterday",
            "labels": "a, b",
            "effort_hours": 2.5,
            "priority": 9,
            "extra": {"investment": {"portfolio_category": "grow"}},
            "kind_of_thing": "ignored",
        }
    )
    assert item.key == "OPS-7"
    assert item.kind is Kind.INCIDENT
    assert item.status is Status.IN_PROGRESS
    assert item.created_at is not None
    assert item.created_at.utcoffset() is not None
    assert item.resolved_at is None
    assert item.extra["resolved_at_input"] == "yesterday"
    assert item.labels == ("a", "b")
    assert item.effort_hours == 2.5
    assert item.effort_source is EffortSource.MEASURED
    assert item.priority is None
    assert item.extra["investment"] == {"portfolio_category": "grow"}


def test_unknown_kind_is_kept_in_extra() -> None:
    item = record_to_item({"title": "x", "kind": "epic"})
    assert item.kind is Kind.TASK
    assert item.extra["kind_raw"] == "epic"


def test_missing_title_names_the_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [{"title": "ok"}, {"key": "X-1"}])
    with pytest.raises(DataError, match="no title") as info:
        list(records_to_items(read_records(path)))
    assert "line 2" in str(info.value)


def test_broken_json_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"title": "ok"}\n{"title": \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"in\.jsonl:2: not valid JSON"):
        list(read_records(path))


def test_score_records_keeps_input_fields_and_adds_scoring(tmp_path: Path) -> None:
    rows = [
        {"title": "Sprint work", "key": "T1", "parent_key": "P1", "custom": [1, 2]},
        {
            "title": "Programme",
            "key": "P1",
            "kind": "project",
            "extra": {"investment": {"portfolio_category": "grow"}},
        },
    ]
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    out = list(score_records(read_records(path), Scorer()))
    assert [r["key"] for r in out] == ["T1", "P1"]
    assert out[0]["custom"] == [1, 2]
    assert "__line__" not in out[0]
    assert out[0]["scoring"]["label"] == "business-facing"  # inherited from P1, given later
    assert out[0]["scoring"]["reasons"][0]["rule"] == "parent.inherit"
    json.dumps(out)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("business", Label.BUSINESS),
        ("Business-Facing", Label.BUSINESS),
        ("inward", Label.INWARD),
        ("undetermined", Label.UNDETERMINED),
        (None, None),
    ],
)
def test_label_aliases(value: str | None, expected: Label | None) -> None:
    assert parse_label(value) is expected


def test_bad_label() -> None:
    with pytest.raises(DataError, match="label must be"):
        parse_label("grow")
