"""The generator: reproducible, realistic in shape, and honest about its ground truth."""

from __future__ import annotations

import collections
import dataclasses
import re
from datetime import UTC, datetime

import pytest

from itsm_bridge.sandbox import vocab
from itsm_bridge.sandbox.generator import END, generate_company, generate_items, iter_items
from itsm_bridge.sandbox.model import Company, TruthItem
from itsm_bridge.schema import Kind, Label, Status

SN_NUMBER = re.compile(r"^(INC|PRB|CHG|RITM|PRJ|PRJTASK)\d{7}$")
JIRA_KEY = re.compile(r"^(SHOP|MOB|DATA|OPS|ITSM)-\d+$")


def test_same_seed_same_company_and_different_seed_differs() -> None:
    a, b, c = (generate_company(s, scale=0.2) for s in (3, 3, 4))
    assert a.items == b.items
    assert [i.uid for i in a] == [i.uid for i in b]
    assert a.items != c.items
    assert {i.title for i in a} != {i.title for i in c}


def test_generate_items_is_reproducible_and_lazy_matches_eager() -> None:
    eager = generate_items(Kind.CHANGE, 300, seed=5)
    assert eager == generate_items(Kind.CHANGE, 300, seed=5)
    assert eager != generate_items(Kind.CHANGE, 300, seed=6)
    assert list(iter_items(Kind.CHANGE, 300, seed=5)) == eager
    it = iter_items(Kind.INCIDENT, 10**9, seed=1)  # lazy: nothing is built up front
    assert next(it).number == "INC0010001"


@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("platform", ["servicenow", "jira"])
def test_generate_items_volume_every_kind_and_platform(kind: Kind, platform: str) -> None:
    items = generate_items(kind, 2000, seed=2, platform=platform)
    assert len(items) == 2000
    assert len({i.number for i in items}) == 2000
    assert len({i.uid for i in items}) == 2000
    assert {i.kind for i in items} == {kind}
    assert {i.platform for i in items} == {platform}
    pattern = SN_NUMBER if platform == "servicenow" else JIRA_KEY
    assert all(pattern.match(i.number) for i in items)
    assert [i.created for i in items] == sorted(i.created for i in items)
    if platform == "jira":
        assert all(i.issue_type for i in items)


def test_fifty_thousand_items() -> None:
    items = generate_items(Kind.INCIDENT, 50_000, seed=9)
    assert len({i.number for i in items}) == 50_000
    assert items[-1].number == "INC0060000"


def test_demo_company_size_and_mix(company: Company) -> None:
    assert 4000 <= len(company) <= 6000
    kinds = collections.Counter((i.platform, i.kind) for i in company)
    for platform in ("servicenow", "jira"):
        for kind in Kind:
            assert kinds[platform, kind] > 0, (platform, kind)
    assert kinds["servicenow", Kind.INCIDENT] > kinds["servicenow", Kind.CHANGE]
    jira_types = collections.Counter(i.issue_type for i in company.for_platform("jira"))
    for issue_type in ("Epic", "Story", "Task", "Bug", "Sub-task", "Incident", "Service Request"):
        assert jira_types[issue_type] > 0, issue_type
    assert all(i.issue_type is None for i in company.for_platform("servicenow"))
    assert {i.team for i in company} == set(vocab.TEAMS)
    assert {i.service for i in company} == set(vocab.SERVICES)
    assert 50 <= len(company.people) <= 70
    assert len({i.number for i in company}) == len(company)
    assert len({i.uid for i in company}) == len(company)


def test_numbers_follow_platform_conventions_and_creation_order(company: Company) -> None:
    for item in company:
        pattern = SN_NUMBER if item.platform == "servicenow" else JIRA_KEY
        assert pattern.match(item.number), item.number
    numbers = {i.number for i in company}
    for first in ("INC0010001", "PRB0040001", "CHG0030001", "RITM0010001", "PRJ0001001"):
        assert first in numbers
    assert "PRJTASK0001001" in numbers
    incidents = sorted(company.by_kind(Kind.INCIDENT), key=lambda i: i.number)
    sn = [i.created for i in incidents if i.platform == "servicenow"]
    assert sn == sorted(sn)


def test_parent_links_resolve_and_children_follow_parents(company: Company) -> None:
    by_number = company.by_number()
    for item in company:
        for link in (item.parent, item.problem, item.linked_project):
            if link is not None:
                assert link in by_number, (item.number, link)
        if item.parent is None:
            continue
        parent = by_number[item.parent]
        assert parent.created <= item.created
        assert parent.platform == item.platform
        if item.kind is Kind.TASK and item.issue_type != "Sub-task":
            assert parent.kind is Kind.PROJECT
        if item.issue_type == "Sub-task":
            assert parent.kind is Kind.TASK
            assert parent.issue_type != "Sub-task"
        if item.kind is Kind.INCIDENT:
            assert parent.kind is Kind.INCIDENT
    tasks = company.by_kind(Kind.TASK)
    sn_tasks = [t for t in tasks if t.platform == "servicenow"]
    assert all(t.parent and t.parent.startswith("PRJ") for t in sn_tasks)
    incidents = company.by_kind(Kind.INCIDENT)
    child_share = sum(1 for i in incidents if i.parent) / len(incidents)
    assert 0.03 <= child_share <= 0.07
    assert any(i.problem for i in incidents)
    linked = [by_number[c.linked_project] for c in company if c.linked_project]
    assert linked
    assert all(p.kind is Kind.PROJECT for p in linked)


def test_children_mostly_inherit_the_parent_intent(company: Company) -> None:
    by_number = company.by_number()
    children = [i for i in company if i.kind is Kind.TASK and i.parent]
    same = sum(1 for c in children if c.truth is by_number[c.parent or ""].truth)
    assert 0.85 <= same / len(children) <= 0.97
    neutral = set(vocab.CHILD_NEUTRAL_TITLES)
    assert sum(1 for c in children if c.title in neutral) > len(children) * 0.3


def test_datetimes_are_aware_utc_and_ordered(company: Company) -> None:
    assert company.end == END == datetime(2026, 10, 1, tzinfo=UTC)
    assert company.start == datetime(2025, 10, 1, tzinfo=UTC)
    for item in company:
        for value in (item.created, item.updated, item.resolved, item.planned_start):
            if value is not None:
                assert value.tzinfo is UTC
        assert company.start <= item.created < item.updated <= company.end
        if item.status in (Status.RESOLVED, Status.CLOSED):
            assert item.resolved is not None
            assert item.created < item.resolved <= item.updated
        else:
            assert item.resolved is None
        if item.planned_start is not None:
            assert item.planned_end is not None
            assert item.planned_start < item.planned_end
    assert sum(1 for i in company if i.resolved is None and i.status is not Status.CANCELLED) > 50


def test_seasonality_peaks_in_november_and_december(company: Company) -> None:
    per_month = collections.Counter(i.created.month for i in company.by_kind(Kind.INCIDENT))
    quiet = sum(per_month[m] for m in (2, 3, 4)) / 3
    assert per_month[12] > 1.4 * quiet
    assert per_month[11] > 1.25 * quiet
    changes = collections.Counter(i.created.month for i in company.by_kind(Kind.CHANGE))
    assert changes[12] < changes[10]  # change freeze over peak season


def test_effort_ranges_by_kind(company: Company) -> None:
    for item in company:
        if item.kind is Kind.PROJECT:
            assert item.effort_hours is None
            assert item.estimate_hours is not None
            assert item.estimate_hours > 0
            continue
        hours = item.effort_hours if item.effort_hours is not None else item.estimate_hours
        if item.kind is Kind.INCIDENT:
            assert item.effort_hours is not None
            assert 0.25 <= item.effort_hours <= 8
        elif item.kind is Kind.REQUEST:
            assert item.effort_hours is not None
            assert 0.25 <= item.effort_hours <= 4
        elif item.kind is Kind.CHANGE:
            assert hours is not None
            assert 0.25 <= hours <= 40
        elif item.kind is Kind.TASK:
            assert item.estimate_hours is not None
            assert 2 <= item.estimate_hours <= 60
            assert item.effort_hours is None or 0.25 <= item.effort_hours <= 60
    tasks = company.by_kind(Kind.TASK)
    assert any(t.effort_hours is None for t in tasks)  # estimated only
    assert any(t.effort_hours is not None for t in tasks)  # measured


def test_change_and_project_fields(company: Company) -> None:
    changes = company.by_kind(Kind.CHANGE)
    assert {c.change_type for c in changes} == {"normal", "standard", "emergency"}
    assert {c.risk for c in changes} == {"low", "moderate", "high"}
    assert all(c.planned_start is not None for c in changes)
    assert {c.close_code for c in changes if c.status is Status.CLOSED} >= {"successful"}
    projects = company.by_kind(Kind.PROJECT)
    with_investment = [p for p in projects if p.investment]
    assert 0.4 <= len(with_investment) / len(projects) <= 0.8
    for project in with_investment:
        if project.platform == "servicenow":
            inv = project.investment
            assert inv["portfolio_category"] in ("run", "grow", "transform")
            assert inv["investment_class"] in ("run", "change")
            assert isinstance(inv["business_case"], bool)
            assert inv["investment_type"]
            assert inv["business_unit"]
        else:
            assert project.investment["category_raw"] in ("Run", "Grow", "Transform")


def test_ground_truth_mix_by_kind(company: Company) -> None:
    def share(kind: Kind) -> float:
        items = company.by_kind(kind)
        return sum(1 for i in items if i.truth is Label.BUSINESS) / len(items)

    assert share(Kind.INCIDENT) < 0.03
    assert share(Kind.PROBLEM) == 0.0
    assert share(Kind.REQUEST) < 0.3
    assert 0.15 < share(Kind.CHANGE) < 0.5
    assert 0.2 < share(Kind.TASK) < 0.7
    assert share(Kind.PROJECT) > 0.5
    run_projects = [p.title for p in company.by_kind(Kind.PROJECT) if p.truth is Label.INWARD]
    assert run_projects
    assert {i.truth for i in company} == {Label.BUSINESS, Label.INWARD}
    assert 0.28 <= company.business_effort_share() <= 0.45


def test_truth_follows_intent_not_words(company: Company) -> None:
    labels = {intent.name: intent.label for intent in vocab.INTENTS}
    assert all(i.truth is labels[i.intent] for i in company)
    titles = collections.defaultdict(set)
    for item in company:
        titles[item.title].add(item.truth)
    both_ways = [t for t, labels_ in titles.items() if len(labels_) == 2]
    assert both_ways  # neutral and vague titles occur under both labels


CONFOUNDERS = {
    # inward work that names business things
    "Patch the CRM servers used by sales": Label.INWARD,
    "Renew TLS certificate for the Online Store": Label.INWARD,
    "Restore checkout after payment gateway timeout": Label.INWARD,
    # business work that names technical things
    "Upgrade checkout to support Apple Pay": Label.BUSINESS,
    "Migrate loyalty API to Kubernetes to launch points-for-reviews": Label.BUSINESS,
}


def test_confounder_titles_exist_with_the_intents_label() -> None:
    seen: dict[str, set[Label]] = collections.defaultdict(set)
    for seed in (7, 8, 9):
        for item in generate_company(seed):
            if item.title in CONFOUNDERS:
                seen[item.title].add(item.truth)
    for kind in (Kind.CHANGE, Kind.TASK, Kind.INCIDENT):
        for item in generate_items(kind, 20_000, seed=1):
            if item.title in CONFOUNDERS:
                seen[item.title].add(item.truth)
    assert set(seen) == set(CONFOUNDERS)
    for title, label in CONFOUNDERS.items():
        assert seen[title] == {label}, title


def test_titles_are_varied(company: Company) -> None:
    titles = [i.title for i in company if i.parent is None]
    assert len(set(titles)) > 0.6 * len(titles)
    assert sum(1 for t in titles if re.search(r"(store \d{4}|Store #\d+|ST\d{4})", t)) > 20
    assert sum(1 for i in company if re.search(r"-(prd|stg)-\d\d", i.title + i.description)) > 20
    assert all(i.title and "{" not in i.title and "}" not in i.title for i in company)
    assert all("{" not in i.description for i in company)


PAYLOAD_FIELDS = [
    f.name for f in dataclasses.fields(TruthItem) if f.name not in ("truth", "intent", "kind")
]
LEAKS = re.compile(r"business-facing|inward-facing|business_facing|inward_facing|ground.truth")


def test_truth_never_appears_in_payload_facing_fields(company: Company) -> None:
    for item in company:
        for name in PAYLOAD_FIELDS:
            value = getattr(item, name)
            assert not LEAKS.search(repr(value)), (item.number, name)
            if isinstance(value, str):
                assert value not in {i.name for i in vocab.INTENTS}, (item.number, name)
        assert "truth" not in item.investment
        assert "label" not in item.investment
