"""A pull's book-keeping, page by page and without a server: each issue emitted once, an issue
seen again at a newer version holds the watermark, the final cursor's boundary ids are exactly
those emitted at its watermark, and the census's missing ids come in the order it saw them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from itsm_bridge_jira import pull as pull_module
from itsm_bridge_jira.pull import KindPull, _Run
from itsm_bridge_jira.seen import id_key

from itsm_bridge import Kind

LO = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
HI = LO + timedelta(hours=1)
MS = timedelta(milliseconds=1)
FAR = datetime.max.replace(tzinfo=UTC)


def issue(issue_id: str, updated: datetime | None) -> dict[str, Any]:
    stamp = None if updated is None else updated.isoformat(timespec="microseconds")
    return {"id": issue_id, "fields": {"updated": stamp}}


@pytest.fixture
def kind_pull(monkeypatch: pytest.MonkeyPatch) -> KindPull:
    monkeypatch.setattr(pull_module, "is_kind", lambda record, kind, mapping: True)
    conn: Any = SimpleNamespace(options=SimpleNamespace(lag_seconds=0), census_found=0)
    site: Any = SimpleNamespace(mapping=None, deployment=SimpleNamespace(kind="cloud"))
    kp = KindPull(conn, site, Kind.TASK, None, None)
    kp.run = _Run(Kind.TASK, LO, frozenset({"10005"}))
    return kp


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in records]


def test_each_issue_once_and_a_newer_version_holds_the_watermark(kind_pull: KindPull) -> None:
    first = [
        issue("10001", LO + MS),
        issue("10002", LO + 2 * MS),
        issue("10005", LO),  # at `lo` and among the cursor's boundary ids: had last time
        issue("10006", LO - MS),  # before the window (the server widens to the minute)
        issue("10007", HI),  # the next window's
        issue("10008", None),  # no `updated`: emitted once, for the mapper to reject
        issue("PRJ-9", LO + 5 * MS),  # not a decimal id: kept exactly all the same
        issue("10009", LO + 5 * MS),
        issue("10010", LO + 5 * MS + timedelta(microseconds=1)),
        issue("0", LO + 5 * MS),
    ]
    accepted = ids(kind_pull.accept(first, upper=HI))
    assert accepted == ["10001", "10002", "10008", "PRJ-9", "10009", "10010", "0"]
    assert kind_pull.run.held is None
    assert len(kind_pull.run.emitted) == 7
    assert kind_pull.final(HI).cursor.boundary_ids == ()  # nothing emitted at `hi`

    again = [
        issue("10001", LO + MS),  # the same version: dropped, nothing held
        issue("10008", None),
        issue("PRJ-9", LO + 5 * MS),
        issue("10002", LO + 5 * MS),  # changed while the pull ran: dropped, watermark held
        issue("10009", HI + MS),  # changed again later: the earlier change holds
    ]
    assert kind_pull.accept(again, upper=HI + timedelta(minutes=1)) == []
    assert kind_pull.run.held == LO + 5 * MS
    final = kind_pull.final(HI)
    cursor = final.cursor
    assert final.final
    assert cursor.watermark == LO + 5 * MS
    # Exactly the ids emitted at the watermark (to the microsecond), sorted as text.
    assert cursor.boundary_ids == ("0", "10009", "PRJ-9")
    assert cursor.state["window_end"] == HI.isoformat()

    # A fetch by id (no upper bound) emits an issue at `hi` itself; with the hold lifted the
    # watermark is `hi` and that issue is its boundary.
    assert ids(kind_pull.accept([issue("10011", HI)], upper=FAR)) == ["10011"]
    kind_pull.run.held = None
    assert kind_pull.final(HI).cursor.boundary_ids == ("10011",)
    # A cursor ahead of the server's clock keeps the watermark: boundary ids at the floor.
    kind_pull.run.floor = LO + 2 * MS
    assert kind_pull.final(LO).cursor.watermark == LO + 2 * MS
    assert kind_pull.final(LO).cursor.boundary_ids == ("10002",)


def test_missing_ids_come_in_census_order(kind_pull: KindPull) -> None:
    kind_pull.accept([issue("10002", LO + MS), issue("KEY-1", LO + MS)], upper=HI)
    for issue_id in ["10003", "10002", "OPS-1", "10001", "10003", "KEY-1", "00"]:
        kind_pull.run.census_ids.add(id_key(issue_id))
    assert kind_pull.missing() == ["10003", "OPS-1", "10001", "00"]
    assert kind_pull.conn.census_found == 4
