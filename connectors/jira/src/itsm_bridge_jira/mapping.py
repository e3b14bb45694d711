"""Pure mappers: one Jira issue (v2 or v3 JSON) -> one WorkItem. No I/O.

Everything site-specific (which custom field is "Team", which type is an incident) arrives in a
:class:`MappingConfig` resolved beforehand, so the same raw JSON always maps the same way and the
mappers are testable from recorded payloads alone.

Issue shape: https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from itsm_bridge import EffortSource, Kind, MappingError, Status, WorkItem
from itsm_bridge._time import parse_datetime
from itsm_bridge_jira.adf import rich_text
from itsm_bridge_jira.codes import (
    CANCEL_RESOLUTIONS,
    CATEGORY_STATUS,
    DEFAULT_INVESTMENT_MAP,
    PRIORITY_BY_NAME,
    STATUS_BY_NAME,
)
from itsm_bridge_jira.fields import field_number, field_text
from itsm_bridge_jira.kinds import KindRules

__all__ = [
    "CANCEL_RESOLUTIONS",
    "CATEGORY_STATUS",
    "DEFAULT_INVESTMENT_MAP",
    "PRIORITY_BY_NAME",
    "STATUS_BY_NAME",
    "MappingConfig",
    "map_issue",
    "map_status",
    "normalise_value",
    "parse_jira_datetime",
    "portfolio_category",
    "status_transitions",
]

_NON_WORD = re.compile(r"[^a-z0-9' ]+")
_SPACES = re.compile(r"\s+")

TeamFrom = Literal["field", "component", "project"]
ServiceFrom = Literal["component", "field", "none"]


def normalise_value(value: str) -> str:
    """``"Keep-the-Lights On!"`` -> ``"keep the lights on"`` (for code-table lookups)."""
    lowered = value.strip().lower().replace("’", "'")
    return _SPACES.sub(" ", _NON_WORD.sub(" ", lowered)).strip()


@dataclass(frozen=True)
class MappingConfig:
    """Everything the mapper needs to know about the site, resolved before mapping."""

    source: str
    browse_url: str
    kinds: KindRules = field(default_factory=KindRules)
    team_from: TeamFrom = "field"
    team_field: str | None = None
    service_from: ServiceFrom = "component"
    service_field: str | None = None
    story_points_field: str | None = None
    investment_field: str | None = None
    epic_link_field: str | None = None
    extra_fields: Mapping[str, str] = field(default_factory=dict)
    investment_map: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_INVESTMENT_MAP))
    status_names: Mapping[str, Status] = field(default_factory=lambda: dict(STATUS_BY_NAME))
    priorities: Mapping[str, int] = field(default_factory=lambda: dict(PRIORITY_BY_NAME))
    service_classification: Mapping[str, str] = field(default_factory=dict)


def parse_jira_datetime(value: Any) -> datetime | None:
    """Jira's ``2026-01-05T10:00:00.000+0530`` (the account's offset, no colon) -> UTC."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a datetime string, got {type(value).__name__}")
    return parse_datetime(value)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def map_status(
    status: Mapping[str, Any] | None,
    resolution: Mapping[str, Any] | None,
    names: Mapping[str, Status] = STATUS_BY_NAME,
) -> tuple[Status, bool]:
    """The normalised status and whether the raw status was understood.

    Order: a cancelling resolution on a finished issue, the status name, the status category.
    """
    name = normalise_value(str((status or {}).get("name") or ""))
    category = (status or {}).get("statusCategory")
    category_key = category.get("key") if isinstance(category, Mapping) else None
    resolution_name = normalise_value(str((resolution or {}).get("name") or ""))
    known = name in names or category_key in CATEGORY_STATUS
    if name in names:
        result = names[name]
    elif category_key in CATEGORY_STATUS:
        result = CATEGORY_STATUS[str(category_key)]
    else:
        result = Status.CLOSED if resolution_name else Status.NEW
    finished = result in (Status.RESOLVED, Status.CLOSED) or category_key == "done"
    if finished and resolution_name in CANCEL_RESOLUTIONS:
        return Status.CANCELLED, known
    return result, known


def portfolio_category(raw_value: str | None, table: Mapping[str, str]) -> str | None:
    """``"Keep the lights on"`` -> ``"run"`` through the configured value map."""
    if not raw_value:
        return None
    key = normalise_value(raw_value)
    if key in table:
        return table[key]
    # "Run the Business (RTB)", "Strategic / new product": try each part.
    for part in re.split(r"[/,;:|()\[\]-]", raw_value):
        normalised = normalise_value(part)
        if normalised in table:
            return table[normalised]
    return None


def status_transitions(changelog: Mapping[str, Any] | None) -> list[dict[str, Any]] | None:
    """Status changes from a changelog (embedded or bulk-fetched), oldest first."""
    if not isinstance(changelog, Mapping):
        return None
    histories = changelog.get("histories")
    if not isinstance(histories, list):
        return None
    transitions: list[tuple[datetime, dict[str, Any]]] = []
    for history in histories:
        if not isinstance(history, Mapping):
            continue
        when = parse_jira_datetime(history.get("created"))
        for item in history.get("items") or ():
            if not isinstance(item, Mapping):
                continue
            if item.get("fieldId", item.get("field")) != "status" and item.get("field") != "status":
                continue
            author = history.get("author")
            transitions.append(
                (
                    when or datetime.min,
                    {
                        "at": _iso(when),
                        "from": item.get("fromString"),
                        "to": item.get("toString"),
                        "by": field_text(author) if author else None,
                    },
                )
            )
    transitions.sort(key=lambda t: t[0].timestamp() if t[0] is not datetime.min else 0.0)
    return [t for _, t in transitions]


def _user(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return None
    for key in ("displayName", "name", "accountId", "emailAddress"):
        text = value.get(key)
        if isinstance(text, str) and text:
            return text
    return None


def _names(values: Any) -> list[str]:
    if not isinstance(values, list):
        return []
    return [str(v["name"]) for v in values if isinstance(v, Mapping) and v.get("name")]


def _hours(seconds: Any) -> float | None:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        return None
    return round(float(seconds) / 3600.0, 4)


def _team(fields: Mapping[str, Any], config: MappingConfig) -> str | None:
    project = fields.get("project")
    project_name = project.get("name") if isinstance(project, Mapping) else None
    components = _names(fields.get("components"))
    if config.team_from == "field" and config.team_field:
        team = field_text(fields.get(config.team_field))
        if team:
            return team
    if config.team_from == "component" and components:
        return components[0]
    return str(project_name) if project_name else None


def _service(fields: Mapping[str, Any], config: MappingConfig) -> str | None:
    if config.service_from == "field" and config.service_field:
        return field_text(fields.get(config.service_field))
    if config.service_from == "component":
        components = _names(fields.get("components"))
        return components[0] if components else None
    return None


def _parent_key(fields: Mapping[str, Any], config: MappingConfig) -> str | None:
    parent = fields.get("parent")
    if isinstance(parent, Mapping) and parent.get("key"):
        return str(parent["key"])
    if config.epic_link_field:
        # Legacy Data Center Epic Link: a custom field holding the epic's key.
        link = fields.get(config.epic_link_field)
        if isinstance(link, str) and link.strip():
            return link.strip()
        if isinstance(link, Mapping) and link.get("key"):
            return str(link["key"])
    return None


def _worklogs(raw: Any) -> list[dict[str, Any]] | None:
    if not isinstance(raw, list):
        return None
    result = []
    for entry in raw:
        if not isinstance(entry, Mapping):
            continue
        started = parse_jira_datetime(entry.get("started"))
        result.append(
            {
                "id": str(entry.get("id")),
                "started": _iso(started),
                "hours": _hours(entry.get("timeSpentSeconds")) or 0.0,
                "author": _user(entry.get("author")),
            }
        )
    result.sort(key=lambda w: (w["started"] or "", w["id"]))
    return result


def map_issue(raw: Mapping[str, Any], config: MappingConfig) -> WorkItem:
    """Map one issue. Raises :class:`MappingError` naming the issue and the missing field."""
    issue_id = raw.get("id")
    key = raw.get("key")
    fields = raw.get("fields")
    where = str(key or issue_id or "?")
    if not issue_id or not key:
        raise MappingError("issue without id or key", source=config.source, record=where)
    if not isinstance(fields, Mapping):
        raise MappingError(
            "issue without fields: the search must request explicit fields",
            source=config.source,
            record=where,
        )
    try:
        updated = parse_jira_datetime(fields.get("updated"))
        created = parse_jira_datetime(fields.get("created"))
        resolved = parse_jira_datetime(fields.get("resolutiondate"))
    except ValueError as exc:
        raise MappingError(f"bad datetime: {exc}", source=config.source, record=where) from None
    if updated is None:
        raise MappingError(
            "issue without 'updated': the search must request it",
            source=config.source,
            record=where,
        )
    issuetype = fields.get("issuetype") if isinstance(fields.get("issuetype"), Mapping) else None
    kind = config.kinds.kind_for(issuetype)
    status_raw = fields.get("status") if isinstance(fields.get("status"), Mapping) else None
    resolution = fields.get("resolution") if isinstance(fields.get("resolution"), Mapping) else None
    status, status_known = map_status(status_raw, resolution, config.status_names)
    unknown: list[str] = []
    if status_raw is not None and not status_known:
        unknown.append("status")
    priority_raw = fields.get("priority")
    priority_name = field_text(priority_raw) if priority_raw else None
    priority = config.priorities.get(normalise_value(priority_name)) if priority_name else None
    if priority_name and priority is None:
        unknown.append("priority")

    effort_hours = _hours(fields.get("timespent"))
    effort_source: EffortSource | None = EffortSource.MEASURED if effort_hours else None
    if not effort_hours:
        estimate = _hours(fields.get("timeoriginalestimate"))
        if estimate:
            effort_hours, effort_source = estimate, EffortSource.ESTIMATED
        else:
            effort_hours = None

    project_raw = fields.get("project")
    project: Mapping[str, Any] = project_raw if isinstance(project_raw, Mapping) else {}
    extra: dict[str, Any] = {
        "issue_type": (issuetype or {}).get("name"),
        "hierarchy_level": (issuetype or {}).get("hierarchyLevel"),
        "project_key": project.get("key"),
        "status_label": (status_raw or {}).get("name"),
    }
    category = (status_raw or {}).get("statusCategory")
    if isinstance(category, Mapping) and category.get("key"):
        extra["status_category"] = category["key"]
    if resolution is not None and resolution.get("name"):
        extra["resolution"] = resolution["name"]
    if project.get("projectTypeKey"):
        extra["project_type"] = project["projectTypeKey"]
    components = _names(fields.get("components"))
    if components:
        extra["components"] = components
    aggregate = _hours(fields.get("aggregatetimespent"))
    if aggregate is not None and aggregate != effort_hours:
        extra["aggregate_hours"] = aggregate
    if config.story_points_field:
        points = field_number(fields.get(config.story_points_field))
        if points is not None:
            extra["story_points"] = points
    if config.investment_field:
        raw_category = field_text(fields.get(config.investment_field))
        if raw_category:
            investment: dict[str, Any] = {"category_raw": raw_category}
            mapped = portfolio_category(raw_category, config.investment_map)
            if mapped:
                investment["portfolio_category"] = mapped
            else:
                unknown.append("investment")
            extra["investment"] = investment
    for extra_key, field_id in config.extra_fields.items():
        value = fields.get(field_id)
        if value is None:
            continue
        if extra_key.startswith(("planned_", "actual_")) and isinstance(value, str):
            try:
                extra[extra_key] = _iso(parse_jira_datetime(value))
            except ValueError:
                extra[extra_key] = value
        else:
            extra[extra_key] = field_text(value)
    service = _service(fields, config)
    if service and service in config.service_classification:
        extra["service_classification"] = config.service_classification[service]
    transitions = status_transitions(raw.get("changelog"))
    if transitions is not None:
        extra["status_transitions"] = transitions
        changelog = raw.get("changelog")
        histories = changelog.get("histories") if isinstance(changelog, Mapping) else None
        total = changelog.get("total") if isinstance(changelog, Mapping) else None
        if isinstance(total, int) and isinstance(histories, list) and total > len(histories):
            extra["changelog_truncated"] = True
    worklogs = _worklogs(raw.get("worklogs"))
    if worklogs is not None:
        extra["worklogs"] = worklogs
    if unknown:
        extra["unknown_codes"] = unknown

    try:
        return WorkItem(
            id=f"{config.source}:{issue_id}",
            source=config.source,
            kind=kind,
            key=str(key),
            title=str(fields.get("summary") or ""),
            description=rich_text(fields.get("description")),
            status=status,
            status_raw=(status_raw or {}).get("name"),
            priority=priority,
            created_at=created,
            updated_at=updated,
            resolved_at=resolved,
            team=_team(fields, config),
            assignee=_user(fields.get("assignee")),
            requester=_user(fields.get("reporter")),
            service=service,
            category=(issuetype or {}).get("name"),
            labels=tuple(str(v) for v in fields.get("labels") or ()),
            effort_hours=effort_hours,
            effort_source=effort_source,
            parent_key=_parent_key(fields, config),
            url=f"{config.browse_url.rstrip('/')}/browse/{key}",
            extra={k: v for k, v in extra.items() if v is not None},
        )
    except (ValueError, TypeError) as exc:
        raise MappingError(f"invalid issue: {exc}", source=config.source, record=where) from None


def is_kind(raw: Mapping[str, Any], kind: Kind, config: MappingConfig) -> bool:
    """Whether an issue maps to ``kind`` (the per-kind pull filters on this)."""
    fields = raw.get("fields")
    issuetype = fields.get("issuetype") if isinstance(fields, Mapping) else None
    return config.kinds.kind_for(issuetype if isinstance(issuetype, Mapping) else None) is kind
