"""Cloud or Data Center: detected from ``serverInfo`` (``deploymentType``) or set in options.

The two speak different dialects. Cloud searches through ``/rest/api/3/search/jql`` (token pages,
no total; the classic ``/search`` answers 410 Gone there since 2025) and returns ADF rich text
and ``accountId`` users. Data Center and Server search through ``/rest/api/2/search``
(``startAt``/``maxResults``/``total``) and return wiki markup and ``name`` users.

serverInfo: https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-server-info/
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

from itsm_bridge import EndpointNotFoundError, ResponseFormatError, Transport
from itsm_bridge._time import parse_datetime

__all__ = ["Deployment", "DeploymentKind", "detect", "server_time"]

DeploymentKind = Literal["cloud", "datacenter"]


@dataclass(frozen=True)
class Deployment:
    kind: DeploymentKind
    version: str | None = None

    @property
    def cloud(self) -> bool:
        return self.kind == "cloud"

    @property
    def api(self) -> str:
        return "/rest/api/3" if self.cloud else "/rest/api/2"

    @property
    def search_path(self) -> str:
        # Cloud removed /rest/api/{2,3}/search (410 Gone); Data Center never had /search/jql.
        return f"{self.api}/search/jql" if self.cloud else f"{self.api}/search"


def _kind_of(info: Any) -> DeploymentKind:
    deployment = str((info or {}).get("deploymentType") or "").strip().lower()
    return "cloud" if deployment == "cloud" else "datacenter"


def detect(transport: Transport, configured: str = "auto") -> tuple[Deployment, datetime | None]:
    """The deployment, and the server's clock when serverInfo was read (None if not reported).

    ``/rest/api/3/serverInfo`` first: Cloud answers it, Data Center (v2 only) answers 404 and is
    then asked on v2. A configured deployment goes straight to its own version.
    """
    info: Any = None
    if configured in ("auto", "cloud"):
        try:
            info = transport.get("/rest/api/3/serverInfo", endpoint="serverInfo").data
        except EndpointNotFoundError:
            if configured == "cloud":
                raise
    if info is None:
        info = transport.get("/rest/api/2/serverInfo", endpoint="serverInfo").data
    if not isinstance(info, dict):
        raise ResponseFormatError(
            "serverInfo did not answer a JSON object", source=transport.connector
        )
    if configured == "cloud":
        kind: DeploymentKind = "cloud"
    elif configured in ("datacenter", "server"):
        kind = "datacenter"
    else:
        kind = _kind_of(info)
    return Deployment(kind, str(info.get("version") or "") or None), _time_of(info)


def _time_of(info: dict[str, Any]) -> datetime | None:
    value = info.get("serverTime")
    if not isinstance(value, str):
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        return None


def server_time(transport: Transport, deployment: Deployment) -> datetime | None:
    """The server's clock now: ``serverTime``, else the response's ``Date`` header.

    Windows close on the server's clock, never the client's, so a skewed laptop or container
    clock cannot move a window's end past records the server has not finished writing.
    """
    response = transport.get(f"{deployment.api}/serverInfo", endpoint="serverInfo")
    info = response.data
    reported = _time_of(info) if isinstance(info, dict) else None
    if reported is not None:
        return reported
    header = response.headers.get("Date")
    if not header:
        return None
    try:
        return parsedate_to_datetime(header).astimezone(UTC)
    except (TypeError, ValueError, IndexError):
        return None
