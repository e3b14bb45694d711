"""Test helpers for connector packages: the conformance kit and injected time.

A connector package runs the kit on itself by subclassing :class:`ConnectorConformance` in its
tests (see ``docs/write-a-connector.md``).
"""

from __future__ import annotations

from itsm_bridge.testing._clock import FakeTime

__all__ = ["FakeTime"]
