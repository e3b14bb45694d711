"""Everything that touches HTTP: transport, rate governor, auth, paginators and redaction.

Connectors never import ``requests`` or ``tenacity`` themselves; they describe requests and hand
them to :class:`Transport`, through :func:`fetch_pages` for the common loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from itsm_bridge.errors import RequestContext, ResponseFormatError
from itsm_bridge.http.auth import BasicAuth, BearerAuth, OAuth2, OAuth2Token
from itsm_bridge.http.governor import RateGovernor, governor_for, parse_retry_after
from itsm_bridge.http.paginators import (
    FollowOnce,
    KeysetPaginator,
    LinkHeaderPaginator,
    OffsetPaginator,
    PageRequest,
    Paginator,
    TokenPaginator,
    dig,
    shape_of,
)
from itsm_bridge.http.redaction import redact_headers, redact_text, redact_url, register_secret
from itsm_bridge.http.transport import HttpResponse, RetryPolicy, Transport, TransportStats

__all__ = [
    "BasicAuth",
    "BearerAuth",
    "FollowOnce",
    "HttpResponse",
    "KeysetPaginator",
    "LinkHeaderPaginator",
    "OAuth2",
    "OAuth2Token",
    "OffsetPaginator",
    "PageRequest",
    "Paginator",
    "RateGovernor",
    "RawPage",
    "RetryPolicy",
    "TokenPaginator",
    "Transport",
    "TransportStats",
    "dig",
    "fetch_pages",
    "governor_for",
    "parse_retry_after",
    "redact_headers",
    "redact_text",
    "redact_url",
    "register_secret",
    "shape_of",
]


@dataclass(frozen=True)
class RawPage:
    """One page of raw records and the response it came from."""

    records: list[Any]
    response: HttpResponse


def fetch_pages(
    transport: Transport,
    request: PageRequest,
    paginator: Paginator,
    *,
    records_path: str | None,
    endpoint: str | None = None,
) -> Iterator[RawPage]:
    """The paging loop: send, extract records, ask the paginator for the next request.

    ``records_path`` is where the list of records sits in the body (``"result"``,
    ``"issues"``; ``None`` for a bare list). Anything but a list there, a missing one included
    (an error object answered with status 200), is a :class:`ResponseFormatError`, never an
    empty page by accident: an empty page is ``[]``.
    """
    current: PageRequest | None = paginator.first(request)
    while current is not None:
        response = transport.request(
            current.method,
            current.path,
            params=current.params,
            json=current.json,
            endpoint=endpoint,
        )
        records = dig(response.data, records_path)
        if not isinstance(records, list):
            raise ResponseFormatError(
                f"expected a list at {records_path!r}, got {shape_of(response.data, records)}",
                context=RequestContext(
                    connector=transport.connector,
                    endpoint=endpoint,
                    method=current.method,
                    url=response.url,  # already redacted by the transport
                    status=response.status,
                ),
            )
        yield RawPage(records, response)
        current = paginator.next(current, response.data, response.headers, records)
