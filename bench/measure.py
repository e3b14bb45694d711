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
