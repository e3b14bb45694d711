"""Paging one JQL window oldest-first, without losing records that move while it pages.

Each window is ``updated >= lo AND updated < hi ORDER BY updated ASC, id ASC`` with ``hi`` in the
past, so records updated while it pages can only *leave* it (their new ``updated`` is after
``hi``). On Data Center, ``startAt`` is an offset: when a record before the offset leaves, every
later record shifts left and one would be skipped without a trace. Every page reports ``total``,
so a drop is visible; the scan then discards that page and restarts from the last position it
handed out (keyset ``updated >= position``), and the caller drops what it already has.

Cloud's ``nextPageToken`` is an opaque position and there is no total; the connector's closing
census (ids of the window, compared with what was emitted) is the check there.

Search APIs: https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-search/
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from itsm_bridge import IncompletePullError, OffsetPaginator, PageRequest, TokenPaginator
from itsm_bridge.http import Paginator, Transport, fetch_pages
from itsm_bridge_jira.deployment import Deployment
from itsm_bridge_jira.mapping import parse_jira_datetime

__all__ = ["MAX_RESTARTS", "search_pages", "search_request", "updated_of"]

MAX_RESTARTS = 20


def search_request(
    deployment: Deployment,
    jql: str,
    fields: Sequence[str],
    page_size: int,
    expand: Sequence[str],
) -> tuple[PageRequest, Paginator]:
    body: dict[str, Any] = {"jql": jql, "fields": list(fields), "maxResults": page_size}
    paginator: Paginator
    if deployment.cloud:
        if expand:
            body["expand"] = ",".join(expand)  # quirk: a comma string on /search/jql
        paginator = TokenPaginator(in_body=True)
    else:
        if expand:
            body["expand"] = list(expand)
        paginator = OffsetPaginator(
            limit=page_size,
            offset_param="startAt",
            limit_param="maxResults",
            total_path="total",
            in_body=True,
            total_counts_hidden=False,  # maxResults is a ceiling (B10.10): move by what arrived
        )
    return PageRequest(deployment.search_path, json=body, method="POST"), paginator


def updated_of(record: Mapping[str, Any]) -> datetime | None:
    fields = record.get("fields")
    if not isinstance(fields, Mapping):
        return None
    try:
        return parse_jira_datetime(fields.get("updated"))
    except ValueError:
        return None


def search_pages(
    transport: Transport,
    deployment: Deployment,
    jql_from: Callable[[datetime | None], str],
    *,
    fields: Sequence[str],
    page_size: int,
    expand: Sequence[str] = (),
    start: datetime | None = None,
    keyset: bool = True,
    on_restart: Callable[[], None] | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Raw issue pages of ``jql_from(position)``; restarts at the position when total drops.

    ``jql_from(None)`` is the window itself; ``jql_from(t)`` the same window from ``t`` on. With
    ``keyset=False`` (id-only scans) a restart begins the window again.
    """
    position = start
    restarts = 0  # consecutive restarts that made no progress
    while True:
        restarted_at = position
        request, paginator = search_request(
            deployment, jql_from(position), fields, page_size, expand
        )
        baseline: int | None = None
        restarted = False
        pages = fetch_pages(transport, request, paginator, records_path="issues", endpoint="search")
        try:
            for raw in pages:
                data = raw.response.data if isinstance(raw.response.data, Mapping) else {}
                total = data.get("total")
                if isinstance(total, int):
                    if baseline is not None and total < baseline:
                        restarted = True  # quirk: offset pages shift when records leave
                        break
                    baseline = total if baseline is None else max(baseline, total)
                records = [r for r in raw.records if isinstance(r, dict)]
                yield records
                if keyset:
                    for record in records:
                        when = updated_of(record)
                        if when is not None and (position is None or when > position):
                            position = when
        finally:
            close = getattr(pages, "close", None)
            if callable(close):
                close()
        if not restarted:
            return
        restarts = 1 if position != restarted_at else restarts + 1
        if on_restart is not None:
            on_restart()
        if restarts > MAX_RESTARTS:
            raise IncompletePullError(
                f"the search window kept shrinking while it was paged ({restarts} restarts "
                "without progress); records change faster than they can be read, run again later",
                source=transport.connector,
            )
