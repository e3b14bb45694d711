"""Fixtures for the core tests: injected time, so nothing here ever really waits."""

from __future__ import annotations

from collections.abc import Callable
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
