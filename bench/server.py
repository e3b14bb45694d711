"""The sandbox host: one process serving one scenario's data on loopback for every client.

``python bench/server.py SPEC_JSON`` generates the seeded records, starts the connector's sandbox
(found through the ``itsm_bridge.sandboxes`` entry points) with the requested per-request latency,
prints one JSON line (URL, credentials, expectations) and then answers commands on stdin:
``stats`` prints its request count and CPU seconds; ``quit`` or end of input stops it. Running the
server in its own process keeps its CPU and memory out of every client's figures.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from bench import measure
from itsm_bridge.sandbox import FaultPlan, credentials_of, generate_items, make_sandbox
from itsm_bridge.schema import Kind

# What each scenario serves: connector, kind, sandbox options.
SCENARIO_KIND = {"servicenow": Kind.INCIDENT, "jira-cloud": Kind.TASK, "jira-dc": Kind.TASK}


def credentials(auth: Any) -> tuple[str, str, str]:
    """``(scheme, user, secret)`` of the sandbox's credentials: peers need them as strings."""
    scheme, user, secret = credentials_of(auth)
    if scheme not in ("basic", "bearer"):
        raise TypeError(f"the sandbox's auth {type(auth).__name__} is neither Basic nor Bearer")
    return scheme, user, secret


def build(spec: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    scenario = spec["scenario"]
    kind = SCENARIO_KIND[scenario]
    platform = "servicenow" if scenario == "servicenow" else "jira"
    items = generate_items(kind, spec["n"], seed=spec.get("seed", 7), platform=platform)
    faults = FaultPlan(seed=1, latency=spec["latency"]) if spec.get("latency") else None
    sandbox = _make(scenario, platform, items, faults, spec.get("factory"))
    del items
    sandbox.start()
    # A sandbox that can render its records ahead does so now, untimed: the first client to
    # read them must not pay for it (a real instance serves from its own caches and hardware).
    warm = getattr(getattr(sandbox, "app", None), "warm", None)
    if callable(warm):
        warm()
    scheme, user, password = credentials(sandbox.auth())
    options = {
        k: v for k, v in sandbox.connect_options().items() if isinstance(v, (str, int, float, bool))
    }
    info = {
        "url": sandbox.url,
        "username": user,
        "password": password,
        "auth": scheme,
        "connector": platform,
        "kind": kind.value,
        "n": len(sandbox.visible_items()),
        "connect_options": options,
        "jql": _jql(sandbox) if platform == "jira" else "",
        "pid": os.getpid(),
    }
    return sandbox, info


def _make(
    scenario: str, platform: str, items: Any, faults: FaultPlan | None, factory: str | None = None
) -> Any:
    if factory:  # "module:function": another sandbox factory (a third-party connector's)
        module, _, func = factory.partition(":")
        return getattr(importlib.import_module(module), func)(items, faults=faults)
    if scenario == "jira-dc":
        from itsm_bridge_jira.sandbox import make_sandbox as make_jira  # DC flavour is jira-only

        return make_jira(items, faults=faults, deployment="datacenter")
    if scenario == "jira-cloud":
        from itsm_bridge_jira.sandbox import make_sandbox as make_jira

        return make_jira(items, faults=faults, deployment="cloud")
    return make_sandbox(platform, items, faults=faults)


def _jql(sandbox: Any) -> str:
    """Every served issue, bounded by project (Cloud refuses unbounded JQL), in id order."""
    projects = sorted({item.number.rsplit("-", 1)[0] for item in sandbox.visible_items()})
    return f"project in ({', '.join(projects)}) ORDER BY id ASC"


def request_count(sandbox: Any) -> int | None:
    for holder in (sandbox, getattr(sandbox, "server", None), getattr(sandbox, "_server", None)):
        value = getattr(holder, "requests", None)
        if isinstance(value, int):
            return value
    return None


def main(argv: list[str]) -> int:
    measure.pin("server")
    spec = json.loads(argv[0])
    sandbox, info = build(spec)
    print(json.dumps(info), flush=True)
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                t = os.times()
                stats = {"requests": request_count(sandbox), "cpu": t.user + t.system}
                print(json.dumps(stats), flush=True)
            elif command == "quit":
                break
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
