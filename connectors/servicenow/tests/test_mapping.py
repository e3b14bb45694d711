"""Mappers over real Table API payloads (shared data), asserting the mapped values."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from typing import Any

import pytest
from itsm_bridge_servicenow import BUILTIN, CodeBook, MappingContext, ServiceNowConnector, map_row
from itsm_bridge_servicenow.codes import fallback_status
from itsm_bridge_servicenow.values import duration_hours, parse_utc

import itsm_bridge as ib
from itsm_bridge import EffortSource, Kind, Reject, Status, WorkItem

from .conftest import DEMO, real_json

BASE = "https://acme.service-now.com"
CTX = MappingContext("acme", BASE, CodeBook.build())


def _connector(**options: Any) -> ServiceNowConnector:
    conn = ib.connect("servicenow", BASE, auth=ib.BasicAuth("u", "p"), source="acme", **options)
    assert isinstance(conn, ServiceNowConnector)
    return conn


def _first(payload: Any) -> Any:
    result = payload.get("result", payload)
    return result[0] if isinstance(result, list) else result


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_demo_incident_raw_values() -> None:
    raw = real_json("sn-scripts-incident-INC0000060.json")["result"][0]
    item = map_row(BUILTIN["incident"], raw, CTX)
    assert item.id == "acme:1c741bd70b2322007518478d83673af3"
    assert item.key == "INC0000060"
    assert item.kind is Kind.INCIDENT
    assert item.title == "Unable to connect to email"
    assert item.description == "I am unable to connect to the email server. It appears to be down."
    assert (item.status, item.status_raw, item.extra["status_label"]) == (
        Status.CLOSED,
        "7",
        "Closed",
    )
    assert item.priority == 3
    assert item.created_at == _utc("2016-12-12 15:19:57")
    assert item.updated_at == _utc("2016-12-14 02:46:44")
    assert item.resolved_at == _utc("2016-12-13 21:43:14")
    assert item.category == "inquiry"
    assert item.extra["close_code"] == "Solved (Permanently)"
    # References without display values: names unknown, sys_ids kept for joins.
    assert item.team is None
    assert item.assignee is None
    assert item.extra["refs"]["assignment_group"] == "287ebd7da9fe198100f92cc8d1d2154e"
    assert item.extra["refs"]["caller_id"] == "681ccaf9c0a8016400b98a06818d57c7"
    assert item.effort_hours is None
    assert item.effort_source is None
    assert item.url == f"{BASE}/nav_to.do?uri=incident.do?sys_id=1c741bd70b2322007518478d83673af3"
    assert item.extra["issue_type"] == "incident"


def test_docs_incident_by_sys_id_is_open() -> None:
    raw = real_json("servicenow-docs-table-get-incident-by-sys_id.json")["result"]
    item = map_row(BUILTIN["incident"], raw, CTX)
    assert (item.key, item.status, item.priority) == ("INC0000046", Status.NEW, 3)
    assert item.title == "Can't access SFA software"
    assert item.description is None
    assert item.category == "software"
    assert item.resolved_at is None
    assert item.created_at == _utc("2015-11-02 22:04:15")
    assert item.extra["refs"]["problem_id"] == "a9e4890bc6112276003d7a5a5c774a74"


def test_docs_problem_uses_the_legacy_model() -> None:
    raw = real_json("servicenow-docs-table-get-problem-limit1.json")["result"][0]
    item = map_row(BUILTIN["problem"], raw, CTX)
    assert (item.key, item.kind, item.status, item.status_raw) == (
        "PRB0000050",
        Kind.PROBLEM,
        Status.CLOSED,
        "4",
    )
    assert item.extra["status_label"] == "Closed/Resolved"
    assert item.priority == 4
    assert item.resolved_at == _utc("2016-01-19 04:52:04")  # closed_at: no resolved_at there
    assert "unknown_codes" not in item.extra


def test_display_value_all_keeps_utc_and_labels() -> None:
    payload = real_json("demisto-servicenowv2-response-constants.json")
    first, second = payload["RESPONSE_FETCH_USE_DISPLAY_VALUE"]["result"]
    item = map_row(BUILTIN["incident"], first, CTX)
    # Display "29.02.2024 15:09:46" is the user's zone; the raw value is the UTC truth.
    assert item.updated_at == _utc("2024-02-29 13:09:46")
    assert item.created_at == _utc("2024-02-29 13:08:46")
    assert item.team == "Test_group"
    assert item.requester == "Caller ID test"  # caller_id wins over opened_by
    assert (item.status, item.extra["status_label"], item.priority) == (Status.NEW, "New", 5)
    assert item.extra["refs"]["assignment_group"] == "3434343434343434343434"
    other = map_row(BUILTIN["incident"], second, CTX)
    assert other.team is None  # an empty reference is "", not a name
    assert other.key == "INC0022222"


def test_reference_names_lose_the_padding_a_hand_typed_name_carries() -> None:
    payload = real_json("demisto-servicenowv2-response-constants.json")
    raw = dict(payload["RESPONSE_FETCH_USE_DISPLAY_VALUE"]["result"][0])
    for name, shown in (("assignment_group", " Test_group "), ("caller_id", "Jane Doe\t"),
                        ("assigned_to", "   ")):  # fmt: skip
        raw[name] = {**raw.get(name, {"value": "6816f79cc0a8016401c5a33be04be441"}),
                     "display_value": shown}  # fmt: skip
    item = map_row(BUILTIN["incident"], raw, CTX)
    assert (item.team, item.requester, item.assignee) == ("Test_group", "Jane Doe", None)


def test_task_with_display_values_gets_its_parent_number() -> None:
    payload = real_json("demisto-servicenowv2-response-constants.json")
    raw = payload["RESPONSE_QUERY_TABLE_SYS_PARAMS"]["result"][0]
    item = map_row(BUILTIN["sc_req_item"], raw, CTX)
    assert item.key == "TASK0000001"
    assert item.parent_key == "RITM0000001"
    assert item.team == "Procurement"
    assert item.requester == "System Administrator"  # opened_by's display value
    assert item.status is Status.NEW
    assert item.extra["status_label"] == "Open"
    assert item.extra["issue_type"] == "sc_task"
    assert item.extra["request"] == "REQ0000001"
    assert item.url == f"{BASE}/nav_to.do?uri=sc_task.do?sys_id=1234"


def test_requested_item() -> None:
    payload = real_json("demisto-servicenowv2-response-constants.json")
    raw = payload["RESPONSE_UPDATE_TICKET_SC_REQ"]["result"]
    item = map_row(BUILTIN["sc_req_item"], raw, CTX)
    assert (item.key, item.kind, item.status, item.priority) == (
        "RITM0010028",
        Kind.REQUEST,
        Status.NEW,
        4,
    )
    assert item.title == "Microsoft Access"
    assert item.updated_at == _utc("2020-04-21 07:35:26")


def test_unknown_state_code_from_a_real_record() -> None:
    payload = real_json("demisto-servicenowv2-response-constants.json")
    raw = _first(payload["RESPONSE_CLOSING_TICKET_MIRROR_CUSTOM"])
    item = map_row(BUILTIN["incident"], raw, CTX)
    assert item.status_raw == "9"
    assert item.extra["unknown_codes"] == ["state"]
    assert item.status is Status.IN_PROGRESS  # active = true: the documented fallback


def test_user_field_goes_to_extra() -> None:
    payload = real_json("demisto-servicenowv2-response-constants.json")
    raw = _first(payload["RESPONSE_CLOSING_TICKET_MIRROR_CUSTOM"])
    conn = _connector(extra_fields={"incident": ["u_custom_field_test"]})
    item = conn.map_record(Kind.INCIDENT, raw)
    assert item.extra["u_custom_field_test"] == "NYC"


def test_display_only_payload_is_rejected_not_misread() -> None:
    payload = real_json("demisto-servicenowv2-response-constants.json")
    raw = payload["RESPONSE_QUERY_TICKETS_EXCLUDE_REFERENCE_LINK"]["result"][0]
    rejected = _connector().map_safely(Kind.INCIDENT, raw, "x")
    assert isinstance(rejected, Reject)
    # A display date ("06/08/2020 ...", the user's zone and format) is never read as UTC.
    assert "06/08/2020" in rejected.reason
    assert "display values" in rejected.reason


def test_demo_export_csv() -> None:
    path = DEMO / "incidents_REST.csv"
    if not path.exists():
        pytest.skip("shared data not present")
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    items = [map_row(BUILTIN["incident"], row, CTX) for row in rows]
    assert len(items) == 67
    by_key = {i.key: i for i in items}
    first = by_key["INC0000060"]
    assert first.status is Status.CLOSED
    assert first.status_raw == "7"
    assert first.priority == 3
    assert first.resolved_at == _utc("2016-12-13 21:43:14")
    assert first.team is None
    assert first.extra["refs"]["opened_by"].startswith("681ccaf9")
    statuses = {i.status for i in items}
    assert statuses <= set(Status)
    assert all("unknown_codes" not in i.extra for i in items if i.status_raw in {"1", "2", "7"})
    assert all(i.updated_at.tzinfo is UTC for i in items)
    # Open work has no resolution time: 8 open incidents keep a closed_at from a past closure.
    finished = {Status.RESOLVED, Status.CLOSED, Status.CANCELLED}
    still_open = [i for i in items if i.status not in finished]
    assert all(i.resolved_at is None for i in still_open)
    stale = [i.key for i in still_open if "stale_resolution" in i.extra]
    assert len(stale) == 8
    assert by_key["INC0000015"].extra["stale_resolution"] == {"closed_at": "2022-10-01 23:39:10"}


def test_durations_are_epoch_offsets() -> None:
    assert duration_hours("1970-01-03 04:00:00") == 52.0
    assert duration_hours("1970-01-02 04:23:17") == pytest.approx(28 + 23 / 60 + 17 / 3600)
    assert duration_hours("28800") == 8.0
    assert duration_hours("") is None
    with pytest.raises(ValueError):
        duration_hours("yesterday")


def test_raw_datetimes_are_utc() -> None:
    assert parse_utc("2024-01-15 10:30:00") == datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    assert parse_utc("2024-01-15") == datetime(2024, 1, 15, tzinfo=UTC)
    assert parse_utc("") is None


def _project_row(**overrides: Any) -> dict[str, Any]:
    def f(value: str, shown: str | None = None) -> dict[str, str]:
        return {"value": value, "display_value": value if shown is None else shown}

    row = {
        "sys_id": f("aa" * 16),
        "number": f("PRJ0001234"),
        "short_description": f("New loyalty app"),
        "state": f("2", "Work in Progress"),
        "priority": f("3", "3 - Moderate"),
        "active": f("true"),
        "sys_updated_on": f("2026-01-05 18:00:00", "2026-01-05 10:00:00"),
        "opened_at": f("2025-12-01 09:00:00", "2025-12-01 01:00:00"),
        "start_date": f("2026-01-01 08:00:00", "2026-01-01 00:00:00"),
        "end_date": f("2026-06-30 17:00:00"),
        "work_start": f("2026-01-02 08:00:00"),
        "effort": f("1970-01-03 04:00:00", "2 Days 4 Hours"),
        "work_effort": f(""),
        "primary_portfolio.category": f("gtb", "Grow the business"),
        "investment_class": f("change", "Change"),
        "investment_type": f("revenue_generating", "Revenue Generating"),
        "business_case": f("<p>Sells more</p>"),
        "business_unit": f("bb" * 16, "Marketing"),
        "business_service.service_classification": f("Business Service"),
        "assignment_group": f("cc" * 16, "Digital Commerce"),
    }
    row.update(overrides)
    return row


def test_project_investment_signals_and_planned_effort() -> None:
    item = map_row(BUILTIN["pm_project"], _project_row(), CTX)
    assert item.kind is Kind.PROJECT
    assert item.status is Status.IN_PROGRESS
    assert item.extra["investment"] == {
        "portfolio_category": "grow",
        "investment_class": "change",
        "investment_type": "Revenue Generating",
        "business_case": True,
        "business_unit": "Marketing",
    }
    assert item.effort_hours == 52.0
    assert item.effort_source is EffortSource.ESTIMATED
    assert item.extra["planned_start"] == "2026-01-01T08:00:00Z"  # raw UTC, not the display
    assert item.extra["actual_start"] == "2026-01-02T08:00:00Z"
    assert item.extra["service_classification"] == "business"
    assert item.updated_at == _utc("2026-01-05 18:00:00")


def test_project_actual_effort_wins_and_odd_portfolio_is_reported() -> None:
    row = _project_row(
        work_effort={"value": "1970-01-01 10:30:00", "display_value": "10 Hours 30 Minutes"},
        **{"primary_portfolio.category": {"value": "xyz", "display_value": "Keep afloat"}},
        business_case={"value": "", "display_value": ""},
    )
    item = map_row(BUILTIN["pm_project"], row, CTX)
    assert item.effort_hours == 10.5
    assert item.effort_source is EffortSource.MEASURED
    assert item.extra["investment"]["portfolio_category_raw"] == "Keep afloat"
    assert item.extra["investment"]["business_case"] is False
    assert item.extra["unknown_codes"] == ["primary_portfolio.category"]


def _change(state: str, label: str | None, **more: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "sys_id": "c" * 32,
        "number": "CHG0000001",
        "sys_updated_on": "2026-01-01 00:00:00",
        "state": {"value": state, "display_value": label} if label else state,
        "active": "false",
    }
    row.update(more)
    return row


@pytest.mark.parametrize(
    ("code", "label", "status", "table_label"),
    [
        ("4", "Canceled", Status.CANCELLED, "Canceled"),
        ("4", "Closed Incomplete", Status.CLOSED, "Closed Incomplete"),  # legacy, same number
        ("4", None, Status.CANCELLED, "Canceled"),  # no label: the state model comes first
        ("7", "Closed Skipped", Status.CANCELLED, "Closed Skipped"),
        ("0", "Review", Status.RESOLVED, "Review"),
        ("-5", "Pending", Status.NEW, "Pending"),
    ],
)
def test_change_state_models(
    code: str, label: str | None, status: Status, table_label: str
) -> None:
    item = map_row(BUILTIN["change_request"], _change(code, label), CTX)
    assert item.status is status
    assert item.extra["status_label"] == table_label


def test_change_on_hold_flag_and_link() -> None:
    raw = _change(
        "-1",
        "Implement",
        on_hold="true",
        parent={"value": "d" * 32, "display_value": "PRJ0000042"},
        **{"parent.sys_class_name": {"value": "pm_project", "display_value": "Project"}},
        type={"value": "emergency", "display_value": "Emergency"},
        risk={"value": "2", "display_value": "High"},
        close_code="",
    )
    item = map_row(BUILTIN["change_request"], raw, CTX)
    assert item.status is Status.ON_HOLD
    assert item.extra["linked_project"] == "PRJ0000042"
    assert item.parent_key is None
    assert (item.extra["change_type"], item.extra["risk"], item.extra["risk_raw"]) == (
        "emergency",
        "high",
        "2",
    )
    assert "close_code" not in item.extra
    demand = map_row(
        BUILTIN["change_request"],
        _change("3", "Closed", parent={"value": "e" * 32, "display_value": "DMND0001"}),
        CTX,
    )
    assert demand.extra["linked_demand"] == "DMND0001"
    assert demand.status is Status.CLOSED


def test_problem_cancel_resolution_code() -> None:
    raw = {
        "sys_id": "p" * 32,
        "number": "PRB1",
        "sys_updated_on": "2026-01-01 00:00:00",
        "state": "107",
        "resolution_code": "canceled",
    }
    assert map_row(BUILTIN["problem"], raw, CTX).status is Status.CANCELLED


def test_project_task_parent_is_its_project() -> None:
    raw = {
        "sys_id": "t" * 32,
        "number": "PRJTASK0000001",
        "sys_updated_on": "2026-01-01 00:00:00",
        "state": {"value": "2", "display_value": "Work in Progress"},
        "top_task": {"value": "a" * 32, "display_value": "PRJ0001234"},
        "parent": {"value": "b" * 32, "display_value": "PRJTASK0000000"},
        "work_effort": "1970-01-01 06:00:00",
        "effort": "1970-01-01 08:00:00",
    }
    item = map_row(BUILTIN["pm_project_task"], raw, CTX)
    assert item.parent_key == "PRJ0001234"
    assert item.extra["project_key"] == "PRJ0001234"
    assert item.effort_hours == 6.0
    assert item.effort_source is EffortSource.MEASURED
    assert item.extra["effort_planned_hours"] == 8.0


def test_unknown_codes_keep_raw_value_and_label() -> None:
    raw = {
        "sys_id": "u" * 32,
        "number": "INC1",
        "sys_updated_on": "2026-01-01 00:00:00",
        "state": {"value": "42", "display_value": "Awaiting Godot"},
        "priority": {"value": "9", "display_value": "9 - Whenever"},
        "active": "false",
    }
    item = map_row(BUILTIN["incident"], raw, CTX)
    assert item.status is Status.CLOSED  # inactive: the documented fallback
    assert (item.status_raw, item.extra["status_label"]) == ("42", "Awaiting Godot")
    assert item.priority is None
    assert item.extra["priority_label"] == "9 - Whenever"
    assert item.extra["unknown_codes"] == ["state", "priority"]
    assert fallback_status("true") is Status.IN_PROGRESS


def test_code_table_overrides_per_instance() -> None:
    conn = _connector(
        code_tables={"incident_state": {"42": "on_hold:Awaiting Godot", "7": "resolved"}},
        priority_codes={"9": 5},
    )
    raw = {
        "sys_id": "u" * 32,
        "number": "INC1",
        "sys_updated_on": "2026-01-01 00:00:00",
        "state": {"value": "42", "display_value": "Awaiting Godot"},
        "priority": "9",
    }
    item = conn.map_record(Kind.INCIDENT, raw)
    assert item.status is Status.ON_HOLD
    assert item.priority == 5
    assert "unknown_codes" not in item.extra
    closed = conn.map_record(Kind.INCIDENT, {**raw, "state": "7"})
    assert closed.status is Status.RESOLVED
    assert closed.extra["status_label"] == "Closed"


def test_bad_options_fail_when_built() -> None:
    with pytest.raises(ib.InvalidOptionsError, match="unknown status"):
        _connector(code_tables={"incident_state": {"9": "sleeping"}})
    # Every mistake is the options' error, raised when the connector is built, not at the pull.
    with pytest.raises(ib.InvalidOptionsError, match="unknown code tables"):
        _connector(state_tables={"incident": ["no_such_table"]})
    with pytest.raises(ib.InvalidOptionsError, match="no code table"):
        _connector(state_tables={"incident": []})
    with pytest.raises(ib.InvalidOptionsError, match="clash"):
        _connector(extra_fields={"incident": ["risk"]})
    with pytest.raises(ib.InvalidOptionsError, match="neither built in"):
        _connector(filters={"u_nowhere": "active=true"})
    with pytest.raises(ib.InvalidOptionsError, match="NQ"):
        _connector(filters={"incident": "priority=1^NQpriority=2"})
    with pytest.raises(ib.InvalidOptionsError, match="ORDERBY"):
        _connector(filters={"incident": "priority=1^ORDERBYnumber"})
    # A misspelt code table would be a new one that nothing reads: its codes never mapped.
    with pytest.raises(ib.InvalidOptionsError, match=r"\['incident_sate'\] are neither"):
        _connector(code_tables={"incident_sate": {"9": "on_hold"}})
    # A new table is fine once some table reads its state with it.
    _connector(
        code_tables={"u_vendor_state": {"1": "new"}},
        state_tables={"incident": ["u_vendor_state", "incident_state"]},
    )


def test_map_record_picks_the_table_by_class() -> None:
    conn = _connector(tables=[{"table": "u_major_incident", "kind": "incident"}])
    raw = {
        "sys_id": "m" * 32,
        "number": "MAJ1",
        "sys_updated_on": "2026-01-01 00:00:00",
        "state": "2",
        "sys_class_name": "u_major_incident",
    }
    item = conn.map_record(Kind.INCIDENT, raw)
    assert isinstance(item, WorkItem)
    assert item.status is Status.IN_PROGRESS
    assert item.extra["issue_type"] == "u_major_incident"
    assert [s.table for s in conn.tables(Kind.INCIDENT)] == ["incident", "u_major_incident"]
