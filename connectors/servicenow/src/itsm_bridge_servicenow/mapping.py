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
from itsm_bridge_servicenow.values import display, duration_hours, parse_utc, value

__all__ = ["MappingContext", "browser_url", "map_row", "portfolio_category"]

_TAGS = re.compile(r"<[^>]*>")
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


def _ref(raw: Mapping[str, Any], name: str) -> str | None:
    """A reference's display value (the target's number or name); a bare sys_id is not one."""
    return display(raw, name) or None


def _first_ref(raw: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        shown = _ref(raw, name)
        if shown:
            return shown
    return None


def _when(raw: Mapping[str, Any], name: str) -> datetime | None:
    """A datetime field's raw (UTC) value; a display-formatted value is refused, naming it."""
    try:
        return parse_utc(value(raw, name))
    except ValueError as exc:
        raise MappingError(
            f"field {name!r}: {exc} (raw values are 'YYYY-MM-DD HH:MM:SS' UTC; was the record "
            "read with display values only?)",
            record=value(raw, "number") or value(raw, "sys_id") or None,
        ) from None


def _iso(raw: Mapping[str, Any], name: str) -> str | None:
    moment = _when(raw, name)
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def map_row(spec: TableSpec, raw: Mapping[str, Any], ctx: MappingContext) -> WorkItem:
    """Map one record of ``spec.table`` (or a table extending it) to a WorkItem."""
    sys_id = value(raw, "sys_id")
    number = value(raw, "number")
    if not sys_id:
        raise MappingError("record has no sys_id", source=ctx.source, record=number or None)
    if not number:
        raise MappingError("record has no number", source=ctx.source, record=sys_id)
    table = value(raw, "sys_class_name") or spec.table
    unknown: list[str] = []
    extra: dict[str, Any] = {"issue_type": table}

    state_field = next((f for f in spec.state_fields if value(raw, f)), spec.state_fields[0])
    code, label = value(raw, state_field), display(raw, state_field)
    entry = ctx.codes.state(spec.state_tables, code, label) if code else None
    if entry is None:
        unknown.append("state")
        status = fallback_status(value(raw, "active"))
        extra["status_label"] = label or code or None
    else:
        status = entry.status
        extra["status_label"] = label or entry.label
    for flag, flagged, flag_status in spec.status_flags:
        if value(raw, flag).strip().lower() != flagged:
            continue
        # A hold flag only means something on open work; other flags settle the outcome.
        if flag_status is not Status.ON_HOLD or status in (Status.NEW, Status.IN_PROGRESS):
            status = flag_status

    priority: int | None = None
    priority_code = value(raw, "priority")
    if priority_code:
        known = ctx.codes.priority_of(priority_code)
        if known is None:
            unknown.append("priority")
            extra["priority_label"] = display(raw, "priority") or priority_code
        else:
            priority = known[0]

    resolved_at = None
    for name in spec.resolved:
        resolved_at = _when(raw, name)
        if resolved_at is not None:
            break

    effort, source = _effort(spec, raw, extra)
    _extras(spec, raw, extra, unknown)
    parent_key = _first_ref(raw, spec.parent)
    if parent_key == number or parent_key in (
        extra.get("linked_project"),
        extra.get("linked_demand"),
    ):
        parent_key = None  # a change's project or demand is its link, not its parent
    category = value(raw, spec.category) if spec.category else ""
    if category and display(raw, spec.category or "") not in (None, "", category):
        extra["category_label"] = display(raw, spec.category or "")
    if unknown:
        extra["unknown_codes"] = unknown
    description = value(raw, "description")
    data: dict[str, Any] = {
        "id": f"{ctx.source}:{sys_id}",
        "source": ctx.source,
        "kind": spec.kind,
        "key": number,
        "title": value(raw, "short_description"),
        "description": description or None,
        "status": status,
        "status_raw": code or None,
        "priority": priority,
        "created_at": _when(raw, "opened_at") or _when(raw, "sys_created_on"),
        "updated_at": _when(raw, "sys_updated_on"),
        "resolved_at": resolved_at,
        "team": _ref(raw, "assignment_group"),
        "assignee": _ref(raw, "assigned_to"),
        "requester": _first_ref(raw, spec.requester),
        "service": _ref(raw, "business_service"),
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


def _effort(
    spec: TableSpec, raw: Mapping[str, Any], extra: dict[str, Any]
) -> tuple[float | None, EffortSource | None]:
    measured = next(
        (h for h in (duration_hours(value(raw, f)) for f in spec.measured_effort) if h),
        None,
    )
    planned = next(
        (h for h in (duration_hours(value(raw, f)) for f in spec.planned_effort) if h),
        None,
    )
    if spec.planned_effort:
        extra["effort_planned_hours"] = planned
        extra["effort_actual_hours"] = measured
    if measured:
        return round(measured, 4), EffortSource.MEASURED
    if planned:
        return round(planned, 4), EffortSource.ESTIMATED
    return None, None


def _extras(
    spec: TableSpec, raw: Mapping[str, Any], extra: dict[str, Any], unknown: list[str]
) -> None:
    classification = "business_service.service_classification"
    if classification in raw:
        shown = display(raw, classification)
        found = _service_classification(value(raw, classification), shown)
        if found:
            extra["service_classification"] = found
        elif value(raw, classification):
            extra["service_classification_raw"] = shown or value(raw, classification)
    for key, name in spec.dates:
        extra[key] = _iso(raw, name)
    for key, name in spec.choices:
        raw_value = value(raw, name)
        if not raw_value:
            continue
        if key == "risk":
            # Quirk: risk codes differ between releases (1 High vs 1 Very High); the label is
            # what the instance means, so it is kept, lower-cased, with the raw code beside it.
            extra["risk"] = (display(raw, name) or raw_value).strip().lower()
            extra["risk_raw"] = raw_value
        else:
            extra[key] = raw_value
    if spec.link:
        target = _ref(raw, spec.link)
        target_class = value(raw, f"{spec.link}.sys_class_name")
        if target:
            if target_class == "pm_project" or (not target_class and target.startswith("PRJ")):
                extra["linked_project"] = target
            elif target_class == "dmn_demand" or (not target_class and target.startswith("DMND")):
                extra["linked_demand"] = target
    if spec.project:
        extra["project_key"] = _ref(raw, spec.project)
    for key, name in spec.references:
        extra[key] = _ref(raw, name)
    investment = _investment(spec, raw, unknown)
    if investment:
        extra["investment"] = investment
    refs = {}
    for name in (
        "assignment_group",
        "assigned_to",
        "business_service",
        *spec.requester,
        *spec.parent,
        *([spec.project] if spec.project else []),
        *([spec.link] if spec.link else []),
        *(n for _, n in spec.references),
    ):
        sys_id = value(raw, name)
        if sys_id:
            refs[name] = sys_id
    if refs:
        extra["refs"] = refs
    for name in spec.extra_fields:
        if name not in raw:
            continue
        extra[name] = value(raw, name)
        shown = display(raw, name)
        if shown is not None and shown != extra[name]:
            extra[f"{name}_display"] = shown


def _investment(spec: TableSpec, raw: Mapping[str, Any], unknown: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, name in spec.investment:
        if name not in raw:
            continue
        raw_value, shown = value(raw, name), display(raw, name)
        if key == "business_case":
            found[key] = bool(_TAGS.sub(" ", raw_value).strip())
        elif not raw_value:
            continue
        elif key == "portfolio_category":
            category = portfolio_category(raw_value, shown)
            if category is None:
                unknown.append(name)
                found["portfolio_category_raw"] = shown or raw_value
            else:
                found[key] = category
        elif key == "investment_class":
            lowered = raw_value.strip().lower()
            if lowered in ("run", "change"):
                found[key] = lowered
            else:
                unknown.append(name)
                found["investment_class_raw"] = shown or raw_value
        elif key == "business_unit":
            found[key] = shown or None
        else:
            found[key] = shown or raw_value
    return {k: v for k, v in found.items() if v is not None}
