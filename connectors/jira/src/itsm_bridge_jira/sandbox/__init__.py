"""A faithful fake of Jira Cloud (REST v3) and Jira Data Center (REST v2) for tests and demos.

Registered in the entry-point group ``itsm_bridge.sandboxes`` as ``jira``::

    from itsm_bridge.sandbox import generate_items, make_sandbox
    with make_sandbox("jira", items, timezone="Asia/Kolkata") as sandbox:
        conn = ib.connect("jira", sandbox.url, auth=sandbox.auth(), **sandbox.connect_options())

``python -m itsm_bridge_jira.sandbox`` serves one from the command line. The account's time zone
(``timezone``) sets the offset of every datetime in responses and how JQL date literals are read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, Self
from zoneinfo import ZoneInfo

import requests

from itsm_bridge import BasicAuth, BearerAuth, OAuth2, OAuth2Token
from itsm_bridge.sandbox import FaultPlan, SandboxServer, ServedSandbox, TruthItem
from itsm_bridge_jira.sandbox.app import JiraApp, SandboxAuth

__all__ = ["JiraSandbox", "make_sandbox"]


class JiraSandbox(ServedSandbox):
    """A running fake Jira site (see the module docstring)."""

    connector = "jira"

    def __init__(
        self,
        items: Sequence[TruthItem],
        *,
        faults: FaultPlan | None = None,
        timezone: str = "UTC",
        seed: int = 0,
        deployment: Literal["cloud", "datacenter"] = "cloud",
        oauth: bool = False,
        token_ttl: float = 3600.0,
        consistency_delay: float = 0.0,
        max_results: int = 1000,
        changelog_embed_limit: int | None = None,
        extra_histories: int = 0,
        single_issue_embed_limit: int = 0,
        offset_tokens: bool = False,
        port: int = 0,
    ) -> None:
        self.deployment = deployment
        self.credentials = SandboxAuth(token_ttl=token_ttl)
        self.app = JiraApp(
            list(items),
            cloud=deployment == "cloud",
            tz=ZoneInfo(timezone),
            faults=faults,
            seed=seed,
            auth=self.credentials,
            oauth=oauth,
            consistency_delay=consistency_delay,
            max_results=max_results,
            changelog_embed_limit=changelog_embed_limit,
            extra_histories=extra_histories,
            single_issue_embed_limit=single_issue_embed_limit,
            offset_tokens=offset_tokens,
        )
        self.oauth = oauth
        self.rotations: list[OAuth2Token] = []
        self.server = SandboxServer(self.app, port=port)
        if self.app.gate is not None:
            # The gate hands 429s to the app (Jira's headers) and the rest to the server.
            self.server.faults = self.app.gate  # type: ignore[assignment]

    def start(self) -> Self:
        super().start()
        self.app.base_url = self.url  # links in responses name the port the server got
        self.app.renderer.base_url = self.url
        return self

    def auth(self, on_token: Callable[[OAuth2Token], None] | None = None) -> requests.auth.AuthBase:
        """Cloud: e-mail + API token; Data Center: a PAT; OAuth mode: a rotating 3LO grant."""
        if self.oauth:

            def remember(token: OAuth2Token) -> None:
                self.rotations.append(token)
                if on_token is not None:
                    on_token(token)

            return OAuth2(
                self.url + "/oauth/token",
                client_id=self.credentials.client_id,
                client_secret=self.credentials.client_secret,
                grant="refresh_token",
                refresh_token=self.credentials.initial_refresh_token,
                on_token=remember,
                json_body=True,
            )
        if self.deployment == "cloud":
            return BasicAuth(self.credentials.email, self.credentials.api_token)
        return BearerAuth(self.credentials.pat)

    def connect_options(self) -> dict[str, Any]:
        # No index delay unless asked for, so a short lag suffices (keeps test pulls quick).
        lag = max(0.05, 2 * self.app.index.delay)
        return {"allow_insecure_http": True, "deployment": "auto", "lag_seconds": lag}

    def visible_items(self) -> list[TruthItem]:
        return self.app.store.visible()

    def touch(self, number: str, note: str | None = None) -> TruthItem:
        """Update ``number`` now (as a user editing the issue would); returns the new version."""
        item = self.app.store.touch(number, note=note)
        # a record hidden by ACLs stays hidden (and unsearchable) when it changes
        self.app.index.change(number, None if self.app.store.is_hidden(item) else item)
        return item


def make_sandbox(
    items: Sequence[TruthItem],
    *,
    faults: FaultPlan | None = None,
    timezone: str = "UTC",
    seed: int = 0,
    **options: Any,
) -> JiraSandbox:
    """The ``itsm_bridge.sandboxes`` factory (Cloud unless ``deployment="datacenter"``)."""
    return JiraSandbox(items, faults=faults, timezone=timezone, seed=seed, **options)
