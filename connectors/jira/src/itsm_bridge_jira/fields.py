"""Custom fields by name: ``/field`` is read once per site and names resolve to ids.

Custom field ids differ per site (Story Points is ``customfield_10016`` on one site and
``customfield_10026`` on the next), so users name fields and the catalog finds the ids. Options
may also give an id (``customfield_10016``) directly. Values are reduced to text the same way for
every field shape Jira uses (select options, users, Atlassian teams, arrays, numbers).

API: https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-fields/
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EPIC_LINK_SCHEMA", "FieldCatalog", "field_text"]

EPIC_LINK_SCHEMA = "com.pyxis.greenhopper.jira:gh-epic-link"
_FIELD_ID = re.compile(r"^customfield_\d+$")


@dataclass(frozen=True)
class FieldCatalog:
    """A site's fields: id -> name and lower-cased name -> ids (names are not unique)."""

    names: Mapping[str, str] = field(default_factory=dict)
    by_name: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    custom_types: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_fields(cls, fields: Iterable[Mapping[str, Any]]) -> FieldCatalog:
        names: dict[str, str] = {}
        by_name: dict[str, list[str]] = {}
        custom_types: dict[str, str] = {}
        for entry in fields:
            field_id, name = entry.get("id"), entry.get("name")
            if not isinstance(field_id, str) or not isinstance(name, str):
                continue
            names[field_id] = name
            by_name.setdefault(name.strip().lower(), []).append(field_id)
            schema = entry.get("schema")
            if isinstance(schema, Mapping) and isinstance(schema.get("custom"), str):
                custom_types[field_id] = schema["custom"]
        ordered = {k: tuple(sorted(v, key=_id_order)) for k, v in by_name.items()}
        return cls(names=names, by_name=ordered, custom_types=custom_types)

    def resolve(self, name_or_id: str | None) -> str | None:
        """The field id for a name (case-insensitive) or an id; ``None`` when the site lacks it.

        Two fields may share a name (a company-managed and a team-managed "Story Points"); the
        oldest (lowest id) wins, and options can name the id to choose another.
        """
        if not name_or_id:
            return None
        if name_or_id in self.names or _FIELD_ID.match(name_or_id):
            return name_or_id
        ids = self.by_name.get(name_or_id.strip().lower())
        return ids[0] if ids else None

    def epic_link(self) -> str | None:
        """The legacy Epic Link field of a Data Center site (by its schema, else by name)."""
        for field_id, custom in sorted(self.custom_types.items(), key=lambda kv: _id_order(kv[0])):
            if custom == EPIC_LINK_SCHEMA:
                return field_id
        return self.resolve("Epic Link")


def _id_order(field_id: str) -> tuple[int, str]:
    digits = field_id.rsplit("_", 1)[-1]
    return (int(digits), field_id) if digits.isdigit() else (-1, field_id)


def field_text(value: Any) -> str | None:
    """A field value as text: option ``value``, user ``displayName``, team ``name``/``title``."""
    if value is None:
        return None
    if type(value) is str:  # the common shapes first, by exact type (cheap)
        return value.strip() or None
    if type(value) is dict:
        return _object_text(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, str):
        text = value.strip()
        return text or None
    if isinstance(value, Mapping):
        return _object_text(value)
    if isinstance(value, list):
        parts = [t for t in (field_text(v) for v in value) if t]
        return ", ".join(parts) if parts else None
    return str(value)


def _object_text(value: Mapping[str, Any]) -> str | None:
    for key in ("value", "name", "title", "displayName", "key"):
        candidate = value.get(key)
        if isinstance(candidate, str) and candidate.strip():
            child = value.get("child")
            if key == "value" and isinstance(child, Mapping) and child.get("value"):
                return f"{candidate.strip()} / {str(child['value']).strip()}"
            return candidate.strip()
    return None


def field_number(value: Any) -> float | None:
    """A numeric field (story points) as a float, tolerating numbers sent as strings."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None
