"""The sync engine against a fake platform over real HTTP on loopback."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from pathlib import Path

import ib_fake_platform as fake
import pytest

import itsm_bridge as ib
from itsm_bridge.sandbox import FaultPlan, SandboxServer
from itsm_bridge.sync import Store, SyncProgress, run_sync, sync

Platform = tuple[SandboxServer, fake.FakePlatform]


def test_first_sync_stores_everything_and_quarantines_what_cannot_be_mapped(
    platform: Platform, tmp_path: Path
) -> None:
    server, _ = platform
    with fake.connect(server.url) as conn, Store(tmp_path / "s.db") as store:
        result = sync(conn, store)
        assert result.status == "ok"
        assert result.records == 2 * 118
        assert result.new == 2 * 118
        assert result.updated == result.unchanged == 0
        assert result.quarantined == 4
        assert result.exit_code == 5  # bad data met, the sync still finished
        assert result.pages == 2 * 3
        assert result.requests == 6
        assert store.count() == 236
        assert store.count(kinds=["change"]) == 118
        rejects = list(store.quarantined())
        assert len(rejects) == 4
        assert {r.native_id for r in rejects} == {
            "inc000000",
            "inc000001",
            "cha000000",
            "cha000001",
        }
        assert all("unknown state code '99'" in r.reason for r in rejects)
        assert rejects[0].raw["state"] == "99"
        assert rejects[0].raw["number"].startswith(("INC", "CHA"))
        cursor = store.cursor("fake", "incident")
        assert cursor is not None
        assert cursor.state["after"][1] == "inc000119"
        report = result.as_dict()
        assert report["kinds"]["incident"]["quarantined"] == 2
        assert json.loads(result.to_json())["quarantined"] == 4


def test_second_sync_reads_only_what_changed(platform: Platform, tmp_path: Path) -> None:
    server, app = platform
    db = tmp_path / "s.db"
    with fake.connect(server.url) as conn:
        sync(conn, db)
        again = sync(conn, db)
        assert again.records == 0
        assert again.new == 0
        assert again.requests == 2  # one empty page per kind
        app.touch(["inc000050", "inc000051", "cha000007"])
        third = sync(conn, db)
    assert (third.records, third.new, third.updated) == (3, 0, 3)
    assert third.quarantined == 0
    assert third.exit_code == 0
    with Store(db) as store:
        item = store.get("fake:inc000050")
        assert item is not None
        assert item.title.endswith("(edited)")
        assert store.count() == 236
        runs = store.runs()
        assert [r.status for r in runs] == ["ok", "ok", "ok"]
        assert runs[0].report is not None
        assert runs[0].report["updated"] == 3


def test_a_record_that_maps_again_leaves_the_quarantine(platform: Platform, tmp_path: Path) -> None:
    server, app = platform
    db = tmp_path / "s.db"
    with fake.connect(server.url) as conn:
        sync(conn, db)
        with app.lock:
            app.records["inc000000"]["state"] = "2"
        app.touch(["inc000000"])
        result = sync(conn, db)
    assert result.new == 1
    with Store(db) as store:
        assert store.get("fake:inc000000") is not None
        assert {r.native_id for r in store.quarantined()} == {"inc000001", "cha000000", "cha000001"}


def test_quarantine_keeps_one_row_per_record_across_runs(
    platform: Platform, tmp_path: Path
) -> None:
    server, app = platform
    db = tmp_path / "s.db"
    with fake.connect(server.url) as conn:
        sync(conn, db)
        app.touch(["inc000001"])
        sync(conn, db)
    with Store(db) as store:
        rows = [r for r in store.quarantined() if r.native_id == "inc000001"]
        assert len(rows) == 1
        assert rows[0].times_seen == 2
        assert store.quarantine_count() == 4


def test_census_marks_records_no_longer_visible(platform: Platform, tmp_path: Path) -> None:
    server, app = platform
    db = tmp_path / "s.db"
    with fake.connect(server.url) as conn:
        first = sync(conn, db, census=True)
        assert first.deleted == 0
        app.delete(["inc000010", "cha000020"])
        second = sync(conn, db, census=True)
    assert second.deleted == 2
    assert second.kinds["incident"].deleted == 1
    with Store(db) as store:
        assert [d[0] for d in store.deleted()] == ["fake:cha000020", "fake:inc000010"]
        assert store.count() == 234
        assert store.count(include_deleted=True) == 236


def test_census_counts_visible_records_the_store_lacks_and_full_reads_them(
    platform: Platform, tmp_path: Path
) -> None:
    # A permission change reveals an old record without updating it: incremental syncs read by
    # update time and never see it; the census must say so, and a full sync must store it.
    server, app = platform
    db = tmp_path / "s.db"
    with fake.connect(server.url) as conn:
        sync(conn, db, census=True)
        revealed = dict(app.records["inc000005"], sys_id="inc900000", number="INC0900000")
        with app.lock:
            app.records["inc900000"] = revealed
        second = sync(conn, db, census=True)
        assert second.status == "ok"
        assert (second.records, second.unstored) == (0, 1)
        assert second.kinds["incident"].unstored == 1
        assert second.kinds["change"].unstored == 0
        assert "1 visible but not stored (--full reads them)" in second.summary()
        third = sync(conn, db, census=True, full=True)
    assert third.unstored == 0
    assert third.new == 1  # the revealed one; the rest were upserted unchanged
    assert third.unchanged == 236
    with Store(db) as store:
        assert store.count() == 237


def test_kinds_and_since_bound_the_first_sync(platform: Platform, tmp_path: Path) -> None:
    server, _ = platform
    with fake.connect(server.url) as conn:
        result = sync(conn, tmp_path / "s.db", kinds=["change"], since="2026-01-01T00:00:30Z")
    # updated = EPOCH + i//3 seconds: records 90..119 are at or after second 30
    assert result.records == 30
    assert list(result.kinds) == ["change"]


def test_unknown_kind_is_a_configuration_error(platform: Platform, tmp_path: Path) -> None:
    server, _ = platform
    with fake.connect(server.url) as conn, pytest.raises(ib.ConfigurationError, match="project"):
        sync(conn, tmp_path / "s.db", kinds=["project"])


def test_wrong_password_fails_loudly_and_is_recorded(platform: Platform, tmp_path: Path) -> None:
    server, _ = platform
    db = tmp_path / "s.db"
    with fake.connect(server.url, password="wrong") as conn, pytest.raises(ib.AuthenticationError):
        sync(conn, db)
    with Store(db) as store:
        (run,) = store.runs()
        assert run.status == "failed"
        assert "401" in (run.error or "")
        assert run.report is not None
        assert run.report["exit_code"] == 3
        assert "wrong" not in json.dumps(run.report)
        assert store.cursors() == {}


def test_a_failed_run_resumes_from_the_last_stored_page(platform: Platform, tmp_path: Path) -> None:
    server, _ = platform
    db = tmp_path / "s.db"

    def stop_after_two_pages(event: SyncProgress) -> None:
        if event.kind == "change" and event.pages == 2 and not event.done:
            raise RuntimeError("power cut")

    with fake.connect(server.url) as conn:
        failed = run_sync(conn, db, progress=stop_after_two_pages)
        assert failed.status == "failed"
        assert failed.exit_code == 1
        assert isinstance(failed.exception, RuntimeError)
        with Store(db) as store:
            assert store.count() == 118 + 98  # all incidents, two pages of changes
        resumed = sync(conn, db)
    assert resumed.kinds["incident"].records == 0
    assert resumed.kinds["change"].records == 20
    with Store(db) as store:
        assert store.count() == 236


def test_stale_copies_never_overwrite_newer_versions(platform: Platform, tmp_path: Path) -> None:
    server, app = platform
    db = tmp_path / "s.db"
    with fake.connect(server.url) as conn:
        sync(conn, db)
        app.touch(["inc000005"])
        sync(conn, db)
        old = conn.map_record(ib.Kind.INCIDENT, {**app.records["inc000006"], "sys_id": "inc000005"})
    with Store(db) as store:
        before = store.versions()["fake:inc000005"]
        counts = store.write_page("fake", ib.Kind.INCIDENT, [old])
        assert counts.unchanged == 1
        assert counts.updated == 0
        assert store.versions()["fake:inc000005"] == before


def test_transient_faults_are_retried_and_counted(tmp_path: Path) -> None:
    faults = FaultPlan(seed=3, p_429=0.2, burst_429=1, retry_after=0, p_5xx=0.1)
    server, _ = fake.serve(fake.make_records(200), faults=faults)
    retry = ib.RetryPolicy(initial_wait=0.001, max_wait=0.01, max_attempts=8)
    with server:
        conn = fake.connect(server.url)
        conn.transport.policy = retry
        with conn:
            result = sync(conn, tmp_path / "s.db")
    assert result.records == 400
    assert result.exit_code == 0
    assert result.retries == faults.injected.get("429", 0) + faults.injected.get("5xx", 0) > 0
    assert result.throttled >= faults.injected.get("429", 0) > 0


def test_run_report_is_logged_as_json(
    platform: Platform, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server, _ = platform
    caplog.set_level(logging.INFO, logger="itsm_bridge.sync")
    with fake.connect(server.url) as conn:
        sync(conn, tmp_path / "s.db")
    lines = [r.getMessage() for r in caplog.records if "sync report json" in r.getMessage()]
    assert len(lines) == 1
    payload = json.loads(lines[0].split(": ", 1)[1])
    assert payload["quarantined"] == 4
    assert payload["status"] == "ok"
    assert any(
        "quarantined fake incident record inc000000" in r.getMessage() for r in caplog.records
    )


def _running_row(db: Path, pid: int, started_at: str | None = None) -> int:
    """A run left 'running' by process ``pid`` (begun at ``started_at``, else now)."""
    with Store(db) as store:
        run_id = store.begin_run("fake", "fake")
        store._db.execute(
            "UPDATE runs SET pid = ?, started_at = coalesce(?, started_at) WHERE id = ?",
            (pid, started_at, run_id),
        )
    return run_id


def test_a_killed_run_is_marked_and_does_not_block(platform: Platform, tmp_path: Path) -> None:
    server, _ = platform
    db = tmp_path / "s.db"
    run_id = _running_row(db, 999999999)
    with Store(db) as store:  # shown as what it is before any sync of the source has run
        assert [(r.id, r.status) for r in store.runs()] == [(run_id, "killed")]
    with fake.connect(server.url) as conn:
        sync(conn, db)
    with Store(db) as store:
        statuses = {r.id: r.status for r in store.runs()}
        assert statuses[run_id] == "killed"


def test_a_second_live_sync_of_the_same_source_is_refused(
    platform: Platform, tmp_path: Path
) -> None:
    server, _ = platform
    db = tmp_path / "s.db"
    _running_row(db, 1)  # pid 1 is alive, and older than the run
    with fake.connect(server.url) as conn, pytest.raises(ib.StoreError, match="another sync"):
        sync(conn, db)
    with Store(db) as store:
        assert store.count() == 0


def test_a_second_sync_of_the_same_source_in_this_process_is_refused(
    platform: Platform, tmp_path: Path
) -> None:
    # Two threads of one process (a scheduler's pool) share a pid: the runs table alone would
    # take the first thread's run for one this process abandoned and mark it killed.
    server, _ = platform
    db = tmp_path / "s.db"
    paging, release = threading.Event(), threading.Event()
    outcome: list[ib.SyncResult] = []

    def hold(_: SyncProgress) -> None:
        paging.set()
        assert release.wait(30)

    def first() -> None:
        with fake.connect(server.url) as conn:
            outcome.append(sync(conn, db, progress=hold))

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert paging.wait(30)
        with (
            fake.connect(server.url) as conn,
            pytest.raises(ib.StoreError, match=r"another sync .* in this process"),
        ):
            sync(conn, db)
    finally:
        release.set()
        thread.join(30)
    assert outcome[0].status == "ok"
    with fake.connect(server.url) as conn:
        assert sync(conn, db).status == "ok"  # the finished run no longer blocks
    with Store(db) as store:
        assert [r.status for r in store.runs()] == ["ok", "ok"]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process start times from /proc")
def test_a_killed_runs_pid_reused_by_a_later_process_does_not_block(
    platform: Platform, tmp_path: Path
) -> None:
    # A sync was SIGKILLed long ago; its pid now belongs to an unrelated, younger process.
    server, _ = platform
    db = tmp_path / "s.db"
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as other:
        try:
            run_id = _running_row(db, other.pid, "2026-01-01T00:00:00.000000Z")
            with fake.connect(server.url) as conn:
                sync(conn, db)
        finally:
            other.kill()
    with Store(db) as store:
        assert {r.id: r.status for r in store.runs()}[run_id] == "killed"
        assert store.count() > 0


def test_unknown_codes_are_counted_in_the_run_report(tmp_path: Path) -> None:
    records = fake.make_records(10, kinds=("incident",))
    for record in records[:3]:
        record["priority"] = "9"
    server, _ = fake.serve(records)
    with server, fake.connect(server.url) as conn:
        result = sync(conn, tmp_path / "s.db")
    assert dict(result.unknown_codes) == {"incident.priority=9": 3}
    assert result.as_dict()["unknown_codes"] == {"incident.priority=9": 3}
    assert result.records == 10
    assert result.exit_code == 0


def test_only_the_first_quarantined_records_are_logged_one_by_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server, _ = fake.serve(fake.make_records(60, kinds=("incident",), bad=45))
    caplog.set_level(logging.WARNING, logger="itsm_bridge.sync")
    with server, fake.connect(server.url, page_size=30) as conn:
        result = sync(conn, tmp_path / "s.db")
    assert result.quarantined == 45
    messages = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("quarantined fake incident record") for m in messages) == 20
    assert "fake incident: 25 more records quarantined" in " ".join(messages)
