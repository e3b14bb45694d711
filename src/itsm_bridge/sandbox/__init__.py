"""The sandbox kit: loopback servers, a seeded work generator and fault injection.

Used by every connector's fake platform, by tests, the demo and the benchmarks.
"""

from __future__ import annotations

from itsm_bridge.sandbox.faults import Fault, FaultPlan
from itsm_bridge.sandbox.generator import generate_company, generate_items
from itsm_bridge.sandbox.model import Company, TruthItem
from itsm_bridge.sandbox.platform import (
    PlatformSandbox,
    SandboxFactory,
    available_sandboxes,
    make_sandbox,
)
from itsm_bridge.sandbox.server import (
    App,
    SandboxRequest,
    SandboxResponse,
    SandboxServer,
    json_response,
)

__all__ = [
    "App",
    "Company",
    "Fault",
    "FaultPlan",
    "PlatformSandbox",
    "SandboxFactory",
    "SandboxRequest",
    "SandboxResponse",
    "SandboxServer",
    "TruthItem",
    "available_sandboxes",
    "generate_company",
    "generate_items",
    "json_response",
    "make_sandbox",
]
