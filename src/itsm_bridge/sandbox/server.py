"""A threaded loopback HTTP server for fake platforms, with fault injection.

A fake platform is an *app*: a callable from :class:`SandboxRequest` to :class:`SandboxResponse`.
:class:`SandboxServer` serves it on ``127.0.0.1`` on a free port, counts requests (and requests in
flight, for concurrency tests), and applies a :class:`~itsm_bridge.sandbox.faults.FaultPlan`
before the app sees the request. Use it as a context manager::

    with SandboxServer(app) as server:
        requests.get(server.url + "/api/now/table/incident")
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from itsm_bridge import _json
from itsm_bridge.sandbox.faults import Fault, FaultPlan

__all__ = ["App", "SandboxRequest", "SandboxResponse", "SandboxServer", "json_response"]


@dataclass(frozen=True)
class SandboxRequest:
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
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json;charset=UTF-8"


def json_response(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> SandboxResponse:
    return SandboxResponse(
        status=status, body=_json.dumps(payload).encode(), headers=dict(headers or {})
    )


App = Callable[[SandboxRequest], SandboxResponse]

_HIBERNATION_PAGE = (
    b"<!DOCTYPE html><html><head><title>Instance Hibernating</title></head><body>"
    b"<h1>Your instance is hibernating</h1><p>Sign in to wake it up.</p></body></html>"
)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

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
        owner._enter()
        try:
            fault = owner.faults.draw(request) if owner.faults else None
            if fault is not None and fault.latency:
                time.sleep(fault.latency)
            if fault is not None and fault.kind == "drop":
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            response = self._fault_response(fault) if fault is not None else None
            if response is None:
                try:
                    response = owner.app(request)
                except Exception as exc:  # the fake must answer like a server, not crash
                    response = json_response(
                        {"error": {"message": "sandbox error", "detail": repr(exc)}}, status=500
                    )
            truncate = fault is not None and fault.kind == "truncate"
            self._write(response, truncate=truncate)
        finally:
            owner._leave()

    def _fault_response(self, fault: Fault) -> SandboxResponse | None:
        if fault.kind == "429":
            return json_response(
                {"error": {"message": "Rate limit exceeded", "detail": "sandbox burst"}},
                status=429,
                headers={"Retry-After": str(fault.retry_after)},
            )
        if fault.kind == "5xx":
            return json_response(
                {"error": {"message": "Service Unavailable", "detail": None}}, status=fault.status
            )
        if fault.kind == "html":
            return SandboxResponse(
                status=200, body=_HIBERNATION_PAGE, content_type="text/html;charset=UTF-8"
            )
        return None

    def _write(self, response: SandboxResponse, *, truncate: bool = False) -> None:
        body = response.body
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        if truncate:
            self.send_header("Connection", "close")
        self.end_headers()
        if truncate:
            self.wfile.write(body[: max(1, len(body) // 2)])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    do_GET = _handle
    do_POST = _handle
    do_PUT = _handle
    do_PATCH = _handle
    do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    owner: SandboxServer


class SandboxServer:
    """Serve ``app`` on a free loopback port in a background thread."""

    def __init__(
        self, app: App, *, faults: FaultPlan | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.app = app
        self.faults = faults
        self.host = host
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def _enter(self) -> None:
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SandboxServer:
        server = _Server((self.host, 0), _Handler)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self, ready: Callable[[SandboxServer], None] | None = None) -> None:
        """Run in the foreground (for ``python -m`` sandboxes) until interrupted."""
        self.start()
        if ready is not None:
            ready(self)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
