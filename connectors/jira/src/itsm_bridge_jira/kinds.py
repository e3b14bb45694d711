"""Issue type -> Kind, as data.

Jira has one record type (the issue) whose *issue type* says what it is. Service Management
projects ship incident, change, problem and service-request types (named ``[System] Incident``
on older sites, ``Incident`` on newer ones); epics and any type above them in the hierarchy
(``hierarchyLevel >= 1``: initiatives, themes) are projects; everything else (story, task, bug,
sub-task) is a task. Sites rename and add types, so the table is overridable per connector.

Issue type fields: https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-types/
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from itsm_bridge import Kind

__all__ = ["DEFAULT_TYPE_KINDS", "KindRules", "normalise_type_name"]

DEFAULT_TYPE_KINDS: Mapping[str, Kind] = {
    # Jira Service Management work categories (ITSM project templates).
    "incident": Kind.INCIDENT,
    "major incident": Kind.INCIDENT,
    "service request": Kind.REQUEST,
    "service request with approvals": Kind.REQUEST,
    "it help": Kind.REQUEST,
    "new hire request": Kind.REQUEST,
    "access request": Kind.REQUEST,
    "change": Kind.CHANGE,
    "standard change": Kind.CHANGE,
    "normal change": Kind.CHANGE,
    "emergency change": Kind.CHANGE,
    "problem": Kind.PROBLEM,
    # Hierarchy levels above the base on Data Center, which has no hierarchyLevel attribute.
    "epic": Kind.PROJECT,
    "initiative": Kind.PROJECT,
    "theme": Kind.PROJECT,
}

_SYSTEM_PREFIX = re.compile(r"^\s*\[system\]\s*", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
_MAX_KNOWN = 4096


def normalise_type_name(name: str) -> str:
    """``"[System] Service request"`` -> ``"service request"``."""
    return _SPACES.sub(" ", _SYSTEM_PREFIX.sub("", name)).strip().lower()


@dataclass(frozen=True)
class KindRules:
    """How issue types become kinds: user overrides, then the table, then the hierarchy level."""

    overrides: Mapping[str, Kind] = field(default_factory=dict)
    table: Mapping[str, Kind] = field(default_factory=lambda: dict(DEFAULT_TYPE_KINDS))
    project_level: int = 1
    # A site has a few dozen issue types and every issue repeats one: answers are remembered.
    _known: dict[tuple[Any, ...], Kind] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def build(cls, overrides: Mapping[str, str | Kind] | None = None) -> KindRules:
        normalised = {normalise_type_name(k): Kind(v) for k, v in (overrides or {}).items()}
        return cls(overrides=normalised)

    def kind_for(self, issuetype: Mapping[str, Any] | None) -> Kind:
        if not issuetype:
            return Kind.TASK
        name, level, subtask = (
            issuetype.get("name"),
            issuetype.get("hierarchyLevel"),
            issuetype.get("subtask"),
        )
        # Types are part of the key: 1, 1.0 and True are equal keys but not equal levels here.
        key = (name, type(name), level, type(level), subtask, type(subtask))
        try:
            return self._known[key]
        except KeyError:
            kind = self._kind_for(issuetype)
            if len(self._known) < _MAX_KNOWN:
                self._known[key] = kind
            return kind
        except TypeError:  # an unhashable name or level (malformed data): no memo
            return self._kind_for(issuetype)

    def _kind_for(self, issuetype: Mapping[str, Any]) -> Kind:
        name = normalise_type_name(str(issuetype.get("name") or ""))
        if name in self.overrides:
            return self.overrides[name]
        level = issuetype.get("hierarchyLevel")
        if isinstance(level, int) and level >= self.project_level:
            return Kind.PROJECT
        if issuetype.get("subtask") is True or (isinstance(level, int) and level < 0):
            return Kind.TASK
        kind = self.table.get(name)
        if kind is Kind.PROJECT and isinstance(level, int):
            # Cloud reports the level: a type merely *named* "Epic" at level 0 is not one.
            return Kind.TASK
        return kind or Kind.TASK

    def type_ids_by_kind(self, issuetypes: list[Mapping[str, Any]]) -> dict[Kind, list[str]]:
        """Group a site's issue type ids by the kind they map to (for per-kind JQL)."""
        grouped: dict[Kind, list[str]] = {kind: [] for kind in Kind}
        for issuetype in issuetypes:
            type_id = issuetype.get("id")
            if type_id is None:
                continue
            grouped[self.kind_for(issuetype)].append(str(type_id))
        for ids in grouped.values():
            ids.sort(key=lambda v: (len(v), v))
        return grouped
