"""Hostile responses: huge, deeply nested, wrongly encoded or wrongly typed bodies.

Each is refused with :class:`ResponseFormatError` (a ``DataError``: exit code 5) that names the
URL and says what was wrong, is not retried (the same request would get the same body), and is
read with bounded memory: a body larger than ``Transport.max_body_bytes`` is abandoned as soon as
the limit is crossed, before it is decoded, whether or not it declared its length. Every case runs
with orjson and with the stdlib fallback (the core works without the ``fast`` extra).
"""

from __future__ import annotations

import json
import tracemalloc
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_kit import FIGURES, SCALE, RawServer, endless, write_chunked

from itsm_bridge import _json
from itsm_bridge.errors import ItsmBridgeError, ResponseFormatError
from itsm_bridge.http import RetryPolicy, Transport
from itsm_bridge.sandbox import SandboxRequest, SandboxResponse, SandboxServer

LIMIT = 1024 * 1024  # 1 MiB
NO_RETRY_WAIT = RetryPolicy(max_attempts=3, initial_wait=0.01, max_wait=0.01, jitter=0.0)


@pytest.fixture(params=["orjson", "stdlib"])
def decoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with orjson (when installed) and again with the stdlib fallback."""
    if request.param == "stdlib":
        monkeypatch.setattr(_json, "_orjson", None)
    elif _json._orjson is None:
        pytest.skip("orjson is not installed")
    return str(request.param)


def transport(url: str, **kwargs: Any) -> Transport:
    kwargs.setdefault("retry", NO_RETRY_WAIT)
    return Transport(url, connector="hostile", max_body_bytes=LIMIT, **kwargs)


def serve(body: bytes, content_type: str = "application/json") -> SandboxServer:
    def app(request: SandboxRequest) -> SandboxResponse:
        return SandboxResponse(body=body, content_type=content_type)

    return SandboxServer(app)


def refused(server: SandboxServer, path: str = "/api/now/table/incident") -> ResponseFormatError:
    with server, transport(server.url) as t:
        with pytest.raises(ResponseFormatError) as caught:
            t.get(path, params={"sysparm_limit": 10})
        assert server.requests == 1, "a format error must not be retried"
    FIGURES.add("hostile_responses_refused")
    return caught.value


# -- size --------------------------------------------------------------------------------------


def _peak_while(call: Any) -> tuple[BaseException | None, int]:
    tracemalloc.start()
    try:
        call()
    except BaseException as exc:
        return exc, tracemalloc.get_traced_memory()[1]
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return None, peak


def test_declared_huge_body_is_refused_before_it_is_read() -> None:
    """A 1 TB Content-Length is refused from the header; the body is never read."""

    def handler(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(10**12))
        h.end_headers()
        for chunk in endless(b"[" + b"1," * 32768, 64 * LIMIT):
            h.wfile.write(chunk)

    with RawServer(handler) as server, transport(server.url) as t:
        error, peak = _peak_while(lambda: t.get("/rest/api/3/search"))
    assert isinstance(error, ResponseFormatError), error
    assert "1000000000000 bytes exceeds the 1048576-byte limit" in str(error)
    assert "/rest/api/3/search" in str(error)
    assert peak < LIMIT, f"peak {peak} bytes while refusing a declared-huge body"
    FIGURES.add("hostile_responses_refused")


@pytest.mark.parametrize("size", [2 * LIMIT, 64 * LIMIT])
def test_streamed_huge_body_without_length_is_cut_at_the_limit(size: int) -> None:
    """Chunked, no Content-Length: reading stops just past the limit; memory stays bounded."""

    def handler(h: BaseHTTPRequestHandler) -> None:
        write_chunked(h, endless(b"1," * 16384, size), "application/json")

    with RawServer(handler) as server, transport(server.url) as t:
        error, peak = _peak_while(lambda: t.get("/api/now/table/incident"))
    assert isinstance(error, ResponseFormatError), error
    assert "exceeds the 1048576-byte limit" in str(error)
    # one limit's worth of chunks plus the chunk that crossed it, never the whole body
    assert peak < 3 * LIMIT, f"peak {peak} bytes for a {size}-byte body"
    FIGURES.add("hostile_responses_refused")


def test_body_just_under_the_limit_is_accepted() -> None:
    body = b"[" + b"1," * (LIMIT // 2 - 2) + b"1]"
    assert len(body) < LIMIT
    with serve(body) as server, transport(server.url) as t:
        assert len(t.get("/x").data) == LIMIT // 2 - 1


# -- nesting -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b'{"result":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
    ids=["arrays", "objects", "inside-result"],
)
def test_deeply_nested_json_is_a_format_error(decoder: str, body: bytes) -> None:
    """100,000 levels: the stdlib raises RecursionError, which must not escape as such."""
    error = refused(serve(body))
    assert "JSON" in str(error)
    assert isinstance(error, ItsmBridgeError)


def test_moderately_nested_json_still_decodes(decoder: str) -> None:
    depth = 200  # deeper than any vendor payload (Jira ADF documents nest about ten levels)
    body = b"[" * depth + b"1" + b"]" * depth
    with serve(body) as server, transport(server.url) as t:
        data = t.get("/x").data
    for _ in range(depth):
        data = data[0]
    assert data == 1


# -- encoding ----------------------------------------------------------------------------------

TEXT = '{"result": [{"short_description": "Café réseau ünïcödé"}]}'


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (TEXT.encode("utf-16"), "application/json;charset=UTF-16"),
        (TEXT.encode("utf-16-le"), "application/json"),
        (TEXT.encode("utf-16-be"), "application/json;charset=utf-16be"),
        (TEXT.encode("utf-32"), "application/json"),
        (TEXT.encode("latin-1"), "application/json;charset=ISO-8859-1"),
        (TEXT.encode("cp1252"), "application/json"),
        (b"\xef\xbb\xbf" + TEXT.encode(), "application/json;charset=UTF-8"),
    ],
    ids=["utf16-bom", "utf16le", "utf16be", "utf32", "latin1", "cp1252", "utf8-bom"],
)
def test_json_not_in_utf8_is_refused_saying_so(
    decoder: str, body: bytes, content_type: str
) -> None:
    """RFC 8259: JSON between systems is UTF-8. Both decoders refuse the rest the same way."""
    error = refused(serve(body, content_type))
    assert "UTF-8" in str(error), str(error)


def test_utf8_json_with_non_ascii_text_decodes(decoder: str) -> None:
    server = serve(TEXT.encode(), "application/json;charset=UTF-8")
    with server, transport(server.url) as t:
        data = t.get("/x").data
    assert data["result"][0]["short_description"] == "Café réseau ünïcödé"


# -- content type ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"number,short_description\nINC0010001,Printer\n", "text/csv"),
        (b'{"result": []}', "application/octet-stream"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3", "application/pdf"),
        (b'<?xml version="1.0"?><response><result/></response>', "application/xml"),
        (b"<html><body>Sign in</body></html>", "text/html;charset=UTF-8"),
        (b"PK\x03\x04\x14\x00\x00\x00", "application/zip"),
    ],
    ids=["csv", "octet-stream", "png", "pdf", "xml", "html", "zip"],
)
def test_wrong_content_type_is_refused_naming_it(
    decoder: str, body: bytes, content_type: str
) -> None:
    error = refused(serve(body, content_type))
    assert content_type.split(";")[0] in str(error), str(error)
    assert "/api/now/table/incident" in str(error)


def test_text_plain_json_is_tolerated(decoder: str) -> None:
    """Some proxies relabel JSON as text/plain; the body still has to be JSON to be accepted."""
    server = serve(b'{"result": [1]}', "text/plain;charset=UTF-8")
    with server, transport(server.url) as t:
        assert t.get("/x").data == {"result": [1]}
    error = refused(serve(b"Service temporarily unavailable", "text/plain"))
    assert "text/plain" in str(error)


# -- any body at all ---------------------------------------------------------------------------

CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json;charset=UTF-8",
        "text/plain",
        "text/html",
        "application/xml",
        "text/csv",
        "application/octet-stream",
        "",
        "application/vnd.api+json",
    ]
)


def _bodies() -> st.SearchStrategy[bytes]:
    json_texts = st.recursive(
        st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=20,
    ).map(lambda v: json.dumps(v).encode())
    mangled = st.tuples(json_texts, st.integers(0, 200), st.binary(max_size=8)).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1] :]
    )
    encoded = st.tuples(json_texts, st.sampled_from(["utf-16", "utf-32", "latin-1"])).map(
        lambda t: t[0].decode().encode(t[1], "replace")
    )
    nested = st.integers(1, 5000).map(lambda n: b"[" * n + b"]" * n)
    return st.one_of(json_texts, mangled, encoded, nested, st.binary(max_size=300))


@pytest.mark.soak
@settings(
    max_examples=SCALE.examples,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=_bodies(), content_type=CONTENT_TYPES, stdlib=st.booleans())
def test_any_body_is_data_or_a_format_error(
    monkeypatch: pytest.MonkeyPatch,
    body: bytes,
    content_type: str,
    stdlib: bool,
) -> None:
    """Whatever a 200 carries, the transport returns decoded JSON or raises ResponseFormatError."""
    url = "https://hostile.example.test/api/now/table/incident"
    with responses.RequestsMock() as mock, monkeypatch.context() as patch:
        mock.get(url, body=body, content_type=content_type or None)
        if stdlib:
            patch.setattr(_json, "_orjson", None)
        t = Transport("https://hostile.example.test", max_body_bytes=LIMIT, retry=NO_RETRY_WAIT)
        try:
            t.get(url)
        except ResponseFormatError as exc:
            error: ResponseFormatError | None = exc
        else:
            error = None
        finally:
            t.close()
    assert error is None or "hostile.example.test" in str(error)
    FIGURES.add("inputs_tried.responses")
