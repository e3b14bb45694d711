"""CLI fixtures: the fake connector registered as an installed plugin, fast retries."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

SYNC_TESTS = Path(__file__).resolve().parents[1] / "sync"
sys.path.insert(0, str(SYNC_TESTS))

import ib_fake_platform as fake  # noqa: E402

from itsm_bridge.http import transport as transport_module  # noqa: E402
from itsm_bridge.sandbox import SandboxServer  # noqa: E402


@pytest.fixture
def plugin(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Register connector ``fake`` through a dist-info on sys.path (found via entry points)."""
    where = fake.install_plugin(tmp_path_factory.mktemp("plugin"))
    monkeypatch.syspath_prepend(str(where))
    monkeypatch.setenv("FAKE_PASSWORD", fake.PASSWORD)
    return where


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry waits of milliseconds, so 'failing after retries' tests take no time."""
    quick = partial(
        transport_module.RetryPolicy, initial_wait=0.001, max_wait=0.005, max_attempts=3
    )
    monkeypatch.setattr(transport_module, "RetryPolicy", quick)


@pytest.fixture
def server(plugin: Path) -> Iterator[tuple[SandboxServer, fake.FakePlatform]]:
    srv, app = fake.serve(fake.make_records(60, bad=2))
    with srv:
        yield srv, app
