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
from datetime import UTC, datetime
from functools import cached_property, lru_cache
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


@lru_cache(maxsize=4096)
def normalise_value(value: str) -> str:
    """``"Keep-the-Lights On!"`` -> ``"keep the lights on"`` (for code-table lookups).

    Memoised: a site has a few dozen status, priority and category values, repeated per issue.
    """
    lowered = value.strip().lower().replace("’", "'")
    return _SPACES.sub(" ", _NON_WORD.sub(" ", lowered)).strip()


def _obj(value: Any) -> Mapping[str, Any] | None:
    """``value`` if it is a JSON object, else ``None`` (the exact-dict test first: it is cheap)."""
    if type(value) is dict:
        return value
    return value if isinstance(value, Mapping) else None


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
    # (status name, category key, resolution name) -> map_status answer, for this config's names.
    _statuses: dict[tuple[Any, ...], tuple[Status, bool]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @cached_property
    def browse_prefix(self) -> str:
        return f"{self.browse_url.rstrip('/')}/browse/"

    def status(
        self, status: Mapping[str, Any] | None, resolution: Mapping[str, Any] | None
    ) -> tuple[Status, bool]:
        """:func:`map_status` with this config's names, remembered per distinct value."""
        category = status.get("statusCategory") if status is not None else None
        key = (
            status.get("name") if status is not None else None,
            category.get("key") if type(category) is dict else None,
            resolution.get("name") if resolution is not None else None,
        )
        name, category_key, resolution_name = key
        if (
            (category is not None and type(category) is not dict)
            or (name is not None and type(name) is not str)
            or (category_key is not None and type(category_key) is not str)
            or (resolution_name is not None and type(resolution_name) is not str)
        ):
            return map_status(status, resolution, self.status_names)  # odd shapes: no memo
        known = self._statuses.get(key)
        if known is None:
            known = map_status(status, resolution, self.status_names)
            if len(self._statuses) < 4096:
                self._statuses[key] = known
        return known


def parse_jira_datetime(value: Any) -> datetime | None:
    """Jira's ``2026-01-05T10:00:00.000+0530`` (the account's offset, no colon) -> UTC."""
    if value is None or value == "":
        return None
    if type(value) is str and len(value) == 28 and value[10] == "T":
        # Fast path for Jira's fixed shape; anything unusual takes the general parser below.
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is not None:
                return parsed.astimezone(UTC)
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
    value = _obj(value)
    if value is None:
        return None
    for key in ("displayName", "name", "accountId", "emailAddress"):
        text = value.get(key)
        if isinstance(text, str) and text:
            # A hand-typed display name may carry padding: "Jane Doe " must not be another person.
            text = text.strip()
            if text:
                return text
    return None


def _names(values: Any) -> list[str]:
    if not isinstance(values, list):
        return []
    return [str(v["name"]) for v in values if _obj(v) is not None and v.get("name")]


def _hours(seconds: Any) -> float | None:
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        return None
    return round(float(seconds) / 3600.0, 4)


def _team(
    fields: Mapping[str, Any],
    config: MappingConfig,
    project: Mapping[str, Any],
    components: list[str],
) -> str | None:
    project_name = project.get("name")
    if config.team_from == "field" and config.team_field:
        team = field_text(fields.get(config.team_field))
        if team:
            return team
    if config.team_from == "component" and components:
        return components[0]
    return str(project_name) if project_name else None


def _service(fields: Mapping[str, Any], config: MappingConfig, components: list[str]) -> str | None:
    if config.service_from == "field" and config.service_field:
        return field_text(fields.get(config.service_field))
    if config.service_from == "component":
        return components[0] if components else None
    return None


def _parent_key(fields: Mapping[str, Any], config: MappingConfig) -> str | None:
    parent = _obj(fields.get("parent"))
    if parent is not None and parent.get("key"):
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
    if not issue_id or not key:
        raise MappingError(
            "issue without id or key", source=config.source, record=str(key or issue_id or "?")
        )
    fields = _obj(fields)
    if fields is None:
        raise MappingError(
            "issue without fields: the search must request explicit fields",
            source=config.source,
            record=str(key),
        )
    get = fields.get
    try:
        updated = parse_jira_datetime(get("updated"))
        created = parse_jira_datetime(get("created"))
        resolved = parse_jira_datetime(get("resolutiondate"))
    except ValueError as exc:
        raise MappingError(f"bad datetime: {exc}", source=config.source, record=str(key)) from None
    if updated is None:
        raise MappingError(
            "issue without 'updated': the search must request it",
            source=config.source,
            record=str(key),
        )
    issuetype = _obj(get("issuetype"))
    kind = config.kinds.kind_for(issuetype)
    status_raw = _obj(get("status"))
    resolution = _obj(get("resolution"))
    status, status_known = config.status(status_raw, resolution)
    unknown: list[str] = []
    if status_raw is not None and not status_known:
        unknown.append("status")
    priority_raw = get("priority")
    priority_name = field_text(priority_raw) if priority_raw else None
    priority = config.priorities.get(normalise_value(priority_name)) if priority_name else None
    if priority_name and priority is None:
        unknown.append("priority")

    effort_hours = _hours(get("timespent"))
    effort_source: EffortSource | None = EffortSource.MEASURED if effort_hours else None
    if not effort_hours:
        estimate = _hours(get("timeoriginalestimate"))
        if estimate:
            effort_hours, effort_source = estimate, EffortSource.ESTIMATED
        else:
            effort_hours = None

    project: Mapping[str, Any] = _obj(get("project")) or {}
    type_name = issuetype.get("name") if issuetype is not None else None
    status_name = status_raw.get("name") if status_raw is not None else None
    # Keys go in a fixed order and only with a value (None is left out, as `put` does).
    extra: dict[str, Any] = {}
    if type_name is not None:
        extra["issue_type"] = type_name
    level = issuetype.get("hierarchyLevel") if issuetype is not None else None
    if level is not None:
        extra["hierarchy_level"] = level
    if project.get("key") is not None:
        extra["project_key"] = project["key"]
    if status_name is not None:
        extra["status_label"] = status_name

    def put(name: str, value: Any) -> None:
        if value is None:
            extra.pop(name, None)
        else:
            extra[name] = value

    category = _obj(status_raw.get("statusCategory")) if status_raw is not None else None
    if category is not None and category.get("key"):
        extra["status_category"] = category["key"]
    if resolution is not None and resolution.get("name"):
        extra["resolution"] = resolution["name"]
    if project.get("projectTypeKey"):
        extra["project_type"] = project["projectTypeKey"]
    components = _names(get("components"))
    if components:
        extra["components"] = components
    aggregate = _hours(get("aggregatetimespent"))
    if aggregate is not None and aggregate != effort_hours:
        extra["aggregate_hours"] = aggregate
    if config.story_points_field:
        points = field_number(get(config.story_points_field))
        if points is not None:
            extra["story_points"] = points
    if config.investment_field:
        raw_category = field_text(get(config.investment_field))
        if raw_category:
            investment: dict[str, Any] = {"category_raw": raw_category}
            mapped = portfolio_category(raw_category, config.investment_map)
            if mapped:
                investment["portfolio_category"] = mapped
            else:
                unknown.append("investment")
            extra["investment"] = investment
    for extra_key, field_id in config.extra_fields.items():
        value = get(field_id)
        if value is None:
            continue
        if extra_key.startswith(("planned_", "actual_")) and isinstance(value, str):
            try:
                put(extra_key, _iso(parse_jira_datetime(value)))
            except ValueError:
                put(extra_key, value)
        else:
            put(extra_key, field_text(value))
    service = _service(fields, config, components)
    if service and service in config.service_classification:
        extra["service_classification"] = config.service_classification[service]
    changelog = raw.get("changelog")
    if changelog is not None:
        transitions = status_transitions(changelog)
        if transitions is not None:
            extra["status_transitions"] = transitions
            histories = changelog.get("histories")
            total = changelog.get("total")
            if isinstance(total, int) and isinstance(histories, list) and total > len(histories):
                extra["changelog_truncated"] = True
    worklogs = _worklogs(raw.get("worklogs"))
    if worklogs is not None:
        extra["worklogs"] = worklogs
    if unknown:
        extra["unknown_codes"] = unknown

    labels = get("labels")
    try:
        # A dict validated directly: the same checks as WorkItem(**...), without its __init__.
        return WorkItem.model_validate(
            {
                "id": f"{config.source}:{issue_id}",
                "source": config.source,
                "kind": kind,
                "key": str(key),
                "title": str(get("summary") or ""),
                "description": rich_text(get("description")),
                "status": status,
                "status_raw": status_name,
                "priority": priority,
                "created_at": created,
                "updated_at": updated,
                "resolved_at": resolved,
                "team": _team(fields, config, project, components),
                "assignee": _user(get("assignee")),
                "requester": _user(get("reporter")),
                "service": service,
                "category": type_name,
                "labels": tuple([str(v) for v in labels]) if labels else (),
                "effort_hours": effort_hours,
                "effort_source": effort_source,
                "parent_key": _parent_key(fields, config),
                "url": f"{config.browse_prefix}{key}",
                "extra": extra,
            }
        )
    except (ValueError, TypeError) as exc:
        raise MappingError(f"invalid issue: {exc}", source=config.source, record=str(key)) from None


def is_kind(raw: Mapping[str, Any], kind: Kind, config: MappingConfig) -> bool:
    """Whether an issue maps to ``kind`` (the per-kind pull filters on this)."""
    fields = raw.get("fields")
    issuetype = fields.get("issuetype") if isinstance(fields, Mapping) else None
    return config.kinds.kind_for(issuetype if isinstance(issuetype, Mapping) else None) is kind
