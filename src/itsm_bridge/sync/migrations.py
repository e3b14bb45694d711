"""The store's schema, as an ordered list of migrations.

A store records every migration it has applied in ``schema_version``; opening a store applies the
missing ones in order, each in its own transaction, so an old store is upgraded in place and a
half-applied upgrade is impossible. A store written by a newer itsm-bridge is refused rather than
guessed at. Never edit a released step: add a new one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from itsm_bridge import _json

__all__ = ["LATEST_VERSION", "MIGRATIONS", "Migration", "month_of"]


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str = ""
    backfill: Callable[[sqlite3.Connection], None] | None = None


_V1 = """
CREATE TABLE items (
    id            TEXT PRIMARY KEY,
    source        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    key           TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    data          TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL
);
CREATE INDEX items_source_kind ON items (source, kind);

CREATE TABLE cursors (
    source   TEXT NOT NULL,
    kind     TEXT NOT NULL,
    cursor   TEXT NOT NULL,
    saved_at TEXT NOT NULL,
    run_id   INTEGER,
    PRIMARY KEY (source, kind)
);

CREATE TABLE quarantine (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    source        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    native_id     TEXT,
    reason        TEXT NOT NULL,
    raw           TEXT NOT NULL,
    run_id        INTEGER,
    first_seen_at TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    times_seen    INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX quarantine_record ON quarantine (source, kind, native_id)
    WHERE native_id IS NOT NULL;

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source      TEXT NOT NULL,
    connector   TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    status      TEXT NOT NULL,
    report      TEXT,
    error       TEXT,
    pid         INTEGER,
    host        TEXT
);
CREATE INDEX runs_source ON runs (source, id);
"""

_V2 = """
ALTER TABLE items ADD COLUMN month TEXT;
ALTER TABLE items ADD COLUMN team TEXT;
ALTER TABLE items ADD COLUMN service TEXT;
ALTER TABLE items ADD COLUMN status TEXT;
ALTER TABLE items ADD COLUMN parent_key TEXT;
ALTER TABLE items ADD COLUMN deleted_at TEXT;
ALTER TABLE items ADD COLUMN deleted_reason TEXT;
CREATE INDEX items_month ON items (month);
CREATE INDEX items_team ON items (team);
CREATE INDEX items_service ON items (service);
CREATE INDEX items_kind ON items (kind);
CREATE INDEX items_status ON items (status);
CREATE INDEX items_source_key ON items (source, key);
CREATE INDEX items_parent ON items (source, parent_key);

CREATE TABLE verdicts (
    item_id      TEXT NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    ruleset      TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    label        TEXT NOT NULL,
    p_business   REAL NOT NULL,
    reasons      TEXT NOT NULL,
    scored_at    TEXT NOT NULL,
    PRIMARY KEY (item_id, ruleset)
);
CREATE INDEX verdicts_ruleset_label ON verdicts (ruleset, label);
"""


def month_of(data: dict[str, object]) -> str | None:
    """The report month of an item: when the work came in (created), else when last updated."""
    value = data.get("created_at") or data.get("updated_at")
    return str(value)[:7] if value else None


def _backfill_dimensions(db: sqlite3.Connection) -> None:
    """Fill v2's dimension columns from the JSON that v1 stored, in batches."""
    last = ""
    while True:
        rows = db.execute(
            "SELECT id, data FROM items WHERE id > ? ORDER BY id LIMIT 1000", (last,)
        ).fetchall()
        if not rows:
            return
        updates = []
        for item_id, text in rows:
            data = _json.loads(text)
            updates.append(
                (
                    month_of(data),
                    data.get("team"),
                    data.get("service"),
                    data.get("status"),
                    data.get("parent_key"),
                    item_id,
                )
            )
        db.executemany(
            "UPDATE items SET month = ?, team = ?, service = ?, status = ?, parent_key = ?"
            " WHERE id = ?",
            updates,
        )
        last = rows[-1][0]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "items, cursors, quarantine and run history", _V1),
    Migration(
        2,
        "report dimensions, verdicts per rule-set version, deletion markers",
        _V2,
        _backfill_dimensions,
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version
