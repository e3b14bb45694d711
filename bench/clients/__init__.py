"""Every client the benchmark runs, as data: name, what it is, where it runs, how to build it.

Builders are imported lazily (``module:function`` plus keyword arguments), so listing clients never
imports a peer package; the smoke test runs our connectors and the raw loops without the peers.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from bench.target import Fetch, Target

SN = ("servicenow",)
CLOUD = ("jira-cloud",)
DC = ("jira-dc",)
JIRA = ("jira-cloud", "jira-dc")


@dataclass(frozen=True)
class Client:
    name: str  # stable id used on the command line and in the JSON
    label: str  # how it pages, for the table
    group: str  # ours | baseline | peer
    scenarios: tuple[str, ...]
    builder: str  # "module:function"
    kwargs: dict[str, Any] = field(default_factory=dict)
    page: str = ""
    object_peer: bool = False  # the ">= 2x" peers: pysnc, jira, atlassian-python-api
    in_latency: bool = True  # also run in the 200 ms scenario
    why_not_in_latency: str = ""
    peer_package: str | None = None  # distribution the builder needs (skipped if absent)

    def build(self, target: Target) -> Fetch:
        module, _, func = self.builder.partition(":")
        factory = getattr(importlib.import_module(module), func)
        fetch: Fetch = factory(target, **self.kwargs)
        return fetch


_SKIP_SLOW = (
    "only slower here: same CPU cost as its bigger-page variant plus more 200 ms round trips"
)

_PARSER = "latency-bound: the parser does not matter; raw-orjson is the baseline"

CLIENTS: list[Client] = [
    # -- ours ---------------------------------------------------------------------------------
    Client("ours-pull", "itsm-bridge pull(), streamed (WorkItems validated, ids kept)", "ours",
           SN + JIRA, "bench.clients.ours:pull_stream", page="default"),
    Client("ours-pull-p10k", "itsm-bridge pull(), page_size=10000 (the Table API's maximum)",
           "ours", SN, "bench.clients.ours:pull_stream", {"page_size": 10_000}, page="10000"),
    Client("ours-pull-list", "itsm-bridge list(pull()), every WorkItem retained", "ours",
           SN + JIRA, "bench.clients.ours:pull_list", page="default",
           in_latency=False, why_not_in_latency="same requests as ours-pull"),
    Client("ours-sync", "itsm-bridge ib.sync() into a new SQLite store", "ours",
           SN + JIRA, "bench.clients.ours:sync", page="default"),
    # -- baselines ----------------------------------------------------------------------------
    Client("raw-json", "requests + json, offsets", "baseline", SN,
           "bench.clients.raw:servicenow_offsets", {"parser": "json"}, page="1000",
           in_latency=False, why_not_in_latency=_PARSER),
    Client("raw-orjson", "requests + orjson, offsets", "baseline", SN,
           "bench.clients.raw:servicenow_offsets", {"parser": "orjson"}, page="1000"),
    Client("raw-json", "requests + json, nextPageToken", "baseline", CLOUD,
           "bench.clients.raw:jira_cloud_token", {"parser": "json"}, page="100",
           in_latency=False, why_not_in_latency=_PARSER),
    Client("raw-orjson", "requests + orjson, nextPageToken", "baseline", CLOUD,
           "bench.clients.raw:jira_cloud_token", {"parser": "orjson"}, page="100"),
    Client("raw-json", "requests + json, startAt", "baseline", DC,
           "bench.clients.raw:jira_dc_start_at", {"parser": "json"}, page="1000",
           in_latency=False, why_not_in_latency=_PARSER),
    Client("raw-orjson", "requests + orjson, startAt", "baseline", DC,
           "bench.clients.raw:jira_dc_start_at", {"parser": "orjson"}, page="1000"),
    # -- ServiceNow peers ---------------------------------------------------------------------
    Client("pysnc-1000", "pysnc GlideRecord iteration, batch_size=1000 (dv=all)", "peer", SN,
           "bench.clients.servicenow_peers:pysnc", {"batch_size": 1000}, page="1000",
           object_peer=True, peer_package="pysnc"),
    Client("pysnc-default", "pysnc GlideRecord iteration, default batch (dv=all)", "peer", SN,
           "bench.clients.servicenow_peers:pysnc", {"batch_size": None}, page="100",
           object_peer=True, peer_package="pysnc",
           in_latency=False, why_not_in_latency=_SKIP_SLOW),
    Client("pysnow-1000", "pysnow get(limit=1000, offset) loop", "peer", SN,
           "bench.clients.servicenow_peers:pysnow", {"limit": 1000}, page="1000",
           peer_package="pysnow"),
    Client("pysnow-10000", "pysnow get(limit=10000, offset) loop (its default limit)", "peer",
           SN, "bench.clients.servicenow_peers:pysnow", {"limit": 10000}, page="10000",
           peer_package="pysnow"),
    # -- Jira peers ---------------------------------------------------------------------------
    Client("jira", "jira search_issues(maxResults=False)", "peer", JIRA,
           "bench.clients.jira_peers:pycontribs_jira", page="100",
           object_peer=True, peer_package="jira"),
    Client("atlassian", "atlassian JiraCloud.enhanced_jql_get_list_of_tickets", "peer", CLOUD,
           "bench.clients.jira_peers:atlassian_list", page="50", object_peer=True,
           peer_package="atlassian-python-api", in_latency=False,
           why_not_in_latency=_SKIP_SLOW),
    Client("atlassian-100", "atlassian enhanced_jql(limit=100) loop", "peer", CLOUD,
           "bench.clients.jira_peers:atlassian_loop", {"limit": 100}, page="100",
           object_peer=True, peer_package="atlassian-python-api"),
    Client("atlassian", "atlassian Jira.jql_get_list_of_tickets", "peer", DC,
           "bench.clients.jira_peers:atlassian_list", page="50", object_peer=True,
           peer_package="atlassian-python-api", in_latency=False,
           why_not_in_latency=_SKIP_SLOW),
    Client("atlassian-1000", "atlassian jql(start, limit=1000) loop", "peer", DC,
           "bench.clients.jira_peers:atlassian_loop", {"limit": 1000}, page="1000",
           object_peer=True, peer_package="atlassian-python-api"),
]  # fmt: skip


def clients_for(scenario: str) -> list[Client]:
    return [c for c in CLIENTS if scenario in c.scenarios]


def find(scenario: str, name: str) -> Client:
    for client in clients_for(scenario):
        if client.name == name:
            return client
    raise KeyError(f"no client {name!r} for scenario {scenario!r}")
