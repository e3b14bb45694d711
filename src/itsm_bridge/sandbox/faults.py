"""Fault injection for sandboxes: what real instances do to clients, on a seeded schedule.

A :class:`FaultPlan` decides, request by request, whether to add latency (a constant per request
plus occasional spikes), answer 429 in bursts with ``Retry-After``, answer 502/503/504, drop the
connection without a response, send a truncated body, or answer an HTML page with status 200 (a
hibernating instance or an SSO login page, which a client must never take for data).

Reproducible: the fault for the n-th request the plan sees depends only on the seed and n (each
request draws from its own ``random.Random`` keyed by both), and 429 bursts advance request by
request under a lock. Threads may change *which* request is the n-th, never the schedule itself.

Data faults (records updated or deleted while a client pages, records hidden by ACLs) belong to
the fake platforms, which know their data; they read ``p_update_during_paging``,
``p_delete_during_paging`` and ``acl_hidden_share`` from the same plan, usually through
:class:`itsm_bridge.sandbox.store.MutableStore`, and draw with :meth:`FaultPlan.chance`, which has
its own seeded stream so data faults never shift the request schedule.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from itsm_bridge.sandbox.server import SandboxRequest

__all__ = ["Fault", "FaultKind", "FaultPlan"]

FaultKind = Literal["latency", "429", "5xx", "drop", "truncate", "html"]


@dataclass(frozen=True)
class Fault:
    """What to do to one request. ``latency`` (seconds) applies before any other effect."""

    kind: FaultKind
    latency: float = 0.0
    status: int = 503
    retry_after: int = 1
    http_date: bool = False  # send Retry-After as an HTTP date instead of seconds


@dataclass
class FaultPlan:
    """Seeded fault schedule. Probabilities are per request; ``latency`` applies to every request.

    ``p_429`` starts a burst of ``burst_429`` consecutive 429s, each with ``Retry-After:
    retry_after`` (seconds, or an HTTP date when ``retry_after_http_date``). ``hibernating`` answers
    every request with an HTML page; ``hibernate_after`` does so from the n-th request on (an
    instance falling asleep mid-pull). ``applies_to`` limits faults to matching requests (for
    example only data pages, not the login); other requests get only the base ``latency`` and
    do not advance the schedule. ``injected`` counts what was injected, by kind (plus
    ``latency_spike``). The ``p_*_during_paging`` rates and ``acl_hidden_share`` are read by the
    fake platforms.
    """

    seed: int = 0
    latency: float = 0.0
    p_latency_spike: float = 0.0
    spike_latency: float = 0.5
    p_429: float = 0.0
    burst_429: int = 3
    retry_after: int = 1
    retry_after_http_date: bool = False
    p_5xx: float = 0.0
    p_drop: float = 0.0
    p_truncate: float = 0.0
    p_html: float = 0.0
    hibernating: bool = False
    hibernate_after: int | None = None
    p_update_during_paging: float = 0.0
    p_delete_during_paging: float = 0.0
    acl_hidden_share: float = 0.0
    applies_to: Callable[[SandboxRequest], bool] | None = None
    injected: dict[str, int] = field(default_factory=dict)
    _seen: int = field(default=0, init=False, repr=False)
    _burst_left: int = field(default=0, init=False, repr=False)
    _data_rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        for name in (
            "p_latency_spike", "p_429", "p_5xx", "p_drop", "p_truncate", "p_html",
            "p_update_during_paging", "p_delete_during_paging", "acl_hidden_share",
        ):  # fmt: skip
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"FaultPlan.{name} must be within [0, 1], got {value!r}")
        if self.p_429 + self.p_5xx + self.p_drop + self.p_truncate + self.p_html > 1.0:
            raise ValueError("FaultPlan: the response-fault probabilities add up to more than 1")
        if self.latency < 0 or self.spike_latency < 0 or self.burst_429 < 1:
            raise ValueError("FaultPlan: latencies must be >= 0 and burst_429 >= 1")
        self._data_rng = random.Random(f"faults-data:{self.seed}")

    @property
    def requests_seen(self) -> int:
        """Requests that advanced the schedule (those ``applies_to`` accepted)."""
        return self._seen

    def reset(self) -> None:
        """Start the schedule and the counters again, as if freshly built."""
        with self._lock:
            self._seen = 0
            self._burst_left = 0
            self.injected.clear()
            self._data_rng = random.Random(f"faults-data:{self.seed}")

    def _count(self, kind: str) -> None:
        self.injected[kind] = self.injected.get(kind, 0) + 1

    def draw(self, request: SandboxRequest | None = None) -> Fault | None:
        """The fault for this request, or ``None``; thread-safe and reproducible per seed."""
        if request is not None and self.applies_to is not None and not self.applies_to(request):
            return Fault("latency", latency=self.latency) if self.latency else None
        with self._lock:
            index = self._seen
            self._seen += 1
            rng = random.Random(f"faults:{self.seed}:{index}")
            latency = self.latency
            if self.p_latency_spike and rng.random() < self.p_latency_spike:
                latency += self.spike_latency
                self._count("latency_spike")
            if self.hibernating or (
                self.hibernate_after is not None and index >= self.hibernate_after
            ):
                self._count("html")
                return Fault("html", latency=latency)
            if self._burst_left > 0:
                self._burst_left -= 1
                self._count("429")
                return self._rate_limited(latency)
            fault = self._roll(rng, latency)
            if fault is None:
                return Fault("latency", latency=latency) if latency else None
            self._count(fault.kind)
            if fault.kind == "429":
                self._burst_left = self.burst_429 - 1
            return fault

    def _rate_limited(self, latency: float) -> Fault:
        return Fault(
            "429",
            latency=latency,
            retry_after=self.retry_after,
            http_date=self.retry_after_http_date,
        )

    def _roll(self, rng: random.Random, latency: float) -> Fault | None:
        roll = rng.random()
        if roll < (edge := self.p_429):
            return self._rate_limited(latency)
        if roll < (edge := edge + self.p_5xx):
            return Fault("5xx", latency=latency, status=rng.choice((502, 503, 504)))
        if roll < (edge := edge + self.p_drop):
            return Fault("drop", latency=latency)
        if roll < (edge := edge + self.p_truncate):
            return Fault("truncate", latency=latency)
        if roll < edge + self.p_html:
            return Fault("html", latency=latency)
        return None

    def schedule(self, n: int) -> list[Fault | None]:
        """The first ``n`` faults a fresh plan with these settings would inject (for tests)."""
        twin = FaultPlan(
            **{
                name: getattr(self, name)
                for name in self.__dataclass_fields__
                if self.__dataclass_fields__[name].init and name not in ("injected", "applies_to")
            }
        )
        return [twin.draw() for _ in range(n)]

    def chance(self, p: float) -> bool:
        """A seeded coin for the fake platforms' data faults (its own stream)."""
        if p <= 0.0:
            return False
        with self._lock:
            return self._data_rng.random() < p

    def data_rng(self) -> random.Random:
        """A fresh generator for data faults derived from the seed (for a fake's own choices)."""
        with self._lock:
            return random.Random(self._data_rng.getrandbits(64))
