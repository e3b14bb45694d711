"""The sync engine: incremental, resumable pulls of one source into a store.

For each kind the engine asks the connector for pages starting at the stored cursor and writes
each page, its rejects and its cursor in one transaction (see :mod:`itsm_bridge.sync.store`). The
cursor moves only when the page it covers is stored, so killing the process at any moment and
running again loses nothing and stores nothing twice. The loop fits on one screen on purpose.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from itsm_bridge.connector import Connector, Cursor, Page, parse_kinds, parse_since
from itsm_bridge.errors import ItsmBridgeError
from itsm_bridge.schema import Kind
from itsm_bridge.sync.result import KindReport, SyncProgress, SyncResult
from itsm_bridge.sync.store import Store

__all__ = ["ProgressCallback", "run_sync", "sync"]

log = logging.getLogger("itsm_bridge.sync")

ProgressCallback = Callable[[SyncProgress], None]

# A scheduled job's log should name the first bad records, not every one of ten thousand.
_LOGGED_REJECTS = 20


def _watermark(cursor: Cursor | None) -> str | None:
    return cursor.watermark.isoformat() if cursor is not None and cursor.watermark else None


def sync(
    conn: Connector,
    store: str | os.PathLike[str] | Store = "itsm.db",
    kinds: Iterable[str | Kind] | None = None,
    *,
    census: bool = False,
    progress: ProgressCallback | None = None,
    since: datetime | str | None = None,
    full: bool = False,
) -> SyncResult:
    """Pull every kind of ``conn`` from its stored cursor into ``store``; return the run report.

    ``since`` bounds only the first sync of a kind (later runs continue from the cursor).
    ``census=True`` then asks the connector for every visible id of each kind, marks stored
    items it no longer shows and counts visible ones the store lacks (``unstored``).
    ``full=True`` forgets the kinds' cursors first, so the run reads everything again (from
    ``since`` if given): stored items are upserted, never duplicated. Raises the connector's or
    store's error after recording the run; records that cannot be mapped do not raise: they
    are quarantined and counted.
    """
    result = run_sync(conn, store, kinds, census=census, progress=progress, since=since, full=full)
    if result.exception is not None:
        raise result.exception
    return result


def run_sync(
    conn: Connector,
    store: str | os.PathLike[str] | Store = "itsm.db",
    kinds: Iterable[str | Kind] | None = None,
    *,
    census: bool = False,
    progress: ProgressCallback | None = None,
    since: datetime | str | None = None,
    full: bool = False,
    stop: threading.Event | None = None,
) -> SyncResult:
    """Like :func:`sync`, but a failure is returned in the report (``.exception``), not raised.

    Used where several sources run side by side and each needs its own report. Setting ``stop``
    (from the thread that caught a signal) ends the run after the page it is storing, or at
    once where it waits: it is recorded as ``interrupted`` and raises ``KeyboardInterrupt``.
    """
    owned = not isinstance(store, Store)
    db = Store(store) if not isinstance(store, Store) else store
    try:
        wanted = parse_kinds(kinds, conn.kinds)
        bound = parse_since(since)
        before = conn.report()
        run_id = db.begin_run(conn.source, conn.name)
        result = SyncResult(
            source=conn.source,
            connector=conn.name,
            run_id=run_id,
            started_at=datetime.now(UTC),
            census=census,
        )
        log.info("sync of %s started (run %d): %s", conn.source, run_id, [k.value for k in wanted])
        if stop is not None:
            conn.transport.stop_on(stop)
        try:
            if full:  # within the run: a live run of this source was refused above
                db.reset_cursors(conn.source, wanted)
            for kind in wanted:
                _stop_if_asked(stop)
                every = wanted if kinds is None else ()
                _sync_kind(conn, db, kind, result, bound, progress, every, stop)
                if census and result.kinds[kind.value].unavailable is None:
                    _census(conn, db, kind, result)
            result.status = "ok"
        except BaseException as exc:
            if isinstance(exc, ItsmBridgeError):
                exc.named(conn.source)
            result.fail(exc)
            result.exception = exc
            if isinstance(exc, KeyboardInterrupt):
                log.warning("sync of %s interrupted: %s", conn.source, exc or "Ctrl-C or SIGTERM")
            else:
                log.error("sync of %s failed: %s", conn.source, exc)
        finally:
            if stop is not None:
                conn.transport.stop_on(None)
            _add_connector_counters(result, before, conn.report())
            result.finished_at = datetime.now(UTC)
            report = result.as_dict()
            try:
                db.finish_run(run_id, result.status, report, result.error)
            except BaseException as exc:
                if result.exception is None:
                    result.fail(exc)
                    result.exception = exc
            log.info("sync report: %s", result.summary())
            log.info("sync report json: %s", result.to_json())
        if isinstance(result.exception, KeyboardInterrupt):
            raise result.exception
        return result
    finally:
        if owned:
            db.close()


def _sync_kind(
    conn: Connector,
    db: Store,
    kind: Kind,
    result: SyncResult,
    since: datetime | None,
    progress: ProgressCallback | None,
    every: Sequence[Kind],
    stop: threading.Event | None = None,
) -> None:
    """``every``: the kinds of a sync of every kind (none named), where a kind the instance
    does not have is skipped (see :meth:`Connector.unless_unavailable`); else empty."""
    stats = result.kinds.setdefault(kind.value, KindReport(kind.value))
    cursor = db.cursor(conn.source, kind)
    stats.cursor_from = _watermark(cursor)
    log.info("pulling %s %s from %s", conn.source, kind.value, stats.cursor_from or "the start")
    bound = None if cursor is not None else since
    pages: Iterable[Page] = conn.pull_pages(kind, cursor, since=bound)
    if every:
        pages = conn.unless_unavailable(kind, pages, every)
    for page in pages:
        counts = db.write_page(
            conn.source, kind, page.items, page.rejects, page.cursor, run_id=result.run_id
        )
        stats.pages += 1
        stats.records += len(page.items)
        stats.new += counts.new
        stats.updated += counts.updated
        stats.unchanged += counts.unchanged
        stats.quarantined += counts.quarantined
        for item in page.items:
            for name in item.extra.get("unknown_codes") or ():
                result.unknown_codes[str(name)] += 1
        earlier = stats.quarantined - len(page.rejects)
        for number, reject in enumerate(page.rejects, start=earlier):
            if number < _LOGGED_REJECTS:
                log.warning(
                    "quarantined %s %s record %s: %s",
                    conn.source,
                    kind.value,
                    reject.native_id or "?",
                    reject.reason,
                )
        if page.cursor is not None:
            stats.cursor_to = _watermark(page.cursor)
        if page.final:
            stats.complete = True
        _stop_if_asked(stop)  # the page and its cursor are stored: a clean place to end
        if progress is not None:
            progress(
                SyncProgress(
                    conn.source,
                    kind.value,
                    stats.pages,
                    stats.records,
                    stats.quarantined,
                    done=page.final,
                )
            )
    if stats.pages == 0 and kind.value in conn.stats.unavailable:
        stats.unavailable = conn.stats.unavailable[kind.value]
        return
    stats.complete = True
    if stats.quarantined > _LOGGED_REJECTS:
        log.warning(
            "%s %s: %d more records quarantined (listed by `itsm-bridge quarantine`)",
            conn.source,
            kind.value,
            stats.quarantined - _LOGGED_REJECTS,
        )
    if progress is not None:
        progress(
            SyncProgress(
                conn.source, kind.value, stats.pages, stats.records, stats.quarantined, done=True
            )
        )


def _stop_if_asked(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise KeyboardInterrupt("asked to stop; the next run resumes after the last stored page")


def _census(conn: Connector, db: Store, kind: Kind, result: SyncResult) -> None:
    stats = result.kinds[kind.value]
    if not conn.capabilities.census and type(conn).census is Connector.census:
        log.warning("connector %s has no id census; deletions of %s not checked", conn.name, kind)
        return
    found = db.census(conn.source, kind, conn.census(kind))
    stats.deleted = found.marked
    stats.unstored = found.unstored
    if stats.deleted:
        log.info("%s %s: %d stored records no longer visible", conn.source, kind, stats.deleted)
    if found.unstored:
        # Incremental syncs read by update time: a record older than the first sync's bound,
        # or one a permission change revealed without updating it, is never read by them.
        log.warning(
            "%s %s: %d records are visible on the platform but not in the store (e.g. %s): "
            "older than the first sync's --since, or revealed without being updated; a sync "
            "with --full (full=True) reads them",
            conn.source,
            kind.value,
            found.unstored,
            ", ".join(found.unstored_sample[:5]),
        )


def _add_connector_counters(
    result: SyncResult, before: dict[str, Any], after: dict[str, Any]
) -> None:
    """The connector's counters are cumulative over its life; the run gets the difference."""

    def delta(name: str) -> int:
        return int(after.get(name) or 0) - int(before.get(name) or 0)

    result.requests = delta("requests")
    result.retries = delta("retries")
    result.throttled = delta("throttled")
    result.bytes_received = delta("bytes_received")
    # The connector's own counters name the code ("incident.state=99"); the items' extra only
    # the field. Prefer the connector's when it keeps them, so nothing is counted twice.
    codes_before = Counter(before.get("unknown_codes") or {})
    from_connector = Counter(
        {
            name: int(count) - int(codes_before.get(name, 0))
            for name, count in (after.get("unknown_codes") or {}).items()
        }
    )
    from_connector = +from_connector  # drop codes not seen in this run
    if from_connector:
        result.unknown_codes = from_connector
    done = len(before.get("completeness") or [])
    result.completeness = list((after.get("completeness") or [])[done:])
