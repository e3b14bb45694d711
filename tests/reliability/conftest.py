"""Fixtures of the reliability suite: seeds that are printed on failure, scale, figures.

``@pytest.mark.seed(N)`` gives a test its default seed; the ``seed`` fixture returns it (or
``ITSM_SOAK_SEED`` when replaying), and a failing test's report carries a "replay" section with
the command that reruns it with the same seed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reliability_kit import FIGURES, SCALE, Scale, seed_for

_SEED_KEY = pytest.StashKey[int]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "seed(n): the default seed of a seeded reliability test")


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    marker = request.node.get_closest_marker("seed")
    value = seed_for(int(marker.args[0]) if marker else 1)
    request.node.stash[_SEED_KEY] = value
    return value


@pytest.fixture
def scale() -> Scale:
    return SCALE


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[Any]:
    outcome = yield
    report = outcome.get_result()
    value = item.stash.get(_SEED_KEY, None)
    if report.failed and value is not None:
        report.sections.append(
            (
                "replay",
                f"seed={value} scale={SCALE.name}: replay with\n"
                f"  ITSM_SOAK_SEED={value} ITSM_SOAK={'full' if SCALE.name == 'full' else ''} "
                f"{sys.executable} -m pytest '{item.nodeid}'",
            )
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get("ITSM_SOAK_FIGURES")
    if target and FIGURES.values:
        FIGURES.write(target)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES.values:
        terminalreporter.section(f"reliability figures ({SCALE.name})")
        for name, value in sorted(FIGURES.values.items()):
            terminalreporter.write_line(f"{name}: {value}")
