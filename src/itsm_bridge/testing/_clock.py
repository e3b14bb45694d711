"""Injected time for tests: retries, governors and token expiry without real waiting."""

from __future__ import annotations

import threading

__all__ = ["FakeTime"]


class FakeTime:
    """A monotonic clock, a wall clock and a ``sleep`` that advances both and records each call.

    Pass ``sleep=t.sleep, clock=t.monotonic, wall_clock=t.time`` to a
    :class:`~itsm_bridge.http.Transport` (or ``clock=t.time`` to an ``OAuth2``) and assert on
    ``t.sleeps``: a test of a 30-second ``Retry-After`` then takes microseconds.
    """

    def __init__(self, start: float = 1000.0, wall: float = 1_790_000_000.0) -> None:
        self._mono = start
        self._wall_offset = wall - start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        """Seconds on the monotonic clock (starts at ``start``)."""
        return self._mono

    def time(self) -> float:
        """Epoch seconds on the wall clock (starts at ``wall``), advancing with ``monotonic``."""
        return self._mono + self._wall_offset

    def sleep(self, seconds: float) -> None:
        """Record the wait and advance both clocks by it, at once."""
        with self._lock:
            self.sleeps.append(seconds)
            self._mono += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        """Let time pass without anyone sleeping (a token ageing, a reset arriving)."""
        with self._lock:
            self._mono += seconds

    @property
    def slept(self) -> float:
        """Total seconds slept so far."""
        return sum(self.sleeps)
