"""Each worker thread keeps its own session cookies (ServiceNow serialises a session's requests)."""

from __future__ import annotations

import threading

from itsm_bridge.http import Transport
from itsm_bridge.sandbox import SandboxRequest, SandboxResponse, SandboxServer, json_response


def test_threads_get_their_own_cookie_jar_and_share_the_pool() -> None:
    issued: list[str] = []
    lock = threading.Lock()

    def app(request: SandboxRequest) -> SandboxResponse:
        cookie = request.header("Cookie")
        if cookie:
            return json_response({"cookie": cookie})
        with lock:
            issued.append(f"s{len(issued)}")
            name = issued[-1]
        return json_response({"cookie": None}, headers={"Set-Cookie": f"JSESSIONID={name}"})

    with SandboxServer(app) as server, Transport(server.url) as transport:
        seen: dict[str, list[str | None]] = {}

        def worker(name: str) -> None:
            seen[name] = [transport.get("/api").data["cookie"] for _ in range(3)]

        threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert len(issued) == 3  # one server session per worker thread, not one shared
    for values in seen.values():
        assert values[0] is None
        assert values[1] is not None  # each thread keeps its own cookie
        assert values[1] == values[2]
    assert len({values[1] for values in seen.values()}) == 3
