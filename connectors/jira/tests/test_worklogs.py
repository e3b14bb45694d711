"""The worklog id feed's paginator: follows ``nextPage`` until ``lastPage``, never a URL twice."""

from __future__ import annotations

import json

import pytest
import responses
from itsm_bridge_jira.deployment import Deployment
from itsm_bridge_jira.worklogs import NextPagePaginator, worklogs_since

from itsm_bridge import IncompletePullError, PageRequest, Transport


def test_follows_next_page_until_last_page() -> None:
    pager = NextPagePaginator()
    first = pager.first(PageRequest("/rest/api/3/worklog/updated", params={"since": 0}))
    body = {"values": [{"worklogId": 1}], "lastPage": False, "nextPage": "http://x/next?since=5"}
    following = pager.next(first, body, {}, body["values"])
    assert following is not None
    assert following.path == "http://x/next?since=5"
    assert pager.next(following, {"values": [], "lastPage": True}, {}, []) is None


def test_a_repeated_next_page_raises_instead_of_looping() -> None:
    pager = NextPagePaginator()
    request = pager.first(PageRequest("/rest/api/3/worklog/updated"))
    body = {"values": [], "lastPage": False, "nextPage": "http://x/next?since=5"}
    pager.next(request, body, {}, [])
    with pytest.raises(IncompletePullError, match="repeated worklog page"):
        pager.next(request, body, {}, [])
    # a new pull starts with a clean memory
    pager.first(request)
    assert pager.next(request, body, {}, []) is not None


def test_a_worklog_listed_on_two_pages_is_counted_once() -> None:
    # The next page's `since` is the last page's `until`; a server that treats it as inclusive
    # lists the boundary worklog again. Its hours must not be added twice.
    base = "https://acme.atlassian.net"
    with responses.RequestsMock() as mock:
        mock.get(
            f"{base}/rest/api/3/worklog/updated",
            match=[responses.matchers.query_param_matcher({"since": "0"})],
            json={"values": [{"worklogId": 1}, {"worklogId": 2}], "lastPage": False,
                  "nextPage": f"{base}/rest/api/3/worklog/updated?since=20"},
        )  # fmt: skip
        mock.get(
            f"{base}/rest/api/3/worklog/updated",
            match=[responses.matchers.query_param_matcher({"since": "20"})],
            json={"values": [{"worklogId": 2}, {"worklogId": 3}], "lastPage": True},
        )
        listed = mock.post(
            f"{base}/rest/api/3/worklog/list",
            json=[{"id": str(i), "issueId": "10", "timeSpentSeconds": 1800} for i in (1, 2, 2, 3)],
        )
        found = worklogs_since(Transport(base), Deployment("cloud"), 0)
    assert json.loads(listed.calls[0].request.body) == {"ids": [1, 2, 3]}
    assert [w["id"] for w in found["10"]] == ["1", "2", "3"]
