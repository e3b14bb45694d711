"""The store: items, verdicts, cursors, quarantine and run history in one SQLite file.

Why SQLite: it is everywhere, needs no server, and its transactions are what makes a sync
resumable: each page's items and the cursor that covers them commit together, so a process killed
at any moment leaves either the whole page and its cursor or neither. WAL mode lets reports and
exports read while a sync writes; ``synchronous=NORMAL`` keeps that crash-safe for a killed
process (a power cut may lose the last pages, never consistency, and the cursor loses them too).

Writes go through one connection under a lock (several sources may sync concurrently from threads);
reads that stream open their own connection, so an export of a million rows holds one batch in
memory at a time. Every ``sqlite3`` failure on a write becomes :class:`StoreError` after a
rollback: the last committed page and its cursor are intact.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from itsm_bridge import _json
from itsm_bridge._time import parse_datetime
from itsm_bridge.connector import Cursor, Reject
from itsm_bridge.errors import StoreError
from itsm_bridge.schema import Kind, Label, Reason, ScoredItem, Verdict, WorkItem
from itsm_bridge.sync.migrations import LATEST_VERSION, MIGRATIONS, Migration, month_of

__all__ = [
    "CensusResult",
    "PageCounts",
    "QuarantineRecord",
    "RunRecord",
    "Store",
    "StoredVerdict",
]

log = logging.getLogger("itsm_bridge.sync.store")

_BATCH = 500
# Test hook: seconds to sleep inside each page transaction, so kill tests can land mid-commit.
_TXN_DELAY_ENV = "_ITSM_BRIDGE_TEST_TXN_DELAY"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _sortable(value: datetime) -> str:
    # Fixed-width UTC text, so that string order is time order (pydantic drops ".000000").
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def content_hash(canonical_json: str) -> str:
    """Hash of an item's canonical JSON: equal hashes mean an unchanged record."""
    return hashlib.sha256(canonical_json.encode()).hexdigest()[:32]


def canonical(item: WorkItem) -> str:
    return _json.dumps(item.model_dump(mode="json"), sort_keys=True)


@dataclass(frozen=True)
class PageCounts:
    """What writing one page did to the store."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0


@dataclass(frozen=True)
class QuarantineRecord:
    """A raw record that could not be mapped, kept with its reason until it maps cleanly."""

    source: str
    kind: str
    native_id: str | None
    reason: str
    raw: dict[str, Any]
    first_seen_at: str
    last_seen_at: str
    times_seen: int


@dataclass(frozen=True)
class RunRecord:
    """One sync run as the run history keeps it; ``report`` is the run report as a dict."""

    id: int
    source: str
    connector: str
    started_at: str
    finished_at: str | None
    status: str
    report: dict[str, Any] | None
    error: str | None


_CENSUS_SAMPLE = 20


@dataclass(frozen=True)
class CensusResult:
    """What an id census found: items newly marked deleted, and ids the store lacks (with the
    first few of them, as native ids, for the log)."""

    marked: int
    unstored: int
    unstored_sample: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoredVerdict:
    item_id: str
    ruleset: str
    content_hash: str
    verdict: Verdict


_START_SLACK_S = 5.0

# Runs this process has begun and not yet finished, as (store file, run id). The pid in the runs
# table cannot tell two threads of one process apart (a scheduler's thread pool, an ETL script
# syncing sources side by side), and a 'running' row with our own pid is otherwise a run this
# process abandoned (its end could not be written).
_LIVE_RUNS: set[tuple[str, int]] = set()
_LIVE_RUNS_LOCK = threading.Lock()


def _run_alive(pid: int, started_at: str | None) -> bool:
    """Whether the process that began a run (at ``started_at``) may still be running it.

    A live ``pid`` is not enough: after a SIGKILL (an OOM kill, a scheduler's timeout) the pid is
    free, and on a busy host another program gets it; that program must not block every later
    sync. Where the process's start time can be read (Linux), a process started after the run
    began is another one.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        pass
    began = _process_start(pid)
    if began is None or started_at is None:
        return True
    try:
        run_start = parse_datetime(started_at)
    except ValueError:
        return True
    # The boot time is whole seconds and the wall clock may have been stepped since: slack.
    return began <= run_start.timestamp() + _START_SLACK_S


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), from /proc; None where that is unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        # The command name (field 2) may hold spaces and ')': the fields follow its last ')'.
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


class Store:
    """A SQLite store at ``path`` (created and migrated to the latest schema on open;
    ``create=False`` refuses a path where there is no store yet).

    Use it as a context manager, or call :meth:`close`. It is safe to share one ``Store`` between
    threads; several processes may read it while one writes.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = "itsm.db",
        *,
        timeout: float = 30.0,
        create: bool = True,
    ) -> None:
        self.path = Path(path)
        if str(path) == ":memory:":
            raise StoreError("the store needs a file path (streaming reads open their own handle)")
        missing = f"no store at {self.path}: check the path (a pull or sync makes one)"
        if not create and not self.path.is_file():
            # A reader given a mistyped path would otherwise create an empty store and report
            # on nothing, without a word.
            raise StoreError(missing)
        self._timeout = timeout
        self._identity = os.path.realpath(self.path)
        self._lock = threading.RLock()
        self._txn_delay = float(os.environ.get(_TXN_DELAY_ENV) or 0)
        try:
            if self.path.parent and not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._connect()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store at {self.path}: {exc}") from None
        except OSError as exc:
            raise StoreError(f"cannot create the store at {self.path}: {exc}") from None
        try:
            if not create and self._version(self._db) == 0:
                raise StoreError(missing)  # an empty file, or another SQLite database
            self._db.execute("PRAGMA journal_mode=WAL")
            self._migrate(self._db)
        except BaseException as exc:
            self._db.close()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"cannot open the store at {self.path}: {exc}") from None
            raise

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
        return db

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema ----------------------------------------------------------------------------------

    @staticmethod
    def _version(db: sqlite3.Connection) -> int:
        exists = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if not exists:
            return 0
        row = db.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    @classmethod
    def _migrate(cls, db: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> None:
        # A plain read first: opening an up-to-date store (every reader) never waits for, or
        # takes, the write lock; a read-only store file can be opened for reading.
        current = cls._version(db)
        if current < (migrations[-1].version if migrations else 0):
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
                    " description TEXT NOT NULL, applied_at TEXT NOT NULL)"
                )
                current = cls._version(db)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        latest = migrations[-1].version if migrations else 0
        if current > LATEST_VERSION:
            raise StoreError(
                f"the store has schema version {current}, newer than this itsm-bridge knows "
                f"({LATEST_VERSION}); upgrade itsm-bridge"
            )
        for step in migrations:
            if step.version <= current or step.version > latest:
                continue
            db.execute("BEGIN IMMEDIATE")
            try:
                # Another process may have migrated while we waited for the write lock.
                if cls._version(db) >= step.version:
                    db.execute("COMMIT")
                    continue
                for statement in step.sql.split(";"):
                    if statement.strip():
                        db.execute(statement)
                if step.backfill is not None:
                    step.backfill(db)
                db.execute(
                    "INSERT INTO schema_version (version, description, applied_at) VALUES (?,?,?)",
                    (step.version, step.description, _now()),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            file = db.execute("PRAGMA database_list").fetchone()[2]
            log.info("store %s migrated to schema version %d", file, step.version)

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._version(self._db)

    # -- transactions ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One write transaction; any sqlite failure rolls back and becomes StoreError."""
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(
                    f"cannot start a transaction ({what}) in {self.path}: {exc}"
                ) from None
            try:
                yield db
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise StoreError(
                    f"cannot write {what} to the store {self.path}: {exc}; "
                    "nothing of it was stored, earlier pages and cursors are intact"
                ) from None
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A separate connection for a streaming read (a consistent WAL snapshot)."""
        try:
            db = self._connect()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the store {self.path}: {exc}") from None
        try:
            db.execute("BEGIN")
            yield db
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the store {self.path}: {exc}") from None
        finally:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            db.close()

    # -- pages -----------------------------------------------------------------------------------

    def write_page(
        self,
        source: str,
        kind: Kind,
        items: Sequence[WorkItem],
        rejects: Sequence[Reject] = (),
        cursor: Cursor | None = None,
        *,
        run_id: int | None = None,
    ) -> PageCounts:
        """Store one page and, when given, the cursor that resumes after it, atomically.

        Records already stored with the same content count as unchanged; an incoming record older
        than the stored one (a slow parallel range) never overwrites the newer version.
        """
        now = _now()
        rows: dict[str, tuple[Any, ...]] = {}
        for item in items:
            text = canonical(item)
            updated = _sortable(item.updated_at)
            previous = rows.get(item.id)
            if previous is not None and previous[4] > updated:
                continue  # a page repeating a record: keep its newest version
            rows[item.id] = (
                item.id,
                item.source,
                item.kind.value,
                item.key,
                updated,
                content_hash(text),
                text,
                month_of({"created_at": item.created_at, "updated_at": updated}),
                item.team,
                item.service,
                item.status.value,
                item.parent_key,
            )
        new: list[tuple[Any, ...]] = []
        changed: list[tuple[Any, ...]] = []
        unchanged = 0
        with self._write(f"a {kind.value} page of {source}") as db:
            existing = self._existing(db, list(rows))
            for item_id, row in rows.items():
                old = existing.get(item_id)
                if old is None:
                    new.append((*row, now, now))
                elif old[0] == row[5] and old[2] is None:
                    unchanged += 1
                elif old[1] > row[4]:
                    unchanged += 1  # stale copy of a record we already hold newer
                else:
                    changed.append((*row[3:], now, item_id))
            if new:
                db.executemany(
                    "INSERT INTO items (id, source, kind, key, updated_at, content_hash, data,"
                    " month, team, service, status, parent_key, first_seen_at, last_seen_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    new,
                )
            if changed:
                db.executemany(
                    "UPDATE items SET key = ?, updated_at = ?, content_hash = ?, data = ?,"
                    " month = ?, team = ?, service = ?, status = ?, parent_key = ?,"
                    " last_seen_at = ?, deleted_at = NULL, deleted_reason = NULL WHERE id = ?",
                    changed,
                )
            if (
                rows
                and db.execute(
                    "SELECT 1 FROM quarantine WHERE source = ? AND kind = ? LIMIT 1",
                    (source, kind.value),
                ).fetchone()
            ):
                # A record that maps now leaves the quarantine it was in.
                prefix = len(source) + 1
                db.executemany(
                    "DELETE FROM quarantine WHERE source = ? AND kind = ? AND native_id = ?",
                    [(source, kind.value, item_id[prefix:]) for item_id in rows],
                )
            for reject in rejects:
                self._quarantine(db, source, reject, run_id, now)
            if cursor is not None:
                db.execute(
                    "INSERT INTO cursors (source, kind, cursor, saved_at, run_id)"
                    " VALUES (?,?,?,?,?) ON CONFLICT (source, kind) DO UPDATE SET"
                    " cursor = excluded.cursor, saved_at = excluded.saved_at,"
                    " run_id = excluded.run_id",
                    (source, kind.value, cursor.model_dump_json(), now, run_id),
                )
            log.debug(
                "page transaction open: %s %s (%d items, %d rejects)",
                source,
                kind.value,
                len(rows),
                len(rejects),
            )
            if self._txn_delay:
                time.sleep(self._txn_delay)
        log.debug("page committed: %s %s", source, kind.value)
        return PageCounts(len(new), len(changed), unchanged, len(rejects))

    @staticmethod
    def _existing(db: sqlite3.Connection, ids: list[str]) -> dict[str, tuple[str, str, str | None]]:
        found: dict[str, tuple[str, str, str | None]] = {}
        for start in range(0, len(ids), _BATCH):
            chunk = ids[start : start + _BATCH]
            marks = ",".join("?" * len(chunk))
            for row in db.execute(
                f"SELECT id, content_hash, updated_at, deleted_at FROM items WHERE id IN ({marks})",  # noqa: S608 - placeholders only
                chunk,
            ):
                found[row[0]] = (row[1], row[2], row[3])
        return found

    @staticmethod
    def _quarantine(
        db: sqlite3.Connection, source: str, reject: Reject, run_id: int | None, now: str
    ) -> None:
        raw = _json.dumps(dict(reject.raw), sort_keys=True)
        db.execute(
            "INSERT INTO quarantine (source, kind, native_id, reason, raw, run_id, first_seen_at,"
            " last_seen_at) VALUES (?,?,?,?,?,?,?,?)"
            " ON CONFLICT (source, kind, native_id) WHERE native_id IS NOT NULL DO UPDATE SET"
            " reason = excluded.reason, raw = excluded.raw, run_id = excluded.run_id,"
            " last_seen_at = excluded.last_seen_at, times_seen = times_seen + 1",
            (source, reject.kind.value, reject.native_id, reject.reason, raw, run_id, now, now),
        )

    # -- cursors ---------------------------------------------------------------------------------

    def cursor(self, source: str, kind: Kind | str) -> Cursor | None:
        """The stored cursor of ``(source, kind)``, or ``None`` before its first page."""
        with self._lock:
            row = self._db.execute(
                "SELECT cursor FROM cursors WHERE source = ? AND kind = ?",
                (source, Kind(kind).value),
            ).fetchone()
        return None if row is None else Cursor.model_validate_json(row[0])

    def cursors(self) -> dict[tuple[str, str], Cursor]:
        with self._lock:
            rows = self._db.execute("SELECT source, kind, cursor FROM cursors").fetchall()
        return {(s, k): Cursor.model_validate_json(c) for s, k, c in rows}

    def reset_cursors(self, source: str, kinds: Iterable[Kind | str] | None = None) -> int:
        """Forget cursors so the next sync re-reads everything (items stay; they are upserted)."""
        with self._write(f"a cursor reset of {source}") as db:
            if kinds is None:
                return db.execute("DELETE FROM cursors WHERE source = ?", (source,)).rowcount
            return sum(
                db.execute(
                    "DELETE FROM cursors WHERE source = ? AND kind = ?", (source, Kind(k).value)
                ).rowcount
                for k in kinds
            )

    # -- run history -----------------------------------------------------------------------------

    def begin_run(self, source: str, connector: str) -> int:
        """Record a run as started; runs left 'running' by a killed process become 'killed'."""
        host = socket.gethostname()
        pid = os.getpid()
        with self._write(f"the start of a run of {source}") as db:
            other = db.execute(
                "SELECT connector FROM runs WHERE source = ? AND connector <> ? LIMIT 1",
                (source, connector),
            ).fetchone()
            if other is not None:
                # Its cursors and ids belong to the other platform: sharing them would skip
                # every record older than that platform's cursor, without a word.
                raise StoreError(
                    f"the source name {source!r} belongs to a {other[0]} source in this store, "
                    f"not to {connector}: give this one another name (source=... in "
                    "ib.connect, --source on the command line)",
                    source=source,
                )
            for run_id, run_pid, run_start in db.execute(
                "SELECT id, pid, started_at FROM runs"
                " WHERE source = ? AND status = 'running' AND host = ?",
                (source, host),
            ).fetchall():
                if self._run_live(run_id, run_pid, run_start):
                    if run_pid == pid:
                        raise StoreError(
                            f"another sync of source {source!r} is running in this process "
                            f"(run {run_id}) on this store; wait for it to finish",
                            source=source,
                        )
                    raise StoreError(
                        f"another sync of source {source!r} is running (pid {run_pid}, run "
                        f"{run_id}) on this store; wait for it or stop it",
                        source=source,
                    )
                db.execute(
                    "UPDATE runs SET status = 'killed', error = 'the process ended without "
                    "finishing the run' WHERE id = ?",
                    (run_id,),
                )
            cur = db.execute(
                "INSERT INTO runs (source, connector, started_at, status, pid, host)"
                " VALUES (?,?,?,?,?,?)",
                (source, connector, _now(), "running", pid, host),
            )
            run_id = int(cur.lastrowid or 0)
            with _LIVE_RUNS_LOCK:
                _LIVE_RUNS.add((self._identity, run_id))
            return run_id

    def finish_run(
        self, run_id: int, status: str, report: dict[str, Any], error: str | None = None
    ) -> None:
        try:
            with self._write(f"the end of run {run_id}") as db:
                db.execute(
                    "UPDATE runs SET finished_at = ?, status = ?, report = ?, error = ?"
                    " WHERE id = ?",
                    (_now(), status, _json.dumps(report), error, run_id),
                )
        finally:
            # Even when the end could not be written: the next run then marks the row killed.
            with _LIVE_RUNS_LOCK:
                _LIVE_RUNS.discard((self._identity, run_id))

    def _run_live(self, run_id: int, pid: int | None, started_at: str | None) -> bool:
        """Whether a run left 'running' on this host is still going (see :func:`_run_alive`)."""
        if pid is None:
            return False
        if pid == os.getpid():
            with _LIVE_RUNS_LOCK:
                return (self._identity, run_id) in _LIVE_RUNS
        return _run_alive(int(pid), started_at)

    def runs(self, source: str | None = None, limit: int = 20) -> list[RunRecord]:
        """The most recent runs, newest first. A run still marked running whose process on this
        host is gone is shown as ``killed`` (the next run of its source records it so)."""
        query = (
            "SELECT id, source, connector, started_at, finished_at, status, report, error,"
            " pid, host FROM runs"
        )
        args: tuple[Any, ...] = ()
        if source is not None:
            query += " WHERE source = ?"
            args = (source,)
        query += " ORDER BY id DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(query, (*args, limit)).fetchall()
        here = socket.gethostname()
        records = []
        for r in rows:
            status = r[5]
            if status == "running" and r[9] == here and not self._run_live(r[0], r[8], r[3]):
                status = "killed"
            report = _json.loads(r[6]) if r[6] else None
            records.append(RunRecord(r[0], r[1], r[2], r[3], r[4], status, report, r[7]))
        return records

    # -- census ----------------------------------------------------------------------------------

    def apply_census(self, source: str, kind: Kind | str, native_ids: Iterable[str]) -> int:
        """Mark stored items of ``(source, kind)`` whose id the platform no longer shows;
        returns how many were newly marked (see :meth:`census`)."""
        return self.census(source, kind, native_ids).marked

    def census(self, source: str, kind: Kind | str, native_ids: Iterable[str]) -> CensusResult:
        """Compare the platform's ids of ``(source, kind)`` with the store.

        Stored items whose id is not among them are marked deleted; items that reappear are
        unmarked. Ids the platform shows that the store lacks are counted (a record older than
        the first sync's ``since``, or one a permission change revealed without updating it:
        incremental syncs read by update time and never see those).

        The ids stream into a temporary table in batches (a million ids never sit in a Python
        set).
        """
        kind_value = Kind(kind).value
        # The ids are paged from the platform (minutes on a large table): collect them in a
        # connection-private TEMP table, which takes no lock on the store, and hold the write
        # lock only for the two UPDATEs. One table per thread: sources sync in threads. (The
        # table's name is ours, a thread id: no value is ever put into these statements.)
        table = f"census_ids_{threading.get_ident()}"
        insert = f"INSERT OR IGNORE INTO {table} VALUES (?)"  # noqa: S608
        try:
            with self._lock:
                self._db.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} (id TEXT PRIMARY KEY)")
                self._db.execute(f"DELETE FROM {table}")  # noqa: S608
            batch: list[tuple[str]] = []
            for native in native_ids:
                batch.append((f"{source}:{native}",))
                if len(batch) >= 5000:
                    with self._lock:
                        self._db.executemany(insert, batch)
                    batch.clear()
            with self._lock:
                self._db.executemany(insert, batch)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot record the {kind_value} census of {source}: {exc}") from None
        gone = (
            "UPDATE items SET deleted_at = ?, deleted_reason = 'not visible in census'"  # noqa: S608
            " WHERE source = ? AND kind = ? AND deleted_at IS NULL"
            f" AND id NOT IN (SELECT id FROM {table})"
        )
        back = (
            "UPDATE items SET deleted_at = NULL, deleted_reason = NULL"  # noqa: S608
            " WHERE source = ? AND kind = ? AND deleted_at IS NOT NULL"
            f" AND id IN (SELECT id FROM {table})"
        )
        # Quarantined records are held (with their reason) in the quarantine, not missing.
        unstored = (
            f" FROM {table} WHERE id NOT IN (SELECT id FROM items WHERE source = ?)"  # noqa: S608
            " AND id NOT IN (SELECT source || ':' || native_id FROM quarantine WHERE source = ?)"
        )
        with self._write(f"the {kind_value} census of {source}") as db:
            marked = db.execute(gone, (_now(), source, kind_value)).rowcount
            db.execute(back, (source, kind_value))
        try:
            with self._lock:  # reads: outside the write lock, which other writers wait for
                count = self._db.execute("SELECT count(*)" + unstored, (source, source)).fetchone()[
                    0
                ]
                sample = self._db.execute(
                    "SELECT id" + unstored + " ORDER BY id LIMIT ?",
                    (source, source, _CENSUS_SAMPLE),
                ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot compare the {kind_value} census of {source}: {exc}") from None
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.execute(f"DROP TABLE IF EXISTS {table}")
        prefix = len(source) + 1
        return CensusResult(int(marked), int(count), tuple(row[0][prefix:] for row in sample))

    # -- reading ---------------------------------------------------------------------------------

    @staticmethod
    def _filters(
        sources: Iterable[str] | None,
        kinds: Iterable[Kind | str] | None,
        include_deleted: bool,
        alias: str = "",
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if sources is not None:
            names = list(sources)
            clauses.append(f"{alias}source IN ({','.join('?' * len(names))})")
            args.extend(names)
        if kinds is not None:
            values = [Kind(k).value for k in kinds]
            clauses.append(f"{alias}kind IN ({','.join('?' * len(values))})")
            args.extend(values)
        if not include_deleted:
            clauses.append(f"{alias}deleted_at IS NULL")
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args

    def count(
        self,
        *,
        sources: Iterable[str] | None = None,
        kinds: Iterable[Kind | str] | None = None,
        include_deleted: bool = False,
    ) -> int:
        where, args = self._filters(sources, kinds, include_deleted)
        with self._lock:
            row = self._db.execute(f"SELECT count(*) FROM items{where}", args).fetchone()  # noqa: S608
        return int(row[0])

    def items(
        self,
        *,
        sources: Iterable[str] | None = None,
        kinds: Iterable[Kind | str] | None = None,
        include_deleted: bool = False,
    ) -> Iterator[WorkItem]:
        """Stream stored items (by id), one batch in memory at a time."""
        for _item_id, text, _hash in self._rows(sources, kinds, include_deleted):
            yield WorkItem.model_validate_json(text)

    def _rows(
        self,
        sources: Iterable[str] | None,
        kinds: Iterable[Kind | str] | None,
        include_deleted: bool,
        *,
        parents_first: bool = False,
    ) -> Iterator[tuple[str, str, str]]:
        where, args = self._filters(sources, kinds, include_deleted)
        # Parents first (projects, then items without a parent) so scoring never holds children.
        order = (
            "CASE kind WHEN 'project' THEN 0 ELSE 1 END, parent_key IS NOT NULL, id"
            if parents_first
            else "id"
        )
        query = f"SELECT id, data, content_hash FROM items{where} ORDER BY {order}"  # noqa: S608
        with self._read() as db:
            cur = db.execute(query, args)
            while True:
                batch = cur.fetchmany(_BATCH)
                if not batch:
                    return
                yield from batch

    def get(self, item_id: str) -> WorkItem | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM items WHERE id = ?", (item_id,)).fetchone()
        return None if row is None else WorkItem.model_validate_json(row[0])

    def versions(self, *, include_deleted: bool = True) -> dict[str, tuple[str, str]]:
        """``id -> (updated_at, content_hash)`` of every item (for comparisons and tests)."""
        where = "" if include_deleted else " WHERE deleted_at IS NULL"
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, updated_at, content_hash FROM items{where}"  # noqa: S608
            ).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def deleted(self, source: str | None = None) -> list[tuple[str, str, str]]:
        """``(id, deleted_at, reason)`` of items marked by a census."""
        query = "SELECT id, deleted_at, deleted_reason FROM items WHERE deleted_at IS NOT NULL"
        args: tuple[str, ...] = ()
        if source is not None:
            query += " AND source = ?"
            args = (source,)
        with self._lock:
            return [tuple(r) for r in self._db.execute(query + " ORDER BY id", args)]

    def quarantined(self, source: str | None = None) -> Iterator[QuarantineRecord]:
        query = (
            "SELECT source, kind, native_id, reason, raw, first_seen_at, last_seen_at, times_seen"
            " FROM quarantine"
        )
        args: tuple[str, ...] = ()
        if source is not None:
            query += " WHERE source = ?"
            args = (source,)
        with self._read() as db:
            for r in db.execute(query + " ORDER BY id", args):
                yield QuarantineRecord(r[0], r[1], r[2], r[3], _json.loads(r[4]), r[5], r[6], r[7])

    def quarantine_count(self, source: str | None = None) -> int:
        query = "SELECT count(*) FROM quarantine"
        args: tuple[str, ...] = ()
        if source is not None:
            query += " WHERE source = ?"
            args = (source,)
        with self._lock:
            return int(self._db.execute(query, args).fetchone()[0])

    def sources(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT DISTINCT source FROM items ORDER BY 1")]

    # -- verdicts --------------------------------------------------------------------------------

    def stale_verdicts(self, ruleset: str) -> int:
        """How many live items have no verdict for ``ruleset`` at their current content."""
        with self._lock:
            row = self._db.execute(
                "SELECT count(*) FROM items i LEFT JOIN verdicts v"
                " ON v.item_id = i.id AND v.ruleset = ?"
                " WHERE i.deleted_at IS NULL AND (v.item_id IS NULL"
                " OR v.content_hash != i.content_hash)",
                (ruleset,),
            ).fetchone()
        return int(row[0])

    def item_hashes(
        self,
        *,
        sources: Iterable[str] | None = None,
        kinds: Iterable[Kind | str] | None = None,
        include_deleted: bool = False,
        parents_first: bool = False,
    ) -> Iterator[tuple[WorkItem, str]]:
        """Stream ``(item, content_hash)`` pairs (what verdicts are keyed by)."""
        rows = self._rows(sources, kinds, include_deleted, parents_first=parents_first)
        for _item_id, text, digest in rows:
            yield WorkItem.model_validate_json(text), digest

    def save_verdicts(self, ruleset: str, verdicts: Iterable[tuple[str, str, Verdict]]) -> int:
        """Store ``(item_id, content_hash, verdict)`` for ``ruleset``, a batch per transaction."""
        now = _now()
        written = 0
        batch: list[tuple[Any, ...]] = []

        def flush() -> None:
            with self._write(f"verdicts for rule set {ruleset}") as db:
                db.executemany(
                    "INSERT INTO verdicts (item_id, ruleset, content_hash, label, p_business,"
                    " reasons, scored_at) VALUES (?,?,?,?,?,?,?)"
                    " ON CONFLICT (item_id, ruleset) DO UPDATE SET"
                    " content_hash = excluded.content_hash, label = excluded.label,"
                    " p_business = excluded.p_business, reasons = excluded.reasons,"
                    " scored_at = excluded.scored_at",
                    batch,
                )
            batch.clear()

        for item_id, digest, verdict in verdicts:
            reasons = _json.dumps([r.model_dump(mode="json") for r in verdict.reasons])
            batch.append(
                (item_id, ruleset, digest, verdict.label.value, verdict.p_business, reasons, now)
            )
            written += 1
            if len(batch) >= 5000:
                flush()
        if batch:
            flush()
        return written

    def verdict(self, item_id: str, ruleset: str) -> StoredVerdict | None:
        with self._lock:
            row = self._db.execute(
                "SELECT content_hash, label, p_business, reasons FROM verdicts"
                " WHERE item_id = ? AND ruleset = ?",
                (item_id, ruleset),
            ).fetchone()
        if row is None:
            return None
        return StoredVerdict(item_id, ruleset, row[0], _verdict(row[1], row[2], row[3]))

    def rulesets(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT DISTINCT ruleset FROM verdicts")]

    def scored_items(
        self,
        ruleset: str,
        *,
        sources: Iterable[str] | None = None,
        kinds: Iterable[Kind | str] | None = None,
    ) -> Iterator[ScoredItem]:
        """Stream live items with their verdict for ``ruleset`` (items without one are skipped;
        call :func:`itsm_bridge.sync.update_verdicts` first)."""
        where, args = self._filters(sources, kinds, False, alias="i.")
        query = (
            "SELECT i.data, v.label, v.p_business, v.reasons FROM items i JOIN verdicts v"  # noqa: S608 - placeholders only
            f" ON v.item_id = i.id AND v.ruleset = ?{where} ORDER BY i.id"
        )
        with self._read() as db:
            cur = db.execute(query, [ruleset, *args])
            while True:
                batch = cur.fetchmany(_BATCH)
                if not batch:
                    return
                for data, label, p, reasons in batch:
                    payload = _json.loads(data)
                    payload["scoring"] = _verdict(label, p, reasons)
                    yield ScoredItem.model_validate(payload)

    # -- exports ---------------------------------------------------------------------------------

    def export(
        self,
        path: str | os.PathLike[str],
        fmt: str = "jsonl",
        *,
        ruleset: str | None = None,
        sources: Iterable[str] | None = None,
        kinds: Iterable[Kind | str] | None = None,
    ) -> int:
        """Write live items (scored with ``ruleset``'s verdicts when given) atomically to ``path``.

        ``fmt`` is ``jsonl``, ``csv`` or ``parquet`` (the ``parquet`` extra). Returns the count.
        """
        from itsm_bridge.sync.exports import write_items

        items = self._exported(ruleset, sources, kinds)
        return write_items(items, path, fmt, scored=ruleset is not None)

    def to_dataframe(
        self,
        *,
        ruleset: str | None = None,
        sources: Iterable[str] | None = None,
        kinds: Iterable[Kind | str] | None = None,
    ) -> Any:
        """Live items as a pandas DataFrame (the ``pandas`` extra); verdicts with ``ruleset``."""
        from itsm_bridge.sync.exports import to_dataframe

        return to_dataframe(self._exported(ruleset, sources, kinds), scored=ruleset is not None)

    def _exported(
        self,
        ruleset: str | None,
        sources: Iterable[str] | None,
        kinds: Iterable[Kind | str] | None,
    ) -> Iterable[WorkItem]:
        """The live items an export writes; with ``ruleset``, every one must have its verdict
        (an export that left the unscored ones out would be short without a word)."""
        if ruleset is None:
            return self.items(sources=sources, kinds=kinds)
        sources = None if sources is None else list(sources)
        kinds = None if kinds is None else list(kinds)
        where, args = self._filters(sources, kinds, False, alias="i.")
        query = (
            "SELECT count(*) FROM items i LEFT JOIN verdicts v"  # noqa: S608 - placeholders only
            f" ON v.item_id = i.id AND v.ruleset = ?{where}"
            f" {'AND' if where else 'WHERE'} v.item_id IS NULL"
        )
        with self._lock:
            (unscored,) = self._db.execute(query, [ruleset, *args]).fetchone()
        if unscored:
            raise StoreError(
                f"{unscored} stored items have no verdict for rule set {ruleset}: score them "
                "first (itsm_bridge.sync.update_verdicts(store, scorer); the CLI's export "
                "--scored does)"
            )
        return self.scored_items(ruleset, sources=sources, kinds=kinds)


def _verdict(label: str, p_business: float, reasons: str) -> Verdict:
    return Verdict(
        label=Label(label),
        p_business=p_business,
        reasons=tuple(Reason.model_validate(r) for r in _json.loads(reasons)),
    )
