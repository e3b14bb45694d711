"""Fixtures for the sync tests: a fake platform on loopback and its connector."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ib_fake_platform as fake

from itsm_bridge.sandbox import SandboxServer


@pytest.fixture
def platform() -> Iterator[tuple[SandboxServer, fake.FakePlatform]]:
    server, app = fake.serve(fake.make_records(120, bad=2))
    with server:
        yield server, app
