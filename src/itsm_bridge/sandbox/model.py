"""The vendor-neutral truth a sandbox serves: a fictional company's work records.

The generator (:mod:`itsm_bridge.sandbox.generator`) produces :class:`TruthItem` objects; each
connector's fake server renders them in its platform's shape (ServiceNow table rows, Jira issues).
The ground-truth ``truth`` label is kept here for evaluation and is never rendered into a payload.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from itsm_bridge.schema import Kind, Label, Status

__all__ = ["Company", "TruthItem", "counted_effort", "item_effort"]


@dataclass(frozen=True, slots=True)
class TruthItem:
    """One work record as the fictional company knows it.

    ``number`` is the human key (``INC0010001``, ``PRJ0001234``, ``SHOP-42``), unique per company.
    ``uid`` is a stable 32-hex id (ServiceNow ``sys_id``; Jira's numeric id derives from it).
    ``parent`` is the parent's ``number``. ``platform`` says which sandbox serves the record in the
    demo ("servicenow" or "jira"); a sandbox may also be handed any list of items.
    ``investment`` holds explicit investment fields where the company keeps them (about 60% of
    projects): ServiceNow projects carry ``portfolio_category`` ("run"/"grow"/"transform"),
    ``investment_class`` ("run"/"change"), ``investment_type``, ``business_case`` (bool) and
    ``business_unit``; Jira epics carry ``category_raw`` ("Run"/"Grow"/"Transform"), the value of
    the company's custom "Investment category" field. Values are canonical lower case where the
    shared contract says so; each fake renders them in its platform's shape.

    ``effort_hours`` is measured effort (logged time), ``estimate_hours`` planned effort; a project
    has only a plan, its children carry the measured hours. ``problem`` is the problem an incident
    is linked to; ``linked_project`` the project a change delivers.

    Ground truth lives in ``truth`` and ``intent`` (the latent reason the work exists, such as
    "patching" or "customer_feature"). Fakes must never render either into a payload.
    """

    uid: str
    number: str
    kind: Kind
    platform: str
    title: str
    description: str
    status: Status
    priority: int
    team: str
    assignee: str | None
    requester: str | None
    service: str | None
    category: str | None
    created: datetime
    updated: datetime
    resolved: datetime | None
    effort_hours: float | None
    estimate_hours: float | None
    truth: Label
    parent: str | None = None
    labels: tuple[str, ...] = ()
    issue_type: str | None = None
    change_type: str | None = None
    risk: str | None = None
    close_code: str | None = None
    planned_start: datetime | None = None
    planned_end: datetime | None = None
    investment: dict[str, Any] = field(default_factory=dict)
    version: int = 1
    intent: str = ""
    problem: str | None = None
    linked_project: str | None = None

    def touched(self, when: datetime, *, note: str | None = None) -> TruthItem:
        """A newer version of this record, updated at ``when`` (records changing mid-pull)."""
        description = self.description if note is None else f"{self.description}\n\n{note}"
        return replace(self, updated=when, version=self.version + 1, description=description)


def item_effort(item: TruthItem) -> float:
    """An item's own effort: measured hours, else planned hours, else nothing."""
    if item.effort_hours is not None:
        return item.effort_hours
    return item.estimate_hours or 0.0


def counted_effort(items: Iterable[TruthItem]) -> Iterator[tuple[TruthItem, float]]:
    """Each item with the hours it contributes to an effort total over exactly these items.

    The effort of an item whose children are present in the same set is not counted: its
    children carry it (a project's plan or an epic's estimate would otherwise be counted twice,
    once as the plan and once as the tasks' hours). Present children count, wherever they sit.
    """
    materialised = list(items)
    numbers = {item.number for item in materialised}
    parents_present = {
        item.parent for item in materialised if item.parent is not None and item.parent in numbers
    }
    for item in materialised:
        yield item, 0.0 if item.number in parents_present else item_effort(item)


@dataclass
class Company:
    """A generated company: its records, teams and services, and the generation settings."""

    name: str
    seed: int
    start: datetime
    end: datetime
    items: list[TruthItem]
    teams: list[str]
    services: dict[str, str]  # service name -> "business" | "technical"
    people: list[str]
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def by_kind(self, kind: Kind) -> list[TruthItem]:
        return [item for item in self.items if item.kind is kind]

    def for_platform(self, platform: str) -> list[TruthItem]:
        return [item for item in self.items if item.platform == platform]

    def truth_by_number(self) -> dict[str, Label]:
        return {item.number: item.truth for item in self.items}

    def by_number(self) -> dict[str, TruthItem]:
        return {item.number: item for item in self.items}

    def business_effort_share(self, items: Iterable[TruthItem] | None = None) -> float:
        """Ground truth: the share of effort hours spent on business-facing work.

        Uses the report's effort convention (:func:`counted_effort`), so the demo compares like
        with like: a project's plan is not added on top of the hours its tasks carry.
        """
        business = total = 0.0
        for item, hours in counted_effort(self.items if items is None else items):
            total += hours
            if item.truth is Label.BUSINESS:
                business += hours
        return business / total if total else 0.0

    def __iter__(self) -> Iterator[TruthItem]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def period(self) -> timedelta:
        return self.end - self.start
