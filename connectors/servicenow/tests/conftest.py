"""Shared fixtures for the ServiceNow connector tests: real payloads, sandboxes, connectors."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from itsm_bridge_servicenow import ServiceNowConnector
from itsm_bridge_servicenow.sandbox import ServiceNowSandbox, make_sandbox

import itsm_bridge as ib
from itsm_bridge import Kind, RateGovernor, RetryPolicy, Transport
from itsm_bridge.sandbox import FaultPlan, TruthItem, generate_items

REPO = Path(__file__).resolve().parents[3]
SHARED_DATA = REPO.parent / "shared" / "data"
REAL = SHARED_DATA / "servicenow-real-responses"
DEMO = SHARED_DATA / "servicenow-demo-incidents"

FAST_RETRY = RetryPolicy(max_attempts=8, initial_wait=0.01, max_wait=0.05, jitter=0.1)


def real_json(name: str) -> Any:
    path = REAL / name
    if not path.exists():
        pytest.skip(f"shared data not present: {path}")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def incidents_50k() -> list[TruthItem]:
    return generate_items(Kind.INCIDENT, 50_000, seed=11)


@pytest.fixture(scope="session")
def incidents_3k() -> list[TruthItem]:
    return generate_items(Kind.INCIDENT, 3_000, seed=5)


SandboxFactory = Callable[..., ServiceNowSandbox]


@pytest.fixture
def sandbox() -> Iterator[SandboxFactory]:
    """Start sandboxes for a test and stop them afterwards."""
    started: list[ServiceNowSandbox] = []

    def start(
        items: list[TruthItem], faults: FaultPlan | None = None, **options: Any
    ) -> ServiceNowSandbox:
        box = make_sandbox(items, faults=faults, **options)
        box.start()
        started.append(box)
        return box

    yield start
    for box in started:
        box.stop()


def connect(box: ServiceNowSandbox, *, auth: Any = None, **options: Any) -> ServiceNowConnector:
    """A connector for ``box`` whose transport retries in milliseconds (429 bursts stay fast)."""
    transport = Transport(
        box.url,
        auth=auth if auth is not None else box.auth(),
        connector="servicenow",
        retry=FAST_RETRY,
        # A loopback instance: 429 bursts still halve the pace, but not below 20 requests/s.
        governor=RateGovernor(max_concurrency=8, min_rate=20.0),
        allow_insecure_http=True,
        max_concurrency=8,
        seed=1,
    )
    conn = ib.connect("servicenow", box.url, transport=transport, **options)
    assert isinstance(conn, ServiceNowConnector)
    return conn


def pulled_ids(pages: Any) -> list[str]:
    return [item.id.split(":", 1)[1] for page in pages for item in page.items]
