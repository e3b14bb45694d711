"""A deterministic, seeded generator of Northwind Outfitters' IT work.

Northwind Outfitters is a fictional omnichannel outdoor-gear retailer (stores, an online store, a
mobile app, a loyalty programme, warehouses). :func:`generate_company` produces ``months`` of its
work ending on a fixed date (2026-10-01 UTC, so results never depend on the clock): ServiceNow
incidents, problems, changes, requests and portfolio projects with their tasks, and Jira epics
with stories, tasks, bugs and sub-tasks, plus a few service-management issues on Jira.

Every record starts from a latent *intent* (see :mod:`itsm_bridge.sandbox.vocab`): what the work
changes and who benefits. The ground-truth label is the intent's label, and the title is drawn
afterwards from that intent's templates, many of which are confounders on purpose. Children of a
project or epic mostly share its intent and often have neutral titles, so a scorer has to use the
parent. The label is kept on :class:`TruthItem` only; fakes never render it.

Reproducibility: every random choice comes from a ``random.Random`` seeded with a string derived
from the seed (string seeds hash with SHA-512, independent of ``PYTHONHASHSEED``).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import random
import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from itsm_bridge.sandbox import vocab
from itsm_bridge.sandbox.model import Company, TruthItem
from itsm_bridge.schema import Kind, Label, Status

__all__ = ["END", "generate_company", "generate_items", "iter_items"]

END = datetime(2026, 10, 1, tzinfo=UTC)
"""The fixed end of every generated period (exclusive)."""

SERVICENOW, JIRA = "servicenow", "jira"

# ServiceNow numbers: prefix and first number (INC0010001, PRB0040001, ...).
_SN_NUMBERING: dict[Kind, tuple[str, int]] = {
    Kind.INCIDENT: ("INC", 10001),
    Kind.PROBLEM: ("PRB", 40001),
    Kind.CHANGE: ("CHG", 30001),
    Kind.REQUEST: ("RITM", 10001),
    Kind.PROJECT: ("PRJ", 1001),
    Kind.TASK: ("PRJTASK", 1001),
}
_JIRA_ITSM_TYPE = {
    Kind.INCIDENT: "Incident",
    Kind.REQUEST: "Service Request",
    Kind.CHANGE: "Change",
    Kind.PROBLEM: "Problem",
}

# Which intents each kind of work comes from, and how often (relative weights).
_MIX: dict[str, dict[str, float]] = {
    "incident": {
        "restore": 88,
        "defect_fix": 4,
        "capacity": 1.5,
        "backup": 1,
        "certificates": 1,
        "security_hygiene": 3,
        "customer_feature": 0.8,
    },
    "problem": {"restore": 85, "defect_fix": 9, "security_hygiene": 4},
    "change": {
        "patching": 18,
        "upgrade_currency": 12,
        "capacity": 6,
        "backup": 4,
        "certificates": 6,
        "monitoring": 4,
        "security_hygiene": 8,
        "cost_control": 3,
        "internal_tooling": 3,
        "tech_debt": 2,
        "build_test": 1,
        "defect_fix": 4,
        "customer_feature": 9,
        "loyalty_growth": 3,
        "store_capability": 4,
        "warehouse_capability": 3,
        "finance_capability": 3,
        "process_automation": 2,
        "business_analytics": 1,
        "market_onboarding": 3,
    },
    "request": {
        "access_request": 46,
        "hardware_request": 26,
        "restore": 3,
        "backup": 3,
        "security_hygiene": 2,
        "cost_control": 2,
        "internal_tooling": 2,
        "upgrade_currency": 1,
        "patching": 0.5,
        "customer_feature": 1.5,
        "loyalty_growth": 1,
        "store_capability": 3,
        "warehouse_capability": 1,
        "finance_capability": 2.5,
        "process_automation": 2.5,
        "business_analytics": 4,
        "market_onboarding": 2,
    },
    "project": {
        "customer_feature": 3,
        "loyalty_growth": 1,
        "store_capability": 3,
        "warehouse_capability": 2.5,
        "finance_capability": 2.5,
        "process_automation": 2.5,
        "business_analytics": 2,
        "market_onboarding": 3,
        "upgrade_currency": 6,
        "security_hygiene": 3,
        "backup": 1,
        "cost_control": 1.5,
        "internal_tooling": 1.5,
        "monitoring": 1,
        "capacity": 1,
        "patching": 1,
        "tech_debt": 0.5,
    },
    "task": {
        "defect_fix": 45,
        "build_test": 14,
        "tech_debt": 14,
        "customer_feature": 12,
        "security_hygiene": 5,
        "monitoring": 5,
        "business_analytics": 3,
        "restore": 2,
    },
}
# Jira epics per delivery project (product work is mostly business, OPS mostly inward).
_EPIC_MIX: dict[str, dict[str, float]] = {
    "SHOP": {
        "customer_feature": 5,
        "loyalty_growth": 2,
        "market_onboarding": 1.5,
        "process_automation": 1,
        "tech_debt": 1.5,
        "upgrade_currency": 1,
        "security_hygiene": 0.5,
    },
    "MOB": {"customer_feature": 5, "loyalty_growth": 2, "upgrade_currency": 1.5, "tech_debt": 1},
    "DATA": {"business_analytics": 6, "tech_debt": 1.5, "cost_control": 1, "backup": 0.5},
    "OPS": {
        "monitoring": 2,
        "internal_tooling": 2,
        "capacity": 1.5,
        "security_hygiene": 2,
        "cost_control": 1,
        "backup": 1,
        "upgrade_currency": 1.5,
        "process_automation": 0.5,
    },
}

# Per calendar month: how busy each stream is (peak season Nov-Dec; change freeze; seasonal hires).
_SEASON: dict[str, tuple[float, ...]] = {
    "incident": (1.1, 0.9, 0.9, 0.95, 1.0, 1.0, 1.05, 1.0, 1.0, 1.05, 1.45, 1.6),
    "request": (1.0, 0.9, 1.0, 1.0, 1.1, 1.0, 0.9, 0.9, 1.15, 1.45, 1.3, 0.8),
    "change": (1.2, 1.0, 1.1, 1.0, 1.05, 1.0, 0.8, 0.85, 1.2, 1.35, 0.6, 0.4),
    "delivery": (1.0, 1.0, 1.05, 1.0, 1.0, 0.95, 0.8, 0.85, 1.15, 1.2, 0.85, 0.6),
}

# Volumes at scale 1.0 (about 4,800 items in all).
_VOLUME = {
    "sn_incident": 1900,
    "sn_problem": 70,
    "sn_change": 560,
    "sn_request": 1000,
    "sn_project": 28,
    "jira_epic": 40,
    "jira_loose_task": 120,
    "itsm_incident": 80,
    "itsm_request": 50,
    "itsm_change": 12,
    "itsm_problem": 8,
}

_INTENTS = {intent.name: intent for intent in vocab.INTENTS}
_FORMATTER = string.Formatter()


def _slots_of(template: str) -> tuple[str, ...]:
    return tuple(name for _, name, _, _ in _FORMATTER.parse(template) if name)


@dataclass(frozen=True)
class _Template:
    text: str
    service: str | None
    slots: tuple[str, ...]


def _pinned(text: str) -> _Template:
    service, _, body = text.rpartition("::")
    return _Template(body, service or None, _slots_of(body))


def _compile() -> dict[tuple[str, Kind], tuple[_Template, ...]]:
    table: dict[tuple[str, Kind], tuple[_Template, ...]] = {}
    for intent in vocab.INTENTS:
        for kind, texts in intent.titles.items():
            table[intent.name, kind] = tuple(_pinned(text) for text in texts)
    return table


_TITLES = _compile()
_DESCRIPTIONS = {
    intent.name: tuple(_pinned(d) for d in intent.descriptions) for intent in vocab.INTENTS
}
_NEUTRAL = tuple(_Template(t, None, _slots_of(t)) for t in vocab.CHILD_NEUTRAL_TITLES)
_VAGUE = tuple(_Template(t, None, _slots_of(t)) for t in vocab.VAGUE_TITLES)


@dataclass(slots=True)
class _Draft:
    """A record before numbering: numbers follow creation order, so they are assigned last."""

    kind: Kind
    platform: str
    intent: str
    title: str
    description: str
    service: str
    team: str
    priority: int
    created: datetime
    updated: datetime
    resolved: datetime | None
    status: Status
    effort_hours: float | None
    estimate_hours: float | None
    assignee: str | None
    requester: str | None
    category: str | None
    labels: tuple[str, ...] = ()
    issue_type: str | None = None
    project_key: str | None = None
    change_type: str | None = None
    risk: str | None = None
    close_code: str | None = None
    planned_start: datetime | None = None
    planned_end: datetime | None = None
    investment: dict[str, Any] = field(default_factory=dict)
    parent: _Draft | None = None
    problem: _Draft | None = None
    linked_project: _Draft | None = None
    number: str = ""


def _label(intent: str) -> Label:
    return _INTENTS[intent].label


@functools.cache
def _cumulative(weights_id: int) -> tuple[list[str], list[float]]:
    weights = _WEIGHT_TABLES[weights_id]
    return list(weights), list(itertools.accumulate(weights.values()))


_WEIGHT_TABLES: dict[int, dict[str, float]] = {
    id(table): table for table in (*_MIX.values(), *_EPIC_MIX.values())
}


def _weighted(rng: random.Random, weights: dict[str, float]) -> str:
    names, cumulative = _cumulative(id(weights))
    return rng.choices(names, cum_weights=cumulative)[0]


@functools.cache
def _candidates(intent: str, kind: Kind, service: str) -> tuple[_Template, ...]:
    """Templates of ``intent`` for ``kind`` that fit ``service`` (unpinned or pinned to it)."""
    return tuple(t for t in _TITLES[intent, kind] if t.service in (None, service))


@functools.cache
def _service_pool(
    intent: str, kind: Kind, allowed: tuple[str, ...] | None
) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Services this intent's work of this kind can be about, most usual first, with weights."""
    info = _INTENTS[intent]
    pool = [
        s
        for s in info.services
        if (allowed is None or s in allowed) and _candidates(intent, kind, s)
    ]
    if not pool:
        pinned = [t.service for t in _TITLES[intent, kind] if t.service is not None]
        pool = [s for s in dict.fromkeys(pinned) if allowed is None or s in allowed]
    if not pool:
        pool = list(allowed or info.services)
    # Earlier services in an intent's list are the usual ones: weight 1/(1 + rank/2).
    return tuple(pool), tuple(itertools.accumulate(1 / (1 + i / 2) for i in range(len(pool))))


def _quarter(hours: float) -> float:
    return max(0.25, round(hours * 4) / 4)


def _lognormal(rng: random.Random, median: float, sigma: float, lo: float, hi: float) -> float:
    return min(hi, max(lo, median * math.exp(rng.gauss(0.0, sigma))))


def _uid(seed: int, number: str) -> str:
    return hashlib.md5(f"{seed}:{number}".encode(), usedforsecurity=False).hexdigest()


def _month_starts(end: datetime, months: int) -> list[datetime]:
    starts = []
    year, month = end.year, end.month
    for _ in range(months):
        month -= 1
        if month == 0:
            year, month = year - 1, 12
        starts.append(datetime(year, month, 1, tzinfo=UTC))
    return starts[::-1]


class _Writer:
    """Draws titles, descriptions, people, times and effort for one intent at a time."""

    def __init__(self, rng: random.Random, end: datetime) -> None:
        self.rng = rng
        self.end = end

    # -- text ---------------------------------------------------------------------------------
    def _fill(self, template: _Template, service: str) -> str:
        rng = self.rng
        values: dict[str, str] = {}
        for slot in template.slots:
            if slot == "svc":
                values[slot] = service
            elif slot == "person":
                values[slot] = rng.choice(vocab.PEOPLE)
            elif slot == "n":
                values[slot] = str(rng.randint(1, 4))
            elif slot == "month":
                values[slot] = rng.choice(vocab.MONTH_NAMES)
            else:
                values[slot] = rng.choice(vocab.SLOTS[slot])
        text = template.text.format_map(values) if values else template.text
        if "{" in text:  # a slot value with a slot of its own ("pick-to-light in the {dc}")
            text = self._fill(_Template(text, None, _slots_of(text)), service)
        return text

    def service_for(self, intent: str, kind: Kind, allowed: Sequence[str] | None = None) -> str:
        pool, cumulative = _service_pool(intent, kind, None if allowed is None else tuple(allowed))
        return self.rng.choices(pool, cum_weights=cumulative)[0]

    def title(self, intent: str, kind: Kind, service: str) -> str:
        rng = self.rng
        if rng.random() < 0.045:
            return self._fill(rng.choice(_VAGUE), service)
        template = rng.choice(_candidates(intent, kind, service) or _TITLES[intent, kind])
        text = self._fill(template, service)
        if kind is Kind.INCIDENT and rng.random() < 0.08:
            text = (
                rng.choice(("RE: ", "FW: ", "Urgent: ", "[{0}] ")).format(
                    rng.choice(vocab.SLOTS["store"])
                )
                + text
            )
        return text

    def neutral_title(self) -> str:
        return self.rng.choice(_NEUTRAL).text

    def description(self, intent: str, kind: Kind, service: str) -> str:
        rng = self.rng
        pool = [t for t in _DESCRIPTIONS[intent] if t.service in (None, service)]
        parts = [
            self._fill(t, service) for t in rng.sample(pool, k=min(len(pool), rng.randint(1, 2)))
        ]
        if kind in (Kind.INCIDENT, Kind.REQUEST) and rng.random() < 0.35:
            parts.append(
                rng.choice(
                    (
                        f"Location: {rng.choice(vocab.SLOTS['store'])}.",
                        f"CI: {rng.choice(vocab.SLOTS['host'])}",
                        f"Caller: {rng.choice(vocab.PEOPLE)}. Callback number on file.",
                        f"Ref {rng.choice(vocab.SLOTS['err'])}",
                        "Logged via the self-service portal.",
                    )
                )
            )
        return "\n".join(parts)

    def people(self, team: str) -> tuple[str | None, str]:
        rng = self.rng
        members = vocab.TEAM_MEMBERS[team]
        return rng.choice(members), rng.choice(vocab.PEOPLE)

    # -- time ---------------------------------------------------------------------------------
    def moment(self, lo: datetime, hi: datetime, *, office_hours: bool = True) -> datetime:
        """A creation time in [lo, hi): weekdays and office hours are likelier, like real queues."""
        rng = self.rng
        hi = min(hi, self.end - timedelta(hours=2))
        span = (hi - lo).total_seconds()
        if span <= 60:  # an empty window: as late as allowed, still before "now"
            return min(lo, self.end - timedelta(hours=1))
        for _ in range(4):
            when = lo + timedelta(seconds=int(rng.random() * span))
            weekend = when.weekday() >= 5
            night = not 7 <= when.hour < 19
            if not (office_hours and (weekend or night) and rng.random() < 0.7):
                return when
        return when

    def lifecycle(
        self,
        created: datetime,
        hours_to_finish: float,
        *,
        close_lag_days: float = 0.0,
        p_cancel: float = 0.0,
        p_hold: float = 0.1,
    ) -> tuple[Status, datetime, datetime | None]:
        """Status, updated and resolved, consistent with a fixed "now" at the period's end."""
        rng, end = self.rng, self.end
        if rng.random() < p_cancel:
            updated = min(
                created + timedelta(hours=rng.uniform(0.5, 72)), end - timedelta(minutes=1)
            )
            return Status.CANCELLED, max(updated, created + timedelta(minutes=1)), None
        resolved = created + timedelta(hours=hours_to_finish)
        if resolved < end:
            closed = resolved + timedelta(days=close_lag_days)
            if closed < end:
                return Status.CLOSED, closed, resolved
            updated = min(
                resolved + timedelta(minutes=rng.randint(1, 90)), end - timedelta(seconds=1)
            )
            return Status.RESOLVED, max(updated, resolved), resolved
        age = (end - created).total_seconds()
        updated = created + timedelta(seconds=max(60, int(age * rng.uniform(0.2, 0.98))))
        roll = rng.random()
        if age < 3 * 86400 and roll < 0.5:
            status = Status.NEW
        elif roll < 0.5 + p_hold:
            status = Status.ON_HOLD
        else:
            status = Status.IN_PROGRESS
        return status, min(updated, end - timedelta(seconds=1)), None


class _Company:
    """Builds one company: drafts first, then numbering in creation order, then TruthItems."""

    def __init__(self, seed: int, months: int, scale: float, end: datetime) -> None:
        self.seed = seed
        self.rng = random.Random(f"northwind:{seed}")
        self.w = _Writer(self.rng, end)
        self.end = end
        self.months = _month_starts(end, months)
        self.start = self.months[0]
        self.scale = scale
        self.drafts: list[_Draft] = []
        self.project_titles: set[str] = set()

    def count(self, name: str) -> int:
        return max(1, round(_VOLUME[name] * self.scale))

    def spread(self, total: int, stream: str) -> Iterator[tuple[datetime, datetime]]:
        """Month windows, one per record, in proportion to the stream's seasonality."""
        weights = [_SEASON[stream][m.month - 1] for m in self.months]
        scale = total / sum(weights)
        carry = 0.0
        for i, month_start in enumerate(self.months):
            month_end = self.months[i + 1] if i + 1 < len(self.months) else self.end
            carry += weights[i] * scale
            n = int(carry)
            carry -= n
            for _ in range(n):
                yield month_start, month_end

    # -- builders -----------------------------------------------------------------------------
    def add(self, draft: _Draft) -> _Draft:
        self.drafts.append(draft)
        return draft

    def build(self) -> Company:
        projects = self.sn_projects()
        problems = self.sn_problems()
        self.sn_incidents(problems)
        self.sn_changes(projects)
        self.sn_requests()
        self.jira_delivery()
        self.jira_itsm()
        items = self.finalize()
        return Company(
            name="Northwind Outfitters",
            seed=self.seed,
            start=self.start,
            end=self.end,
            items=items,
            teams=list(vocab.TEAMS),
            services=dict(vocab.SERVICES),
            people=list(vocab.PEOPLE),
        )

    def simple(
        self,
        kind: Kind,
        intent: str,
        created: datetime,
        *,
        platform: str = SERVICENOW,
        service: str | None = None,
        team: str | None = None,
    ) -> _Draft:
        """One incident, problem, request or change drawn for ``intent`` at ``created``."""
        return _simple(self.w, kind, intent, created, platform=platform, service=service, team=team)

    def sn_problems(self) -> list[_Draft]:
        out = []
        for lo, hi in self.spread(self.count("sn_problem"), "incident"):
            intent = _weighted(self.rng, _MIX["problem"])
            out.append(self.add(self.simple(Kind.PROBLEM, intent, self.w.moment(lo, hi))))
        return out

    def sn_incidents(self, problems: list[_Draft]) -> None:
        rng = self.rng
        majors: list[_Draft] = []
        by_service: dict[str, list[_Draft]] = {}
        for problem in problems:
            by_service.setdefault(problem.service, []).append(problem)
        total = self.count("sn_incident")
        n_children = round(total * 0.05)
        for lo, hi in self.spread(total - n_children, "incident"):
            intent = _weighted(rng, _MIX["incident"])
            draft = self.add(
                self.simple(Kind.INCIDENT, intent, self.w.moment(lo, hi, office_hours=False))
            )
            if draft.priority <= 2 and _label(intent) is Label.INWARD:
                majors.append(draft)
            for problem in by_service.get(draft.service, ()):
                window_end = problem.resolved or self.end
                if problem.created - timedelta(days=30) <= draft.created <= window_end:
                    if rng.random() < 0.3 and _label(intent) is Label.INWARD:
                        draft.problem = problem
                    break
        # ~5% child incidents: the same outage reported from another store or user.
        for _ in range(n_children if majors else 0):
            parent = rng.choice(majors)
            created = parent.created + timedelta(minutes=rng.randint(5, 360))
            if created >= self.end - timedelta(hours=2):
                created = parent.created + timedelta(minutes=1)
            child = self.simple(
                Kind.INCIDENT, parent.intent, created, service=parent.service, team=parent.team
            )
            child.parent = parent
            child.priority = max(parent.priority, child.priority)
            self.add(child)

    def sn_changes(self, projects: list[_Draft]) -> None:
        rng = self.rng
        for lo, hi in self.spread(self.count("sn_change"), "change"):
            created = self.w.moment(lo, hi)
            active = [
                p
                for p in projects
                if p.planned_start
                and p.planned_end
                and p.planned_start <= created <= p.planned_end
                and p.status is not Status.CANCELLED
            ]
            if active and rng.random() < 0.22:
                project = rng.choice(active)
                change = self.simple(Kind.CHANGE, project.intent, created, service=project.service)
                change.linked_project = project
            else:
                intent = _weighted(rng, _MIX["change"])
                change = self.simple(Kind.CHANGE, intent, created)
            self.add(change)

    def sn_requests(self) -> None:
        for lo, hi in self.spread(self.count("sn_request"), "request"):
            intent = _weighted(self.rng, _MIX["request"])
            self.add(self.simple(Kind.REQUEST, intent, self.w.moment(lo, hi)))

    def sn_projects(self) -> list[_Draft]:
        out = []
        for lo, hi in self.spread(self.count("sn_project"), "delivery"):
            intent = _weighted(self.rng, _MIX["project"])
            service = self.w.service_for(intent, Kind.PROJECT)
            project = self.project(intent, service, lo - timedelta(days=60), hi, SERVICENOW)
            out.append(project)
            self.children(project, self.rng.randint(8, 18), allowed=None)
        return out

    def project(
        self,
        intent: str,
        service: str,
        lo: datetime,
        hi: datetime,
        platform: str,
        project_key: str | None = None,
    ) -> _Draft:
        """A project or epic: a plan (estimate, planned dates); its children log the hours."""
        rng, w = self.rng, self.w
        created = w.moment(max(lo, self.start), hi)
        team = vocab.JIRA_PROJECTS[project_key][0] if project_key else vocab.SERVICE_TEAM[service]
        planned_start = created + timedelta(days=rng.randint(5, 30))
        planned_end = planned_start + timedelta(days=rng.randint(45, 240))
        status, updated, resolved = w.lifecycle(
            created,
            (planned_end - created).total_seconds() / 3600 * rng.uniform(0.95, 1.25),
            p_cancel=0.04,
            p_hold=0.1,
        )
        if status is Status.NEW and planned_start < self.end:
            status = Status.IN_PROGRESS
        assignee, requester = w.people(team)
        draft = _Draft(
            kind=Kind.PROJECT,
            platform=platform,
            intent=intent,
            title=self.project_title(intent, service, platform),
            description=w.description(intent, Kind.PROJECT, service),
            service=service,
            team=team,
            priority=rng.choice((2, 3, 3, 4)),
            created=created,
            updated=updated,
            resolved=resolved,
            status=status,
            effort_hours=None,
            estimate_hours=None,
            assignee=assignee,
            requester=requester,
            category=None,
            labels=_labels(rng, intent) if platform == JIRA else (),
            issue_type="Epic" if platform == JIRA else None,
            project_key=project_key,
            planned_start=planned_start,
            planned_end=planned_end,
        )
        if rng.random() < 0.6:
            draft.investment = _investment(rng, intent, platform)
        return self.add(draft)

    def project_title(self, intent: str, service: str, platform: str) -> str:
        """A title not yet used by another project; epics are often feature-sized."""
        title = ""
        for _ in range(8):
            kind = Kind.PROJECT
            if (
                platform == JIRA
                and self.rng.random() < 0.5
                and _candidates(intent, Kind.TASK, service)
            ):
                kind = Kind.TASK
            title = self.w.title(intent, kind, service)
            if title not in self.project_titles:
                break
        self.project_titles.add(title)
        return title

    def children(
        self, parent: _Draft, n: int, allowed: Sequence[str] | None, *, sub_tasks: bool = False
    ) -> None:
        """Tasks under a project or epic: ~90% share its intent, half with neutral titles."""
        rng, w = self.rng, self.w
        assert parent.planned_start is not None
        assert parent.planned_end is not None
        hi = min(parent.planned_end, parent.resolved or self.end, self.end - timedelta(hours=2))
        lo = max(parent.created + timedelta(minutes=1), min(parent.planned_start, hi))
        opposite = [
            name
            for name, i in _INTENTS.items()
            if i.label is not _label(parent.intent)
            and (name, Kind.TASK) in _TITLES
            and _candidates(name, Kind.TASK, parent.service)
        ]
        total_estimate = 0.0
        for _ in range(n):
            created = w.moment(lo, max(hi, lo + timedelta(hours=2)))
            if rng.random() < 0.9:
                intent, neutral = parent.intent, rng.random() < 0.5
            else:
                intent, neutral = rng.choice(opposite), False
            task = _task(w, intent, created, parent.platform, parent.service, parent.team, neutral)
            task.parent = parent
            task.project_key = parent.project_key
            if parent.platform == JIRA:
                task.issue_type = _jira_type(rng, intent)
                task.labels = _labels(rng, intent)
            self.settle(task, parent)
            total_estimate += task.estimate_hours or 0.0
            self.add(task)
            if sub_tasks and task.issue_type == "Story" and rng.random() < 0.15:
                for _ in range(rng.randint(1, 3)):
                    sub_created = min(
                        task.created + timedelta(hours=rng.randint(1, 48)), task.updated
                    )
                    sub = _task(w, intent, sub_created, JIRA, task.service, task.team, True)
                    sub.parent, sub.issue_type = task, "Sub-task"
                    sub.project_key = task.project_key
                    self.settle(sub, task)
                    total_estimate += sub.estimate_hours or 0.0
                    self.add(sub)
        parent.estimate_hours = round(total_estimate * rng.uniform(0.9, 1.3))

    def settle(self, child: _Draft, parent: _Draft) -> None:
        """A finished parent has no unfinished children: they were done or dropped with it."""
        rng = self.rng
        if child.resolved is None and child.status is Status.CANCELLED:
            return
        if parent.status is Status.CANCELLED and child.resolved is None:
            child.status, child.resolved = Status.CANCELLED, None
            child.updated = min(max(child.updated, parent.updated), self.end - timedelta(seconds=1))
            return
        if parent.resolved is None or (child.resolved and child.resolved <= parent.resolved):
            return
        resolved = parent.resolved - timedelta(hours=rng.uniform(1, 72))
        child.resolved = max(resolved, child.created + timedelta(hours=1))
        child.status = Status.CLOSED
        child.updated = max(child.resolved, min(parent.updated, self.end - timedelta(seconds=1)))
        if child.effort_hours is None and child.estimate_hours is not None:
            child.effort_hours = child.estimate_hours

    def jira_delivery(self) -> None:
        rng = self.rng
        keys = list(vocab.JIRA_PROJECTS)
        for lo, hi in self.spread(self.count("jira_epic"), "delivery"):
            key = rng.choices(keys, weights=(4, 2.5, 2, 2))[0]
            intent = _weighted(rng, _EPIC_MIX[key])
            service = self.w.service_for(intent, Kind.PROJECT, vocab.JIRA_PROJECTS[key][1])
            epic = self.project(intent, service, lo - timedelta(days=45), hi, JIRA, key)
            self.children(epic, rng.randint(6, 16), vocab.JIRA_PROJECTS[key][1], sub_tasks=True)
        # Work not under any epic: mostly bugs and upkeep, judged on its own.
        for lo, hi in self.spread(self.count("jira_loose_task"), "delivery"):
            key = rng.choices(keys, weights=(4, 2.5, 2, 2))[0]
            intent = _weighted(rng, _MIX["task"])
            team, services = vocab.JIRA_PROJECTS[key]
            service = self.w.service_for(intent, Kind.TASK, services)
            task = _task(self.w, intent, self.w.moment(lo, hi), JIRA, service, team, False)
            task.project_key, task.issue_type = key, _jira_type(rng, intent)
            task.labels = _labels(rng, intent)
            self.add(task)

    def jira_itsm(self) -> None:
        for kind, name, mix in (
            (Kind.INCIDENT, "itsm_incident", "incident"),
            (Kind.REQUEST, "itsm_request", "request"),
            (Kind.CHANGE, "itsm_change", "change"),
            (Kind.PROBLEM, "itsm_problem", "problem"),
        ):
            for lo, hi in self.spread(self.count(name), "incident"):
                intent = _weighted(self.rng, _MIX[mix])
                draft = self.simple(kind, intent, self.w.moment(lo, hi), platform=JIRA)
                draft.issue_type, draft.project_key = _JIRA_ITSM_TYPE[kind], "ITSM"
                draft.labels = _labels(self.rng, intent)
                self.add(draft)

    # -- numbering ----------------------------------------------------------------------------
    def finalize(self) -> list[TruthItem]:
        counters: dict[str, int] = {}
        for draft in sorted(self.drafts, key=lambda d: d.created):
            draft.number = _next_number(draft, counters)
        return [_freeze(d, self.seed) for d in sorted(self.drafts, key=lambda d: d.number)]


# -- one record ------------------------------------------------------------------------------


def _simple(
    w: _Writer,
    kind: Kind,
    intent: str,
    created: datetime,
    *,
    platform: str = SERVICENOW,
    service: str | None = None,
    team: str | None = None,
) -> _Draft:
    rng = w.rng
    service = service or w.service_for(intent, kind)
    owner = vocab.SERVICE_TEAM[service]
    if team is None:
        desk_share = {Kind.INCIDENT: 0.45, Kind.REQUEST: 0.7}.get(kind, 0.0)
        team = "Service Desk" if rng.random() < desk_share else owner
    if intent == "security_hygiene" and kind in (Kind.INCIDENT, Kind.PROBLEM):
        team = "Security Operations"
    assignee, requester = w.people(team)
    intent_info = _INTENTS[intent]
    draft = _Draft(
        kind=kind,
        platform=platform,
        intent=intent,
        title=w.title(intent, kind, service),
        description=w.description(intent, kind, service),
        service=service,
        team=team,
        priority=3,
        created=created,
        updated=created,
        resolved=None,
        status=Status.NEW,
        effort_hours=None,
        estimate_hours=None,
        assignee=assignee,
        requester=requester,
        category=rng.choice(intent_info.categories) if intent_info.categories else None,
    )
    if kind is Kind.INCIDENT:
        draft.priority = rng.choices((1, 2, 3, 4, 5), weights=(2, 8, 40, 40, 10))[0]
        median = {1: 3.0, 2: 8.0, 3: 30.0, 4: 70.0, 5: 120.0}[draft.priority]
        finish = _lognormal(rng, median, 0.9, 0.2, 24 * 40)
        draft.status, draft.updated, draft.resolved = w.lifecycle(
            created, finish, close_lag_days=rng.uniform(3, 7), p_cancel=0.01, p_hold=0.12
        )
        effort = _lognormal(rng, {1: 4.0, 2: 2.5}.get(draft.priority, 1.25), 0.75, 0.25, 8.0)
        draft.effort_hours = _quarter(effort * (0.5 if draft.resolved is None else 1.0))
        if draft.resolved is not None:
            draft.close_code = rng.choices(
                (
                    "Solved (Permanently)",
                    "Solved (Work Around)",
                    "Not Solved (Not Reproducible)",
                    "Closed/Resolved by Caller",
                ),
                weights=(60, 25, 8, 7),
            )[0]
    elif kind is Kind.PROBLEM:
        draft.priority = rng.choice((2, 3, 3, 4))
        draft.status, draft.updated, draft.resolved = w.lifecycle(
            created, rng.uniform(5, 70) * 24, p_cancel=0.03, p_hold=0.25
        )
        draft.effort_hours = _quarter(_lognormal(rng, 8.0, 0.6, 2.0, 24.0))
        if draft.resolved is not None:
            draft.close_code = rng.choice(("Fix Applied", "Risk Accepted", "Known Error"))
    elif kind is Kind.CHANGE:
        _change(w, draft)
    elif kind is Kind.REQUEST:
        draft.priority = rng.choice((3, 4, 4, 4, 5))
        draft.status, draft.updated, draft.resolved = w.lifecycle(
            created, _lognormal(rng, 20.0, 1.0, 1.0, 24 * 20), p_cancel=0.02, p_hold=0.1
        )
        draft.effort_hours = _quarter(_lognormal(rng, 0.75, 0.7, 0.25, 4.0))
        if draft.resolved is not None:
            draft.close_code = "Closed Complete"
    return draft


def _change(w: _Writer, draft: _Draft) -> None:
    rng = w.rng
    peak = draft.created.month in (11, 12)
    change_type = rng.choices(
        ("normal", "standard", "emergency"), weights=(60, 30, 22 if peak else 8)
    )[0]
    lead_days = {"normal": rng.uniform(3, 14), "standard": rng.uniform(0.5, 3)}.get(
        change_type, rng.uniform(0.05, 0.8)
    )
    planned_start = draft.created + timedelta(days=lead_days)
    planned_start = planned_start.replace(minute=0, second=0, microsecond=0)
    if planned_start <= draft.created:
        planned_start += timedelta(hours=1)
    planned_end = planned_start + timedelta(hours=rng.choice((1, 2, 2, 4, 4, 6, 8)))
    finish = (planned_end - draft.created).total_seconds() / 3600 + rng.uniform(0.0, 4.0)
    draft.status, draft.updated, draft.resolved = w.lifecycle(
        draft.created, finish, p_cancel=0.04, p_hold=0.05
    )
    draft.change_type = change_type
    draft.risk = rng.choices(("low", "moderate", "high"), weights=(50, 38, 12))[0]
    if change_type == "emergency":
        draft.priority, draft.risk = rng.choice((1, 2)), rng.choice(("moderate", "high"))
    else:
        draft.priority = rng.choice((3, 3, 4))
    draft.planned_start, draft.planned_end = planned_start, planned_end
    median = {"normal": 8.0, "standard": 1.5, "emergency": 5.0}[change_type]
    hours = _quarter(_lognormal(rng, median, 0.8, 1.0, 40.0))
    if draft.resolved is not None:
        draft.effort_hours = hours
        draft.close_code = rng.choices(
            ("successful", "successful_issues", "unsuccessful"), weights=(85, 10, 5)
        )[0]
    else:
        draft.estimate_hours = hours
        if draft.status is Status.IN_PROGRESS:
            draft.effort_hours = _quarter(hours * rng.uniform(0.2, 0.8))


def _task(
    w: _Writer,
    intent: str,
    created: datetime,
    platform: str,
    service: str,
    team: str,
    neutral: bool,
) -> _Draft:
    rng = w.rng
    estimate = _quarter(_lognormal(rng, 10.0, 0.75, 2.0, 60.0))
    status, updated, resolved = w.lifecycle(
        created, _lognormal(rng, 24 * 10, 0.7, 24.0, 24 * 60), p_cancel=0.03, p_hold=0.08
    )
    if status is Status.CLOSED and rng.random() < 0.1:
        status = Status.RESOLVED
    effort: float | None = None
    if resolved is not None and rng.random() < 0.85:
        effort = _quarter(min(60.0, max(2.0, estimate * math.exp(rng.gauss(0.05, 0.35)))))
    elif status is Status.IN_PROGRESS and rng.random() < 0.5:
        effort = _quarter(estimate * rng.uniform(0.1, 0.7))
    if not neutral and (intent, Kind.TASK) in _TITLES:
        title = w.title(intent, Kind.TASK, service)
        description = w.description(intent, Kind.TASK, service)
    else:
        title = w.neutral_title()
        description = rng.choice(("", "See parent for context.", "Part of the parent deliverable."))
    assignee, requester = w.people(team)
    return _Draft(
        kind=Kind.TASK,
        platform=platform,
        intent=intent,
        title=title,
        description=description,
        service=service,
        team=team,
        priority=rng.choice((2, 3, 3, 3, 4)),
        created=created,
        updated=updated,
        resolved=resolved,
        status=status,
        effort_hours=effort,
        estimate_hours=estimate,
        assignee=assignee,
        requester=requester,
        category=None,
    )


def _jira_type(rng: random.Random, intent: str) -> str:
    if intent in ("defect_fix", "restore"):
        return "Bug"
    if _label(intent) is Label.BUSINESS:
        return "Story" if rng.random() < 0.75 else "Task"
    # Labels and types are low-trust: some upkeep is filed as a story, some as a bug.
    return rng.choices(("Task", "Story", "Bug"), weights=(70, 20, 10))[0]


def _labels(rng: random.Random, intent: str) -> tuple[str, ...]:
    pool = _INTENTS[intent].labels
    if not pool or rng.random() < 0.45:
        return ()
    return tuple(sorted(rng.sample(pool, k=min(len(pool), rng.randint(1, 2)))))


_BUSINESS_UNIT = {
    "customer_feature": "E-commerce",
    "loyalty_growth": "Marketing",
    "store_capability": "Retail Stores",
    "warehouse_capability": "Supply Chain",
    "finance_capability": "Finance",
    "process_automation": "Operations",
    "business_analytics": "Merchandising",
    "market_onboarding": "International",
}


def _investment(rng: random.Random, intent: str, platform: str) -> dict[str, Any]:
    """Explicit investment fields, as a portfolio office fills them in (consistent with intent)."""
    business = _label(intent) is Label.BUSINESS
    category = (
        ("transform" if intent == "market_onboarding" or rng.random() < 0.25 else "grow")
        if business
        else "run"
    )
    if platform == JIRA:
        return {"category_raw": category.title()}
    return {
        "portfolio_category": category,
        "investment_class": "change" if business else "run",
        "investment_type": rng.choice(
            ("Growth", "Customer experience", "Innovation", "Efficiency")
            if business
            else (
                "Keep the lights on",
                "Regulatory / compliance",
                "Cost reduction",
                "Risk reduction",
            )
        ),
        # A business case is common for run projects too (cost savings, risk), so it is a hint.
        "business_case": rng.random() < (0.9 if business else 0.4),
        "business_unit": _BUSINESS_UNIT.get(intent, "Corporate IT"),
    }


def _next_number(draft: _Draft, counters: dict[str, int]) -> str:
    if draft.platform == JIRA:
        key = draft.project_key or "ITSM"
        counters[key] = counters.get(key, 0) + 1
        return f"{key}-{counters[key]}"
    prefix, first = _SN_NUMBERING[draft.kind]
    counters[prefix] = counters.get(prefix, first - 1) + 1
    return f"{prefix}{counters[prefix]:07d}"


def _freeze(d: _Draft, seed: int) -> TruthItem:
    return TruthItem(
        uid=_uid(seed, d.number),
        number=d.number,
        kind=d.kind,
        platform=d.platform,
        title=d.title,
        description=d.description,
        status=d.status,
        priority=d.priority,
        team=d.team,
        assignee=d.assignee,
        requester=d.requester,
        service=d.service,
        category=d.category,
        created=d.created,
        updated=d.updated,
        resolved=d.resolved,
        effort_hours=d.effort_hours,
        estimate_hours=d.estimate_hours,
        truth=_label(d.intent),
        parent=d.parent.number if d.parent else None,
        labels=d.labels,
        issue_type=d.issue_type,
        change_type=d.change_type,
        risk=d.risk,
        close_code=d.close_code,
        planned_start=d.planned_start,
        planned_end=d.planned_end,
        investment=d.investment,
        intent=d.intent,
        problem=d.problem.number if d.problem else None,
        linked_project=d.linked_project.number if d.linked_project else None,
    )


# -- public API ------------------------------------------------------------------------------


def iter_items(
    kind: Kind,
    count: int,
    *,
    seed: int = 7,
    start: datetime | None = None,
    end: datetime | None = None,
    platform: str = SERVICENOW,
) -> Iterator[TruthItem]:
    """Lazily yield ``count`` standalone records of one kind, for volume and memory benchmarks.

    Records are independent (no parent links), created in ascending order across [start, end),
    numbered in that order, and drawn from the same intents and templates as a company's.
    """
    kind = Kind(kind)
    rng = random.Random(f"items:{seed}:{kind.value}:{platform}")
    end = end or END
    start = start or end - timedelta(days=365)
    w = _Writer(rng, end)
    span = (end - start).total_seconds() - 4 * 3600
    mix = _MIX[kind.value]
    counters: dict[str, int] = {}
    jira_keys = list(vocab.JIRA_PROJECTS)
    for i in range(count):
        created = start + timedelta(seconds=int(span * (i + rng.random()) / max(count, 1)))
        intent = _weighted(rng, mix)
        if kind is Kind.PROJECT:
            service = w.service_for(intent, kind)
            draft = _standalone_project(w, intent, service, created, platform)
        elif kind is Kind.TASK:
            key = rng.choice(jira_keys)
            team, services = vocab.JIRA_PROJECTS[key]
            service = w.service_for(intent, kind, services if platform == JIRA else None)
            team = team if platform == JIRA else vocab.SERVICE_TEAM[service]
            draft = _task(w, intent, created, platform, service, team, False)
            if platform == JIRA:
                draft.project_key, draft.issue_type = key, _jira_type(rng, intent)
        else:
            draft = _simple(w, kind, intent, created, platform=platform)
            if platform == JIRA:
                draft.issue_type, draft.project_key = _JIRA_ITSM_TYPE[kind], "ITSM"
        draft.number = _next_number(draft, counters)
        yield _freeze(draft, seed)


def _standalone_project(
    w: _Writer, intent: str, service: str, created: datetime, platform: str
) -> _Draft:
    rng = w.rng
    key = rng.choice(list(vocab.JIRA_PROJECTS)) if platform == JIRA else None
    planned_start = created + timedelta(days=rng.randint(5, 30))
    planned_end = planned_start + timedelta(days=rng.randint(45, 240))
    status, updated, resolved = w.lifecycle(
        created, (planned_end - created).total_seconds() / 3600, p_cancel=0.04
    )
    team = vocab.JIRA_PROJECTS[key][0] if key else vocab.SERVICE_TEAM[service]
    assignee, requester = w.people(team)
    return _Draft(
        kind=Kind.PROJECT,
        platform=platform,
        intent=intent,
        title=w.title(intent, Kind.PROJECT, service),
        description=w.description(intent, Kind.PROJECT, service),
        service=service,
        team=team,
        priority=3,
        created=created,
        updated=updated,
        resolved=resolved,
        status=status,
        effort_hours=None,
        estimate_hours=float(rng.randint(80, 2400)),
        assignee=assignee,
        requester=requester,
        category=None,
        issue_type="Epic" if key else None,
        project_key=key,
        planned_start=planned_start,
        planned_end=planned_end,
        investment=_investment(rng, intent, platform) if rng.random() < 0.6 else {},
    )


def generate_items(
    kind: Kind,
    count: int,
    *,
    seed: int = 7,
    start: datetime | None = None,
    end: datetime | None = None,
    platform: str = SERVICENOW,
) -> list[TruthItem]:
    """``count`` standalone records of one kind over [start, end), reproducible for a seed."""
    return list(iter_items(kind, count, seed=seed, start=start, end=end, platform=platform))


def generate_company(seed: int = 7, *, months: int = 12, scale: float = 1.0) -> Company:
    """Northwind Outfitters' ``months`` of work ending on :data:`END`, on both platforms."""
    if months < 1 or scale <= 0:
        raise ValueError("months must be >= 1 and scale > 0")
    return _Company(seed, months, scale, END).build()
