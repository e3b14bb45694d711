"""Disk full: the sync fails loudly and the store stays consistent and resumable.

The store's file is capped with SQLite's ``max_page_count`` pragma on every connection the store
opens (a small filesystem without a mount): the next write that needs a new page fails inside
its transaction with SQLITE_FULL ("database or disk is full"), exactly as on a full disk. Then:

- the library raises :class:`StoreError` (the CLI exits 6) naming the store and the cause;
- ``PRAGMA integrity_check`` is ok, and the stored cursor still describes the stored items: every
  record updated before a kind's cursor watermark is stored (nothing the cursor claims is lost);
- after space is freed, a rerun completes and the store equals the platform.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reliability_kit import FIGURES

import itsm_bridge as ib
from itsm_bridge import Kind
from itsm_bridge.cli import main
from itsm_bridge.errors import StoreError
from itsm_bridge.sandbox import generate_company, make_sandbox
from itsm_bridge.sandbox.platform import PlatformSandbox
from itsm_bridge.sync import Store, SyncProgress

_CAP: dict[str, int | None] = {"pages": None}


@pytest.fixture
def small_disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int | None]]:
    """Cap every store connection at ``_CAP["pages"]`` pages (None: no cap) from now on."""
    original = Store._connect
    opened: list[sqlite3.Connection] = []

    def capped(self: Store) -> sqlite3.Connection:
        db = original(self)
        opened.append(db)
        if _CAP["pages"] is not None:
            db.execute(f"PRAGMA max_page_count = {_CAP['pages']}")
        return db

    monkeypatch.setattr(Store, "_connect", capped)
    _CAP["pages"] = None
    yield _CAP
    _CAP["pages"] = None


def page_count(db: Path) -> int:
    raw = sqlite3.connect(db)
    try:
        return int(raw.execute("PRAGMA page_count").fetchone()[0])
    finally:
        raw.close()


def fill_up(store: Store) -> Any:
    """A progress callback that fills the disk after the second stored page."""

    def progress(event: SyncProgress) -> None:
        if event.pages == 2 and not event.done:
            used = store._db.execute("PRAGMA page_count").fetchone()[0]
            store._db.execute(f"PRAGMA max_page_count = {used}")

    return progress


def check_consistent(db: Path, sandbox: PlatformSandbox, source: str) -> int:
    """integrity ok; for each kind, everything before its cursor watermark is stored."""
    raw = sqlite3.connect(db)
    try:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        raw.close()
    with Store(db) as store:
        stored = {item.key: item.updated_at for item in store.items(sources=[source])}
        watermarks = {
            Kind(kind): cursor.watermark
            for (src, kind), cursor in store.cursors().items()
            if src == source and cursor.watermark is not None
        }
    covered = 0
    for item in sandbox.visible_items():
        watermark = watermarks.get(item.kind)
        if watermark is not None and item.updated.replace(microsecond=0) < watermark:
            assert item.number in stored, f"{item.number} is before the cursor but not stored"
            covered += 1
    return covered


def test_disk_full_mid_sync_raises_store_error_and_a_rerun_completes(
    tmp_path: Path, small_disk: dict[str, int | None]
) -> None:
    items = generate_company(31, scale=0.3).for_platform("servicenow")
    db = tmp_path / "full.db"
    with make_sandbox("servicenow", items) as sandbox:
        options = {**sandbox.connect_options(), "page_size": 100, "source": "snow"}
        with Store(db) as store, ib.connect("servicenow", sandbox.url, auth=sandbox.auth(),
                                            **options) as conn:  # fmt: skip
            with pytest.raises(StoreError) as caught:
                ib.sync(conn, store, progress=fill_up(store))
            stored_before = store.count()
        message = str(caught.value)
        assert "database or disk is full" in message
        assert str(db) in message
        assert stored_before > 0
        covered = check_consistent(db, sandbox, "snow")
        # space freed: the rerun completes from the cursor and the store equals the platform
        with ib.connect("servicenow", sandbox.url, auth=sandbox.auth(), **options) as conn:
            result = ib.sync(conn, db)
        assert result.status == "ok", result.summary()
        with Store(db) as store:
            keys = sorted(item.key for item in store.items())
            runs = [r.status for r in store.runs(limit=10)]
        assert keys == sorted(item.number for item in sandbox.visible_items())
    assert runs[0] == "ok"
    assert runs[1] in ("failed", "killed"), runs  # recorded, or marked when the disk refused
    FIGURES.add("disk_full_runs_survived")
    print("stored before the disk filled:", stored_before, "covered by cursors:", covered)


@pytest.mark.parametrize("platform", ["servicenow", "jira"])
def test_cli_exits_6_on_a_full_disk_and_the_rerun_completes(
    platform: str,
    tmp_path: Path,
    small_disk: dict[str, int | None],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    items = generate_company(32, scale=0.3 if platform == "servicenow" else 0.8).for_platform(
        platform
    )
    db = tmp_path / "cli.db"
    with make_sandbox(platform, items) as sandbox:
        auth = sandbox.auth()
        options = {**sandbox.connect_options(), "page_size": 50, "lag_seconds": 1}
        monkeypatch.setenv("RELIABILITY_SECRET", auth._password)  # type: ignore[attr-defined]
        args = [
            "pull", platform, "--url", sandbox.url, "--user", auth.username,  # type: ignore[attr-defined]
            "--password-env", "RELIABILITY_SECRET", "--source", "cli", "--store", str(db),
            "--no-progress",
            *[f"--option={k}={json.dumps(v)}" for k, v in options.items()],
        ]  # fmt: skip
        # room for a few pages only: the sync stores some, then the disk is full
        with Store(db):
            pass
        small_disk["pages"] = page_count(db) + 25
        code = main(args)
        err = capsys.readouterr().err
        assert code == 6, err
        assert "database or disk is full" in err
        assert "Traceback" not in err
        small_disk["pages"] = None
        with Store(db) as store:
            stored_before = store.count()
        assert stored_before > 0, "the disk filled before the first page: nothing was proven"
        check_consistent(db, sandbox, "cli")
        code = main(args)
        err = capsys.readouterr().err
        assert code == 0, err
        with Store(db) as store:
            keys = sorted(item.key for item in store.items())
        assert keys == sorted(item.number for item in sandbox.visible_items())
    FIGURES.add("disk_full_runs_survived")
