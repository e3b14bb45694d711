"""Paginators: small strategy objects that own the next-page token and where it goes.

A paginator never sends HTTP. The fetch loop (:func:`itsm_bridge.http.fetch_pages`) asks it for
the first request, hands it each response with the records extracted from it, and asks for the
next request until it returns ``None``. A repeated token or a cursor that does not advance raises
:class:`~itsm_bridge.errors.IncompletePullError`: an endless loop or a silently short pull are both
worse than a loud stop.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from itsm_bridge.errors import IncompletePullError

__all__ = [
    "KeysetPaginator",
    "LinkHeaderPaginator",
    "OffsetPaginator",
    "PageRequest",
    "Paginator",
    "TokenPaginator",
    "dig",
]


@dataclass(frozen=True)
class PageRequest:
    """What to send for one page: method, path (or absolute URL), query parameters, JSON body."""

    path: str
    params: Mapping[str, Any] = field(default_factory=dict)
    json: Mapping[str, Any] | None = None
    method: str = "GET"

    def with_params(self, **params: Any) -> PageRequest:
        return replace(self, params={**self.params, **params})

    def with_json(self, **values: Any) -> PageRequest:
        return replace(self, json={**(self.json or {}), **values})


def dig(data: Any, path: str | Sequence[str] | None) -> Any:
    """``dig(body, "a.b")`` -> ``body["a"]["b"]``, or ``None`` where any step is missing."""
    if path is None or path == "":
        return data
    steps = path.split(".") if isinstance(path, str) else path
    for step in steps:
        if not isinstance(data, Mapping):
            return None
        data = data.get(step)
    return data


class Paginator(Protocol):
    def first(self, request: PageRequest) -> PageRequest: ...

    def next(
        self,
        request: PageRequest,
        body: Any,
        headers: Mapping[str, str],
        records: Sequence[Any],
    ) -> PageRequest | None: ...


class OffsetPaginator:
    """``offset``/``limit`` paging (Jira Data Center ``startAt``/``maxResults``/``total``).

    With a ``total`` (in the body or a header) paging stops at the total; without one it stops at
    the first empty page. A short page is never taken as the end: row-level security shortens
    pages on several platforms.
    """

    def __init__(
        self,
        *,
        limit: int,
        offset_param: str = "offset",
        limit_param: str = "limit",
        total_path: str | None = None,
        total_header: str | None = None,
        start: int = 0,
        in_body: bool = False,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.offset_param = offset_param
        self.limit_param = limit_param
        self.total_path = total_path
        self.total_header = total_header
        self.start = start
        self.in_body = in_body
        self.offset = start
        self.total: int | None = None

    def _place(self, request: PageRequest, offset: int) -> PageRequest:
        values = {self.offset_param: offset, self.limit_param: self.limit}
        return request.with_json(**values) if self.in_body else request.with_params(**values)

    def first(self, request: PageRequest) -> PageRequest:
        self.offset = self.start
        return self._place(request, self.offset)

    def next(
        self,
        request: PageRequest,
        body: Any,
        headers: Mapping[str, str],
        records: Sequence[Any],
    ) -> PageRequest | None:
        total: Any = None
        if self.total_path:
            total = dig(body, self.total_path)
        if total is None and self.total_header:
            total = {k.lower(): v for k, v in headers.items()}.get(self.total_header.lower())
        if total is not None:
            try:
                self.total = int(total)
            except (TypeError, ValueError):
                self.total = None
        # Some servers cap maxResults below what was asked: advance by what arrived.
        served = dig(body, self.limit_param) if isinstance(body, Mapping) else None
        step = len(records) if records else 0
        if isinstance(served, int) and 0 < served < self.limit and step <= served:
            self.limit = served
        if not records:
            if self.total is not None and self.offset < self.total:
                # An empty page before the total: rows were hidden; move past the page we asked for.
                self.offset += self.limit
                return self._place(request, self.offset) if self.offset < self.total else None
            return None
        self.offset += max(step, self.limit if self.total is not None else step)
        if self.total is not None and self.offset >= self.total:
            return None
        return self._place(request, self.offset)


class KeysetPaginator:
    """Keyset paging: the next query is built from the last record of the page.

    ``build`` receives the request and the last record and returns the next request; ``key``
    extracts the comparable position of a record (for example ``(sys_updated_on, sys_id)``). Only
    an empty page ends the range. A position that does not move forward raises.
    """

    def __init__(
        self,
        build: Callable[[PageRequest, Any], PageRequest],
        key: Callable[[Any], Any],
    ) -> None:
        self.build = build
        self.key = key
        self.last_key: Any = None

    def first(self, request: PageRequest) -> PageRequest:
        self.last_key = None
        return request

    def next(
        self,
        request: PageRequest,
        body: Any,
        headers: Mapping[str, str],
        records: Sequence[Any],
    ) -> PageRequest | None:
        if not records:
            return None
        last = records[-1]
        position = self.key(last)
        if self.last_key is not None and not position > self.last_key:
            raise IncompletePullError(
                f"keyset cursor did not advance ({self.last_key!r} -> {position!r}): the source "
                "ignored the keyset condition or its ordering is unstable"
            )
        self.last_key = position
        return self.build(request, last)


class TokenPaginator:
    """Next-page token paging (Jira Cloud ``/search/jql``: ``nextPageToken`` and ``isLast``).

    Stops when ``is_last_path`` is true or the token is absent. A token seen before raises.
    """

    def __init__(
        self,
        *,
        token_path: str = "nextPageToken",
        token_param: str = "nextPageToken",
        is_last_path: str | None = "isLast",
        in_body: bool = False,
    ) -> None:
        self.token_path = token_path
        self.token_param = token_param
        self.is_last_path = is_last_path
        self.in_body = in_body
        self.seen: set[str] = set()

    def first(self, request: PageRequest) -> PageRequest:
        self.seen = set()
        return request

    def next(
        self,
        request: PageRequest,
        body: Any,
        headers: Mapping[str, str],
        records: Sequence[Any],
    ) -> PageRequest | None:
        if self.is_last_path and dig(body, self.is_last_path) is True:
            return None
        token = dig(body, self.token_path)
        if token is None or token == "":
            return None
        token = str(token)
        if token in self.seen:
            raise IncompletePullError(f"the source repeated page token {token[:40]!r}")
        self.seen.add(token)
        if self.in_body:
            return request.with_json(**{self.token_param: token})
        return request.with_params(**{self.token_param: token})


_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?([^";]+)"?')


class LinkHeaderPaginator:
    """RFC 8288 ``Link: <url>; rel="next"`` paging (ServiceNow offset links, many REST APIs)."""

    def __init__(self, rel: str = "next") -> None:
        self.rel = rel
        self.seen: set[str] = set()

    def first(self, request: PageRequest) -> PageRequest:
        self.seen = set()
        return request

    def next(
        self,
        request: PageRequest,
        body: Any,
        headers: Mapping[str, str],
        records: Sequence[Any],
    ) -> PageRequest | None:
        link = {k.lower(): v for k, v in headers.items()}.get("link")
        if not link:
            return None
        for url, rel in _LINK.findall(link):
            if self.rel in rel.split():
                if url in self.seen:
                    raise IncompletePullError(f"the source repeated next link {url[:80]!r}")
                self.seen.add(url)
                return PageRequest(path=url, method=request.method)
        return None
