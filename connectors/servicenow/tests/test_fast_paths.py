"""The fast paths of a pull (range ends, setup round trips, dedupe keys) and their fallbacks."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from itsm_bridge_servicenow import connector as sn_connector
from itsm_bridge_servicenow import dictionary
from itsm_bridge_servicenow.connector import id_key
from itsm_bridge_servicenow.paging import Fetched, RangePage, read_range, run_ranges
from itsm_bridge_servicenow.ranges import PullState, Range, split_window

import itsm_bridge as ib
from itsm_bridge import Kind
from itsm_bridge.sandbox import FaultPlan, generate_items

from .conftest import SandboxFactory, connect, pulled_ids

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _row(i: int) -> dict[str, Any]:
    return {"sys_updated_on": f"2026-01-01 00:{i // 60:02d}:{i % 60:02d}", "sys_id": f"{i:032x}"}


class FakeTable:
    """Rows in key order, some hidden by ACLs; a page covers ``limit`` rows before hiding."""

    def __init__(self, n: int, hidden: set[int] = frozenset(), limit: int = 10) -> None:  # type: ignore[assignment]
        self.rows = [_row(i) for i in range(n)]
        self.hidden = {self.rows[i]["sys_id"] for i in hidden}
        self.limit = limit
        self.fetches: list[tuple[int, bool]] = []
        self.counts = 0

    def _after(self, query: str) -> list[dict[str, Any]]:
        if "sys_id>" not in query:
            return self.rows
        last = query.split("sys_id>")[1].split("^")[0]
        return [r for r in self.rows if r["sys_id"] > last]

    def fetch(self, query: str, offset: int, count: bool = False) -> Fetched:
        self.fetches.append((offset, count))
        left = self._after(query)
        window = left[offset : offset + self.limit]
        rows = [r for r in window if r["sys_id"] not in self.hidden]
        return Fetched(rows, self.limit, NOW, len(left) if count else None)

    def count(self, query: str) -> int:
        self.counts += 1
        return len(self._after(query))


def _read(table: FakeTable, rng: Range) -> list[Any]:
    return list(read_range(rng, "incident", table.fetch, table.count))


def test_a_past_range_ends_on_its_first_page_count() -> None:
    table = FakeTable(25)
    pages = _read(table, Range(T0, T0 + timedelta(days=1)))
    assert sum(len(p.rows) for p in pages) == 25
    assert pages[-1].done
    assert pages[-1].rows
    assert table.fetches == [(0, True), (0, False), (0, False)]
    assert table.counts == 0


def test_a_range_of_whole_pages_is_confirmed_the_long_way() -> None:
    table = FakeTable(20)
    pages = _read(table, Range(T0, T0 + timedelta(days=1)))
    assert sum(len(p.rows) for p in pages) == 20
    assert table.fetches == [(0, True), (0, False), (0, False)]
    assert table.counts == 1  # a full last page may have had more behind it


class LateTable(FakeTable):
    """A row committed late, with a time inside the range, after the range's first page."""

    def fetch(self, query: str, offset: int, count: bool = False) -> Fetched:
        page = super().fetch(query, offset, count)
        if len(self.fetches) == 1:
            late = {"sys_updated_on": self.rows[15]["sys_updated_on"], "sys_id": "0" * 31 + "g"}
            self.rows.insert(16, late)  # between rows 15 and 16 in (time, sys_id) order
        return page


def test_a_late_row_cannot_push_an_earlier_one_out_of_reach() -> None:
    # 20 rows counted; one more arrives ahead of the position, so the second (full) page
    # brings the rows read to the count with the last original row still unread.
    table = LateTable(20)
    pages = _read(table, Range(T0, T0 + timedelta(days=1)))
    got = [r["sys_id"] for p in pages for r in p.rows]
    assert len(got) == 21
    assert got[-1] == f"{19:032x}"


def test_an_empty_range_ends_on_one_counted_page() -> None:
    table = FakeTable(0)
    pages = _read(table, Range(T0, None))
    assert [(p.rows, p.done, p.closed_at) for p in pages] == [([], True, NOW)]
    assert table.fetches == [(0, True)]
    assert table.counts == 0


def test_hidden_rows_keep_a_range_open_until_confirmed() -> None:
    table = FakeTable(25, hidden={21, 22, 23, 24})
    pages = _read(table, Range(T0, T0 + timedelta(days=1)))
    assert sum(len(p.rows) for p in pages) == 21
    assert pages[-1].done
    assert not pages[-1].rows
    assert table.counts == 1  # the empty page is confirmed by the Aggregate API


def test_a_hidden_first_page_is_stepped_over_with_its_own_count() -> None:
    table = FakeTable(25, hidden=set(range(10)))
    pages = _read(table, Range(T0, T0 + timedelta(days=1)))
    assert sum(len(p.rows) for p in pages) == 15
    assert table.fetches[:2] == [(0, True), (10, False)]
    assert table.counts == 1  # only at the very end


def test_the_open_catch_up_range_never_ends_on_a_stale_count() -> None:
    # Rows keep arriving in the open range, so a count taken on its first page proves nothing
    # about the next one: it ends on an empty page, confirmed.
    table = FakeTable(5)
    pages = _read(table, Range(T0, None))
    assert [len(p.rows) for p in pages] == [5, 0]
    assert table.fetches == [(0, True), (0, False)]
    assert table.counts == 1


def test_a_pull_without_acls_reads_each_page_once(sandbox: SandboxFactory) -> None:
    items = generate_items(Kind.INCIDENT, 2_000, seed=4)
    box = sandbox(items)
    conn = connect(box, page_size=100, max_workers=4)
    ids = pulled_ids(conn.pull_pages(Kind.INCIDENT))
    assert sorted(ids) == sorted(i.uid for i in items)
    reads = box.data_requests("incident")
    firsts = [p for p in reads if p.get("sysparm_no_count") == "false"]
    ranges = len(firsts) - 1  # each range's first page, and the catch-up's
    assert 1 < ranges <= 16
    # No range ends on an extra empty page: 20 full pages' worth of rows, at most one partial
    # page per range, and the catch-up's one read.
    assert len(reads) <= 20 + ranges + 1
    assert not any(p.get("sysparm_offset") for p in reads)
    stats = [params for _, path, params in box.app.log if path.startswith("/api/now/stats/")]
    assert len(stats) == 2  # the window's probe and the completeness check


def test_a_pull_with_acls_still_returns_every_visible_record(sandbox: SandboxFactory) -> None:
    items = generate_items(Kind.INCIDENT, 1_500, seed=5)
    box = sandbox(items, faults=FaultPlan(seed=3, acl_hidden_share=0.1))
    conn = connect(box, page_size=50, max_workers=3)
    ids = pulled_ids(conn.pull_pages(Kind.INCIDENT))
    assert sorted(ids) == sorted(i.uid for i in box.visible_items())


def test_dedupe_keys_pack_only_lowercase_hex_sys_ids() -> None:
    sys_id = "0123456789abcdef0123456789abcdef"
    assert id_key(sys_id) == bytes.fromhex(sys_id)
    assert id_key("0" * 32) == bytes(16)
    # Everything else stays itself, so two different sys_ids never share a key.
    for other in (sys_id.upper(), "0123456789ABCDEF0123456789abcdef", " " * 32, "x" * 32, "abc"):
        assert id_key(other) == other
    spaced = "0123456789abcdef 0123456789abcd "  # 32 characters, 15 bytes of hex
    assert len(spaced) == 32
    assert id_key(spaced) == spaced


def _dictionary_reads(box: Any) -> list[str]:
    return [
        params.get("sysparm_query", "")
        for _, path, params in box.app.log
        if path == "/api/now/table/sys_dictionary"
    ]


def test_the_dictionary_is_read_once_per_table_when_the_ancestry_is_as_expected(
    sandbox: SandboxFactory,
) -> None:
    box = sandbox(generate_items(Kind.INCIDENT, 20, seed=2))
    conn = connect(box)
    assert len(pulled_ids(conn.pull_pages(Kind.INCIDENT))) == 20
    reads = _dictionary_reads(box)
    assert len(reads) == 2  # incident (with task) and cmdb_ci_service (the dot-walk)
    assert reads[0].startswith("nameINincident,task^")


def test_an_unexpected_ancestry_is_read_again(
    sandbox: SandboxFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Were incident not to extend task here, the guess would miss number, state, ... on task.
    monkeypatch.setitem(dictionary.LIKELY_ANCESTRY, "incident", ("incident",))
    box = sandbox(generate_items(Kind.INCIDENT, 20, seed=2))
    conn = connect(box, extra_fields={"incident": ["u_nope"]})
    with pytest.raises(ib.UnknownFieldError, match="u_nope") as failure:
        list(conn.pull_pages(Kind.INCIDENT))
    assert "'number'" not in str(failure.value)  # found on task after all
    reads = _dictionary_reads(box)
    assert reads[0].startswith("nameINincident^")
    assert reads[1].startswith("nameINincident,task^")
    assert box.data_requests() == []


def test_a_skewed_window_is_cut_at_equal_counts(
    sandbox: SandboxFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sn_connector, "_RECORDS_TO_CUT", 0)
    base = generate_items(Kind.INCIDENT, 3_000, seed=7)
    newest = max(i.updated for i in base)
    # Four in five records changed in the last two days, the rest over the months before.
    items = [
        replace(i, updated=newest - timedelta(minutes=n % 2880)) if n % 5 else i
        for n, i in enumerate(base)
    ]
    box = sandbox(items)
    conn = connect(box, page_size=100, max_workers=4)
    pages = list(conn.pull_pages(Kind.INCIDENT))
    assert sorted(pulled_ids(pages)) == sorted(i.uid for i in items)
    first = next(p for p in pages if p.cursor is not None and p.cursor.state.get("ranges"))
    assert first.cursor is not None
    ranges = PullState.from_state(first.cursor.state).ranges
    stamps = [i.updated.replace(microsecond=0) for i in items]

    def inside(moment: datetime, r: Range) -> bool:
        return (r.start is None or moment >= r.start) and (r.end is None or moment < r.end)

    def sizes(cut: list[Range]) -> list[int]:
        return [sum(1 for s in stamps if inside(s, r)) for r in cut]

    assert len(ranges) == 4
    counted = sizes(ranges)
    assert sum(counted) == len(items)
    assert max(counted) <= 1.2 * min(counted), counted
    # The even split in time that this replaces would leave one worker most of the records.
    by_time = sizes(split_window(None, min(stamps), ranges[-1].end, 4))  # type: ignore[arg-type]
    assert max(by_time) > 3 * len(items) / 4


def test_cuts_that_fail_fall_back_to_an_even_split_in_time(
    sandbox: SandboxFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sn_connector, "_RECORDS_TO_CUT", 0)
    items = generate_items(Kind.INCIDENT, 2_000, seed=8)
    box = sandbox(items)
    conn = connect(box, page_size=100, max_workers=4)

    def broken(*args: Any) -> list[datetime]:
        raise ib.ServerError("stats node down")

    monkeypatch.setattr(conn.api, "quantiles", broken)
    pages = list(conn.pull_pages(Kind.INCIDENT))
    assert sorted(pulled_ids(pages)) == sorted(i.uid for i in items)
    first = next(p for p in pages if p.cursor is not None and p.cursor.state.get("ranges"))
    assert first.cursor is not None
    assert len(PullState.from_state(first.cursor.state).ranges) > 4  # the time split's 16


def test_pages_are_decoded_only_once_admitted() -> None:
    events: list[str] = []
    table = FakeTable(25)

    def lazy_fetch(query: str, offset: int, count: bool = False) -> Fetched:
        page = table.fetch(query, offset, count)

        def decode() -> list[dict[str, Any]]:
            events.append("decode")
            return page.rows

        return Fetched(None, page.limit, page.server_time, page.total, pending=decode)

    def admit() -> bool:
        events.append("admit")
        return True

    pages = list(
        read_range(
            Range(T0, T0 + timedelta(days=1)), "incident", lazy_fetch, table.count, admit=admit
        )
    )
    assert sum(len(p.rows) for p in pages) == 25
    assert events == ["admit", "decode"] * len(pages)  # each yielded page admitted once, first

    refused = list(
        read_range(Range(T0, None), "incident", lazy_fetch, table.count, admit=lambda: False)
    )
    assert refused == []  # a stopped pull decodes nothing more


def test_room_is_given_back_as_pages_leave_the_queue() -> None:
    taken: list[int] = []
    got = list(
        run_ranges([0, 1, 2], _pages({0: 2, 1: 3, 2: 0}), workers=3, taken=lambda: taken.append(1))
    )
    assert len(taken) == len(got) == 2 + 3 + 0 + 3


def _pages(counts: dict[int, int]) -> Any:
    def read(index: int, stop: Any) -> Any:
        for n in range(counts[index]):
            yield RangePage([{"n": n}], (str(index), str(n)))
        yield RangePage([], None, done=True)

    return read
