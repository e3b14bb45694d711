"""The transport: the only code in itsm-bridge that sends HTTP.

One ``requests.Session`` per transport with a pool sized to the concurrency; connect and read
timeouts; exactly one retry policy (built from tenacity parts) around the send; the host's shared
rate governor; content-type checking, so that an HTML page answered with status 200 (a hibernating
instance, an SSO login page) is an error and never data; bounded body size; and DEBUG logging in
which every URL, header and body excerpt has passed through redaction.

The error policy, status by status:

=========================  =========================================================
status / failure           what the transport does
=========================  =========================================================
2xx + JSON                 decoded and returned
2xx + HTML or bad JSON     ResponseFormatError (not retried: a login page stays one)
401                        the auth may refresh once and resend, else AuthenticationError
403                        PermissionDeniedError
404                        EndpointNotFoundError
400, 405-428, 431-499      ConfigurationError (the request is wrong; the body says why)
429                        retried; Retry-After is a floor; RateLimitedError when spent
502, 503, 504              retried with exponential backoff; ServerError when spent
500, other 5xx             ServerError at once (a retried bad query would fail again)
connection, timeout,
truncated body             retried; SourceConnectionError when spent
token endpoint down        (raised by the auth as SourceUnavailableError) retried
=========================  =========================================================

Callers may ``accept`` extra statuses to read a vendor's error envelope themselves (ServiceNow
reports a cancelled transaction that way). An accepted error status whose body is not JSON (a
proxy's or a servlet container's HTML 404) comes back with ``data=None``: the caller asked for the
status, and the body was never going to be data.
"""

from __future__ import annotations

import inspect
import ipaddress
import logging
import random
import re
import ssl
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from tenacity import RetryCallState, Retrying, retry_if_exception_type

from itsm_bridge import _json
from itsm_bridge.errors import (
    AuthenticationError,
    ConfigurationError,
    EndpointNotFoundError,
    InsecureTransportError,
    ItsmBridgeError,
    PermissionDeniedError,
    RateLimitedError,
    RequestContext,
    ResponseFormatError,
    ServerError,
    SourceConnectionError,
    SourceUnavailableError,
)
from itsm_bridge.http.governor import RateGovernor, governor_for, parse_retry_after
from itsm_bridge.http.redaction import (
    install_log_redaction,
    is_sensitive_key,
    redact_headers,
    redact_text,
    redact_url,
    register_secret,
)
from itsm_bridge.http.retry import RETRY_STATUSES, RetryPolicy, _Retryable, _Stop, _Wait

__all__ = ["HttpResponse", "RetryPolicy", "Transport", "TransportStats"]

log = logging.getLogger("itsm_bridge.http")
install_log_redaction()

_USER_AGENT = "itsm-bridge/0.1 (+https://github.com/itsm-bridge/itsm-bridge)"
_EXCERPT = 300
_MARKUP = re.compile(rb"[ \t\n\r\x0b\x0c]*<")  # what bytes.lstrip() skips, then a tag


@dataclass
class TransportStats:
    """Counters for the run report; updated under a lock by every thread."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    bytes_received: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {
                "requests": self.requests,
                "retries": self.retries,
                "throttled": self.throttled,
                "bytes_received": self.bytes_received,
            }


@dataclass(frozen=True)
class HttpResponse:
    """A decoded response. ``data`` is the parsed JSON (``None`` for an empty body).

    A successful response to a request sent with ``decode=False`` keeps its checked but undecoded
    ``body`` instead (``data`` is ``None``), for :meth:`Transport.decode` to parse when the
    caller is ready: a decoded page is several times the size of its bytes.
    """

    status: int
    headers: CaseInsensitiveDict[str]
    url: str
    data: Any
    elapsed: float
    body: bytes | None = None

    @property
    def server_date(self) -> datetime | None:
        """The server's clock from the ``Date`` header (whole seconds, UTC); ``None`` if absent
        or unreadable. Windows close on the server's clock, never on a skewed client's."""
        header = self.headers.get("Date")
        if not header:
            return None
        try:
            return parsedate_to_datetime(header).astimezone(UTC)
        except (TypeError, ValueError, IndexError):
            return None

    def __repr__(self) -> str:
        # Response headers carry cookies and tokens; the data may be megabytes.
        return (
            f"HttpResponse(status={self.status}, url={self.url!r}, "
            f"headers={redact_headers(self.headers)!r}, elapsed={self.elapsed:.3f})"
        )


def _is_loopback(host: str) -> bool:
    if host in {"localhost", "localhost.localdomain"} or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def http_url(url: str, *, what: str, allow_insecure_http: bool = False) -> SplitResult:
    """``url`` split, if it is ``http(s)://host...``; plain ``http://`` only to loopback unless
    ``allow_insecure_http``: credentials sent there would travel in clear text."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigurationError(f"{what} must be http(s)://host[...], got {redact_url(url)!r}")
    if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.hostname):
        raise InsecureTransportError(
            f"refusing plain http:// to {parts.hostname}: credentials would travel in clear "
            "text; use https:// or pass allow_insecure_http=True"
        )
    return parts


class Transport:
    """Sends requests for one source (base URL + auth), within the host's shared governor.

    Thread-safe: connectors fetch independent ranges from several threads through one transport.
    ``sleep``, ``clock`` (monotonic) and ``wall_clock`` (epoch seconds, for ``Retry-After`` dates)
    are injectable so retry tests run in milliseconds. A transport given its own ``sleep`` or
    ``clock`` and no ``governor`` gets a private governor on the same clock, so injected time is
    never mixed with real waiting.
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: requests.auth.AuthBase | None = None,
        connector: str | None = None,
        source: str | None = None,
        timeout: tuple[float, float] = (10.0, 60.0),
        retry: RetryPolicy | None = None,
        governor: RateGovernor | None = None,
        rate: float | None = None,
        max_concurrency: int = 4,
        verify: bool | str = True,
        allow_insecure_http: bool = False,
        max_body_bytes: int = 256 * 1024 * 1024,
        headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        session: requests.Session | None = None,
        seed: int | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        parts = http_url(base_url, what="base URL", allow_insecure_http=allow_insecure_http)
        if parts.username is not None or parts.password is not None:
            # requests would send them as Basic auth, and the URL ends up in every item's url
            raise ConfigurationError(
                f"the base URL {redact_url(base_url)} carries credentials; pass them as auth "
                "(the CLI reads them from environment variables)"
            )
        if parts.query or parts.fragment:
            # never sent (paths are joined to it), but copied into every item's url
            raise ConfigurationError(
                f"the base URL {redact_url(base_url)} has a query or fragment; give "
                "scheme://host[:port][/path] only"
            )
        self.base_url = base_url.rstrip("/") + "/"
        self.connector = connector
        self.source = source  # named by every error it raises
        self.timeout = timeout
        self.policy = retry or RetryPolicy()
        if governor is None and (sleep is not time.sleep or clock is not time.monotonic):
            governor = RateGovernor(
                rate=rate,
                max_concurrency=max_concurrency,
                clock=clock,
                sleep=sleep,
                wall_clock=wall_clock,
            )
        self.governor = governor or governor_for(
            parts.netloc, rate=rate, max_concurrency=max_concurrency
        )
        self.max_body_bytes = max_body_bytes
        self.stats = TransportStats()
        self._auth = auth
        self._sleep = sleep
        self._clock = clock
        self._wall = wall_clock
        self._rng = random.Random(seed)
        self._owns_session = session is None
        self.session = session or requests.Session()
        pool = max(max_concurrency, self.governor.max_concurrency)
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.verify = verify
        self.session.headers.update({"User-Agent": _USER_AGENT, "Accept": "application/json"})
        if headers:
            self.session.headers.update(headers)
        self._adapter = adapter
        self._local = threading.local()
        self._local.session = self.session
        self._sessions: list[requests.Session] = [self.session]
        self._sessions_lock = threading.Lock()
        self._stop: threading.Event | None = None

    def stop_on(self, event: threading.Event | None) -> None:
        """End the transport's waits (retry backoff, a connector's :meth:`pause`) as soon as
        ``event`` is set, by raising ``KeyboardInterrupt`` where the wait was: a run in a worker
        thread then unwinds as it would on Ctrl-C (``None`` undoes it)."""
        self._stop = event

    def pause(self, seconds: float, *, sleep: Callable[[float], None] | None = None) -> None:
        """Wait ``seconds`` (with ``sleep``, else the transport's own), unless asked to stop."""
        stop = self._stop
        if stop is not None and sleep is None and self._sleep is time.sleep:
            if stop.wait(seconds):
                raise KeyboardInterrupt("asked to stop")
            return
        (sleep or self._sleep)(seconds)
        if stop is not None and stop.is_set():
            raise KeyboardInterrupt("asked to stop")

    def __repr__(self) -> str:
        return f"Transport({redact_url(self.base_url)!r}, connector={self.connector!r})"

    def _thread_session(self) -> requests.Session:
        """This thread's session: one cookie jar per worker, one connection pool for all.

        ServiceNow runs one transaction per session at a time, so parallel ranges that shared a
        session cookie would be served one after another; each thread keeps its own cookies.
        A caller-supplied session is used by every thread as given.
        """
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is not None:
            return session
        if not self._owns_session:
            return self.session
        session = requests.Session()
        session.headers = CaseInsensitiveDict(self.session.headers)
        session.verify = self.session.verify
        session.mount("http://", self._adapter)
        session.mount("https://", self._adapter)
        with self._sessions_lock:
            self._sessions.append(session)
        self._local.session = session
        return session

    def close(self) -> None:
        if self._owns_session:
            with self._sessions_lock:
                sessions, self._sessions = self._sessions, []
            for session in sessions:
                session.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url_for(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return urljoin(self.base_url, path.lstrip("/"))

    def get(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        endpoint: str | None = None,
        headers: Mapping[str, str] | None = None,
        accept: Collection[int] = (),
        decode: bool = True,
    ) -> HttpResponse:
        return self.request(
            "GET",
            path,
            params=params,
            endpoint=endpoint,
            headers=headers,
            accept=accept,
            decode=decode,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        endpoint: str | None = None,
        headers: Mapping[str, str] | None = None,
        accept: Collection[int] = (),
        auth: requests.auth.AuthBase | None = None,
        decode: bool = True,
    ) -> HttpResponse:
        """Send one logical request, retrying per the policy; return the decoded response.

        ``decode=False``: a 2xx body is checked (JSON, not a login page) but left undecoded.
        """
        url = self.url_for(path)
        _remember_secret_params(params)
        wait = _Wait(self.policy, self._rng)
        stop = _Stop(self.policy, self._clock, wait)
        stop.started = self._clock()
        retrying = Retrying(
            retry=retry_if_exception_type(_Retryable),
            wait=wait,
            stop=stop,
            sleep=self.pause,
            reraise=True,
            before_sleep=self._before_sleep,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._send_once(
                        method, url, params, json, data, endpoint, headers, accept, auth,
                        decode=decode,
                    )  # fmt: skip
        except _Retryable as spent:
            error = spent.error
            # Said only now: the retries logged on the way carry the plain failure.
            attempts = int(retrying.statistics.get("attempt_number") or 1)
            error.message += f", still failing after {attempts} attempt" + (
                "s (the retry budget is spent)" if attempts > 1 else ""
            )
            error.named(self.source)
            raise error from None
        except ItsmBridgeError as exc:
            exc.named(self.source)
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _before_sleep(self, state: RetryCallState) -> None:
        self.stats.add(retries=1)
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.info("retrying in %.2fs after: %s", wait, exc)

    def _context(
        self,
        method: str,
        url: str,
        endpoint: str | None,
        status: int | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> RequestContext:
        excerpt = None
        if body:
            excerpt = redact_text(body[:_EXCERPT].decode("utf-8", "replace")).strip() or None
        request_id = None
        if headers is not None:
            lowered = {k.lower(): v for k, v in headers.items()}
            request_id = (
                lowered.get("x-request-id")
                or lowered.get("x-arequestid")
                or lowered.get("x-transaction-id")
                or lowered.get("x-servicenow-request-id")
                or lowered.get("atl-traceid")
            )
        return RequestContext(
            connector=self.connector,
            endpoint=endpoint,
            method=method,
            url=redact_url(url),
            status=status,
            body_excerpt=excerpt,
            request_id=request_id,
        )

    def _send_once(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json_body: Any,
        data: Mapping[str, str] | None,
        endpoint: str | None,
        headers: Mapping[str, str] | None,
        accept: Collection[int],
        auth: requests.auth.AuthBase | None,
        *,
        refreshed: bool = False,
        decode: bool = True,
    ) -> HttpResponse:
        started = self._clock()
        use_auth = auth or self._auth
        try:
            with self.governor.slot() as sent_at:
                self.stats.add(requests=1)
                response = self._thread_session().request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    data=data,
                    headers=headers,
                    auth=use_auth,
                    timeout=self.timeout,
                    stream=True,
                    # per request: requests lets REQUESTS_CA_BUNDLE override session.verify
                    verify=self.session.verify,
                )
                try:
                    body = self._read_body(response, method, url, endpoint)
                finally:
                    response.close()
        except requests.exceptions.SSLError as exc:
            raise SourceConnectionError(
                f"TLS verification failed: {_tls_reason(exc)} (supply the CA bundle with "
                "verify=PATH, never disable verification against production)",
                context=self._context(method, url, endpoint),
            ) from None
        except (
            requests.ConnectionError,
            requests.Timeout,
            # a body cut short (Content-Length not reached, a broken chunk): a dropped connection
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            error = SourceConnectionError(
                f"{type(exc).__name__}: {_root_cause(exc)}",
                context=self._context(method, url, endpoint),
            )
            raise _Retryable(error) from None
        except SourceUnavailableError as exc:
            # raised by the auth (a token endpoint that is down): worth the same retries
            raise _Retryable(exc) from None
        except requests.RequestException as exc:
            raise SourceConnectionError(
                f"{type(exc).__name__}: {_root_cause(exc)}",
                context=self._context(method, url, endpoint),
            ) from None
        elapsed = self._clock() - started
        status = response.status_code
        self.governor.observe(status, response.headers, sent_at=sent_at)
        self.stats.add(bytes_received=len(body), throttled=int(status == 429))
        full_url = response.url or url
        if log.isEnabledFor(logging.DEBUG):
            sent_headers = response.request.headers if response.request is not None else {}
            log.debug(
                "%s %s -> %s in %.3fs request_headers=%s headers=%s body=%r",
                method,
                redact_url(full_url),
                status,
                elapsed,
                redact_headers(sent_headers),
                redact_headers(response.headers),
                redact_text(body[:_EXCERPT].decode("utf-8", "replace")),
            )
        if status == 401 and not refreshed and _refresh_after_401(use_auth, response.request):
            return self._send_once(
                method, url, params, json_body, data, endpoint, headers, accept, auth,
                refreshed=True, decode=decode,
            )  # fmt: skip
        if status < 300 or status in accept:
            decoded: Any = None
            kept: bytes | None = None
            if status < 300 and not decode:  # checked now, decoded when the caller is ready
                if body and not body.isspace():
                    self._check_json_body(body, response, method, full_url, endpoint)
                kept = body
            else:
                try:
                    decoded = self._decode(body, response, method, full_url, endpoint)
                except ResponseFormatError:
                    if status < 400:
                        raise
                    # an accepted error status in HTML: the status is the answer
            return HttpResponse(
                status=status,
                headers=response.headers,
                url=redact_url(full_url),
                data=decoded,
                elapsed=elapsed,
                body=kept,
            )
        context = self._context(method, full_url, endpoint, status, body, response.headers)
        raise self._status_error(status, context, response.headers)

    def _read_body(
        self, response: requests.Response, method: str, url: str, endpoint: str | None
    ) -> bytes:
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise ResponseFormatError(
                f"response body of {declared} bytes exceeds the {self.max_body_bytes}-byte limit",
                context=self._context(method, url, endpoint, response.status_code),
            )
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(chunk_size=256 * 1024):
            size += len(chunk)
            if size > self.max_body_bytes:
                raise ResponseFormatError(
                    f"response body exceeds the {self.max_body_bytes}-byte limit",
                    context=self._context(method, url, endpoint, response.status_code),
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _decode(
        self,
        body: bytes,
        response: requests.Response,
        method: str,
        url: str,
        endpoint: str | None,
    ) -> Any:
        if not body or body.isspace():  # (strip() would copy a body of megabytes)
            return None
        self._check_json_body(body, response, method, url, endpoint)
        return self._loads(body, response.status_code, response.headers, method, url, endpoint)

    def decode(self, response: HttpResponse, *, endpoint: str | None = None) -> Any:
        """The JSON of a response read with ``decode=False`` (its ``data`` otherwise).

        Failures are the :class:`ResponseFormatError` the request itself would have raised.
        """
        body = response.body
        if body is None:
            return response.data
        if not body or body.isspace():
            return None
        try:
            return self._loads(
                body, response.status, response.headers, "GET", response.url, endpoint
            )
        except ItsmBridgeError as exc:
            exc.named(self.source)
            raise

    def _check_json_body(
        self,
        body: bytes,
        response: requests.Response,
        method: str,
        url: str,
        endpoint: str | None,
    ) -> None:
        """Refuse what is not a JSON answer from the API (a login page, a file download)."""
        content_type = response.headers.get("Content-Type", "").lower()
        looks_html = _MARKUP.match(body) is not None
        if "html" in content_type or "xml" in content_type or looks_html:
            what = content_type or "an untyped body"
            if looks_html and "html" not in content_type and "xml" not in content_type:
                what = f"an HTML page labelled {content_type or 'with no type'}"
            raise ResponseFormatError(
                f"expected JSON but got {what} (status "
                f"{response.status_code}): a login page, a hibernating instance or a proxy "
                f"answered instead of the API at {redact_url(url)}",
                context=self._context(
                    method, url, endpoint, response.status_code, body, response.headers
                ),
            )
        media_type = content_type.split(";", 1)[0].strip()
        if media_type and "json" not in media_type and media_type != "text/plain":
            # a file download, an image or a CSV export answered instead of the API
            raise ResponseFormatError(
                f"expected JSON but got {media_type} (status {response.status_code}) from "
                f"{redact_url(url)}",
                context=self._context(
                    method, url, endpoint, response.status_code, body, response.headers
                ),
            )

    def _loads(
        self,
        body: bytes,
        status: int,
        headers: Mapping[str, str],
        method: str,
        url: str,
        endpoint: str | None,
    ) -> Any:
        try:
            return _json.loads(body)
        except ValueError as exc:
            content_type = headers.get("Content-Type", "").lower()
            media_type = content_type.split(";", 1)[0].strip()
            problem = _encoding_problem(body, content_type) or (
                f"malformed JSON ({str(exc)[:120]}) in a {media_type or 'untyped'} body"
            )
            raise ResponseFormatError(
                f"{problem} from {redact_url(url)}",
                context=self._context(method, url, endpoint, status, body, headers),
            ) from None

    def _status_error(
        self, status: int, context: RequestContext, headers: Mapping[str, str]
    ) -> Exception:
        if status == 429:
            after = parse_retry_after(headers.get("Retry-After"), now=self._wall())
            return _Retryable(
                RateLimitedError("rate limited (429)", context=context),
                retry_after=after,
            )
        if status in RETRY_STATUSES:
            after = parse_retry_after(headers.get("Retry-After"), now=self._wall())
            return _Retryable(
                ServerError(f"server error {status}", context=context),
                retry_after=after,
            )
        if status == 401:
            return AuthenticationError(
                "authentication failed (401): check the credentials", context=context
            )
        if status == 403:
            return PermissionDeniedError(
                "permission denied (403): the account may not read this", context=context
            )
        if status == 404:
            return EndpointNotFoundError(
                "not found (404): check the base URL, collection name and API version",
                context=context,
            )
        if 400 <= status < 500:
            return ConfigurationError(f"request rejected ({status})", context=context)
        return ServerError(f"server error {status}", context=context)


def _tls_reason(exc: BaseException) -> str:
    """What the TLS check said (expired, wrong host, unknown issuer), from urllib3's wrapping."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError) and seen.verify_message:
            return str(seen.verify_message)
        if isinstance(seen, ssl.SSLError) and seen.reason:
            return str(seen.reason)
        nested = getattr(seen, "reason", None)
        if not isinstance(nested, BaseException):
            nested = next((a for a in seen.args if isinstance(a, BaseException)), None)
        seen = nested or seen.__cause__ or seen.__context__
    return type(exc).__name__


def _encoding_problem(body: bytes, content_type: str) -> str | None:
    """Why a body that failed to decode is not UTF-8 JSON, if that is the reason (RFC 8259).

    Only called on the error path, so the happy path never decodes twice.
    """
    declared = content_type.partition("charset=")[2].strip(" \"'").lower()
    said = f" (declared charset {declared})" if declared else ""
    if body.startswith(b"\xef\xbb\xbf"):
        return f"JSON must be UTF-8 without a byte order mark; the body starts with one{said}"
    if body.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in body[:4]:
        return f"JSON must be UTF-8; the body looks like UTF-16 or UTF-32{said}"
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (
            f"JSON must be UTF-8; byte 0x{body[exc.start]:02x} at offset {exc.start} is not"
            f" UTF-8{said}"
        )
    return None


def _remember_secret_params(params: Mapping[str, Any] | None) -> None:
    # A key sent as a query parameter can come back anywhere (an echoed URL in an HTML error
    # page); once registered it is masked in free text too, not only as ``api_key=...``.
    if params:
        for key, value in params.items():
            if isinstance(value, str) and is_sensitive_key(key):
                register_secret(value)


def _refresh_after_401(
    auth: requests.auth.AuthBase | None, failed: requests.PreparedRequest | None
) -> bool:
    """Ask the auth to renew its credentials once after a 401 (``refresh_after_401`` hook).

    The hook may take the failed request, so that an auth shared by many threads renews once
    per stale token rather than once per thread.
    """
    refresh = getattr(auth, "refresh_after_401", None)
    if not callable(refresh):
        return False
    if inspect.signature(refresh).parameters:
        return bool(refresh(failed))
    return bool(refresh())


def _root_cause(exc: BaseException) -> str:
    """The innermost reason of a requests/urllib3 error ("Connection refused", "timed out").

    requests wraps urllib3 wraps socket errors, and the outer text is a long pool description
    whose useful end gets lost when a log line is cut; the innermost cause says what happened.
    """
    inner: BaseException = exc
    seen: set[int] = set()
    while id(inner) not in seen:
        seen.add(id(inner))
        nested = inner.args[0] if inner.args and isinstance(inner.args[0], BaseException) else None
        nxt = getattr(inner, "reason", None) or nested or inner.__cause__ or inner.__context__
        if not isinstance(nxt, BaseException):
            break
        inner = nxt
    text = str(inner)
    if inner is not exc:
        # urllib3 prefixes "<HTTPConnection(host=..., port=...)>: "; keep the OS's words.
        text = text.rsplit(">: ", 1)[-1]
    return redact_text(text)[:300]
