"""Transport ``decode=False``: bodies checked at once, decoded later with the same errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import responses

from itsm_bridge.errors import ResponseFormatError
from itsm_bridge.http import Transport

BASE = "https://acme.example.test"
URL = f"{BASE}/api/now/table/incident"
OK = {"result": [{"sys_id": "a1"}]}

Factory = Callable[..., Transport]


@pytest.fixture
def mock() -> Iterator[Any]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


def test_the_body_is_kept_and_decoded_on_demand(mock: Any, make_transport: Factory) -> None:
    mock.get(URL, json=OK)
    t = make_transport()
    response = t.get("api/now/table/incident", decode=False)
    assert response.data is None
    assert response.body == b'{"result": [{"sys_id": "a1"}]}'
    assert t.decode(response) == OK
    assert "body" not in repr(response)  # megabytes never end up in a repr


def test_a_login_page_is_refused_at_once(mock: Any, make_transport: Factory) -> None:
    mock.get(URL, body="<html><body>Log in</body></html>", content_type="text/html")
    with pytest.raises(ResponseFormatError, match="login page"):
        make_transport().get("api/now/table/incident", decode=False)


def test_malformed_json_fails_on_decode_as_it_would_have_on_request(
    mock: Any, make_transport: Factory
) -> None:
    mock.get(URL, body=b'{"result": [', content_type="application/json")
    mock.get(URL, body=b'{"result": [', content_type="application/json")
    t = make_transport()
    with pytest.raises(ResponseFormatError) as eager:
        t.get("api/now/table/incident", endpoint="incident")
    response = t.get("api/now/table/incident", decode=False)
    with pytest.raises(ResponseFormatError) as deferred:
        t.decode(response, endpoint="incident")
    assert deferred.value.message == eager.value.message
    assert "malformed JSON" in deferred.value.message


def test_empty_bodies_and_decoded_responses(mock: Any, make_transport: Factory) -> None:
    mock.get(URL, body=b"  ", content_type="text/html")
    mock.get(URL, json=OK)
    t = make_transport()
    empty = t.get("api/now/table/incident", decode=False)
    assert t.decode(empty) is None
    eager = t.get("api/now/table/incident")
    assert eager.body is None
    assert t.decode(eager) == OK


def test_error_statuses_are_decoded_for_their_envelope(mock: Any, make_transport: Factory) -> None:
    mock.get(URL, status=500, json={"error": {"message": "Transaction cancelled"}})
    response = make_transport().get("api/now/table/incident", accept=(500,), decode=False)
    assert response.data == {"error": {"message": "Transaction cancelled"}}
    assert response.body is None
