"""Adaptive page size: grows while round trips dominate, within memory; halves on cancellation."""

from __future__ import annotations

from itsm_bridge_servicenow.paging import PageSize

from itsm_bridge import Kind
from itsm_bridge.sandbox import FaultPlan, generate_items

from .conftest import SandboxFactory, connect, pulled_ids

ROW = 2_000  # bytes per row of a page


def _size(**kw: object) -> PageSize:
    options: dict[str, object] = {"maximum": 10_000, "memory": 100_000_000, "copies": 10.0}
    options.update(kw)
    return PageSize(1000, 10, **options)  # type: ignore[arg-type]


def test_grows_while_the_round_trip_dominates() -> None:
    size = _size()
    size.observe(1000, 1000, elapsed=0.25, nbytes=1000 * ROW, round_trip=0.2)
    assert size.current == 2000
    size.observe(1000, 1000, elapsed=0.25, nbytes=1000 * ROW, round_trip=0.2)
    assert size.current == 2000, "a page read at an older size must not grow it again"
    size.observe(2000, 2000, elapsed=0.3, nbytes=2000 * ROW, round_trip=0.2)
    assert size.current == 4000
    assert size.growths == 2


def test_stays_when_rows_dominate_or_nothing_is_known() -> None:
    size = _size()
    size.observe(1000, 1000, elapsed=0.5, nbytes=1000 * ROW, round_trip=0.2)  # rows: 0.3 s
    assert size.current == 1000
    size.observe(1000, 1000, elapsed=0.25, nbytes=1000 * ROW, round_trip=None)
    assert size.current == 1000, "no round trip measured yet"
    size.observe(1000, 400, elapsed=0.21, nbytes=400 * ROW, round_trip=0.2)
    assert size.current == 1000, "a mostly empty page is no evidence"
    bare = _size()
    bare.observe(1000, 1000, elapsed=0.21, nbytes=None, round_trip=0.2)
    assert bare.current == 1000, "no measured bytes: no memory bound to grow within"
    fixed = PageSize(1000, 10)
    fixed.observe(1000, 1000, elapsed=0.21, nbytes=1000 * ROW, round_trip=0.2)
    assert fixed.current == 1000, "without a maximum the size never grows"


def test_growth_is_bounded_by_memory_and_maximum() -> None:
    size = _size(memory=30_000_000)  # 30 MB / (2000 B x 10 copies) = 1500 rows
    for _ in range(5):
        size.observe(size.current, size.current, 0.21, size.current * ROW, 0.2)
    assert size.current == 1500
    assert size.memory_cap() == 1500
    capped = _size(maximum=3000)
    for _ in range(5):
        capped.observe(capped.current, capped.current, 0.21, capped.current * ROW, 0.2)
    assert capped.current == 3000


def test_never_grows_back_into_a_cancelled_size() -> None:
    size = _size()
    size.observe(1000, 1000, 0.21, 1000 * ROW, 0.2)
    assert size.current == 2000
    assert size.halve(2000)
    assert size.current == 1000
    size.observe(1000, 1000, 0.21, 1000 * ROW, 0.2)
    assert size.current == 1000


def test_a_cancelled_grown_size_falls_back_to_the_last_good_one() -> None:
    size = _size(memory=33_000_000)  # 33 MB / (2000 B x 10 copies) = 1650 rows
    size.observe(1000, 1000, 0.21, 1000 * ROW, 0.2)
    assert size.current == 1650
    assert size.halve(1650)
    assert size.current == 1000, "the last size read without a cancel, not 825"
    assert size.halve(1000)
    assert size.current == 500


def _data(request: object) -> bool:
    path = getattr(request, "path", "")
    return isinstance(path, str) and "/api/now/" in path


def test_a_far_instance_gets_larger_pages_and_every_record_once(
    sandbox: SandboxFactory,
) -> None:
    items = generate_items(Kind.INCIDENT, 3_000, seed=9)
    faults = FaultPlan(
        seed=2, latency=0.05, acl_hidden_share=0.05, p_update_during_paging=0.01, applies_to=_data
    )
    box = sandbox(items, faults=faults)
    conn = connect(box, page_size=100, max_workers=2)
    ids = pulled_ids(conn.pull_pages(Kind.INCIDENT))
    assert len(ids) == len(set(ids))
    assert set(ids) == {t.uid for t in box.visible_items()}
    limits = [int(p["sysparm_limit"]) for p in box.data_requests("incident")]
    assert max(limits) > 100, f"pages never grew: {limits}"
    assert conn.report()["page_size"]["incident"] > 100

    fixed = connect(box, page_size=100, max_workers=2, adaptive_page_size=False)
    before = len(box.data_requests("incident"))
    again = pulled_ids(fixed.pull_pages(Kind.INCIDENT))
    assert set(again) == {t.uid for t in box.visible_items()}
    assert {int(p["sysparm_limit"]) for p in box.data_requests("incident")[before:]} <= {1, 100}


def test_the_memory_budget_bounds_the_growth(sandbox: SandboxFactory) -> None:
    items = generate_items(Kind.INCIDENT, 1_500, seed=9)
    faults = FaultPlan(seed=2, latency=0.05, applies_to=_data)
    box = sandbox(items, faults=faults)
    conn = connect(box, page_size=50, max_workers=2, page_memory_mb=1.0)
    ids = pulled_ids(conn.pull_pages(Kind.INCIDENT))
    assert set(ids) == {t.uid for t in box.visible_items()}
    # ~2 KB per row, 2 workers + 11.5 copies: 1 MB holds fewer than 50 rows' pages in flight.
    limits = {int(p["sysparm_limit"]) for p in box.data_requests("incident")}
    assert limits <= {1, 50}, limits
