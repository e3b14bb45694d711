"""Transport: the retry policy, the error table and content checks, on injected time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
import requests
import responses

from itsm_bridge.errors import (
    AuthenticationError,
    ConfigurationError,
    EndpointNotFoundError,
    InsecureTransportError,
    PermissionDeniedError,
    RateLimitedError,
    ResponseFormatError,
    ServerError,
    SourceConnectionError,
)
from itsm_bridge.http import RetryPolicy, Transport
from itsm_bridge.sandbox import FaultPlan, SandboxRequest, SandboxResponse, SandboxServer
from itsm_bridge.sandbox import json_response as sandbox_json
from itsm_bridge.testing import FakeTime

BASE = "https://acme.example.test"
URL = f"{BASE}/api/now/table/incident"
OK = {"result": [{"sys_id": "a1"}]}

Factory = Callable[..., Transport]


@pytest.fixture
def mock() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


def test_429_with_retry_after_seconds_waits_at_least_that_long(
    mock: Any, make_transport: Factory, fake_time: FakeTime
) -> None:
    mock.get(URL, status=429, headers={"Retry-After": "2"}, json={"error": "slow down"})
    mock.get(URL, json=OK)
    t = make_transport(retry=RetryPolicy(initial_wait=0.1, jitter=0.0))

    response = t.get("api/now/table/incident")

    assert response.data == OK
    assert len(mock.calls) == 2
    assert fake_time.sleeps[0] >= 2.0
    assert fake_time.slept < 3.0  # the floor, not a stampede of extra waits
    assert t.stats.snapshot()["retries"] == 1


def test_retry_after_as_an_http_date(
    mock: Any, make_transport: Factory, fake_time: FakeTime
) -> None:
    when = datetime.fromtimestamp(fake_time.time() + 7, tz=UTC)
    mock.get(URL, status=503, headers={"Retry-After": format_datetime(when, usegmt=True)})
    mock.get(URL, json=OK)
    t = make_transport(retry=RetryPolicy(initial_wait=0.1, jitter=0.0))

    assert t.get(URL).data == OK
    assert 6.0 <= fake_time.sleeps[0] <= 7.5


def test_three_503s_then_200_succeeds_with_growing_waits(
    mock: Any, make_transport: Factory, fake_time: FakeTime
) -> None:
    for _ in range(3):
        mock.get(URL, status=503, json={"error": "unavailable"})
    mock.get(URL, json=OK)
    t = make_transport(retry=RetryPolicy(initial_wait=0.5, jitter=0.0))

    assert t.get(URL).data == OK
    assert len(mock.calls) == 4
    assert fake_time.sleeps == [0.5, 1.0, 2.0]


def test_retries_log_the_failure_and_only_the_final_error_says_the_budget_is_spent(
    mock: Any, make_transport: Factory, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(3):
        mock.get(URL, status=503, json={"error": "unavailable"})
    t = make_transport(retry=RetryPolicy(max_attempts=3, initial_wait=0.5, jitter=0.0))
    with caplog.at_level("INFO", logger="itsm_bridge.http"), pytest.raises(ServerError) as spent:
        t.get(URL)
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2
    assert all("server error 503" in r and "budget" not in r for r in retries)
    assert spent.value.message == (
        "server error 503, still failing after 3 attempts (the retry budget is spent)"
    )


def test_jitter_stays_within_its_share(
    mock: Any, make_transport: Factory, fake_time: FakeTime
) -> None:
    for _ in range(3):
        mock.get(URL, status=502)
    mock.get(URL, json=OK)
    t = make_transport(retry=RetryPolicy(initial_wait=1.0, jitter=0.5), seed=3)
    t.get(URL)
    for n, slept in enumerate(fake_time.sleeps):
        base = 2.0**n
        assert base <= slept <= base * 1.5


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, EndpointNotFoundError),
        (400, ConfigurationError),
        (500, ServerError),
    ],
)
def test_statuses_that_are_not_retried(
    mock: Any, make_transport: Factory, fake_time: FakeTime, status: int, error: type[Exception]
) -> None:
    mock.get(
        URL, status=status, json={"error": {"message": "nope"}}, headers={"X-Request-Id": "r-9"}
    )
    t = make_transport()

    with pytest.raises(error) as caught:
        t.get(URL, endpoint="incident")

    assert len(mock.calls) == 1
    assert fake_time.sleeps == []
    text = str(caught.value)
    assert f"status={status}" in text
    assert "endpoint=incident" in text
    assert "connector=acme" in text
    assert "request_id=r-9" in text
    assert "\n" not in text


def test_accepted_status_is_returned_for_the_caller_to_read(
    mock: Any, make_transport: Factory
) -> None:
    mock.get(URL, status=400, json={"error": {"message": "Transaction cancelled"}})
    response = make_transport().get(URL, accept={400})
    assert response.status == 400
    assert response.data["error"]["message"] == "Transaction cancelled"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<!DOCTYPE html><html><body>Instance Hibernating</body></html>", "text/html"),
        (b"  <html><form action='/login'>", "application/json"),  # lies about its type
        (b"<html>SSO</html>", ""),
    ],
)
def test_html_with_status_200_is_an_error_naming_the_url(
    mock: Any, make_transport: Factory, body: bytes, content_type: str
) -> None:
    mock.get(URL, body=body, content_type=content_type or None, status=200)
    with pytest.raises(ResponseFormatError) as caught:
        make_transport().get(URL, params={"api_key": "k-secret-123"})
    text = str(caught.value)
    assert "/api/now/table/incident" in text
    assert "k-secret-123" not in text
    assert len(mock.calls) == 1  # a login page stays a login page: not retried


def test_malformed_json_is_a_format_error(mock: Any, make_transport: Factory) -> None:
    mock.get(URL, body=b'{"result": [{"sys_id": "a1"}', content_type="application/json")
    with pytest.raises(ResponseFormatError, match="malformed JSON"):
        make_transport().get(URL)


def test_empty_body_is_none(mock: Any, make_transport: Factory) -> None:
    mock.get(URL, body=b"", status=204)
    assert make_transport().get(URL).data is None


def test_declared_oversize_body_is_refused(mock: Any, make_transport: Factory) -> None:
    mock.get(URL, body=b"[" + b"1," * 600 + b"1]", headers={"Content-Length": "1203"})
    with pytest.raises(ResponseFormatError, match="1203 bytes exceeds the 1000-byte limit"):
        make_transport(max_body_bytes=1000).get(URL)


def test_streamed_oversize_body_is_refused(mock: Any, make_transport: Factory) -> None:
    mock.get(URL, body=b"[" + b"1," * 600 + b"1]")
    with pytest.raises(ResponseFormatError, match="exceeds the 1000-byte limit"):
        make_transport(max_body_bytes=1000).get(URL)


def test_attempts_are_bounded(mock: Any, make_transport: Factory, fake_time: FakeTime) -> None:
    mock.get(URL, status=503)
    t = make_transport(retry=RetryPolicy(max_attempts=4, initial_wait=0.1, jitter=0.0))
    with pytest.raises(ServerError, match="503"):
        t.get(URL)
    assert len(mock.calls) == 4
    assert len(fake_time.sleeps) == 3


def test_total_time_is_bounded_even_when_retry_after_keeps_coming(
    mock: Any, make_transport: Factory, fake_time: FakeTime
) -> None:
    mock.get(URL, status=429, headers={"Retry-After": "10"})
    t = make_transport(retry=RetryPolicy(max_attempts=100, max_total_seconds=25, jitter=0.0))
    started = fake_time.monotonic()
    with pytest.raises(RateLimitedError):
        t.get(URL)
    assert fake_time.monotonic() - started <= 25
    assert fake_time.sleeps == [10.0, 10.0]
    assert len(mock.calls) == 3


def test_a_retry_after_beyond_the_budget_fails_at_once(
    mock: Any, make_transport: Factory, fake_time: FakeTime
) -> None:
    mock.get(URL, status=429, headers={"Retry-After": "3600"})
    t = make_transport(retry=RetryPolicy(max_total_seconds=300))
    with pytest.raises(RateLimitedError, match="429"):
        t.get(URL)
    assert fake_time.sleeps == []


def test_backoff_is_capped_by_max_wait(
    mock: Any, make_transport: Factory, fake_time: FakeTime
) -> None:
    mock.get(URL, status=504)
    t = make_transport(
        retry=RetryPolicy(
            max_attempts=8, initial_wait=1, max_wait=5, max_total_seconds=1e6, jitter=0
        )
    )
    with pytest.raises(ServerError):
        t.get(URL)
    assert fake_time.sleeps == [1, 2, 4, 5, 5, 5, 5]


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ConnectionError("Connection reset by peer"),
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ChunkedEncodingError(
            "IncompleteRead(120 bytes read, 80 more expected)"
        ),
    ],
)
def test_connection_errors_timeouts_and_truncated_bodies_are_retried(
    mock: Any, make_transport: Factory, fake_time: FakeTime, failure: Exception
) -> None:
    mock.get(URL, body=failure)
    mock.get(URL, json=OK)
    assert make_transport().get(URL).data == OK
    assert len(fake_time.sleeps) == 1


def test_connection_errors_become_source_connection_error_when_spent(
    mock: Any, make_transport: Factory
) -> None:
    mock.get(URL, body=requests.exceptions.ConnectionError("Name or service not known"))
    t = make_transport(retry=RetryPolicy(max_attempts=3, jitter=0.0))
    with pytest.raises(SourceConnectionError, match="ConnectionError"):
        t.get(URL)
    assert len(mock.calls) == 3


def _first_n(n: int) -> Callable[[SandboxRequest], bool]:
    seen = {"count": 0}

    def applies(_request: SandboxRequest) -> bool:
        seen["count"] += 1
        return seen["count"] <= n

    return applies


@pytest.mark.parametrize("fault", ["p_truncate", "p_drop"])
def test_real_truncated_bodies_and_dropped_connections_are_retried(
    fake_time: FakeTime, fault: str
) -> None:
    def app(_request: SandboxRequest) -> SandboxResponse:
        return sandbox_json({"result": [{"n": i, "pad": "x" * 50} for i in range(50)]})

    plan = FaultPlan(seed=1, applies_to=_first_n(2), **{fault: 1.0})
    with SandboxServer(app, faults=plan) as server:
        t = Transport(
            server.url,
            sleep=fake_time.sleep,
            clock=fake_time.monotonic,
            retry=RetryPolicy(jitter=0.0),
        )
        response = t.get("/api/x")
        t.close()
    assert len(response.data["result"]) == 50
    assert server.requests == 3
    assert plan.injected[fault[2:]] == 2
    assert t.stats.snapshot()["retries"] == 2


def test_plain_http_to_a_remote_host_is_refused() -> None:
    with pytest.raises(InsecureTransportError, match="https"):
        Transport("http://acme.service-now.com")
    Transport("http://acme.service-now.com", allow_insecure_http=True).close()
    Transport("http://127.0.0.1:8080").close()
    Transport("http://localhost:8080").close()


def test_bad_base_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="base URL"):
        Transport("acme.service-now.com")


def test_paths_and_absolute_urls(make_transport: Factory) -> None:
    t = make_transport(f"{BASE}/jira")
    assert t.url_for("rest/api/2/search") == f"{BASE}/jira/rest/api/2/search"
    assert t.url_for("/rest/api/2/search") == f"{BASE}/jira/rest/api/2/search"
    assert t.url_for("https://other.test/x?y=1") == "https://other.test/x?y=1"


def test_injected_time_gets_a_private_governor(make_transport: Factory) -> None:
    first, second = make_transport(), make_transport()
    assert first.governor is not second.governor
    shared_a, shared_b = Transport(BASE), Transport(BASE)
    assert shared_a.governor is shared_b.governor


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Mon, 05 Jan 2026 10:00:07 GMT", datetime(2026, 1, 5, 10, 0, 7, tzinfo=UTC)),
        ("Mon, 05 Jan 2026 15:30:07 +0530", datetime(2026, 1, 5, 10, 0, 7, tzinfo=UTC)),
        ("not a date", None),
        (None, None),
    ],
)
def test_server_date_reads_the_date_header_as_utc(
    mock: Any, make_transport: Factory, header: str | None, expected: datetime | None
) -> None:
    headers = {"Date": header} if header is not None else {}
    mock.add(responses.GET, f"{BASE}/clock", json={}, headers=headers)
    assert make_transport().get("/clock").server_date == expected


def test_an_accepted_error_status_in_html_comes_back_without_data(
    mock: Any, make_transport: Factory
) -> None:
    mock.get(URL, status=404, body=b"<html>Dead link</html>", content_type="text/html")
    response = make_transport().get(URL, accept=(404,))
    assert response.status == 404
    assert response.data is None


def test_a_success_in_html_is_still_a_format_error_when_errors_are_accepted(
    mock: Any, make_transport: Factory
) -> None:
    mock.get(URL, status=200, body=b"<html>Log in</html>", content_type="text/html")
    with pytest.raises(ResponseFormatError):
        make_transport().get(URL, accept=(404,))
