"""A test-only connector for "Acme Tracker", a fictional platform, packaged like a third party's.

tests/core installs this folder with a generated ``*.dist-info`` (METADATA + entry_points.txt) on
``sys.path``, so it is discovered through the ``itsm_bridge.connectors`` and
``itsm_bridge.sandboxes`` entry points exactly as a pip-installed package would be. It uses only
the public API, like any connector package must.

Acme's API: ``GET /api/v1/{collection}?updated_from=<epoch s>&updated_to=<epoch s>&offset=&limit=``
answers ``{"items": [...], "total": N}`` sorted by ``(updated, id)``; ``updated_from`` is
inclusive, ``updated_to`` exclusive; timestamps carry the account's UTC offset.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import itsm_bridge as ib

__all__ = ["AcmeConnector", "AcmeOptions"]

# Acme states -> the common Status; data, not an if-chain.
STATES: dict[str, ib.Status] = {
    "open": ib.Status.NEW,
    "working": ib.Status.IN_PROGRESS,
    "paused": ib.Status.ON_HOLD,
    "fixed": ib.Status.RESOLVED,
    "closed": ib.Status.CLOSED,
    "dropped": ib.Status.CANCELLED,
}

COLLECTIONS: dict[ib.Kind, str] = {
    ib.Kind.INCIDENT: "tickets",
    ib.Kind.PROJECT: "projects",
    ib.Kind.TASK: "tasks",
}


class AcmeOptions(ib.ConnectorOptions):
    """Acme's own option on top of the common ones."""

    team_prefix: str = ""


class AcmeConnector(ib.Connector):
    """Declarations plus a pure mapper; all HTTP goes through the core's Transport."""

    name = "acme"
    options_model: ClassVar[type[ib.ConnectorOptions]] = AcmeOptions
    capabilities = ib.Capabilities(incremental=True)

    @property
    def kinds(self) -> Sequence[ib.Kind]:
        return list(COLLECTIONS)

    def endpoints(self) -> Sequence[ib.Endpoint]:
        return [
            ib.Endpoint(name, kind, f"api/v1/{name}", f"Acme {name}")
            for kind, name in COLLECTIONS.items()
        ]

    def map_record(self, kind: ib.Kind, raw: Mapping[str, Any]) -> ib.WorkItem:
        options = self.options
        prefix = options.team_prefix if isinstance(options, AcmeOptions) else ""
        return ib.WorkItem(
            id=f"{self.source}:{raw['id']}",
            source=self.source,
            kind=kind,
            key=raw["ref"],
            title=raw["summary"],
            description=raw.get("body"),
            status=STATES[raw["state"]],
            status_raw=raw["state"],
            priority=raw.get("priority"),
            created_at=raw["created"],
            updated_at=raw["updated"],
            resolved_at=raw.get("resolved"),
            team=f"{prefix}{raw['team']}" if raw.get("team") else None,
            assignee=raw.get("owner"),
            requester=raw.get("reporter"),
            service=raw.get("service"),
            category=raw.get("category"),
            labels=tuple(raw.get("labels") or ()),
            effort_hours=raw.get("hours"),
            effort_source=ib.EffortSource.MEASURED if raw.get("hours") is not None else None,
            parent_key=raw.get("parent"),
            url=f"{self.base_url}/browse/{raw['ref']}",
        )

    def pull_pages(
        self, kind: ib.Kind, cursor: ib.Cursor | None = None, *, since: datetime | None = None
    ) -> Iterator[ib.Page]:
        lower = _lower_bound(cursor, since, self.options.overlap_seconds)
        upper = _whole_second(datetime.now(UTC) - timedelta(seconds=self.options.lag_seconds))
        params: dict[str, Any] = {"updated_to": int(upper.timestamp())}
        if lower is not None:
            params["updated_from"] = int(lower.timestamp())  # floor: exactness is ours, below
        request = ib.PageRequest(f"api/v1/{COLLECTIONS[kind]}", params)
        paginator = ib.OffsetPaginator(limit=self.options.page_size, total_path="total")
        seen: set[str] = set()
        for raw_page in ib.fetch_pages(
            self.transport, request, paginator, records_path="items", endpoint=COLLECTIONS[kind]
        ):
            items: list[ib.WorkItem] = []
            rejects: list[ib.Reject] = []
            for raw in raw_page.records:
                native = str(raw.get("id"))
                if native in seen:
                    continue  # an overlap re-read within this run
                seen.add(native)
                mapped = self.map_safely(kind, raw, native)
                if isinstance(mapped, ib.Reject):
                    rejects.append(mapped)
                elif lower is None or mapped.updated_at >= lower:
                    items.append(mapped)
            self.stats.count_page(len(items), len(rejects))
            yield ib.Page(kind, items, rejects, cursor=_page_cursor(items))
        yield ib.Page(kind, [], cursor=ib.Cursor(watermark=upper), final=True)


def _whole_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _lower_bound(
    cursor: ib.Cursor | None, since: datetime | None, overlap: float
) -> datetime | None:
    bounds = [since] if since is not None else []
    if cursor is not None and cursor.watermark is not None:
        bounds.append(cursor.watermark - timedelta(seconds=overlap))
    return max(bounds) if bounds else None


def _page_cursor(items: Sequence[ib.WorkItem]) -> ib.Cursor | None:
    # Pages come oldest first, so everything before the last record's time is stored.
    if not items:
        return None
    last = max(item.updated_at for item in items)
    return ib.Cursor(
        watermark=last, boundary_ids=tuple(i.id for i in items if i.updated_at == last)
    )
