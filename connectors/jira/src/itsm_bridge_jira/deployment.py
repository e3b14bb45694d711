"""Cloud or Data Center: detected from ``serverInfo`` (``deploymentType``) or set in options.

The two speak different dialects. Cloud searches through ``/rest/api/3/search/jql`` (token pages,
no total; the classic ``/search`` answers 410 Gone there since 2025) and returns ADF rich text
and ``accountId`` users. Data Center and Server search through ``/rest/api/2/search``
(``startAt``/``maxResults``/``total``) and return wiki markup and ``name`` users.

serverInfo: https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-server-info/
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from itsm_bridge import ResponseFormatError, Transport
from itsm_bridge._time import parse_datetime
from itsm_bridge.http import HttpResponse

# Hosts that only ever serve Jira Cloud (sites and the OAuth gateway).
CLOUD_HOST_SUFFIXES = (".atlassian.net", ".jira.com", "api.atlassian.com")

__all__ = [
    "Deployment",
    "DeploymentKind",
    "ServerClock",
    "cloud_host",
    "discover",
    "server_reading",
    "server_time",
]

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


def cloud_host(base_url: str) -> bool:
    """Whether ``base_url`` is an Atlassian Cloud host (no Data Center is served there)."""
    host = (urlsplit(base_url).hostname or "").lower()
    return any(host == s.lstrip(".") or host.endswith(s) for s in CLOUD_HOST_SUFFIXES)


def discover(
    transport: Transport,
    configured: str,
    reads: Sequence[str],
    *,
    cloud_site: bool = False,
    observe: Callable[[datetime, float, float], None] | None = None,
) -> tuple[Deployment, Mapping[str, Any]]:
    """The deployment and the answers of ``reads`` (API-relative GETs), in one round trip.

    Probing serverInfo first and reading the site's metadata afterwards costs two or three round
    trips (v3 answers 404 on Data Center, then v2). When the API version is known (configured, or
    a Cloud host) every read goes out at once on it. Otherwise the v3 probe, v2 serverInfo and the
    ``reads`` on v2 go out together: ``/field``, ``/issuetype`` and ``/myself`` answer the same
    on v2 and v3 of Cloud, and v2 is all Data Center has.
    """
    if configured in ("datacenter", "server"):
        api, probe = "/rest/api/2", False
    elif configured == "cloud" or cloud_site:
        api, probe = "/rest/api/3", False
    else:
        api, probe = "/rest/api/2", True
    # While probing, a 404 on v2 is an answer too: a Cloud look-alike may serve v3 alone.
    missing_ok = (404,) if probe else ()
    with ThreadPoolExecutor(len(reads) + 2, thread_name_prefix="itsm-jira-discovery") as pool:
        sent = time.monotonic()
        v3: Future[HttpResponse] | None = None
        if probe:
            v3 = pool.submit(
                transport.get, "/rest/api/3/serverInfo", endpoint="serverInfo", accept=(404,)
            )
        info_read = pool.submit(
            transport.get, f"{api}/serverInfo", endpoint="serverInfo", accept=missing_ok
        )
        answers = {
            path: pool.submit(transport.get, f"{api}/{path}", endpoint=path, accept=missing_ok)
            for path in reads
        }
        info_response = info_read.result()
        received = time.monotonic()
        info: Any = info_response.data
        on_v3 = False
        if v3 is not None:
            probed = v3.result()
            if probed.status != 404 and isinstance(probed.data, dict):
                info, on_v3 = probed.data, True  # only Cloud serves v3: its serverInfo decides
        if info_response.status == 404 and not on_v3:
            # neither version answered: the plain read raises the typed error naming the URL
            info = transport.get(f"{api}/serverInfo", endpoint="serverInfo").data
        responses = {path: answer.result() for path, answer in answers.items()}
    data: dict[str, Any] = {}
    for path, response in responses.items():
        if response.status == 404:  # v3 alone (read there) or nothing at all (raises)
            response = transport.get(f"/rest/api/{3 if on_v3 else 2}/{path}", endpoint=path)
        data[path] = response.data
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
    now = _time_of(info)
    if now is not None and observe is not None:
        observe(now, sent, received)
    return Deployment(kind, str(info.get("version") or "") or None), data


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
    return server_reading(transport, deployment)[0]


def server_reading(transport: Transport, deployment: Deployment) -> tuple[datetime | None, float]:
    """:func:`server_time` and how coarse it is in seconds (a ``Date`` header: whole seconds)."""
    response = transport.get(f"{deployment.api}/serverInfo", endpoint="serverInfo")
    info = response.data
    reported = _time_of(info) if isinstance(info, dict) else None
    if reported is not None:
        return reported, 0.0
    dated = response.server_date
    return (dated, 1.0) if dated is not None else (None, 0.0)


class ServerClock:
    """The server's clock from one reading, carried forward on the local monotonic clock.

    Asking the server for the time costs a round trip, and a pull needs it several times per
    kind (where a window ends, when the pages were all read, where a catch-up pass ends). One
    reading taken between two local instants bounds the server's time for as long as both clocks
    tick at the same rate: at least the reading plus the time since the answer arrived
    (:meth:`earliest`, for window ends, which must not pass what the server has written), at most
    the reading plus the time since the question left (:meth:`latest`, for "every page was read
    by now"). A reading older than ``max_age`` is renewed, so drift and clock steps stay far
    below ``lag_seconds``. A server that reports no time at all leaves the client's clock.
    """

    def __init__(
        self,
        read: Callable[[], tuple[datetime | None, float]],
        *,
        max_age: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self.max_age = max_age
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._reading: tuple[datetime, float, float] | None = None  # (time, sent, received)

    def observe(
        self, reported: datetime | None, sent: float, received: float, coarse: float = 0.0
    ) -> None:
        """Remember a reading taken by a request sent at ``sent`` and answered at ``received``."""
        if reported is None:
            reported, sent = datetime.now(UTC), received  # no server clock: the client's
        # A whole-second reading may be up to `coarse` behind: widen the interval by that much.
        with self._lock:
            self._reading = (reported, sent - coarse, received)

    def _current(self) -> tuple[datetime, float, float]:
        with self._lock:
            reading = self._reading
        if reading is None or self._monotonic() - reading[2] > self.max_age:
            sent = self._monotonic()
            reported, coarse = self._read()
            self.observe(reported, sent, self._monotonic(), coarse)
            with self._lock:
                assert self._reading is not None
                reading = self._reading
        return reading

    def earliest(self) -> datetime:
        """The server's time now, or a little before it (never after)."""
        reported, _, received = self._current()
        return reported + timedelta(seconds=self._monotonic() - received)

    def latest(self, at: float | None = None) -> datetime:
        """The server's time at monotonic instant ``at`` (default now), or a little after it."""
        reported, sent, _ = self._current()
        when = self._monotonic() if at is None else at
        return reported + timedelta(seconds=when - sent)
