"""Fixtures for the core tests: injected time, so nothing here ever really waits."""

from __future__ import annotations

import importlib
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from itsm_bridge.http import RetryPolicy, Transport
from itsm_bridge.testing import FakeTime

BASE = "https://acme.example.test"


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


TransportFactory = Callable[..., Transport]


@pytest.fixture
def make_transport(fake_time: FakeTime) -> TransportFactory:
    """A Transport on injected time, with deterministic backoff (no jitter) unless overridden."""

    def build(base_url: str = BASE, **kwargs: Any) -> Transport:
        kwargs.setdefault("retry", RetryPolicy(jitter=0.0))
        kwargs.setdefault("sleep", fake_time.sleep)
        kwargs.setdefault("clock", fake_time.monotonic)
        kwargs.setdefault("wall_clock", fake_time.time)
        kwargs.setdefault("connector", "acme")
        return Transport(base_url, **kwargs)

    return build


PLUGIN_SOURCE = Path(__file__).parent / "plugin"
PLUGIN_METADATA = """\
Metadata-Version: 2.1
Name: itsm-bridge-acme
Version: 0.1.0
Summary: A test-only itsm-bridge connector for the fictional Acme Tracker
Requires-Dist: itsm-bridge
"""
PLUGIN_ENTRY_POINTS = """\
[itsm_bridge.connectors]
acme = itsm_bridge_acme:AcmeConnector

[itsm_bridge.sandboxes]
acme = itsm_bridge_acme.sandbox:make_sandbox
"""


def install_plugin(
    target: Path, *, metadata: str = PLUGIN_METADATA, entry_points: str = PLUGIN_ENTRY_POINTS
) -> None:
    """Lay the test-only package out as pip would: the package and its ``*.dist-info``."""
    shutil.copytree(PLUGIN_SOURCE / "itsm_bridge_acme", target / "itsm_bridge_acme")
    dist_info = target / "itsm_bridge_acme-0.1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(metadata)
    (dist_info / "entry_points.txt").write_text(entry_points)
    (dist_info / "top_level.txt").write_text("itsm_bridge_acme\n")


@pytest.fixture(scope="module")
def acme_plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The ``acme`` connector installed on ``sys.path`` for one test module, then removed."""
    target = tmp_path_factory.mktemp("site-packages")
    install_plugin(target)
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(target))
        importlib.invalidate_caches()
        yield target
    for name in [m for m in sys.modules if m.split(".")[0] == "itsm_bridge_acme"]:
        del sys.modules[name]
    importlib.invalidate_caches()
