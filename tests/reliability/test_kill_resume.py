"""Kill and resume with the real connectors: SIGKILL ``itsm-bridge pull`` at random moments.

tests/sync/test_kill_resume.py proves the engine against a small fake platform. This extends it
to the real ServiceNow and Jira connectors against their sandboxes, with transient faults in the
mix, over one long sync per platform (pages of 50). Each attempt is killed after it has stored a
random number of pages, then as the next page transaction opens, just after the next commit, or
after a random delay: kills land inside page transactions, between pages, inside the
connector's own passes (Jira's census and catch-up, ServiceNow's parallel ranges) and during
retries. The platform keeps changing between runs. The rerun after the last kill must finish
cleanly and leave every record updated before each kind's cursor watermark stored at its current
version (it completes the interrupted pull, whose windows closed before the latest changes);
after the next ordinary sync the store must equal a clean sync of the same platform: same ids,
same versions, nothing twice, the quarantine empty, ``PRAGMA integrity_check`` ok, every killed
run recorded as killed.

Seeded: the kill moments and the faults come from the test's seed (``ITSM_SOAK_SEED`` replays).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from reliability_kit import FIGURES, SCALE, as_served

import itsm_bridge as ib
from itsm_bridge import Kind
from itsm_bridge.sandbox import FaultPlan, TruthItem, generate_company, make_sandbox
from itsm_bridge.sandbox.platform import PlatformSandbox
from itsm_bridge.sync import Store

OPEN = "page transaction open"
COMMITTED = "page committed"
SECRET_ENV = "RELIABILITY_SECRET"
# Half the kills per platform in the reduced form (10 in all), 30 per platform in full.
KILLS = SCALE.kills if SCALE.name == "full" else SCALE.kills // 2


def items_for(platform: str, seed: int) -> list[TruthItem]:
    scale = {"servicenow": 0.3, "jira": 1.5}[platform]
    if SCALE.name == "full":
        scale *= 4
    return generate_company(seed, scale=scale).for_platform(platform)


def credentials(sandbox: PlatformSandbox) -> tuple[list[str], str]:
    """CLI auth flags and the secret to put in the environment."""
    auth = sandbox.auth()
    user = getattr(auth, "username", None)
    secret = getattr(auth, "_password", None)
    assert user, f"unexpected sandbox auth {auth!r}"
    assert secret, f"unexpected sandbox auth {auth!r}"
    return ["--user", user, "--password-env", SECRET_ENV], secret


def command(sandbox: PlatformSandbox, db: Path, auth_flags: list[str]) -> list[str]:
    options = {**sandbox.connect_options(), "page_size": 50, "lag_seconds": 1}
    flags = [f"--option={k}={json.dumps(v)}" for k, v in options.items()]
    return [
        sys.executable, "-m", "itsm_bridge", "pull", sandbox.connector, "--url", sandbox.url,
        *auth_flags, *flags, "--source", "killed", "--store", str(db), "--log-level", "DEBUG",
        "--no-progress",
    ]  # fmt: skip


def child_env(secret: str) -> dict[str, str]:
    env = dict(os.environ)
    env[SECRET_ENV] = secret
    env["_ITSM_BRIDGE_TEST_TXN_DELAY"] = "0.02"  # hold each page transaction open a moment
    env.pop("ITSM_BRIDGE_LOG_LEVEL", None)
    return env


def wait_for(log: Path, marker: str, count: int, proc: subprocess.Popen[bytes]) -> bool:
    """Wait until the run has logged ``marker`` ``count`` times; False if it ended first."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if log.read_text(errors="replace").count(marker) >= count:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.003)
    raise AssertionError(f"no progress in {log} within 60 s")


def moment_of(log: Path) -> str:
    """Where the kill landed, from the last lines the child logged."""
    lines = log.read_text(errors="replace").splitlines()
    markers = [x for x in lines if OPEN in x or COMMITTED in x]
    if not markers:
        return "before the first page"
    if OPEN in markers[-1]:
        return "inside a page transaction"
    tail = lines[-1] if lines else ""
    if "retrying" in tail:
        return "during a retry"
    return "between pages"


def kill_runs(
    sandbox: PlatformSandbox, db: Path, tmp: Path, rng: random.Random
) -> tuple[Counter[str], int]:
    auth_flags, secret = credentials(sandbox)
    env = child_env(secret)
    moments: Counter[str] = Counter()
    finished = 0
    numbers = [item.number for item in sandbox.visible_items()]
    for attempt in range(KILLS):
        log = tmp / f"{sandbox.connector}-{attempt}.log"
        with log.open("wb") as err:
            proc = subprocess.Popen(
                command(sandbox, db, auth_flags), env=env, stdout=subprocess.DEVNULL, stderr=err
            )
            try:
                running = wait_for(log, COMMITTED, rng.randint(1, 4), proc)
                style = attempt % 3
                if running and style < 2:
                    # aimed: as the next page transaction opens (it is held open 20 ms), or
                    # just after the next commit, while the next page is being fetched
                    marker = OPEN if style == 0 else COMMITTED
                    seen = log.read_text(errors="replace").count(marker)
                    running = wait_for(log, marker, seen + 1, proc)
                elif running:
                    time.sleep(rng.uniform(0.0, 0.12))  # anywhere: fetching, mapping, retrying
                    running = proc.poll() is None
                if running:
                    proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=60)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        if proc.returncode == -signal.SIGKILL:
            moments[moment_of(log)] += 1
        else:
            assert proc.returncode == 0, log.read_text()[-3000:]
            finished += 1
        # the platform keeps changing between runs, as it would overnight
        for number in rng.sample(numbers, 3):
            sandbox.touch(number)  # type: ignore[attr-defined]
    return moments, finished


def rerun(sandbox: PlatformSandbox, db: Path) -> None:
    auth_flags, secret = credentials(sandbox)
    done = subprocess.run(
        command(sandbox, db, auth_flags),
        env=child_env(secret),
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]


def check_cursor_guarantee(db: Path, sandbox: PlatformSandbox) -> None:
    """Every record updated before its kind's watermark is stored at its current version."""
    with Store(db) as store:
        stored = {item.key: item.updated_at for item in store.items()}
        watermarks = {
            Kind(kind): cursor.watermark
            for (_, kind), cursor in store.cursors().items()
            if cursor.watermark is not None
        }
    behind = [
        item.number
        for item in sandbox.visible_items()
        if (served := as_served(item.updated, sandbox.connector)) < watermarks[item.kind]
        and stored.get(item.number) != served
    ]
    assert not behind, f"{len(behind)} records before the watermark not current: {behind[:5]}"


def check_stores(killed: Path, clean: Path) -> None:
    with Store(killed) as a, Store(clean) as b:
        assert a.versions() == b.versions(), "the killed-and-resumed store differs from a clean one"
        assert a.count() == b.count() > 0
        assert a.quarantine_count() == b.quarantine_count() == 0
    raw = sqlite3.connect(killed)
    try:
        total, distinct = raw.execute("SELECT count(*), count(DISTINCT id) FROM items").fetchone()
        assert total == distinct
        keys = raw.execute("SELECT count(*), count(DISTINCT key) FROM items").fetchone()
        assert keys[0] == keys[1], "a record stored twice under two ids"
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        raw.close()


@pytest.mark.soak
@pytest.mark.seed(8201)
@pytest.mark.parametrize("platform", ["servicenow", "jira"])
def test_sigkill_at_random_moments_then_rerun_equals_a_clean_sync(
    platform: str, seed: int, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    plan = FaultPlan(seed=seed, latency=0.002, p_5xx=0.01, p_drop=0.01, p_truncate=0.01)
    db = tmp_path / "killed.db"
    items = items_for(platform, seed)
    with make_sandbox(platform, items, faults=plan, seed=seed) as sandbox:
        moments, finished = kill_runs(sandbox, db, tmp_path, rng)
        kills = sum(moments.values())
        # the rerun completes the interrupted pull: its windows closed before the last changes
        rerun(sandbox, db)
        check_cursor_guarantee(db, sandbox)
        # the next sync (tomorrow night) catches up with what changed since
        time.sleep(1.2)  # past the window lag, so this sync and the clean one see the same data
        rerun(sandbox, db)
        clean = tmp_path / "clean.db"
        options = {**sandbox.connect_options(), "page_size": 500, "source": "killed"}
        with ib.connect(platform, sandbox.url, auth=sandbox.auth(), **options) as conn:
            reference = ib.sync(conn, clean)
        assert reference.ok, reference.summary()
    print(platform, "kills:", dict(moments), "finished early:", finished, "faults:", plan.injected)
    FIGURES.add("kills_survived", kills)
    FIGURES.merge(f"kills.{platform}", dict(moments))
    FIGURES.add(f"kills.{platform}.records", len(items))
    assert kills >= KILLS - 1, (moments, finished)
    assert moments["inside a page transaction"] >= 1, moments
    assert moments["between pages"] >= 1, moments
    check_stores(db, clean)
    with Store(db) as store:
        statuses = Counter(run.status for run in store.runs(limit=1000))
    assert statuses["killed"] == kills, statuses
    assert statuses["ok"] == finished + 2, statuses
