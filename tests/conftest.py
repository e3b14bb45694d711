"""Shared fixtures for the core tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from itsm_bridge.http.governor import reset_governors

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _fresh_governors() -> Iterator[None]:
    """Each test gets its own per-host governors (hosts repeat across tests on loopback)."""
    reset_governors()
    yield
    reset_governors()
