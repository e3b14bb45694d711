"""One pull of one kind: a window closed in the past, read completely, each issue once.

1. The **main pass** pages ``updated >= lo AND updated < hi ORDER BY updated ASC, id ASC`` with
   ``hi`` = the server's clock minus ``lag_seconds``, as parallel key ranges
   (:mod:`itsm_bridge_jira.ranges`); each page carries the cursor of the window's frontier.
2. The **census** reads the ids of what the main pass has read (id-only pages of one request
   each, on the slots the main pass leaves), and whatever the main pass did not return is
   fetched afterwards (offset shifts, late indexing on Cloud's eventually consistent search).
3. **Catch-up** passes read ``[hi, now - lag)`` for issues that changed while the pull ran, until
   a pass finds nothing new; the final cursor closes the window at that pass's upper bound. The
   first waits until the window is ``lag`` old; in a pull of several kinds the catch-ups come
   after every kind's main pass, so that wait is mostly spent already.

An issue already emitted that changed again during the pull is not emitted twice: the final
watermark is held at its new ``updated`` so the next pull reads the newer version.

What the pull has emitted and what the census saw are kept packed (:mod:`itsm_bridge_jira.seen`),
so a pull of a million issues stays in flat memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from itsm_bridge import CompletenessCheck, Cursor, Kind, Page, Reject, WorkItem
from itsm_bridge._time import to_epoch_ms, to_epoch_us
from itsm_bridge.connector import relaxed_gc
from itsm_bridge_jira.changelog import attach_changelogs
from itsm_bridge_jira.jql import window_jql
from itsm_bridge_jira.mapping import is_kind, parse_jira_datetime
from itsm_bridge_jira.ranges import MARK, KeyRange, Scan, scan_pages
from itsm_bridge_jira.seen import UNDATED, Census, Emitted, Seen, id_key, id_of, record_keys
from itsm_bridge_jira.worklogs import worklogs_since

if TYPE_CHECKING:
    from itsm_bridge_jira.connector import JiraConnector, Site

__all__ = ["KindPull"]

log = logging.getLogger("itsm_bridge.jira")
# Issues (all requested fields) that requests in flight may bring back at once: about 60 MB
# decoded. Cloud's 100-issue pages use every worker; Data Center's 1000-issue pages six (at
# 200 ms a page, six in flight keep the server busy where three left it waiting on round trips).
ISSUE_BUDGET = 6000
# The first page of a window is read alone (it decides how the window is cut): a small one costs
# the server and the client less before the parallel pages start.
FIRST_PAGE = 200
# Waits for the server clock to pass a window's end (patchable in tests); through the
# transport, so that a sync asked to stop does not sit out the wait.
_sleep: Callable[[float], None] | None = None


@dataclass
class _Run:
    """Book-keeping of one pull of one kind: what was emitted, and at which ``updated``.

    ``emitted`` and ``census_ids`` are keyed by :func:`~itsm_bridge_jira.seen.id_key` and share
    one table (``seen``).
    """

    kind: Kind
    lo: datetime | None
    skip_at_lo: frozenset[str]
    floor: datetime | None = None
    held: datetime | None = None
    seen: Seen = field(default_factory=Seen)

    @property
    def emitted(self) -> Emitted:
        """Key -> stamp of the ``updated`` it was emitted at."""
        return self.seen.emitted

    @property
    def census_ids(self) -> Census:
        """The keys the census saw (those not emitted in the order it saw them)."""
        return self.seen.census


class KindPull:
    """The pull of one kind from a cursor (or ``since``).

    :meth:`pages` yields all of it. A pull of several kinds can take it in two parts,
    :meth:`opening` (window, main pass, census) and later :meth:`closing` (catch-up passes and
    the final page), so that the wait before the catch-up overlaps other kinds' pages.
    """

    def __init__(
        self,
        conn: JiraConnector,
        site: Site,
        kind: Kind,
        cursor: Cursor | None,
        since: datetime | None,
    ) -> None:
        self.conn = conn
        self.site = site
        self.kind = kind
        self.cursor = cursor
        self.since = since
        self.run = _Run(kind, None, frozenset())
        self.lag = timedelta(seconds=conn.options.lag_seconds)
        self.hi = datetime.min.replace(tzinfo=UTC)  # the window's end (set by `opening`)
        self.open = False  # a window with something to read (else only the final page)
        self.paged_until: datetime | None = None  # the server's time once all was read
        self.scans: list[Scan] = []  # the scans of `opening` (when their answers arrived)
        self.types: dict[str, Any] = {}
        self.worklogs: dict[str, list[dict[str, Any]]] | None = None
        self.expand: list[str] = []

    @property
    def workers(self) -> int:
        """Pages in flight at once: ``max_workers``, within the host governor's concurrency."""
        governor = self.conn.transport.governor
        return max(1, min(self.conn.options.max_workers, governor.max_concurrency))

    def pages(self) -> Iterator[Page]:
        with relaxed_gc():
            yield from self.opening()
            yield from self.closing()

    def jql(self, lo: datetime | None, hi: datetime | None, exact: bool = False) -> str:
        opts = self.conn.options
        return window_jql(
            lo=lo,
            hi=hi,
            projects=opts.projects,
            user_jql=self.conn.user_jql,
            exact_lo=exact,
            **self.types,
        )

    def search(self, lo: datetime | None, hi: datetime, **options: Any) -> Scan:
        """A scan of ``lo <= updated < hi`` of this kind (full issues unless ``fields``)."""
        conn, site = self.conn, self.site
        return Scan(
            conn.transport,
            site.deployment,
            self.jql,
            lo=lo,
            hi=hi,
            fields=options.pop("fields", site.fields),
            page_size=options.pop("page_size", conn.options.page_size),
            expand=options.pop("expand", self.expand),
            on_restart=conn.count_restart,
            **options,
        )

    def opening(self) -> Iterator[Page]:
        """The window, its main pass and its census; ends knowing when all pages were read."""
        conn, site, kind, cursor, since = self.conn, self.site, self.kind, self.cursor, self.since
        opts = conn.options
        hi = self.hi = conn.server_now(site) - self.lag
        lo: datetime | None = since
        skip: frozenset[str] = frozenset()
        if cursor is not None and cursor.watermark is not None:
            lo = cursor.watermark - timedelta(seconds=opts.overlap_seconds)
            if opts.overlap_seconds == 0:
                skip = frozenset(cursor.boundary_ids)
            if since is not None and since > lo:
                lo = since
        run = self.run = _Run(
            kind, lo, skip, floor=cursor.watermark if cursor is not None else None
        )
        types = conn.type_clause(site, kind)
        if types is None or (lo is not None and lo >= hi):
            return
        self.open = True
        self.types = types
        if opts.worklogs:
            since_ms = to_epoch_ms(lo) if lo is not None else 0
            self.worklogs = worklogs_since(self.conn.transport, site.deployment, since_ms)
        self.expand = ["changelog"] if opts.changelog and not site.deployment.cloud else []

        # 1. the main pass, and 2. the census: the ids of what the main pass has read, read with
        # the slots the main pass cannot use and compared afterwards with what it emitted.
        main = self.search(lo, hi, widen=True, budget=ISSUE_BUDGET, first_page=FIRST_PAGE)
        cloud = site.deployment.cloud
        census = self.search(
            lo,
            hi,
            fields=["id"],
            page_size=opts.census_page_size,
            expand=[],
            keyset=False,
            empty=True,
        )
        self.scans = [main, census]
        for scan, rng, records in scan_pages(self.workers, [main, census]):
            if scan is census:
                run.census_ids.update(record_keys(records))
                continue
            yield self.page(records, upper=hi, source=(main, rng))
            if opts.census and cloud:
                # What the main pass has read so far, as id-only pages of one request each (a
                # single page cannot shift): Cloud serves 5000 ids a page, Data Center its usual
                # cap. Exact lower bound: the minute-widened records before `lo` are not missing.
                cap = opts.census_page_size if cloud else min(opts.census_page_size, main.served)
                for a, b in rng.pieces(max(MARK, cap * 9 // 10)):
                    census.add(a, b, self.jql(a, b, True))
        if opts.census:
            window = f"[{lo.isoformat() if lo else '-inf'}, {hi.isoformat()})"
            if not cloud and not main.rose and not main.shortfall:
                # Data Center: the totals are the evidence, no census needed. The window ended
                # `lag` ago, so records can only leave it while it is paged; every page reports
                # its query's total; a drop restarted the query from its keyset, so a query that
                # finished saw one unchanged result list, and its offset pages tiled it: as many
                # distinct ids as its total (else `shortfall`). A rise (a record entered behind
                # the offset: indexing slower than `lag`) falls back to the census below.
                fetched = len(run.emitted)
                self.conn.stats.completeness.append(
                    CompletenessCheck(kind, window, expected=fetched, fetched=fetched)
                )
            else:
                if not cloud:  # the totals could not vouch for it: ids of the whole window
                    census.add(lo, hi, self.jql(lo, hi, True))
                    for _, _, records in scan_pages(self.workers, [census]):
                        run.census_ids.update(record_keys(records))
                missing = self.missing()
                yield from self.fetch_ids(missing)
                # The census ids emitted: all but those missing that the fetch did not emit
                # (emitted ids stay emitted), without a second pass over the census.
                fetched = len(run.census_ids) - sum(
                    1 for i in missing if id_key(i) not in run.emitted
                )
                self.conn.stats.completeness.append(
                    CompletenessCheck(kind, window, expected=len(run.census_ids), fetched=fetched)
                )
        clock = conn.clock
        # Changes the catch-up must see happened before the server answered the last request:
        # bound its time at that answer's arrival, not after the last pages were mapped.
        answered = max((scan.answered for scan in self.scans), default=0.0)
        if clock is None:
            self.paged_until = conn.server_now(site)
        else:
            self.paged_until = clock.latest(answered or None)

    def closing(self) -> Iterator[Page]:
        """3. Catch-up: records that changed while the pull ran; then the final page.

        Changes are only trusted once they are ``lag`` old (clock skew, Cloud's eventually
        consistent index), so the first pass waits until the window can close after the last
        page was read. Whatever came after the last page (mapping it, the census, other kinds'
        pages) already counts towards that wait; it is skipped when the time has passed.
        """
        conn, site, run, hi = self.conn, self.site, self.run, self.hi
        if not self.open:
            yield self.final(hi)
            return
        for number in range(conn.options.catchup_passes):
            if number == 0 and self.paged_until is not None:
                wait = self.paged_until + self.lag - conn.server_now(site)
                if wait > timedelta(0):
                    conn.transport.pause(wait.total_seconds(), sleep=_sleep)
            upper = conn.server_now(site) - self.lag
            if upper <= hi:
                break
            before = len(run.emitted)
            moved = False
            catchup = self.search(hi, upper, widen=True, budget=ISSUE_BUDGET, first_page=FIRST_PAGE)
            for _, _, records in scan_pages(self.workers, [catchup]):
                page = self.page(records, upper=upper)
                moved = moved or bool(page.items or page.rejects)
                yield page
            hi = upper
            if not moved and len(run.emitted) == before:
                break
        yield self.final(hi)

    def final(self, hi: datetime) -> Page:
        site, run = self.site, self.run
        watermark = hi if run.held is None else min(hi, run.held)
        if run.floor is not None and watermark < run.floor:
            watermark = run.floor  # a server clock behind the cursor must not move it back
        boundary = tuple(run.emitted.ids_at(watermark))  # sorted
        # window_end: where this pull's window closed. The watermark is below it only when an
        # issue already returned changed again during the pull (the next pull reads it).
        cursor = Cursor(
            watermark=watermark,
            boundary_ids=boundary,
            state={"deployment": site.deployment.kind, "window_end": hi.isoformat()},
        )
        return Page(run.kind, (), (), cursor=cursor, final=True)

    def accept(self, records: Sequence[dict[str, Any]], upper: datetime) -> list[dict[str, Any]]:
        """The records of this page that belong to the pull and were not emitted yet."""
        site, run = self.site, self.run
        accepted: list[dict[str, Any]] = []
        emitted = run.emitted
        for record in records:
            issue_id = str(record.get("id") or "")
            key = id_key(issue_id)
            fields = record.get("fields")
            try:
                updated = parse_jira_datetime(
                    fields.get("updated") if isinstance(fields, Mapping) else None
                )
            except ValueError:
                updated = None
            if updated is None:
                if issue_id and key not in emitted:
                    accepted.append(record)  # the mapper rejects it with the reason
                    emitted.add(key, UNDATED)
                continue
            stamp = to_epoch_us(updated)
            before = emitted.stamp(key)
            if before is not None:
                if stamp > before:
                    # Emitted earlier at an older version: hold the watermark so the next pull
                    # reads this one, rather than emitting the record twice in one pull.
                    run.held = updated if run.held is None else min(run.held, updated)
                continue
            if run.lo is not None and updated < run.lo:
                continue  # the server-side bound is widened to the minute; this is exact
            if updated >= upper:
                continue  # belongs to the next window (or to the catch-up pass)
            if updated == run.lo and issue_id in run.skip_at_lo:
                continue
            if not is_kind(record, run.kind, site.mapping):
                continue  # an issue type created after discovery; its own kind pulls it
            emitted.add(key, stamp)
            accepted.append(record)
        return accepted

    def page(
        self,
        records: Sequence[dict[str, Any]],
        *,
        upper: datetime,
        source: tuple[Scan, KeyRange] | None = None,
    ) -> Page:
        """Map what this page adds; with ``source`` (the main pass) it carries the cursor."""
        site, run, worklogs = self.site, self.run, self.worklogs
        accepted = self.accept(records, upper)
        if self.conn.options.changelog:
            attach_changelogs(self.conn.transport, site.deployment, accepted)
        if worklogs is not None:
            for record in accepted:
                record["worklogs"] = worklogs.get(str(record.get("id")), [])
        items: list[WorkItem] = []
        rejects: list[Reject] = []
        for record in accepted:
            result = self.conn.map_safely(run.kind, record, str(record.get("id") or "") or None)
            if isinstance(result, Reject):
                rejects.append(result)
            else:
                items.append(result)
        self.conn.stats.count_page(len(items), len(rejects))
        for item in items:
            for code in item.extra.get("unknown_codes", ()):
                self.conn.stats.unknown_code(str(code))
        cursor = None
        if source is not None:
            scan, rng = source
            if rng.moved:
                rng.at_position = set()
            for item in items:
                if item.updated_at == rng.position:
                    rng.at_position.add(item.id.rsplit(":", 1)[-1])
            watermark = scan.frontier()
            if watermark is not None:
                cursor = Cursor(
                    watermark=watermark,
                    boundary_ids=tuple(sorted(scan.boundary(watermark))),
                    state={"deployment": site.deployment.kind},
                )
        return Page(run.kind, items, rejects, cursor=cursor, final=False)

    def missing(self) -> list[str]:
        """Ids the census saw in the window that the main pass did not emit."""
        run = self.run
        missing = [id_of(key) for key in run.census_ids.unemitted()]
        self.conn.census_found += len(missing)
        if missing:
            log.warning(
                "jira census: %d %s issues were not returned by the main pass; fetching them",
                len(missing),
                run.kind.value,
            )
        return missing

    def fetch_ids(self, ids: Sequence[str]) -> Iterator[Page]:
        if not ids:
            return
        site = self.site
        far = datetime.max.replace(tzinfo=UTC)
        queries = [
            window_jql(lo=None, hi=None, issue_ids=ids[start : start + 100])
            for start in range(0, len(ids), 100)
        ]
        scan = Scan(
            self.conn.transport,
            site.deployment,
            _unused_query,
            lo=None,
            hi=None,
            fields=site.fields,
            page_size=100,
            expand=self.expand,
            keyset=False,
            fixed=queries,
            budget=ISSUE_BUDGET,
        )
        self.scans.append(scan)
        for _, _, records in scan_pages(self.workers, [scan]):
            yield self.page(records, upper=far)


def _unused_query(lo: datetime | None, hi: datetime | None, exact: bool) -> str:
    raise AssertionError("fixed queries carry their own JQL")  # pragma: no cover
