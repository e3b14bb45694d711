"""Auth objects: Basic, Bearer and OAuth 2.0 grants, refresh, rotation, and their reprs."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import responses

from itsm_bridge.errors import (
    AuthenticationError,
    ConfigurationError,
    InsecureTransportError,
    ResponseFormatError,
    ServerError,
)
from itsm_bridge.http import BasicAuth, BearerAuth, OAuth2, OAuth2Token, RetryPolicy, Transport
from itsm_bridge.testing import FakeTime

BASE = "https://acme.example.test"
API = f"{BASE}/api/now/table/incident"
TOKEN_URL = f"{BASE}/oauth_token.do"


@pytest.fixture
def mock() -> Iterator[Any]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def _form(call: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(call.request.body).items()}


def _token_calls(mock: Any) -> list[dict[str, str]]:
    return [_form(c) for c in mock.calls if c.request.url == TOKEN_URL]


def _api_auth_headers(mock: Any) -> list[str]:
    return [c.request.headers["Authorization"] for c in mock.calls if c.request.url.startswith(API)]


def _transport(fake_time: FakeTime, auth: requests.auth.AuthBase) -> Transport:
    return Transport(
        BASE,
        auth=auth,
        retry=RetryPolicy(max_attempts=3, jitter=0.0),
        sleep=fake_time.sleep,
        clock=fake_time.monotonic,
    )


def _token(access: str, expires_in: int | None = 3600, refresh: str | None = None) -> Any:
    body: dict[str, Any] = {"access_token": access, "token_type": "bearer"}
    if expires_in is not None:
        body["expires_in"] = expires_in
    if refresh is not None:
        body["refresh_token"] = refresh
    return body


def test_basic_auth_header_and_repr() -> None:
    auth = BasicAuth("svc.itsm", "s3cret-pass")
    prepared = requests.Request("GET", API, auth=auth).prepare()
    expected = base64.b64encode(b"svc.itsm:s3cret-pass").decode()
    assert prepared.headers["Authorization"] == f"Basic {expected}"
    for text in (repr(auth), str(auth)):
        assert "s3cret-pass" not in text
        assert expected not in text
    assert "svc.itsm" in repr(auth)
    assert auth == BasicAuth("svc.itsm", "s3cret-pass")
    assert auth != BasicAuth("svc.itsm", "other-pass")
    with pytest.raises(ConfigurationError):
        BasicAuth("", "x")


def test_bearer_auth_header_and_repr() -> None:
    auth = BearerAuth("pat-0123456789")
    prepared = requests.Request("GET", API, auth=auth).prepare()
    assert prepared.headers["Authorization"] == "Bearer pat-0123456789"
    assert "pat-0123456789" not in repr(auth)
    with pytest.raises(ConfigurationError):
        BearerAuth("")


def test_client_credentials_grant(mock: Any, fake_time: FakeTime) -> None:
    mock.post(TOKEN_URL, json=_token("acc-1"))
    mock.get(API, json={"result": []})
    auth = OAuth2(TOKEN_URL, client_id="cid", client_secret="csecret-1", clock=fake_time.time)
    t = _transport(fake_time, auth)
    t.get(API)
    t.get(API)
    assert _token_calls(mock) == [
        {"client_id": "cid", "client_secret": "csecret-1", "grant_type": "client_credentials"}
    ]
    assert _api_auth_headers(mock) == ["Bearer acc-1", "Bearer acc-1"]


def test_password_grant_with_scope(mock: Any, fake_time: FakeTime) -> None:
    mock.post(TOKEN_URL, json=_token("acc-1"))
    mock.get(API, json={"result": []})
    auth = OAuth2(
        TOKEN_URL,
        client_id="cid",
        client_secret="csecret-1",
        grant="password",
        username="svc",
        password="pw-12345",
        scope="useraccount",
        clock=fake_time.time,
    )
    _transport(fake_time, auth).get(API)
    assert _token_calls(mock) == [
        {
            "client_id": "cid",
            "client_secret": "csecret-1",
            "scope": "useraccount",
            "grant_type": "password",
            "username": "svc",
            "password": "pw-12345",
        }
    ]


def test_refresh_token_grant_and_json_body(mock: Any, fake_time: FakeTime) -> None:
    mock.post(TOKEN_URL, json=_token("acc-1"))
    mock.get(API, json={"result": []})
    auth = OAuth2(
        TOKEN_URL,
        client_id="cid",
        grant="refresh_token",
        refresh_token="rt-1111",
        json_body=True,  # Atlassian's token endpoint takes JSON
        clock=fake_time.time,
    )
    _transport(fake_time, auth).get(API)
    sent = [c.request for c in mock.calls if c.request.url == TOKEN_URL]
    assert len(sent) == 1
    assert b'"grant_type":"refresh_token"' in sent[0].body.replace(b" ", b"")
    assert b'"refresh_token":"rt-1111"' in sent[0].body.replace(b" ", b"")


def test_missing_grant_settings_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="username and password"):
        OAuth2(TOKEN_URL, client_id="c", grant="password", username="u")
    with pytest.raises(ConfigurationError, match="refresh_token"):
        OAuth2(TOKEN_URL, client_id="c", grant="refresh_token")


def test_refreshes_before_expiry_and_hands_rotated_tokens_to_the_callback(
    mock: Any, fake_time: FakeTime
) -> None:
    mock.post(TOKEN_URL, json=_token("acc-1", 3600, refresh="rt-2222"))
    mock.post(TOKEN_URL, json=_token("acc-2", 3600, refresh="rt-3333"))
    mock.post(TOKEN_URL, json=_token("acc-3", 3600))  # no rotation this time
    mock.get(API, json={"result": []})
    seen: list[OAuth2Token] = []
    auth = OAuth2(
        TOKEN_URL,
        client_id="cid",
        client_secret="csecret-1",
        on_token=seen.append,
        refresh_margin=60,
        clock=fake_time.time,
    )
    t = _transport(fake_time, auth)

    t.get(API)
    fake_time.advance(3500)  # 100 s left: still fine
    t.get(API)
    fake_time.advance(60)  # 40 s left, inside the margin: renew before it expires
    t.get(API)
    fake_time.advance(3600)
    t.get(API)

    grants = _token_calls(mock)
    assert [g["grant_type"] for g in grants] == [
        "client_credentials",
        "refresh_token",
        "refresh_token",
    ]
    assert grants[1]["refresh_token"] == "rt-2222"
    assert grants[2]["refresh_token"] == "rt-3333"  # the rotated one, not the first
    assert _api_auth_headers(mock) == [
        "Bearer acc-1",
        "Bearer acc-1",
        "Bearer acc-2",
        "Bearer acc-3",
    ]
    assert [tok.refresh_token for tok in seen] == ["rt-2222", "rt-3333", "rt-3333"]
    assert [tok.access_token for tok in seen] == ["acc-1", "acc-2", "acc-3"]


def test_refreshes_once_on_401_and_resends(mock: Any, fake_time: FakeTime) -> None:
    mock.post(TOKEN_URL, json=_token("acc-1", None))
    mock.post(TOKEN_URL, json=_token("acc-2", None))
    mock.get(API, status=401, json={"error": "token revoked"})
    mock.get(API, json={"result": [1]})
    auth = OAuth2(TOKEN_URL, client_id="cid", client_secret="csecret-1", clock=fake_time.time)

    response = _transport(fake_time, auth).get(API)

    assert response.data == {"result": [1]}
    assert _api_auth_headers(mock) == ["Bearer acc-1", "Bearer acc-2"]
    assert len(_token_calls(mock)) == 2
    assert fake_time.sleeps == []  # a refresh is not a retry


def test_a_second_401_is_an_authentication_error(mock: Any, fake_time: FakeTime) -> None:
    mock.post(TOKEN_URL, json=_token("acc-1", None))
    mock.post(TOKEN_URL, json=_token("acc-2", None))
    mock.get(API, status=401, json={"error": "no roles"})
    auth = OAuth2(TOKEN_URL, client_id="cid", client_secret="csecret-1", clock=fake_time.time)
    with pytest.raises(AuthenticationError, match="401"):
        _transport(fake_time, auth).get(API)
    assert len(_api_auth_headers(mock)) == 2  # refreshed once, resent once, then gave up


def test_refused_refresh_falls_back_to_the_primary_grant(mock: Any, fake_time: FakeTime) -> None:
    mock.post(TOKEN_URL, json=_token("acc-1", 600, refresh="rt-2222"))
    mock.post(TOKEN_URL, status=400, json={"error": "invalid_grant"})
    mock.post(TOKEN_URL, json=_token("acc-2", 600))
    mock.get(API, json={"result": []})
    auth = OAuth2(
        TOKEN_URL, client_id="cid", client_secret="csecret-1", grant="password",
        username="svc", password="pw-12345", clock=fake_time.time,
    )  # fmt: skip
    t = _transport(fake_time, auth)
    t.get(API)
    fake_time.advance(600)
    t.get(API)
    assert [g["grant_type"] for g in _token_calls(mock)] == [
        "password",
        "refresh_token",
        "password",
    ]
    assert _api_auth_headers(mock)[-1] == "Bearer acc-2"


def test_refused_refresh_token_grant_is_an_authentication_error(
    mock: Any, fake_time: FakeTime
) -> None:
    mock.post(TOKEN_URL, status=400, json={"error": "invalid_grant"})
    auth = OAuth2(
        TOKEN_URL, client_id="cid", grant="refresh_token", refresh_token="rt-1111",
        clock=fake_time.time,
    )  # fmt: skip
    with pytest.raises(AuthenticationError, match="refused the refresh_token grant"):
        _transport(fake_time, auth).get(API)


def test_a_refused_grant_is_not_posted_again_by_every_thread(
    mock: Any, fake_time: FakeTime
) -> None:
    # Identity providers lock an account after a few failed logins: a connector's parallel
    # first requests (and the next minutes of a long-lived process) must not each try again.
    mock.post(TOKEN_URL, status=401, json={"error": "invalid_client"})
    auth = OAuth2(
        TOKEN_URL, client_id="cid", client_secret="wrong-secret", grant="client_credentials",
        clock=fake_time.time,
    )  # fmt: skip
    failures: list[BaseException] = []

    def attempt() -> None:
        try:
            _transport(fake_time, auth).get(API)
        except AuthenticationError as exc:
            failures.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(failures) == 4
    assert len(_token_calls(mock)) == 1
    fake_time.advance(301)  # later, the grant is tried again (the secret may have been fixed)
    attempt()
    assert len(_token_calls(mock)) == 2


def test_token_endpoint_outage_is_retried_by_the_transport(mock: Any, fake_time: FakeTime) -> None:
    mock.post(TOKEN_URL, status=503, body="maintenance")
    mock.post(TOKEN_URL, json=_token("acc-1"))
    mock.get(API, json={"result": []})
    auth = OAuth2(TOKEN_URL, client_id="cid", client_secret="csecret-1", clock=fake_time.time)
    t = _transport(fake_time, auth)
    t.get(API)
    assert len(_token_calls(mock)) == 2
    assert len(fake_time.sleeps) == 1


def test_token_endpoint_down_for_good_is_a_server_error(mock: Any, fake_time: FakeTime) -> None:
    mock.post(TOKEN_URL, status=502, body="bad gateway")
    auth = OAuth2(TOKEN_URL, client_id="cid", client_secret="csecret-1", clock=fake_time.time)
    with pytest.raises(ServerError, match="token endpoint"):
        _transport(fake_time, auth).get(API)


def test_an_answer_without_access_token_is_an_authentication_error(
    mock: Any, fake_time: FakeTime
) -> None:
    mock.post(TOKEN_URL, json={"error": "weird"})
    auth = OAuth2(TOKEN_URL, client_id="cid", client_secret="csecret-1", clock=fake_time.time)
    with pytest.raises(AuthenticationError, match="without an access_token"):
        _transport(fake_time, auth).get(API)


def test_a_burst_of_401s_on_a_shared_auth_renews_once(mock: Any, fake_time: FakeTime) -> None:
    mock.post(TOKEN_URL, json=_token("acc-1", None))
    mock.post(TOKEN_URL, json=_token("acc-2", None))
    auth = OAuth2(TOKEN_URL, client_id="cid", client_secret="csecret-1", clock=fake_time.time)
    first = requests.Request("GET", API, auth=auth).prepare()
    assert first.headers["Authorization"] == "Bearer acc-1"
    barrier = threading.Barrier(4)

    def on_401() -> None:
        barrier.wait()
        auth.refresh_after_401(first)

    threads = [threading.Thread(target=on_401) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    resent = [requests.Request("GET", API, auth=auth).prepare() for _ in range(4)]
    assert {r.headers["Authorization"] for r in resent} == {"Bearer acc-2"}
    assert len(_token_calls(mock)) == 2
    # a late 401 for the stale token does not throw away the fresh one
    auth.refresh_after_401(first)
    requests.Request("GET", API, auth=auth).prepare()
    assert len(_token_calls(mock)) == 2


def test_oauth_reprs_hide_every_secret(mock: Any, fake_time: FakeTime) -> None:
    mock.post(TOKEN_URL, json=_token("acc-secret-1", 3600, refresh="rt-secret-2"))
    auth = OAuth2(
        TOKEN_URL, client_id="cid", client_secret="cs-secret-0", grant="password",
        username="svc", password="pw-secret-3", clock=fake_time.time,
    )  # fmt: skip
    requests.Request("GET", API, auth=auth).prepare()
    token = auth.token
    assert token is not None
    for text in (repr(auth), str(auth), repr(token), str(token)):
        for secret in ("acc-secret-1", "rt-secret-2", "cs-secret-0", "pw-secret-3"):
            assert secret not in text
    assert "cid" in repr(auth)


@pytest.mark.parametrize(
    ("answer", "error", "match"),
    [
        # a login or hibernation page is not the credentials' fault: bad data, exit 5
        (
            {"body": "<html>Instance hibernating</html>", "content_type": "text/html"},
            ResponseFormatError,
            "not JSON",
        ),
        (
            {"json": _token("tok", expires_in=None) | {"expires_in": "soon"}},
            ResponseFormatError,
            "expires_in",
        ),
        ({"json": {"access_token": ""}}, AuthenticationError, "without an access_token"),
    ],
)
def test_odd_token_answers_are_typed_errors(
    mock: Any, fake_time: FakeTime, answer: dict[str, Any], error: type[Exception], match: str
) -> None:
    mock.post(TOKEN_URL, **answer)
    auth = OAuth2(TOKEN_URL, client_id="cid", client_secret="csecret-2", clock=fake_time.time)
    with pytest.raises(error, match=match):
        _transport(fake_time, auth).get(API)


def test_secrets_never_travel_in_clear_text_to_a_token_endpoint() -> None:
    with pytest.raises(InsecureTransportError, match="clear text"):
        OAuth2("http://sso.example.com/token", client_id="cid", client_secret="s")
    OAuth2("http://127.0.0.1:9/token", client_id="cid", client_secret="s")  # loopback: a test
    OAuth2(
        "http://sso.example.com/token", client_id="c", client_secret="s", allow_insecure_http=True
    )
    with pytest.raises(ConfigurationError, match="cannot contain ':'"):
        BasicAuth("domain:user", "pw")
