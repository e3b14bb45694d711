"""The connector against its sandbox: deployments, kinds, fields by name, changelogs, worklogs,
offset shifts, eventual consistency, rate-limit headers, OAuth rotation and errors."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime

import pytest
from itsm_bridge_jira import JiraConnector
from itsm_bridge_jira.sandbox import JiraSandbox, make_sandbox

import itsm_bridge as ib
from itsm_bridge import (
    ConfigurationError,
    EffortSource,
    InvalidOptionsError,
    Kind,
    OAuth2Token,
    RateGovernor,
    RetryPolicy,
    Transport,
)
from itsm_bridge.sandbox import FaultPlan, TruthItem, generate_company


@pytest.fixture(scope="module")
def company_items() -> list[TruthItem]:
    return generate_company(seed=7, scale=0.4).for_platform("jira")


def connect(sandbox: JiraSandbox, **options: object) -> JiraConnector:
    transport = Transport(
        sandbox.url,
        auth=sandbox.auth(),
        connector="jira",
        allow_insecure_http=True,
        retry=RetryPolicy(max_attempts=8, initial_wait=0.01, max_wait=0.1),
        governor=RateGovernor(max_concurrency=4, min_rate=40.0),
    )
    conn = ib.connect(
        "jira", sandbox.url, transport=transport, **{**sandbox.connect_options(), **options}
    )
    assert isinstance(conn, JiraConnector)
    return conn


def paths(sandbox: JiraSandbox) -> Counter[str]:
    return Counter(path for _, path, _, _ in sandbox.app.requests)


@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_detects_the_deployment_and_maps_kinds(
    company_items: list[TruthItem], deployment: str
) -> None:
    with make_sandbox(company_items, deployment=deployment, timezone="Asia/Kolkata") as sandbox:
        sandbox.app.record = True
        conn = connect(sandbox)
        got = list(conn.pull())
        site = conn.site()
        seen = paths(sandbox)
    assert site.deployment.kind == deployment
    assert site.account_time_zone == "Asia/Kolkata"
    truth = {i.number: i for i in company_items}
    assert Counter(i.kind for i in got) == Counter(i.kind for i in company_items)
    for item in got:
        assert item.kind is truth[item.key].kind
        assert item.extra["issue_type"] == (truth[item.key].issue_type or item.extra["issue_type"])
    # /field and /issuetype are read once per site, whatever the number of kinds pulled; at a
    # host that is not Atlassian's, detection reads them on v2 (the same on Cloud) while it
    # probes v3, all in one round trip.
    assert seen["/rest/api/2/field"] == 1
    assert seen["/rest/api/2/issuetype"] == 1
    assert seen["/rest/api/3/serverInfo"] == 1
    assert "/rest/api/3/field" not in seen
    if deployment == "cloud":
        assert seen["/rest/api/3/search/jql"] > 0
        assert "/rest/api/2/search" not in seen
    else:
        assert seen["/rest/api/2/search"] > 0
        assert "/rest/api/3/search/jql" not in seen


@pytest.mark.parametrize(
    ("deployment", "url", "api"),
    [
        ("cloud", None, "/rest/api/3"),
        ("datacenter", None, "/rest/api/2"),
        ("auto", "https://acme.atlassian.net", "/rest/api/3"),
        ("auto", "https://api.atlassian.com/ex/jira/abc", "/rest/api/3"),
    ],
)
def test_discovery_reads_everything_at_once_on_a_known_api(
    deployment: str, url: str | None, api: str
) -> None:
    import responses

    base = url or "https://jira.example.com"
    kind = "Cloud" if api.endswith("3") else "DataCenter"
    with responses.RequestsMock() as mock:
        mock.get(
            f"{base}{api}/serverInfo",
            json={"deploymentType": kind, "serverTime": "2026-01-05T10:00:00.000+0000"},
        )
        mock.get(f"{base}{api}/myself", json={"timeZone": "Europe/Paris"})
        mock.get(f"{base}{api}/field", json=[])
        mock.get(f"{base}{api}/issuetype", json=[{"id": "1", "name": "Task"}])
        conn = ib.connect("jira", base, deployment=deployment)
        site = conn.site()  # type: ignore[attr-defined]
        assert len(mock.calls) == 4  # no probe of the other version
    assert site.deployment.kind == ("cloud" if api.endswith("3") else "datacenter")
    assert site.account_time_zone == "Europe/Paris"


def test_a_cloud_look_alike_serving_v3_alone_is_discovered_on_v3() -> None:
    """deployment="auto" at a host that is not Atlassian's reads v2 while it probes v3; a site
    that answers v2 with 404 (HTML, as a servlet container would) is read on v3 instead."""
    import responses

    base = "https://jira.example.com"
    with responses.RequestsMock() as mock:
        v3 = f"{base}/rest/api/3"
        mock.get(
            f"{v3}/serverInfo",
            json={"deploymentType": "Cloud", "serverTime": "2026-01-05T10:00:00.000+0000"},
        )
        for path in ("serverInfo", "myself", "field", "issuetype"):
            mock.get(f"{base}/rest/api/2/{path}", status=404, body="<html>Not found</html>",
                     content_type="text/html")  # fmt: skip
        mock.get(f"{v3}/myself", json={"timeZone": "Europe/Paris"})
        mock.get(f"{v3}/field", json=[])
        mock.get(f"{v3}/issuetype", json=[{"id": "1", "name": "Task"}])
        site = ib.connect("jira", base).site()  # type: ignore[attr-defined]
    assert site.deployment.kind == "cloud"
    assert site.account_time_zone == "Europe/Paris"


def test_a_site_answering_neither_version_is_a_typed_error() -> None:
    import responses

    base = "https://jira.example.com"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for api in ("2", "3"):
            for path in ("serverInfo", "myself", "field", "issuetype"):
                mock.get(f"{base}/rest/api/{api}/{path}", status=404, body="<html>no</html>",
                         content_type="text/html")  # fmt: skip
        with pytest.raises(ib.EndpointNotFoundError, match="serverInfo"):
            ib.connect("jira", base).site()  # type: ignore[attr-defined]


@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_parents_teams_points_investment_and_text(
    company_items: list[TruthItem], deployment: str
) -> None:
    with make_sandbox(company_items, deployment=deployment) as sandbox:
        conn = connect(sandbox)
        got = {i.key: i for i in conn.pull()}
    truth = {i.number: i for i in company_items}
    children = [t for t in company_items if t.parent and t.parent in truth]
    assert children
    for child in children:
        # Cloud: the parent field; Data Center: parent for sub-tasks, Epic Link for stories.
        assert got[child.number].parent_key == child.parent
    for key, item in got.items():
        assert item.team == truth[key].team  # from the "Team" field, resolved by name
        assert item.service == truth[key].service  # first component
        assert item.title == truth[key].title
        first_line = truth[key].description.strip().split("\n")[0]
        if first_line:
            assert item.description is not None
            assert item.description.startswith(first_line)
        else:
            assert item.description is None
    epics = [
        t for t in company_items if t.kind is Kind.PROJECT and t.investment.get("category_raw")
    ]
    assert epics
    for epic in epics:
        investment = got[epic.number].extra["investment"]
        assert investment["category_raw"] == epic.investment["category_raw"]
        assert investment["portfolio_category"] in ("run", "grow", "transform")
    stories = [t for t in company_items if t.issue_type == "Story"]
    assert all("story_points" in got[s.number].extra for s in stories)
    for key, item in got.items():
        t = truth[key]
        if t.effort_hours:
            assert item.effort_source is EffortSource.MEASURED
            assert item.effort_hours == pytest.approx(t.effort_hours, abs=0.01)
        elif t.estimate_hours:
            assert item.effort_source is EffortSource.ESTIMATED
            assert item.effort_hours == pytest.approx(t.estimate_hours, abs=0.01)


def test_team_from_component_or_project(company_items: list[TruthItem]) -> None:
    with make_sandbox(company_items[:40]) as sandbox:
        by_component = {i.key: i for i in connect(sandbox, team_from="component").pull()}
        by_project = {i.key: i for i in connect(sandbox, team_from="project").pull()}
    for item in company_items[:40]:
        assert by_component[item.number].team == (item.service or by_project[item.number].team)
        assert by_project[item.number].team == by_project[item.number].extra.get(
            "project_name", by_project[item.number].team
        )
    assert len({i.team for i in by_project.values()}) <= 5


def test_investment_value_map_is_configurable(company_items: list[TruthItem]) -> None:
    epics = [t for t in company_items if t.kind is Kind.PROJECT and t.investment]
    with make_sandbox(epics) as sandbox:
        conn = connect(sandbox, investment_map={"Run": "grow", "Transform": "transform"})
        got = list(conn.pull(kinds=["project"]))
    assert got
    for item in got:
        raw = item.extra["investment"]["category_raw"]
        if raw == "Run":
            assert item.extra["investment"]["portfolio_category"] == "grow"


@pytest.mark.parametrize(
    ("deployment", "single_cap"), [("cloud", 0), ("datacenter", 0), ("datacenter", 3)]
)
def test_changelog_transitions_complete(
    company_items: list[TruthItem], deployment: str, single_cap: int
) -> None:
    sample = company_items[:60]
    with make_sandbox(
        sample,
        deployment=deployment,
        changelog_embed_limit=2,
        extra_histories=4,
        single_issue_embed_limit=single_cap,
    ) as sandbox:
        sandbox.app.record = True
        conn = connect(sandbox, changelog=True)
        got = list(conn.pull())
        seen = paths(sandbox)
    assert len(got) == len(sample)
    for item in got:
        transitions = item.extra["status_transitions"]
        assert "changelog_truncated" not in item.extra
        truth = next(t for t in sample if t.number == item.key)
        if truth.status.value == "new":
            assert transitions == []
        else:
            assert transitions[0]["from"] in ("To Do", "Waiting for support")
            assert transitions[-1]["to"] == item.status_raw
    if deployment == "cloud":
        assert seen["/rest/api/3/changelog/bulkfetch"] <= 12  # one per page and kind, not per issue
        assert not any(p.endswith("/changelog") and "/issue/" in p for p in seen)
    else:
        # Data Center embeds a partial page; the rest is read per issue, only where truncated:
        # the single-issue GET, and the paged changelog where even that is capped.
        single = sum(n for p, n in seen.items() if re.fullmatch(r"/rest/api/2/issue/\d+", p))
        paged = sum(n for p, n in seen.items() if p.endswith("/changelog"))
        assert 0 < single <= len(sample)
        assert (paged > 0) == (single_cap > 0)


@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_worklogs_in_bulk(company_items: list[TruthItem], deployment: str) -> None:
    with make_sandbox(company_items, deployment=deployment) as sandbox:
        sandbox.app.record = True
        conn = connect(sandbox, worklogs=True)
        got = list(conn.pull())
        seen = paths(sandbox)
    logged = [i for i in got if i.effort_source is EffortSource.MEASURED]
    assert logged
    for item in logged:
        hours = sum(w["hours"] for w in item.extra["worklogs"])
        assert hours == pytest.approx(item.effort_hours, abs=0.01)
        assert all(w["started"].endswith("Z") for w in item.extra["worklogs"])
    api = "/rest/api/3" if deployment == "cloud" else "/rest/api/2"
    assert seen[f"{api}/worklog/list"] >= 1
    assert not any("/worklog" in p and "/issue/" in p for p in seen)  # never per issue


def test_data_center_offset_shift_restarts_from_the_keyset() -> None:
    items = generate_company(seed=3, scale=1.0).for_platform("jira")
    faults = FaultPlan(seed=9, p_update_during_paging=0.4)
    with make_sandbox(items, deployment="datacenter", faults=faults) as sandbox:
        conn = connect(sandbox, page_size=40)
        got = list(conn.pull(kinds=["task"]))
        visible = [i for i in sandbox.visible_items() if i.kind is Kind.TASK]
    keys = [i.key for i in got]
    assert len(keys) == len(set(keys))
    assert set(keys) == {i.number for i in visible}
    assert conn.restarts > 0  # records left the window before the offset, and it noticed


def test_cloud_offset_like_tokens_are_caught_by_the_census() -> None:
    """If Cloud's opaque tokens were offsets, records leaving the window would be skipped."""
    items = generate_company(seed=3, scale=1.0).for_platform("jira")
    faults = FaultPlan(seed=9, p_update_during_paging=0.5)
    with make_sandbox(items, faults=faults, offset_tokens=True) as sandbox:
        conn = connect(sandbox, page_size=20)
        got = list(conn.pull(kinds=["task"]))
        visible = [i for i in sandbox.visible_items() if i.kind is Kind.TASK]
    keys = [i.key for i in got]
    assert len(keys) == len(set(keys))
    assert set(keys) == {i.number for i in visible}
    assert conn.census_found > 0  # the main pass did skip some; the census fetched them
    with make_sandbox(items, faults=FaultPlan(seed=9, p_update_during_paging=0.5),
                      offset_tokens=True) as sandbox:  # fmt: skip
        blind = connect(sandbox, page_size=20, census=False)
        lost = {i.number for i in sandbox.visible_items() if i.kind is Kind.TASK} - {
            i.key for i in blind.pull(kinds=["task"])
        }
    assert lost  # without the census the same run loses issues silently


def test_cloud_eventual_consistency_is_covered_by_lag_and_catch_up() -> None:
    items = generate_company(seed=4, scale=0.6).for_platform("jira")
    faults = FaultPlan(seed=2, p_update_during_paging=0.3)
    with make_sandbox(items, faults=faults, consistency_delay=0.5) as sandbox:
        conn = connect(sandbox, page_size=25)
        got = list(conn.pull(kinds=["task", "project"]))
        visible = [i for i in sandbox.visible_items() if i.kind in (Kind.TASK, Kind.PROJECT)]
    keys = [i.key for i in got]
    assert len(keys) == len(set(keys))
    assert set(keys) == {i.number for i in visible}


def test_rate_limit_headers_feed_the_governor(company_items: list[TruthItem]) -> None:
    faults = FaultPlan(seed=1, p_429=0.2, burst_429=2, retry_after=0)
    with make_sandbox(company_items[:100], faults=faults, deployment="datacenter") as sandbox:
        conn = connect(sandbox, page_size=20)
        got = list(conn.pull())
        governor = conn.transport.governor
    assert len(got) == 100
    assert governor.stats.throttled == faults.injected["429"] > 0
    assert conn.transport.stats.retries >= faults.injected["429"]
    # Data Center advertises its token bucket (500 per second): the budget never exceeds it.
    assert governor.current_rate is not None
    assert governor.current_rate <= 500


def test_cloud_429_carries_jira_headers(company_items: list[TruthItem]) -> None:
    import requests

    faults = FaultPlan(seed=1, p_429=1.0, burst_429=1, retry_after=3)
    with make_sandbox(company_items[:5], faults=faults) as sandbox:
        response = requests.get(
            sandbox.url + "/rest/api/3/serverInfo", auth=sandbox.auth(), timeout=5
        )
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.headers["RateLimit-Reason"] == "jira-burst-based"
    assert "X-RateLimit-Reset" in response.headers
    assert response.headers["Beta-RateLimit-Policy"].startswith('"tenant-app-quota"')
    assert response.json()["errorMessages"] == ["Rate limit exceeded."]


def test_oauth_refresh_tokens_rotate_through_the_callback(company_items: list[TruthItem]) -> None:
    persisted: list[OAuth2Token] = []
    with make_sandbox(company_items[:120], oauth=True) as sandbox:
        first_refresh = sandbox.credentials.initial_refresh_token
        auth = sandbox.auth(on_token=persisted.append)
        conn = ib.connect("jira", sandbox.url, auth=auth, **sandbox.connect_options())
        assert len(list(conn.pull(kinds=["task"]))) == sum(
            1 for i in company_items[:120] if i.kind is Kind.TASK
        )
        assert len(persisted) == 1
        # The access token expires mid-run: the 401 makes the auth refresh with the rotated token.
        sandbox.credentials.access.clear()
        assert len(list(conn.pull(kinds=["incident"]))) >= 0
        assert len(persisted) == 2
        assert persisted[0].refresh_token != persisted[1].refresh_token != first_refresh
        assert persisted[-1].refresh_token in sandbox.credentials.refresh_tokens
        # Rotated refresh tokens are single-use: the first one no longer works.
        status, body = sandbox.credentials.grant(
            {
                "grant_type": "refresh_token",
                "client_id": sandbox.credentials.client_id,
                "client_secret": sandbox.credentials.client_secret,
                "refresh_token": first_refresh,
            }
        )
    assert status == 403
    assert "already used" in body["error_description"]
    assert "secret" not in repr(auth).lower().replace("secrets='***'", "")


def test_forcing_data_center_against_cloud_is_refused_loudly(
    company_items: list[TruthItem],
) -> None:
    with make_sandbox(company_items[:5]) as sandbox:
        conn = connect(sandbox, deployment="datacenter")
        with pytest.raises(ConfigurationError) as caught:
            list(conn.pull(kinds=["task"]))
    assert caught.value.context is not None
    assert caught.value.context.status == 410
    assert "removed" in str(caught.value)


def test_options_are_validated() -> None:
    with pytest.raises(InvalidOptionsError):
        ib.connect("jira", "https://acme.atlassian.net", deployment="mainframe")
    with pytest.raises(InvalidOptionsError, match="ORDER BY"):
        ib.connect("jira", "https://acme.atlassian.net", jql="project = OPS ORDER BY key")
    with pytest.raises(InvalidOptionsError):
        ib.connect("jira", "https://acme.atlassian.net", kind_map={"Bug": "defect"})
    # Values every issue would later fail on (or silently carry) are refused up front.
    with pytest.raises(InvalidOptionsError, match="priority_map"):
        ib.connect("jira", "https://acme.atlassian.net", priority_map={"Medium": 9})
    with pytest.raises(InvalidOptionsError, match="investment_map"):
        ib.connect("jira", "https://acme.atlassian.net", investment_map={"Run": "banana"})
    with pytest.raises(InvalidOptionsError, match="service_field"):
        ib.connect("jira", "https://acme.atlassian.net", service_from="field")
    with pytest.raises(InvalidOptionsError, match="source"):
        ib.connect("jira", "https://acme.atlassian.net", source="jira:prod")
    conn = ib.connect("jira", "https://acme.atlassian.net", investment_map={"Keep": "RUN"})
    assert conn.options.investment_map == {"Keep": "run"}  # type: ignore[attr-defined]


def test_map_record_is_pure(company_items: list[TruthItem]) -> None:
    """Mapping needs no I/O: a connector that never reached its site maps recorded JSON."""
    with make_sandbox(company_items[:3]) as sandbox:
        import requests

        raw = requests.post(
            sandbox.url + "/rest/api/3/search/jql",
            json={"jql": "project is not empty", "fields": ["*all"], "maxResults": 3},
            auth=sandbox.auth(),
            timeout=5,
        ).json()["issues"]
    offline = JiraConnector("https://unreachable.invalid")
    offline.transport.close()
    items = [offline.map_record(Kind.TASK, r) for r in raw]
    assert [i.key for i in items] == [r["key"] for r in raw]
    assert all(i.updated_at.tzinfo is UTC or i.updated_at.utcoffset() is not None for i in items)
    assert items[0].updated_at <= datetime.now(UTC)


def test_completeness_is_reported_per_window(company_items: list[TruthItem]) -> None:
    with make_sandbox(company_items) as sandbox:
        conn = connect(sandbox)
        got = list(conn.pull(kinds=["task", "incident"]))
    checks = conn.report()["completeness"]
    assert [c["kind"] for c in checks] == ["task", "incident"]
    assert all(c["ok"] for c in checks)
    assert sum(c["expected"] for c in checks) == len(got)
    assert conn.report()["census_found"] == 0


def test_public_names() -> None:
    import itsm_bridge_jira

    for name in itsm_bridge_jira.__all__:
        assert getattr(itsm_bridge_jira, name) is not None, name
    assert ib.connector_class("jira") is itsm_bridge_jira.JiraConnector


def test_server_time_falls_back_to_the_date_header() -> None:
    import responses
    from itsm_bridge_jira.deployment import Deployment, server_time

    with responses.RequestsMock() as mock:
        mock.get(
            "https://jira.example.com/rest/api/2/serverInfo",
            json={"version": "8.20.0", "deploymentType": "Server"},
            headers={"Date": "Mon, 05 Jan 2026 10:00:07 GMT"},
        )
        mock.get(
            "https://jira.example.com/rest/api/2/serverInfo",
            json={"serverTime": "2026-01-05T15:30:07.250+0530"},
        )
        transport = Transport("https://jira.example.com", connector="jira")
        dc = Deployment("datacenter")
        assert server_time(transport, dc) == datetime(2026, 1, 5, 10, 0, 7, tzinfo=UTC)
        assert server_time(transport, dc) == datetime(2026, 1, 5, 10, 0, 7, 250000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "category"),
    [
        ("Keep the lights on", "run"),
        ("KTLO", "run"),
        ("Run the Business (RTB)", "run"),
        ("Tech debt", "run"),
        ("Growth", "grow"),
        ("Grow", "grow"),
        ("Enhancement", "grow"),
        ("Innovation", "transform"),
        ("Transform", "transform"),
        ("Strategic / new product", "transform"),
        ("Something else", None),
    ],
)
def test_default_investment_values(raw: str, category: str | None) -> None:
    from itsm_bridge_jira.mapping import DEFAULT_INVESTMENT_MAP, portfolio_category

    assert portfolio_category(raw, DEFAULT_INVESTMENT_MAP) == category


def test_atlassian_oauth_helper_speaks_json_to_the_token_endpoint(
    company_items: list[TruthItem],
) -> None:
    from itsm_bridge_jira import atlassian_oauth, cloud_api_url

    assert cloud_api_url("abc-123") == "https://api.atlassian.com/ex/jira/abc-123"
    saved: list[OAuth2Token] = []
    with make_sandbox(company_items[:30], oauth=True) as sandbox:
        creds = sandbox.credentials
        auth = atlassian_oauth(
            client_id=creds.client_id,
            client_secret=creds.client_secret,
            refresh_token=creds.initial_refresh_token,
            on_token=saved.append,
            token_url=sandbox.url + "/oauth/token",
        )
        conn = ib.connect("jira", sandbox.url, auth=auth, **sandbox.connect_options())
        assert len(list(conn.pull(kinds=["project", "task"]))) > 0
        assert creds.grants == 1
    assert saved[0].refresh_token in creds.refresh_tokens


@pytest.mark.parametrize("deployment", ["Cloud", "Server"])
def test_an_error_object_answered_with_200_is_not_an_empty_page(deployment: str) -> None:
    """A search answered 200 with ``errorMessages`` and no ``issues`` (a proxy, a plugin, a
    site in trouble) fails loudly: read as an empty final page it would end the pull with
    nothing and call it complete."""
    import responses

    base = "https://jira.example.com"
    api = "3" if deployment == "Cloud" else "2"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        info = {"deploymentType": deployment, "serverTime": "2026-01-05T10:00:00.000+0000"}
        for version in ("2", "3"):
            prefix = f"{base}/rest/api/{version}"
            mock.get(f"{prefix}/serverInfo", json=info)
            mock.get(f"{prefix}/myself", json={"timeZone": "UTC"})
            mock.get(f"{prefix}/field", json=[])
            mock.get(f"{prefix}/issuetype", json=[{"id": "1", "name": "Task"}])
        error = {"errorMessages": ["Search is temporarily unavailable"], "errors": {}}
        for path in ("search", "search/jql", "search/approximate-count"):
            mock.post(f"{base}/rest/api/{api}/{path}", json=error)
        conn = ib.connect("jira", base, lag_seconds=0)
        with pytest.raises(ib.ResponseFormatError, match="errorMessages") as caught:
            list(conn.pull(kinds=["task"]))
    assert "endpoint=search" in str(caught.value)
