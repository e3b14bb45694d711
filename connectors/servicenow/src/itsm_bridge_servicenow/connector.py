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
import re
import threading
from collections.abc import Generator, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from functools import partial
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
    IncompletePullError,
    InvalidOptionsError,
    ItsmBridgeError,
    Kind,
    KindUnavailableError,
    OAuth2,
    Page,
    Reject,
    UnknownFieldError,
    WorkItem,
)
from itsm_bridge._idset import IdSet
from itsm_bridge.connector import relaxed_gc
from itsm_bridge_servicenow.api import Stats, TableApi
from itsm_bridge_servicenow.codes import DEFAULT_STATE_TABLES, CodeBook
from itsm_bridge_servicenow.dictionary import DictionaryUnreadable, FieldCatalog, NoSuchTable
from itsm_bridge_servicenow.mapping import MappingContext, map_row
from itsm_bridge_servicenow.options import ServiceNowOptions, parse_code_entry
from itsm_bridge_servicenow.paging import PageSize, RangePage, read_ids, read_range, run_ranges
from itsm_bridge_servicenow.query import check_user_filter, count_query
from itsm_bridge_servicenow.ranges import (
    PullState,
    Range,
    floor_second,
    split_at,
    split_window,
    window_start,
)
from itsm_bridge_servicenow.tables import BUILTIN, KEY_FIELDS, TableSpec, build_specs
from itsm_bridge_servicenow.values import format_utc, parse_utc, value

__all__ = ["ServiceNowConnector"]

log = logging.getLogger("itsm_bridge.servicenow")

# The Table API's answer for a table the instance does not have (400, A7): "Invalid table xyz",
# "Table xyz does not exist".
_NO_SUCH_TABLE = re.compile(r"invalid table|does not exist", re.IGNORECASE)

# A window is cut at count quantiles (one range per worker) from this many pages per range and
# this many records on: below that the extra round trip saves little.
_PAGES_PER_CUT_RANGE = 4
_RECORDS_TO_CUT = 20_000
# Pages' worth of bytes in flight besides each worker's undecoded page: a decoded page waiting
# and one being mapped (~4.3x its bytes each), the WorkItems (~1.8x) and a read buffer.
_DECODED_COPIES = 11.5


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
            allow_insecure_http=opts.allow_insecure_http,  # the same host as the API
        )
    if opts.username and password is not None:
        return BasicAuth(opts.username, password)
    return None


def id_key(sys_id: str) -> str | bytes:
    """A sys_id as a dedupe key: 16 bytes for the usual 32 lowercase hex digits, else itself.

    A pull remembers every sys_id it delivered; packed into an :class:`IdSet`'s one table, a
    million of them take ~32 MB instead of ~85. Only lowercase hex is packed, so two different
    sys_ids never share a key.
    """
    if len(sys_id) == 32:
        try:
            packed = bytes.fromhex(sys_id)
        except ValueError:
            return sys_id
        if len(packed) == 16 and (sys_id.islower() or sys_id.isdigit()):
            return packed
    return sys_id


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
        try:
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
            read = {name for spec in self._by_table.values() for name in spec.state_tables}
            unused = sorted(set(opts.code_tables) - read - set(DEFAULT_STATE_TABLES))
            if unused:
                # A new code table that no table reads its state with changes nothing: a
                # misspelt name ("incident_sate") would leave the codes unmapped without a word.
                raise ConfigurationError(
                    f"code_tables: {unused} are neither built-in code tables nor read by any "
                    f"table (state_tables); built-in: {', '.join(sorted(DEFAULT_STATE_TABLES))}"
                )
            for spec in self._by_table.values():
                if spec.filter:
                    check_user_filter(spec.filter, spec.table)  # its shape now, its fields later
                if not spec.state_tables:
                    raise ConfigurationError(
                        f"state_tables: table {spec.table!r} reads its state with no code table"
                    )
                unknown = [t for t in spec.state_tables if t not in self.codes.states]
                if unknown:
                    raise ConfigurationError(
                        f"state_tables: table {spec.table!r} reads its state with unknown code "
                        f"tables {unknown}; known: {', '.join(sorted(self.codes.states))}"
                    )
        except InvalidOptionsError:
            raise
        except ConfigurationError as exc:
            # Every mistake in the options fails here, at once, as the options' error.
            raise InvalidOptionsError(
                f"invalid options for connector {self.name!r}: {exc.message}"
            ) from None
        self.context = MappingContext(self.source, self.base_url, self.codes)
        self.api = TableApi(self.transport, source=self.source, connector=self.name)
        self.catalog = FieldCatalog(self.transport, observe=self.api.note_round_trip)
        self._fields: dict[str, tuple[str, ...]] = {}
        self.page_sizes = self.api.page_sizes
        self._background = ThreadPoolExecutor(1, thread_name_prefix="itsm-servicenow-probe")

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
        spec = self._by_table.get(value(raw, "sys_class_name"))
        if spec is None or spec.kind is not kind:
            spec = self.tables(kind)[0]  # (also refuses a kind this connector does not read)
        return map_row(spec, raw, self.context)

    def report(self) -> dict[str, Any]:
        return {**super().report(), "page_size": dict(self.page_sizes)}

    def close(self) -> None:
        self._background.shutdown(wait=False)
        super().close()

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

    # -- the pull --------------------------------------------------------------------------------

    def pull_pages(
        self, kind: Kind, cursor: Cursor | None = None, *, since: datetime | None = None
    ) -> Iterator[Page]:
        with relaxed_gc():  # pages decode into short-lived containers, free of cycles
            pages = self._pull_pages(kind, cursor, since)
            try:
                first = next(pages, None)  # (a generator that raised is finished already)
            except ConfigurationError as exc:
                missing = self._missing_table(kind, exc)
                if missing is None:
                    raise
                raise missing from None
            if first is None:
                return
            try:
                yield first
                yield from pages
            finally:
                pages.close()

    def _missing_table(self, kind: Kind, exc: ConfigurationError) -> KindUnavailableError | None:
        """``exc`` as a :class:`KindUnavailableError` when it says that the one built-in table of
        ``kind`` does not exist here (its plugin is not installed: ``pm_project`` needs Project
        Portfolio Management), else None. A table the options name is a typo, not a plugin."""
        specs = self.tables(kind)
        table = specs[0].table
        if len(specs) > 1 or table not in BUILTIN:
            return None
        context = exc.context
        if isinstance(exc, NoSuchTable) and exc.table == table:
            evidence = "sys_db_object has no such name"
        elif (
            context is not None
            and context.endpoint in (table, f"{table} (stats)")
            and (
                context.status == 404
                or (
                    context.status == 400
                    and _NO_SUCH_TABLE.search(context.body_excerpt or "") is not None
                )
            )
        ):
            evidence = f"the Table API answered {context.status}"
        else:
            return None
        return KindUnavailableError(
            f"this instance has no table {table!r} ({evidence}), so it has no {kind.value} "
            "records: is its plugin installed?",
            source=self.source,
            context=context,
        )

    def _pull_pages(
        self, kind: Kind, cursor: Cursor | None, since: datetime | None
    ) -> Generator[Page, None, None]:
        kind = Kind(kind)
        specs = self.tables(kind)
        early: Future[tuple[Stats, list[datetime] | None]] | None = None
        if cursor is None or "phase" not in cursor.state:
            # A new window: its probe (an Aggregate API count, no data) and the cut points of
            # its ranges run while the field names are checked, which takes a few round trips
            # of its own, so the first data page follows the dictionary check at once.
            early = self._background.submit(
                self._early, specs[0], self._window_start(cursor, since)
            )
        try:
            fields = {s.table: ",".join(self.fields_for(s)) for s in specs}  # before any data
        finally:
            if early is not None and not early.done():
                wait([early])  # no request of this pull outlives it
        state = self._resume(specs, cursor)
        first_probe = None
        first_cuts: list[datetime] | None = None
        if state is None:
            lo = self._window_start(cursor, since)
            known, first_cuts = early.result() if early is not None else (None, None)
            first_probe = self.api.probe(specs[0], lo, known)
            hi = self._window_end(lo, first_probe[0])
            state = PullState(lo=lo, hi=hi, tables=[s.table for s in specs])
            state.previous = self._delivered(cursor, lo)
        received = IdSet(16)  # sys_ids delivered by this pull (see id_key)
        if first_probe is not None and first_probe[1]:
            received.reserve(first_probe[1])  # sized for the window at once, not regrown
        recent: dict[str, str] = {}
        for index in range(state.table_index, len(specs)):
            spec = specs[index]
            state.table_index = index
            size = self._page_size()
            self.page_sizes[spec.table] = size.current
            if state.phase == "main":
                if not state.ranges:
                    probe = (
                        first_probe
                        if index == 0 and first_probe
                        else self.api.probe(spec, state.lo)
                    )
                    cuts = first_cuts if index == 0 else None
                    state.ranges = self._split(spec, state, probe[1], probe[2], cuts)
                yield from self._drain(
                    kind, spec, fields[spec.table], size, state, received, recent
                )
                state.phase, state.ranges = "catchup", [Range(state.hi, None)]
            yield from self._drain(kind, spec, fields[spec.table], size, state, received, recent)
            closed = state.ranges[0].closed_at or datetime.now(UTC)
            last = parse_utc(state.ranges[0].after[0]) if state.ranges[0].after else None
            if last is not None:
                # Quirk: a change is stamped with its second; one made in the second of the last
                # key read, with a smaller sys_id, sorts behind the keyset and was not read, so
                # that second is never claimed complete (the final cursor stops at it).
                closed = min(closed, last + timedelta(seconds=1))
            self._check(kind, spec, state, closed)
            # Quirk: the catch-up pass reads an open range while it is still being written, so a
            # change stamped in any second the pager already passed sorts behind the keyset and
            # is missed. Claim only what the main window closed (server time minus the lag when
            # the pull began); the next run re-reads the rest within its overlap, and the
            # versions delivered here are remembered in the cursor, so nothing comes twice.
            state.closed.append(min(closed, state.hi))
            state.phase, state.ranges = "main", []
        yield Page(kind, (), (), self._final_cursor(state, recent), final=True)

    def _page_size(self) -> PageSize:
        opts = self.options
        if not opts.adaptive_page_size:
            return PageSize(opts.page_size, opts.min_page_size)
        return PageSize(
            opts.page_size,
            opts.min_page_size,
            maximum=opts.max_page_size,
            memory=int(opts.page_memory_mb * 1_000_000),
            copies=opts.max_workers + _DECODED_COPIES,
        )

    def _window_end(self, lo: datetime | None, now: datetime) -> datetime:
        hi = floor_second(now - timedelta(seconds=self.options.lag_seconds))
        return lo if lo is not None and lo > hi else hi

    def _cut_by_count(self, count: int | None) -> bool:
        workers, page = self.options.max_workers, self.options.page_size
        return (
            workers > 1
            and count is not None
            and count >= max(workers * _PAGES_PER_CUT_RANGE * page, _RECORDS_TO_CUT)
        )

    def _early(self, spec: TableSpec, lo: datetime | None) -> tuple[Stats, list[datetime] | None]:
        """A new window's Aggregate API probe and, where it is large, its count-quantile cuts."""
        stats = self.api.window_stats(spec, lo)
        count, _, now = stats
        if now is None or not self._cut_by_count(count):
            return stats, None
        assert count is not None
        try:
            cuts = self.api.quantiles(
                spec, lo, self._window_end(lo, now), count, self.options.max_workers
            )
        except ItsmBridgeError as exc:
            log.info("%s: %s not cut at count quantiles (%s)", self.source, spec.table, exc)
            return stats, []
        return stats, cuts

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

    def _split(
        self,
        spec: TableSpec,
        state: PullState,
        count: int | None,
        first: datetime | None,
        cuts: list[datetime] | None = None,
    ) -> list[Range]:
        """The window's ranges: one per worker, cut at equal counts where the window is large.

        Updates cluster (recent months, bulk changes), so equal spans of time can hold very
        different counts, and a pull lasts as long as its largest range. Cuts at count
        quantiles cost one round of tiny reads; below a few pages per worker, or where they
        fail, the window is cut evenly in time into smaller ranges that workers share out.
        """
        workers = self.options.max_workers
        if workers <= 1:
            return [Range(state.lo, state.hi)]
        page = self.options.page_size
        if cuts is None and self._cut_by_count(count):
            assert count is not None
            try:
                cuts = self.api.quantiles(spec, state.lo, state.hi, count, workers)
            except ItsmBridgeError as exc:
                log.info("%s: %s not cut at count quantiles (%s)", self.source, spec.table, exc)
        if cuts:
            ranges = split_at(state.lo, state.hi, cuts)
            if len(ranges) > 1:
                return ranges
        most = workers * self.options.ranges_per_worker
        if count is not None:
            parts = min(most, max(1, -(-count // (2 * page))))
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
        received: IdSet,
        recent: dict[str, str],
    ) -> Iterator[Page]:
        ranges = state.ranges
        todo = [i for i, r in enumerate(ranges) if not r.done]
        recent_floor = format_utc(state.hi - timedelta(seconds=self.options.overlap_seconds))

        workers = self.options.max_workers if state.phase == "main" else 1
        # Pages come as bytes and a worker decodes one only when there is room for it: besides
        # the page being mapped here, one decoded page at most waits (or is being decoded),
        # however far the workers get ahead; the others wait as their bytes. A decoded page is
        # ~5 times its ~2 MB of bytes (Python peak of a 50k pull: 108 -> 63 MB).
        room = threading.Semaphore(1) if workers > 1 and len(todo) > 1 else None

        def reader(index: int, stop: threading.Event) -> Iterator[RangePage]:
            def admit() -> bool:
                assert room is not None
                while not stop.is_set():
                    if room.acquire(timeout=0.05):
                        return True
                return False

            return read_range(
                ranges[index],
                spec.table,
                partial(self.api.page, spec, fields, size, lazy=True),
                lambda query: self.api.count(spec.table, query),
                spec.filter,
                stop,
                admit=admit if room is not None else None,
            )

        taken = room.release if room is not None else None
        for index, got in run_ranges(todo, reader, workers, taken=taken):
            items, rejects = self._take(kind, spec, got.rows, state, received, recent, recent_floor)
            current = ranges[index]
            if got.key is not None:
                current.after = got.key
            if got.done:
                current.done, current.closed_at = True, got.closed_at
            del got  # the raw rows go now, not when the caller asks for the next page
            self.stats.count_page(len(items), len(rejects))
            self.page_sizes[spec.table] = size.current
            cursor = Cursor(watermark=state.watermark(), state=state.to_state())
            yield Page(kind, items, rejects, cursor)

    def _take(
        self,
        kind: Kind,
        spec: TableSpec,
        rows: list[dict[str, Any]],
        state: PullState,
        received: IdSet,
        recent: dict[str, str],
        recent_floor: str,
    ) -> tuple[list[WorkItem], list[Reject]]:
        """Map a page's records that this pull has not delivered yet (each once)."""
        items: list[WorkItem] = []
        rejects: list[Reject] = []
        previous = state.previous
        fresh = 0
        for raw in rows:
            sys_id = value(raw, "sys_id")
            if not received.add(id_key(sys_id)):
                continue  # a record that moved into a later range while the pull ran
            fresh += 1
            version = _version(raw)
            if previous and previous.get(sys_id) == version:
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
        state.fetched[spec.table] = state.fetched.get(spec.table, 0) + fresh
        return items, rejects

    def _check(self, kind: Kind, spec: TableSpec, state: PullState, closed: datetime) -> None:
        if self.options.completeness == "off":
            return
        expected = self.api.count(spec.table, count_query(state.lo, closed, spec.filter))
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
            self.fields_for(spec)  # the filter's names are checked before any data request
            size = PageSize(self.options.page_size, self.options.min_page_size)
            yield from read_ids(
                spec.table,
                partial(self.api.page, spec, "sys_id", size),
                partial(self.api.count, spec.table),
                spec.filter,
            )
