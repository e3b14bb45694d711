"""A threaded loopback HTTP server for fake platforms, with fault injection.

A fake platform is an *app*: a callable from :class:`SandboxRequest` to :class:`SandboxResponse`.
:class:`SandboxServer` serves it on ``127.0.0.1`` on a free port (one thread per connection,
HTTP/1.1 keep-alive, so connection pools behave as against a real instance), counts requests and
the most ever in flight (for concurrency tests), and applies a
:class:`~itsm_bridge.sandbox.faults.FaultPlan` before the app sees the request::

    with SandboxServer(app, faults=FaultPlan(seed=1, p_429=0.05)) as server:
        requests.get(server.url + "/api/now/table/incident")

Faults look on the wire as they do in production, so clients are tested against the real thing:
a *drop* closes the socket without a response (``requests`` raises ``ConnectionError``); a
*truncate* declares the full ``Content-Length``, sends part of the body and closes (``requests``
raises ``ChunkedEncodingError``, never returns half a JSON document); *html* is a 200 with a
hibernation page. ``stop()`` also closes idle keep-alive connections, so no handler thread or
socket outlives the server.
"""

from __future__ import annotations

import collections
import contextlib
import json
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from itsm_bridge import _json
from itsm_bridge.sandbox.faults import Fault, FaultPlan

__all__ = [
    "HIBERNATION_PAGE",
    "App",
    "SandboxRequest",
    "SandboxResponse",
    "SandboxServer",
    "json_response",
    "retry_after_value",
]


@dataclass(frozen=True)
class SandboxRequest:
    """The request a fake platform's app sees: parsed path, query, headers and body."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes = b""

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


@dataclass
class SandboxResponse:
    """What an app answers; the server adds Content-Type and Content-Length."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json;charset=UTF-8"


def json_response(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> SandboxResponse:
    """A JSON answer, encoded the way the platforms encode theirs (compact UTF-8)."""
    return SandboxResponse(
        status=status, body=_json.dumps(payload).encode(), headers=dict(headers or {})
    )


App = Callable[[SandboxRequest], SandboxResponse]

HIBERNATION_PAGE = (
    b"<!DOCTYPE html><html><head><title>Instance Hibernating</title></head><body>"
    b"<h1>Your instance is hibernating</h1><p>Sign in to wake it up.</p></body></html>"
)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 60  # an idle keep-alive connection is closed after a minute, like real proxies

    def log_message(self, format: str, *args: Any) -> None:
        return

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without TCP_NODELAY, Nagle plus the client's
        # delayed ACK add ~40 ms to every keep-alive request on loopback.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(self.connection, ssl.SSLSocket):
            # TLS: the handshake runs here, in the connection's thread, under its timeout
            self.connection.do_handshake()
        self.server.owner._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._untrack(self.connection)

    def _handle(self) -> None:
        owner = self.server.owner
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = SandboxRequest(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=dict(self.headers.items()),
            body=body,
        )
        owner._enter(request)
        try:
            fault = owner.faults.draw(request) if owner.faults else None
            if fault is not None and fault.latency:
                owner.sleep(fault.latency)
            dropped = fault is not None and fault.kind == "drop"
            response = _fault_response(fault) if fault is not None and not dropped else None
            if response is None and not dropped:
                try:
                    response = owner.app(request)
                except Exception as exc:  # the fake must answer like a server, not crash
                    response = json_response(
                        {"error": {"message": "sandbox error", "detail": type(exc).__name__}},
                        status=500,
                    )
        finally:
            # Left before the client can see the answer (it may send its next request at
            # once): the counts never show a finished request as still in flight.
            owner._leave()
        if response is None:
            self._drop()
        else:
            self._write(response, truncate=fault is not None and fault.kind == "truncate")

    def _drop(self) -> None:
        """Close the socket without a byte of response (a proxy reset, a crashed node)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _write(self, response: SandboxResponse, *, truncate: bool = False) -> None:
        body = response.body
        declared = max(len(body), 2) if truncate else len(body)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(declared))
        for name, value in response.headers.items():
            if name.lower() not in ("content-length", "content-type", "connection"):
                self.send_header(name, value)
        if truncate:
            self.send_header("Connection", "close")
        self.end_headers()
        if truncate:
            # Fewer bytes than Content-Length, then close: the client sees an incomplete read.
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self._drop()
            return
        self.wfile.write(body)

    do_GET = _handle
    do_POST = _handle
    do_PUT = _handle
    do_PATCH = _handle
    do_DELETE = _handle


def retry_after_value(seconds: int, *, http_date: bool = False) -> str:
    """A ``Retry-After`` header value: delta seconds, or the equivalent HTTP date."""
    if http_date:
        return formatdate(time.time() + seconds, usegmt=True)
    return str(seconds)


def _fault_response(fault: Fault) -> SandboxResponse | None:
    if fault.kind == "429":
        return json_response(
            {"error": {"message": "Rate limit exceeded", "detail": "sandbox burst"}},
            status=429,
            headers={
                "Retry-After": retry_after_value(fault.retry_after, http_date=fault.http_date)
            },
        )
    if fault.kind == "5xx":
        return json_response(
            {"error": {"message": "Service Unavailable", "detail": None}}, status=fault.status
        )
    if fault.kind == "html":
        return SandboxResponse(
            status=200, body=HIBERNATION_PAGE, content_type="text/html;charset=UTF-8"
        )
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    owner: SandboxServer

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        if self.owner.tls is not None:
            conn = self.owner.tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        return conn, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client killed or timed out mid-response is normal here (kill/resume and fault
        # tests do it on purpose), as is a client refusing our certificate (TLS tests);
        # anything else still gets the stdlib's traceback.
        exc = sys.exc_info()[1]
        if isinstance(
            exc, (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, ssl.SSLError)
        ):
            return
        super().handle_error(request, client_address)


class SandboxServer:
    """Serve ``app`` on a loopback port (free unless ``port`` is given) in a background thread.

    ``sleep`` is how injected latency waits (tests may pass a recorder). ``hits`` counts requests
    by path; ``requests``, ``in_flight`` and ``max_in_flight`` count all of them. ``tls`` (a
    server-side ``ssl.SSLContext``) serves HTTPS instead of HTTP, for TLS verification tests.
    """

    def __init__(
        self,
        app: App,
        *,
        faults: FaultPlan | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        sleep: Callable[[float], None] = time.sleep,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.app = app
        self.faults = faults
        self.tls = tls
        self.host = host
        self.sleep = sleep
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.hits: collections.Counter[str] = collections.Counter()
        self._port = port
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    def _enter(self, request: SandboxRequest) -> None:
        with self._lock:
            self.requests += 1
            self.hits[request.path] += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)

    def reset_counters(self) -> None:
        with self._lock:
            self.requests = 0
            self.max_in_flight = self.in_flight
            self.hits.clear()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("sandbox server not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"{'https' if self.tls is not None else 'http'}://{self.host}:{self.port}"

    def start(self) -> SandboxServer:
        if self._server is not None:
            return self
        server = _Server((self.host, self._port), _Handler)
        server.owner = self
        self._server = server
        self._stopped.clear()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection; safe to call twice or from any thread."""
        with self._lock:
            server, self._server = self._server, None
            thread, self._thread = self._thread, None
            connections = list(self._connections)
        if server is not None:
            server.shutdown()
            server.server_close()
        for conn in connections:  # idle keep-alive handlers would otherwise wait for a request
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if thread is not None:
            thread.join(timeout=5)
        self._stopped.set()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self, ready: Callable[[SandboxServer], None] | None = None) -> None:
        """Run in the foreground (for ``python -m`` sandboxes) until interrupted or stopped."""
        self.start()
        if ready is not None:
            ready(self)
        try:
            while not self._stopped.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
