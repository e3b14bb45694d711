"""JQL: the connector's epoch-ms windows; the sandbox's parser (time zones, minute precision)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from itsm_bridge_jira.jql import check_user_jql, floor_minute_ms, window_jql
from itsm_bridge_jira.sandbox.index import SearchIndex
from itsm_bridge_jira.sandbox.jql import Doc, JqlError, parse_jql
from itsm_bridge_jira.sandbox.render import Renderer

from itsm_bridge import InvalidOptionsError, Kind
from itsm_bridge.sandbox import generate_items

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def test_window_bounds_are_epoch_ms() -> None:
    lo = datetime(2023, 11, 14, 22, 13, 20, 500_000, tzinfo=UTC)  # 1700000000500 ms
    hi = datetime(2023, 11, 15, 0, 0, 0, 250_000, tzinfo=UTC)
    jql = window_jql(lo=lo, hi=hi, projects=["OPS", "My Proj"], type_ids=["10101"])
    assert jql == (
        'project in (OPS, "My Proj") AND issuetype in (10101) AND updated >= 1699999980000 '
        "AND updated < 1700006400250 ORDER BY updated ASC, id ASC"
    )
    exact = window_jql(lo=lo, hi=None, exact_lo=True, order=False)
    assert exact == "updated >= 1700000000500"
    assert floor_minute_ms(lo) == 1_699_999_980_000


def test_window_with_user_jql_and_exclusions() -> None:
    jql = window_jql(lo=None, hi=None, user_jql="labels = x OR labels = y", exclude_type_ids=["1"])
    assert jql == "(labels = x OR labels = y) AND issuetype not in (1) ORDER BY updated ASC, id ASC"
    assert window_jql(lo=None, hi=None, issue_ids=["10", "11"], order=False) == "id in (10, 11)"


def test_user_jql_may_not_order() -> None:
    with pytest.raises(InvalidOptionsError, match="ORDER BY"):
        check_user_jql("project = OPS order by created")
    with pytest.raises(InvalidOptionsError, match="ORDER BY"):
        check_user_jql('summary ~ "x" ORDER BY created')


@pytest.mark.parametrize(
    "jql",
    ['summary ~ "order by"', "summary ~ 'Order  By date'", 'text ~ "a \\" order by b"'],
)
def test_order_by_inside_a_quoted_value_is_not_an_order_clause(jql: str) -> None:
    assert check_user_jql(jql) == jql
    assert check_user_jql("  ") is None


def _doc(updated: datetime) -> Doc:
    ms = int(updated.timestamp() * 1000)
    return Doc(1, "OPS-1", 1, "OPS", "10002", "Task", "To Do", "new", "Medium", ("a",), ms, ms,
               None, None)  # fmt: skip


@pytest.mark.parametrize(
    ("zone", "literal", "instant"),
    [
        # A literal is wall-clock time in the account's zone, to the minute.
        ("Asia/Kolkata", "2026-01-05 15:30", datetime(2026, 1, 5, 10, 0, tzinfo=UTC)),
        ("America/Los_Angeles", "2026/01/05 02:00", datetime(2026, 1, 5, 10, 0, tzinfo=UTC)),
        ("UTC", "2026-01-05", datetime(2026, 1, 5, 0, 0, tzinfo=UTC)),
    ],
)
def test_date_literals_are_read_in_the_account_zone(
    zone: str, literal: str, instant: datetime
) -> None:
    query = parse_jql(f'updated >= "{literal}"', tz=ZoneInfo(zone), now=NOW)
    assert query.updated_lo == int(instant.timestamp() * 1000)
    assert query.predicate(_doc(instant))
    assert not query.predicate(_doc(datetime.fromtimestamp(instant.timestamp() - 1, tz=UTC)))


def test_the_time_zone_trap_reproduced() -> None:
    """The same UTC watermark sent as a literal means different instants for different accounts."""
    watermark = "2026-01-05 10:00"
    kolkata = parse_jql(f'updated >= "{watermark}"', tz=ZoneInfo("Asia/Kolkata"), now=NOW)
    angeles = parse_jql(f'updated >= "{watermark}"', tz=ZoneInfo("America/Los_Angeles"), now=NOW)
    assert kolkata.updated_lo is not None
    assert angeles.updated_lo is not None
    hours = (angeles.updated_lo - kolkata.updated_lo) / 3_600_000
    assert hours == 13.5  # +05:30 vs -08:00: a literal would skip or repeat 13.5 hours
    # Epoch milliseconds mean one instant for every account.
    for zone in ("Asia/Kolkata", "America/Los_Angeles"):
        exact = parse_jql("updated >= 1767607200123", tz=ZoneInfo(zone), now=NOW)
        assert exact.updated_lo == 1_767_607_200_123


def test_parser_subset_and_order() -> None:
    tz = ZoneInfo("UTC")
    query = parse_jql(
        '(project = OPS OR project in ("SHOP")) AND issuetype not in (10101, Epic) '
        "AND updated < 1767607200000 AND labels IS NOT EMPTY ORDER BY updated ASC, id ASC",
        tz=tz,
        now=NOW,
    )
    assert query.order == [("updated", True), ("id", True)]
    assert query.updated_hi == 1_767_607_200_000
    assert query.updated_lo is None
    assert query.predicate(_doc(datetime(2026, 1, 1, tzinfo=UTC)))
    assert not query.predicate(_doc(datetime(2026, 2, 1, tzinfo=UTC)))
    ored = parse_jql("updated >= 5000000000000 OR project = OPS", tz=tz, now=NOW)
    assert ored.updated_lo is None  # bounds under OR are not index bounds
    assert ored.predicate(_doc(NOW))
    assert not parse_jql("order by key desc", tz=tz, now=NOW).bounded
    assert (
        parse_jql('updated >= "-15m"', tz=tz, now=NOW).updated_lo
        == int(NOW.timestamp() * 1000) - 900_000
    )


@pytest.mark.parametrize(
    ("jql", "message"),
    [
        ("summary ~ vpn", "does not exist"),
        ("project = OPS AND assignee = currentUser()", "does not exist"),
        ("updated >= startOfDay()", "not supported"),
        ("status WAS Open", "not supported"),
        ('updated >= "yesterday"', "invalid"),
        ("project = OPS ORDER BY summary", "sort"),
        ("project = (", "expecting"),
    ],
)
def test_unsupported_jql_is_refused(jql: str, message: str) -> None:
    with pytest.raises(JqlError, match=message):
        parse_jql(jql, tz=ZoneInfo("UTC"), now=NOW)


def test_index_pages_a_window_in_order() -> None:
    items = generate_items(Kind.TASK, 500, seed=2, platform="jira")
    index = SearchIndex(Renderer(cloud=True, base_url="http://x", tz=ZoneInfo("UTC")))
    index.load(items)
    ordered = sorted(items, key=lambda i: i.updated)
    lo_ms = int(ordered[100].updated.timestamp() * 1000)
    hi_ms = int(ordered[400].updated.timestamp() * 1000)
    query = parse_jql(
        f"updated >= {lo_ms} AND updated < {hi_ms} ORDER BY updated ASC, id ASC",
        tz=ZoneInfo("UTC"),
        now=NOW,
    )
    seen: list[int] = []
    after = None
    while True:
        hits, more = index.page_after(query, after, 37)
        seen.extend(doc.updated for doc, _ in hits)
        if not more:
            break
        after = (hits[-1][0].updated, hits[-1][0].id)
    assert seen == sorted(seen)
    assert len(seen) == sum(1 for i in items if lo_ms <= int(i.updated.timestamp() * 1000) < hi_ms)
    page, total = index.page_at(query, 290, 50)
    assert total == len(seen)
    assert [d.updated for d, _ in page] == seen[290:340]
