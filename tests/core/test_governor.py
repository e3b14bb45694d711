"""The per-host rate governor: spacing, concurrency, 429s and the vendors' rate-limit headers.

Unit tests run on injected time; two tests use a real loopback server and real threads to show
that the cap holds and that the governor slows down after 429s.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import pytest

from itsm_bridge.http import RateGovernor, RetryPolicy, Transport, governor_for, parse_retry_after
from itsm_bridge.sandbox import SandboxRequest, SandboxResponse, SandboxServer, json_response
from itsm_bridge.testing import FakeTime


def _governor(t: FakeTime, **kwargs: float | None) -> RateGovernor:
    return RateGovernor(clock=t.monotonic, sleep=t.sleep, wall_clock=t.time, **kwargs)  # type: ignore[arg-type]


def _send(gov: RateGovernor) -> float:
    with gov.slot() as sent_at:
        return sent_at


# -- unit tests on injected time ---------------------------------------------------------------


def test_rate_spaces_sends_on_a_shared_timeline(fake_time: FakeTime) -> None:
    gov = _governor(fake_time, rate=10.0)
    starts = [_send(gov) for _ in range(5)]
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(starts)]
    assert gaps == [0.1] * 4
    assert fake_time.sleeps == pytest.approx([0.1] * 4)
    assert gov.stats.waited_seconds == pytest.approx(0.4)
    assert gov.stats.paused_seconds == 0.0


def test_no_rate_means_no_waiting(fake_time: FakeTime) -> None:
    gov = _governor(fake_time)
    for _ in range(50):
        _send(gov)
    assert fake_time.sleeps == []
    assert gov.current_rate is None


def test_429_halves_the_rate_once_per_signal(fake_time: FakeTime) -> None:
    gov = _governor(fake_time, rate=8.0)
    burst = [_send(gov) for _ in range(4)]  # four requests out when the host pushes back
    for sent_at in burst:
        gov.observe(429, {}, sent_at=sent_at)
    assert gov.current_rate == 4.0  # echoes of one overload: one decrease
    assert gov.stats.throttled == 4
    assert gov.stats.slowdowns == 1
    gov.observe(429, {}, sent_at=_send(gov))  # a request sent after the decrease: a new signal
    assert gov.current_rate == 2.0


def test_429_without_a_configured_rate_starts_from_the_observed_rate(fake_time: FakeTime) -> None:
    gov = _governor(fake_time)
    sent = [_send(gov) for _ in range(40)]
    fake_time.advance(1.0)
    gov.observe(429, {}, sent_at=sent[-1])
    assert gov.current_rate == 20.0  # 40 sends over the last second -> 40/s, halved
    starts = [_send(gov) for _ in range(3)]
    assert starts[2] - starts[1] == pytest.approx(0.05)


def test_retry_after_pauses_everyone_until_it_passes(fake_time: FakeTime) -> None:
    gov = _governor(fake_time, rate=100.0)
    now = fake_time.monotonic()
    gov.observe(429, {"Retry-After": "3"}, sent_at=_send(gov))
    assert _send(gov) >= now + 3.0
    assert gov.stats.paused_seconds == pytest.approx(3.0, abs=0.02)


def test_rate_never_drops_below_the_minimum(fake_time: FakeTime) -> None:
    gov = _governor(fake_time, rate=1.0, min_rate=0.5)
    for _ in range(5):
        gov.observe(429, {}, sent_at=_send(gov))
    assert gov.current_rate == 0.5


def test_recovers_after_successes_up_to_the_configured_ceiling(fake_time: FakeTime) -> None:
    gov = _governor(fake_time, rate=4.0)
    gov.observe(429, {}, sent_at=_send(gov))
    assert gov.current_rate == 2.0
    rates = []
    for _ in range(60):
        gov.observe(200, {}, sent_at=_send(gov))
        rates.append(gov.current_rate)
    assert rates == sorted(rates)  # climbs steadily, no jumps back
    assert rates[0] is not None
    assert rates[0] < 2.5  # one success grows the budget by a tenth, not back to the ceiling
    assert gov.current_rate == 4.0  # back to the ceiling, never above it


def test_successes_sent_before_the_slowdown_do_not_count(fake_time: FakeTime) -> None:
    gov = _governor(fake_time, rate=4.0)
    early = [_send(gov) for _ in range(3)]
    gov.observe(429, {}, sent_at=_send(gov))
    for sent_at in early:
        gov.observe(200, {}, sent_at=sent_at)
    assert gov.current_rate == 2.0


def test_without_a_ceiling_the_governor_returns_to_unlimited(fake_time: FakeTime) -> None:
    gov = _governor(fake_time)
    for _ in range(400):
        _send(gov)
    gov.observe(429, {}, sent_at=_send(gov))
    assert gov.current_rate is not None
    for _ in range(400):
        gov.observe(200, {}, sent_at=_send(gov))
        if gov.current_rate is None:
            break
    assert gov.current_rate is None


def test_servicenow_quota_spent_pauses_until_the_epoch_reset(fake_time: FakeTime) -> None:
    gov = _governor(fake_time)
    reset = int(fake_time.time()) + 42
    gov.observe(
        200,
        {
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(reset),
        },
    )
    assert gov.paused_until == pytest.approx(fake_time.monotonic() + 42, abs=1)
    gov.observe(200, {"X-RateLimit-Remaining": "17", "X-RateLimit-Reset": str(reset + 999)})
    assert gov.paused_until == pytest.approx(fake_time.monotonic() + 42, abs=1)  # not spent


def test_jira_cloud_reset_as_iso_time(fake_time: FakeTime) -> None:
    gov = _governor(fake_time)
    when = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(fake_time.time() + 120))
    gov.observe(429, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": when})
    waited = gov.paused_until - fake_time.monotonic()
    assert 60 < waited <= 120


def test_ietf_ratelimit_headers(fake_time: FakeTime) -> None:
    gov = _governor(fake_time)
    gov.observe(200, {"RateLimit-Remaining": "0", "RateLimit-Reset": "15"})
    assert gov.paused_until == pytest.approx(fake_time.monotonic() + 15)


def test_jira_beta_ratelimit_quota_spent(fake_time: FakeTime) -> None:
    gov = _governor(fake_time)
    gov.observe(200, {"Beta-RateLimit": '"tenant-app-quota";r=17842;t=2107'})
    assert gov.paused_until == 0.0
    gov.observe(429, {"Beta-RateLimit": '"tenant-app-quota";r=0;t=90'})
    assert gov.paused_until == pytest.approx(fake_time.monotonic() + 90)


def test_long_resets_are_capped_by_max_pause(fake_time: FakeTime) -> None:
    gov = _governor(fake_time, max_pause=60.0)
    gov.observe(429, {"Beta-RateLimit": '"tenant-app-quota";r=0;t=3000'})
    assert gov.paused_until == pytest.approx(fake_time.monotonic() + 60)


def test_near_limit_hint_slows_down_gently(fake_time: FakeTime) -> None:
    gov = _governor(fake_time, rate=10.0)
    gov.observe(200, {"X-RateLimit-NearLimit": "true"}, sent_at=_send(gov))
    assert gov.current_rate == pytest.approx(8.0)
    gov.observe(200, {"X-RateLimit-NearLimit": "false"}, sent_at=_send(gov))
    assert gov.current_rate is not None
    assert gov.current_rate > 8.0  # a plain success again
    gov.observe(200, {"X-Beta-RateLimit-NearLimit": "true"}, sent_at=_send(gov))
    assert gov.current_rate < 8.0


def test_jira_data_center_token_bucket(fake_time: FakeTime) -> None:
    gov = _governor(fake_time)
    gov.observe(200, {"X-RateLimit-FillRate": "10", "X-RateLimit-Interval-Seconds": "2"})
    assert gov.current_rate == 5.0


def test_parse_retry_after() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_one_governor_per_host_and_the_stricter_budget_wins() -> None:
    a = governor_for("acme.service-now.com", rate=20.0)
    b = governor_for("ACME.service-now.com", rate=5.0)
    c = governor_for("acme.service-now.com", rate=50.0)
    assert a is b is c
    assert a.current_rate == 5.0
    assert governor_for("other.atlassian.net") is not a


def test_a_second_source_asking_fewer_requests_in_flight_tightens_the_cap() -> None:
    a = governor_for("jira.example.com", max_concurrency=8)
    assert governor_for("jira.example.com", max_concurrency=2) is a
    assert a.max_concurrency == 2
    governor_for("jira.example.com", max_concurrency=16)  # never loosened
    assert a.max_concurrency == 2


def test_a_lowered_cap_holds_new_requests_until_the_held_slots_drain(
    fake_time: FakeTime,
) -> None:
    governor = RateGovernor(max_concurrency=3, clock=fake_time.monotonic, sleep=fake_time.sleep)
    held = [governor.slot() for _ in range(3)]
    for slot in held:
        slot.__enter__()
    governor.max_concurrency = 1  # what governor_for does for a stricter second source
    entered = threading.Event()

    def fourth() -> None:
        with governor.slot():
            entered.set()

    waiter = threading.Thread(target=fourth)
    waiter.start()
    for slot in held[:2]:
        slot.__exit__(None, None, None)
    assert not entered.wait(0.2)  # one slot still held: at the new cap of one
    held[2].__exit__(None, None, None)
    assert entered.wait(5)
    waiter.join(5)


def test_invalid_settings() -> None:
    with pytest.raises(ValueError, match="max_concurrency"):
        RateGovernor(max_concurrency=0)
    with pytest.raises(ValueError, match="rate"):
        RateGovernor(rate=0)


# -- real threads against a loopback server --------------------------------------------------


class InFlight:
    """A sandbox app that holds each request a few milliseconds and records the peak in flight."""

    def __init__(self, hold: float = 0.004, throttle_first: int = 0, retry_after: str = "0.05"):
        self.hold = hold
        self.throttle_first = throttle_first
        self.retry_after = retry_after
        self.now = 0
        self.peak = 0
        self.seen = 0
        self._lock = threading.Lock()

    def __call__(self, request: SandboxRequest) -> SandboxResponse:
        with self._lock:
            self.seen += 1
            number = self.seen
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            time.sleep(self.hold)
            if number <= self.throttle_first:
                return json_response(
                    {"error": "burst"}, status=429, headers={"Retry-After": self.retry_after}
                )
            return json_response({"result": [number]})
        finally:
            with self._lock:
                self.now -= 1


@pytest.fixture
def in_flight_server() -> Iterator[tuple[SandboxServer, InFlight]]:
    app = InFlight()
    with SandboxServer(app) as server:
        yield server, app


def _hammer(threads: int, work: object) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()  # type: ignore[operator]
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    assert not errors, errors[0]


def test_sixteen_threads_sharing_one_host_never_exceed_the_cap(
    in_flight_server: tuple[SandboxServer, InFlight],
) -> None:
    server, app = in_flight_server

    def work() -> None:
        # Each thread builds its own transport: the cap is per host, not per transport.
        with Transport(server.url, max_concurrency=3) as transport:
            for _ in range(6):
                transport.get("/api/now/table/incident")

    _hammer(16, work)

    governor = governor_for(server.url.split("://", 1)[1])
    assert app.seen == 96
    assert app.peak <= 3
    assert governor.stats.max_in_flight <= 3
    assert app.peak >= 2  # the threads really overlapped; the cap, not luck, held them


def test_governor_slows_down_after_429s(in_flight_server: tuple[SandboxServer, InFlight]) -> None:
    server, app = in_flight_server
    app.throttle_first = 6
    slept: list[float] = []

    def recording_sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    governor = RateGovernor(max_concurrency=4, sleep=recording_sleep)
    transport = Transport(
        server.url, governor=governor, retry=RetryPolicy(initial_wait=0.01, jitter=0.0)
    )

    def work() -> None:
        for _ in range(4):
            transport.get("/api/x")

    assert governor.current_rate is None
    _hammer(8, work)
    transport.close()

    assert governor.stats.throttled == 6
    assert 1 <= governor.stats.slowdowns <= 6
    # The budget tightened (a decrease was recorded); it may have recovered by the end.
    assert governor.stats.paused_seconds > 0  # Retry-After held everyone, not just one thread
    assert sum(slept) >= 0.05
    assert app.seen == 32 + 6  # every 429 was retried once its Retry-After had passed
