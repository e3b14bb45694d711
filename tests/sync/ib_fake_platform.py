"""A small fake platform and its connector, for sync, CLI and kill/resume tests.

The platform serves records over keyset paging on ``(updated, id)`` with Basic auth, an id census
endpoint, and records whose ``state`` the mapper does not know (they must be quarantined). The
connector is a real :class:`~itsm_bridge.Connector` subclass talking HTTP through the Transport,
so every error path (401, refused connection, HTML page) is the real one.

Registered as connector ``fake`` through a generated ``dist-info`` (see :func:`install_plugin`),
so subprocesses find it through entry points exactly like an installed connector.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from itsm_bridge import BasicAuth, Connector, Cursor, Endpoint, Kind, Page, WorkItem
from itsm_bridge.errors import MappingError
from itsm_bridge.sandbox import FaultPlan, SandboxRequest, SandboxResponse, SandboxServer
from itsm_bridge.sandbox.server import json_response

USER = "sync.bot"
PASSWORD = "s3cret-Pa55"
STATES = {"1": "new", "2": "in_progress", "6": "resolved", "7": "closed"}
PRIORITIES = {"1": 1, "2": 2, "3": 3, "4": 4, "5": 5}
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def make_records(
    count: int, *, kinds: Sequence[str] = ("incident", "change"), bad: int = 0
) -> list[dict[str, Any]]:
    """``count`` records per kind, several sharing a timestamp; ``bad`` of them unmappable."""
    records = []
    for kind in kinds:
        for i in range(count):
            state = "99" if i < bad else ("1", "2", "6", "7")[i % 4]
            records.append(
                {
                    "sys_id": f"{kind[:3]}{i:06d}",
                    "number": f"{kind[:3].upper()}{i:07d}",
                    "kind": kind,
                    "title": f"{kind} number {i}",
                    "state": state,
                    "team": ("Service Desk", "Network Ops", "Digital Commerce")[i % 3],
                    "hours": round(1 + (i % 7) * 0.5, 1),
                    # three records per second: ties at the watermark must not lose or repeat
                    "updated": (EPOCH + timedelta(seconds=i // 3)).isoformat(),
                }
            )
    return records


class FakePlatform:
    """The app behind a :class:`SandboxServer`; thread-safe; records can change while paging."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = {r["sys_id"]: dict(r) for r in records}
        self.lock = threading.Lock()
        self.pages_served = 0

    def touch(self, sys_ids: Sequence[str], when: datetime | None = None) -> None:
        """Update records now (a newer version with a later ``updated``)."""
        with self.lock:
            stamp = (when or datetime.now(UTC)).isoformat()
            for sys_id in sys_ids:
                rec = self.records[sys_id]
                rec["updated"] = stamp
                rec["title"] = rec["title"] + " (edited)"

    def delete(self, sys_ids: Sequence[str]) -> None:
        with self.lock:
            for sys_id in sys_ids:
                del self.records[sys_id]

    def __call__(self, request: SandboxRequest) -> SandboxResponse:
        expected = requests.auth._basic_auth_str(USER, PASSWORD)
        if request.header("Authorization") != expected:
            return json_response({"error": "User Not Authenticated"}, status=401)
        kind = request.param("kind") or "incident"
        if request.path == "/api/ids":
            with self.lock:
                ids = [r["sys_id"] for r in self.records.values() if r["kind"] == kind]
            return json_response({"result": ids})
        if request.path != "/api/records":
            return json_response({"error": "no such path"}, status=404)
        limit = int(request.param("limit") or "100")
        after_updated = request.param("after_updated") or ""
        after_id = request.param("after_id") or ""
        with self.lock:
            rows = sorted(
                (r for r in self.records.values() if r["kind"] == kind),
                key=lambda r: (r["updated"], r["sys_id"]),
            )
            rows = [r for r in rows if (r["updated"], r["sys_id"]) > (after_updated, after_id)]
            page = [dict(r) for r in rows[:limit]]
            self.pages_served += 1
        return json_response({"result": page, "more": len(rows) > limit})


class FakeConnector(Connector):
    """Keyset pages over ``(updated, id)``; the cursor resumes after the last stored record."""

    name = "fake"

    @property
    def kinds(self) -> Sequence[Kind]:
        return (Kind.INCIDENT, Kind.CHANGE)

    def endpoints(self) -> Sequence[Endpoint]:
        return [Endpoint(k.value, k, "/api/records") for k in self.kinds]

    def map_record(self, kind: Kind, raw: Mapping[str, Any]) -> WorkItem:
        state = str(raw.get("state"))
        if state not in STATES:
            raise MappingError(f"unknown state code {state!r}", record=str(raw.get("sys_id")))
        return WorkItem(
            id=f"{self.source}:{raw['sys_id']}",
            source=self.source,
            kind=kind,
            key=str(raw["number"]),
            title=str(raw["title"]),
            status=STATES[state],  # type: ignore[arg-type]
            status_raw=state,
            created_at=EPOCH,
            updated_at=raw["updated"],
            team=raw.get("team"),
            effort_hours=raw.get("hours"),
            priority=PRIORITIES.get(str(raw.get("priority", "3"))),
            extra=(
                {"unknown_codes": ["priority"]}
                if str(raw.get("priority", "3")) not in PRIORITIES
                else {}
            ),
        )

    def pull_pages(
        self, kind: Kind, cursor: Cursor | None = None, *, since: datetime | None = None
    ) -> Iterator[Page]:
        after = tuple(cursor.state.get("after", ("", ""))) if cursor else ("", "")
        if cursor is None and since is not None:
            after = ((since - timedelta(microseconds=1)).isoformat(), "~")
        while True:
            body = self.transport.get(
                "/api/records",
                params={
                    "kind": kind.value,
                    "limit": self.options.page_size,
                    "after_updated": after[0],
                    "after_id": after[1],
                },
                endpoint=kind.value,
            ).data
            rows = body["result"]
            items, rejects = [], []
            for raw in rows:
                mapped = self.map_safely(kind, raw, raw.get("sys_id"))
                (items if isinstance(mapped, WorkItem) else rejects).append(mapped)
                if isinstance(mapped, WorkItem) and mapped.extra.get("unknown_codes"):
                    self.stats.unknown_code(f"{kind.value}.priority={raw.get('priority')}")
            if rows:
                last = rows[-1]
                after = (last["updated"], last["sys_id"])
            watermark = datetime.fromisoformat(after[0]) if after[0] else None
            page_cursor = Cursor(watermark=watermark, state={"after": list(after)})
            final = not body["more"]
            self.stats.count_page(len(items), len(rejects))
            yield Page(kind, items, rejects, page_cursor, final)
            if final:
                return

    def census(self, kind: Kind) -> Iterator[str]:
        yield from self.transport.get("/api/ids", params={"kind": kind.value}).data["result"]


def serve(
    records: list[dict[str, Any]], faults: FaultPlan | None = None
) -> tuple[SandboxServer, FakePlatform]:
    platform = FakePlatform(records)
    return SandboxServer(platform, faults=faults), platform


def connect(url: str, password: str = PASSWORD, **options: Any) -> FakeConnector:
    options.setdefault("source", "fake")
    options.setdefault("page_size", 50)
    return FakeConnector(url, auth=BasicAuth(USER, password), **options)


def install_plugin(target: Path) -> Path:
    """Write a ``dist-info`` registering this connector; put ``target`` on the path to use it."""
    dist = target / "ib_fake_platform-0.0.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: ib-fake-platform\nVersion: 0.0.0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[itsm_bridge.connectors]\nfake = ib_fake_platform:FakeConnector\n"
    )
    return target
