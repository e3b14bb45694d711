"""The ServiceNow connector: Table API keyset pulls in fixed windows, complete and resumable.

Vendor pages implemented (see ``platform-apis.md`` part A): Table API ``GET
/api/now/table/{table}`` (A1-A5), Aggregate API ``GET /api/now/stats/{table}`` (A10),
``sys_db_object`` / ``sys_dictionary`` for field validation, OAuth ``POST /oauth_token.do`` (A9).

A pull of one kind reads a fixed window [cursor - overlap, server time - lag) of
``sys_updated_on``, split into time ranges read in parallel (:mod:`.paging`), then a closing
catch-up range from the window's end on, for records that changed while it was read. Every page
carries a cursor that resumes right after the pages delivered so far (:mod:`.ranges`). The final
cursor remembers the versions delivered near its watermark, so the next run re-reads the overlap
without delivering anything twice, yet still catches records changed in the cursor's own second.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import requests

from itsm_bridge import (
    BasicAuth,
    Capabilities,
    CompletenessCheck,
    ConfigurationError,
    Connector,
    Cursor,
    Endpoint,
    EndpointNotFoundError,
    IncompletePullError,
    Kind,
    OAuth2,
    Page,
    PermissionDeniedError,
    Reject,
    RequestContext,
    ResponseFormatError,
    ServerError,
    UnknownFieldError,
    WorkItem,
)
from itsm_bridge.http import HttpResponse
from itsm_bridge_servicenow.codes import CodeBook
from itsm_bridge_servicenow.dictionary import DictionaryUnreadable, FieldCatalog
from itsm_bridge_servicenow.mapping import MappingContext, map_row
from itsm_bridge_servicenow.options import ServiceNowOptions, parse_code_entry
from itsm_bridge_servicenow.paging import Fetched, PageSize, RangePage, read_range, run_ranges
from itsm_bridge_servicenow.query import (
    check_user_filter,
    count_query,
    id_keyset_query,
    keyset_query,
)
from itsm_bridge_servicenow.ranges import (
    PullState,
    Range,
    floor_second,
    split_window,
    window_start,
)
from itsm_bridge_servicenow.tables import BUILTIN, KEY_FIELDS, TableSpec, build_specs
from itsm_bridge_servicenow.values import format_utc, parse_utc, value

__all__ = ["ServiceNowConnector"]

log = logging.getLogger("itsm_bridge.servicenow")

_CANCELLED = ("maximum execution time", "transaction cancelled", "transaction canceled")


def _auth_from_options(base_url: str, options: Mapping[str, Any]) -> requests.auth.AuthBase | None:
    try:
        opts = ServiceNowOptions(**options)
    except ValueError:
        return None  # the base class reports invalid options with its own message
    password = opts.password.get_secret_value() if opts.password else None
    if opts.oauth_client_id:
        secret = opts.oauth_client_secret.get_secret_value() if opts.oauth_client_secret else None
        return OAuth2(
            f"{base_url.rstrip('/')}/oauth_token.do",
            client_id=opts.oauth_client_id,
            client_secret=secret,
            grant=opts.oauth_grant,
            username=opts.username,
            password=password,
            scope=opts.oauth_scope,
            verify=opts.verify,
        )
    if opts.username and password is not None:
        return BasicAuth(opts.username, password)
    return None


def _server_time(response: HttpResponse) -> datetime | None:
    header = response.headers.get("Date")
    if not header:
        return None
    try:
        return parsedate_to_datetime(header).astimezone(UTC)
    except (TypeError, ValueError, IndexError):
        return None


def _version(raw: Mapping[str, Any]) -> str:
    return f"{value(raw, 'sys_updated_on')}#{value(raw, 'sys_mod_count')}"


class ServiceNowConnector(Connector):
    """Incidents, problems, changes, requested items, projects and project tasks."""

    name = "servicenow"
    options_model = ServiceNowOptions
    capabilities: ClassVar[Capabilities] = Capabilities(
        incremental=True, parallel_ranges=True, completeness_check=True, census=True
    )
    options: ServiceNowOptions

    def __init__(
        self,
        base_url: str,
        *,
        auth: requests.auth.AuthBase | None = None,
        transport: Any = None,
        **options: Any,
    ) -> None:
        if auth is None and transport is None:
            auth = _auth_from_options(base_url, options)
        super().__init__(base_url, auth=auth, transport=transport, **options)
        opts = self.options
        self._specs = build_specs(
            tables=opts.tables,
            extra_fields=opts.extra_fields,
            filters=opts.filters,
            state_tables=opts.state_tables,
        )
        self._by_table = {s.table: s for specs in self._specs.values() for s in specs}
        self.codes = CodeBook.build(
            {
                name: {code: parse_code_entry(entry) for code, entry in table.items()}
                for name, table in opts.code_tables.items()
            },
            opts.priority_codes,
        )
        for spec in self._by_table.values():
            unknown = [t for t in spec.state_tables if t not in self.codes.states]
            if unknown:
                raise ConfigurationError(
                    f"table {spec.table!r} reads its state with unknown code tables {unknown}; "
                    f"known: {', '.join(sorted(self.codes.states))}"
                )
        self.context = MappingContext(self.source, self.base_url, self.codes)
        self.catalog = FieldCatalog(self.transport)
        self._fields: dict[str, tuple[str, ...]] = {}
        self._stats_denied = False
        self.page_sizes: dict[str, int] = {}

    # -- declarations ----------------------------------------------------------------------------

    @property
    def kinds(self) -> Sequence[Kind]:
        return [k for k in Kind if k in self._specs]

    def endpoints(self) -> Sequence[Endpoint]:
        return [
            Endpoint(spec.table, spec.kind, f"/api/now/table/{spec.table}", f"{spec.kind} records")
            for specs in self._specs.values()
            for spec in specs
        ]

    def tables(self, kind: Kind | str) -> list[TableSpec]:
        """The table specs read for ``kind``, in reading order."""
        kind = Kind(kind)
        if kind not in self._specs:
            raise ConfigurationError(f"the servicenow connector has no tables for {kind.value!r}")
        return list(self._specs[kind])

    def map_record(self, kind: Kind, raw: Mapping[str, Any]) -> WorkItem:
        specs = self.tables(kind)
        spec = self._by_table.get(value(raw, "sys_class_name"))
        if spec is None or spec.kind is not kind:
            spec = specs[0]
        return map_row(spec, raw, self.context)

    def report(self) -> dict[str, Any]:
        return {**super().report(), "page_size": dict(self.page_sizes)}

    # -- field validation ------------------------------------------------------------------------

    def fields_for(self, spec: TableSpec) -> tuple[str, ...]:
        """The validated ``sysparm_fields`` of ``spec`` (checked once per connector)."""
        if spec.table in self._fields:
            return self._fields[spec.table]
        names = spec.fields()
        filter_names = check_user_filter(spec.filter, spec.table) if spec.filter else set()
        if self.options.validate_fields == "off":
            self._fields[spec.table] = names
            return names
        strict = set(KEY_FIELDS) | set(spec.extra_fields) | filter_names
        try:
            missing = self.catalog.missing(spec.table, [*names, *sorted(filter_names)])
        except DictionaryUnreadable:
            unverified = sorted(strict - set(KEY_FIELDS))
            if spec.table not in BUILTIN:
                unverified.insert(0, f"table {spec.table}")
            if unverified:
                raise UnknownFieldError(
                    f"cannot verify {', '.join(unverified)} on {spec.table!r}: this account may "
                    "not read sys_dictionary (403), and the instance silently ignores unknown "
                    "names; grant read on sys_dictionary and sys_db_object, or pass "
                    'validate_fields="off" to skip the check',
                    source=self.source,
                ) from None
            log.warning(
                "%s: sys_dictionary is not readable; built-in field names of %s are not verified",
                self.source,
                spec.table,
            )
            self._fields[spec.table] = names
            return names
        fatal = [m for m in missing if m in strict]
        if fatal:
            raise UnknownFieldError(
                f"unknown field(s) {', '.join(repr(f) for f in fatal)} on table {spec.table!r} "
                "(checked in sys_dictionary, parents included); ServiceNow would silently ignore "
                "them, so the pull stops here: fix the connector options",
                source=self.source,
            )
        if missing:
            log.info("%s: %s lacks optional fields %s; not read", self.source, spec.table, missing)
        self._fields[spec.table] = tuple(n for n in names if n not in missing)
        return self._fields[spec.table]

    # -- requests --------------------------------------------------------------------------------

    def _fetch(
        self, spec: TableSpec, fields: str, size: PageSize, query: str, offset: int
    ) -> Fetched:
        """One Table API page, halving the page size while the instance cancels the transaction."""
        while True:
            limit = size.current
            params: dict[str, Any] = {
                "sysparm_query": query,
                "sysparm_fields": fields,
                "sysparm_limit": limit,
                "sysparm_display_value": "all",
                "sysparm_exclude_reference_link": "true",
                "sysparm_no_count": "true",
                "sysparm_suppress_pagination_header": "true",
            }
            if offset:
                params["sysparm_offset"] = offset
            response = self.transport.get(
                f"/api/now/table/{spec.table}",
                params=params,
                endpoint=spec.table,
                accept=(408, 500),
            )
            if response.status < 300:
                return Fetched(
                    self._result_list(spec.table, response), limit, _server_time(response)
                )
            message = self._envelope_message(response)
            if any(marker in message.lower() for marker in _CANCELLED):
                # Quirk: a page too large to build within the REST quota is cancelled (A12, #4).
                if not size.halve(limit):
                    raise ServerError(
                        f"{spec.table}: transaction cancelled even at {limit} records per page",
                        context=self._context(spec.table, response, message),
                    )
                self.page_sizes[spec.table] = size.current
                log.warning(
                    "%s: %s cancelled a %d-record page (%s); page size now %d",
                    self.source,
                    spec.table,
                    limit,
                    message,
                    size.current,
                )
                continue
            raise ServerError(
                f"{spec.table}: server error {response.status}: {message or 'no message'}",
                context=self._context(spec.table, response, message),
            )

    def _context(self, endpoint: str, response: HttpResponse, message: str) -> RequestContext:
        return RequestContext(
            connector=self.name,
            endpoint=endpoint,
            method="GET",
            url=response.url,
            status=response.status,
            body_excerpt=message[:300] or None,
        )

    @staticmethod
    def _envelope_message(response: HttpResponse) -> str:
        data = response.data
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            error = data["error"]
            parts = [str(error.get("message") or ""), str(error.get("detail") or "")]
            return ": ".join(p for p in parts if p)
        return ""

    def _result_list(self, table: str, response: HttpResponse) -> list[dict[str, Any]]:
        data = response.data
        result = data.get("result") if isinstance(data, dict) else None
        if not isinstance(result, list):
            raise ResponseFormatError(
                f"{table}: expected {{'result': [...]}} from the Table API",
                context=RequestContext(
                    connector=self.name, endpoint=table, url=response.url, status=response.status
                ),
                source=self.source,
            )
        return [row for row in result if isinstance(row, dict)]

    def _stats(
        self, table: str, query: str, *, min_field: str | None = None
    ) -> tuple[int | None, str | None, datetime | None]:
        """Aggregate API count (and oldest ``min_field``), or Nones where it is not permitted."""
        if self._stats_denied:
            return None, None, None
        params: dict[str, Any] = {"sysparm_count": "true", "sysparm_query": query}
        if min_field:
            params["sysparm_min_fields"] = min_field
        try:
            response = self.transport.get(
                f"/api/now/stats/{table}", params=params, endpoint=f"{table} (stats)"
            )
        except (PermissionDeniedError, EndpointNotFoundError) as exc:
            self._stats_denied = True
            log.warning(
                "%s: the Aggregate API is not available (%s); completeness is not checked and "
                "empty pages are confirmed by reading one page further",
                self.source,
                type(exc).__name__,
            )
            return None, None, None
        stats = (response.data or {}).get("result", {}) if isinstance(response.data, dict) else {}
        stats = stats.get("stats", {}) if isinstance(stats, dict) else {}
        raw_count = stats.get("count")
        try:
            count = int(raw_count) if raw_count is not None else None
        except (TypeError, ValueError):
            raise ResponseFormatError(
                f"{table}: Aggregate API count {stats.get('count')!r} is not a number",
                source=self.source,
            ) from None
        oldest = None
        if min_field and isinstance(stats.get("min"), dict):
            oldest = str(stats["min"].get(min_field) or "") or None
        return count, oldest, _server_time(response)

    def _count(self, table: str, query: str) -> int | None:
        return self._stats(table, query)[0]

    def _probe(
        self, spec: TableSpec, lo: datetime | None
    ) -> tuple[datetime, int | None, datetime | None]:
        """Server time, and the size and oldest update of the window from ``lo`` on."""
        count, oldest, now = self._stats(
            spec.table, count_query(lo, None, spec.filter), min_field="sys_updated_on"
        )
        first = parse_utc(oldest) if oldest else None
        if now is None:
            query = keyset_query(lo, None, None, spec.filter)
            response = self.transport.get(
                f"/api/now/table/{spec.table}",
                params={
                    "sysparm_query": query,
                    "sysparm_fields": "sys_updated_on",
                    "sysparm_limit": 1,
                    "sysparm_no_count": "true",
                    "sysparm_suppress_pagination_header": "true",
                },
                endpoint=spec.table,
            )
            rows = self._result_list(spec.table, response)
            first = first or (parse_utc(value(rows[0], "sys_updated_on")) if rows else None)
            now = _server_time(response)
        if now is None:
            log.warning("%s: no Date header from the instance; using the local clock", self.source)
            now = datetime.now(UTC)
        return now, count, first

    # -- the pull --------------------------------------------------------------------------------

    def pull_pages(
        self, kind: Kind, cursor: Cursor | None = None, *, since: datetime | None = None
    ) -> Iterator[Page]:
        kind = Kind(kind)
        specs = self.tables(kind)
        fields = {s.table: ",".join(self.fields_for(s)) for s in specs}  # before any data request
        state = self._resume(specs, cursor)
        first_probe = None
        if state is None:
            lo = self._window_start(cursor, since)
            first_probe = self._probe(specs[0], lo)
            hi = floor_second(first_probe[0] - timedelta(seconds=self.options.lag_seconds))
            if lo is not None and lo > hi:
                hi = lo
            state = PullState(lo=lo, hi=hi, tables=[s.table for s in specs])
            state.previous = self._delivered(cursor, lo)
        received: set[str] = set()
        recent: dict[str, str] = {}
        for index in range(state.table_index, len(specs)):
            spec = specs[index]
            state.table_index = index
            size = PageSize(self.options.page_size, self.options.min_page_size)
            self.page_sizes[spec.table] = size.current
            if state.phase == "main":
                if not state.ranges:
                    probe = (
                        first_probe if index == 0 and first_probe else self._probe(spec, state.lo)
                    )
                    state.ranges = self._split(state, probe[1], probe[2])
                yield from self._drain(
                    kind, spec, fields[spec.table], size, state, received, recent
                )
                state.phase, state.ranges = "catchup", [Range(state.hi, None)]
            yield from self._drain(kind, spec, fields[spec.table], size, state, received, recent)
            closed = state.ranges[0].closed_at or datetime.now(UTC)
            self._check(kind, spec, state, closed)
            state.closed.append(closed)
            state.phase, state.ranges = "main", []
        yield Page(kind, (), (), self._final_cursor(state, recent), final=True)

    def _resume(self, specs: Sequence[TableSpec], cursor: Cursor | None) -> PullState | None:
        if cursor is None or "phase" not in cursor.state:
            return None
        state = PullState.from_state(cursor.state)
        if state.tables != [s.table for s in specs]:
            log.warning(
                "%s: the tables changed since this pull began (%s -> %s); restarting its window",
                self.source,
                state.tables,
                [s.table for s in specs],
            )
            return None
        log.info(
            "%s: resuming %s at table %s (%s)",
            self.source,
            specs[0].kind.value,
            state.tables[state.table_index],
            state.phase,
        )
        return state

    def _window_start(self, cursor: Cursor | None, since: datetime | None) -> datetime | None:
        lo = None
        if cursor is not None:
            progress = cursor.watermark
            lo = window_start(progress, self.options.overlap_seconds) if progress else None
            if "phase" in cursor.state and progress is not None:
                lo = floor_second(progress)  # an abandoned mid-pull cursor: its floor is exact
        if since is not None:
            bound = floor_second(since.astimezone(UTC))
            lo = bound if lo is None else max(lo, bound)
        return lo

    def _delivered(self, cursor: Cursor | None, lo: datetime | None) -> dict[str, str]:
        """Versions the previous run delivered at or after ``lo`` (skipped when re-read)."""
        if cursor is None or lo is None:
            return {}
        seen = cursor.state.get("seen")
        if not isinstance(seen, dict):
            return {}
        floor = format_utc(lo)
        return {str(k): str(v) for k, v in seen.items() if str(v)[:19] >= floor}

    def _split(self, state: PullState, count: int | None, first: datetime | None) -> list[Range]:
        workers = self.options.max_workers
        if workers <= 1:
            return [Range(state.lo, state.hi)]
        most = workers * self.options.ranges_per_worker
        if count is not None:
            parts = min(most, max(1, -(-count // (2 * self.options.page_size))))
        else:
            origin = state.lo or first
            parts = most if origin is not None and state.hi - origin > timedelta(hours=1) else 1
        return split_window(state.lo, first, state.hi, parts)

    def _drain(
        self,
        kind: Kind,
        spec: TableSpec,
        fields: str,
        size: PageSize,
        state: PullState,
        received: set[str],
        recent: dict[str, str],
    ) -> Iterator[Page]:
        ranges = state.ranges
        todo = [i for i, r in enumerate(ranges) if not r.done]
        recent_floor = format_utc(state.hi - timedelta(seconds=self.options.overlap_seconds))

        def reader(index: int, stop: Any) -> Iterator[RangePage]:
            return read_range(
                ranges[index],
                spec.table,
                lambda query, offset: self._fetch(spec, fields, size, query, offset),
                lambda query: self._count(spec.table, query),
                spec.filter,
                stop,
            )

        workers = self.options.max_workers if state.phase == "main" else 1
        for index, page in run_ranges(todo, reader, workers):
            items: list[WorkItem] = []
            rejects: list[Reject] = []
            for raw in page.rows:
                sys_id = value(raw, "sys_id")
                if sys_id in received:
                    continue  # a record that moved into a later range while the pull ran
                received.add(sys_id)
                state.fetched[spec.table] = state.fetched.get(spec.table, 0) + 1
                version = _version(raw)
                if state.previous.get(sys_id) == version:
                    continue  # delivered by the previous run, unchanged since
                mapped = self.map_safely(kind, raw, sys_id)
                if isinstance(mapped, Reject):
                    rejects.append(mapped)
                    continue
                items.append(mapped)
                for name in mapped.extra.get("unknown_codes", ()):
                    self.stats.unknown_code(f"{spec.table}.{name}={value(raw, name)}")
                if version[:19] >= recent_floor:
                    recent[sys_id] = version
            current = ranges[index]
            if page.key is not None:
                current.after = page.key
            if page.done:
                current.done, current.closed_at = True, page.closed_at
            self.stats.count_page(len(items), len(rejects))
            self.page_sizes[spec.table] = size.current
            cursor = Cursor(watermark=state.watermark(), state=state.to_state())
            yield Page(kind, items, rejects, cursor)

    def _check(self, kind: Kind, spec: TableSpec, state: PullState, closed: datetime) -> None:
        if self.options.completeness == "off":
            return
        expected = self._count(spec.table, count_query(state.lo, closed, spec.filter))
        fetched = state.fetched.get(spec.table, 0)
        window = (
            f"{spec.table} [{format_utc(state.lo) if state.lo else 'start'}, {format_utc(closed)}]"
        )
        self.stats.completeness.append(CompletenessCheck(kind, window, expected, fetched))
        if expected is None or expected == fetched:
            return
        log.warning(
            "%s: %s fetched %d records but the Aggregate API counts %d in %s; row-level ACLs "
            "hide records from the Table API but not from counts, and records deleted or "
            "changed during the pull also differ",
            self.source,
            spec.table,
            fetched,
            expected,
            window,
        )
        if self.options.completeness == "strict" and fetched < expected:
            raise IncompletePullError(
                f"{spec.table}: fetched {fetched} of {expected} records in {window}",
                source=self.source,
            )

    def _final_cursor(self, state: PullState, recent: dict[str, str]) -> Cursor:
        closed = min(state.closed) if state.closed else state.hi
        watermark = max(floor_second(closed) - timedelta(seconds=1), state.hi)
        floor = format_utc(watermark - timedelta(seconds=self.options.overlap_seconds))
        seen = {k: v for k, v in recent.items() if v[:19] >= floor}
        # Versions delivered by the previous run and not re-read stay remembered.
        seen.update({k: v for k, v in state.previous.items() if k not in seen and v[:19] >= floor})
        if len(seen) > self.options.max_remembered:
            log.warning(
                "%s: %d records changed within the overlap; remembering the newest %d (older "
                "ones may be delivered again by the next run)",
                self.source,
                len(seen),
                self.options.max_remembered,
            )
            newest = sorted(seen.items(), key=lambda kv: kv[1], reverse=True)
            seen = dict(newest[: self.options.max_remembered])
        stamp = format_utc(watermark)
        boundary = tuple(sorted(k for k, v in seen.items() if v[:19] == stamp))
        return Cursor(watermark=watermark, boundary_ids=boundary, state={"v": 1, "seen": seen})

    # -- census ----------------------------------------------------------------------------------

    def census(self, kind: Kind) -> Iterator[str]:
        """Every sys_id of ``kind`` visible now, by keyset over sys_id (for deletions)."""
        for spec in self.tables(kind):
            self.fields_for(spec)
            size = PageSize(self.options.page_size, self.options.min_page_size)
            after: str | None = None
            while True:
                query = id_keyset_query(after, spec.filter)
                page = self._fetch(spec, "sys_id", size, query, 0)
                offset = page.limit
                if not page.rows:
                    left = self._count(
                        spec.table,
                        query.removesuffix("^ORDERBYsys_id").removesuffix("ORDERBYsys_id"),
                    )
                    left = page.limit * 2 if left is None else left
                    while offset < left and not page.rows:
                        page = self._fetch(spec, "sys_id", size, query, offset)
                        offset += page.limit
                    if not page.rows:
                        break
                ids = [value(row, "sys_id") for row in page.rows]
                if any(not i for i in ids) or (after is not None and min(ids) <= after):
                    raise IncompletePullError(
                        f"{spec.table}: the sys_id census did not advance past {after}",
                        source=self.source,
                    )
                yield from ids
                after = ids[-1]
