"""The contract checks, as plain functions: each raises AssertionError saying what broke.

:class:`~itsm_bridge.testing.ConnectorConformance` runs them for a connector package; a
connector's own tests may call them on cases of their own. None needs pytest.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import socket
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import requests

import itsm_bridge as ib
from itsm_bridge._time import parse_datetime
from itsm_bridge.http import dig
from itsm_bridge.sandbox import TruthItem, credentials_of

__all__ = [
    "BOUNDARY",
    "PullRun",
    "RecordedFixture",
    "check_bad_record_rejected",
    "check_endpoints",
    "check_incremental",
    "check_mapper_purity",
    "check_recorded_fixture",
    "check_resume",
    "check_round_trip",
    "check_since_bound",
    "no_network",
    "plant_since_boundary",
    "run_pull",
]

_SHOW = 8  # how many offending keys a failure message lists


# -- recorded fixtures -------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedFixture:
    """A recorded API response (or one raw record) and the facts its records must map to.

    ``records_path`` says where the records sit in the JSON (``"result"``, ``"issues"``;
    ``None`` for a bare list or a single record object). ``expect`` maps a record's key
    (``INC0010001``) to minimal facts about its WorkItem: field names, or dotted paths into
    ``extra`` (``"extra.investment.portfolio_category"``), with the expected values.
    ``options`` are connector options to map with (a non-UTC instance's time zone, say).
    """

    kind: ib.Kind | str
    path: Path | str
    records_path: str | None = None
    expect: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)

    def records(self) -> list[Mapping[str, Any]]:
        """The raw records in the file."""
        data = json.loads(Path(self.path).read_text(encoding="utf-8"))
        found = dig(data, self.records_path)
        if isinstance(found, Mapping):
            return [found]
        assert isinstance(found, list), (
            f"{self.path}: expected a list or an object at {self.records_path!r}, "
            f"got {type(found).__name__}"
        )
        return found


def _fact(item: ib.WorkItem, path: str) -> Any:
    head, _, rest = path.partition(".")
    value: Any = getattr(item, head)
    for step in rest.split(".") if rest else ():
        value = value.get(step) if isinstance(value, Mapping) else None
    return value


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(actual, datetime) and isinstance(expected, str):
        return actual == parse_datetime(expected)
    if isinstance(actual, tuple) and isinstance(expected, list):
        return list(actual) == expected
    return bool(actual == expected)


def check_recorded_fixture(connector: ib.Connector, fixture: RecordedFixture) -> list[ib.WorkItem]:
    """Every record in the fixture maps to a clean WorkItem with the expected facts."""
    kind = ib.Kind(fixture.kind)
    records = fixture.records()
    assert records, f"{fixture.path}: no records found at {fixture.records_path!r}"
    items: list[ib.WorkItem] = []
    for index, raw in enumerate(records):
        try:
            item = connector.map_record(kind, raw)
        except (ib.ItsmBridgeError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise AssertionError(
                f"{fixture.path} record {index} ({_native(raw)}): {type(exc).__name__}: {exc}"
            ) from exc
        _check_item(connector, kind, item, f"{fixture.path} record {index}")
        items.append(item)
    by_key = {item.key: item for item in items}
    for key, facts in fixture.expect.items():
        assert key in by_key, f"{fixture.path}: no record maps to key {key!r}"
        for path, expected in facts.items():
            actual = _fact(by_key[key], path)
            assert _same(actual, expected), (
                f"{fixture.path} {key}: {path} is {actual!r}, expected {expected!r}"
            )
    return items


def _check_item(connector: ib.Connector, kind: ib.Kind, item: ib.WorkItem, where: str) -> None:
    assert isinstance(item, ib.WorkItem), f"{where}: mapped to {type(item).__name__}"
    assert item.kind is kind, f"{where}: kind {item.kind} for a {kind} endpoint"
    assert item.source == connector.source, f"{where}: source {item.source!r}"
    assert item.id.startswith(f"{connector.source}:"), f"{where}: id {item.id!r} lacks the source"
    assert len(item.id) > len(connector.source) + 1, f"{where}: id {item.id!r} has no native id"
    for name in ("created_at", "updated_at", "resolved_at"):
        value = getattr(item, name)
        assert value is None or value.utcoffset() == timedelta(0), f"{where}: {name} not UTC"


# -- endpoints and mappers -----------------------------------------------------------------------


def check_endpoints(connector: ib.Connector) -> None:
    """Endpoints are declared as data, unique by name and by (kind, path), covering every kind."""
    endpoints = list(connector.endpoints())
    assert endpoints, f"{connector.name}: no endpoints declared"
    for ep in endpoints:
        assert isinstance(ep, ib.Endpoint), f"{ep!r} is not an Endpoint"
        assert isinstance(ep.kind, ib.Kind), f"endpoint {ep.name!r}: kind {ep.kind!r} is no Kind"
        assert ep.name, f"an endpoint of {ep.kind} has no name"
        assert ep.name.strip() == ep.name, f"endpoint name {ep.name!r}"
        assert ep.path, f"endpoint {ep.name!r} has no path"
    names = [ep.name for ep in endpoints]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f"endpoint names declared twice: {duplicates}"
    pairs = [(ep.kind, ep.path) for ep in endpoints]
    twice = sorted({f"{k.value} {p}" for k, p in pairs if pairs.count((k, p)) > 1})
    assert not twice, f"endpoints declared twice for the same kind and path: {twice}"
    kinds = list(connector.kinds)
    assert kinds, f"{connector.name}: no kinds"
    uncovered = [k.value for k in kinds if k not in {ep.kind for ep in endpoints}]
    assert not uncovered, f"kinds without an endpoint: {uncovered}"


class _NetworkUsed(AssertionError):
    pass


@contextmanager
def no_network() -> Iterator[None]:
    """Make every way out of the process raise: sockets, DNS, requests, urllib."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise _NetworkUsed("a mapper tried to use the network; mappers must be pure")

    with ExitStack() as stack:
        for target, name in (
            (socket.socket, "connect"),
            (socket.socket, "connect_ex"),
            (socket, "create_connection"),
            (socket, "getaddrinfo"),
            (requests.Session, "send"),
            (requests.adapters.HTTPAdapter, "send"),
            (urllib.request, "urlopen"),
        ):
            stack.enter_context(mock.patch.object(target, name, refuse))
        yield


def check_mapper_purity(
    connector: ib.Connector, records: Iterable[tuple[ib.Kind, Mapping[str, Any]]]
) -> int:
    """Mapping does no I/O, leaves the raw record alone and gives the same item twice.

    Returns how many records were checked (records that map to a reject are checked too: a
    mapper may refuse a record, but not by calling out).
    """
    checked = 0
    with no_network():
        for kind, raw in records:
            before = copy.deepcopy(raw)
            try:
                first = connector.map_record(kind, raw)
            except _NetworkUsed:
                raise
            except (ib.ItsmBridgeError, ValueError, TypeError, KeyError):
                first = None
            assert raw == before, f"map_record changed its input record: {_native(raw)}"
            if first is not None:
                again = connector.map_record(kind, copy.deepcopy(raw))
                assert again == first, f"map_record is not deterministic for {first.key}"
            checked += 1
    return checked


def _native(raw: Mapping[str, Any]) -> str:
    for name in ("sys_id", "id", "key", "number"):
        if name in raw:
            return f"{name}={raw[name]!r}"
    return "<record>"


# -- pulls against a sandbox ---------------------------------------------------------------------


@dataclass
class PullRun:
    """One complete ``pull_pages`` run of one kind, checked page by page as it went."""

    kind: ib.Kind
    pages: list[ib.Page]

    @property
    def items(self) -> list[ib.WorkItem]:
        return [item for page in self.pages for item in page.items]

    @property
    def rejects(self) -> list[ib.Reject]:
        return [reject for page in self.pages for reject in page.rejects]

    @property
    def final_cursor(self) -> ib.Cursor:
        cursor = self.pages[-1].cursor
        assert cursor is not None
        return cursor


def run_pull(
    connector: ib.Connector,
    kind: ib.Kind,
    cursor: ib.Cursor | None = None,
    *,
    since: datetime | None = None,
    max_pages: int = 10_000,
) -> PullRun:
    """Run ``pull_pages`` to the end, checking that paging terminates and pages are well formed.

    Every page's items are of the kind and the connector's source, every cursor survives a JSON
    round trip, exactly the last page is ``final``, and its cursor has a watermark.
    """
    pages: list[ib.Page] = []
    stream = connector.pull_pages(kind, cursor, since=since)
    for page in itertools.islice(stream, max_pages + 1):
        where = f"{connector.name} {kind.value} page {len(pages)}"
        assert isinstance(page, ib.Page), f"{where}: yielded {type(page).__name__}"
        assert page.kind is kind, f"{where}: page kind {page.kind}"
        assert not (pages and pages[-1].final), f"{where}: a page after the final page"
        for item in page.items:
            _check_item(connector, kind, item, f"{where} {item.key}")
        if page.cursor is not None:
            text = page.cursor.model_dump_json()
            assert ib.Cursor.model_validate_json(text) == page.cursor, (
                f"{where}: the cursor does not survive a JSON round trip: {text}"
            )
        pages.append(page)
    assert len(pages) <= max_pages, f"{connector.name} {kind.value}: paging did not terminate"
    assert pages, (
        f"{connector.name} {kind.value}: pull_pages yielded nothing, not even a final page"
    )
    last = pages[-1]
    assert last.final, f"{connector.name} {kind.value}: the last page is not marked final"
    no_watermark = f"{connector.name} {kind.value}: the final page has no cursor with a watermark"
    assert last.cursor is not None, no_watermark
    assert last.cursor.watermark is not None, no_watermark
    return PullRun(kind, pages)


def _diff(label: str, got: Sequence[str], expected: set[str]) -> str | None:
    twice = sorted(key for key, n in Counter(got).items() if n > 1)
    missing = sorted(expected - set(got))
    extra = sorted(set(got) - expected)
    if not (twice or missing or extra):
        return None
    return (
        f"{label}: {len(got)} records for {len(expected)} expected; "
        f"missing {missing[:_SHOW]} ({len(missing)}), unexpected {extra[:_SHOW]} ({len(extra)}), "
        f"twice {twice[:_SHOW]} ({len(twice)})"
    )


def secrets_of(auth: Any) -> list[str]:
    """The secrets an auth object sends (a Basic password and its base64 form, a bearer token),
    read by :func:`~itsm_bridge.sandbox.credentials_of`."""
    try:
        scheme, user, secret = credentials_of(auth)
    except TypeError:
        return []
    found = [secret]
    if scheme == "basic" and user:
        found.append(base64.b64encode(f"{user}:{secret}".encode()).decode("ascii"))
    return [value for value in found if len(value) >= 4]


def check_reprs_hide_secrets(connector: ib.Connector, secrets: Iterable[str]) -> None:
    """No secret in the repr of the connector, its options, its transport or its auth."""
    shown = {
        "connector": repr(connector),
        "options": repr(connector.options),
        "transport": repr(connector.transport),
        "auth": repr(connector.auth),
    }
    leaks = [name for name, text in shown.items() for secret in secrets if secret in text]
    assert not leaks, f"a credential appears in the repr of: {', '.join(sorted(set(leaks)))}"


def check_times_match_truth(run: PullRun, visible: Iterable[TruthItem]) -> None:
    """Every pulled record's ``updated_at`` is the instant the sandbox holds, to the second (a
    platform may stamp whole seconds): an account offset read as UTC is hours off, which a
    comparison of keys alone cannot see."""
    truth = {i.number: i.updated for i in visible if i.kind is run.kind}
    wrong = [
        f"{item.key}: {item.updated_at.isoformat()} for {truth[item.key].isoformat()}"
        for item in run.items
        if item.key in truth and abs((item.updated_at - truth[item.key]).total_seconds()) >= 1
    ]
    assert not wrong, (
        f"{run.kind.value}: {len(wrong)} records pulled with an updated_at that is not the "
        f"platform's (a time zone read wrongly?): {wrong[:_SHOW]}"
    )


def check_round_trip(run: PullRun, expected_keys: Iterable[str]) -> None:
    """The run returned every expected record exactly once, and nothing else, without rejects."""
    assert not run.rejects, (
        f"{run.kind.value}: {len(run.rejects)} generated records were rejected, first: "
        f"{run.rejects[0].native_id}: {run.rejects[0].reason}"
    )
    problem = _diff(f"{run.kind.value} round trip", [i.key for i in run.items], set(expected_keys))
    assert problem is None, problem
    ids = [item.id for item in run.items]
    assert len(ids) == len(set(ids)), f"{run.kind.value}: two records share an id"


_REFUSED = "refused on purpose by the conformance kit"


def check_bad_record_rejected(
    connector: ib.Connector, kind: ib.Kind, expected_keys: Iterable[str]
) -> None:
    """A record the mapper fails on is neither lost nor fatal to the run.

    Its mapper is made to fail on one record (the first it is given). Through ``pull_pages``
    that record must be one :class:`~itsm_bridge.Reject` that names it and keeps its raw data,
    and every other record must still come through. ``pull`` without ``on_reject`` must raise
    :class:`~itsm_bridge.MappingError` rather than skip it.
    """
    refused: list[Mapping[str, Any]] = []
    original = connector.map_record
    lock = threading.Lock()

    def failing(kind_: ib.Kind, raw: Mapping[str, Any]) -> ib.WorkItem:
        with lock:
            first = not refused
            if first:
                refused.append(copy.deepcopy(raw))
        if first:
            raise ValueError(_REFUSED)
        return original(kind_, raw)

    try:
        with mock.patch.object(connector, "map_record", failing):
            run = run_pull(connector, kind)
    except ValueError as exc:
        if _REFUSED not in str(exc):
            raise
        raise AssertionError(
            f"{kind.value}: one record that failed to map stopped the whole run ({exc}): map "
            "through self.map_safely and put the Reject on the page"
        ) from exc
    assert refused, (
        f"{kind.value}: pull_pages never called map_record: map each record through "
        "self.map_safely (or self.map_record)"
    )
    rejects = run.rejects
    assert len(rejects) == 1, (
        f"{kind.value}: one record failed to map and {len(rejects)} rejects came out (a failed "
        "record must become exactly one Reject on its page, not vanish or stop the run)"
    )
    reject = rejects[0]
    assert reject.native_id, f"{kind.value}: the reject does not name its record (native_id)"
    assert _REFUSED in reject.reason, (
        f"{kind.value}: the reject's reason {reject.reason!r} does not carry the mapper's error"
    )
    assert reject.raw == refused[0], f"{kind.value}: the reject does not keep the raw record"
    got = [item.key for item in run.items]
    expected = set(expected_keys)
    # The refused record may be missing (or mapped on a re-read); nothing else may be.
    problem = _diff(f"{kind.value} with one record refused", got, expected)
    only_refused_missing = set(got) <= expected and len(set(got)) == len(got) == len(expected) - 1
    assert problem is None or only_refused_missing, problem

    refused.clear()
    raised: ib.MappingError | None = None
    with mock.patch.object(connector, "map_record", failing):
        try:
            for _ in connector.pull(kinds=[kind]):
                pass
        except ib.MappingError as exc:
            raised = exc
    assert raised is not None, (
        f"{kind.value}: pull() without on_reject skipped a record that failed to map instead of "
        "raising MappingError"
    )
    assert _REFUSED in str(raised), f"{kind.value}: the MappingError hides the cause: {raised}"


def check_incremental(connector: ib.Connector, first: PullRun) -> PullRun:
    """Resuming from the final cursor, with nothing changed, returns nothing new.

    Only overlap re-reads are allowed: records already returned, at the same version, and
    updated within ``overlap_seconds`` of the cursor's watermark, so the store dedupes them.
    """
    cursor = first.final_cursor
    again = run_pull(connector, first.kind, cursor)
    before = {item.id: item for item in first.items}
    assert cursor.watermark is not None
    overlap = float(getattr(connector.options, "overlap_seconds", 0.0))
    floor = cursor.watermark - timedelta(seconds=overlap)
    for item in again.items:
        assert item.id in before, f"{first.kind.value}: {item.key} is new, yet nothing changed"
        assert item.updated_at == before[item.id].updated_at, (
            f"{first.kind.value}: {item.key} came back at another version, yet nothing changed"
        )
        assert item.updated_at >= floor, (
            f"{first.kind.value}: {item.key} (updated {item.updated_at:%Y-%m-%dT%H:%M:%SZ}) is "
            f"older than watermark - overlap ({floor:%Y-%m-%dT%H:%M:%SZ}): the cursor was ignored"
        )
    return again


def check_resume(connector: ib.Connector, first: PullRun, expected_keys: Iterable[str]) -> None:
    """A page's cursor resumes the pull after that page: nothing is lost across a restart."""
    middle = [i for i, p in enumerate(first.pages[:-1]) if p.cursor is not None]
    if not middle:
        return
    cut = middle[len(middle) // 2]
    cursor = first.pages[cut].cursor
    done = {item.key for page in first.pages[: cut + 1] for item in page.items}
    rest = run_pull(connector, first.kind, cursor)
    covered = done | {item.key for item in rest.items}
    missing = sorted(set(expected_keys) - covered)
    assert not missing, (
        f"{first.kind.value}: resuming after page {cut} lost {len(missing)} records: "
        f"{missing[:_SHOW]}"
    )


def check_since_bound(
    connector: ib.Connector,
    kind: ib.Kind,
    since: datetime,
    visible: Iterable[TruthItem],
) -> None:
    """``pull(since=...)`` returns exactly the records updated at or after ``since``."""
    expected = {i.number for i in visible if i.kind is kind and i.updated >= since}
    got = [item.key for item in connector.pull(kinds=[kind], since=since)]
    problem = _diff(f"{kind.value} since {since.isoformat()}", got, expected)
    assert problem is None, problem


BOUNDARY = datetime(2026, 5, 5, 5, 5, 5, tzinfo=UTC)
"""Where :func:`plant_since_boundary` puts its pair of records."""


def plant_since_boundary(
    items: Sequence[TruthItem], at: datetime = BOUNDARY
) -> tuple[list[TruthItem], dict[ib.Kind, datetime]]:
    """Move two records of each kind to ``at + n min`` and one second before it.

    A ``since`` bound that is off by a second (a vendor's minute precision, a local-time
    query, a ``>`` for a ``>=``) then loses or gains a record, and the check sees it.
    """
    out = list(items)
    bounds: dict[ib.Kind, datetime] = {}
    for n, kind in enumerate(sorted({i.kind for i in out})):
        indexes = [i for i, item in enumerate(out) if item.kind is kind][:2]
        if len(indexes) < 2:
            continue
        bound = at + timedelta(minutes=n, seconds=n)
        for index, moment in zip(indexes, (bound, bound - timedelta(seconds=1))):
            item = out[index]
            created = min(item.created, moment - timedelta(days=1))
            resolved = item.resolved if item.resolved is None else min(item.resolved, moment)
            out[index] = replace(item, created=created, updated=moment, resolved=resolved)
        bounds[kind] = bound
    return out, bounds
