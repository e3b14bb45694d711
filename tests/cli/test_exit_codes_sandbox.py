"""Exit codes of ``itsm-bridge pull`` through the real ServiceNow connector and its sandbox."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from itsm_bridge import cli
from itsm_bridge.sandbox import FaultPlan, generate_items, make_sandbox
from itsm_bridge.schema import Kind
from itsm_bridge.sync import Store

ITEMS = generate_items(Kind.INCIDENT, 30, seed=1)


@pytest.fixture
def snow(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    sandbox = make_sandbox("servicenow", ITEMS)
    with sandbox:
        monkeypatch.setenv("SNOW_PASSWORD", sandbox.auth()._password)
        yield sandbox


def pull(url: str, user: str, *extra: str) -> list[str]:
    return [
        "pull",
        "servicenow",
        "--url",
        url,
        "--user",
        user,
        "--password-env",
        "SNOW_PASSWORD",
        "--source",
        "snow",
        "--kind",
        "incident",
        "--option",
        "allow_insecure_http=true",
        *extra,
    ]


def test_bad_data_is_quarantined_the_sync_goes_on_and_exits_5(
    snow: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = snow.instance.table("incident")
    sys_id = next(iter(table.rows))
    table.put({**table.rows[sys_id], "number": ""})  # a record the mapper cannot handle
    db = tmp_path / "s.db"
    code = cli.main([*pull(snow.url, snow.auth().username, "--store", str(db)), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 5
    assert report["quarantined"] == 1
    assert report["kinds"]["incident"]["quarantined"] == 1
    assert report["records"] == 29
    with Store(db) as store:
        assert store.count() == 29
        (record,) = store.quarantined()
        assert record.native_id == sys_id
        assert record.reason == "record has no number"
        assert record.raw["sys_id"]["value"] == sys_id  # the raw payload, as the API sent it


def test_wrong_password_exits_3(
    snow: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SNOW_PASSWORD", "not-the-password")
    code = cli.main(pull(snow.url, snow.auth().username, "--store", str(tmp_path / "s.db")))
    err = capsys.readouterr().err
    assert code == 3
    assert "401" in err
    assert "not-the-password" not in err


def test_a_hibernating_instance_exits_5(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = make_sandbox("servicenow", ITEMS, faults=FaultPlan(hibernating=True))
    with sandbox:
        monkeypatch.setenv("SNOW_PASSWORD", sandbox.auth()._password)
        out = tmp_path / "work.jsonl"
        code = cli.main(pull(sandbox.url, sandbox.auth().username, "--out", str(out)))
    assert code == 5
    assert "hibernating" in capsys.readouterr().err
    assert not out.exists()


def test_an_unreachable_host_exits_4(
    fast_retries: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SNOW_PASSWORD", "whatever")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    assert cli.main(pull(url, "admin", "--store", str(tmp_path / "s.db"))) == 4
