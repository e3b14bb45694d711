"""The effort convention shared by the ground truth and the report."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from itsm_bridge.sandbox.model import Company, TruthItem, counted_effort, item_effort
from itsm_bridge.schema import Kind, Label, Status

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _item(
    number: str,
    truth: Label,
    *,
    effort: float | None = None,
    estimate: float | None = None,
    parent: str | None = None,
    kind: Kind = Kind.TASK,
) -> TruthItem:
    return TruthItem(
        uid=number.lower(), number=number, kind=kind, platform="servicenow", title=number,
        description="", status=Status.CLOSED, priority=3, team="t", assignee=None,
        requester=None, service=None, category=None, created=T0,
        updated=T0 + timedelta(hours=1), resolved=T0 + timedelta(hours=1), effort_hours=effort,
        estimate_hours=estimate, truth=truth, parent=parent,
    )  # fmt: skip


B, IN = Label.BUSINESS, Label.INWARD


def _company(items: list[TruthItem]) -> Company:
    return Company("t", 0, T0, T0, items, [], {}, [])


def test_item_effort_prefers_measured_then_planned() -> None:
    assert item_effort(_item("A", B, effort=3, estimate=10)) == 3
    assert item_effort(_item("A", B, effort=0.0, estimate=10)) == 0.0  # measured zero is zero
    assert item_effort(_item("A", B, estimate=10)) == 10
    assert item_effort(_item("A", B)) == 0.0


def test_parents_with_children_present_are_not_counted() -> None:
    project = _item("PRJ1", B, estimate=100, kind=Kind.PROJECT)
    tasks = [
        _item("T1", B, effort=10, estimate=8, parent="PRJ1"),
        _item("T2", B, estimate=6, parent="PRJ1"),
        _item("T3", IN, effort=4, parent="PRJ1"),  # a child with its own intent
    ]
    incident = _item("INC1", IN, effort=20, kind=Kind.INCIDENT)
    everything = [project, *tasks, incident]
    counted = {item.number: hours for item, hours in counted_effort(everything)}
    assert counted == {"PRJ1": 0.0, "T1": 10, "T2": 6, "T3": 4, "INC1": 20}
    assert _company(everything).business_effort_share() == pytest.approx(16 / 40)
    # Without its children the project's plan is all the evidence there is, so it counts.
    assert _company(everything).business_effort_share([project, incident]) == pytest.approx(
        100 / 120
    )
    # A child whose parent is absent counts as usual.
    assert _company(everything).business_effort_share([tasks[0], incident]) == pytest.approx(
        10 / 30
    )


def test_chains_count_only_the_leaves() -> None:
    epic = _item("E", B, estimate=50, kind=Kind.PROJECT)
    story = _item("S", B, effort=20, parent="E")
    sub = _item("S1", B, effort=5, parent="S")
    other = _item("X", IN, effort=5)
    assert _company([epic, story, sub, other]).business_effort_share() == pytest.approx(0.5)


def test_empty_and_zero_effort() -> None:
    assert _company([]).business_effort_share() == 0.0
    assert _company([_item("A", B)]).business_effort_share() == 0.0


def test_generated_company_share_uses_the_convention(company: Company) -> None:
    by_number = company.by_number()
    parents = {i.parent for i in company if i.parent}
    business = total = 0.0
    for item in company:
        if item.number in parents:
            continue
        hours = item_effort(item)
        total += hours
        business += hours if item.truth is B else 0.0
    assert company.business_effort_share() == pytest.approx(business / total)
    naive = sum(item_effort(i) for i in company)
    assert naive > total  # the convention matters: plans would otherwise be double counted
    assert all(by_number[p].estimate_hours for p in parents if by_number[p].kind is Kind.PROJECT)


def test_touched_makes_a_newer_version() -> None:
    item = _item("A", B, effort=1)
    later = item.touched(T0 + timedelta(days=1), note="edited")
    assert later.version == 2
    assert later.updated == T0 + timedelta(days=1)
    assert later.description.endswith("edited")
    assert replace(later, version=1, updated=item.updated, description="") == item
