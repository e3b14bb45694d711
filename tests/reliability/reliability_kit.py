"""Helpers shared by the reliability tests: scale, seeds, figures, a raw HTTP server, secrets.

Scale: the reduced, seeded form runs in every ``make test``; ``ITSM_SOAK=full`` (what ``make soak``
sets) selects the full sizes. ``ITSM_SOAK_SEED`` replays a failing run with its seed (every test
that draws prints its seed on failure). ``ITSM_SOAK_FIGURES=PATH`` writes the figures of the run
(records, faults injected, kills survived, inputs tried, leaks found) as JSON for
docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FULL = os.environ.get("ITSM_SOAK", "").strip().lower() == "full"


@dataclass(frozen=True)
class Scale:
    """Sizes of one run: the reduced CI form or the full soak."""

    name: str
    records_per_platform: int  # fault soak, per sandbox
    kills: int  # SIGKILLs over one long sync, per platform
    kill_records: int  # records behind the kill/resume sync
    examples: int  # hypothesis examples per property
    load_records: int  # records per source in the load test


REDUCED = Scale("reduced", records_per_platform=1500, kills=10, kill_records=1200, examples=120,
                load_records=300)  # fmt: skip
FULL_SCALE = Scale("full", records_per_platform=50_000, kills=30, kill_records=12_000,
                   examples=2000, load_records=3000)  # fmt: skip
SCALE = FULL_SCALE if FULL else REDUCED


def as_served(moment: datetime, platform: str) -> datetime:
    """A truth timestamp at the platform's precision: ServiceNow serves seconds, Jira
    milliseconds, the generator keeps microseconds."""
    if platform == "servicenow":
        return moment.replace(microsecond=0)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def seed_for(default: int) -> int:
    """The seed of a test: ``ITSM_SOAK_SEED`` when replaying, else the test's fixed default."""
    value = os.environ.get("ITSM_SOAK_SEED")
    return int(value) if value else default


class Figures:
    """What the run measured, summed over tests; written to ``ITSM_SOAK_FIGURES`` at the end."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values: dict[str, Any] = {}

    def add(self, name: str, amount: int | float = 1) -> None:
        with self._lock:
            self.values[name] = self.values.get(name, 0) + amount

    def merge(self, name: str, counts: dict[str, int]) -> None:
        with self._lock:
            bucket = self.values.setdefault(name, {})
            for key, value in counts.items():
                bucket[key] = bucket.get(key, 0) + value

    def note(self, name: str, value: Any) -> None:
        with self._lock:
            self.values[name] = value

    def write(self, path: str) -> None:
        payload = {"scale": SCALE.name, **self.values}
        Path(path).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


FIGURES = Figures()


# -- a raw HTTP server, for responses SandboxServer will not produce ---------------------------

RawHandler = Callable[[BaseHTTPRequestHandler], None]


class _RawServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    handler: RawHandler


class _RawRequestHandler(BaseHTTPRequestHandler):
    server: _RawServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        # the client may refuse the rest of the body: exactly what is being tested
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.server.handler(self)
        self.close_connection = True

    do_POST = do_GET


class RawServer:
    """Loopback server whose handler writes the response itself (chunked, endless, lying)."""

    def __init__(self, handler: RawHandler) -> None:
        self._server = _RawServer(("127.0.0.1", 0), _RawRequestHandler)
        self._server.handler = handler
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def write_chunked(handler: BaseHTTPRequestHandler, chunks: Iterable[bytes], ctype: str) -> None:
    """A 200 with ``Transfer-Encoding: chunked`` and no Content-Length."""
    handler.send_response(200)
    handler.send_header("Content-Type", ctype)
    handler.send_header("Transfer-Encoding", "chunked")
    handler.send_header("Connection", "close")
    handler.end_headers()
    for chunk in chunks:
        handler.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    handler.wfile.write(b"0\r\n\r\n")


def endless(chunk: bytes, total: int) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield chunk
        sent += len(chunk)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- leak scanning -------------------------------------------------------------------------------


def leaks(haystack: str | bytes, secrets: Iterable[str]) -> list[str]:
    """The secrets (as text, and UTF-16/escaped forms) that occur in ``haystack``."""
    found = []
    data = haystack if isinstance(haystack, bytes) else haystack.encode("utf-8", "replace")
    for secret in secrets:
        forms = {secret.encode(), json.dumps(secret)[1:-1].encode()}
        if any(form in data for form in forms):
            found.append(secret)
    return found
