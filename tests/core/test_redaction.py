"""Secrets never reach a log record, an exception's text or a repr, with DEBUG logging on.

Each scenario provokes the paths that print things (success, retries, every error class,
token requests, real sockets with urllib3's own request log) and then scans *everything* that
was printed for every secret involved.
"""

from __future__ import annotations

import base64
import logging
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses

from itsm_bridge.errors import ItsmBridgeError
from itsm_bridge.http import BasicAuth, BearerAuth, OAuth2, RetryPolicy, Transport
from itsm_bridge.http.redaction import redact_headers, redact_text, redact_url
from itsm_bridge.sandbox import SandboxRequest, SandboxResponse, SandboxServer, json_response
from itsm_bridge.testing import FakeTime

BASE = "https://acme.example.test"
URL = f"{BASE}/api/now/table/incident"
TOKEN_URL = f"{BASE}/oauth_token.do"

USER = "integration.user"
PASSWORD = "pw-Sup3r-Secret!"
BEARER = "tok-9f8e7d6c5b4a3"
API_KEY = "ak-1234567890xyz"
URL_TOKEN = "ut-abcdef0123456"
URL_ACCESS = "at-fedcba9876543"
COOKIE = "ck-0a1b2c3d4e5f6"
CLIENT_SECRET = "cs-client-secret-77"
REFRESH = "rt-refresh-token-88"
ROTATED = "rt-rotated-token-99"
OAUTH_ACCESS = "oa-access-token-66"
BASIC_B64 = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

SECRETS = [
    PASSWORD,
    BEARER,
    API_KEY,
    URL_TOKEN,
    URL_ACCESS,
    COOKIE,
    CLIENT_SECRET,
    REFRESH,
    ROTATED,
    OAUTH_ACCESS,
    BASIC_B64,
]
SECRET_PARAMS = {"api_key": API_KEY, "token": URL_TOKEN, "access_token": URL_ACCESS, "q": "ok"}


class Printed:
    """Everything that would reach a human: log records, error texts, tracebacks, reprs."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def error(self, exc: BaseException) -> None:
        self.texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
        if isinstance(exc, ItsmBridgeError):
            self.texts.append(repr(exc.context))

    def obj(self, *objects: object) -> None:
        self.texts += [repr(o) for o in objects] + [str(o) for o in objects]

    def scan(self, records: list[logging.LogRecord]) -> None:
        formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
        texts = list(self.texts)
        for record in records:
            texts.append(formatter.format(record))
            texts.append(record.getMessage())
            texts.append(repr(record.args))
            if record.exc_info and record.exc_info[1] is not None:
                texts.append("".join(traceback.format_exception(record.exc_info[1])))
        leaks = [(secret, text) for text in texts for secret in SECRETS if secret in text]
        assert not leaks, f"secret leaked: {leaks[0][0]!r} in {leaks[0][1][:400]!r}"


@pytest.fixture
def printed(caplog: pytest.LogCaptureFixture) -> Iterator[Printed]:
    caplog.set_level(logging.DEBUG)
    out = Printed()
    yield out
    records = caplog.get_records("call")
    assert records, "the scenario logged nothing: the scan would prove nothing"
    assert any(r.levelno == logging.DEBUG for r in records)
    out.scan(records)


@pytest.fixture
def mock() -> Iterator[Any]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def _transport(fake_time: FakeTime, auth: requests.auth.AuthBase, base: str = BASE) -> Transport:
    return Transport(
        base,
        auth=auth,
        connector="acme",
        retry=RetryPolicy(max_attempts=3, jitter=0.0),
        sleep=fake_time.sleep,
        clock=fake_time.monotonic,
    )


def test_basic_auth_success_retry_and_every_error(
    mock: Any, printed: Printed, fake_time: FakeTime
) -> None:
    echo = {"password": PASSWORD, "note": f"Authorization: Basic {BASIC_B64}", "key": "INC1"}
    mock.get(URL, status=429, headers={"Retry-After": "1"}, json=echo)
    mock.get(URL, json={"result": []}, headers={"Set-Cookie": f"JSESSIONID={COOKIE}; Path=/"})
    t = _transport(fake_time, BasicAuth(USER, PASSWORD))
    response = t.get(URL, params=SECRET_PARAMS)
    printed.obj(response, t, t.governor, t.session.auth)
    assert response.url.count("***") == 3

    for status in (400, 401, 403, 404, 500, 503):
        mock.replace(responses.GET, URL, status=status, json=echo)
        with pytest.raises(ItsmBridgeError) as caught:
            t.get(URL, params=SECRET_PARAMS, endpoint="incident")
        printed.error(caught.value)

    mock.replace(responses.GET, URL, body=f"<html>login {PASSWORD} {API_KEY}</html>")
    with pytest.raises(ItsmBridgeError) as caught:
        t.get(URL, params=SECRET_PARAMS)
    printed.error(caught.value)

    mock.replace(
        responses.GET,
        URL,
        body=requests.exceptions.ConnectionError(
            f"HTTPSConnectionPool(host='acme.example.test'): Max retries exceeded with url: "
            f"/api?api_key={API_KEY}&token={URL_TOKEN} (Caused by Authorization: Bearer {BEARER})"
        ),
    )
    with pytest.raises(ItsmBridgeError) as caught:
        t.get(URL, params=SECRET_PARAMS)
    printed.error(caught.value)


def test_bearer_auth(mock: Any, printed: Printed, fake_time: FakeTime) -> None:
    mock.get(URL, status=401, body=f'{{"error": "token {BEARER} expired"}}')
    auth = BearerAuth(BEARER)
    t = _transport(fake_time, auth)
    with pytest.raises(ItsmBridgeError) as caught:
        t.get(URL, params=SECRET_PARAMS)
    printed.error(caught.value)
    printed.obj(auth)
    assert mock.calls[0].request.headers["Authorization"] == f"Bearer {BEARER}"


def test_oauth2_flow_and_its_failures(mock: Any, printed: Printed, fake_time: FakeTime) -> None:
    mock.post(TOKEN_URL, status=503, body=f"upstream said client_secret={CLIENT_SECRET}")
    mock.post(
        TOKEN_URL,
        json={"access_token": OAUTH_ACCESS, "expires_in": 1800, "refresh_token": ROTATED},
    )
    mock.get(URL, json={"result": []})
    tokens: list[Any] = []
    auth = OAuth2(
        TOKEN_URL,
        client_id="itsm-bridge",
        client_secret=CLIENT_SECRET,
        grant="refresh_token",
        refresh_token=REFRESH,
        on_token=tokens.append,
        clock=fake_time.time,
    )
    t = _transport(fake_time, auth)
    t.get(URL, params=SECRET_PARAMS)
    printed.obj(auth, tokens[0], t)

    mock.replace(
        responses.POST,
        TOKEN_URL,
        status=400,
        json={"error": "invalid_grant", "refresh_token": ROTATED},
    )
    fake_time.advance(3600)
    with pytest.raises(ItsmBridgeError) as caught:
        t.get(URL, params=SECRET_PARAMS)
    printed.error(caught.value)


def test_real_sockets_including_urllib3s_own_log(printed: Printed, fake_time: FakeTime) -> None:
    seen: list[SandboxRequest] = []

    def app(request: SandboxRequest) -> SandboxResponse:
        seen.append(request)
        if len(seen) == 1:
            return json_response({"result": []}, headers={"Set-Cookie": f"JSESSIONID={COOKIE}"})
        if len(seen) == 2:
            return json_response({"error": {"message": f"bad password {PASSWORD}"}}, status=403)
        return json_response({"result": [], "echo": request.headers.get("Cookie")})

    with SandboxServer(app) as server:
        t = _transport(fake_time, BasicAuth(USER, PASSWORD), base=server.url)
        t.get("/api/x", params=SECRET_PARAMS)
        with pytest.raises(ItsmBridgeError) as caught:
            t.get("/api/x", params=SECRET_PARAMS)
        printed.error(caught.value)
        printed.obj(t.get("/api/x", params=SECRET_PARAMS))
        t.close()
    # The secrets really travelled, so not finding them in the output means something.
    assert seen[0].query["api_key"] == [API_KEY]
    assert seen[2].header("Cookie") == f"JSESSIONID={COOKIE}"
    assert seen[0].header("Authorization") == f"Basic {BASIC_B64}"


def test_redaction_helpers() -> None:
    assert redact_url(f"https://u:{PASSWORD}@h.test/x?api_key={API_KEY}&q=1") == (
        "https://***@h.test/x?api_key=***&q=1"
    )
    headers = redact_headers(
        {"Authorization": "Basic abc", "Cookie": "a=b", "X-Request-Id": "r1", "Set-Cookie": "x"}
    )
    assert headers == {
        "Authorization": "***",
        "Cookie": "***",
        "X-Request-Id": "r1",
        "Set-Cookie": "***",
    }
    text = redact_text(
        '{\'password\': \'p4ss\', "client_secret": "s3", "key": "OPS-7"} '
        "user_password=hunter2&page=2 Authorization: Bearer abcdef123456"
    )
    for secret in ("p4ss", "s3", "hunter2"):
        assert secret not in text
    assert "abcdef123456" not in text
    assert '"key": "OPS-7"' in text  # a Jira issue key is not a secret in a body
    assert "page=2" in text
