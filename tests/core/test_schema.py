"""The common schema: field names, honest time, JSON round trip and the exported JSON Schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pydantic
import pytest

import itsm_bridge as ib
from itsm_bridge._time import (
    ensure_utc,
    from_epoch_ms,
    parse_datetime,
    parse_naive_as_utc,
    to_epoch_ms,
)
from itsm_bridge.errors import DataError
from itsm_bridge.schema import validate_item

# design.md, "JSONL: ... Field names are stable"
DESIGN_FIELDS = [
    "id", "source", "kind", "key", "title", "description", "status", "status_raw", "priority",
    "created_at", "updated_at", "resolved_at", "team", "assignee", "requester", "service",
    "category", "labels", "effort_hours", "effort_source", "parent_key", "url", "extra",
]  # fmt: skip


def _raw(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "acme:46d44a5f",
        "source": "acme",
        "kind": "incident",
        "key": "INC0012345",
        "title": "VPN drops every hour",
        "status": "in_progress",
        "created_at": "2026-03-01T08:00:00Z",
        "updated_at": "2026-03-01T10:00:00+0530",
        "labels": ["vpn", "network"],
        "effort_hours": 1.5,
        "effort_source": "measured",
        "extra": {"risk": "low", "investment": {"portfolio_category": "run"}},
    }
    data.update(overrides)
    return data


def test_field_names_are_exactly_the_design() -> None:
    assert list(ib.WorkItem.model_fields) == DESIGN_FIELDS
    assert list(ib.ScoredItem.model_fields) == [*DESIGN_FIELDS, "scoring"]


def test_offsets_without_a_colon_are_parsed_and_normalised_to_utc() -> None:
    item = validate_item(_raw())
    assert item.updated_at == datetime(2026, 3, 1, 4, 30, tzinfo=UTC)
    assert item.updated_at.tzinfo is UTC
    assert item.created_at == datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01T10:00:00+0530", datetime(2026, 3, 1, 4, 30, tzinfo=UTC)),
        ("2026-03-01T10:00:00.250-0800", datetime(2026, 3, 1, 18, 0, 0, 250000, tzinfo=UTC)),
        ("2026-03-01T10:00:00Z", datetime(2026, 3, 1, 10, 0, tzinfo=UTC)),
        ("2026-03-01 10:00:00+01:00", datetime(2026, 3, 1, 9, 0, tzinfo=UTC)),
        ("20260301T100000+0000", datetime(2026, 3, 1, 10, 0, tzinfo=UTC)),
    ],
)
def test_parse_datetime_shapes(text: str, expected: datetime) -> None:
    assert parse_datetime(text) == expected
    assert parse_datetime(text).utcoffset() == timedelta(0)


def test_aware_datetime_objects_are_converted() -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    item = validate_item(_raw(updated_at=datetime(2026, 3, 1, 10, 0, tzinfo=ist)))
    assert item.updated_at == datetime(2026, 3, 1, 4, 30, tzinfo=UTC)


@pytest.mark.parametrize("field", ["created_at", "updated_at", "resolved_at"])
@pytest.mark.parametrize("value", ["2026-03-01T10:00:00", datetime(2026, 3, 1, 10, 0)])
def test_naive_datetimes_are_refused_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(DataError) as caught:
        validate_item(_raw(**{field: value}))
    text = str(caught.value)
    assert f"{field}:" in text
    assert "naive" in text
    assert caught.value.record == "acme:46d44a5f"
    assert caught.value.source == "acme"
    assert "\n" not in text


def test_unparseable_datetime_is_refused_naming_the_field() -> None:
    with pytest.raises(DataError, match=r"created_at: .*not an ISO 8601 datetime"):
        validate_item(_raw(created_at="yesterday-ish"))


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(DataError) as caught:
        validate_item(_raw(kind="epic", priority=9, status="done", bogus=1))
    text = str(caught.value)
    for field in ("kind", "priority", "status", "bogus"):
        assert f"{field}:" in text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("priority", "3"),  # a numeric string is not a priority
        ("priority", True),  # nor is a bool
        ("priority", 2.0),  # nor a float, even a whole one
        ("effort_hours", "1.5"),
        ("title", 42),
        ("key", 12345),
        ("team", 7),
        ("labels", ["vpn", 3]),
    ],
)
def test_scalar_fields_are_strict_no_silent_coercion(field: str, value: Any) -> None:
    # design.md: a WorkItem is "pydantic v2, strict, frozen". A connector that hands over "3"
    # for a priority has a mapping bug; coercing it would hide the bug in every later run.
    with pytest.raises(DataError, match=rf"{field}(\.\d+)?: "):
        validate_item(_raw(**{field: value}))


def test_strict_still_reads_its_own_json_and_enum_values() -> None:
    # Enum members and datetimes arrive as their JSON strings; strictness is about scalars.
    item = validate_item(_raw(kind="change", status="on_hold", effort_source="estimated"))
    assert (item.kind, item.status) == (ib.Kind.CHANGE, ib.Status.ON_HOLD)
    assert validate_item(_raw(effort_hours=2)).effort_hours == 2.0  # an int is a valid float


def test_pydantic_errors_are_not_leaked_as_such() -> None:
    with pytest.raises(DataError) as caught:
        validate_item(_raw(updated_at=None))
    assert not isinstance(caught.value, pydantic.ValidationError)
    assert caught.value.__cause__ is None


def test_items_are_frozen() -> None:
    item = validate_item(_raw())
    with pytest.raises(pydantic.ValidationError):
        item.title = "changed"  # type: ignore[misc]


def test_json_round_trip() -> None:
    item = validate_item(_raw(resolved_at="2026-03-02T00:00:00Z", priority=2))
    line = json.dumps(item.model_dump(mode="json"))
    assert json.loads(line)["updated_at"] == "2026-03-01T04:30:00Z"
    assert ib.WorkItem.model_validate_json(line) == item
    assert ib.WorkItem.model_validate(json.loads(line)) == item


def test_scored_item_round_trip_and_its_item() -> None:
    item = validate_item(_raw())
    verdict = ib.Verdict(
        label=ib.Label.INWARD,
        p_business=0.1,
        reasons=(ib.Reason(rule="kind.incident", weight=-0.8, evidence="kind=incident"),),
    )
    scored = ib.ScoredItem(**item.model_dump(), scoring=verdict)
    line = scored.model_dump(mode="json")
    assert line["scoring"] == {
        "label": "inward-facing",
        "p_business": 0.1,
        "reasons": [{"rule": "kind.incident", "weight": -0.8, "evidence": "kind=incident"}],
    }
    assert ib.ScoredItem.model_validate_json(json.dumps(line)) == scored
    assert scored.item == item


def test_verdict_probability_is_bounded() -> None:
    with pytest.raises(pydantic.ValidationError):
        ib.Verdict(label=ib.Label.BUSINESS, p_business=1.5)


def test_schema_json_describes_a_jsonl_line() -> None:
    schema = json.loads(ib.schema_json())
    assert list(schema["properties"]) == DESIGN_FIELDS
    assert set(schema["required"]) == {
        "id",
        "source",
        "kind",
        "key",
        "title",
        "status",
        "updated_at",
    }
    assert schema["properties"]["updated_at"]["format"] == "date-time"
    scored = json.loads(ib.schema_json(scored=True))
    assert "scoring" in scored["properties"]
    assert "scoring" in scored["required"]
    assert ib.schema_json(indent=None).count("\n") == 0


def test_time_helpers() -> None:
    assert parse_naive_as_utc("2026-03-01 10:00:00") == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert parse_naive_as_utc("2026-03-01T10:00:00+01:00") == datetime(2026, 3, 1, 9, tzinfo=UTC)
    with pytest.raises(ValueError, match="naive"):
        ensure_utc(datetime(2026, 3, 1))
    moment = datetime(2026, 3, 1, 10, 0, 0, 123000, tzinfo=UTC)
    assert from_epoch_ms(to_epoch_ms(moment)) == moment
    with pytest.raises(ValueError, match="naive"):
        parse_datetime("2026-03-01T10:00:00")
