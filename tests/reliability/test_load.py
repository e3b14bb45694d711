"""Load: eight sources syncing at once through ``itsm-bridge sync --config``, within budgets.

Four sandboxes (two ServiceNow, two Jira), each read by two sources (two teams configuring the
same instance): eight sources, four hosts. Every source is configured with ``rate`` requests per
second and ``max_concurrency``; sources on one host share that host's governor, so the budget is
the host's, not the source's. Checked on the server side, from what each sandbox saw:

- the most requests ever in flight at once never exceeds the host's ``max_concurrency``
  (``SandboxServer.max_in_flight``), although ServiceNow pulls run parallel ranges and two
  sources hit each host together;
- arrivals in any two-second window stay within ``rate * (2 + 0.2) + 1``: the governor spaces
  sends 1/rate apart on a shared timeline, so a window holds at most ``rate * 2 + 1`` sends; a
  send can reach the server up to 0.2 s late (an oversleeping thread on a loaded machine, the
  loopback), which can bunch it with the next ones. Unthrottled, a ServiceNow host sees
  hundreds of requests in two seconds;
- every source completes and stores every visible record of its host exactly once.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from reliability_kit import FIGURES, SCALE

from itsm_bridge.cli import main
from itsm_bridge.sandbox import SandboxRequest, SandboxResponse, generate_company, make_sandbox
from itsm_bridge.sync import Store

RATE = 30.0
CONCURRENCY = 2
WINDOW = 2.0
LATE = 0.2  # seconds a send may reach the server after its slot (scheduling, loopback)


class Arrivals:
    """Server-side arrival times of every request a sandbox's app answered."""

    def __init__(self, app: Callable[[SandboxRequest], SandboxResponse], clock: Any) -> None:
        self.app = app
        self.clock = clock
        self.times: list[float] = []
        self.lock = threading.Lock()

    def __call__(self, request: SandboxRequest) -> SandboxResponse:
        with self.lock:
            self.times.append(self.clock())
        return self.app(request)

    def busiest(self, window: float) -> int:
        times = sorted(self.times)
        return max(
            (bisect.bisect_right(times, t + window) - i for i, t in enumerate(times)), default=0
        )


@pytest.mark.soak
@pytest.mark.seed(8501)
def test_eight_sources_at_once_stay_within_each_hosts_budget(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    scale = 0.08 if SCALE.name != "full" else 0.8
    sandboxes: list[Any] = []
    arrivals: list[Arrivals] = []
    sources: list[str] = []
    config = [f'store = "{tmp_path / "load.db"}"']
    for n, platform in enumerate(["servicenow", "jira", "servicenow", "jira"]):
        items = generate_company(seed + n, scale=scale * (4 if platform == "jira" else 1))
        sandbox = make_sandbox(platform, items.for_platform(platform), seed=seed + n)
        watch = Arrivals(sandbox.server.app, time.monotonic)  # type: ignore[attr-defined]
        sandbox.server.app = watch  # type: ignore[attr-defined]
        sandbox.start()
        sandboxes.append(sandbox)
        arrivals.append(watch)
        auth = sandbox.auth()
        monkeypatch.setenv(f"LOAD_SECRET_{n}", auth._password)  # type: ignore[attr-defined]
        for team in ("a", "b"):
            name = f"{platform}-{n}-{team}"
            sources.append(name)
            config += [
                "[[source]]",
                f'name = "{name}"',
                f'connector = "{platform}"',
                f'url = "{sandbox.url}"',
                f'user = "{auth.username}"',  # type: ignore[attr-defined]
                f'password_env = "LOAD_SECRET_{n}"',
                "[source.options]",
                f"rate = {RATE}",
                f"max_concurrency = {CONCURRENCY}",
                "page_size = 100",
                "lag_seconds = 1",
            ]
    path = tmp_path / "itsm.toml"
    path.write_text("\n".join(config) + "\n")
    try:
        code = main(["sync", "--config", str(path), "--no-progress"])
        err = capsys.readouterr().err
    finally:
        for sandbox in sandboxes:
            sandbox.stop()
    assert code in (0, 5), err[-3000:]  # 5: ServiceNow completeness with ACL-hidden rows only
    requests = 0
    for sandbox, watch in zip(sandboxes, arrivals):
        server = sandbox.server
        requests += server.requests
        assert server.max_in_flight <= CONCURRENCY, (sandbox.connector, server.max_in_flight)
        busiest = watch.busiest(WINDOW)
        assert busiest <= RATE * (WINDOW + LATE) + 1, (sandbox.connector, busiest)
        assert server.requests >= 20, "too few requests to prove a budget"
    with Store(tmp_path / "load.db") as store:
        for n, sandbox in enumerate(sandboxes):
            expected = sorted(item.number for item in sandbox.visible_items())
            for name in sources[2 * n : 2 * n + 2]:
                keys = sorted(item.key for item in store.items(sources=[name]))
                assert keys == expected, name
        runs = store.runs(limit=100)
    assert sorted(run.source for run in runs) == sorted(sources)
    assert all(run.status == "ok" for run in runs), [(r.source, r.status) for r in runs]
    FIGURES.note("load.sources", len(sources))
    FIGURES.add("load.requests", requests)
    FIGURES.note("load.max_in_flight_per_host", [s.server.max_in_flight for s in sandboxes])
    FIGURES.note("load.busiest_2s_window", [w.busiest(WINDOW) for w in arrivals])
