"""Lenient JSONL input: any field but the title may be missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from itsm_bridge.errors import ConfigurationError, DataError
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
    assert item.extra["priority_input"] == 9  # kept where a reader finds it, not dropped
    assert item.extra["investment"] == {"portfolio_category": "grow"}


@pytest.mark.parametrize(
    ("given", "priority", "effort", "kept"),
    [
        ({"priority": "2", "effort_hours": " 3.5 "}, 2, 3.5, {}),
        ({"priority": 2.0, "effort_hours": 0}, 2, 0.0, {}),
        (
            {"priority": "high", "effort_hours": -2},
            None,
            None,
            {"priority_input": "high", "effort_hours_input": -2},
        ),
        (
            {"priority": True, "effort_hours": "NaN"},
            None,
            None,
            {"priority_input": True, "effort_hours_input": "NaN"},
        ),
        ({"priority": "", "effort_hours": None}, None, None, {}),
    ],
)
def test_numbers_as_text_are_read_and_unusable_ones_kept_in_extra(
    given: dict[str, object], priority: int | None, effort: float | None, kept: dict[str, object]
) -> None:
    item = record_to_item({"title": "x", **given})
    assert (item.priority, item.effort_hours) == (priority, effort)
    assert {k: v for k, v in item.extra.items() if k.endswith("_input")} == kept


def test_input_files_are_utf8_with_an_optional_bom_and_errors_name_the_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "excel.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"title": "Caf\xc3\xa9"}\n{"title": "ok"}\n')
    assert [r["title"] for r in read_records(path)] == ["Café", "ok"]
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"title": "ok"}\n{"title": "Caf\xe9"}\n')
    with pytest.raises(DataError, match=r"latin\.jsonl:2: not UTF-8 \(byte 0xe9 at column 15\)"):
        list(read_records(latin))
    with pytest.raises(ConfigurationError, match="cannot read"):
        list(read_records(tmp_path / "missing.jsonl"))


def test_unknown_kind_is_kept_in_extra() -> None:
    item = record_to_item({"title": "x", "kind": "epic"})
    assert item.kind is Kind.TASK
    assert item.extra["kind_input"] == "epic"


def test_missing_title_names_the_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [{"title": "ok"}, {"key": "X-1"}])
    with pytest.raises(DataError, match="no title") as info:
        list(records_to_items(read_records(path)))
    assert "in.jsonl:2" in str(info.value)  # the file and the line, not the record's index
    path = write_jsonl(tmp_path / "in.jsonl", [{"title": 123}])
    with pytest.raises(DataError, match="has a title of type int: a text title is"):
        list(records_to_items(read_records(path)))


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
    assert "__file__" not in out[0]
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
