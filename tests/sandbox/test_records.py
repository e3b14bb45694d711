"""MutableStore: records changing while a client pages, shared by the platform fakes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from itsm_bridge.sandbox.faults import FaultPlan
from itsm_bridge.sandbox.generator import generate_items
from itsm_bridge.sandbox.records import MutableStore, acl_hidden
from itsm_bridge.schema import Kind

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


def _items(n: int = 500) -> list:  # type: ignore[type-arg]
    return generate_items(Kind.INCIDENT, n, seed=3)


def test_touch_makes_a_new_version_updated_now() -> None:
    items = _items()
    store = MutableStore(items, clock=lambda: NOW)
    before = store.revision
    new = store.touch(items[0].number)
    assert new.updated == NOW
    assert new.version == 2
    assert store.get(items[0].number) == new
    assert store.revision == before + 1
    assert [e.action for e in store.events] == ["update"]
    # A clock behind the record's own timestamp never makes a version older.
    past = MutableStore(items, clock=lambda: datetime(2000, 1, 1, tzinfo=UTC))
    assert past.touch(items[1].number).updated == items[1].updated + timedelta(seconds=1)
    with pytest.raises(KeyError):
        store.touch("INC9999999")


def test_delete_and_census() -> None:
    items = _items()
    store = MutableStore(items, clock=lambda: NOW)
    gone = store.delete(items[5].number)
    assert gone == items[5]
    assert store.delete(items[5].number) is None
    assert items[5].number not in store
    assert store.get(items[5].number) is None
    assert store.deleted() == {items[5].number: NOW}
    assert len(store.current()) == len(items) - 1


def test_acl_hiding_is_seeded_stable_and_near_the_share() -> None:
    items = _items(4000)
    plan = FaultPlan(acl_hidden_share=0.1)
    store = MutableStore(items, faults=plan, seed=5)
    hidden = [i for i in items if store.is_hidden(i)]
    assert 300 < len(hidden) < 500
    assert {i.uid for i in hidden} == {
        i.uid for i in MutableStore(items, faults=plan, seed=5).current() if store.is_hidden(i)
    }
    assert {i.uid for i in hidden} != {i.uid for i in items if acl_hidden(i.uid, 0.1, seed=6)}
    assert len(store.visible()) == len(items) - len(hidden)
    assert len(store.current()) == len(items)
    assert not any(acl_hidden(i.uid, 0.0) for i in items)


def test_churn_follows_the_plan_and_is_reproducible() -> None:
    items = _items()
    plan_args = {"seed": 4, "p_update_during_paging": 0.5, "p_delete_during_paging": 0.1}

    def run() -> list[tuple[str, str]]:
        store = MutableStore(items, faults=FaultPlan(**plan_args), seed=4, clock=lambda: NOW)  # type: ignore[arg-type]
        for _ in range(200):
            store.churn()
        return [(e.action, e.number) for e in store.events]

    first = run()
    assert first == run()
    updates = sum(1 for a, _ in first if a == "update")
    deletes = sum(1 for a, _ in first if a == "delete")
    assert 70 < updates < 130
    assert 5 < deletes < 40


def test_churn_only_touches_candidates_and_nothing_without_a_plan() -> None:
    items = _items()
    store = MutableStore(items, faults=FaultPlan(p_update_during_paging=1.0), clock=lambda: NOW)
    page = [i.number for i in items[:10]]
    for _ in range(50):
        (event,) = store.churn(candidates=page)
        assert event.number in page
    assert MutableStore(items).churn() == []


def test_sorted_views_are_cached_until_a_change() -> None:
    items = _items()
    store = MutableStore(items, clock=lambda: NOW)
    view = store.sorted_by("updated", "uid")
    assert view is store.sorted_by("updated", "uid")
    assert [i.updated for i in view] == sorted(i.updated for i in items)
    store.touch(view[0].number)
    fresh = store.sorted_by("updated", "uid")
    assert fresh is not view
    assert fresh[-1].number == view[0].number


def test_duplicate_numbers_are_refused() -> None:
    items = _items(3)
    with pytest.raises(ValueError, match="duplicate"):
        MutableStore([*items, items[0]])


def test_concurrent_churn_and_reads_stay_consistent() -> None:
    items = _items(2000)
    store = MutableStore(
        items, faults=FaultPlan(p_update_during_paging=1.0, p_delete_during_paging=0.2)
    )
    errors: list[BaseException] = []

    def churner() -> None:
        for _ in range(300):
            store.churn()

    def reader() -> None:
        try:
            for _ in range(50):
                view = store.sorted_by("updated", "uid", visible_only=True)
                assert len({i.number for i in view}) == len(view)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=churner) for _ in range(3)]
    threads += [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(store.current()) + len(store.deleted()) == len(items)
