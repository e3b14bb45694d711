"""Paginators: small strategy objects that own the next-page token and where it goes.

A paginator never sends HTTP. The fetch loop (:func:`itsm_bridge.http.fetch_pages`) asks it for
the first request, hands it each response with the records extracted from it, and asks for the
next request until it returns ``None``. A repeated token or a cursor that does not advance raises
:class:`~itsm_bridge.errors.IncompletePullError`: an endless loop or a silently short pull are both
worse than a loud stop.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from itsm_bridge.errors import IncompletePullError

__all__ = [
    "FollowOnce",
    "KeysetPaginator",
    "LinkHeaderPaginator",
    "OffsetPaginator",
    "PageRequest",
    "Paginator",
    "TokenPaginator",
    "dig",
    "shape_of",
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


def shape_of(body: Any, found: Any) -> str:
    """What was found where a list of records should be, for an error message: its type, or
    when nothing was there, the keys the answer has instead (an error object, say), never the
    values."""
    if found is not None:
        return type(found).__name__
    if isinstance(body, Mapping):
        keys = [str(k) for k in list(body)[:8]]
        return f"nothing (the answer's keys: {', '.join(keys) or 'none'})"
    if body is None:
        return "an empty body"
    return f"nothing (the answer is {type(body).__name__})"


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
    """``offset``/``limit`` paging (ServiceNow ``sysparm_offset``, Jira DC ``startAt``).

    Where paging ends:

    - with a total (``total_path`` in the body or ``total_header``), at the total: offsets count
      rows the source skipped for us (row-level security shortens pages), so a short or even
      empty page moves a whole ``limit`` on. ``total_counts_hidden=False`` is for sources whose
      total counts only what they serve (Jira): there a short page is not a gap of hidden rows
      (``maxResults`` is a ceiling), the offset moves by what arrived, and an empty page ends
      the query (its caller compares what arrived with the total);
    - without a total, at the first empty page, and only there: a short page is not the end,
      and the offset moves by the records that arrived, so nothing is skipped.

    A server that serves fewer rows than asked and says so (Jira echoes ``maxResults``; the echo
    is read at ``served_limit_path``, by default the limit parameter's name) is taken at its word
    and later pages ask for that many.
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
        served_limit_path: str | None = None,
        total_counts_hidden: bool = True,
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
        self.served_limit_path = served_limit_path or limit_param
        # False where the total counts only what the source serves (Jira): a short page is then
        # not a gap of hidden rows, and the offset moves by what arrived.
        self.total_counts_hidden = total_counts_hidden
        self.offset = start
        self.total: int | None = None
        self._last_page: tuple[int, Any, Any] | None = None

    def _place(self, request: PageRequest) -> PageRequest:
        values = {self.offset_param: self.offset, self.limit_param: self.limit}
        return request.with_json(**values) if self.in_body else request.with_params(**values)

    def first(self, request: PageRequest) -> PageRequest:
        self.offset = self.start
        self.total = None
        self._last_page = None
        return self._place(request)

    def next(
        self,
        request: PageRequest,
        body: Any,
        headers: Mapping[str, str],
        records: Sequence[Any],
    ) -> PageRequest | None:
        self._read_total(body, headers)
        self._read_served_limit(body, len(records))
        self._refuse_a_repeated_page(records)
        if self.total is None:
            if not records:
                return None
            self.offset += len(records)
        elif not self.total_counts_hidden:
            if not records:
                return None  # the caller compares what arrived with the total (shortfall)
            self.offset += len(records)
            if self.offset >= self.total:
                return None
        else:
            self.offset += max(len(records), self.limit)
            if self.offset >= self.total:
                return None
        return self._place(request)

    def _refuse_a_repeated_page(self, records: Sequence[Any]) -> None:
        # Quirk: a server that ignores the offset parameter serves page one forever; with a total
        # the loop would end, dedupe would hide the copies, and the pull would be silently short.
        page = (len(records), records[0], records[-1]) if records else None
        if page is not None and page == self._last_page:
            raise IncompletePullError(
                f"the source served the same page again at {self.offset_param}={self.offset}: "
                "it ignores the offset parameter"
            )
        self._last_page = page

    def _read_total(self, body: Any, headers: Mapping[str, str]) -> None:
        total: Any = dig(body, self.total_path) if self.total_path else None
        if total is None and self.total_header:
            total = _header(headers, self.total_header)
        if total is not None:
            with contextlib.suppress(TypeError, ValueError):  # else keep the last one read
                self.total = int(total)

    def _read_served_limit(self, body: Any, arrived: int) -> None:
        served = dig(body, self.served_limit_path)
        if isinstance(served, int) and 0 < served < self.limit and arrived <= served:
            self.limit = served


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


class FollowOnce:
    """Base for paginators that follow what the source hands out (a token, a URL): each may be
    followed once per pull, since a source that hands one out again would loop forever."""

    what = "page token"

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def first(self, request: PageRequest) -> PageRequest:
        self.seen = set()
        return request

    def once(self, token: str) -> str:
        """``token``, remembered; raises :class:`IncompletePullError` if it came before."""
        if token in self.seen:
            raise IncompletePullError(f"the source repeated {self.what} {token[:80]!r}")
        self.seen.add(token)
        return token


class TokenPaginator(FollowOnce):
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
        super().__init__()
        self.token_path = token_path
        self.token_param = token_param
        self.is_last_path = is_last_path
        self.in_body = in_body

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
        token = self.once(str(token))
        if self.in_body:
            return request.with_json(**{self.token_param: token})
        return request.with_params(**{self.token_param: token})


_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?([^";]+)"?')


class LinkHeaderPaginator(FollowOnce):
    """RFC 8288 ``Link: <url>; rel="next"`` paging (ServiceNow offset links, many REST APIs)."""

    what = "next link"

    def __init__(self, rel: str = "next") -> None:
        super().__init__()
        self.rel = rel

    def next(
        self,
        request: PageRequest,
        body: Any,
        headers: Mapping[str, str],
        records: Sequence[Any],
    ) -> PageRequest | None:
        link = _header(headers, "link")
        if not link:
            return None
        for url, rel in _LINK.findall(link):
            if self.rel in rel.split():
                return PageRequest(path=self.once(url), method=request.method)
        return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None
