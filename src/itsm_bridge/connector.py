"""The connector contract and the entry-point registry.

A connector turns one platform into a stream of :class:`~itsm_bridge.schema.WorkItem` pages. It
declares its endpoints, maps raw records with pure functions, and fetches through the
:class:`~itsm_bridge.http.Transport` it is given. Connectors are found through the entry-point
group ``itsm_bridge.connectors``; the built-in ones register exactly like a third party's would::

    [project.entry-points."itsm_bridge.connectors"]
    servicenow = "itsm_bridge_servicenow:ServiceNowConnector"

The hooks, deliberately few:

- ``kinds`` and ``endpoints()``: what the connector can pull, declared as data;
- ``map_record(kind, raw)``: the pure mapper (no I/O; the conformance kit checks);
- ``pull_pages(kind, cursor, since=...)``: the incremental fetch, yielding :class:`Page` objects,
  each with the cursor that resumes *after* it;
- optionally ``census(kind)`` (every visible native id) and ``capabilities``.

``pull()`` and the sync engine are built on ``pull_pages`` and need nothing else.
"""

from __future__ import annotations

import gc
import logging
import threading
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import entry_points
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from itsm_bridge._time import ensure_utc, parse_datetime
from itsm_bridge.errors import (
    ConfigurationError,
    InvalidOptionsError,
    ItsmBridgeError,
    KindUnavailableError,
    MappingError,
    UnknownConnectorError,
)
from itsm_bridge.http import Transport
from itsm_bridge.http.redaction import redact_url
from itsm_bridge.schema import Kind, UtcDatetime, WorkItem

__all__ = [
    "Capabilities",
    "CompletenessCheck",
    "Connector",
    "ConnectorOptions",
    "Cursor",
    "Endpoint",
    "Page",
    "PullStats",
    "Reject",
    "available_connectors",
    "connect",
    "connector_class",
    "default_source",
    "parse_kinds",
    "parse_since",
    "relaxed_gc",
]

log = logging.getLogger("itsm_bridge.connector")

ENTRY_POINT_GROUP = "itsm_bridge.connectors"


def default_source(base_url: str) -> str:
    """The name a source gets when none is given: the host, then ``_port`` when the URL names
    a port other than its scheme's default, then ``/path`` when it has one.

    Two sites on one host (a sandbox per port, two Jira sites behind one proxy path) are two
    sources: they must never share ids or cursors. The name has no ``:`` (an IPv6 address gets
    ``-`` for its colons), so an id ``<source>:<native id>`` still splits at its first colon.
    """
    parts = urlsplit(base_url.strip())
    name = (parts.hostname or "source").lower().replace(":", "-")
    try:
        port = parts.port
    except ValueError:
        port = None  # the transport refuses such a URL with the reason
    if port is not None and port != {"http": 80, "https": 443}.get(parts.scheme):
        name += f"_{port}"
    path = parts.path.strip("/")
    return f"{name}/{path}" if path else name


class ConnectorOptions(BaseModel):
    """Options every connector understands; a connector subclasses this for its own.

    Unknown options are refused (a typo must not silently fall back to a default).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str | None = Field(
        default=None,
        min_length=1,
        pattern=r"^[^:]+$",  # an id "<source>:<native id>" splits at its first colon
        description="Name of this source in ids and the store (no ':'); default: the host, "
        "then _port and /path when the URL has them.",
    )
    page_size: int = Field(default=1000, ge=1, le=10_000)
    max_workers: int = Field(default=4, ge=1, le=32, description="Parallel ranges per kind.")
    rate: float | None = Field(default=None, gt=0, description="Requests per second per host.")
    max_concurrency: int = Field(default=4, ge=1, le=64)
    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=60.0, gt=0)
    verify: bool | str = Field(default=True, description="TLS verification or a CA bundle path.")
    allow_insecure_http: bool = False
    overlap_seconds: float = Field(default=300.0, ge=0, description="Re-read before the cursor.")
    lag_seconds: float = Field(default=5.0, ge=0, description="Window closes this far before now.")


@dataclass(frozen=True)
class Endpoint:
    """One collection on the platform (a ServiceNow table, a Jira JQL search) and its kind."""

    name: str
    kind: Kind
    path: str
    description: str = ""


@dataclass(frozen=True)
class Capabilities:
    """What a connector can do beyond the contract, so callers can plan (not guess) a pull.

    ``parallel_ranges``: one kind is fetched as several ranges at once; ``completeness_check``:
    fetched counts are compared with the platform's own; ``census``: :meth:`Connector.census`
    lists every visible id, so deletions can be marked.
    """

    incremental: bool = True
    parallel_ranges: bool = False
    completeness_check: bool = False
    census: bool = False


class Cursor(BaseModel):
    """A resumable position: everything updated before ``watermark`` is stored.

    ``boundary_ids`` are the ids already stored *at* the watermark second (several records can
    share a timestamp). ``state`` is connector-private (open ranges of a parallel pull, a
    deployment flag) and must be JSON-serialisable.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    watermark: UtcDatetime | None = None
    boundary_ids: tuple[str, ...] = ()
    state: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class Reject:
    """A raw record that could not be mapped, with the reason; it goes to the quarantine."""

    kind: Kind
    native_id: str | None
    reason: str
    raw: Mapping[str, Any]


@dataclass(frozen=True)
class CompletenessCheck:
    """Records fetched in a window compared with the platform's own count for it."""

    kind: Kind
    window: str
    expected: int | None
    fetched: int

    @property
    def ok(self) -> bool | None:
        return None if self.expected is None else self.expected == self.fetched


@dataclass(frozen=True)
class Page:
    """One unit of progress: mapped items, rejects, and the cursor that resumes after them.

    ``cursor`` is ``None`` when this page does not complete a resumable prefix (a parallel range
    finished before an earlier one); the sync engine stores the items and waits for a page that
    carries a cursor. ``final`` marks the last page of a pull of this kind.
    """

    kind: Kind
    items: Sequence[WorkItem]
    rejects: Sequence[Reject] = ()
    cursor: Cursor | None = None
    final: bool = False


@dataclass
class PullStats:
    """What one connector saw, for the run report."""

    pages: int = 0
    records: int = 0
    rejected: int = 0
    unknown_codes: Counter[str] = field(default_factory=Counter)
    completeness: list[CompletenessCheck] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # kind -> why it was skipped
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_page(self, records: int, rejected: int) -> None:
        with self._lock:
            self.pages += 1
            self.records += records
            self.rejected += rejected

    def unknown_code(self, what: str) -> None:
        with self._lock:
            self.unknown_codes[what] += 1

    def kind_unavailable(self, kind: Kind, why: str, among: Sequence[Kind]) -> bool:
        """Note that ``kind`` is not on the instance; whether every kind of ``among`` is not."""
        with self._lock:
            self.unavailable[kind.value] = why
            return all(k.value in self.unavailable for k in among)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pages": self.pages,
            "records": self.records,
            "rejected": self.rejected,
            "unknown_codes": dict(self.unknown_codes),
            "completeness": [
                {
                    "kind": c.kind.value,
                    "window": c.window,
                    "expected": c.expected,
                    "fetched": c.fetched,
                    "ok": c.ok,
                }
                for c in self.completeness
            ],
            "unavailable_kinds": dict(self.unavailable),
        }


_gc_lock = threading.Lock()
_gc_pulls = 0
_gc_thresholds: tuple[tuple[int, int, int], tuple[int, int, int]] | None = None  # (saved, set)


@contextmanager
def relaxed_gc(young: int = 50_000) -> Iterator[None]:
    """Run the cyclic garbage collector less often while records stream through.

    A 1000-record page decodes into ~30,000 containers that reference counting frees moments
    later; at the default young-generation threshold (700) the collector still runs every few
    hundred allocations and traverses them, about a fifth of a pull's CPU time. Records hold no
    reference cycles, so collecting less often frees the same memory. The setting is
    process-wide: the thresholds in force before the first of several concurrent pulls come back
    when the last one ends, unless someone changed them meanwhile. A collector switched off
    (``gc.disable()`` or a threshold of 0) stays off.
    """
    global _gc_pulls, _gc_thresholds
    with _gc_lock:
        if _gc_pulls == 0:
            saved = gc.get_threshold()
            if 0 < saved[0] < young:
                wanted = (young, saved[1], saved[2])
                gc.set_threshold(*wanted)
                _gc_thresholds = (saved, wanted)
        _gc_pulls += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pulls -= 1
            if _gc_pulls == 0 and _gc_thresholds is not None:
                saved, wanted = _gc_thresholds
                _gc_thresholds = None
                if gc.get_threshold() == wanted:
                    gc.set_threshold(*saved)


def parse_kinds(kinds: Iterable[str | Kind] | None, supported: Sequence[Kind]) -> list[Kind]:
    """Validate requested kinds against what a connector supports (all of them for ``None``).

    One kind may be given alone (``"incident"``, ``Kind.INCIDENT``), not only in a list.
    """
    if kinds is None:
        return list(supported)
    if isinstance(kinds, str):  # a Kind is a str too; iterating either would give letters
        kinds = [kinds]
    result: list[Kind] = []
    for value in kinds:
        try:
            kind = Kind(value)
        except ValueError:
            names = ", ".join(k.value for k in Kind)
            raise ConfigurationError(f"unknown kind {value!r}; kinds are: {names}") from None
        if kind not in supported:
            names = ", ".join(k.value for k in supported)
            raise ConfigurationError(f"this connector cannot pull {kind.value!r}; it has: {names}")
        if kind not in result:
            result.append(kind)
    if not result:
        # An empty list is most likely a filter that came out empty: pulling nothing, with
        # status ok, would hide it. None asks for every kind.
        raise ConfigurationError("no kinds given: name at least one, or pass None for every kind")
    return result


def parse_since(since: datetime | str | None) -> datetime | None:
    """``since`` as an aware UTC datetime: an ISO 8601 string with its offset, or an aware
    datetime. Anything else is a :class:`ConfigurationError` saying what it got."""
    if since is None:
        return None
    if isinstance(since, str):
        try:
            return parse_datetime(since)
        except ValueError as exc:
            raise ConfigurationError(f"since: {exc}") from None
    if not isinstance(since, datetime):
        raise ConfigurationError(
            f"since must be an ISO 8601 string or an aware datetime, not {type(since).__name__}"
        )
    try:
        return ensure_utc(since)
    except ValueError:
        raise ConfigurationError("since must be timezone-aware (UTC is safest)") from None


class Connector(ABC):
    """Base class of every connector. Subclasses set ``name``, ``options_model`` and the hooks."""

    name: ClassVar[str]
    options_model: ClassVar[type[ConnectorOptions]] = ConnectorOptions
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(
        self,
        base_url: str,
        *,
        auth: requests.auth.AuthBase | None = None,
        transport: Transport | None = None,
        **options: Any,
    ) -> None:
        try:
            self.options = self.options_model(**options)
        except ValidationError as exc:
            raise InvalidOptionsError(
                f"invalid options for connector {self.name!r}: {_describe(exc, self.options_model)}"
            ) from None
        self.base_url = base_url.rstrip("/")
        self.source = self.options.source or default_source(base_url)
        self.auth = auth
        if transport is not None and transport.source is None:
            transport.source = self.source
        self.transport = transport or Transport(
            base_url,
            auth=auth,
            connector=self.name,
            source=self.source,
            timeout=(self.options.connect_timeout, self.options.read_timeout),
            rate=self.options.rate,
            max_concurrency=self.options.max_concurrency,
            verify=self.options.verify,
            allow_insecure_http=self.options.allow_insecure_http,
        )
        self.stats = PullStats()

    def __repr__(self) -> str:
        url = redact_url(self.base_url)
        return f"{type(self).__name__}(source={self.source!r}, base_url={url!r})"

    # -- hooks ---------------------------------------------------------------------------------

    @property
    @abstractmethod
    def kinds(self) -> Sequence[Kind]:
        """The kinds this connector (as configured) can pull."""

    @abstractmethod
    def endpoints(self) -> Sequence[Endpoint]:
        """The collections this connector reads, as data."""

    @abstractmethod
    def map_record(self, kind: Kind, raw: Mapping[str, Any]) -> WorkItem:
        """Map one raw record; pure (no I/O). Raise MappingError (or any DataError) if it can't."""

    @abstractmethod
    def pull_pages(
        self, kind: Kind, cursor: Cursor | None = None, *, since: datetime | None = None
    ) -> Iterator[Page]:
        """Yield pages of ``kind`` updated at or after ``cursor`` (or ``since``), oldest first."""

    def census(self, kind: Kind) -> Iterator[str]:
        """Every native id of ``kind`` visible now (for marking deletions); optional."""
        raise NotImplementedError(f"connector {self.name!r} has no census")

    # -- built on the hooks -----------------------------------------------------------------------

    def map_safely(
        self, kind: Kind, raw: Mapping[str, Any], native_id: str | None
    ) -> WorkItem | Reject:
        """Map a record, returning a :class:`Reject` instead of raising on bad data."""
        try:
            return self.map_record(kind, raw)
        except ItsmBridgeError as exc:
            return Reject(kind, native_id, exc.message, raw)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
            return Reject(kind, native_id, f"{type(exc).__name__}: {exc}", raw)

    def pull(
        self,
        kinds: Iterable[str | Kind] | None = None,
        since: datetime | str | None = None,
        *,
        on_reject: Callable[[Reject], None] | None = None,
    ) -> Iterator[WorkItem]:
        """Every record of ``kinds`` updated at or after ``since``, each once.

        A record that cannot be mapped raises :class:`MappingError` naming it, unless
        ``on_reject`` is given, which then receives it (and the pull goes on).
        """
        wanted = parse_kinds(kinds, self.kinds)
        bound = parse_since(since)
        try:
            with relaxed_gc():
                for kind in wanted:
                    pages = self.pull_pages(kind, None, since=bound)
                    if kinds is None:
                        pages = self.unless_unavailable(kind, pages, wanted)
                    yield from self._items_of(pages, on_reject)
        except ItsmBridgeError as exc:
            exc.named(self.source)
            raise

    def unless_unavailable(
        self, kind: Kind, pages: Iterable[Page], wanted: Sequence[Kind]
    ) -> Iterator[Page]:
        """``pages``, or none when the instance has no collection for ``kind``.

        For a pull or sync of every kind (none named): a :class:`KindUnavailableError` raised
        before the first page skips the kind with a warning and names it in the report
        (``unavailable_kinds``). It is raised all the same when no kind of ``wanted`` is
        available (a wrong base URL looks like that too).
        """
        first = True
        try:
            for page in pages:
                first = False
                yield page
        except KindUnavailableError as exc:
            if not first:
                raise
            if self.stats.kind_unavailable(kind, exc.message, wanted):
                names = ", ".join(k.value for k in wanted)
                raise KindUnavailableError(
                    f"none of the kinds ({names}) exists here: check the base URL; the last "
                    f"said: {exc.message}",
                    context=exc.context,
                    source=self.source,
                ) from None
            log.warning(
                "%s: %s; a pull of every kind goes on without %s",
                self.source,
                exc.message,
                kind.value,
            )

    def _items_of(
        self, pages: Iterable[Page], on_reject: Callable[[Reject], None] | None
    ) -> Iterator[WorkItem]:
        """The items of ``pages``, as :meth:`pull` hands them out (rejects raise or go to
        ``on_reject``)."""
        for page in pages:
            for reject in page.rejects:
                if on_reject is None:
                    raise MappingError(
                        f"cannot map {page.kind.value} record: {reject.reason}",
                        source=self.source,
                        record=reject.native_id,
                    )
                on_reject(reject)
            yield from page.items

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Connector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def report(self) -> dict[str, Any]:
        """Counters for the run report (transport and pull)."""
        return {**self.transport.stats.snapshot(), **self.stats.as_dict()}


def _describe(exc: ValidationError, model: type[BaseModel]) -> str:
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"]) or "<options>"
        if err["type"] == "extra_forbidden":
            # A typo must say what was meant, not only that it was wrong.
            known = ", ".join(sorted(model.model_fields))
            problems.append(f"unknown option {where!r} (known options: {known})")
        else:
            problems.append(f"{where}: {err['msg']}")
    return "; ".join(problems)


def _registered() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_connectors() -> list[str]:
    """Names of the installed connectors (entry-point group ``itsm_bridge.connectors``)."""
    return sorted(_registered())


def connector_class(name: str) -> type[Connector]:
    """The installed connector class registered as ``name``; unknown names list what exists."""
    registered = _registered()
    ep = registered.get(name)
    if ep is None:
        installed = ", ".join(sorted(registered)) or "none"
        raise UnknownConnectorError(
            f"no connector named {name!r} is installed (installed: {installed}); install the "
            'package that provides it (the built-ins: pip install "itsm-bridge[all]")'
        )
    try:
        cls = ep.load()
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(
            f"connector {name!r} is registered as {ep.value!r} but cannot be loaded: {exc}"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise ConfigurationError(
            f"entry point {name!r} ({ep.value!r}) does not name a Connector subclass"
        )
    return cls


def connect(
    name: str,
    base_url: str,
    *,
    auth: requests.auth.AuthBase | None = None,
    **options: Any,
) -> Connector:
    """Build the connector ``name`` for ``base_url``; options are validated by its model."""
    return connector_class(name)(base_url, auth=auth, **options)
