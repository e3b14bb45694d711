"""Mapper tests over every real payload in shared/data/jira-real-responses, with asserted values."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from itsm_bridge_jira.kinds import KindRules
from itsm_bridge_jira.mapping import CATEGORY_STATUS, MappingConfig, map_issue, map_status

from itsm_bridge import EffortSource, Kind, MappingError, Status

from .conftest import REAL

LoadReal = Callable[[str], Any]

CLOUD = MappingConfig(
    source="restapijira.atlassian.net", browse_url="https://restapijira.atlassian.net"
)
APACHE = MappingConfig(
    source="issues.apache.org",
    browse_url="https://issues.apache.org/jira",
    epic_link_field="customfield_12311120",  # Apache's Epic Link custom field
)


def _strptime(text: str) -> datetime:
    # An independent parse of Jira's format (offset without a colon) to check the mapper against.
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(UTC)


def test_every_real_file_is_covered() -> None:
    """A new file in the data folder fails here until a test below covers it."""
    if not REAL.exists():
        pytest.skip("shared/data not available")
    covered = {
        "apache-lucene-search-v2.json",
        "apache-sling-project-versions.json",
        "apache-sling-search-committer-cli-1.0.0.json",
        "apache-sling-search-fixed-committer-cli-1.0.0.json",
        "apache-sling-search-unresolved-committer-cli-1.0.0.json",
        "apache-sling-version-relatedIssueCounts-12329667.json",
        "apache-sling-version-relatedIssueCounts-12329844.json",
        "go-jira-all_projects.json",
        "go-jira-all_statuscategories.json",
        "go-jira-project.json",
        "jira-cloud-search-v2-restapijira.json",
    }
    assert {p.name for p in REAL.glob("*.json")} == covered


# -- Jira Cloud (v2 search, +0530 account) --------------------------------------------------------


def test_cloud_search_every_issue(real: LoadReal) -> None:
    page = real("jira-cloud-search-v2-restapijira.json")
    assert len(page["issues"]) == 50
    for raw in page["issues"]:
        item = map_issue(raw, CLOUD)
        fields = raw["fields"]
        assert item.id == f"restapijira.atlassian.net:{raw['id']}"
        assert item.key == raw["key"]
        assert item.kind is Kind.TASK  # every issue is a Bug at hierarchy level 0
        assert item.status is Status.NEW
        assert item.status_raw == "To Do"
        assert item.extra["status_category"] == "new"
        assert item.priority == 3  # Medium
        assert fields["created"].endswith("+0530")
        assert item.created_at == _strptime(fields["created"])
        assert item.updated_at == _strptime(fields["updated"])
        assert item.resolved_at is None
        assert item.parent_key is None  # customfield_10018 is a Parent Link *licence notice*
        assert item.effort_hours is None
        assert item.effort_source is None
        assert item.team == "APIMAR"  # no team field configured: the project
        assert item.requester == "RestAPIJira"
        assert item.assignee is None
        assert item.extra["project_key"] == "AP"
        assert item.extra["hierarchy_level"] == 0
        assert item.url == f"https://restapijira.atlassian.net/browse/{raw['key']}"
        assert item.description == ((fields["description"] or "").strip() or None)


def test_cloud_search_selected_values(real: LoadReal) -> None:
    issues = {i["key"]: i for i in real("jira-cloud-search-v2-restapijira.json")["issues"]}
    first = map_issue(issues["AP-127"], CLOUD)
    assert first.title == "sad"
    assert first.description is None
    assert first.created_at == datetime(2022, 3, 20, 0, 51, 50, 295000, tzinfo=UTC)
    pasted = map_issue(issues["AP-111"], CLOUD)
    # The payload holds no-break spaces as pasted; plain text keeps them (no silent rewriting).
    assert pasted.description == (
        "Creating\xa0of\xa0an\xa0issue\xa0using\xa0project\xa0keys\xa0and\xa0issue\xa0type"
        "\xa0names\xa0using\xa0the\xa0REST\xa0API"
    )
    updated = map_issue(issues["AP-103"], CLOUD)
    assert (
        updated.description
        == "Updation of Issue using the REST Assured on March 13 2021-- first time"
    )


# -- Apache Jira Server (v2, +0000, no status categories in 2016) -------------------------------

# LUCENE-n | status | resolution | priority | component | created | resolved | reporter (all +0000)
_LUCENE_TABLE = """
1|closed|Fixed|3|core/store|2001-10-09T16:19:16|2006-06-06T06:24:38|Doug Cutting
2|cancelled|Duplicate|3|core/queryparser|2001-10-11T12:55:32|2006-05-27T01:35:12|Andrzej Jarmoniuk
3|closed|Fixed|3|core/queryparser|2001-10-11T13:36:45|2006-05-27T01:35:12|Andrzej Jarmoniuk
4|cancelled|Won't Fix|3|core/queryparser|2001-10-18T00:00:23|2006-05-27T01:35:13|Alex Paransky
5|closed|Fixed|3|modules/analysis|2001-10-31T22:58:20|2006-05-27T01:35:13|M. Reinsch
6|closed|Fixed|3|core/index|2001-11-01T16:08:55|2006-05-27T01:35:13|Anne Veling
7|closed|Fixed|4|modules/examples|2001-11-08T22:17:51|2006-05-27T01:35:14|Dror Matalon
8|cancelled|Won't Fix|3|core/queryparser|2001-12-07T13:01:21|2006-05-27T01:35:14|Serge A. Redchuk
9|cancelled|Incomplete|2|core/queryparser|2001-12-17T13:57:36|2006-05-27T01:35:15|Serge A. Redchuk
10|closed|Fixed|3|core/queryparser|2002-01-29T05:13:45|2006-05-27T01:35:15|Daniel Rall
"""
LUCENE = {
    f"LUCENE-{row[0]}": (Status(row[1]), row[2], int(row[3]), *row[4:])
    for row in (
        [cell.strip() for cell in line.split("|")] for line in _LUCENE_TABLE.strip().splitlines()
    )
}


def test_lucene_every_issue(real: LoadReal) -> None:
    page = real("apache-lucene-search-v2.json")
    assert page["total"] == 4918
    assert len(page["issues"]) == 10
    for raw in page["issues"]:
        item = map_issue(raw, APACHE)
        status, resolution, priority, service, created, resolved, reporter = LUCENE[raw["key"]]
        assert item.kind is Kind.TASK, raw["key"]
        assert item.status is status, raw["key"]
        assert item.status_raw == "Closed"
        assert item.extra["resolution"] == resolution
        assert "status_category" not in item.extra  # 2016 Apache had none; the name decided
        assert "unknown_codes" not in item.extra
        assert item.priority == priority
        assert item.service == service
        assert item.extra["components"] == [service]
        assert item.created_at == datetime.fromisoformat(created + "+00:00")
        assert item.resolved_at == datetime.fromisoformat(resolved + "+00:00")
        assert item.requester == reporter
        assert item.assignee is not None
        assert item.parent_key is None  # the Epic Link field is null on every one
        assert item.effort_hours is None
        assert item.effort_source is None
        assert item.team == "Lucene - Core"
        # v2 wiki markup is kept as text (line breaks normalised, nothing rendered).
        assert item.description == raw["fields"]["description"].replace("\r\n", "\n").strip()


def test_lucene_wiki_text_kept(real: LoadReal) -> None:
    raw = real("apache-lucene-search-v2.json")["issues"][3]
    item = map_issue(raw, APACHE)
    assert item.description is not None
    assert item.description.startswith("The TermQuery allows .setBost to set a float multiplier.")
    assert '| <NUMBER:    (["+","-"])? (<_NUM_CHAR>)+ "." (<_NUM_CHAR>)+ >' in item.description


def test_user_names_lose_the_padding_a_hand_typed_name_carries(real: LoadReal) -> None:
    raw = real("apache-lucene-search-v2.json")["issues"][0]
    fields = dict(raw["fields"])
    fields["assignee"] = {"name": "jdoe", "displayName": "Jane Doe "}
    fields["reporter"] = {"name": " rroe", "displayName": "  "}  # blank: the next name
    item = map_issue(dict(raw, fields=fields), APACHE)
    assert (item.assignee, item.requester) == ("Jane Doe", "rroe")


def test_lucene_effort_and_epic_link_when_present(real: LoadReal) -> None:
    raw = real("apache-lucene-search-v2.json")["issues"][0]
    fields = dict(raw["fields"], timespent=5400, timeoriginalestimate=7200)
    fields["customfield_12311120"] = "LUCENE-9999"
    item = map_issue(dict(raw, fields=fields), APACHE)
    assert item.effort_hours == 1.5
    assert item.effort_source is EffortSource.MEASURED
    assert item.parent_key == "LUCENE-9999"
    estimated = map_issue(dict(raw, fields=dict(fields, timespent=None)), APACHE)
    assert estimated.effort_hours == 2.0
    assert estimated.effort_source is EffortSource.ESTIMATED


# -- Apache Sling: searches with fields=summary (plus a hand-edited mixed-state file) -------------


@pytest.mark.parametrize(
    "name",
    [
        "apache-sling-search-fixed-committer-cli-1.0.0.json",
        "apache-sling-search-unresolved-committer-cli-1.0.0.json",
        "apache-sling-search-committer-cli-1.0.0.json",
    ],
)
def test_sling_summary_only_searches_are_rejected_loudly(real: LoadReal, name: str) -> None:
    page = real(name)
    assert page["issues"]
    for raw in page["issues"]:
        with pytest.raises(MappingError) as caught:
            map_issue(raw, APACHE)
        assert "'updated'" in str(caught.value)
        assert raw["key"] in str(caught.value)


def test_sling_mixed_states_map_by_name_and_resolution(real: LoadReal) -> None:
    page = real("apache-sling-search-committer-cli-1.0.0.json")
    statuses = [
        map_status(raw["fields"].get("status"), raw["fields"].get("resolution"))
        for raw in page["issues"]
    ]
    assert [s for s, _ in statuses] == [Status.RESOLVED] * 7 + [Status.NEW, Status.NEW]
    assert all(known for _, known in statuses)


# -- go-jira: Apache project, status categories, project list -------------------------------------


def test_apache_issue_types_to_kinds(real: LoadReal) -> None:
    project = real("go-jira-project.json")
    assert len(project["issueTypes"]) == 35
    grouped = KindRules().type_ids_by_kind(project["issueTypes"])
    assert grouped[Kind.PROJECT] == ["15"]  # Epic (Server has no hierarchyLevel: by name)
    assert grouped[Kind.REQUEST] == ["10300"]  # the Infra desk's "IT Help"
    assert grouped[Kind.INCIDENT] == grouped[Kind.CHANGE] == grouped[Kind.PROBLEM] == []
    assert len(grouped[Kind.TASK]) == 33
    assert {"7", "17"} <= set(grouped[Kind.TASK])
    overridden = KindRules.build({"Request": "request", "Access": "request"})
    regrouped = overridden.type_ids_by_kind(project["issueTypes"])
    assert regrouped[Kind.REQUEST] == ["10300", "10301", "10400"]


def test_status_categories(real: LoadReal) -> None:
    categories = real("go-jira-all_statuscategories.json")
    assert [c["key"] for c in categories] == ["undefined", "new", "indeterminate", "done"]
    for category in categories:
        status = {"name": "Some Custom Status", "statusCategory": category}
        result, known = map_status(status, None)
        if category["key"] == "undefined":
            assert (result, known) == (Status.NEW, False)  # reported in extra.unknown_codes
        else:
            assert (result, known) == (CATEGORY_STATUS[category["key"]], True)
    done = {"name": "Some Custom Status", "statusCategory": categories[3]}
    assert map_status(done, {"name": "Won't Do"})[0] is Status.CANCELLED


def test_team_from_project_over_apache_projects(real: LoadReal) -> None:
    projects = real("go-jira-all_projects.json")
    assert len(projects) == 567
    config = MappingConfig(source="issues.apache.org", browse_url="https://x", team_from="project")
    template = real("apache-lucene-search-v2.json")["issues"][0]
    for project in projects[:60]:
        fields = dict(template["fields"], project=project)
        item = map_issue(dict(template, fields=fields), config)
        assert item.team == project["name"]
        assert item.extra["project_key"] == project["key"]


@pytest.mark.parametrize(
    "name",
    [
        "apache-sling-project-versions.json",
        "apache-sling-version-relatedIssueCounts-12329667.json",
        "apache-sling-version-relatedIssueCounts-12329844.json",
    ],
)
def test_non_issue_payloads_are_refused(real: LoadReal, name: str) -> None:
    payload = real(name)
    records = payload if isinstance(payload, list) else [payload]
    assert records
    for record in records:
        with pytest.raises(MappingError):
            map_issue(record, APACHE)
