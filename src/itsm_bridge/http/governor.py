"""The per-host rate governor: one budget per host, shared by every thread and transport.

Two limits apply together: a requests-per-second budget (spacing sends on a virtual timeline, so a
burst of threads queues politely instead of stampeding) and a concurrency cap (a semaphore). The
budget tightens multiplicatively when the host answers 429 or says it is near its limit, recovers
additively after successes, and pauses everyone until a reset time when the host says its quota is
spent. Vendor headers understood: ``Retry-After``; ``X-RateLimit-Limit/Remaining/Reset``
(ServiceNow epoch seconds, Jira Cloud ISO time); ``X-RateLimit-NearLimit``; IETF
``RateLimit-Remaining/Reset``; Jira Cloud's ``Beta-RateLimit: "..."; r=..; t=..``; Jira Data
Center's ``X-RateLimit-FillRate`` with ``X-RateLimit-Interval-Seconds``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["GovernorStats", "RateGovernor", "governor_for", "parse_retry_after", "reset_governors"]

Clock = Callable[[], float]
Sleep = Callable[[float], None]


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _parse_reset(value: str, wall_now: float) -> float | None:
    """A reset header as seconds from now: epoch seconds, delta seconds, or an ISO time."""
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, when.timestamp() - wall_now)
    if number > 1_000_000_000:  # epoch seconds (ServiceNow)
        return max(0.0, number - wall_now)
    return max(0.0, number)


def _structured_params(value: str) -> dict[str, str]:
    """Parameters of a structured header item such as ``"tenant-app-quota";r=17842;t=2107``."""
    params: dict[str, str] = {}
    for part in value.split(";")[1:]:
        key, _, val = part.strip().partition("=")
        if key:
            params[key.strip().lower()] = val.strip().strip('"')
    return params


@dataclass
class GovernorStats:
    """Counters for tests and the run report. ``waited_seconds`` is time spent queued for the
    budget (spacing and pauses); ``paused_seconds`` is the part caused by a host-imposed pause."""

    requests: int = 0
    throttled: int = 0
    slowdowns: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    waited_seconds: float = 0.0
    paused_seconds: float = 0.0


class RateGovernor:
    """Shared send budget for one host.

    ``rate`` is the configured ceiling in requests per second (``None``: no ceiling until the host
    pushes back). ``max_concurrency`` bounds requests in flight. ``max_pause`` bounds how long a
    reset header may stall everyone; longer quotas surface as errors through the retry budget.

    Slowing down follows the congestion-control rule of one decrease per signal: the 429s (or
    near-limit hints) answered to requests that were sent *before* the last decrease are echoes
    of the same overload, so sixteen threads hit by one burst halve the rate once, not sixteen
    times. Likewise only successes of requests sent after the last decrease count as evidence
    that the lower rate is safe to raise again.
    """

    def __init__(
        self,
        *,
        rate: float | None = None,
        max_concurrency: int = 4,
        min_rate: float = 0.2,
        max_pause: float = 300.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        wall_clock: Clock = time.time,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive or None")
        self.configured_rate = rate
        self.max_concurrency = max_concurrency
        self.min_rate = min_rate
        self.max_pause = max_pause
        self._clock = clock
        self._sleep = sleep
        self._wall = wall_clock
        self._lock = threading.Lock()
        self._busy = 0  # slots held; a Condition, not a semaphore, so the cap can be lowered
        self._free = threading.Condition(threading.Lock())
        self._rate: float | None = rate
        self._next_send = 0.0
        self._paused_until = 0.0
        self._last_decrease = float("-inf")
        self._recent: deque[float] = deque(maxlen=256)
        self.stats = GovernorStats()

    def __repr__(self) -> str:
        return (
            f"RateGovernor(rate={self._rate!r}, configured_rate={self.configured_rate!r}, "
            f"max_concurrency={self.max_concurrency})"
        )

    @property
    def current_rate(self) -> float | None:
        """The budget in force now (requests per second), ``None`` when unlimited."""
        return self._rate

    @property
    def paused_until(self) -> float:
        """Clock time before which no request is sent (0 when never paused)."""
        return self._paused_until

    @contextmanager
    def slot(self) -> Iterator[float]:
        """Hold one concurrency slot, waiting for the budget; yields the send time.

        Pass the yielded time to :meth:`observe` as ``sent_at`` so the governor can tell a fresh
        signal from an echo of one it has already acted on.
        """
        with self._free:
            while self._busy >= self.max_concurrency:
                self._free.wait()
            self._busy += 1
        try:
            sent_at = self._wait_for_budget()
            with self._lock:
                self.stats.in_flight += 1
                self.stats.requests += 1
                self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
            try:
                yield sent_at
            finally:
                with self._lock:
                    self.stats.in_flight -= 1
        finally:
            with self._free:
                self._busy -= 1
                self._free.notify()

    def _wait_for_budget(self) -> float:
        """Reserve a send time on the shared timeline, then sleep until it comes."""
        with self._lock:
            now = self._clock()
            start = max(now, self._paused_until)
            paused = start - now
            if self._rate is not None:
                start = max(start, self._next_send)
                self._next_send = start + 1.0 / self._rate
            self._recent.append(start)
            delay = start - now
            if delay > 0:
                self.stats.waited_seconds += delay
                self.stats.paused_seconds += paused
        if delay > 0:
            self._sleep(delay)
        return start

    def _observed_rate(self, now: float) -> float:
        """The send rate of the last two seconds, measured over the span actually covered.

        Dividing by the span, not by a fixed two seconds, matters at the start of a pull: four
        sends in ten milliseconds are a rate of hundreds per second, and halving "two per
        second" instead would crawl for minutes after one early 429.
        """
        window = [t for t in self._recent if now - 2.0 < t <= now]
        if not window:
            return self.min_rate
        span = max(now - window[0], 0.01)
        return max(len(window) / span, self.min_rate)

    def _slow_down(self, factor: float, now: float, sent_at: float | None) -> None:
        """Multiply the rate by ``factor``, once per signal (see the class docstring)."""
        if sent_at is not None and sent_at <= self._last_decrease:
            return
        base = self._rate if self._rate is not None else self._observed_rate(now)
        self._rate = max(self.min_rate, base * factor)
        self._last_decrease = now
        self.stats.slowdowns += 1

    def observe(
        self, status: int, headers: Mapping[str, str], *, sent_at: float | None = None
    ) -> None:
        """Learn from one response: tighten on 429 and near-limit hints, recover on success."""
        get = _header_getter(headers)
        wall_now = self._wall()
        with self._lock:
            now = self._clock()
            pause = 0.0
            if status == 429:
                self.stats.throttled += 1
                self._slow_down(0.5, now, sent_at)
                pause = parse_retry_after(get("retry-after"), now=wall_now) or 0.0
            remaining = get("x-ratelimit-remaining") or get("ratelimit-remaining")
            reset = get("x-ratelimit-reset") or get("ratelimit-reset")
            if remaining is not None and reset is not None and _is_zero(remaining):
                # Quota spent: everyone waits for the reset, not just the thread that saw it.
                pause = max(pause, _parse_reset(reset, wall_now) or 0.0)
            beta = get("beta-ratelimit")
            if beta:
                # Jira Cloud: "tenant-app-quota";r=<remaining>;t=<seconds to reset>
                params = _structured_params(beta)
                if _is_zero(params.get("r")) and params.get("t"):
                    pause = max(pause, _parse_reset(params["t"], wall_now) or 0.0)
            near = get("x-ratelimit-nearlimit") or get("x-beta-ratelimit-nearlimit")
            if near is not None and near.strip().lower() == "true":
                self._slow_down(0.8, now, sent_at)
            elif status < 400 and (sent_at is None or sent_at > self._last_decrease):
                self._recover()
            fill, interval = get("x-ratelimit-fillrate"), get("x-ratelimit-interval-seconds")
            if fill and interval:
                # Jira Data Center token bucket: never plan faster than it refills.
                try:
                    advertised = float(fill) / float(interval)
                except (ValueError, ZeroDivisionError):
                    advertised = 0.0
                if advertised > 0 and (self._rate is None or self._rate > advertised):
                    self._rate = advertised
            if pause > 0:
                self._paused_until = max(self._paused_until, now + min(pause, self.max_pause))

    def _recover(self) -> None:
        if self._rate is None:
            return
        ceiling = self.configured_rate
        # Grow by a tenth per success: after a burst of 429s the budget is back within a few
        # dozen requests; a host that is still overloaded says so with the next 429.
        grown = self._rate + max(0.25, self._rate * 0.1)
        if ceiling is None:
            # No configured ceiling: return to "unlimited" once the budget has clearly recovered.
            self._rate = None if grown > _UNLIMITED_ABOVE else grown
        else:
            self._rate = min(ceiling, grown)


_UNLIMITED_ABOVE = 200.0


def _is_zero(value: str | None) -> bool:
    if value is None:
        return False
    try:
        return float(value) <= 0
    except ValueError:
        return False


def _header_getter(headers: Mapping[str, str]) -> Callable[[str], str | None]:
    lowered = {k.lower(): v for k, v in headers.items()}
    return lowered.get


_registry: dict[str, RateGovernor] = {}
_registry_lock = threading.Lock()


def governor_for(
    host: str, *, rate: float | None = None, max_concurrency: int = 4, **kwargs: float
) -> RateGovernor:
    """The governor of ``host`` (``netloc``), created on first use and shared afterwards.

    Settings apply when the governor is created; a later caller asking for a stricter budget
    (a lower rate, fewer requests in flight) tightens it, never loosens it, so two sources on one
    host stay within the smaller budget.
    """
    key = host.lower()
    with _registry_lock:
        existing = _registry.get(key)
        if existing is None:
            existing = RateGovernor(rate=rate, max_concurrency=max_concurrency, **kwargs)  # type: ignore[arg-type]
            _registry[key] = existing
        elif rate is not None and (
            existing.configured_rate is None or rate < existing.configured_rate
        ):
            existing.configured_rate = rate
            existing._rate = rate if existing._rate is None else min(existing._rate, rate)
        if max_concurrency < existing.max_concurrency:
            existing.max_concurrency = max_concurrency  # slots held now drain below it
        return existing


def reset_governors() -> None:
    """Forget every shared governor (tests, or a long-lived process changing its budgets)."""
    with _registry_lock:
        _registry.clear()
