"""Paginators, without HTTP: each is driven by a tiny in-memory 'server' function."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
import responses

from itsm_bridge.errors import IncompletePullError, ResponseFormatError
from itsm_bridge.http import (
    KeysetPaginator,
    LinkHeaderPaginator,
    OffsetPaginator,
    PageRequest,
    Paginator,
    RetryPolicy,
    TokenPaginator,
    Transport,
    dig,
    fetch_pages,
)
from itsm_bridge.testing import FakeTime

Answer = tuple[Any, Mapping[str, str], list[Any]]
Server = Callable[[PageRequest], Answer]


def drive(paginator: Paginator, server: Server, *, max_pages: int = 100) -> list[PageRequest]:
    """The fetch loop, minus HTTP: returns every request the paginator asked for."""
    sent: list[PageRequest] = []
    request: PageRequest | None = paginator.first(PageRequest("api/items", {"q": "x"}))
    while request is not None:
        sent.append(request)
        assert len(sent) <= max_pages, "paginator did not stop"
        body, headers, records = server(request)
        request = paginator.next(request, body, headers, records)
    return sent


ROWS = [{"id": i} for i in range(23)]


def offset_server(
    rows: list[Any],
    *,
    total: bool,
    hidden: frozenset[int] = frozenset(),
    cap: int | None = None,
    echo_limit: bool = False,
) -> Server:
    """Rows by offset; ``hidden`` rows count for offsets but are not served (ACLs)."""

    def serve(request: PageRequest) -> Answer:
        offset, limit = int(request.params["offset"]), int(request.params["limit"])
        if cap is not None:
            limit = min(limit, cap)
        page = [r for i, r in enumerate(rows[offset : offset + limit]) if offset + i not in hidden]
        body: dict[str, Any] = {"result": page}
        if echo_limit:
            body["limit"] = limit
        headers = {"X-Total-Count": str(len(rows))} if total else {}
        return body, headers, page

    return serve


def _offsets(sent: list[PageRequest]) -> list[int]:
    return [int(r.params["offset"]) for r in sent]


def test_offset_with_a_total_stops_at_the_total() -> None:
    p = OffsetPaginator(limit=10, total_header="X-Total-Count")
    sent = drive(p, offset_server(ROWS, total=True))
    assert _offsets(sent) == [0, 10, 20]
    assert sent[0].params["q"] == "x"  # the caller's parameters ride along
    assert p.total == 23


def test_offset_with_a_total_moves_whole_pages_past_acl_hidden_rows() -> None:
    hidden = frozenset({3, 4, 5, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19})  # page two is empty
    p = OffsetPaginator(limit=10, total_header="X-Total-Count")
    got: list[Any] = []
    server = offset_server(ROWS, total=True, hidden=hidden)

    def recording(request: PageRequest) -> Answer:
        answer = server(request)
        got.extend(answer[2])
        return answer

    assert _offsets(drive(p, recording)) == [0, 10, 20]
    assert [r["id"] for r in got] == [i for i in range(23) if i not in hidden]


def test_offset_total_in_the_body() -> None:
    def serve(request: PageRequest) -> Answer:
        start = int(request.params["startAt"])
        page = ROWS[start : start + 5]
        return {"issues": page, "total": len(ROWS)}, {}, page

    p = OffsetPaginator(
        limit=5, offset_param="startAt", limit_param="maxResults", total_path="total"
    )
    assert [int(r.params["startAt"]) for r in drive(p, serve)] == [0, 5, 10, 15, 20]


def test_offset_without_a_total_a_short_page_is_not_the_end() -> None:
    hidden = frozenset({2, 3, 4, 5, 6, 7, 8, 9})  # the first page comes back with two rows
    p = OffsetPaginator(limit=10)
    got: list[Any] = []
    server = offset_server(ROWS, total=False, hidden=hidden)

    def recording(request: PageRequest) -> Answer:
        answer = server(request)
        got.extend(answer[2])
        return answer

    sent = drive(p, recording)
    assert _offsets(sent)[:2] == [0, 2]  # moved by what arrived: nothing skipped
    assert len(sent[-1].params) == 3
    assert server(sent[-1])[2] == []  # only the empty page ended it
    assert {r["id"] for r in got} == {i for i in range(23) if i not in hidden}


def test_offset_without_a_total_only_an_empty_page_ends() -> None:
    p = OffsetPaginator(limit=10)
    sent = drive(p, offset_server(ROWS, total=False))
    assert _offsets(sent) == [0, 10, 20, 23]


def test_offset_follows_a_limit_the_server_reports_capping() -> None:
    p = OffsetPaginator(limit=100, total_header="X-Total-Count")
    sent = drive(p, offset_server(ROWS, total=True, cap=10, echo_limit=True))
    assert _offsets(sent) == [0, 10, 20]
    assert [int(r.params["limit"]) for r in sent] == [100, 10, 10]


def test_offset_in_the_json_body() -> None:
    p = OffsetPaginator(limit=10, in_body=True)
    first = p.first(PageRequest("search", method="POST", json={"jql": "project = OPS"}))
    assert first.json == {"jql": "project = OPS", "offset": 0, "limit": 10}
    assert first.params == {}


def test_offset_a_server_ignoring_the_offset_is_an_error() -> None:
    def stuck(request: PageRequest) -> Answer:
        page = ROWS[:10]
        return {"result": page}, {"X-Total-Count": "50"}, page

    with pytest.raises(IncompletePullError, match="same page again"):
        drive(OffsetPaginator(limit=10, total_header="X-Total-Count"), stuck)


def test_offset_restarts_cleanly() -> None:
    p = OffsetPaginator(limit=10, total_header="X-Total-Count")
    first = drive(p, offset_server(ROWS, total=True))
    again = drive(p, offset_server(ROWS, total=True))
    assert _offsets(first) == _offsets(again)


def test_offset_needs_a_positive_limit() -> None:
    with pytest.raises(ValueError, match="limit"):
        OffsetPaginator(limit=0)


# -- keyset -------------------------------------------------------------------------------------


def _keyset() -> KeysetPaginator:
    return KeysetPaginator(
        build=lambda request, last: request.with_params(after=f"{last['ts']}|{last['id']}"),
        key=lambda record: (record["ts"], record["id"]),
    )


KEYED = [{"ts": f"2026-01-0{1 + i // 4}", "id": f"{i:03d}"} for i in range(10)]


def keyset_server(rows: list[Any], size: int = 4) -> Server:
    def serve(request: PageRequest) -> Answer:
        after = request.params.get("after")
        start = 0
        if after:
            ts, rid = after.split("|")
            start = next(
                (i for i, r in enumerate(rows) if (r["ts"], r["id"]) > (ts, rid)), len(rows)
            )
        page = rows[start : start + size]
        return {"result": page}, {}, page

    return serve


def test_keyset_builds_the_next_query_from_the_last_record_and_ends_on_an_empty_page() -> None:
    sent = drive(_keyset(), keyset_server(KEYED))
    assert [r.params.get("after") for r in sent] == [
        None,
        "2026-01-01|003",
        "2026-01-02|007",
        "2026-01-03|009",
    ]


def test_keyset_a_short_page_is_not_the_end() -> None:
    sizes = iter([4, 1, 4, 4, 4])
    base = keyset_server(KEYED)

    def short(request: PageRequest) -> Answer:
        body, headers, page = base(request)
        page = page[: next(sizes)]
        return body, headers, page

    assert len(drive(_keyset(), short)) == 5  # 4 + 1 + 4 + 1, then the empty page


def test_keyset_a_stuck_cursor_raises() -> None:
    def ignores_the_condition(request: PageRequest) -> Answer:
        page = KEYED[:4]
        return {"result": page}, {}, page

    with pytest.raises(IncompletePullError, match="did not advance"):
        drive(_keyset(), ignores_the_condition)


def test_keyset_a_cursor_going_backwards_raises() -> None:
    pages = iter([KEYED[4:8], KEYED[0:4]])

    def unstable(request: PageRequest) -> Answer:
        page = next(pages)
        return {"result": page}, {}, page

    with pytest.raises(IncompletePullError):
        drive(_keyset(), unstable)


# -- next-page token ------------------------------------------------------------------------------


def token_server(pages: list[dict[str, Any]]) -> Server:
    def serve(request: PageRequest) -> Answer:
        index = int(str(request.params.get("nextPageToken", "t0"))[1:])
        body = pages[index]
        return body, {}, body.get("issues", [])

    return serve


def test_token_stops_on_is_last() -> None:
    pages = [
        {"issues": [1, 2], "nextPageToken": "t1", "isLast": False},
        {"issues": [3, 4], "nextPageToken": "t2", "isLast": True},  # a token, but the last page
    ]
    sent = drive(TokenPaginator(), token_server(pages))
    assert [r.params.get("nextPageToken") for r in sent] == [None, "t1"]


def test_token_stops_when_the_token_is_absent() -> None:
    pages = [{"issues": [1], "nextPageToken": "t1"}, {"issues": [2]}]
    assert len(drive(TokenPaginator(is_last_path=None), token_server(pages))) == 2
    pages = [{"issues": [1], "nextPageToken": "t1"}, {"issues": [2], "nextPageToken": ""}]
    assert len(drive(TokenPaginator(), token_server(pages))) == 2


def test_token_a_repeated_token_raises() -> None:
    pages = [
        {"issues": [1], "nextPageToken": "t1"},
        {"issues": [2], "nextPageToken": "t2"},
        {"issues": [3], "nextPageToken": "t1"},
    ]
    with pytest.raises(IncompletePullError, match="repeated page token 't1'"):
        drive(TokenPaginator(), token_server(pages))


def test_token_in_the_body_and_a_nested_path() -> None:
    p = TokenPaginator(token_path="paging.next", token_param="pageToken", in_body=True)
    request = p.first(PageRequest("search", method="POST", json={"jql": "x"}))
    following = p.next(request, {"paging": {"next": "abc"}}, {}, [1])
    assert following is not None
    assert following.json == {"jql": "x", "pageToken": "abc"}
    assert p.next(following, {"paging": {}}, {}, [2]) is None


# -- Link header ---------------------------------------------------------------------------------

H = "https://h.test/api/items"
LINK_PAGES = {
    "api/items": f'<{H}?offset=2>; rel="next", <{H}?offset=9>; rel="last"',
    f"{H}?offset=2": f'<{H}?offset=0>; rel="first", <{H}?offset=4>; rel="next"',
    f"{H}?offset=4": f'<{H}?offset=0>; rel="first"',
}


def link_server(links: Mapping[str, str]) -> Server:
    def serve(request: PageRequest) -> Answer:
        return [1, 2], {"Link": links[request.path]}, [1, 2]

    return serve


def test_link_header_follows_rel_next_until_there_is_none() -> None:
    sent = drive(LinkHeaderPaginator(), link_server(LINK_PAGES))
    assert [r.path for r in sent] == [
        "api/items",
        "https://h.test/api/items?offset=2",
        "https://h.test/api/items?offset=4",
    ]
    assert sent[1].params == {}  # the link carries the whole query


def test_link_header_a_repeated_link_raises() -> None:
    links = {
        "api/items": '<https://h.test/p2>; rel="next"',
        "https://h.test/p2": '<https://h.test/p3>; rel="next"',
        "https://h.test/p3": '<https://h.test/p2>; rel="next"',
    }
    with pytest.raises(IncompletePullError, match="repeated next link"):
        drive(LinkHeaderPaginator(), link_server(links))


def test_link_header_absent_ends() -> None:
    assert len(drive(LinkHeaderPaginator(), lambda r: ([], {}, []))) == 1


def test_dig() -> None:
    body = {"a": {"b": [1]}, "c": None}
    assert dig(body, "a.b") == [1]
    assert dig(body, ["a", "b"]) == [1]
    assert dig(body, "a.x.y") is None
    assert dig(body, "c.d") is None
    assert dig(body, None) is body
    assert dig([1], "a") is None


# -- the fetch loop with a paginator, over mocked HTTP ---------------------------------------------


def test_fetch_pages_loop(fake_time: FakeTime) -> None:
    base = "https://acme.example.test"
    with responses.RequestsMock() as mock:
        for offset, page in ((0, ROWS[:10]), (10, ROWS[10:20]), (20, ROWS[20:])):
            mock.get(
                f"{base}/api/items",
                match=[
                    responses.matchers.query_param_matcher({"offset": str(offset), "limit": "10"})
                ],
                json={"result": page},
                headers={"X-Total-Count": "23"},
            )
        t = Transport(base, sleep=fake_time.sleep, clock=fake_time.monotonic, retry=RetryPolicy())
        pages = list(
            fetch_pages(
                t,
                PageRequest("api/items"),
                OffsetPaginator(limit=10, total_header="X-Total-Count"),
                records_path="result",
                endpoint="items",
            )
        )
    assert [len(p.records) for p in pages] == [10, 10, 3]
    assert pages[0].response.status == 200


@pytest.mark.parametrize(
    ("body", "found"),
    [
        ({"result": {"not": "a list"}}, "got dict"),
        # an error object answered with status 200 is not an empty, final page
        ({"errorMessages": ["try later"], "errors": {}}, "keys: errorMessages, errors"),
        ([], "the answer is list"),
        (None, "got an empty body"),  # status 200 and nothing in it
    ],
)
def test_fetch_pages_refuses_a_non_list(fake_time: FakeTime, body: object, found: str) -> None:
    base = "https://acme.example.test"
    with responses.RequestsMock() as mock:
        if body is None:
            mock.get(f"{base}/api/items", body=b"", content_type="application/json")
        else:
            mock.get(f"{base}/api/items", json=body)
        t = Transport(base, sleep=fake_time.sleep, clock=fake_time.monotonic)
        with pytest.raises(ResponseFormatError, match="expected a list at 'result'") as caught:
            list(
                fetch_pages(
                    t,
                    PageRequest("api/items"),
                    OffsetPaginator(limit=5),
                    records_path="result",
                    endpoint="items",
                )
            )
    assert "endpoint=items" in str(caught.value)
    assert found in str(caught.value)
    assert "try later" not in str(caught.value)
