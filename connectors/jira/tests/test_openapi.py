"""Every request the connector sends to Cloud, and every Cloud response the sandbox returns,
validates against Atlassian's OpenAPI document (shared/data/jira-cloud-openapi)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import requests
from itsm_bridge_jira.sandbox import JiraSandbox, make_sandbox

import itsm_bridge as ib
from itsm_bridge import Kind, RetryPolicy, Transport
from itsm_bridge.sandbox import FaultPlan, TruthItem, generate_company

from .conftest import OpenApi


def _items() -> list[TruthItem]:
    return generate_company(seed=11, scale=0.25).for_platform("jira")


def _validate_traffic(sandbox: JiraSandbox, openapi: OpenApi) -> tuple[int, int]:
    requests_checked = responses_checked = 0
    app = sandbox.app
    for method, path, query, body in app.requests:
        if path.startswith("/oauth/"):
            continue
        openapi.check_request(method, path, query, body)
        requests_checked += 1
    for method, path, status, data in app.responses:
        if path.startswith("/oauth/"):
            continue
        if openapi.check_response(method, path, status, data):
            responses_checked += 1
    return requests_checked, responses_checked


def test_connector_requests_and_sandbox_responses_follow_the_document(openapi: OpenApi) -> None:
    faults = FaultPlan(seed=5, p_429=0.05, burst_429=1, retry_after=0, p_update_during_paging=0.2)
    with make_sandbox(
        _items(), faults=faults, timezone="Asia/Kolkata", deployment="cloud"
    ) as sandbox:
        sandbox.app.record = True
        transport = Transport(
            sandbox.url,
            auth=sandbox.auth(),
            connector="jira",
            allow_insecure_http=True,
            retry=RetryPolicy(initial_wait=0.01, max_wait=0.05),
        )
        conn = ib.connect(
            "jira",
            sandbox.url,
            transport=transport,
            changelog=True,
            worklogs=True,
            page_size=50,
            **{**sandbox.connect_options(), "deployment": "cloud"},  # v3 only (auto reads v2 too)
        )
        items = list(conn.pull())
        assert len(items) == len(sandbox.visible_items())
        assert conn.approximate_count(Kind.INCIDENT) == sum(  # type: ignore[attr-defined]
            1 for i in sandbox.visible_items() if i.kind is Kind.INCIDENT
        )
        assert sorted(conn.census(Kind.PROJECT)) == sorted(
            i.id.split(":")[1] for i in items if i.kind is Kind.PROJECT
        )
        requests_checked, responses_checked = _validate_traffic(sandbox, openapi)
    paths = {path for _, path, _, _ in sandbox.app.requests}
    # The operations a Cloud pull uses, all exercised and all valid.
    assert {
        "/rest/api/3/serverInfo",
        "/rest/api/3/myself",
        "/rest/api/3/field",
        "/rest/api/3/issuetype",
        "/rest/api/3/search/jql",
        "/rest/api/3/search/approximate-count",
        "/rest/api/3/changelog/bulkfetch",
        "/rest/api/3/worklog/updated",
        "/rest/api/3/worklog/list",
    } <= paths
    assert not any(p.startswith("/rest/api/2/") for p in paths)  # never v2 on Cloud
    assert "/rest/api/3/search" not in paths  # never the removed search
    assert requests_checked > 20
    assert responses_checked == requests_checked
    statuses = Counter(status for _, _, status, _ in sandbox.app.responses)
    assert statuses[429] == faults.injected["429"] > 0  # Jira-style 429s validated too


def test_other_sandbox_endpoints_follow_the_document(openapi: OpenApi) -> None:
    with make_sandbox(_items(), timezone="America/Los_Angeles", deployment="cloud") as sandbox:
        sandbox.app.record = True
        session = requests.Session()
        session.auth = sandbox.auth()
        some = sandbox.visible_items()[0]
        issue = session.post(
            sandbox.url + "/rest/api/3/search/jql",
            json={"jql": f"key = {some.number}", "fields": ["summary"]},
            timeout=10,
        ).json()["issues"][0]
        calls: list[tuple[str, str, dict[str, Any] | None]] = [
            ("GET", "/rest/api/3/project/search?maxResults=2", None),
            ("GET", f"/rest/api/3/issue/{issue['id']}/changelog?maxResults=1", None),
            ("GET", "/rest/api/3/search/jql?jql=project%3DSHOP&fields=summary,updated", None),
            ("GET", "/rest/api/3/worklog/deleted?since=0", None),
            ("POST", "/rest/api/3/search/jql", {"jql": "order by key", "fields": ["id"]}),
            ("POST", "/rest/api/3/search/jql", {"jql": "project = SHOP AND foo = 1"}),
            ("GET", "/rest/api/3/search?jql=project%3DSHOP", None),
            ("POST", "/rest/api/3/search", {"jql": "project = SHOP"}),
        ]
        statuses = []
        for method, path, body in calls:
            response = session.request(method, sandbox.url + path, json=body, timeout=10)
            statuses.append(response.status_code)
        _validate_traffic(sandbox, openapi)
    assert statuses == [200, 200, 200, 200, 400, 400, 410, 410]
    removed = sandbox.app.responses[-1][3]
    assert "has been removed" in removed["errorMessages"][0]


def test_validator_catches_a_wrong_response(openapi: OpenApi) -> None:
    """The checker is strict: an extra property or a wrong type fails (no test that can't fail)."""
    import pytest

    with pytest.raises(AssertionError, match="isLast"):
        openapi.check_response(
            "POST", "/rest/api/3/search/jql", 200, {"issues": [], "isLast": "no"}
        )
    with pytest.raises(AssertionError, match="total"):
        openapi.check_response(
            "POST", "/rest/api/3/search/jql", 200, {"issues": [], "isLast": True, "total": 3}
        )
    with pytest.raises(AssertionError, match="undeclared query parameter"):
        openapi.check_request("GET", "/rest/api/3/search/jql", {"startAt": "50"}, None)
    with pytest.raises(AssertionError, match="body"):
        openapi.check_request("POST", "/rest/api/3/search/jql", {}, {"jql": "x", "startAt": 0})


def test_cloud_fixtures_are_valid_search_responses(openapi: OpenApi) -> None:
    import json

    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    cloud = sorted(fixtures.glob("cloud-v3-*.json"))
    assert len(cloud) == 2
    for path in cloud:
        body = json.loads(path.read_text(encoding="utf-8"))
        assert openapi.check_response("POST", "/rest/api/3/search/jql", 200, body)
