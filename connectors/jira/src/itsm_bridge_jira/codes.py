"""Jira's code tables, as data: status names, status categories, resolutions, priorities and
investment-category values. Sites rename and add values; the connector's options extend these
tables per site (``status_map``, ``priority_map``, ``investment_map``) without code changes.
"""

from __future__ import annotations

from collections.abc import Mapping

from itsm_bridge import Status

__all__ = [
    "CANCEL_RESOLUTIONS",
    "CATEGORY_STATUS",
    "DEFAULT_INVESTMENT_MAP",
    "PRIORITY_BY_NAME",
    "STATUS_BY_NAME",
]

# Status names seen on Jira Software, Service Management and older Server sites. The status
# category (new / indeterminate / done) decides where the name is unknown.
STATUS_BY_NAME: Mapping[str, Status] = {
    "open": Status.NEW,
    "new": Status.NEW,
    "to do": Status.NEW,
    "backlog": Status.NEW,
    "selected for development": Status.NEW,
    "reopened": Status.NEW,
    "waiting for support": Status.NEW,
    "in progress": Status.IN_PROGRESS,
    "work in progress": Status.IN_PROGRESS,
    "in review": Status.IN_PROGRESS,
    "under review": Status.IN_PROGRESS,
    "patch available": Status.IN_PROGRESS,
    "investigating": Status.IN_PROGRESS,
    "implementing": Status.IN_PROGRESS,
    "under investigation": Status.IN_PROGRESS,
    "escalated": Status.IN_PROGRESS,
    "on hold": Status.ON_HOLD,
    "blocked": Status.ON_HOLD,
    "pending": Status.ON_HOLD,
    "waiting for customer": Status.ON_HOLD,
    "waiting for approval": Status.ON_HOLD,
    "awaiting approval": Status.ON_HOLD,
    "awaiting implementation": Status.ON_HOLD,
    "waiting for vendor": Status.ON_HOLD,
    "resolved": Status.RESOLVED,
    "done": Status.CLOSED,
    "closed": Status.CLOSED,
    "completed": Status.CLOSED,
    "cancelled": Status.CANCELLED,
    "canceled": Status.CANCELLED,
    "declined": Status.CANCELLED,
    "rejected": Status.CANCELLED,
    "won't do": Status.CANCELLED,
}

CATEGORY_STATUS: Mapping[str, Status] = {
    "new": Status.NEW,
    "indeterminate": Status.IN_PROGRESS,
    "done": Status.CLOSED,
}

# A finished issue with one of these resolutions was not done: it is cancelled, not closed.
CANCEL_RESOLUTIONS = frozenset(
    {
        "won't do",
        "won't fix",
        "duplicate",
        "cannot reproduce",
        "declined",
        "invalid",
        "incomplete",
        "not a bug",
        "not a problem",
        "abandoned",
        "cancelled",
        "canceled",
        "rejected",
        "obsolete",
    }
)

# Cloud defaults (Highest..Lowest), Server/DC defaults (Blocker..Trivial), and P1..P5 schemes.
PRIORITY_BY_NAME: Mapping[str, int] = {
    "highest": 1,
    "blocker": 1,
    "p1": 1,
    "critical": 2,
    "high": 2,
    "p2": 2,
    "medium": 3,
    "major": 3,
    "p3": 3,
    "low": 4,
    "minor": 4,
    "p4": 4,
    "lowest": 5,
    "trivial": 5,
    "p5": 5,
}

# Values of an investment-category field -> portfolio category, after normalise_value().
DEFAULT_INVESTMENT_MAP: Mapping[str, str] = {
    "run": "run",
    "run the business": "run",
    "rtb": "run",
    "keep the lights on": "run",
    "ktlo": "run",
    "klo": "run",
    "maintain": "run",
    "maintenance": "run",
    "sustain": "run",
    "operate": "run",
    "operations": "run",
    "business as usual": "run",
    "bau": "run",
    "tech debt": "run",
    "technical debt": "run",
    "grow": "grow",
    "growth": "grow",
    "grow the business": "grow",
    "gtb": "grow",
    "enhance": "grow",
    "enhancement": "grow",
    "improve": "grow",
    "improvement": "grow",
    "expand": "grow",
    "transform": "transform",
    "transformation": "transform",
    "transform the business": "transform",
    "ttb": "transform",
    "innovate": "transform",
    "innovation": "transform",
    "new product": "transform",
    "strategic": "transform",
}
