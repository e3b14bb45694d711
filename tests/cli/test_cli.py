"""The command line: exit codes, secrets, atomic output, config-driven syncs, --help."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import ib_fake_platform as fake
import pytest

from itsm_bridge import cli
from itsm_bridge.sandbox import FaultPlan, SandboxServer
from itsm_bridge.sync import Store

Server = tuple[SandboxServer, fake.FakePlatform]


def pull_args(url: str, *extra: str) -> list[str]:
    return [
        "pull",
        "fake",
        "--url",
        url,
        "--user",
        fake.USER,
        "--password-env",
        "FAKE_PASSWORD",
        "--source",
        "fake",
        "--option",
        "page_size=25",
        *extra,
    ]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_pull_into_a_store_quarantines_bad_records_and_exits_5(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    srv, _ = server
    db = tmp_path / "itsm.db"
    code = cli.main([*pull_args(srv.url, "--store", str(db)), "--json"])
    captured = capsys.readouterr()
    assert code == 5
    report = json.loads(captured.out)
    assert report["quarantined"] == 4
    assert report["records"] == 116
    assert report["status"] == "ok"
    assert report["kinds"]["incident"]["quarantined"] == 2
    assert "4 quarantined" in captured.err
    assert "itsm-bridge quarantine --store" in captured.err
    with Store(db) as store:
        assert store.count() == 116
        assert store.quarantine_count() == 4
    code = cli.main(["quarantine", "--store", str(db), "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {r["native_id"] for r in rows} == {"inc000000", "inc000001", "cha000000", "cha000001"}
    assert rows[0]["raw"]["state"] == "99"


def test_a_clean_pull_exits_0(
    plugin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    srv, _ = fake.serve(fake.make_records(30))
    with srv:
        code = cli.main(pull_args(srv.url, "--store", str(tmp_path / "s.db")))
    assert code == 0
    assert "60 records (60 new" in capsys.readouterr().err


def test_full_rereads_into_the_store_and_needs_one(
    plugin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    srv, _ = fake.serve(fake.make_records(30))
    db = str(tmp_path / "s.db")
    with srv:
        assert cli.main(pull_args(srv.url, "--store", db)) == 0
        assert cli.main([*pull_args(srv.url, "--store", db, "--full"), "--json"]) == 0
        again = json.loads(capsys.readouterr().out)
        assert (again["records"], again["new"], again["unchanged"]) == (60, 0, 60)
        assert cli.main(pull_args(srv.url, "--out", str(tmp_path / "x.jsonl"), "--full")) == 2
    assert "--full re-reads into a store" in capsys.readouterr().err


def test_wrong_password_exits_3_without_leaking_it(
    server: Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    srv, _ = server
    monkeypatch.setenv("FAKE_PASSWORD", "Wr0ng-Secret-Value")
    code = cli.main([*pull_args(srv.url, "--store", str(tmp_path / "s.db")), "--json"])
    captured = capsys.readouterr()
    assert code == 3
    assert "401" in captured.err
    assert json.loads(captured.out)["exit_code"] == 3
    assert "Wr0ng-Secret-Value" not in captured.out + captured.err


def test_an_unreachable_host_exits_4(
    plugin: Path, fast_retries: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    code = cli.main(pull_args(url, "--store", str(tmp_path / "s.db")))
    assert code == 4
    assert "ConnectionError" in capsys.readouterr().err


def test_a_hibernating_instance_exits_5(
    plugin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    srv, _ = fake.serve(fake.make_records(10), faults=FaultPlan(hibernating=True))
    with srv:
        code = cli.main(pull_args(srv.url, "--out", str(tmp_path / "out.jsonl")))
    err = capsys.readouterr().err
    assert code == 5
    assert "hibernating" in err
    assert not (tmp_path / "out.jsonl").exists()


def test_pull_to_a_file_is_atomic_and_keeps_rejects_beside_it(
    server: Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    srv, _ = server
    out = tmp_path / "work.jsonl"
    assert cli.main(pull_args(srv.url, "--out", str(out))) == 5
    lines = out.read_text().splitlines()
    assert len(lines) == 116
    assert json.loads(lines[0])["id"].startswith("fake:")
    rejects = [json.loads(x) for x in Path(f"{out}.quarantine.jsonl").read_text().splitlines()]
    assert {r["native_id"] for r in rejects} == {"inc000000", "inc000001", "cha000000", "cha000001"}
    assert "unknown state code" in rejects[0]["reason"]
    before = out.read_text()
    monkeypatch.setenv("FAKE_PASSWORD", "wrong")
    assert cli.main(pull_args(srv.url, "--out", str(out))) == 3
    assert out.read_text() == before  # the failed run left the target untouched
    assert Path(f"{out}.quarantine.jsonl").exists()
    monkeypatch.setenv("FAKE_PASSWORD", fake.PASSWORD)
    assert (
        cli.main(
            pull_args(
                srv.url, "--out", str(out), "--kind", "change", "--since", "2026-01-01T00:00:05Z"
            )
        )
        == 0
    )
    assert len(out.read_text().splitlines()) == 60 - 15
    assert not Path(f"{out}.quarantine.jsonl").exists()  # no stale rejects beside a clean pull


def test_a_missing_secret_variable_is_a_configuration_error(
    server: Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    srv, _ = server
    monkeypatch.delenv("FAKE_PASSWORD")
    assert cli.main(pull_args(srv.url, "--store", str(tmp_path / "s.db"))) == 2
    assert "FAKE_PASSWORD, which is not set" in capsys.readouterr().err


def test_secrets_are_never_flag_values(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    srv, _ = server
    argv = ["pull", "fake", "--url", srv.url, "--user", "u", "--password", "hunter2!x"]
    assert cli.main([*argv, "--store", str(tmp_path / "s.db")]) == 2
    argv = ["pull", "fake", "--url", srv.url, "--user", "u", "--password-env", "hunter2!x"]
    assert cli.main([*argv, "--store", str(tmp_path / "s.db")]) == 2
    err = capsys.readouterr().err
    assert "NAME of an environment variable" in err
    assert "hunter2!x" not in err


def test_usage_errors_and_unknown_connectors_exit_2(
    plugin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["pull"]) == 2
    assert cli.main(["frobnicate"]) == 2
    assert cli.main(["pull", "nope", "--url", "https://x.example", "--out", "x.jsonl"]) == 2
    assert "no connector named 'nope'" in capsys.readouterr().err
    assert cli.main(["pull", "fake", "--url", "https://x.example"]) == 2


def test_an_unwritable_store_exits_6(server: Server, tmp_path: Path) -> None:
    srv, _ = server
    (tmp_path / "blocker").write_text("a file, not a directory")
    assert cli.main(pull_args(srv.url, "--store", str(tmp_path / "blocker" / "s.db"))) == 6


def test_every_command_has_help_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"connectors", "pull", "score", "report", "evaluate", "demo", "schema", "train"} <= set(
        commands
    )
    assert {"sync", "export"} <= set(commands)
    for name in commands:
        assert cli.main([name, "--help"]) == 0
        text = capsys.readouterr().out
        assert "examples:" in text, name
        assert "exit codes:" in text, name
        assert f"itsm-bridge {name}" in text, name


def test_connectors_lists_the_plugin(plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["connectors", "--json"]) == 0
    names = [c["name"] for c in json.loads(capsys.readouterr().out)["connectors"]]
    assert "fake" in names


def test_log_level_comes_from_the_environment(
    server: Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    srv, _ = server
    monkeypatch.setenv("ITSM_BRIDGE_LOG_LEVEL", "INFO")
    cli.main(pull_args(srv.url, "--store", str(tmp_path / "s.db")))
    err = capsys.readouterr().err
    assert "INFO itsm_bridge.sync: sync report json:" in err
    assert fake.PASSWORD not in err
    cli.main([*pull_args(srv.url, "--store", str(tmp_path / "s.db")), "--log-level", "ERROR"])
    assert "INFO" not in capsys.readouterr().err


def write_config(path: Path, *sources: tuple[str, str], extra: str = "") -> Path:
    blocks = [f'store = "synced.db"\n{extra}']
    for name, url in sources:
        blocks.append(
            f"""
[[source]]
name = "{name}"
connector = "fake"
url = "{url}"
user = "{fake.USER}"
password_env = "FAKE_PASSWORD"
[source.options]
page_size = 20
"""
        )
    path.write_text("\n".join(blocks))
    return path


def test_sync_config_runs_every_source_into_one_store(
    plugin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one, _ = fake.serve(fake.make_records(40))
    two, _ = fake.serve(fake.make_records(25, bad=1))
    with one, two:
        config = write_config(tmp_path / "itsm.toml", ("alpha", one.url), ("beta", two.url))
        code = cli.main(["sync", "--config", str(config), "--json", "--census"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 5  # beta met bad data
    runs = {r["source"]: r for r in payload["runs"]}
    assert runs["alpha"]["records"] == 80
    assert runs["alpha"]["exit_code"] == 0
    assert runs["beta"]["quarantined"] == 2
    assert runs["beta"]["deleted"] == 0
    assert payload["store"] == str(tmp_path / "synced.db")  # relative to the config file
    with Store(tmp_path / "synced.db") as store:
        assert store.sources() == ["alpha", "beta"]
        assert store.count(sources=["beta"]) == 48


def test_sync_config_one_failing_source_does_not_stop_the_others(
    plugin: Path, fast_retries: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, _ = fake.serve(fake.make_records(10))
    with good:
        dead = f"http://127.0.0.1:{closed_port()}"
        config = write_config(tmp_path / "itsm.toml", ("dead", dead), ("good", good.url))
        code = cli.main(["sync", "--config", str(config), "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 4
    runs = {r["source"]: r for r in payload["runs"]}
    assert runs["good"]["records"] == 20
    assert runs["dead"]["status"] == "failed"
    assert runs["dead"]["error_type"] == "SourceConnectionError"


def test_sync_config_exits_with_the_first_failed_sources_code_in_config_order() -> None:
    from datetime import UTC, datetime

    import itsm_bridge as ib
    from itsm_bridge.sync import SyncResult
    from itsm_bridge.sync.result import KindReport

    def run(name: str, error: Exception | None = None, quarantined: int = 0) -> SyncResult:
        result = SyncResult(name, "fake", 1, datetime.now(UTC))
        result.status = "ok"
        if error is not None:
            result.fail(error)
        if quarantined:
            result.kinds["incident"] = KindReport("incident", quarantined=1)
        return result

    html = ib.ResponseFormatError("expected JSON but got text/html")
    refused = ib.AuthenticationError("authentication failed (401)")
    # A failed run with code 5 (an HTML page) is a failure like any other: first in order wins.
    assert cli._combined_exit([run("a", html), run("b", refused), run("c")]) == 5
    assert cli._combined_exit([run("a", quarantined=1), run("b", refused)]) == 3
    assert cli._combined_exit([run("a", quarantined=1), run("b")]) == 5
    assert cli._combined_exit([run("a"), run("b")]) == 0


def test_sync_config_refuses_literal_secrets_and_unknown_keys(
    plugin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "itsm.toml"
    config.write_text(
        '[[source]]\nname = "a"\nconnector = "fake"\nurl = "http://127.0.0.1:1"\n'
        'user = "u"\npassword = "Sup3rS3cret"\n'
    )
    assert cli.main(["sync", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "secrets never go in the config file (password)" in err
    assert "Sup3rS3cret" not in err
    config.write_text('[[source]]\nname = "a"\nconnector = "fake"\nurl = "x"\ncolour = 1\n')
    assert cli.main(["sync", "--config", str(config)]) == 2
    assert "source a.colour" in capsys.readouterr().err
    assert cli.main(["sync", "--config", str(tmp_path / "missing.toml")]) == 2


def _pulled_into_a_store(url: str, tmp_path: Path) -> str:
    db = str(tmp_path / "s.db")
    cli.main(pull_args(url, "--store", db))
    return db


def test_export_and_runs_commands(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    srv, _ = server
    db = _pulled_into_a_store(srv.url, tmp_path)
    out = tmp_path / "x.csv"
    assert (
        cli.main(
            ["export", "--store", db, "--format", "csv", "--kind", "change", "--out", str(out)]
        )
        == 0
    )
    assert len(out.read_text().splitlines()) == 1 + 58
    capsys.readouterr()
    assert cli.main(["runs", "--store", db, "--json"]) == 0
    (run,) = json.loads(capsys.readouterr().out)
    assert run["status"] == "ok"
    assert run["report"]["quarantined"] == 4


def test_python_dash_m_is_the_same_command(plugin: Path, tmp_path: Path) -> None:
    env_path = f"{plugin}:{Path(fake.__file__).parent}"
    done = subprocess.run(
        [sys.executable, "-m", "itsm_bridge", "connectors"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "fake" in done.stdout.split()


def test_main_leaves_logging_as_it_found_it(plugin: Path) -> None:
    import logging

    logger = logging.getLogger("itsm_bridge")
    before = (logger.level, list(logger.handlers), logger.propagate)
    assert cli.main(["connectors", "--log-level", "DEBUG"]) == 0
    assert cli.main(["pull", "nope", "--url", "https://x.example", "--out", "x.jsonl"]) == 2
    assert (logger.level, list(logger.handlers), logger.propagate) == before


def test_main_inside_a_program_with_root_logging_writes_each_line_once(
    plugin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging

    seen: list[str] = []

    class Host(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    host = Host()
    logging.getLogger().addHandler(host)
    try:
        srv, _ = fake.serve(fake.make_records(5))
        with srv:
            args = pull_args(srv.url, "--store", str(tmp_path / "s.db"), "--log-level", "INFO")
            assert cli.main(args) == 0
    finally:
        logging.getLogger().removeHandler(host)
    assert "sync report json" in capsys.readouterr().err  # on stderr, as the CLI promises
    assert not [m for m in seen if "sync report" in m]  # and not a second time via the host


def _cli_process(plugin: Path, args: list[str]) -> subprocess.Popen[str]:
    """``python -m itsm_bridge ARGS`` in a process of its own, with the fake connector installed."""
    env = {
        "PYTHONPATH": f"{plugin}:{Path(fake.__file__).parent}",
        "PATH": "/usr/bin:/bin",
        "FAKE_PASSWORD": fake.PASSWORD,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "itsm_bridge", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigterm_mid_pull_leaves_the_target_untouched_and_exits_143(
    plugin: Path, tmp_path: Path
) -> None:
    """What a scheduler's timeout or ``docker stop`` sends: the partial file goes, as on Ctrl-C."""
    import os
    import signal
    import time

    srv, _ = fake.serve(fake.make_records(400), faults=FaultPlan(latency=0.1))
    target = tmp_path / "out.jsonl"
    target.write_text("previous\n")
    with srv:
        proc = _cli_process(plugin, pull_args(srv.url, "--out", str(target), "--no-progress"))
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".out.jsonl.*.part")) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.02)
        time.sleep(0.3)  # some pages written to the temporary file
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "terminated" in err
    assert target.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_sigterm_mid_sync_config_ends_every_source_promptly(plugin: Path, tmp_path: Path) -> None:
    """Every source syncs in a worker thread: SIGTERM must end them all after the page each is
    storing (runs 'interrupted', exit 143), not once every source has finished."""
    import os
    import signal
    import time

    one, app_one = fake.serve(fake.make_records(600), faults=FaultPlan(latency=0.05))
    two, app_two = fake.serve(fake.make_records(600), faults=FaultPlan(latency=0.05))
    with one, two:
        config = write_config(tmp_path / "itsm.toml", ("alpha", one.url), ("beta", two.url))
        proc = _cli_process(plugin, ["sync", "--config", str(config), "--no-progress"])
        deadline = time.monotonic() + 60
        while app_one.pages_served + app_two.pages_served < 6 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        served = app_one.pages_served + app_two.pages_served
    assert proc.returncode == 143, err
    assert served < 2 * 2 * 600 // 20 // 2  # far from every page of both sources
    with Store(tmp_path / "synced.db") as store:
        assert {r.source: r.status for r in store.runs()} == {
            "alpha": "interrupted",
            "beta": "interrupted",
        }


def test_an_output_file_keeps_its_mode_and_a_new_one_gets_the_umask(
    server: Server, tmp_path: Path
) -> None:
    """mkstemp would make every export 0600: a loader running as another user could not read
    it."""
    import os
    import stat

    srv, _ = server
    kept = tmp_path / "kept.jsonl"
    kept.write_text("")
    kept.chmod(0o640)
    assert cli.main(pull_args(srv.url, "--out", str(kept))) == 5  # 2 records quarantined
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640
    previous = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh.jsonl"
        assert cli.main(pull_args(srv.url, "--out", str(fresh))) == 5
    finally:
        os.umask(previous)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o644


def test_read_only_commands_refuse_a_store_that_is_not_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped --store would otherwise be created empty and reported on, exit 0."""
    typo = str(tmp_path / "itsm.bd")
    for args in (
        ["report", "--store", typo],
        ["export", "--store", typo, "--out", str(tmp_path / "x.jsonl")],
        ["runs", "--store", typo],
        ["quarantine", "--store", typo],
        ["score", "--store", typo],
    ):
        assert cli.main([*args, "--json"]) == 6, args
        assert "no store at" in json.loads(capsys.readouterr().out)["error"]
    assert list(tmp_path.iterdir()) == []


def test_json_stdout_is_always_one_document(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    srv, _ = server
    db = _pulled_into_a_store(srv.url, tmp_path)
    capsys.readouterr()
    # --out - and --json both want stdout: refused before any work
    assert cli.main([*pull_args(srv.url, "--out", "-"), "--json"]) == 2
    assert "use one of them" in json.loads(capsys.readouterr().out)["error"]
    # a CSV or HTML report cannot be the JSON document; with --out the document says where
    assert cli.main(["report", "--store", db, "--format", "csv", "--json"]) == 2
    assert "needs --out" in json.loads(capsys.readouterr().out)["error"]
    out = tmp_path / "r.html"
    assert cli.main(["report", "--store", db, "--format", "html", "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"out": str(out), "format": "html"}
    # a usage error under --json: the message on stderr, a JSON document on stdout
    assert cli.main(["pull", "fake", "--bogus", "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["exit_code"] == 2
    assert "required: --url" in captured.err


def test_report_keeps_given_verdicts_when_some_lines_are_plain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One plain line among scored ones is scored; the others keep the verdict they carry."""
    verdict = {"label": "business-facing", "p_business": 0.99, "reasons": []}
    lines = [
        {"title": "Restore the VPN after the outage", "kind": "incident", "scoring": verdict},
        {"title": "Restore the mail relay", "kind": "incident", "scoring": verdict},
        {"title": "Patch the CRM servers", "kind": "change"},
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert cli.main(["report", str(path), "--by", "kind", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    incident = next(g for g in report["breakdowns"]["kind"] if g["value"] == "incident")
    assert incident["shares"]["business-facing"]["count"] == 2  # as given, not re-scored
    change = next(g for g in report["breakdowns"]["kind"] if g["value"] == "change")
    assert change["shares"]["inward-facing"]["count"] == 1  # the plain line, scored
