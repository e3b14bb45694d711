"""The SQLite store: migrations, atomic pages, write failures, verdicts and exports."""

from __future__ import annotations

import csv
import json
import sqlite3
import sys
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import itsm_bridge as ib
from itsm_bridge.connector import Cursor, Reject
from itsm_bridge.schema import Kind, Label, Reason, Verdict, WorkItem
from itsm_bridge.sync import Store
from itsm_bridge.sync.exports import (
    CSV_FIELDS,
    atomic_output,
    to_dataframe,
    write_jsonl,
    write_parquet,
)
from itsm_bridge.sync.migrations import LATEST_VERSION, MIGRATIONS

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def item(n: int, *, updated: datetime | None = None, title: str = "", pad: int = 0) -> WorkItem:
    return WorkItem(
        id=f"src:{n:07d}",
        source="src",
        kind=Kind.INCIDENT if n % 2 else Kind.CHANGE,
        key=f"INC{n:07d}",
        title=title or f"item {n}",
        description="x" * pad or None,
        status="closed",
        created_at=T0 - timedelta(days=40 * (n % 3)),
        updated_at=updated or T0 + timedelta(seconds=n),
        team=("Service Desk", "Network Ops")[n % 2],
        service="VPN",
        labels=("a", "b"),
        effort_hours=1.5,
        extra={"risk": "low"},
    )


def cursor(n: int) -> Cursor:
    return Cursor(watermark=T0 + timedelta(seconds=n), boundary_ids=(f"{n:07d}",))


def test_a_new_store_is_at_the_latest_schema_in_wal_mode(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        assert store.schema_version == LATEST_VERSION == 2
        mode = store._db.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
        versions = [r[0] for r in store._db.execute("SELECT version FROM schema_version")]
        assert versions == [1, 2]


def test_a_v1_store_is_upgraded_in_place_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    Store._migrate(db, MIGRATIONS[:1])
    payload = item(4).model_dump(mode="json")
    db.execute(
        "INSERT INTO items VALUES (?,?,?,?,?,?,?,?,?)",
        (
            "src:0000004",
            "src",
            "change",
            "INC0000004",
            "2026-03-01T09:00:04.000000Z",
            "h",
            json.dumps(payload),
            "t",
            "t",
        ),
    )
    db.execute(
        "INSERT INTO cursors VALUES ('src', 'change', ?, 't', NULL)", (cursor(4).model_dump_json(),)
    )
    assert Store._version(db) == 1
    db.close()

    with Store(path) as store:
        assert store.schema_version == 2
        row = store._db.execute(
            "SELECT month, team, service, status, deleted_at FROM items WHERE id = 'src:0000004'"
        ).fetchone()
        assert row == ("2026-01", "Service Desk", "VPN", "closed", None)
        assert store.get("src:0000004") == item(4)
        assert store.cursor("src", "change") == cursor(4)
        assert store.stale_verdicts("rules-1") == 1  # the verdicts table exists and is empty


def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    Store(path).close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("INSERT INTO schema_version VALUES (99, 'future', 't')")
    db.close()
    with pytest.raises(ib.StoreError, match="newer than this itsm-bridge"):
        Store(path)


def test_a_page_and_its_cursor_commit_together(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        counts = store.write_page("src", Kind.INCIDENT, [item(1), item(3)], cursor=cursor(3))
        assert (counts.new, counts.updated, counts.unchanged) == (2, 0, 0)
        again = store.write_page("src", Kind.INCIDENT, [item(1), item(3, title="new")])
        assert (again.new, again.updated, again.unchanged) == (0, 1, 1)
        assert store.cursor("src", "incident") == cursor(3)
        assert store.count() == 2


def test_a_page_repeating_a_record_keeps_its_newest_version(tmp_path: Path) -> None:
    newer = item(1, updated=T0 + timedelta(hours=1), title="newer")
    with Store(tmp_path / "s.db") as store:
        counts = store.write_page("src", Kind.INCIDENT, [newer, item(1)])
        assert counts.new == 1
        stored = store.get("src:0000001")
        assert stored is not None
        assert stored.title == "newer"


def test_disk_full_raises_store_error_and_keeps_the_last_committed_page(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.write_page("src", Kind.INCIDENT, [item(n) for n in range(1, 20)], cursor=cursor(19))
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        store._db.execute(f"PRAGMA max_page_count = {pages + 2}")
        big = [item(n, pad=4000) for n in range(20, 200)]
        rejects = [Reject(Kind.INCIDENT, "bad-1", "unknown state", {"state": "99"})]
        with pytest.raises(ib.StoreError, match="full") as caught:
            store.write_page("src", Kind.INCIDENT, big, rejects, cursor=cursor(199))
        assert caught.value.exit_code == 6
        assert "earlier pages and cursors are intact" in str(caught.value)
        assert store.count() == 19
        assert store.cursor("src", "incident") == cursor(19)
        assert store.quarantine_count() == 0
        store._db.execute("PRAGMA max_page_count = 1073741823")
        store.write_page("src", Kind.INCIDENT, big, rejects, cursor=cursor(199))
        assert store.count() == 199


def test_an_unwritable_location_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ib.StoreError, match="cannot"):
        Store(blocker / "s.db")


def test_verdicts_are_kept_per_rule_set_and_go_stale_when_items_change(tmp_path: Path) -> None:
    verdict = Verdict(
        label=Label.INWARD,
        p_business=0.2,
        reasons=(Reason(rule="kind.incident", weight=-1.0, evidence="incident"),),
    )
    with Store(tmp_path / "s.db") as store:
        store.write_page("src", Kind.INCIDENT, [item(1), item(3)])
        assert store.stale_verdicts("v1") == 2
        hashes = {i.id: h for i, h in store.item_hashes()}
        store.save_verdicts("v1", [(i, h, verdict) for i, h in hashes.items()])
        assert store.stale_verdicts("v1") == 0
        assert store.stale_verdicts("v2") == 2
        scored = list(store.scored_items("v1"))
        assert [s.scoring for s in scored] == [verdict, verdict]
        assert scored[0].item == item(1)
        store.write_page("src", Kind.INCIDENT, [item(3, title="changed")])
        assert store.stale_verdicts("v1") == 1
        assert store.rulesets() == ["v1"]


def test_census_marks_and_unmarks(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.write_page("src", Kind.INCIDENT, [item(1), item(3), item(5)])
        assert store.apply_census("src", Kind.INCIDENT, iter(["0000001"])) == 2
        assert store.count() == 1
        assert store.apply_census("src", Kind.INCIDENT, ["0000001", "0000003"]) == 0
        assert [d[0] for d in store.deleted()] == ["src:0000005"]


def test_jsonl_and_csv_exports(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.write_page("src", Kind.INCIDENT, [item(n) for n in range(1, 6)])
        assert store.export(tmp_path / "out.jsonl") == 5
        lines = (tmp_path / "out.jsonl").read_text().splitlines()
        assert [WorkItem.model_validate_json(x) for x in lines] == [item(n) for n in range(1, 6)]
        assert json.loads(lines[0])["updated_at"] == "2026-03-01T09:00:01Z"
        assert store.export(tmp_path / "out.csv", "csv", kinds=["change"]) == 2
        rows = list(csv.DictReader((tmp_path / "out.csv").read_text().splitlines()))
        assert [r["key"] for r in rows] == ["INC0000002", "INC0000004"]
        assert rows[0]["labels"] == "a; b"
        assert json.loads(rows[0]["extra"]) == {"risk": "low"}


def test_parquet_and_dataframe_exports(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    pytest.importorskip("pandas")
    with Store(tmp_path / "s.db") as store:
        store.write_page("src", Kind.INCIDENT, [item(n) for n in range(1, 6)])
        assert store.export(tmp_path / "out.parquet", "parquet") == 5
        table = pq.read_table(tmp_path / "out.parquet")
        assert table.num_rows == 5
        assert table.column("key").to_pylist()[0] == "INC0000001"
        frame = store.to_dataframe()
        assert len(frame) == 5
        assert str(frame["updated_at"].dt.tz) == "UTC"


def test_parquet_and_dataframe_take_sparse_columns_and_mixed_precision(tmp_path: Path) -> None:
    """A column null in the first row group and set later (a parent key, a resolution time);
    whole-second times ("...:52Z") beside fractional ones ("...:18.343000Z")."""
    pq = pytest.importorskip("pyarrow.parquet")
    pytest.importorskip("pandas")
    items = [item(1), item(2), item(3, updated=T0 + timedelta(seconds=3, microseconds=343_000))]
    items[2] = items[2].model_copy(update={"parent_key": "PRJ1", "priority": 2})
    target = tmp_path / "out.parquet"
    write_parquet(items, target, batch_size=2)
    table = pq.read_table(target)
    assert table.column("parent_key").to_pylist() == [None, None, "PRJ1"]
    assert str(table.schema.field("priority").type) == "int64"
    frame = to_dataframe(items)
    assert frame["updated_at"].iloc[2].microsecond == 343_000


def test_a_pulled_line_and_an_exported_line_are_the_same_bytes(tmp_path: Path) -> None:
    one = item(1).model_copy(update={"extra": {"z": 1, "a": {"y": 2, "b": 3}}})
    write_jsonl([one], tmp_path / "pulled.jsonl")
    with Store(tmp_path / "s.db") as store:
        store.write_page("src", Kind.INCIDENT, [one])
        store.export(tmp_path / "exported.jsonl")
    assert (tmp_path / "pulled.jsonl").read_bytes() == (tmp_path / "exported.jsonl").read_bytes()


def test_missing_extras_name_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with Store(tmp_path / "s.db") as store:
        with pytest.raises(ib.ConfigurationError, match=r"itsm-bridge\[parquet\]"):
            store.export(tmp_path / "out.parquet", "parquet")
        with pytest.raises(ib.ConfigurationError, match=r"itsm-bridge\[pandas\]"):
            store.to_dataframe()
    assert not (tmp_path / "out.parquet").exists()


def test_a_failed_export_leaves_the_previous_file_untouched(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_text("previous\n")

    def broken() -> Iterator[WorkItem]:
        yield item(1)
        raise ib.SourceConnectionError("connection reset")

    with pytest.raises(ib.SourceConnectionError):
        write_jsonl(broken(), target)
    assert target.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
    with pytest.raises(ib.StoreError, match="cannot write"), atomic_output(tmp_path / "no" / "x"):
        pass


def test_streaming_a_large_store_keeps_memory_flat(tmp_path: Path) -> None:
    """40 MB of items pass through write_page and an export with a small, bounded peak."""
    n, page = 10_000, 500
    with Store(tmp_path / "s.db") as store:
        tracemalloc.start()
        try:
            for start in range(0, n, page):
                store.write_page(
                    "src", Kind.INCIDENT, [item(i, pad=4000) for i in range(start, start + page)]
                )
            _, write_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            assert store.export(tmp_path / "out.jsonl") == n
            _, export_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    total = (tmp_path / "out.jsonl").stat().st_size
    assert total > 40_000_000
    assert write_peak < total / 5, (write_peak, export_peak)
    assert export_peak < total / 5, (write_peak, export_peak)


def test_readers_open_the_store_while_a_writer_holds_its_lock(tmp_path: Path) -> None:
    """Opening an up-to-date store takes no write lock: a report or export runs during a sync."""
    path = tmp_path / "s.db"
    with Store(path) as store:
        store.write_page("src", Kind.INCIDENT, [item(1), item(2)])
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a sync's page transaction, held
    try:
        with Store(path, timeout=0.5, create=False) as reader:
            assert reader.count() == 2
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_the_census_holds_the_write_lock_only_to_mark(tmp_path: Path) -> None:
    """The census pages ids from the platform (minutes on a large table); meanwhile other
    writers (another source's sync) must not wait on it."""
    path = tmp_path / "s.db"
    with Store(path) as store:
        store.write_page("src", Kind.INCIDENT, [item(n) for n in range(1, 6)])
        other = Store(path, timeout=0.5)

        def paged_slowly() -> Iterator[str]:
            yield "0000001"
            other.write_page("src", Kind.CHANGE, [item(8)])  # would time out if locked
            yield "0000003"

        # incidents 1, 3 and 5 are stored; the platform shows 1 and 3
        assert store.apply_census("src", Kind.INCIDENT, paged_slowly()) == 1
        other.close()
        assert store.count() == 5  # 1 and 3, the changes 2 and 4, and 8 written meanwhile


def test_a_reader_refuses_an_empty_file_as_a_store(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(ib.StoreError, match="no store at"):
        Store(empty, create=False)
    assert empty.read_bytes() == b""  # not turned into a store either


def test_a_scored_export_refuses_to_leave_unscored_items_out(tmp_path: Path) -> None:
    """Exported with a rule set's verdicts, every live item needs one: leaving the unscored
    ones out would make the file short without a word."""
    from itsm_bridge.scoring import Scorer
    from itsm_bridge.sync.verdicts import update_verdicts

    with Store(tmp_path / "s.db") as store:
        store.write_page("src", Kind.INCIDENT, [item(n) for n in range(1, 4)])
        scorer = Scorer()
        with pytest.raises(ib.StoreError, match="3 stored items have no verdict"):
            store.export(tmp_path / "scored.jsonl", ruleset=scorer.version)
        assert not (tmp_path / "scored.jsonl").exists()
        update_verdicts(store, scorer)
        assert store.export(tmp_path / "scored.jsonl", ruleset=scorer.version) == 3
        store.write_page("src", Kind.INCIDENT, [item(4)])  # a new change, not scored yet
        with pytest.raises(ib.StoreError, match="1 stored items"):
            store.export(tmp_path / "scored.jsonl", ruleset=scorer.version, kinds=["change"])


def test_an_empty_scored_export_has_the_verdict_columns(tmp_path: Path) -> None:
    """A loader reading label/p_business/reasons must not fail on a day with nothing to export."""
    with Store(tmp_path / "s.db") as store:
        store.write_page("src", Kind.INCIDENT, [item(1)])
        assert store.export(tmp_path / "out.csv", "csv", ruleset="r1", kinds=["problem"]) == 0
        header = (tmp_path / "out.csv").read_text().splitlines()
        assert header == [",".join([*CSV_FIELDS, "label", "p_business", "reasons"])]
        assert store.export(tmp_path / "plain.csv", "csv", kinds=["problem"]) == 0
        assert (tmp_path / "plain.csv").read_text().splitlines() == [",".join(CSV_FIELDS)]


def test_an_empty_scored_parquet_and_dataframe_have_the_verdict_columns(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    pytest.importorskip("pandas")
    columns = [*CSV_FIELDS, "label", "p_business", "reasons"]
    write_parquet([], tmp_path / "out.parquet", scored=True)
    assert pq.read_table(tmp_path / "out.parquet").column_names == columns
    assert list(to_dataframe([], scored=True).columns) == columns
