"""The common schema: one normalised shape for every platform's work records.

A :class:`WorkItem` is what every connector produces and what the store, the scorer and the report
consume. Its field names are a public contract (see ``docs/concepts.md``): JSONL lines are
``WorkItem.model_dump(mode="json")``, and data teams create tables from :func:`schema_json`.

Datetimes are timezone-aware and normalised to UTC on the way in. A naive datetime has no honest
meaning (was it the instance's zone, the user's, the server's?), so it is refused, naming the field.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
)

from itsm_bridge.errors import DataError

__all__ = [
    "EffortSource",
    "Kind",
    "Label",
    "Reason",
    "ScoredItem",
    "Status",
    "Verdict",
    "WorkItem",
    "schema_json",
    "validate_item",
]


class Kind(StrEnum):
    """What a work record is, across platforms (``task`` = Jira story, task, bug, sub-task)."""

    INCIDENT = "incident"
    PROBLEM = "problem"
    CHANGE = "change"
    REQUEST = "request"
    PROJECT = "project"
    TASK = "task"


class Status(StrEnum):
    """The lifecycle stage, normalised; the platform's own value is kept in ``status_raw``."""

    NEW = "new"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class EffortSource(StrEnum):
    """How much to trust ``effort_hours``: logged time, a plan or estimate, or a default guess."""

    MEASURED = "measured"
    ESTIMATED = "estimated"
    DEFAULT = "default"


class Label(StrEnum):
    """The scoring verdict on the business/inward axis."""

    BUSINESS = "business-facing"
    INWARD = "inward-facing"
    UNDETERMINED = "undetermined"


def _parse_datetime(value: Any) -> Any:
    # Strings are parsed here (not by pydantic's lax mode) so that every ISO 8601 shape a vendor
    # sends, including "+0530" offsets without a colon, is accepted the same way.
    if isinstance(value, str):
        from itsm_bridge._time import parse_datetime

        return parse_datetime(value)
    return value


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is UTC:
        return value  # the common case, already normalised by the connector
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetime: a timezone offset is required (the library keeps UTC)")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, BeforeValidator(_parse_datetime), AfterValidator(_require_utc)]
"""A timezone-aware datetime, converted to UTC; naive values are refused."""

_MODEL_CONFIG = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


class WorkItem(BaseModel):
    """One normalised work record.

    ``id`` is ``"<source>:<native id>"`` and is unique across every source in a store. ``key`` is
    what people type (``INC0012345``, ``OPS-7``). ``extra`` keeps platform facts worth keeping that
    have no column of their own (investment class, change type, risk, planned dates, raw codes).
    """

    model_config = _MODEL_CONFIG

    id: StrictStr = Field(min_length=1)
    source: StrictStr = Field(min_length=1)
    kind: Kind
    key: StrictStr = Field(min_length=1)
    title: StrictStr
    description: StrictStr | None = None
    status: Status
    status_raw: StrictStr | None = None
    priority: StrictInt | None = Field(default=None, ge=1, le=5)
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime
    resolved_at: UtcDatetime | None = None
    team: StrictStr | None = None
    assignee: StrictStr | None = None
    requester: StrictStr | None = None
    service: StrictStr | None = None
    category: StrictStr | None = None
    labels: tuple[StrictStr, ...] = ()
    effort_hours: float | None = Field(default=None, ge=0, strict=True)
    effort_source: EffortSource | None = None
    parent_key: StrictStr | None = None
    url: StrictStr | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class Reason(BaseModel):
    """One piece of evidence behind a verdict: the rule, its signed weight and what it matched."""

    model_config = _MODEL_CONFIG

    rule: StrictStr
    weight: float = Field(strict=True)
    evidence: StrictStr


class Verdict(BaseModel):
    """The scorer's answer for one item, with the reasons that produced it, strongest first."""

    model_config = _MODEL_CONFIG

    label: Label
    p_business: float = Field(ge=0.0, le=1.0, strict=True)
    reasons: tuple[Reason, ...] = ()


class ScoredItem(WorkItem):
    """A WorkItem with its verdict; serialises as the JSONL line plus a ``scoring`` object."""

    scoring: Verdict

    @property
    def item(self) -> WorkItem:
        """The WorkItem without its verdict."""
        return WorkItem.model_validate(self.model_dump(exclude={"scoring"}))


def validate_item(data: dict[str, Any], *, source: str | None = None) -> WorkItem:
    """Build a WorkItem from a mapping, turning validation failures into a :class:`DataError`.

    The error names every offending field, so a bad record can be found and fixed at its source.
    """
    try:
        return WorkItem.model_validate(data)
    except ValidationError as exc:
        raise DataError(
            f"invalid work item: {_describe(exc)}",
            source=source or str(data.get("source") or "") or None,
            record=str(data.get("id") or data.get("key") or "") or None,
        ) from None


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in err["loc"]) or "<record>"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def schema_json(*, scored: bool = False, indent: int | None = 2) -> str:
    """The JSON Schema of a JSONL line (``scored=True`` adds the ``scoring`` object)."""
    model = ScoredItem if scored else WorkItem
    # Field order is kept (not sorted) so that a table created from it reads like a JSONL line.
    return json.dumps(model.model_json_schema(mode="serialization"), indent=indent)
