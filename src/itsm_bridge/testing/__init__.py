"""Test helpers for connector packages: the conformance kit and injected time.

A connector package runs the kit on itself by subclassing :class:`ConnectorConformance` in its
tests (see ``docs/write-a-connector.md``); the ``check_*`` functions are the same checks for
cases of its own. :class:`FakeTime` lets retry, rate-limit and token-expiry tests run without
waiting. This subpackage needs pytest (the ``dev`` extra); the rest of the library does not.
"""

from __future__ import annotations

from itsm_bridge.testing._checks import (
    PullRun,
    RecordedFixture,
    check_bad_record_rejected,
    check_endpoints,
    check_incremental,
    check_mapper_purity,
    check_recorded_fixture,
    check_reprs_hide_secrets,
    check_resume,
    check_round_trip,
    check_since_bound,
    check_times_match_truth,
    no_network,
    plant_since_boundary,
    run_pull,
    secrets_of,
)
from itsm_bridge.testing._clock import FakeTime
from itsm_bridge.testing.conformance import ConformanceWorld, ConnectorConformance

__all__ = [
    "ConformanceWorld",
    "ConnectorConformance",
    "FakeTime",
    "PullRun",
    "RecordedFixture",
    "check_bad_record_rejected",
    "check_endpoints",
    "check_incremental",
    "check_mapper_purity",
    "check_recorded_fixture",
    "check_reprs_hide_secrets",
    "check_resume",
    "check_round_trip",
    "check_since_bound",
    "check_times_match_truth",
    "no_network",
    "plant_since_boundary",
    "run_pull",
    "secrets_of",
]
