"""The worklog id feed's paginator: follows ``nextPage`` until ``lastPage``, never a URL twice."""

from __future__ import annotations

import pytest
from itsm_bridge_jira.worklogs import NextPagePaginator

from itsm_bridge import IncompletePullError, PageRequest


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
