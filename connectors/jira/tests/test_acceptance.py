"""Acceptance against the sandbox: 20,000 issues, Cloud and Data Center, Asia/Kolkata and
America/Los_Angeles accounts, 429 bursts and issues updated while the pull pages.

- a full pull returns every issue once;
- an incremental pull (``since``) returns exactly the issues changed since, to the second;
- an incremental pull from the final cursor returns exactly what changed after it.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from itsm_bridge_jira import JiraConnector
from itsm_bridge_jira.sandbox import JiraSandbox, make_sandbox
from itsm_bridge_jira.sandbox.render import issue_id

import itsm_bridge as ib
from itsm_bridge import Cursor, Kind, RateGovernor, RetryPolicy, Transport, WorkItem
from itsm_bridge.sandbox import FaultPlan, TruthItem, generate_items

N = 20_000
MIX = {Kind.TASK: 0.82, Kind.INCIDENT: 0.08, Kind.REQUEST: 0.05, Kind.CHANGE: 0.025,
       Kind.PROBLEM: 0.01, Kind.PROJECT: 0.015}  # fmt: skip


def issues(n: int = N, seed: int = 5) -> list[TruthItem]:
    """``n`` Jira issues of every kind, numbers and uids unique across kinds."""
    out: list[TruthItem] = []
    seen: set[str] = set()
    for kind, share in MIX.items():
        for item in generate_items(kind, max(1, round(n * share)), seed=seed, platform="jira"):
            if item.number in seen:
                prefix = item.number.rsplit("-", 1)[0]
                number = f"{prefix}-{90_000 + len(out)}"
                uid = hashlib.md5(number.encode(), usedforsecurity=False).hexdigest()
                item = replace(item, number=number, uid=uid)
            seen.add(item.number)
            out.append(item)
    return out[:n]


def connect(sandbox: JiraSandbox, **options: object) -> JiraConnector:
    # Fast retries: the sandbox's 429s say Retry-After: 0, so the backoff is all that waits;
    # the governor still halves its budget on each 429, but not below 40 requests a second.
    transport = Transport(
        sandbox.url,
        auth=sandbox.auth(),
        connector="jira",
        allow_insecure_http=True,
        retry=RetryPolicy(max_attempts=8, initial_wait=0.01, max_wait=0.1),
        governor=RateGovernor(max_concurrency=4, min_rate=40.0),
    )
    conn = ib.connect(
        "jira", sandbox.url, transport=transport, **{**sandbox.connect_options(), **options}
    )
    assert isinstance(conn, JiraConnector)
    return conn


def pull(
    conn: JiraConnector, since: datetime | None = None
) -> tuple[list[WorkItem], dict[Kind, Cursor]]:
    items: list[WorkItem] = []
    cursors: dict[Kind, Cursor] = {}
    for kind in conn.kinds:
        for page in conn.pull_pages(kind, None, since=since):
            assert not page.rejects
            items.extend(page.items)
            if page.final:
                assert page.cursor is not None
                cursors[kind] = page.cursor
    return items, cursors


def ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("deployment", "timezone"),
    [
        ("cloud", "Asia/Kolkata"),
        ("cloud", "America/Los_Angeles"),
        ("datacenter", "Asia/Kolkata"),
        ("datacenter", "America/Los_Angeles"),
    ],
)
def test_full_and_incremental_pulls(deployment: str, timezone: str) -> None:
    data = issues()
    start = {i.number: i for i in data}
    faults = FaultPlan(seed=3, p_429=0.02, burst_429=2, retry_after=0, p_update_during_paging=0.08)
    with make_sandbox(data, faults=faults, timezone=timezone, deployment=deployment) as sandbox:
        conn = connect(sandbox)
        got, cursors = pull(conn)

        # Full pull: every issue exactly once, whatever changed while it paged.
        visible = {i.number: i for i in sandbox.visible_items()}
        keys = [item.key for item in got]
        assert len(keys) == len(set(keys)) == len({item.id for item in got})
        assert set(keys) == set(visible)
        assert len(keys) == N
        assert faults.injected.get("429", 0) >= 2
        assert conn.transport.stats.retries >= faults.injected["429"]
        churned = [n for n, i in visible.items() if i.version > 1]
        assert churned, "the sandbox should have updated issues during the pull"
        for item in got:
            truth = visible[item.key]
            assert item.kind is truth.kind
            # Datetimes arrived in the account's offset and were parsed as such.
            assert item.created_at == ms(truth.created)
            assert ms(start[item.key].updated) <= item.updated_at <= ms(truth.updated)
        assert Counter(i.kind for i in got) == Counter(i.kind for i in visible.values())

        # Incremental with `since`: exactly the issues changed since, to the second. Each kind's
        # pull closes at its own watermark; what changes after it belongs to the next pull.
        ordered = sorted(i.updated for i in visible.values())
        since = (ordered[-700] + timedelta(milliseconds=400)).replace(microsecond=0)
        # Expected: every issue with a version, while the pull ran, updated since `since` and
        # before its kind's window closed (window_end; the watermark may be held below it by an
        # issue returned earlier that changed again). Versions come from the sandbox's log.
        before = {i.number: i.updated for i in sandbox.visible_items()}
        logged = len(sandbox.app.store.events)
        delta, delta_cursors = pull(conn, since=since)
        versions = {number: [updated] for number, updated in before.items()}
        for event in sandbox.app.store.events[logged:]:
            versions[event.number].append(event.at)
        expected = set()
        for number, item in {i.number: i for i in sandbox.visible_items()}.items():
            cursor = delta_cursors[item.kind]
            closed_at = datetime.fromisoformat(cursor.state["window_end"])
            assert cursor.watermark is not None
            assert cursor.watermark <= closed_at
            if any(since <= v < closed_at for v in versions[number]):
                expected.add(number)
        delta_keys = [i.key for i in delta]
        assert len(delta_keys) == len(set(delta_keys))
        assert set(delta_keys) == expected
        assert all(i.updated_at >= since for i in delta)
        assert 600 <= len(delta_keys) < 2_000

        # Incremental from the full pull's cursors (no overlap): exactly what changed after them.
        faults.p_update_during_paging = 0.0
        touched = {sandbox.touch(n).number for n in sorted(visible)[:25]}
        time.sleep(0.01)  # the touches are in the past (ms clock) when the window closes
        exact = connect(sandbox, overlap_seconds=0, lag_seconds=0)
        again: list[WorkItem] = []
        closed: dict[Kind, datetime] = {}
        for kind, cursor in cursors.items():
            for page in exact.pull_pages(kind, cursor):
                again.extend(page.items)
                if page.final:
                    assert page.cursor is not None
                    closed[kind] = datetime.fromisoformat(page.cursor.state["window_end"])
        expected_again = set()
        for number, item in {i.number: i for i in sandbox.visible_items()}.items():
            cursor = cursors[item.kind]
            assert cursor.watermark is not None
            native = str(issue_id(item.uid))
            at_boundary = ms(item.updated) == cursor.watermark and native in cursor.boundary_ids
            # (an issue edited twice within a second is stamped in the future by the sandbox's
            # store: it belongs to a later window)
            if cursor.watermark <= item.updated < closed[item.kind] and not at_boundary:
                expected_again.add(number)
        again_keys = [i.key for i in again]
        assert len(again_keys) == len(set(again_keys))
        assert touched & expected_again
        assert touched & expected_again <= set(again_keys)
        assert set(again_keys) == expected_again
