"""SandboxServer: real HTTP on loopback, and every fault as a `requests` client sees it."""

from __future__ import annotations

import threading
import time
from email.utils import parsedate_to_datetime

import pytest
import requests

from itsm_bridge.sandbox.faults import FaultPlan
from itsm_bridge.sandbox.fixtures import StartServer
from itsm_bridge.sandbox.server import (
    HIBERNATION_PAGE,
    SandboxRequest,
    SandboxResponse,
    SandboxServer,
    json_response,
)

BIG = {"result": [{"number": f"INC{n:07d}", "short_description": "x" * 40} for n in range(300)]}


def app(request: SandboxRequest) -> SandboxResponse:
    if request.path == "/boom":
        raise RuntimeError("secret=hunter2")
    if request.path == "/echo":
        return json_response(
            {"method": request.method, "q": request.param("q"), "body": request.json()},
            headers={"X-Total-Count": "1"},
        )
    return json_response(BIG)


def _read(url: str, *, stream: bool) -> bytes:
    """Fetch and read the whole body (with ``stream``, reading is what fails)."""
    return requests.get(url, timeout=5, stream=stream).content


def test_serves_on_a_free_loopback_port_and_counts(sandbox_server: StartServer) -> None:
    a, b = sandbox_server(app), sandbox_server(app)
    assert a.port != b.port
    assert a.url.startswith("http://127.0.0.1:")
    with requests.Session() as s:
        r = s.post(a.url + "/echo?q=1", json={"k": "v"}, timeout=5)
        assert r.json() == {"method": "POST", "q": "1", "body": {"k": "v"}}
        assert r.headers["X-Total-Count"] == "1"
        assert r.headers["Content-Type"].startswith("application/json")
        assert s.get(a.url + "/table", timeout=5).json() == BIG
    assert a.requests == 2
    assert a.hits["/echo"] == 1
    assert b.requests == 0


def test_app_errors_become_500_without_details(sandbox_server: StartServer) -> None:
    server = sandbox_server(app)
    r = requests.get(server.url + "/boom", timeout=5)
    assert r.status_code == 500
    assert "hunter2" not in r.text


def test_context_manager_stops_and_frees_the_port() -> None:
    with SandboxServer(app) as server:
        url = server.url
        with requests.Session() as s:  # leave a keep-alive connection open on purpose
            assert s.get(url + "/echo", timeout=5).ok
            server.stop()
            assert not server.running
            with pytest.raises(requests.ConnectionError):
                s.get(url + "/echo", timeout=5)
    server.stop()  # idempotent


def test_max_in_flight_counts_concurrent_requests(sandbox_server: StartServer) -> None:
    barrier = threading.Barrier(4, timeout=5)

    def slow(request: SandboxRequest) -> SandboxResponse:
        barrier.wait()
        return json_response({})

    server = sandbox_server(slow)
    threads = [
        threading.Thread(target=requests.get, args=(server.url + "/x",), kwargs={"timeout": 5})
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert server.requests == 4
    assert server.max_in_flight == 4
    assert server.in_flight == 0


def test_429_burst_with_retry_after_seconds(sandbox_server: StartServer) -> None:
    server = sandbox_server(app, FaultPlan(p_429=1.0, burst_429=2, retry_after=7))
    r = requests.get(server.url + "/table", timeout=5)
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "7"


def test_429_with_retry_after_http_date(sandbox_server: StartServer) -> None:
    plan = FaultPlan(p_429=1.0, retry_after=30, retry_after_http_date=True)
    server = sandbox_server(app, plan)
    r = requests.get(server.url + "/table", timeout=5)
    assert r.status_code == 429
    when = parsedate_to_datetime(r.headers["Retry-After"]).timestamp()
    assert 20 < when - time.time() <= 31


def test_5xx(sandbox_server: StartServer) -> None:
    server = sandbox_server(app, FaultPlan(p_5xx=1.0))
    r = requests.get(server.url + "/table", timeout=5)
    assert r.status_code in (502, 503, 504)
    assert r.json()["error"]["message"] == "Service Unavailable"


def test_dropped_connection_raises_connection_error(sandbox_server: StartServer) -> None:
    server = sandbox_server(app, FaultPlan(p_drop=1.0))
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/table", timeout=5)
    assert server.faults is not None
    assert server.faults.injected == {"drop": 1}


@pytest.mark.parametrize("path", ["/table", "/echo"])
@pytest.mark.parametrize("stream", [False, True])
def test_truncated_body_never_returns_half_json(
    sandbox_server: StartServer, path: str, stream: bool
) -> None:
    server = sandbox_server(app, FaultPlan(p_truncate=1.0))
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        _read(server.url + path, stream=stream)


def test_truncated_empty_body_is_still_incomplete(sandbox_server: StartServer) -> None:
    server = sandbox_server(lambda r: SandboxResponse(200, b""), FaultPlan(p_truncate=1.0))
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        requests.get(server.url + "/x", timeout=5).content  # noqa: B018


def test_html_page_with_status_200(sandbox_server: StartServer) -> None:
    server = sandbox_server(app, FaultPlan(hibernating=True))
    r = requests.get(server.url + "/table", timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    assert r.content == HIBERNATION_PAGE


def test_latency_and_spikes_go_through_the_sleep_hook(sandbox_server: StartServer) -> None:
    slept: list[float] = []
    plan = FaultPlan(seed=2, latency=0.25, p_latency_spike=0.5, spike_latency=1.5)
    server = sandbox_server(app, plan, sleep=slept.append)
    with requests.Session() as s:
        for _ in range(40):
            assert s.get(server.url + "/echo", timeout=5).ok
    assert len(slept) == 40
    assert set(slept) == {0.25, 1.75}
    assert slept.count(1.75) == plan.injected["latency_spike"]


def test_real_latency_is_applied(sandbox_server: StartServer) -> None:
    server = sandbox_server(app, FaultPlan(latency=0.2))
    started = time.monotonic()
    requests.get(server.url + "/echo", timeout=5)
    assert time.monotonic() - started >= 0.2


def test_a_client_recovers_after_faults_on_the_same_session(sandbox_server: StartServer) -> None:
    plan = FaultPlan(seed=11, p_drop=0.2, p_truncate=0.2, p_5xx=0.2)
    server = sandbox_server(app, plan)
    outcomes = []
    with requests.Session() as s:
        for _ in range(60):
            try:
                r = s.get(server.url + "/table", timeout=5)
                outcomes.append("ok" if r.ok and r.json() == BIG else "5xx")
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
                outcomes.append("broken")
    assert outcomes.count("broken") == plan.injected["drop"] + plan.injected["truncate"]
    assert outcomes.count("5xx") == plan.injected["5xx"]
    assert "ok" in outcomes


def test_serve_forever_runs_until_stopped() -> None:
    server = SandboxServer(app)
    ready = threading.Event()
    thread = threading.Thread(target=server.serve_forever, args=(lambda s: ready.set(),))
    thread.start()
    assert ready.wait(5)
    assert requests.get(server.url + "/echo", timeout=5).ok
    server.stop()
    thread.join(5)
    assert not thread.is_alive()
