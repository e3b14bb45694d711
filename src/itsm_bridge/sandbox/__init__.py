"""The sandbox kit: loopback servers, a seeded work generator and fault injection.

Used by every connector's fake platform, by tests, the demo and the benchmarks. See
``docs/sandbox.md``. The pytest fixtures live in :mod:`itsm_bridge.sandbox.fixtures` (import them
into a ``conftest.py``); that module needs pytest, the rest of the kit does not.
"""

from __future__ import annotations

from itsm_bridge.sandbox.faults import Fault, FaultKind, FaultPlan
from itsm_bridge.sandbox.generator import END, generate_company, generate_items, iter_items
from itsm_bridge.sandbox.model import Company, TruthItem, counted_effort, item_effort
from itsm_bridge.sandbox.platform import (
    PlatformSandbox,
    SandboxFactory,
    ServedSandbox,
    available_sandboxes,
    credentials_of,
    make_sandbox,
)
from itsm_bridge.sandbox.records import ChurnEvent, MutableStore, acl_hidden
from itsm_bridge.sandbox.server import (
    HIBERNATION_PAGE,
    App,
    SandboxRequest,
    SandboxResponse,
    SandboxServer,
    json_response,
    retry_after_value,
)

__all__ = [
    "END",
    "HIBERNATION_PAGE",
    "App",
    "ChurnEvent",
    "Company",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "MutableStore",
    "PlatformSandbox",
    "SandboxFactory",
    "SandboxRequest",
    "SandboxResponse",
    "SandboxServer",
    "ServedSandbox",
    "TruthItem",
    "acl_hidden",
    "available_sandboxes",
    "counted_effort",
    "credentials_of",
    "generate_company",
    "generate_items",
    "item_effort",
    "iter_items",
    "json_response",
    "make_sandbox",
    "retry_after_value",
]
