"""Complete changelogs for a page of issues, never silently truncated.

Embedded changelogs are partial pages (``expand=changelog`` on Cloud's enhanced search carries
at most a few dozen histories). On Cloud the bulk endpoint fetches the status history of up to
1000 issues per request; on Data Center the search embeds the changelog and any issue whose
embedded ``total`` exceeds what came back is paged through ``/issue/{id}/changelog``.

Data Center single issue: ``GET /rest/api/2/issue/{id}?expand=changelog``, then
``/issue/{id}/changelog`` where even that is capped.
Bulk: https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-changelog-bulkfetch-post
Per issue: https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-issueidorkey-changelog-get
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from itsm_bridge import IncompletePullError, OffsetPaginator, PageRequest, TokenPaginator
from itsm_bridge.http import Transport, fetch_pages
from itsm_bridge_jira.deployment import Deployment

__all__ = ["BULK_LIMIT", "attach_changelogs"]

BULK_LIMIT = 1000


def _complete(histories: list[Any]) -> dict[str, Any]:
    return {"startAt": 0, "maxResults": len(histories), "total": len(histories),
            "histories": histories}  # fmt: skip


def _bulk(transport: Transport, ids: Sequence[str]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {i: [] for i in ids}
    for start in range(0, len(ids), BULK_LIMIT):
        chunk = list(ids[start : start + BULK_LIMIT])
        request = PageRequest(
            "/rest/api/3/changelog/bulkfetch",
            json={"issueIdsOrKeys": chunk, "fieldIds": ["status"], "maxResults": 1000},
            method="POST",
        )
        paginator = TokenPaginator(in_body=True, is_last_path=None)
        for page in fetch_pages(
            transport, request, paginator, records_path="issueChangeLogs", endpoint="changelog"
        ):
            for entry in page.records:
                if not isinstance(entry, Mapping):
                    continue
                histories = entry.get("changeHistories")
                issue_id = str(entry.get("issueId"))
                if isinstance(histories, list):
                    found.setdefault(issue_id, []).extend(histories)
    return found


def _per_issue(
    transport: Transport, deployment: Deployment, issue_id: str
) -> tuple[list[Any], int | None]:
    """One issue's whole history: its single-issue GET first, then the paged endpoint."""
    data = transport.get(
        f"{deployment.api}/issue/{issue_id}",
        params={"expand": "changelog", "fields": "updated"},
        endpoint="changelog",
    ).data
    embedded = data.get("changelog") if isinstance(data, Mapping) else None
    histories = embedded.get("histories") if isinstance(embedded, Mapping) else None
    total = embedded.get("total") if isinstance(embedded, Mapping) else None
    if isinstance(histories, list) and (not isinstance(total, int) or total <= len(histories)):
        return histories, total
    # Quirk: some sites cap even the single-issue changelog; page the changelog resource.
    return _paged(transport, deployment, issue_id), total


def _paged(transport: Transport, deployment: Deployment, issue_id: str) -> list[Any]:
    request = PageRequest(f"{deployment.api}/issue/{issue_id}/changelog")
    paginator = OffsetPaginator(
        limit=100, offset_param="startAt", limit_param="maxResults", total_path="total"
    )
    histories: list[Any] = []
    for page in fetch_pages(
        transport, request, paginator, records_path="values", endpoint="changelog"
    ):
        histories.extend(page.records)
    return histories


def attach_changelogs(
    transport: Transport, deployment: Deployment, issues: Sequence[dict[str, Any]]
) -> None:
    """Give every issue in ``issues`` its complete ``changelog`` (mutates the raw dicts)."""
    if not issues:
        return
    if deployment.cloud:
        by_id = _bulk(transport, [str(i["id"]) for i in issues])
        for issue in issues:
            fetched = by_id.get(str(issue["id"]), [])
            fetched.sort(key=lambda h: str(h.get("created") or "") if isinstance(h, Mapping)
                           else "")  # fmt: skip
            issue["changelog"] = _complete(fetched)
        return
    for issue in issues:
        embedded = issue.get("changelog")
        histories = embedded.get("histories") if isinstance(embedded, Mapping) else None
        total = embedded.get("total") if isinstance(embedded, Mapping) else None
        if isinstance(histories, list) and (not isinstance(total, int) or total <= len(histories)):
            issue["changelog"] = _complete(histories)
            continue
        # Quirk: the changelog embedded in a search is one partial page; fetch the whole history.
        full, latest_total = _per_issue(transport, deployment, str(issue["id"]))
        total = latest_total if isinstance(latest_total, int) else total
        if isinstance(total, int) and len(full) < total:
            raise IncompletePullError(
                f"changelog of issue {issue.get('key')} has {total} entries but only "
                f"{len(full)} could be read",
                source=transport.connector,
                record=str(issue.get("key")),
            )
        issue["changelog"] = _complete(full)
