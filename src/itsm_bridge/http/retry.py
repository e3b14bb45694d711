"""The one retry policy: what is retried, how long to wait, and when to give up.

Built from tenacity parts and used only by :class:`~itsm_bridge.http.Transport`; connectors never
retry on their own. The wait grows exponentially with jitter, a server's ``Retry-After`` is a
floor under it, and both the number of attempts and the total time are bounded.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import RetryCallState
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from itsm_bridge.errors import ItsmBridgeError

__all__ = ["RETRY_STATUSES", "RetryPolicy"]

RETRY_STATUSES = frozenset({429, 502, 503, 504})
"""Statuses worth another attempt; every other 4xx/5xx fails at once (see the transport's table)."""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds and shape of the one retry policy.

    Waits grow as ``initial * 2**n`` up to ``max_wait``, with full jitter on top; a ``Retry-After``
    header is a floor under the wait, never a ceiling. Attempts and total time are both bounded.
    """

    max_attempts: int = 6
    max_total_seconds: float = 300.0
    initial_wait: float = 0.5
    max_wait: float = 30.0
    jitter: float = 0.5


class _Retryable(Exception):
    """Internal: a failure the policy may retry; carries the error to raise when spent."""

    def __init__(self, error: ItsmBridgeError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class _Wait(wait_base):
    """Exponential backoff with jitter, floored by the server's ``Retry-After``.

    The wait of each attempt is drawn once and remembered, because :class:`_Stop` needs the same
    number to decide whether that wait would cross the time budget.
    """

    def __init__(self, policy: RetryPolicy, rng: random.Random) -> None:
        self.policy = policy
        self.rng = rng
        self._planned: dict[int, float] = {}

    def __call__(self, retry_state: RetryCallState) -> float:
        n = retry_state.attempt_number
        if n not in self._planned:
            backoff = min(self.policy.max_wait, self.policy.initial_wait * (2 ** (n - 1)))
            backoff += self.rng.uniform(0, self.policy.jitter * backoff)
            exc = retry_state.outcome.exception() if retry_state.outcome else None
            floor = exc.retry_after if isinstance(exc, _Retryable) and exc.retry_after else 0.0
            self._planned[n] = float(max(floor, backoff))
        return self._planned[n]


class _Stop(stop_base):
    """Stop after ``max_attempts``, or when sleeping the next wait would cross the time budget."""

    def __init__(self, policy: RetryPolicy, clock: Callable[[], float], wait: _Wait) -> None:
        self.policy = policy
        self.clock = clock
        self.wait = wait
        self.started: float | None = None

    def __call__(self, retry_state: RetryCallState) -> bool:
        if retry_state.attempt_number >= self.policy.max_attempts:
            return True
        if self.started is None:
            return False
        elapsed = self.clock() - self.started
        return elapsed + self.wait(retry_state) > self.policy.max_total_seconds
