"""Paging one JQL window as several key ranges at once, within the host's rate governor.

A window ``updated >= lo AND updated < hi`` is read as disjoint ranges of ``updated``, each with its
own JQL query and so its own sequence of pages: Cloud's ``nextPageToken`` cannot be predicted or
shared, and Data Center's ``startAt`` stays exact only while its own query's ``total`` holds. Up to
``workers`` pages are in flight together, so server latency (hundreds of milliseconds a page on a
real site) overlaps instead of adding up, and on a fast server the next page is on its way while
this one is mapped. Pages come back to the caller's thread: only the HTTP exchange and the JSON
decoding run in the pool.

How ranges come about: the window's first page is read alone (a small window is one page and no
split at all). Afterwards, whenever a page arrives while a slot is idle, its range is cut at even
steps of time over what remains of it, provided it holds at least two more pages by estimate (Data
Center's ``total``; on Cloud, the density of ``updated`` on the page just read). A cut range's query
ends early and restarts from its keyset (``updated >= position``), re-reading only the records of
that one millisecond, which the caller drops as already emitted.

Correctness is the single window's, range by range: every upper bound is in the past, so records
can only leave a range while it is paged (a changed record's new ``updated`` is after the window),
and a Data Center range whose ``total`` drops restarts from its keyset, as in
:mod:`itsm_bridge_jira.window`. :meth:`Scan.frontier` is the resume point: every record of the
window updated before it has been handed out.

Memory stays bounded: a scan may have a ``budget`` of records in flight (the page its caller is
mapping included), so Data Center's 1000-issue pages get two or three slots where Cloud's
100-issue pages get all of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from itsm_bridge import IncompletePullError, PageRequest, ResponseFormatError
from itsm_bridge._idset import IdSet
from itsm_bridge._time import from_epoch_ms, to_epoch_ms
from itsm_bridge.errors import RequestContext
from itsm_bridge.http import HttpResponse, Paginator, Transport, shape_of
from itsm_bridge_jira.deployment import Deployment
from itsm_bridge_jira.seen import id_key, id_set
from itsm_bridge_jira.window import MAX_RESTARTS, search_request, updated_of

__all__ = ["KeyRange", "Query", "Scan", "scan_pages"]

MARK = 100  # a range remembers the `updated` of every MARK-th record it reads (see `pieces`)

Query = Callable[[datetime | None, datetime | None, bool], str]
"""``query(lo, hi, exact)``: the JQL of ``lo <= updated < hi`` (``exact=False``: widened ``lo``)."""


@dataclass(eq=False)
class KeyRange:
    """One range of a window: ``lo <= updated < hi``, paged by its own query."""

    lo: datetime | None
    hi: datetime | None
    widen: bool = False  # the window's own first query: its lower bound goes out minute-widened
    jql: str | None = None  # a fixed query (census by id, fetch by id): not keyed by time
    position: datetime | None = None  # greatest `updated` read so far (where a restart resumes)
    moved: bool = False  # the last page advanced `position`
    at_position: set[str] = field(default_factory=set)  # ids handed out at `position` (caller's)
    marks: list[datetime] = field(default_factory=list)  # `updated` of every MARK-th record read
    counted: int = 0  # marks already turned into pieces
    piece_lo: datetime | None = None  # where the next piece starts (see `pieces`)
    current: PageRequest | None = None  # the next request of the running query
    paginator: Paginator | None = None
    baseline: int | None = None  # Data Center: the running query's total
    read: int = 0  # records the running query has returned
    # distinct ids the running query returned (packed: a range's query may return millions)
    ids: IdSet = field(default_factory=id_set)
    covered: int = 0  # Data Center: offsets its pages covered (`ids` must be as many)
    probe: int = 0  # the size of the scan's small first page, while this query asked for it
    restarts: int = 0  # consecutive restarts without progress
    restarted_at: datetime | None = None
    busy: bool = False
    done: bool = False

    def __post_init__(self) -> None:
        self.piece_lo = self.lo

    def pieces(self, size: int) -> list[tuple[datetime | None, datetime | None]]:
        """The part read since the last call, cut into ranges of about ``size`` records.

        A piece ends at a mark (the ``updated`` of a record read), so every record before its
        end has been read by now; once the range is done, the rest up to ``hi`` follows.
        """
        every = max(1, size // MARK)
        out: list[tuple[datetime | None, datetime | None]] = []
        while len(self.marks) - self.counted >= every:
            cut = self.marks[self.counted + every - 1]
            self.counted += every
            after_lo = self.piece_lo is None or cut > self.piece_lo
            if after_lo and (self.hi is None or cut < self.hi):
                out.append((self.piece_lo, cut))
                self.piece_lo = cut
        rest = self.piece_lo is None or self.hi is None or self.piece_lo < self.hi
        if self.done and rest:
            out.append((self.piece_lo, self.hi))
            self.piece_lo = self.hi
        return out

    @property
    def frontier(self) -> datetime | None:
        """Every record of this range updated before this has been read."""
        if self.done:
            return self.hi
        if self.position is not None and (self.lo is None or self.position > self.lo):
            return self.position
        return self.lo


class Scan:
    """A window (or a list of fixed queries) read as key ranges; see the module docstring."""

    def __init__(
        self,
        transport: Transport,
        deployment: Deployment,
        query: Query,
        *,
        lo: datetime | None,
        hi: datetime | None,
        fields: Sequence[str],
        page_size: int,
        expand: Sequence[str] = (),
        widen: bool = False,
        keyset: bool = True,
        fixed: Sequence[str] = (),
        empty: bool = False,
        budget: int | None = None,
        first_page: int | None = None,
        on_restart: Callable[[], None] | None = None,
    ) -> None:
        self.transport = transport
        self.deployment = deployment
        self.query = query
        self.fields = list(fields)
        self.page_size = page_size
        # The window's first request alone decides how to cut it: a small one answers sooner.
        self.first_page = first_page if first_page is not None and first_page < page_size else None
        self.expand = list(expand)
        self.keyset = keyset
        self.splittable = keyset and not fixed
        self.budget = budget  # records the requests in flight may bring back at once
        self.holding = 0  # pages handed to the caller and not yet given back
        self.on_restart = on_restart
        self.hi = hi
        self.served = 0  # the largest page the server returned (it may cap `page_size`)
        # Data Center's evidence (see `absorb`): a query whose total rose (a record entered a
        # window closed in the past) or was passed (more distinct records than it counted, so
        # the offsets stop short of the end), and records the totals promised that no page
        # delivered. Either sends the pull to the id census.
        self.rose = False
        self.shortfall = 0
        self.answered = 0.0  # monotonic instant its latest answer arrived
        self.ranges: list[KeyRange]
        if fixed:
            self.ranges = [KeyRange(None, None, jql=jql) for jql in fixed]
        elif empty:  # ranges arrive later (`add`), as another scan finishes them
            self.ranges = []
        else:
            self.ranges = [KeyRange(lo, hi, widen=widen)]

    # -- state -----------------------------------------------------------------------------------

    def add(self, lo: datetime | None, hi: datetime | None, jql: str | None = None) -> None:
        """One more range to read (a fixed query when ``jql`` is given)."""
        self.ranges.append(KeyRange(lo, hi, jql=jql))

    def capacity(self, workers: int) -> int:
        """Pages this scan may have at once: ``workers``, fewer for large pages."""
        if self.budget is None:
            return workers
        page = min(self.page_size, self.served or self.page_size)
        return max(1, min(workers, self.budget // page))

    def limit(self, workers: int) -> int:
        """Requests it may have in flight now: the page its caller is working on counts."""
        return max(1, self.capacity(workers) - self.holding)

    def ready(self) -> KeyRange | None:
        """The earliest range with a page to fetch and none in flight."""
        for rng in self.ranges:
            if not rng.busy and not rng.done:
                return rng
        return None

    def busy(self) -> int:
        return sum(1 for r in self.ranges if r.busy)

    def frontier(self) -> datetime | None:
        """Every record of the window updated before this has been handed out."""
        open_ranges = [r for r in self.ranges if not r.done]
        if not open_ranges:
            return self.hi
        points = [r.frontier for r in open_ranges]
        if any(p is None for p in points):
            return None
        return min(p for p in points if p is not None)

    def boundary(self, at: datetime) -> set[str]:
        """Ids handed out at exactly ``at`` (ranges are disjoint: at most one range has them)."""
        for rng in self.ranges:
            if rng.position == at:
                return rng.at_position
        return set()

    # -- requests --------------------------------------------------------------------------------

    def request(self, rng: KeyRange) -> PageRequest:
        """The next request of ``rng``, starting (or restarting) its query when it has none."""
        if rng.current is None:
            if rng.jql is not None:
                jql = rng.jql
            elif (
                self.keyset
                and rng.position is not None
                and (rng.lo is None or rng.position > rng.lo)
            ):
                jql = self.query(rng.position, rng.hi, True)  # exact: a record's own `updated`
            else:
                jql = self.query(rng.lo, rng.hi, not rng.widen)
            size, rng.probe = self.page_size, 0
            if self.first_page is not None:
                size = rng.probe = self.first_page
                self.first_page = None
            first, rng.paginator = search_request(
                self.deployment, jql, self.fields, size, self.expand
            )
            rng.current = rng.paginator.first(first)
            rng.baseline = None
            rng.read = 0
            rng.ids = id_set()
            rng.covered = 0
        return rng.current

    def absorb(self, rng: KeyRange, response: HttpResponse) -> list[dict[str, Any]] | None:
        """Take one page of ``rng``; ``None`` when it was dropped (its query restarts)."""
        data = response.data if isinstance(response.data, Mapping) else {}
        raw = data.get("issues")
        if not isinstance(raw, list):  # missing too: an error object answered with status 200
            raise ResponseFormatError(
                f"expected a list at 'issues', got {shape_of(response.data, raw)}",
                source=self.transport.source,
                context=RequestContext(
                    connector=self.transport.connector,
                    endpoint="search",
                    method="POST",
                    url=response.url,
                    status=response.status,
                ),
            )
        total = data.get("total")
        records = [r for r in raw if isinstance(r, dict)]
        if isinstance(total, int):
            if rng.baseline is not None and total < rng.baseline:
                self._restart(rng)  # quirk: offset pages shift when records leave the window
                return None
            if rng.baseline is not None and total > rng.baseline:
                self.rose = True
            rng.baseline = total if rng.baseline is None else max(rng.baseline, total)
            # Offset pages of one unchanged result list tile it; the distinct ids prove it.
            add = rng.ids.add
            for record in records:
                add(id_key(str(record.get("id"))))
            if len(rng.ids) > rng.baseline:
                # More distinct records than the query counted: the total understates, and the
                # offset paging it steers would stop before the last records.
                self.rose = True
        rng.read += len(raw)
        if len(raw) < rng.probe or not rng.probe:  # a full small page says nothing of the cap
            self.served = max(self.served, len(raw))
        rng.moved = False
        if self.keyset:
            for record in records:
                when = updated_of(record)
                # An issue shown with an `updated` past the range changed after the window
                # closed: where the index still files it is unknown, so it is no position.
                if when is None or (rng.hi is not None and when >= rng.hi):
                    continue
                if rng.position is None or when > rng.position:
                    rng.position = when
                    rng.moved = True
            rng.marks.extend(t for t in map(updated_of, records[MARK - 1 :: MARK]) if t)
        assert rng.paginator is not None
        assert rng.current is not None
        following = rng.paginator.next(rng.current, data, response.headers, raw)
        rng.current = following
        offset = getattr(rng.paginator, "offset", None)
        if rng.baseline is not None and isinstance(offset, int):
            rng.covered = min(offset, rng.baseline)
        if following is None:
            if rng.baseline is not None:
                # A finished query owes every record its total promised, however its pages ended
                # (an empty page before the total is a shortfall, not the end of the results).
                rng.covered = rng.baseline
            rng.done = True
            self._settle(rng)
        elif rng.probe:
            if len(raw) >= rng.probe:  # (below it: the server's own cap, keep paging as it is)
                self._settle(rng)
                rng.current = None  # the rest at full size, from the keyset (as a cut range does)
            rng.probe = 0
        return records

    def _settle(self, rng: KeyRange) -> None:
        """A query ends (done, cut or restarted): did its pages deliver every offset they passed?"""
        if rng.baseline is not None and len(rng.ids) < rng.covered:
            self.shortfall += rng.covered - len(rng.ids)
        rng.covered = 0
        rng.ids = id_set()

    def _restart(self, rng: KeyRange) -> None:
        self._settle(rng)  # the pages before the drop saw one result list
        rng.current = None
        if not self.keyset:
            rng.position = None
        rng.restarts = 1 if rng.position != rng.restarted_at else rng.restarts + 1
        rng.restarted_at = rng.position
        if self.on_restart is not None:
            self.on_restart()
        if rng.restarts > MAX_RESTARTS:
            raise IncompletePullError(
                f"the search window kept shrinking while it was paged ({rng.restarts} restarts "
                "without progress); records change faster than they can be read, run again later",
                source=self.transport.connector,
            )

    # -- splitting -------------------------------------------------------------------------------

    def split(self, rng: KeyRange, records: Sequence[Mapping[str, Any]], extra: int) -> int:
        """Cut what remains of ``rng`` into up to ``extra + 1`` ranges; returns how many were added.

        Only a range that was just read (nothing in flight) is cut, at even steps of time, and
        only where it holds two pages or more by estimate.
        """
        if (
            not self.splittable
            or extra < 1
            or rng.done
            or rng.position is None
            or rng.hi is None
            or rng.position >= rng.hi
        ):
            return 0
        pages = self._pages_left(rng, records)
        pieces = min(extra + 1, int(pages))
        start, end = to_epoch_ms(rng.position), to_epoch_ms(rng.hi)
        pieces = min(pieces, end - start)
        if pieces < 2:
            return 0
        cuts = [start + (end - start) * i // pieces for i in range(1, pieces)]
        bounds = [from_epoch_ms(c) for c in cuts if c > start]
        if not bounds:
            return 0
        added = [KeyRange(lo, hi) for lo, hi in zip(bounds, [*bounds[1:], rng.hi], strict=True)]
        rng.hi = bounds[0]
        self._settle(rng)
        rng.current = None  # its query had the old upper bound: restart it from its keyset
        index = self.ranges.index(rng)
        self.ranges[index + 1 : index + 1] = added
        return len(added)

    def _pages_left(self, rng: KeyRange, records: Sequence[Mapping[str, Any]]) -> float:
        page = min(self.page_size, self.served) or self.page_size
        if rng.baseline is not None:  # Data Center: the query's own count
            return max(0, rng.baseline - rng.read) / page
        times = [t for t in (updated_of(r) for r in records) if t is not None]
        assert rng.position is not None
        assert rng.hi is not None
        if len(times) < 2 or max(times) <= min(times):
            return float(len(records) >= page) * 2  # unknown density: assume more
        per_second = (len(times) - 1) / (max(times) - min(times)).total_seconds()
        return per_second * (rng.hi - rng.position).total_seconds() / page


def _send(transport: Transport, request: PageRequest) -> tuple[HttpResponse, float]:
    response = transport.request(
        request.method, request.path, params=request.params, json=request.json, endpoint="search"
    )
    return response, time.monotonic()


def scan_pages(
    workers: int, scans: Sequence[Scan]
) -> Iterator[tuple[Scan, KeyRange, list[dict[str, Any]]]]:
    """Pages of every scan as they arrive, with up to ``workers`` requests in flight in all.

    Earlier scans come first when a slot frees; each keeps within its own :meth:`Scan.limit`
    (a decoded page of a thousand issues is about ten megabytes; the page the caller holds
    counts), and a later scan uses the slots an earlier one cannot. Ranges may be added to a
    scan while this runs (between pages). New requests go out before a page is handed to the
    caller, so the caller's work on it overlaps the next pages' round trips. Each scan has
    threads for its capacity only: a thread decoding large pages keeps its own malloc arena.
    """
    pending: dict[Future[tuple[HttpResponse, float]], tuple[Scan, KeyRange]] = {}
    pools: dict[int, tuple[int, ThreadPoolExecutor]] = {}  # id(scan) -> (threads, pool)

    def pool_for(scan: Scan) -> ThreadPoolExecutor:
        size = scan.capacity(workers)
        known = pools.get(id(scan))
        if known is not None and known[0] >= size:
            return known[1]
        if known is not None:
            known[1].shutdown(wait=False)  # its requests finish; new ones go to the larger pool
        pool = ThreadPoolExecutor(size, thread_name_prefix="itsm-jira")
        pools[id(scan)] = (size, pool)
        return pool

    def fill() -> None:
        for scan in scans:
            limit = scan.limit(workers)
            while len(pending) < workers and scan.busy() < limit:
                rng = scan.ready()
                if rng is None:
                    break
                request = scan.request(rng)
                rng.busy = True
                pending[pool_for(scan).submit(_send, scan.transport, request)] = (scan, rng)

    try:
        while True:
            fill()
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in [f for f in pending if f in done]:  # in the order they were sent
                scan, rng = pending.pop(future)
                rng.busy = False
                response, arrived = future.result()
                scan.answered = max(scan.answered, arrived)
                records = scan.absorb(rng, response)
                if records is None:  # dropped: the range restarts
                    fill()
                    continue
                waiting = sum(1 for r in scan.ranges if not r.busy and not r.done)
                scan.split(rng, records, scan.capacity(workers) - scan.busy() - waiting)
                scan.holding += 1
                fill()
                try:
                    yield scan, rng, records
                finally:
                    scan.holding -= 1
    finally:
        for future in pending:
            future.cancel()
        for _, pool in pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
