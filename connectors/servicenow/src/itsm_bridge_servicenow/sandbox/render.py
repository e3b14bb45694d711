"""Rendering the generator's TruthItems as ServiceNow table rows (raw values, all strings).

Each kind goes to its table with the fields a real record carries: choice codes (labels come from
the choice lists), references as sys_ids to rows of sys_user, sys_user_group, cmdb_ci_service
(with its service classification), pm_portfolio (run/grow/transform as rtb/gtb/ttb),
business_unit, sc_request and sc_cat_item, and durations as epoch-offset datetimes
("1970-01-03 04:00:00" = 52 hours). The ground-truth label never leaves the TruthItem.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from itsm_bridge import Kind, Status
from itsm_bridge.sandbox import TruthItem

__all__ = ["KIND_TABLE", "Renderer", "sys_id_for"]

KIND_TABLE = {
    Kind.INCIDENT: "incident",
    Kind.PROBLEM: "problem",
    Kind.CHANGE: "change_request",
    Kind.REQUEST: "sc_req_item",
    Kind.PROJECT: "pm_project",
    Kind.TASK: "pm_project_task",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PORTFOLIOS = {"run": "rtb", "grow": "gtb", "transform": "ttb"}
_PORTFOLIO_NAMES = {
    "rtb": "IT Operations",
    "gtb": "Business Growth",
    "ttb": "Digital Transformation",
}
_RISK = {"very high": "1", "high": "2", "moderate": "3", "low": "4"}
_CATALOG = ("Standard Laptop", "Software Access", "New Mobile Phone", "Shared Mailbox", "VPN Token")
_INCIDENT_CLOSE = ("Solution provided", "Workaround provided", "Resolved by change", "User error")


def sys_id_for(kind: str, name: str) -> str:
    """A stable 32-hex sys_id for a reference row (a person, a group, a service...)."""
    return hashlib.md5(f"{kind}:{name}".encode(), usedforsecurity=False).hexdigest()


def fmt(moment: datetime | None) -> str:
    """Raw datetime: UTC, whole seconds, no zone."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(hours: float | None) -> str:
    """Quirk: a glide_duration raw value is an epoch-offset datetime."""
    if not hours:
        return ""
    return fmt(_EPOCH + timedelta(seconds=round(hours * 3600)))


def _pick(uid: str, options: Sequence[str]) -> str:
    return options[int(uid[:8], 16) % len(options)]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


class Renderer:
    """Turns TruthItems into rows and collects the reference rows they point at."""

    def __init__(
        self,
        items: Sequence[TruthItem],
        services: Mapping[str, str],
        *,
        state_models: Mapping[str, str] | None = None,
        custom_fields: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
    ) -> None:
        self.services = services
        self.state_models = dict(state_models or {})
        self.custom_fields = {t: dict(f) for t, f in (custom_fields or {}).items()}
        self.by_number = {item.number: item for item in items}
        self.refs: dict[str, dict[str, dict[str, str]]] = {}
        self.choice_labels: dict[tuple[str, str], dict[str, str]] = {
            ("pm_project", "investment_type"): {}
        }

    def _ref(self, table: str, name: str | None, **fields: str) -> str:
        if not name:
            return ""
        sys_id = sys_id_for(table, name)
        rows = self.refs.setdefault(table, {})
        if sys_id not in rows:
            rows[sys_id] = {
                "sys_id": sys_id,
                "name": name,
                "sys_class_name": table,
                "sys_created_on": "2024-01-01 00:00:00",
                "sys_updated_on": "2024-01-01 00:00:00",
                "sys_mod_count": "0",
                **fields,
            }
        return sys_id

    def _user(self, name: str | None) -> str:
        user_name = ".".join((name or "").lower().split())
        return self._ref("sys_user", name, user_name=user_name)

    def _service(self, name: str | None) -> str:
        kind = self.services.get(name or "", "technical")
        classification = "Business Service" if kind == "business" else "Technical Service"
        return self._ref("cmdb_ci_service", name, service_classification=classification)

    def _task_ref(self, number: str | None) -> str:
        if not number:
            return ""
        item = self.by_number.get(number)
        return item.uid if item else sys_id_for("task", number)

    def state(self, item: TruthItem, table: str) -> dict[str, str]:
        """State code (and the flags some models keep beside it) for the item's status."""
        s, uid = item.status, item.uid
        model = self.state_models.get(table, "default")
        if table == "incident":
            code = {
                Status.NEW: "1",
                Status.IN_PROGRESS: "2",
                Status.ON_HOLD: "3",
                Status.RESOLVED: "6",
                Status.CLOSED: "7",
                Status.CANCELLED: "8",
            }[s]
            extra = {"incident_state": code, "hold_reason": "4" if s is Status.ON_HOLD else ""}
            return {"state": code, **extra}
        if table == "problem" and model == "legacy":
            code = {
                Status.NEW: "1",
                Status.IN_PROGRESS: "2",
                Status.ON_HOLD: "3",
                Status.RESOLVED: "4",
                Status.CLOSED: "4",
                Status.CANCELLED: "4",
            }[s]
            return {"state": code, "problem_state": code}
        if table == "problem":
            working = _pick(uid, ("102", "103", "104"))
            code = {
                Status.NEW: "101",
                Status.IN_PROGRESS: working,
                Status.ON_HOLD: working,
                Status.RESOLVED: "106",
                Status.CLOSED: "107",
                Status.CANCELLED: "107",
            }[s]
            resolution = "canceled" if s is Status.CANCELLED else ""
            if s in (Status.RESOLVED, Status.CLOSED):
                resolution = _pick(uid, ("fix_applied", "fix_applied", "risk_accepted"))
            return {"state": code, "problem_state": code, "resolution_code": resolution}
        if table == "change_request" and model != "legacy":
            working = _pick(uid, ("-4", "-3", "-2", "-1", "-1", "-1"))
            code = {
                Status.NEW: "-5",
                Status.IN_PROGRESS: working,
                Status.ON_HOLD: "-1",
                Status.RESOLVED: "0",
                Status.CLOSED: "3",
                Status.CANCELLED: "4",
            }[s]
            return {"state": code, "on_hold": "true" if s is Status.ON_HOLD else "false"}
        # task states: sc_req_item, planned tasks, and legacy changes.
        code = {
            Status.NEW: _pick(uid, ("1", "-5")),
            Status.IN_PROGRESS: "2",
            Status.ON_HOLD: "2",
            Status.RESOLVED: "3",
            Status.CLOSED: "3",
            Status.CANCELLED: "7",
        }[s]
        return {"state": code, "on_hold": "false"} if table == "change_request" else {"state": code}

    def row(self, item: TruthItem) -> tuple[str, dict[str, str]]:
        """(table, raw row) for one TruthItem."""
        table = KIND_TABLE[item.kind]
        done = item.status in (Status.RESOLVED, Status.CLOSED, Status.CANCELLED)
        closed = item.status in (Status.CLOSED, Status.CANCELLED)
        priority = str(min(5, max(1, item.priority)))
        impact = {"1": "1", "2": "1", "3": "2", "4": "2", "5": "3"}[priority]
        urgency = {"1": "1", "2": "2", "3": "2", "4": "3", "5": "3"}[priority]
        row: dict[str, str] = {
            "sys_id": item.uid,
            "number": item.number,
            "short_description": item.title,
            "description": item.description,
            "priority": priority,
            "impact": impact,
            "urgency": urgency,
            "active": "false" if done else "true",
            "opened_at": fmt(item.created),
            "sys_created_on": fmt(item.created),
            "sys_updated_on": fmt(item.updated),
            "sys_created_by": "admin",
            "sys_updated_by": "admin",
            "sys_mod_count": str(item.version - 1),
            "sys_class_name": table,
            "opened_by": self._user(item.requester),
            "assignment_group": self._ref("sys_user_group", item.team),
            "assigned_to": self._user(item.assignee),
            "business_service": self._service(item.service),
            "closed_at": fmt(item.updated) if closed else "",
            "closed_by": self._user(item.assignee) if closed else "",
            "parent": "",
            "time_worked": "",
            "work_start": "",
            "work_end": "",
            "close_notes": "",
            **self.state(item, table),
        }
        getattr(self, f"_{table}")(item, row)
        for name, values in self.custom_fields.get(table, {}).items():
            row[name] = _pick(item.uid[8:], tuple(values)) if values else ""
        return table, row

    def _incident(self, item: TruthItem, row: dict[str, str]) -> None:
        parent = self.by_number.get(item.parent or "")
        row.update(
            caller_id=self._user(item.requester),
            category=item.category or "",
            subcategory="",
            resolved_at=fmt(item.resolved),
            close_code=(item.close_code or _pick(item.uid, _INCIDENT_CLOSE))
            if item.resolved
            else "",
            parent_incident=self._task_ref(item.parent)
            if parent is None or parent.kind is Kind.INCIDENT
            else "",
            problem_id=self._task_ref(getattr(item, "problem", None)),
            time_worked=duration(item.effort_hours),
        )

    def _problem(self, item: TruthItem, row: dict[str, str]) -> None:
        row.update(
            category=item.category or "",
            resolved_at=fmt(item.resolved),
            time_worked=duration(item.effort_hours),
        )

    def _change_request(self, item: TruthItem, row: dict[str, str]) -> None:
        started = item.status not in (Status.NEW, Status.CANCELLED) and item.planned_start
        project = getattr(item, "linked_project", None) or (
            item.parent if (item.parent or "").startswith("PRJ") else None
        )
        row.update(
            type=item.change_type or "normal",
            risk=_RISK.get((item.risk or "moderate").lower(), "3"),
            close_code=item.close_code or "",
            category=item.category or "",
            start_date=fmt(item.planned_start),
            end_date=fmt(item.planned_end),
            work_start=fmt(item.planned_start) if started else "",
            work_end=fmt(item.resolved),
            requested_by=self._user(item.requester),
            parent=self._task_ref(project),
            time_worked=duration(item.effort_hours),
        )

    def _sc_req_item(self, item: TruthItem, row: dict[str, str]) -> None:
        request = "REQ" + item.number.removeprefix("RITM")
        request_id = sys_id_for("sc_request", request)
        self.refs.setdefault("sc_request", {})[request_id] = {
            "sys_id": request_id,
            "number": request,
            "short_description": item.title,
            "sys_class_name": "sc_request",
            "sys_updated_on": fmt(item.created),
            "sys_created_on": fmt(item.created),
            "sys_mod_count": "0",
        }
        row.update(
            requested_for=self._user(item.requester),
            request=request_id,
            cat_item=self._ref("sc_cat_item", _pick(item.uid, _CATALOG)),
            stage="complete" if item.status is Status.CLOSED else "fulfillment",
            time_worked=duration(item.effort_hours),
            parent=self._task_ref(item.parent),
        )

    def _planned(self, item: TruthItem, row: dict[str, str]) -> None:
        started = item.status is not Status.NEW and item.planned_start
        row.update(
            start_date=fmt(item.planned_start),
            end_date=fmt(item.planned_end),
            work_start=fmt(item.planned_start) if started else "",
            work_end=fmt(item.resolved),
            effort=duration(item.estimate_hours),
            work_effort=duration(item.effort_hours),
        )

    def _pm_project(self, item: TruthItem, row: dict[str, str]) -> None:
        self._planned(item, row)
        inv = item.investment or {}
        category = _PORTFOLIOS.get(str(inv.get("portfolio_category") or ""))
        business_case = inv.get("business_case")
        investment_type = str(inv.get("investment_type") or "")
        row.update(
            top_task=item.uid,
            project_manager=self._user(item.assignee),
            primary_portfolio=self._ref(
                "pm_portfolio", _PORTFOLIO_NAMES[category], category=category
            )
            if category
            else "",
            investment_class=str(inv.get("investment_class") or "").lower(),
            investment_type=_slug(investment_type),
            business_case=(
                f"<p>{item.title}: expected benefits and costs.</p>" if business_case else ""
            ),
            business_unit=self._ref("business_unit", inv.get("business_unit") or None),
            risk=(item.risk or "").lower(),
        )
        if investment_type:
            self.choice_labels[("pm_project", "investment_type")][_slug(investment_type)] = (
                investment_type
            )

    def _pm_project_task(self, item: TruthItem, row: dict[str, str]) -> None:
        self._planned(item, row)
        project = self._task_ref(item.parent)
        row.update(top_task=project, parent=project)
