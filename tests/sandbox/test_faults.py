"""FaultPlan: a reproducible schedule, honest counters, filters and validation."""

from __future__ import annotations

import collections
import threading

import pytest

from itsm_bridge.sandbox.faults import Fault, FaultPlan
from itsm_bridge.sandbox.server import SandboxRequest


def _request(path: str = "/api/now/table/incident") -> SandboxRequest:
    return SandboxRequest("GET", path, {}, {})


def _mixed(seed: int) -> FaultPlan:
    return FaultPlan(
        seed=seed, p_429=0.05, burst_429=3, p_5xx=0.05, p_drop=0.03, p_truncate=0.03, p_html=0.02,
        p_latency_spike=0.1, spike_latency=0.2, latency=0.01,
    )  # fmt: skip


def _kinds(faults: list[Fault | None]) -> list[str | None]:
    return [None if f is None else f.kind for f in faults]


def test_same_seed_same_schedule_other_seed_differs() -> None:
    plan_a, plan_b = _mixed(4), _mixed(4)
    a = [plan_a.draw(_request()) for _ in range(500)]
    b = [plan_b.draw(_request()) for _ in range(500)]
    assert a == b
    assert plan_a.injected == plan_b.injected
    assert a != [_mixed(5).draw(_request()) for _ in range(500)]
    assert _mixed(4).schedule(500) == a


def test_schedule_is_the_same_when_drawn_from_many_threads() -> None:
    plan = _mixed(9)
    expected = collections.Counter(_kinds(_mixed(9).schedule(800)))
    got: list[Fault | None] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(100):
            fault = plan.draw(_request())
            with lock:
                got.append(fault)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert collections.Counter(_kinds(got)) == expected


def test_data_fault_coin_does_not_shift_the_request_schedule() -> None:
    plain, busy = _mixed(2), _mixed(2)
    first = [plain.draw(_request()) for _ in range(200)]
    second = []
    for _ in range(200):
        busy.chance(0.5)
        second.append(busy.draw(_request()))
    assert first == second


def test_counters_match_the_schedule_and_bursts_are_consecutive() -> None:
    plan = FaultPlan(seed=1, p_429=0.05, burst_429=4, p_5xx=0.05, p_latency_spike=0.2)
    faults = [plan.draw(_request()) for _ in range(2000)]
    kinds = _kinds(faults)
    assert plan.injected["429"] == kinds.count("429") > 0
    assert plan.injected["5xx"] == kinds.count("5xx") > 0
    assert plan.injected["latency_spike"] == sum(1 for f in faults if f and f.latency >= 0.5)
    assert plan.requests_seen == 2000
    runs = [len(run) for run in "".join("x" if k == "429" else "." for k in kinds).split(".")]
    assert all(n % 4 == 0 for n in runs if n)  # whole bursts of 4 (adjacent bursts may touch)
    assert {f.status for f in faults if f and f.kind == "5xx"} <= {502, 503, 504}
    assert all(f.retry_after == 1 for f in faults if f and f.kind == "429")
    plan.reset()
    assert plan.injected == {}
    assert plan.requests_seen == 0
    assert [plan.draw(_request()) for _ in range(2000)] == faults


def test_no_faults_means_no_fault_objects() -> None:
    plan = FaultPlan(seed=3)
    assert [plan.draw(_request()) for _ in range(100)] == [None] * 100
    latency_only = FaultPlan(seed=3, latency=0.05)
    assert {latency_only.draw(_request()) for _ in range(10)} == {Fault("latency", latency=0.05)}


def test_applies_to_filters_requests_and_keeps_base_latency() -> None:
    plan = FaultPlan(seed=1, p_5xx=1.0, latency=0.02, applies_to=lambda r: "table" in r.path)
    assert plan.draw(_request("/oauth_token.do")) == Fault("latency", latency=0.02)
    assert plan.requests_seen == 0
    fault = plan.draw(_request("/api/now/table/change_request"))
    assert fault is not None
    assert fault.kind == "5xx"
    assert plan.injected == {"5xx": 1}


def test_hibernation_from_the_start_or_after_n_requests() -> None:
    asleep = FaultPlan(hibernating=True)
    assert all(asleep.draw(_request()).kind == "html" for _ in range(5))  # type: ignore[union-attr]
    dozing = FaultPlan(hibernate_after=3)
    kinds = _kinds([dozing.draw(_request()) for _ in range(6)])
    assert kinds == [None, None, None, "html", "html", "html"]
    assert dozing.injected == {"html": 3}


@pytest.mark.parametrize(
    "settings",
    [{"p_5xx": 1.5}, {"p_drop": -0.1}, {"p_429": 0.6, "p_5xx": 0.6}, {"burst_429": 0}],
)
def test_invalid_plans_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="FaultPlan"):
        FaultPlan(**settings)  # type: ignore[arg-type]


def test_chance_is_seeded() -> None:
    a, b = FaultPlan(seed=8), FaultPlan(seed=8)
    assert [a.chance(0.3) for _ in range(100)] == [b.chance(0.3) for _ in range(100)]
    assert not any(FaultPlan(seed=8).chance(0.0) for _ in range(100))
