"""Fault injection for sandboxes: what real instances do to clients, on a seeded schedule.

A :class:`FaultPlan` decides, request by request, whether to add latency, answer 429 (in bursts,
with ``Retry-After``), answer 5xx, drop the connection, truncate the body or answer an HTML page
with status 200. Data faults (records updated or deleted while a client pages, ACL-short pages)
belong to the fake platforms, which know their data; they read their rates from the same plan.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from itsm_bridge.sandbox.server import SandboxRequest

__all__ = ["Fault", "FaultPlan"]

FaultKind = Literal["latency", "429", "5xx", "drop", "truncate", "html"]


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    latency: float = 0.0
    status: int = 503
    retry_after: int = 1


@dataclass
class FaultPlan:
    """Seeded fault schedule. Probabilities are per request; ``latency`` applies to every request.

    ``p_429`` starts a burst of ``burst_429`` consecutive 429s. ``hibernating`` answers every
    request with an HTML page. ``applies_to`` limits faults to matching requests (for example only
    data pages, not the login). ``p_update_during_paging``, ``p_delete_during_paging`` and
    ``acl_hidden_share`` are read by the fake platforms.
    """

    seed: int = 0
    latency: float = 0.0
    p_latency_spike: float = 0.0
    spike_latency: float = 0.5
    p_429: float = 0.0
    burst_429: int = 3
    retry_after: int = 1
    p_5xx: float = 0.0
    p_drop: float = 0.0
    p_truncate: float = 0.0
    p_html: float = 0.0
    hibernating: bool = False
    p_update_during_paging: float = 0.0
    p_delete_during_paging: float = 0.0
    acl_hidden_share: float = 0.0
    applies_to: Callable[[SandboxRequest], bool] | None = None
    injected: dict[str, int] = field(default_factory=dict)
    _rng: random.Random = field(init=False, repr=False)
    _burst_left: int = field(default=0, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def _count(self, kind: str) -> None:
        self.injected[kind] = self.injected.get(kind, 0) + 1

    def draw(self, request: SandboxRequest) -> Fault | None:
        """The fault for this request, or ``None``; thread-safe and reproducible per seed."""
        if self.applies_to is not None and not self.applies_to(request):
            return Fault("latency", latency=self.latency) if self.latency else None
        with self._lock:
            latency = self.latency
            if self.p_latency_spike and self._rng.random() < self.p_latency_spike:
                latency += self.spike_latency
                self._count("latency_spike")
            if self.hibernating:
                self._count("html")
                return Fault("html", latency=latency)
            if self._burst_left > 0:
                self._burst_left -= 1
                self._count("429")
                return Fault("429", latency=latency, retry_after=self.retry_after)
            roll = self._rng.random()
            for kind, p in (
                ("429", self.p_429),
                ("5xx", self.p_5xx),
                ("drop", self.p_drop),
                ("truncate", self.p_truncate),
                ("html", self.p_html),
            ):
                if p and roll < p:
                    self._count(kind)
                    if kind == "429":
                        self._burst_left = max(0, self.burst_429 - 1)
                        return Fault("429", latency=latency, retry_after=self.retry_after)
                    if kind == "5xx":
                        return Fault(
                            "5xx", latency=latency, status=self._rng.choice([502, 503, 504])
                        )
                    return Fault(kind, latency=latency)  # type: ignore[arg-type]
                roll -= p
            return Fault("latency", latency=latency) if latency else None

    def chance(self, p: float) -> bool:
        """A seeded coin for the fake platforms' data faults."""
        with self._lock:
            return self._rng.random() < p
