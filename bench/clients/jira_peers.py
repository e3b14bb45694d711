"""Jira peers, driven as their documentation shows for reading every issue of a JQL search.

jira 3.10.5 (pycontribs): ``JIRA(server, basic_auth)`` then ``search_issues(jql,
maxResults=False)``, which pages by itself (Cloud: nextPageToken at its fixed 100; DC: startAt).
It returns ``Issue`` objects.

atlassian-python-api 5.0.5: Cloud ``JiraCloud.enhanced_jql_get_list_of_tickets`` (server-default
page of 50) or an ``enhanced_jql(limit=100)`` loop; DC ``Jira.jql_get_list_of_tickets`` (page 50;
passing ``limit`` stops it after one page) or a ``jql(start=..., limit=1000)`` loop. Plain dicts.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from bench.target import Fetch, Target


def pycontribs_jira(t: Target) -> Fetch:
    from jira import JIRA

    if t.auth == "bearer":  # Data Center personal access token
        client = JIRA(server=t.url, token_auth=t.password)  # reads serverInfo
    else:
        client = JIRA(server=t.url, basic_auth=(t.username, t.password))

    def fetch() -> Collection[str]:
        issues = client.search_issues(t.jql, maxResults=False)
        return [issue.id for issue in issues]

    return fetch


def _atlassian(t: Target) -> Any:
    if t.scenario == "jira-cloud":
        from atlassian import JiraCloud

        return JiraCloud(url=t.url, username=t.username, password=t.password)
    from atlassian import Jira

    if t.auth == "bearer":  # Data Center personal access token
        return Jira(url=t.url, token=t.password, cloud=False)
    return Jira(url=t.url, username=t.username, password=t.password, cloud=False)


def atlassian_list(t: Target) -> Fetch:
    client = _atlassian(t)

    def fetch() -> Collection[str]:
        if t.scenario == "jira-cloud":
            issues = client.enhanced_jql_get_list_of_tickets(t.jql, fields="*all")
        else:
            issues = client.jql_get_list_of_tickets(t.jql, fields="*all")
        return [issue["id"] for issue in issues]

    return fetch


def atlassian_loop(t: Target, *, limit: int) -> Fetch:
    client = _atlassian(t)

    def fetch() -> Collection[str]:
        issues: list[dict[str, Any]] = []
        if t.scenario == "jira-cloud":
            token = None
            while True:
                data = client.enhanced_jql(t.jql, fields="*all", nextPageToken=token, limit=limit)
                issues.extend(data.get("issues", []))
                token = data.get("nextPageToken")
                if data.get("isLast") or not token:
                    break
        else:
            start = 0
            while True:
                data = client.jql(t.jql, fields="*all", start=start, limit=limit)
                page = data.get("issues", [])
                issues.extend(page)
                start += len(page)
                if not page or start >= int(data.get("total", 0)):
                    break
        return [issue["id"] for issue in issues]

    return fetch
