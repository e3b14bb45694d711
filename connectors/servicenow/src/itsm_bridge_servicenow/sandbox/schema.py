"""The fake instance's data dictionary: tables, their parents, fields, types and choices.

Fields are declared on the table that defines them, as on a real instance (``number`` on
``task``), so ``sys_dictionary`` answers the way a client must expect: a table's own rows only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CHOICES", "TABLES", "FieldDef", "TableDef", "chain"]


@dataclass(frozen=True)
class FieldDef:
    type: str
    reference: str | None = None
    label: str = ""


@dataclass(frozen=True)
class TableDef:
    name: str
    label: str
    parent: str | None
    display: str = "name"
    fields: dict[str, FieldDef] = field(default_factory=dict)


def _f(kind: str, reference: str | None = None) -> FieldDef:
    return FieldDef(kind, reference)


_SYS = {
    "sys_id": _f("GUID"),
    "sys_created_on": _f("glide_date_time"),
    "sys_updated_on": _f("glide_date_time"),
    "sys_created_by": _f("string"),
    "sys_updated_by": _f("string"),
    "sys_mod_count": _f("integer"),
    "sys_class_name": _f("sys_class_name"),
}

TABLES: dict[str, TableDef] = {
    t.name: t
    for t in (
        TableDef(
            "task",
            "Task",
            None,
            "number",
            {
                **_SYS,
                "number": _f("string"),
                "short_description": _f("string"),
                "description": _f("string"),
                "state": _f("integer"),
                "priority": _f("integer"),
                "impact": _f("integer"),
                "urgency": _f("integer"),
                "active": _f("boolean"),
                "opened_at": _f("glide_date_time"),
                "opened_by": _f("reference", "sys_user"),
                "closed_at": _f("glide_date_time"),
                "closed_by": _f("reference", "sys_user"),
                "assignment_group": _f("reference", "sys_user_group"),
                "assigned_to": _f("reference", "sys_user"),
                "business_service": _f("reference", "cmdb_ci_service"),
                "parent": _f("reference", "task"),
                "time_worked": _f("timer"),
                "work_start": _f("glide_date_time"),
                "work_end": _f("glide_date_time"),
                "due_date": _f("glide_date_time"),
                "close_notes": _f("string"),
            },
        ),
        TableDef(
            "incident",
            "Incident",
            "task",
            "number",
            {
                "caller_id": _f("reference", "sys_user"),
                "category": _f("string"),
                "subcategory": _f("string"),
                "resolved_at": _f("glide_date_time"),
                "close_code": _f("string"),
                "parent_incident": _f("reference", "incident"),
                "incident_state": _f("integer"),
                "hold_reason": _f("integer"),
                "problem_id": _f("reference", "problem"),
            },
        ),
        TableDef(
            "problem",
            "Problem",
            "task",
            "number",
            {
                "problem_state": _f("integer"),
                "category": _f("string"),
                "resolved_at": _f("glide_date_time"),
                "resolution_code": _f("string"),
            },
        ),
        TableDef(
            "change_request",
            "Change Request",
            "task",
            "number",
            {
                "type": _f("string"),
                "risk": _f("integer"),
                "close_code": _f("string"),
                "category": _f("string"),
                "start_date": _f("glide_date_time"),
                "end_date": _f("glide_date_time"),
                "requested_by": _f("reference", "sys_user"),
                "on_hold": _f("boolean"),
            },
        ),
        TableDef(
            "sc_request",
            "Request",
            "task",
            "number",
            {"requested_for": _f("reference", "sys_user")},
        ),
        TableDef(
            "sc_req_item",
            "Requested Item",
            "task",
            "number",
            {
                "requested_for": _f("reference", "sys_user"),
                "request": _f("reference", "sc_request"),
                "cat_item": _f("reference", "sc_cat_item"),
                "stage": _f("string"),
            },
        ),
        TableDef(
            "planned_task",
            "Planned Task",
            "task",
            "number",
            {
                "start_date": _f("glide_date_time"),
                "end_date": _f("glide_date_time"),
                "effort": _f("glide_duration"),
                "work_effort": _f("glide_duration"),
                "duration": _f("glide_duration"),
                "top_task": _f("reference", "planned_task"),
                "percent_complete": _f("decimal"),
            },
        ),
        TableDef(
            "pm_project",
            "Project",
            "planned_task",
            "number",
            {
                "primary_portfolio": _f("reference", "pm_portfolio"),
                "investment_class": _f("string"),
                "investment_type": _f("string"),
                "business_case": _f("html"),
                "business_unit": _f("reference", "business_unit"),
                "demand": _f("reference", "dmn_demand"),
                "risk": _f("string"),
                "phase": _f("string"),
                "project_manager": _f("reference", "sys_user"),
            },
        ),
        TableDef("pm_project_task", "Project Task", "planned_task", "number", {}),
        TableDef("dmn_demand", "Demand", "planned_task", "number", {}),
        TableDef(
            "sys_user",
            "User",
            None,
            "name",
            {**_SYS, "name": _f("string"), "user_name": _f("string")},
        ),
        TableDef("sys_user_group", "Group", None, "name", {**_SYS, "name": _f("string")}),
        TableDef("cmdb", "Base Configuration Item", None, "name", {**_SYS, "name": _f("string")}),
        TableDef(
            "cmdb_ci", "Configuration Item", "cmdb", "name", {"operational_status": _f("integer")}
        ),
        TableDef(
            "cmdb_ci_service",
            "Service",
            "cmdb_ci",
            "name",
            {"service_classification": _f("string")},
        ),
        TableDef(
            "pm_portfolio",
            "Portfolio",
            None,
            "name",
            {**_SYS, "name": _f("string"), "category": _f("string")},
        ),
        TableDef("business_unit", "Business Unit", None, "name", {**_SYS, "name": _f("string")}),
        TableDef("sc_cat_item", "Catalog Item", None, "name", {**_SYS, "name": _f("string")}),
        TableDef(
            "sys_db_object",
            "Table",
            None,
            "label",
            {
                **_SYS,
                "name": _f("string"),
                "label": _f("string"),
                "super_class": _f("reference", "sys_db_object"),
            },
        ),
        TableDef(
            "sys_dictionary",
            "Dictionary Entry",
            None,
            "column_label",
            {
                **_SYS,
                "name": _f("string"),
                "element": _f("string"),
                "internal_type": _f("string"),
                "reference": _f("string"),
                "column_label": _f("string"),
            },
        ),
    )
}

# Choice labels per (table, field); a table inherits its parents' lists unless it has its own.
CHOICES: dict[tuple[str, str], dict[str, str]] = {
    ("task", "state"): {
        "-5": "Pending",
        "1": "Open",
        "2": "Work in Progress",
        "3": "Closed Complete",
        "4": "Closed Incomplete",
        "7": "Closed Skipped",
    },
    ("incident", "state"): {
        "1": "New",
        "2": "In Progress",
        "3": "On Hold",
        "6": "Resolved",
        "7": "Closed",
        "8": "Canceled",
    },
    ("problem", "state"): {
        "101": "New",
        "102": "Assess",
        "103": "Root Cause Analysis",
        "104": "Fix in Progress",
        "106": "Resolved",
        "107": "Closed",
    },
    ("change_request", "state"): {
        "-5": "New",
        "-4": "Assess",
        "-3": "Authorize",
        "-2": "Scheduled",
        "-1": "Implement",
        "0": "Review",
        "3": "Closed",
        "4": "Canceled",
    },
    ("task", "priority"): {
        "1": "1 - Critical",
        "2": "2 - High",
        "3": "3 - Moderate",
        "4": "4 - Low",
        "5": "5 - Planning",
    },
    ("task", "impact"): {"1": "1 - High", "2": "2 - Medium", "3": "3 - Low"},
    ("task", "urgency"): {"1": "1 - High", "2": "2 - Medium", "3": "3 - Low"},
    ("incident", "hold_reason"): {
        "1": "Awaiting Caller",
        "3": "Awaiting Problem",
        "4": "Awaiting Vendor",
        "5": "Awaiting Change",
    },
    ("change_request", "type"): {
        "standard": "Standard",
        "normal": "Normal",
        "emergency": "Emergency",
    },
    ("change_request", "risk"): {"1": "Very High", "2": "High", "3": "Moderate", "4": "Low"},
    ("change_request", "close_code"): {
        "successful": "Successful",
        "successful_issues": "Successful with issues",
        "unsuccessful": "Unsuccessful",
    },
    ("problem", "resolution_code"): {
        "fix_applied": "Fix Applied",
        "risk_accepted": "Risk Accepted",
        "duplicate": "Duplicate",
        "canceled": "Canceled",
    },
    ("pm_project", "investment_class"): {"run": "Run", "change": "Change"},
    ("pm_project", "risk"): {
        "critical": "Critical",
        "high": "High",
        "moderate": "Moderate",
        "low": "Low",
    },
    ("pm_portfolio", "category"): {
        "rtb": "Run the business",
        "gtb": "Grow the business",
        "ttb": "Transform the business",
    },
    ("cmdb_ci_service", "service_classification"): {
        "Business Service": "Business Service",
        "Technical Service": "Technical Service",
    },
}

LEGACY_CHANGE_STATES = {
    "-5": "Pending",
    "1": "Open",
    "2": "Work in Progress",
    "3": "Closed Complete",
    "4": "Closed Incomplete",
    "7": "Closed Skipped",
}
LEGACY_PROBLEM_STATES = {
    "1": "Open",
    "2": "Known Error",
    "3": "Pending Change",
    "4": "Closed/Resolved",
}


def chain(table: str) -> list[str]:
    """``table`` and its ancestors, nearest first."""
    names: list[str] = []
    current: str | None = table
    while current is not None and current in TABLES and current not in names:
        names.append(current)
        current = TABLES[current].parent
    return names
