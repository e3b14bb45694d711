"""The tables this connector reads and what the mapper takes from each, as data.

A :class:`TableSpec` names a table, its kind, and the fields behind each part of a WorkItem. The
built-in specs cover ``incident``, ``problem``, ``change_request``, ``sc_req_item``, ``pm_project``
and ``pm_project_task`` (Table API field names from ``platform-apis.md`` A6 and the planned-task
typings [TS-PM]). Users add a table, or ``u_`` fields of a built-in one, through the connector
options; :func:`build_specs` merges them, so no code changes are needed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field

from itsm_bridge import ConfigurationError, Kind, Status

__all__ = [
    "BUILTIN",
    "KEY_FIELDS",
    "RESERVED_EXTRA_KEYS",
    "TableOption",
    "TableSpec",
    "build_specs",
]

_NAME = r"^[a-z][a-z0-9_]*$"
_FIELD = r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*"

KEY_FIELDS = ("sys_id", "number", "sys_updated_on", "state")
"""Fields without which a record cannot be mapped or paged; they must exist on every table."""

RESERVED_EXTRA_KEYS = frozenset(
    {
        "investment",
        "service_classification",
        "service_classification_raw",
        "issue_type",
        "change_type",
        "risk",
        "risk_raw",
        "close_code",
        "planned_start",
        "planned_end",
        "actual_start",
        "actual_end",
        "project_key",
        "linked_project",
        "linked_demand",
        "status_label",
        "unknown_codes",
        "priority_label",
        "category_label",
        "refs",
        "effort_planned_hours",
        "effort_actual_hours",
        "request",
        "catalog_item",
        "hold_reason",
    }
)

_TASK_FIELDS = (
    "sys_id",
    "number",
    "short_description",
    "description",
    "state",
    "priority",
    "active",
    "opened_at",
    "sys_created_on",
    "sys_updated_on",
    "sys_mod_count",
    "sys_class_name",
    "closed_at",
    "assignment_group",
    "assigned_to",
    "business_service",
    "business_service.service_classification",
    "parent",
)


@dataclass(frozen=True)
class TableSpec:
    """One table and the fields each WorkItem attribute is read from (first non-empty wins)."""

    table: str
    kind: Kind
    state_tables: tuple[str, ...]
    # The state is read from the first of these with a value (exports may carry only the
    # table's own copy, such as incident_state).
    state_fields: tuple[str, ...] = ("state",)
    requester: tuple[str, ...] = ("opened_by",)
    resolved: tuple[str, ...] = ("closed_at",)
    parent: tuple[str, ...] = ("parent",)
    project: str | None = None
    category: str | None = None
    measured_effort: tuple[str, ...] = ("time_worked",)
    planned_effort: tuple[str, ...] = ()
    # (extra key, field) pairs: datetimes rendered as ISO 8601 UTC strings.
    dates: tuple[tuple[str, str], ...] = ()
    # (extra key, field) pairs: choice values kept raw (risk keeps its label, see mapping).
    choices: tuple[tuple[str, str], ...] = ()
    # (field, raw value, status): a flag that overrides the state (change on_hold).
    status_flags: tuple[tuple[str, str, Status], ...] = ()
    # Reference whose target (project or demand) is the record's link, read with its class.
    link: str | None = None
    # (investment key, field) pairs for extra["investment"].
    investment: tuple[tuple[str, str], ...] = ()
    # (extra key, reference field) pairs whose display value is kept as is.
    references: tuple[tuple[str, str], ...] = ()
    # The user's own fields (``u_...``), copied into extra under their names.
    extra_fields: tuple[str, ...] = ()
    # An encoded query ANDed to every request (the user's own restriction).
    filter: str = ""

    def fields(self) -> tuple[str, ...]:
        """Every field the mapper reads, in a stable order: the ``sysparm_fields`` list."""
        names: list[str] = list(_TASK_FIELDS)
        names += self.state_fields + self.requester + self.resolved + self.parent
        names += self.measured_effort + self.planned_effort
        if self.project:
            names.append(self.project)
        if self.category:
            names.append(self.category)
        names += [f for _, f in self.dates] + [f for _, f in self.choices]
        names += [f for f, _, _ in self.status_flags]
        if self.link:
            names += [self.link, f"{self.link}.sys_class_name"]
        names += [f for _, f in self.investment] + [f for _, f in self.references]
        names += self.extra_fields
        return tuple(dict.fromkeys(names))

    @cached_property
    def reference_fields(self) -> tuple[str, ...]:
        """The references whose sys_ids the mapper keeps in ``extra["refs"]``, in order."""
        names = ["assignment_group", "assigned_to", "business_service"]
        names += [*self.requester, *self.parent]
        names += [self.project] if self.project else []
        names += [self.link] if self.link else []
        names += [n for _, n in self.references]
        return tuple(dict.fromkeys(names))

    def required_fields(self) -> frozenset[str]:
        """Names that must exist: the key fields and every name the user wrote."""
        return frozenset(KEY_FIELDS) | frozenset(self.extra_fields)


_PLANNED_DATES = (
    ("planned_start", "start_date"),
    ("planned_end", "end_date"),
    ("actual_start", "work_start"),
    ("actual_end", "work_end"),
)

BUILTIN: dict[str, TableSpec] = {
    spec.table: spec
    for spec in (
        TableSpec(
            table="incident",
            kind=Kind.INCIDENT,
            state_tables=("incident_state",),
            state_fields=("state", "incident_state"),
            requester=("caller_id", "opened_by"),
            resolved=("resolved_at", "closed_at"),
            parent=("parent_incident", "parent"),
            category="category",
            choices=(("close_code", "close_code"),),
            references=(("problem", "problem_id"),),
        ),
        TableSpec(
            table="problem",
            kind=Kind.PROBLEM,
            state_tables=("problem_state", "problem_state_legacy"),
            state_fields=("state", "problem_state"),
            requester=("opened_by",),
            resolved=("resolved_at", "closed_at"),
            category="category",
            # Quirk: a cancelled problem is state Closed with resolution code "canceled".
            status_flags=(("resolution_code", "canceled", Status.CANCELLED),),
        ),
        TableSpec(
            table="change_request",
            kind=Kind.CHANGE,
            state_tables=("change_state", "change_state_legacy"),
            requester=("requested_by", "opened_by"),
            resolved=("work_end", "closed_at"),
            category="category",
            dates=(
                ("planned_start", "start_date"),
                ("planned_end", "end_date"),
                ("actual_start", "work_start"),
                ("actual_end", "work_end"),
            ),
            choices=(("change_type", "type"), ("risk", "risk"), ("close_code", "close_code")),
            # Quirk: the change state model has no "on hold" state; it is a separate flag.
            status_flags=(("on_hold", "true", Status.ON_HOLD),),
            link="parent",
        ),
        TableSpec(
            table="sc_req_item",
            kind=Kind.REQUEST,
            state_tables=("task_state",),
            requester=("requested_for", "opened_by"),
            references=(("request", "request"), ("catalog_item", "cat_item")),
        ),
        TableSpec(
            table="pm_project",
            kind=Kind.PROJECT,
            requester=("opened_by",),
            parent=(),
            investment=(
                ("portfolio_category", "primary_portfolio.category"),
                ("investment_class", "investment_class"),
                ("investment_type", "investment_type"),
                ("business_case", "business_case"),
                ("business_unit", "business_unit"),
            ),
            choices=(("risk", "risk"),),
            references=(("linked_demand", "demand"),),
            state_tables=("task_state",),
            dates=_PLANNED_DATES,
            measured_effort=("work_effort",),
            planned_effort=("effort",),
            resolved=("work_end", "closed_at"),
        ),
        TableSpec(
            table="pm_project_task",
            kind=Kind.TASK,
            requester=("opened_by",),
            parent=("top_task", "parent"),
            project="top_task",
            state_tables=("task_state",),
            dates=_PLANNED_DATES,
            measured_effort=("work_effort",),
            planned_effort=("effort",),
            resolved=("work_end", "closed_at"),
        ),
    )
}


class TableOption(BaseModel):
    """A table to read in addition to (or instead of) a kind's built-in table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    table: str = Field(pattern=_NAME)
    kind: Kind
    like: str | None = Field(
        default=None, description="Built-in table whose mapping to reuse (default: the kind's)."
    )
    extra_fields: tuple[str, ...] = ()
    filter: str = ""
    state_tables: tuple[str, ...] = ()
    replace: bool = Field(default=False, description="Read only this table for the kind.")


def build_specs(
    *,
    tables: Sequence[TableOption] = (),
    extra_fields: Mapping[str, Sequence[str]] | None = None,
    filters: Mapping[str, str] | None = None,
    state_tables: Mapping[str, Sequence[str]] | None = None,
) -> dict[Kind, list[TableSpec]]:
    """The tables to read per kind: the built-ins, changed and extended by the options."""
    specs: dict[str, TableSpec] = dict(BUILTIN)
    order: dict[Kind, list[str]] = {}
    for spec in BUILTIN.values():
        order.setdefault(spec.kind, []).append(spec.table)
    extras = {k: tuple(v) for k, v in (extra_fields or {}).items()}
    queries = dict(filters or {})
    codes = {k: tuple(v) for k, v in (state_tables or {}).items()}
    for entry in tables:
        if entry.like is None:
            template = next(s for s in BUILTIN.values() if s.kind is entry.kind)
        elif entry.like in BUILTIN:
            template = BUILTIN[entry.like]
        else:
            raise ConfigurationError(
                f"table {entry.table!r}: like={entry.like!r} is not a built-in table "
                f"({', '.join(sorted(BUILTIN))})"
            )
        specs[entry.table] = replace(template, table=entry.table, kind=entry.kind)
        names = order.setdefault(entry.kind, [])
        if entry.replace:
            names[:] = [t for t in names if t not in BUILTIN]
        if entry.table not in names:
            names.append(entry.table)
        for option, given, target in (
            ("extra_fields", entry.extra_fields, extras),
            ("filter", entry.filter, queries),
            ("state_tables", entry.state_tables, codes),
        ):
            if given:
                if entry.table in target:
                    raise ConfigurationError(f"table {entry.table!r}: {option} is given twice")
                target[entry.table] = given  # type: ignore[assignment]
    for name, fields in extras.items():
        _known(specs, name, "extra_fields")
        clash = RESERVED_EXTRA_KEYS.intersection(fields)
        if clash:
            raise ConfigurationError(
                f"table {name!r}: extra field names {sorted(clash)} clash with extra keys the "
                "connector fills; rename them or leave them out"
            )
        bad = [f for f in fields if not re.fullmatch(_FIELD, f)]
        if bad:
            raise ConfigurationError(f"table {name!r}: not a field name: {bad}")
        specs[name] = replace(specs[name], extra_fields=tuple(dict.fromkeys(fields)))
    for name, query in queries.items():
        _known(specs, name, "filters")
        specs[name] = replace(specs[name], filter=query)
    for name, tables_ in codes.items():
        _known(specs, name, "state_tables")
        specs[name] = replace(specs[name], state_tables=tuple(tables_))
    return {kind: [specs[t] for t in names] for kind, names in order.items() if names}


def _known(specs: Mapping[str, TableSpec], name: str, option: str) -> None:
    if name not in specs:
        raise ConfigurationError(
            f"option {option} names table {name!r}, which is neither built in nor added with "
            f"the tables option (built in: {', '.join(sorted(BUILTIN))})"
        )
