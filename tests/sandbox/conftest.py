"""Shared fixtures for the sandbox kit's tests."""

from __future__ import annotations

import pytest

from itsm_bridge.sandbox.generator import generate_company
from itsm_bridge.sandbox.model import Company


@pytest.fixture(scope="session")
def company() -> Company:
    """The demo company (seed 7, twelve months, scale 1.0), built once per session."""
    return generate_company(7)


from itsm_bridge.sandbox.fixtures import sandbox_server  # noqa: E402, F401
