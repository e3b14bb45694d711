"""pytest fixtures for tests that need a loopback server; import them into a ``conftest.py``::

    from itsm_bridge.sandbox.fixtures import sandbox_server  # noqa: F401

``sandbox_server`` is a factory, so one test can start several servers (two hosts, one with
faults); every server it started is stopped when the test ends, even when the test fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from itsm_bridge.sandbox.faults import FaultPlan
from itsm_bridge.sandbox.server import App, SandboxServer

__all__ = ["StartServer", "sandbox_server"]

StartServer = Callable[..., SandboxServer]


@pytest.fixture
def sandbox_server() -> Iterator[StartServer]:
    """``start(app, faults=None, **options) -> SandboxServer``, already serving."""
    started: list[SandboxServer] = []

    def start(app: App, faults: FaultPlan | None = None, **options: Any) -> SandboxServer:
        server = SandboxServer(app, faults=faults, **options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
