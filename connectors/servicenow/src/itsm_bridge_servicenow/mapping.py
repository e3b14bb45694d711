"""Pure mappers: one Table API record (any value shape) to a :class:`WorkItem`.

No I/O and no state: the same record and context always give the same item, so mappers are tested
from recorded JSON alone. Unknown codes never fail a record: they keep their raw value and label,
take the documented fallback status (:func:`~itsm_bridge_servicenow.codes.fallback_status`), and
are listed in ``extra["unknown_codes"]`` for the run report.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from itsm_bridge import EffortSource, MappingError, Status, WorkItem
from itsm_bridge_servicenow.codes import CodeBook, fallback_status
from itsm_bridge_servicenow.tables import TableSpec
from itsm_bridge_servicenow.values import duration_hours, parse_utc

__all__ = ["MappingContext", "browser_url", "map_row", "portfolio_category"]

_TAGS = re.compile(r"<[^>]*>")
_FINISHED = frozenset({Status.RESOLVED, Status.CLOSED, Status.CANCELLED})
_PORTFOLIO = {
    "rtb": "run",
    "run": "run",
    "gtb": "grow",
    "grow": "grow",
    "ttb": "transform",
    "transform": "transform",
}


@dataclass(frozen=True)
class MappingContext:
    """What a mapper needs beyond the record: names for ids and URLs, and the code tables."""

    source: str
    base_url: str
    codes: CodeBook


def browser_url(base_url: str, table: str, sys_id: str) -> str:
    """The record's form in the instance UI (opens inside the navigation frame)."""
    return f"{base_url.rstrip('/')}/nav_to.do?uri={table}.do?sys_id={sys_id}"


def portfolio_category(raw_value: str, label: str | None) -> str | None:
    """run / grow / transform from a portfolio category code (rtb/gtb/ttb) or its label."""
    for candidate in (raw_value, label or ""):
        words = candidate.strip().lower().split()
        if words and words[0] in _PORTFOLIO:
            return _PORTFOLIO[words[0]]
    return None


def _service_classification(raw_value: str, label: str | None) -> str | None:
    seen = f"{raw_value} {label or ''}".lower()
    if "business" in seen:
        return "business"
    if "technical" in seen or "infrastructure" in seen:
        return "technical"
    return None


def _split(raw: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Every field's raw value and, where the instance sent one, its display value.

    One pass per record (the same rules as :func:`value` and :func:`display`): the mapper then
    reads plain dicts, ~35 times per record, instead of unpacking a field shape each time.
    """
    values: dict[str, str] = {}
    shown: dict[str, str] = {}
    for name, field in raw.items():
        if field.__class__ is str:
            values[name] = field
            continue
        if field.__class__ is dict or isinstance(field, Mapping):
            label = field.get("display_value")
            if label is not None:
                shown[name] = label if isinstance(label, str) else str(label)
            field = field.get("value")
            if field.__class__ is str:
                values[name] = field
                continue
        values[name] = "" if field is None else field if isinstance(field, str) else str(field)
    return values, shown


def _name(shown: dict[str, str], name: str) -> str | None:
    """A reference's display name, without the padding a hand-typed name may carry (a report
    would group "Jane Doe" and "Jane Doe " apart)."""
    label = shown.get(name)
    return (label.strip() or None) if label else None


def _first_shown(shown: dict[str, str], names: tuple[str, ...]) -> str | None:
    """The first reference among ``names`` with a display name (a bare sys_id is not one)."""
    for name in names:
        label = _name(shown, name)
        if label:
            return label
    return None


def _when(values: dict[str, str], name: str, record: str | None) -> datetime | None:
    """A datetime field's raw (UTC) value; a display-formatted value is refused, naming it."""
    try:
        return parse_utc(values.get(name, ""))
    except ValueError as exc:
        raise MappingError(
            f"field {name!r}: {exc} (raw values are 'YYYY-MM-DD HH:MM:SS' UTC; was the record "
            "read with display values only?)",
            record=record,
        ) from None


def _iso(values: dict[str, str], name: str, record: str | None) -> str | None:
    moment = _when(values, name, record)
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def map_row(spec: TableSpec, raw: Mapping[str, Any], ctx: MappingContext) -> WorkItem:
    """Map one record of ``spec.table`` (or a table extending it) to a WorkItem."""
    values, shown = _split(raw)
    get = values.get
    sys_id = get("sys_id", "")
    number = get("number", "")
    if not sys_id:
        raise MappingError("record has no sys_id", source=ctx.source, record=number or None)
    if not number:
        raise MappingError("record has no number", source=ctx.source, record=sys_id)
    record = number
    table = get("sys_class_name") or spec.table
    unknown: list[str] = []
    extra: dict[str, Any] = {"issue_type": table}

    state_field = spec.state_fields[0]
    for name in spec.state_fields:
        if get(name):
            state_field = name
            break
    code, label = get(state_field, ""), shown.get(state_field)
    entry = ctx.codes.state(spec.state_tables, code, label) if code else None
    if entry is None:
        unknown.append("state")
        status = fallback_status(get("active", ""))
        extra["status_label"] = label or code or None
    else:
        status = entry.status
        extra["status_label"] = label or entry.label
    for flag, flagged, flag_status in spec.status_flags:
        if get(flag, "").strip().lower() != flagged:
            continue
        # A hold flag only means something on open work; other flags settle the outcome.
        if flag_status is not Status.ON_HOLD or status in (Status.NEW, Status.IN_PROGRESS):
            status = flag_status

    priority: int | None = None
    priority_code = get("priority", "")
    if priority_code:
        known = ctx.codes.priority_of(priority_code)
        if known is None:
            unknown.append("priority")
            extra["priority_label"] = shown.get("priority") or priority_code
        else:
            priority = known[0]

    resolved_at = None
    if status in _FINISHED:
        for name in spec.resolved:
            resolved_at = _when(values, name, record)
            if resolved_at is not None:
                break
    else:
        # Open work has no resolution time: a reopened record keeps the closed_at/resolved_at
        # of its last closure, which is kept for reading, not dated by.
        stale = {name: get(name) for name in spec.resolved if get(name)}
        if stale:
            extra["stale_resolution"] = stale

    effort, source = _effort(spec, values, extra)
    _extras(spec, values, shown, extra, unknown, record)
    parent_key = _first_shown(shown, spec.parent)
    if parent_key == number or parent_key in (
        extra.get("linked_project"),
        extra.get("linked_demand"),
    ):
        parent_key = None  # a change's project or demand is its link, not its parent
    category = get(spec.category, "") if spec.category else ""
    if category and shown.get(spec.category or "") not in (None, "", category):
        extra["category_label"] = shown.get(spec.category or "")
    if unknown:
        extra["unknown_codes"] = unknown
    description = get("description", "")
    data: dict[str, Any] = {
        "id": f"{ctx.source}:{sys_id}",
        "source": ctx.source,
        "kind": spec.kind,
        "key": number,
        "title": get("short_description", "").strip(),
        "description": description.strip() or None,
        "status": status,
        "status_raw": code or None,
        "priority": priority,
        "created_at": _when(values, "opened_at", record) or _when(values, "sys_created_on", record),
        "updated_at": _when(values, "sys_updated_on", record),
        "resolved_at": resolved_at,
        "team": _name(shown, "assignment_group"),
        "assignee": _name(shown, "assigned_to"),
        "requester": _first_shown(shown, spec.requester),
        "service": _name(shown, "business_service"),
        "category": category or None,
        "effort_hours": effort,
        "effort_source": source,
        "parent_key": parent_key,
        "url": browser_url(ctx.base_url, table, sys_id),
        "extra": {k: v for k, v in extra.items() if v is not None},
    }
    if data["updated_at"] is None:
        raise MappingError("record has no sys_updated_on", source=ctx.source, record=number)
    try:
        return WorkItem.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors(include_url=False, include_input=False)
        )
        raise MappingError(
            f"invalid work item: {problems}", source=ctx.source, record=number
        ) from None


def _first_hours(values: dict[str, str], names: tuple[str, ...]) -> float | None:
    for name in names:
        try:
            hours = duration_hours(values.get(name, ""))
        except ValueError as exc:  # a duration ServiceNow would never send: bad data, named
            raise MappingError(
                f"field {name!r}: {exc}", record=values.get("number") or values.get("sys_id")
            ) from None
        if hours:
            return hours
    return None


def _effort(
    spec: TableSpec, values: dict[str, str], extra: dict[str, Any]
) -> tuple[float | None, EffortSource | None]:
    measured = _first_hours(values, spec.measured_effort)
    planned = _first_hours(values, spec.planned_effort)
    if spec.planned_effort:
        extra["effort_planned_hours"] = planned
        extra["effort_actual_hours"] = measured
    if measured:
        return round(measured, 4), EffortSource.MEASURED
    if planned:
        return round(planned, 4), EffortSource.ESTIMATED
    return None, None


def _extras(
    spec: TableSpec,
    values: dict[str, str],
    shown: dict[str, str],
    extra: dict[str, Any],
    unknown: list[str],
    record: str | None,
) -> None:
    get = values.get
    classification = "business_service.service_classification"
    if classification in values:
        label = shown.get(classification)
        found = _service_classification(values[classification], label)
        if found:
            extra["service_classification"] = found
        elif values[classification]:
            extra["service_classification_raw"] = label or values[classification]
    for key, name in spec.dates:
        extra[key] = _iso(values, name, record)
    for key, name in spec.choices:
        raw_value = get(name, "")
        if not raw_value:
            continue
        if key == "risk":
            # Quirk: risk codes differ between releases (1 High vs 1 Very High); the label is
            # what the instance means, so it is kept, lower-cased, with the raw code beside it.
            extra["risk"] = (shown.get(name) or raw_value).strip().lower()
            extra["risk_raw"] = raw_value
        else:
            extra[key] = raw_value
    if spec.link:
        target = shown.get(spec.link) or None
        target_class = get(f"{spec.link}.sys_class_name", "")
        if target:
            if target_class == "pm_project" or (not target_class and target.startswith("PRJ")):
                extra["linked_project"] = target
            elif target_class == "dmn_demand" or (not target_class and target.startswith("DMND")):
                extra["linked_demand"] = target
    if spec.project:
        extra["project_key"] = shown.get(spec.project) or None
    for key, name in spec.references:
        extra[key] = shown.get(name) or None
    if spec.investment:
        investment = _investment(spec, values, shown, unknown)
        if investment:
            extra["investment"] = investment
    refs = {}
    for name in spec.reference_fields:
        sys_id = get(name)
        if sys_id:
            refs[name] = sys_id
    if refs:
        extra["refs"] = refs
    for name in spec.extra_fields:
        if name not in values:
            continue
        extra[name] = values[name]
        label = shown.get(name)
        if label is not None and label != extra[name]:
            extra[f"{name}_display"] = label


def _investment(
    spec: TableSpec, values: dict[str, str], shown: dict[str, str], unknown: list[str]
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, name in spec.investment:
        if name not in values:
            continue
        raw_value, label = values[name], shown.get(name)
        if key == "business_case":
            found[key] = bool(_TAGS.sub(" ", raw_value).strip())
        elif not raw_value:
            continue
        elif key == "portfolio_category":
            category = portfolio_category(raw_value, label)
            if category is None:
                unknown.append(name)
                found["portfolio_category_raw"] = label or raw_value
            else:
                found[key] = category
        elif key == "investment_class":
            lowered = raw_value.strip().lower()
            if lowered in ("run", "change"):
                found[key] = lowered
            else:
                unknown.append(name)
                found["investment_class_raw"] = label or raw_value
        elif key == "business_unit":
            found[key] = label or None
        else:
            found[key] = label or raw_value
    return {k: v for k, v in found.items() if v is not None}
