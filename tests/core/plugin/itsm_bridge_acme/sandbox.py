"""Acme Tracker's fake: serves TruthItems the way the (fictional) Acme API would."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import requests

import itsm_bridge as ib
from itsm_bridge.sandbox import (
    FaultPlan,
    SandboxRequest,
    SandboxResponse,
    SandboxServer,
    ServedSandbox,
    TruthItem,
    json_response,
)

_STATE_OF = {
    ib.Status.NEW: "open",
    ib.Status.IN_PROGRESS: "working",
    ib.Status.ON_HOLD: "paused",
    ib.Status.RESOLVED: "fixed",
    ib.Status.CLOSED: "closed",
    ib.Status.CANCELLED: "dropped",
}
_KIND_OF = {"tickets": ib.Kind.INCIDENT, "projects": ib.Kind.PROJECT, "tasks": ib.Kind.TASK}
USER, PASSWORD = "acme-bot", "acme-sandbox-pass"
_BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


class AcmeSandbox(ServedSandbox):
    """A PlatformSandbox for the ``acme`` connector."""

    connector = "acme"

    def __init__(
        self,
        items: Sequence[TruthItem],
        *,
        faults: FaultPlan | None = None,
        timezone: str = "UTC",
        seed: int = 0,
    ) -> None:
        self.items = [i for i in items if i.kind in _KIND_OF.values()]
        self.zone = ZoneInfo(timezone)
        self.server = SandboxServer(self._app, faults=faults)

    def auth(self) -> requests.auth.AuthBase:
        return ib.BasicAuth(USER, PASSWORD)

    def connect_options(self) -> dict[str, Any]:
        return {}

    def visible_items(self) -> list[TruthItem]:
        return list(self.items)

    def _time(self, moment: datetime | None) -> str | None:
        return None if moment is None else moment.astimezone(self.zone).isoformat()

    def _render(self, item: TruthItem) -> dict[str, Any]:
        return {
            "id": item.uid,
            "ref": item.number,
            "summary": item.title,
            "body": item.description,
            "state": _STATE_OF[item.status],
            "priority": item.priority,
            "team": item.team,
            "owner": item.assignee,
            "reporter": item.requester,
            "service": item.service,
            "category": item.category,
            "labels": list(item.labels),
            "hours": item.effort_hours,
            "parent": item.parent,
            "created": self._time(item.created),
            "updated": self._time(item.updated),
            "resolved": self._time(item.resolved),
        }

    def _app(self, request: SandboxRequest) -> SandboxResponse:
        if request.header("Authorization") != _BASIC:
            return json_response({"error": "unauthorized"}, status=401)
        parts = request.path.strip("/").split("/")
        if len(parts) != 3 or parts[:2] != ["api", "v1"] or parts[2] not in _KIND_OF:
            return json_response({"error": f"no such collection {request.path}"}, status=404)
        kind = _KIND_OF[parts[2]]
        low = int(request.param("updated_from") or 0)
        high = int(request.param("updated_to") or 2**40)
        rows = sorted(
            (i for i in self.items if i.kind is kind and low <= i.updated.timestamp() < high),
            key=lambda i: (i.updated, i.uid),
        )
        offset, limit = int(request.param("offset") or 0), int(request.param("limit") or 100)
        page = [self._render(i) for i in rows[offset : offset + limit]]
        return json_response({"items": page, "total": len(rows)})


def make_sandbox(
    items: Sequence[TruthItem],
    *,
    faults: FaultPlan | None = None,
    timezone: str = "UTC",
    seed: int = 0,
) -> AcmeSandbox:
    return AcmeSandbox(items, faults=faults, timezone=timezone, seed=seed)
