"""Process-level measurements taken inside the client process: RSS, CPU time, peak RSS.

psutil is used when installed (the bench venv has it); the fallback reads /proc and
``resource`` so the smoke test runs in the project's own environment without it.
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import time

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

try:
    import psutil

    _PROC: psutil.Process | None = psutil.Process()
except ImportError:  # pragma: no cover - depends on the environment
    _PROC = None


PIN_ENV = "ITSM_BENCH_PIN"  # "1": the runner asked for one core for the server, one for the client


def pin(role: str) -> str:
    """Put this process on a core of its own when the runner asked for it (``PIN_ENV``).

    The sandbox host stands in for a remote instance: pinned, it gets the lowest core and the
    client the highest, so on two cores they no longer take time from each other (the scheduler
    would otherwise move both about). Called first thing, before any thread starts, so every
    thread inherits the mask. Returns what was done, for the report.
    """
    if os.environ.get(PIN_ENV) != "1" or not hasattr(os, "sched_setaffinity"):
        return "no"
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return "no (one core)"
    cpu = cpus[0] if role == "server" else cpus[-1]
    os.sched_setaffinity(0, {cpu})
    return f"cpu {cpu}"


def rss_bytes() -> int:
    if _PROC is not None:
        return int(_PROC.memory_info().rss)
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * _PAGE


def peak_rss_bytes() -> int:
    """High-water mark of this process's RSS since it started (exact, kernel-kept)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def cpu_seconds() -> float:
    """User + system CPU of this process, every thread included."""
    t = os.times()
    return t.user + t.system


class RssSampler:
    """Samples RSS every ``interval`` seconds in a daemon thread (flatness of long syncs)."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.perf_counter()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter() - self._t0, rss_bytes()))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._t0 = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.perf_counter() - self._t0, rss_bytes()))
