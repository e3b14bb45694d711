"""The fake instance behaves like the Table API a client must survive."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from itsm_bridge import Kind
from itsm_bridge.sandbox import FaultPlan, TruthItem, generate_items

from .conftest import SandboxFactory

AUTH = ("admin", "sandbox-admin")


def _get(url: str, **params: Any) -> requests.Response:
    return requests.get(url, params=params, auth=AUTH, timeout=10)


@pytest.fixture
def incidents() -> list[TruthItem]:
    return generate_items(Kind.INCIDENT, 40, seed=21)


def test_value_shapes_per_display_mode(sandbox: SandboxFactory, incidents: list[TruthItem]) -> None:
    box = sandbox(incidents, timezone="America/Los_Angeles")
    url = f"{box.url}/api/now/table/incident"
    fields = "number,state,assignment_group,sys_updated_on,time_worked,nonexistent_field"
    raw = _get(url, sysparm_fields=fields, sysparm_limit=1).json()["result"][0]
    assert set(raw) == {"number", "state", "assignment_group", "sys_updated_on", "time_worked"}
    assert isinstance(raw["state"], str)
    assert set(raw["assignment_group"]) == {"link", "value"}
    assert raw["assignment_group"]["link"].endswith(raw["assignment_group"]["value"])
    bare = _get(url, sysparm_fields=fields, sysparm_limit=1, sysparm_exclude_reference_link="true")
    assert isinstance(bare.json()["result"][0]["assignment_group"], str)
    shown = _get(url, sysparm_fields=fields, sysparm_limit=1, sysparm_display_value="true")
    record = shown.json()["result"][0]
    assert record["state"] in {"New", "In Progress", "On Hold", "Resolved", "Closed", "Canceled"}
    assert set(record["assignment_group"]) == {"display_value", "link"}
    both = _get(url, sysparm_fields=fields, sysparm_limit=1, sysparm_display_value="all")
    record = both.json()["result"][0]
    assert set(record["state"]) == {"display_value", "value"}
    assert set(record["assignment_group"]) == {"display_value", "value", "link"}
    stamp = record["sys_updated_on"]
    assert stamp["display_value"] != stamp["value"]  # Pacific time vs UTC
    assert record["time_worked"]["value"].startswith("1970-01-0")


def test_counts_links_and_offsets(sandbox: SandboxFactory, incidents: list[TruthItem]) -> None:
    box = sandbox(incidents)
    url = f"{box.url}/api/now/table/incident"
    page = _get(url, sysparm_limit=15, sysparm_offset=15, sysparm_fields="sys_id")
    assert page.headers["X-Total-Count"] == "40"
    links = page.headers["Link"]
    assert 'rel="first"' in links
    assert 'rel="prev"' in links
    assert 'rel="last"' in links
    assert "sysparm_offset=30" in links  # next
    assert len(page.json()["result"]) == 15
    quiet = _get(
        url,
        sysparm_limit=15,
        sysparm_no_count="true",
        sysparm_suppress_pagination_header="true",
    )
    assert "X-Total-Count" not in quiet.headers
    assert "Link" not in quiet.headers


def test_encoded_query_semantics(sandbox: SandboxFactory, incidents: list[TruthItem]) -> None:
    box = sandbox(incidents)
    url = f"{box.url}/api/now/table/incident"

    def numbers(query: str) -> set[str]:
        rows = _get(url, sysparm_query=query, sysparm_fields="number").json()["result"]
        return {r["number"] for r in rows}

    by_priority = {p: {i.number for i in incidents if i.priority == p} for p in range(1, 6)}
    assert numbers("priority<=2") == by_priority[1] | by_priority[2]
    assert numbers("priorityIN1,5") == by_priority[1] | by_priority[5]
    done = ("closed", "resolved", "cancelled")
    assert numbers("priority=1^ORpriority=2^active=false") == {
        i.number for i in incidents if i.priority <= 2 and i.status.value in done
    }
    assert numbers("priority=1^NQpriority=5") == by_priority[1] | by_priority[5]
    assert numbers("numberSTARTSWITHINC001000") == {
        i.number for i in incidents if i.number.startswith("INC001000")
    }
    assert numbers("short_descriptionLIKEvpn") == {
        i.number for i in incidents if "vpn" in i.title.lower()
    }
    assert numbers("parent_incidentISEMPTY") == {i.number for i in incidents}
    assert numbers("no_such_field=1") == {i.number for i in incidents}  # ignored, like SN
    ordered = _get(
        url, sysparm_query="ORDERBYDESCnumber", sysparm_fields="number", sysparm_limit=3
    ).json()["result"]
    assert [r["number"] for r in ordered] == sorted((i.number for i in incidents), reverse=True)[:3]
    bad = _get(url, sysparm_query="numberENDSWITH1")
    assert bad.status_code == 400
    assert bad.json()["status"] == "failure"
    assert "ENDSWITH" in bad.json()["error"]["detail"]


def test_errors_use_the_envelope(sandbox: SandboxFactory, incidents: list[TruthItem]) -> None:
    box = sandbox(incidents, faults=FaultPlan(acl_hidden_share=0.5, seed=1))
    missing = _get(f"{box.url}/api/now/table/no_such_table")
    assert missing.status_code == 400
    assert missing.json()["error"]["message"] == "Invalid table no_such_table"
    denied = requests.get(f"{box.url}/api/now/table/incident", auth=("admin", "x"), timeout=10)
    assert denied.status_code == 401
    assert denied.json() == {
        "error": {
            "message": "User Not Authenticated",
            "detail": "Required to provide Auth information",
        },
        "status": "failure",
    }
    hidden = next(iter(box.hidden_ids()))
    one = _get(f"{box.url}/api/now/table/incident/{hidden}")
    assert one.status_code == 404
    assert one.json()["error"]["message"] == "No Record found"
    # The limit is applied before ACLs: a page of 10 comes back short.
    page = _get(f"{box.url}/api/now/table/incident", sysparm_limit=10, sysparm_fields="sys_id")
    assert len(page.json()["result"]) < 10


def test_aggregate_api(sandbox: SandboxFactory, incidents: list[TruthItem]) -> None:
    box = sandbox(incidents, faults=FaultPlan(acl_hidden_share=0.5, seed=1))
    url = f"{box.url}/api/now/stats/incident"
    total = _get(url, sysparm_count="true", sysparm_min_fields="sys_updated_on").json()
    assert total["result"]["stats"]["count"] == "40"  # hidden rows are counted
    oldest = min(i.updated for i in incidents).strftime("%Y-%m-%d %H:%M:%S")
    assert total["result"]["stats"]["min"]["sys_updated_on"] == oldest
    grouped = _get(url, sysparm_count="true", sysparm_group_by="priority").json()["result"]
    counts = {g["groupby_fields"][0]["value"]: int(g["stats"]["count"]) for g in grouped}
    assert sum(counts.values()) == 40
    assert counts == {
        str(p): n for p in range(1, 6) if (n := sum(1 for i in incidents if i.priority == p))
    }
    off = sandbox(incidents, aggregate=False)
    assert _get(f"{off.url}/api/now/stats/incident", sysparm_count="true").status_code == 403


def test_dictionary_lists_fields_where_they_are_defined(
    sandbox: SandboxFactory, incidents: list[TruthItem]
) -> None:
    box = sandbox(incidents)
    url = f"{box.url}/api/now/table/sys_dictionary"
    rows = _get(url, sysparm_query="name=incident^elementINnumber,caller_id").json()["result"]
    assert [r["element"] for r in rows] == ["caller_id"]  # number is defined on task
    chain = _get(
        f"{box.url}/api/now/table/sys_db_object",
        sysparm_query="name=pm_project",
        sysparm_fields="name,super_class.name,super_class.super_class.name",
    ).json()["result"][0]
    assert chain == {
        "name": "pm_project",
        "super_class.name": "planned_task",
        "super_class.super_class.name": "task",
    }
    closed = sandbox(incidents, dictionary_readable=False)
    assert _get(f"{closed.url}/api/now/table/sys_dictionary").status_code == 403


def test_rate_limit_headers_and_429(sandbox: SandboxFactory, incidents: list[TruthItem]) -> None:
    # The sandbox counts per clock hour: four requests across hh:00:00 would start a new count.
    to_the_hour = 3600 - time.time() % 3600
    if to_the_hour < 10:
        time.sleep(to_the_hour + 0.1)
    box = sandbox(incidents, rate_limit_per_hour=3)
    url = f"{box.url}/api/now/table/incident"
    first = _get(url, sysparm_limit=1)
    assert first.headers["X-RateLimit-Limit"] == "3"
    assert int(first.headers["X-RateLimit-Reset"]) > 1_700_000_000
    _get(url, sysparm_limit=1)
    _get(url, sysparm_limit=1)
    refused = _get(url, sysparm_limit=1)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["error"]["message"] == "Rate limit exceeded"


def test_oauth_token_endpoint(sandbox: SandboxFactory, incidents: list[TruthItem]) -> None:
    box = sandbox(incidents, client_credentials_grant=False, token_ttl=60)
    token_url = f"{box.url}/oauth_token.do"
    client = {"client_id": "itsm-bridge", "client_secret": "sandbox-client-secret"}
    granted = requests.post(
        token_url,
        data={**client, "grant_type": "password", "username": "admin", "password": "sandbox-admin"},
        timeout=10,
    ).json()
    assert granted["token_type"] == "Bearer"
    assert granted["expires_in"] == 60
    headers = {"Authorization": f"Bearer {granted['access_token']}"}
    ok = requests.get(
        f"{box.url}/api/now/table/incident?sysparm_limit=1", headers=headers, timeout=10
    )
    assert ok.status_code == 200
    refreshed = requests.post(
        token_url,
        data={**client, "grant_type": "refresh_token", "refresh_token": granted["refresh_token"]},
        timeout=10,
    )
    assert refreshed.status_code == 200
    assert (
        requests.post(
            token_url, data={**client, "grant_type": "client_credentials"}, timeout=10
        ).status_code
        == 400
    )  # the instance property is off
    wrong = requests.post(
        token_url, data={**client, "client_secret": "nope", "grant_type": "password"}, timeout=10
    )
    assert wrong.status_code == 401
    box.app.expire_tokens()
    expired = requests.get(f"{box.url}/api/now/table/incident", headers=headers, timeout=10)
    assert expired.status_code == 401


def test_cancellation_and_churn(sandbox: SandboxFactory, incidents: list[TruthItem]) -> None:
    box = sandbox(incidents, max_page_rows=10, faults=FaultPlan(p_update_during_paging=0.5))
    url = f"{box.url}/api/now/table/incident"
    cancelled = _get(url, sysparm_limit=11)
    assert cancelled.status_code == 500
    assert "maximum execution time exceeded" in cancelled.json()["error"]["message"]
    _get(url, sysparm_limit=10)
    assert box.touched >= 1
    touched = [i for i in box.visible_items() if i.version > 1]
    assert touched
    assert all(i.description.endswith(".") for i in touched)


def test_hibernating_instance_answers_html(sandbox: SandboxFactory) -> None:
    box = sandbox(generate_items(Kind.INCIDENT, 3, seed=1), faults=FaultPlan(hibernating=True))
    page = _get(f"{box.url}/api/now/table/incident")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
