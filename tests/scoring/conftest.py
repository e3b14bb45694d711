"""Shared helpers for the scoring tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from itsm_bridge.schema import Kind, Status, WorkItem

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"


def make_item(title: str, kind: str = "task", *, key: str | None = None, **fields: Any) -> WorkItem:
    """A WorkItem with only what a test cares about; everything else neutral."""
    number = key or f"T-{abs(hash((title, kind))) % 10**8}"
    data: dict[str, Any] = {
        "id": f"test:{number}",
        "source": "test",
        "kind": Kind(kind),
        "key": number,
        "title": title,
        "status": Status.NEW,
        "updated_at": datetime(2026, 3, 1, tzinfo=UTC),
    }
    data.update(fields)
    return WorkItem(**data)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
