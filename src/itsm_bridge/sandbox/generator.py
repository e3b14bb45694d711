"""A deterministic, seeded generator of a fictional company's IT work.

FIRST VERSION: structure and determinism are final; realism of titles and descriptions is being
extended (see the sandbox-kit work). Connectors and tests rely only on the signatures here.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta

from itsm_bridge.sandbox.model import Company, TruthItem
from itsm_bridge.schema import Kind, Label, Status

__all__ = ["generate_company", "generate_items"]

_TEAMS = [
    "Service Desk",
    "Network Ops",
    "Platform Engineering",
    "Digital Commerce",
    "Data & Analytics",
]
_SERVICES = {
    "Online Store": "business",
    "Customer Portal": "business",
    "Email": "technical",
    "VPN": "technical",
    "Data Warehouse": "technical",
}
_PEOPLE = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Barbara Liskov"]

_PREFIX = {
    Kind.INCIDENT: "INC",
    Kind.PROBLEM: "PRB",
    Kind.CHANGE: "CHG",
    Kind.REQUEST: "RITM",
    Kind.PROJECT: "PRJ",
    Kind.TASK: "PRJTASK",
}


def _uid(seed: int, number: str) -> str:
    return hashlib.md5(f"{seed}:{number}".encode(), usedforsecurity=False).hexdigest()


def generate_items(
    kind: Kind,
    count: int,
    *,
    seed: int = 7,
    start: datetime | None = None,
    end: datetime | None = None,
    platform: str = "servicenow",
) -> list[TruthItem]:
    """``count`` records of one kind spread over [start, end), reproducible for a seed."""
    rng = random.Random(f"{seed}:{kind.value}")
    end = end or datetime(2026, 10, 1, tzinfo=UTC)
    start = start or end - timedelta(days=365)
    span = (end - start).total_seconds()
    items: list[TruthItem] = []
    for i in range(count):
        number = f"{_PREFIX[kind]}{1_000_000 + i:07d}"
        created = start + timedelta(seconds=int(rng.random() * span * 0.9))
        updated = created + timedelta(seconds=int(rng.random() * span * 0.1))
        business = rng.random() < 0.35
        service = rng.choice(list(_SERVICES))
        items.append(
            TruthItem(
                uid=_uid(seed, number),
                number=number,
                kind=kind,
                platform=platform,
                title=("Add express checkout to " if business else "Restore access to ") + service,
                description="Generated record.",
                status=rng.choice(list(Status)),
                priority=rng.randint(1, 5),
                team=rng.choice(_TEAMS),
                assignee=rng.choice(_PEOPLE),
                requester=rng.choice(_PEOPLE),
                service=service,
                category="inquiry",
                created=created,
                updated=updated,
                resolved=None,
                effort_hours=round(rng.uniform(0.5, 12), 2),
                estimate_hours=None,
                truth=Label.BUSINESS if business else Label.INWARD,
            )
        )
    return items


def generate_company(seed: int = 7, *, months: int = 12, scale: float = 1.0) -> Company:
    """A fictional company's ``months`` of work across every kind and both platforms."""
    end = datetime(2026, 10, 1, tzinfo=UTC)
    start = end - timedelta(days=30 * months)
    counts = {
        Kind.INCIDENT: 1200,
        Kind.PROBLEM: 60,
        Kind.CHANGE: 300,
        Kind.REQUEST: 500,
        Kind.PROJECT: 30,
        Kind.TASK: 400,
    }
    items: list[TruthItem] = []
    for kind, n in counts.items():
        items.extend(generate_items(kind, max(1, int(n * scale)), seed=seed, start=start, end=end))
    return Company(
        name="Northwind Outfitters",
        seed=seed,
        start=start,
        end=end,
        items=items,
        teams=list(_TEAMS),
        services=dict(_SERVICES),
        people=list(_PEOPLE),
    )
