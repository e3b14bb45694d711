"""What a client process is handed: where the sandbox is, how to log in, and what to expect."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from typing import Any

# Scenario names used throughout: one per platform flavour.
SCENARIOS = ("servicenow", "jira-cloud", "jira-dc")

Fetch = Callable[[], Collection[str]]


@dataclass(frozen=True)
class Target:
    scenario: str  # servicenow | jira-cloud | jira-dc
    url: str
    username: str  # empty for bearer tokens
    password: str  # the password, API token or (auth="bearer") the token
    connector: str  # connector name for ib.connect
    kind: str  # the itsm-bridge kind pulled (incident, task, ...)
    n: int  # records the sandbox serves; every client must receive exactly these
    latency: float  # injected server latency per request, seconds
    workdir: str  # scratch space (SQLite stores)
    auth: str = "basic"  # basic | bearer (Jira Data Center personal access tokens)
    connect_options: dict[str, Any] = field(default_factory=dict)
    jql: str = ""  # Jira: a JQL matching every served issue
    table: str = "incident"  # ServiceNow table

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def platform(self) -> str:
        return "servicenow" if self.scenario == "servicenow" else "jira"
