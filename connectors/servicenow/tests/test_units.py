"""Units without HTTP: encoded queries, window splitting, cursor state, parallel ranges."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from itsm_bridge_servicenow.paging import RangePage, run_ranges
from itsm_bridge_servicenow.query import (
    check_user_filter,
    count_query,
    fields_in_query,
    id_keyset_query,
    keyset_query,
)
from itsm_bridge_servicenow.ranges import PullState, Range, split_window
from itsm_bridge_servicenow.tables import BUILTIN, TableOption, build_specs

from itsm_bridge import ConfigurationError, Kind

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 2, tzinfo=UTC)


def test_keyset_query_repeats_the_window_in_both_branches() -> None:
    assert keyset_query(T0, T1, None, "active=true") == (
        "sys_updated_on>=2026-01-01 00:00:00^sys_updated_on<2026-01-02 00:00:00^active=true"
        "^ORDERBYsys_updated_on^ORDERBYsys_id"
    )
    query = keyset_query(T0, T1, ("2026-01-01 10:00:00", "abc"), "active=true")
    first, second = query.split("^NQ")
    window = "sys_updated_on>=2026-01-01 00:00:00^sys_updated_on<2026-01-02 00:00:00"
    assert first == f"{window}^sys_updated_on>2026-01-01 10:00:00^active=true"
    assert second == (
        f"{window}^sys_updated_on=2026-01-01 10:00:00^sys_id>abc^active=true"
        "^ORDERBYsys_updated_on^ORDERBYsys_id"
    )
    assert keyset_query(None, None, None) == "ORDERBYsys_updated_on^ORDERBYsys_id"
    assert count_query(T0, T1) == (
        "sys_updated_on>=2026-01-01 00:00:00^sys_updated_on<=2026-01-02 00:00:00"
    )
    assert id_keyset_query("abc", "active=true") == "sys_id>abc^active=true^ORDERBYsys_id"


def test_field_names_of_a_query() -> None:
    query = (
        "active=true^priorityIN1,2^ORcategorySTARTSWITHnet^NQcaller_id.vip=true^ORDERBYDESCnumber"
    )
    assert fields_in_query(query) == {"active", "priority", "category", "caller_id.vip", "number"}
    assert check_user_filter("u_region=EMEA^ORu_region=APAC", "incident") == {"u_region"}
    for bad in ("a=1^NQb=2", "ORa=1", "a=1^ORDERBYb", "^a=1"):
        with pytest.raises(ConfigurationError):
            check_user_filter(bad, "incident")
    with pytest.raises(ConfigurationError, match="no operator"):
        fields_in_query("active~true")


def test_split_window_is_contiguous_on_whole_seconds() -> None:
    hi = datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
    ranges = split_window(None, T0, hi, 3)
    assert ranges[0].start is None  # the oldest range stays open below
    assert ranges[-1].end == hi
    for left, right in itertools.pairwise(ranges):
        assert left.end == right.start
        assert left.end is not None
        assert left.end.microsecond == 0
    assert [r.end for r in ranges[:-1]] == [
        datetime(2026, 1, 1, 0, 0, 3, tzinfo=UTC),
        datetime(2026, 1, 1, 0, 0, 6, tzinfo=UTC),
    ]
    # A one-second window cannot be split further.
    tiny = split_window(T0, None, T0 + timedelta(seconds=1), 16)
    assert [(r.start, r.end) for r in tiny] == [(T0, T0 + timedelta(seconds=1))]
    assert split_window(None, None, T1, 8) == [Range(None, T1)]


def test_pull_state_round_trip_and_watermark() -> None:
    state = PullState(lo=T0, hi=T1, tables=["incident"])
    state.ranges = split_window(T0, None, T1, 4)
    assert state.watermark() == T0
    state.ranges[0].done = True
    state.ranges[1].after = ("2026-01-01 07:00:00", "f" * 32)
    assert state.watermark() == datetime(2026, 1, 1, 7, tzinfo=UTC)
    again = PullState.from_state(state.to_state())
    assert again.to_state() == state.to_state()
    assert again.ranges[1].after == ("2026-01-01 07:00:00", "f" * 32)
    state.phase = "catchup"
    assert state.watermark() == T1
    two = PullState(lo=T0, hi=T1, tables=["a", "b"], phase="catchup")
    assert two.watermark() == T0  # table b has not started
    with pytest.raises(ConfigurationError):
        PullState.from_state({"v": 99})
    with pytest.raises(ConfigurationError):
        PullState.from_state({"v": 1, "hi": "yesterday", "tables": []})


def test_build_specs_extends_and_replaces() -> None:
    specs = build_specs(
        tables=[
            TableOption(table="u_security_incident", kind=Kind.INCIDENT, extra_fields=("u_cve",)),
            TableOption(table="u_req", kind=Kind.REQUEST, like="sc_req_item", replace=True),
        ],
        extra_fields={"incident": ["u_business_value"]},
        filters={"incident": "active=true"},
    )
    assert [s.table for s in specs[Kind.INCIDENT]] == ["incident", "u_security_incident"]
    assert [s.table for s in specs[Kind.REQUEST]] == ["u_req"]
    incident, security = specs[Kind.INCIDENT]
    assert "u_business_value" in incident.fields()
    assert incident.filter == "active=true"
    assert security.extra_fields == ("u_cve",)
    assert security.state_tables == ("incident_state",)
    assert "u_cve" in security.required_fields()
    assert specs[Kind.REQUEST][0].references == BUILTIN["sc_req_item"].references
    with pytest.raises(ConfigurationError, match="not a field name"):
        build_specs(extra_fields={"incident": ["Bad Name"]})
    with pytest.raises(ConfigurationError, match="like="):
        build_specs(tables=[TableOption(table="u_x", kind=Kind.INCIDENT, like="nope")])


def _reader(pages: dict[int, int], fail: int | None = None, slow: float = 0.0):  # type: ignore[no-untyped-def]
    def read(index: int, stop: threading.Event) -> Iterator[RangePage]:
        for n in range(pages[index]):
            if stop.is_set():
                return
            if index == fail and n == 1:
                raise RuntimeError(f"range {index} broke")
            time.sleep(slow)
            yield RangePage([{"n": n}], (str(index), str(n)))
        yield RangePage([], None, done=True)

    return read


def test_run_ranges_keeps_each_range_in_order() -> None:
    got = list(run_ranges([0, 1, 2, 3], _reader({0: 3, 1: 5, 2: 0, 3: 2}), workers=3))
    for index, count in ((0, 3), (1, 5), (2, 0), (3, 2)):
        mine = [page for i, page in got if i == index]
        assert [p.key for p in mine[:-1]] == [(str(index), str(n)) for n in range(count)]
        assert mine[-1].done
    assert len(got) == 3 + 5 + 0 + 2 + 4


def test_run_ranges_raises_a_worker_error_and_stops() -> None:
    with pytest.raises(RuntimeError, match="range 1 broke"):
        list(run_ranges([0, 1, 2], _reader({0: 50, 1: 5, 2: 50}, fail=1, slow=0.001), workers=3))


def test_closing_early_stops_the_workers() -> None:
    before = threading.active_count()
    stream = run_ranges([0, 1, 2, 3], _reader(dict.fromkeys(range(4), 1000)), workers=4)
    first = [next(stream) for _ in range(5)]
    stream.close()
    assert len(first) == 5
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() <= before


@pytest.mark.parametrize(
    "data",
    [
        {"result": {"error": {"message": "Insufficient rights to query records"}}},
        {"error": {"message": "Insufficient rights to query records", "detail": ""}},
    ],
)
def test_an_error_object_in_place_of_rows_is_named(data: dict[str, object]) -> None:
    from itsm_bridge_servicenow.api import TableApi
    from requests.structures import CaseInsensitiveDict

    from itsm_bridge import ResponseFormatError
    from itsm_bridge.http import HttpResponse, Transport

    api = TableApi(Transport("https://acme.service-now.com"), source="acme", connector="servicenow")
    response = HttpResponse(200, CaseInsensitiveDict(), "https://acme.service-now.com/x", data, 0.1)
    with pytest.raises(ResponseFormatError, match="it said: Insufficient rights") as caught:
        api.result_list("incident", response)
    assert caught.value.source == "acme"
