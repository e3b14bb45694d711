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

__all__ = ["Company", "TruthItem"]


@dataclass(frozen=True, slots=True)
class TruthItem:
    """One work record as the fictional company knows it.

    ``number`` is the human key (``INC0010001``, ``PRJ0001234``, ``SHOP-42``), unique per company.
    ``uid`` is a stable 32-hex id (ServiceNow ``sys_id``; Jira's numeric id derives from it).
    ``parent`` is the parent's ``number``. ``platform`` says which sandbox serves the record in the
    demo ("servicenow" or "jira"); a sandbox may also be handed any list of items.
    ``investment`` holds explicit investment fields where the company keeps them (projects):
    ``portfolio_category`` (run/grow/transform), ``investment_class`` (Run/Change),
    ``investment_type``, ``business_case`` (bool), ``business_unit``.
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

    def touched(self, when: datetime, *, note: str | None = None) -> TruthItem:
        """A newer version of this record, updated at ``when`` (records changing mid-pull)."""
        description = self.description if note is None else f"{self.description}\n\n{note}"
        return replace(self, updated=when, version=self.version + 1, description=description)


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

    def business_effort_share(self, items: Iterable[TruthItem] | None = None) -> float:
        """Ground truth: the share of effort hours spent on business-facing work."""
        business = total = 0.0
        for item in self.items if items is None else items:
            hours = item.effort_hours or item.estimate_hours or 0.0
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
