"""itsm-bridge itself: the connector's ``pull`` and ``ib.sync`` into a SQLite store.

Options are the defaults a user gets (page size, parallel ranges and concurrency within the
governor's limits); only what the sandbox needs (loopback http) comes from the sandbox.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from bench.target import Fetch, Target


def connect(t: Target, **extra: Any) -> Any:
    import itsm_bridge as ib

    options = {**t.connect_options, **extra}
    auth = ib.BearerAuth(t.password) if t.auth == "bearer" else ib.BasicAuth(t.username, t.password)
    return ib.connect(t.connector, t.url, auth=auth, **options)


def pull_stream(t: Target, **options: Any) -> Fetch:
    """Consume ``pull()`` as a stream: the library's own cost, nothing retained but ids.

    ``options`` are connector options (``page_size``, ``max_workers``...) for the tuned rows.
    """
    conn = connect(t, **options)

    def fetch() -> Collection[str]:
        return [item.id for item in conn.pull(kinds=[t.kind])]

    return fetch


def pull_list(t: Target) -> Fetch:
    """``list(conn.pull())``: every validated WorkItem held in memory, like the list peers."""
    conn = connect(t)

    def fetch() -> Collection[str]:
        items = list(conn.pull(kinds=[t.kind]))
        return [item.id for item in items]

    return fetch


def sync(t: Target) -> Callable[[], Callable[[], Collection[str]]]:
    """``ib.sync`` into a fresh SQLite store; ids are read back from the store after the clock."""
    import itsm_bridge as ib
    import itsm_bridge.sync

    # ib.sync is the public function once __init__ re-exports it; until then the subpackage's.
    run_sync = ib.sync if callable(ib.sync) else itsm_bridge.sync.sync

    conn = connect(t)
    db = Path(t.workdir) / f"sync-{t.scenario}-{os.getpid()}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)

    def fetch() -> Callable[[], Collection[str]]:
        run_sync(conn, store=str(db), kinds=[t.kind])
        return lambda: store_ids(db)

    return fetch


def store_ids(db: Path) -> list[str]:
    """Every item id in a store, read with plain sqlite3 so the check trusts nothing of ours."""
    with sqlite3.connect(db) as con:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in sorted(tables, key=lambda name: name != "items"):
            columns = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
            if "id" in columns and ("kind" in columns or table == "items"):
                return [r[0] for r in con.execute(f"SELECT id FROM {table}")]  # noqa: S608
    raise RuntimeError(f"no item table found in {db} (tables: {tables})")
