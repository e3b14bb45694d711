"""Worklogs in bulk: ``/worklog/updated`` for ids, then ``/worklog/list``, never per issue.

``/worklog/updated?since=<ms>`` lists the ids of worklogs changed since a time, 1000 a page,
following ``nextPage`` until ``lastPage``; it leaves out the last minute. ``/worklog/list`` then
returns up to 1000 worklogs per request, each with its ``issueId``.

API: https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-worklogs/
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from itsm_bridge import PageRequest
from itsm_bridge.http import FollowOnce, Transport, fetch_pages
from itsm_bridge_jira.deployment import Deployment

__all__ = ["LIST_LIMIT", "NextPagePaginator", "worklogs_since"]

LIST_LIMIT = 1000


class NextPagePaginator(FollowOnce):
    """Follows the ``nextPage`` URL in the body until ``lastPage`` is true."""

    what = "worklog page"

    def next(
        self,
        request: PageRequest,
        body: Any,
        headers: Mapping[str, str],
        records: Sequence[Any],
    ) -> PageRequest | None:
        if not isinstance(body, Mapping) or body.get("lastPage") is not False:
            return None
        url = body.get("nextPage")
        if not isinstance(url, str) or not url:
            return None
        return PageRequest(self.once(url))


def worklogs_since(
    transport: Transport, deployment: Deployment, since_ms: int
) -> dict[str, list[dict[str, Any]]]:
    """Worklogs changed since ``since_ms``, grouped by issue id, each worklog once."""
    # Keyed by id: a worklog listed on two pages (the next page's ``since`` is the last one's
    # ``until``, and a server may treat it as inclusive) is still one worklog, counted once.
    ids: dict[int, None] = {}
    request = PageRequest(f"{deployment.api}/worklog/updated", params={"since": since_ms})
    for page in fetch_pages(
        transport, request, NextPagePaginator(), records_path="values", endpoint="worklog"
    ):
        ids.update((int(v["worklogId"]), None) for v in page.records if isinstance(v, Mapping))
    by_issue: dict[str, dict[str, dict[str, Any]]] = {}
    wanted = list(ids)
    for start in range(0, len(wanted), LIST_LIMIT):
        chunk = wanted[start : start + LIST_LIMIT]
        response = transport.request(
            "POST", f"{deployment.api}/worklog/list", json={"ids": chunk}, endpoint="worklog"
        )
        for worklog in response.data or ():
            if isinstance(worklog, dict) and worklog.get("issueId") is not None:
                issue = by_issue.setdefault(str(worklog["issueId"]), {})
                issue[str(worklog.get("id", len(issue)))] = worklog
    return {issue: list(logs.values()) for issue, logs in by_issue.items()}
