"""The ceiling: plain ``requests`` paging the same endpoint, parsing with json or orjson.

Each loop is what a careful user would write by hand: one session, keep-alive, the largest page
the API allows, dicts only, nothing retained but the ids.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from typing import Any

import requests

from bench.target import Fetch, Target

Loads = Callable[[bytes], Any]


def _loads(parser: str) -> Loads:
    if parser == "orjson":
        import orjson

        return orjson.loads  # type: ignore[no-any-return]
    return json.loads


def _session(t: Target) -> requests.Session:
    s = requests.Session()
    if t.auth == "bearer":
        s.headers["Authorization"] = f"Bearer {t.password}"
    else:
        s.auth = (t.username, t.password)
    s.headers["Accept"] = "application/json"
    return s


def servicenow_offsets(t: Target, *, parser: str, page: int = 1000) -> Fetch:
    loads = _loads(parser)
    s = _session(t)
    url = f"{t.url}/api/now/table/{t.table}"

    def fetch() -> Collection[str]:
        ids: list[str] = []
        offset = 0
        while True:
            params = {
                "sysparm_query": "ORDERBYsys_id",
                "sysparm_limit": page,
                "sysparm_offset": offset,
            }
            r = s.get(url, params=params)
            r.raise_for_status()
            rows = loads(r.content)["result"]
            ids.extend(row["sys_id"] for row in rows)
            offset += len(rows)
            total = r.headers.get("X-Total-Count")
            if not rows or (total is not None and offset >= int(total)):
                return ids
            if total is None and len(rows) < page:
                return ids

    return fetch


def jira_cloud_token(t: Target, *, parser: str, page: int = 100) -> Fetch:
    loads = _loads(parser)
    s = _session(t)
    url = f"{t.url}/rest/api/3/search/jql"

    def fetch() -> Collection[str]:
        ids: list[str] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"jql": t.jql, "fields": "*all", "maxResults": page}
            if token:
                params["nextPageToken"] = token
            r = s.get(url, params=params)
            r.raise_for_status()
            data = loads(r.content)
            ids.extend(issue["id"] for issue in data["issues"])
            token = data.get("nextPageToken")
            if data.get("isLast") or not token:
                return ids

    return fetch


def jira_dc_start_at(t: Target, *, parser: str, page: int = 1000) -> Fetch:
    loads = _loads(parser)
    s = _session(t)
    url = f"{t.url}/rest/api/2/search"

    def fetch() -> Collection[str]:
        ids: list[str] = []
        start = 0
        while True:
            params = {"jql": t.jql, "fields": "*all", "startAt": start, "maxResults": page}
            r = s.get(url, params=params)
            r.raise_for_status()
            data = loads(r.content)
            issues = data["issues"]
            ids.extend(issue["id"] for issue in issues)
            start += len(issues)
            if not issues or start >= int(data["total"]):
                return ids

    return fetch
