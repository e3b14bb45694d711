"""The runner gives the sandbox host and the client a core each, only when asked to."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_PROBE = (
    "import os, sys; sys.path.insert(0, {repo!r}); from bench import measure; "
    "print(measure.pin({role!r}), sorted(os.sched_getaffinity(0)))"
)


def _pin_in_child(role: str, flag: str) -> str:
    env = {**os.environ, "ITSM_BENCH_PIN": flag}
    code = _PROBE.format(repo=str(REPO), role=role)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs sched_setaffinity and two usable cores",
)
def test_server_takes_the_first_core_and_the_client_the_last() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    assert _pin_in_child("server", "1") == f"cpu {cpus[0]} [{cpus[0]}]"
    assert _pin_in_child("client", "1") == f"cpu {cpus[-1]} [{cpus[-1]}]"


def test_nothing_is_pinned_unless_the_runner_asked() -> None:
    assert _pin_in_child("client", "0").startswith("no ")
