"""Keyset paging of one range, and several ranges in parallel behind a bounded queue.

One range is read in (sys_updated_on, sys_id) order, each page continuing after the last key.
Quirk: ``sysparm_limit`` is applied before row-level ACLs (A2, A12.1), so a page can come back
short or even empty while more rows follow. A short page is never the end; an empty page ends a
range only once the Aggregate API confirms that no more than that page's rows were left (they were
all hidden). Where more are left, the hidden block is stepped over with ``sysparm_offset``.

The first page of a range asks for ``X-Total-Count`` (ACL-hidden rows included). A range closed
in the past only loses rows while it is read (an update moves a row past the window's end), so
once as many distinct rows as that count have been read, and the last page was short, every row is
in: the range ends without the empty page and the count that would otherwise confirm it. Hidden
rows keep the rows read below the count, and the range then ends the long way.

Ranges run on worker threads through the connector's one transport (so the host's rate governor
paces them all); pages wait in a bounded queue, which keeps memory flat however far the workers
run ahead of the consumer.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from itsm_bridge import IncompletePullError
from itsm_bridge_servicenow.query import (
    Key,
    after_key,
    id_keyset_query,
    keyset_query,
    window_conditions,
)
from itsm_bridge_servicenow.ranges import Range
from itsm_bridge_servicenow.values import value

__all__ = ["Fetched", "PageSize", "RangePage", "read_ids", "read_range", "run_ranges"]


class Fetched:
    """One Table API page: its rows, the limit it was read with and the server's clock.

    ``total`` is ``X-Total-Count`` when it was asked for: every row matching the query, ACL-hidden
    ones included, when the page was read. A page may come undecoded (``pending`` decodes it):
    its rows are built on first use, so the reader decides when the ~10 MB exist.
    """

    __slots__ = ("_pending", "_rows", "limit", "server_time", "total")

    def __init__(
        self,
        rows: list[dict[str, Any]] | None,
        limit: int,
        server_time: datetime | None,
        total: int | None = None,
        pending: Callable[[], list[dict[str, Any]]] | None = None,
    ) -> None:
        if rows is None and pending is None:
            raise ValueError("a page needs its rows or a way to decode them")
        self._rows = rows
        self._pending = pending
        self.limit = limit
        self.server_time = server_time
        self.total = total

    @property
    def rows(self) -> list[dict[str, Any]]:
        if self._rows is None:
            assert self._pending is not None
            self._rows, self._pending = self._pending(), None
        return self._rows

    def forget(self) -> None:
        """Drop the rows (and any undecoded body): the caller has what it needs from them."""
        self._rows, self._pending = [], None


@dataclass(frozen=True)
class RangePage:
    rows: list[dict[str, Any]]
    key: Key | None
    done: bool = False
    closed_at: datetime | None = None


class PageSize:
    """The page size shared by every worker of a pull: halves when the instance cancels a page,
    and grows while round trips, not rows, make up most of a page's time.

    Far from the instance a page's time is mostly the round trip, which does not grow with the
    page, so fewer, larger pages finish sooner. Each page read at the current size is weighed:
    its elapsed time less the round trip (the fastest row-less request, see ``round_trip``) is
    the time its rows took. While the round trip is at least that, the size doubles, up to
    ``maximum`` and to what ``memory`` allows: pages in flight cost ``copies`` times a page's
    bytes (each worker's undecoded page, decoded pages ~4.3 times their bytes, the WorkItems),
    measured per row from the pages read. A size the instance cancelled is never tried again.
    """

    def __init__(
        self,
        size: int,
        minimum: int,
        *,
        maximum: int | None = None,
        memory: int | None = None,
        copies: float = 1.0,
    ) -> None:
        self._size = size
        self.minimum = min(minimum, size)
        self.maximum = max(size, maximum or size)  # growth is off when maximum <= size
        self.memory = memory
        self.copies = copies
        self.halvings = 0
        self.growths = 0
        self.bytes_per_row = 0.0
        self.good = 0  # the largest size read without a cancellation
        self._lock = threading.Lock()

    @property
    def current(self) -> int:
        return self._size

    def memory_cap(self) -> int | None:
        """The largest page whose copies in flight fit ``memory`` (None: not measured yet)."""
        if self.memory is None or self.bytes_per_row <= 0:
            return None
        return max(self.minimum, int(self.memory / (self.bytes_per_row * self.copies)))

    def halve(self, tried: int) -> bool:
        """Halve below ``tried`` (once per size, whichever worker notices first)."""
        with self._lock:
            if self._size < tried:
                return True
            if self._size <= self.minimum:
                return False
            # A grown size that was cancelled falls back to the last size read without a cancel
            # when that is more than half of it (1640 -> 1000, not 820).
            fallback = self.good if self.good < self._size else 0
            self._size = max(self.minimum, self._size // 2, fallback)
            self.maximum = min(self.maximum, self._size)  # never grow back into a cancel
            self.halvings += 1
            return True

    def observe(
        self,
        limit: int,
        rows: int,
        elapsed: float,
        nbytes: int | None,
        round_trip: float | None,
    ) -> None:
        """Weigh one page (read with ``limit``): grow the size if its round trip dominated."""
        with self._lock:
            self.good = max(self.good, limit)
            if rows and nbytes:
                self.bytes_per_row = max(self.bytes_per_row, nbytes / rows)
            if limit != self._size or self._size >= self.maximum or round_trip is None:
                return
            if rows * 2 < limit:
                return  # the end of the data, or mostly hidden rows: no evidence either way
            if elapsed - round_trip > round_trip:
                return  # the rows took longer than the round trip: a bigger page gains little
            cap = self.memory_cap()
            if cap is None:
                return  # no measured page bytes, no memory bound: stay
            grown = min(self._size * 2, self.maximum, cap)
            if grown > self._size:
                self._size = grown
                self.growths += 1


class PageFetcher(Protocol):
    """(encoded query, offset) -> one page read at the current page size (``count``: with
    ``X-Total-Count``)."""

    def __call__(self, query: str, offset: int, count: bool = False) -> Fetched: ...


Counter = Callable[[str], int | None]
"""encoded query -> the Aggregate API count, or None where counting is not permitted."""


def _key(row: Mapping[str, Any], table: str) -> Key:
    stamp, sys_id = value(row, "sys_updated_on"), value(row, "sys_id")
    if not stamp or not sys_id:
        raise IncompletePullError(
            f"{table}: a record without sys_updated_on or sys_id cannot be paged",
            record=sys_id or None,
        )
    return stamp, sys_id


def read_range(
    rng: Range,
    table: str,
    fetch: PageFetcher,
    count: Counter,
    user_filter: str = "",
    stop: threading.Event | None = None,
    *,
    admit: Callable[[], bool] | None = None,
) -> Iterator[RangePage]:
    """Pages of ``rng`` after its delivered position; the last one has ``done=True``.

    ``admit`` is asked before a page is decoded (False: stop): with several ranges read at once,
    pages that the consumer is not ready for wait as their bytes, not as decoded rows (~5 times
    the size). Each page yielded was admitted exactly once.
    """
    after = rng.after
    first = True
    total: int | None = None  # rows of the range when its first page was read (see above)
    read = 0
    while stop is None or not stop.is_set():
        query = keyset_query(rng.start, rng.end, after, user_filter)
        page = fetch(query, 0, count=first)
        # What is left after an empty page, if this very page counted it.
        left = page.total if first else None
        if first:
            first, total = False, page.total
        if admit is not None and not admit():
            return
        taken = _take_page(page, table, after)
        if taken is None:
            page = _past_hidden(rng, after, query, page, fetch, count, user_filter, left)
            taken = _take_page(page, table, after)
            if taken is None:
                yield RangePage([], None, done=True, closed_at=page.server_time)
                return
        rows, after = taken
        read += len(rows)
        # Only a range closed in the past (rows keep arriving in the open catch-up range), and
        # only on a short page: that page held all that was left, so even a row that arrived
        # late (a commit slower than the lag) cannot have pushed an earlier one out of reach.
        if rng.end is not None and total is not None and read >= total and len(rows) < page.limit:
            yield RangePage(rows, after, done=True, closed_at=page.server_time)
            return
        del page, taken  # not kept alive while the next page is fetched
        yield RangePage(rows, after)
        del rows


def _take_page(page: Fetched, table: str, after: Key | None) -> tuple[list[Any], Key] | None:
    """A page's rows (decoded here if they came as bytes) and its last key; None if empty."""
    rows = page.rows
    if not rows:
        return None
    keys = [_key(row, table) for row in rows]
    previous = after
    for key in keys:
        if previous is not None and key <= previous:
            raise IncompletePullError(
                f"{table}: page out of (sys_updated_on, sys_id) order at {key} after "
                f"{previous}; the instance did not honour ORDERBY or the keyset stalled",
                record=key[1],
            )
        previous = key
    page.forget()
    return rows, keys[-1]


def read_ids(
    table: str, fetch: PageFetcher, count: Counter, user_filter: str = ""
) -> Iterator[str]:
    """Every visible sys_id in order (the census), past whole pages hidden by ACLs."""
    after: str | None = None
    while True:
        query = id_keyset_query(after, user_filter)
        page = fetch(query, 0)
        if not page.rows:
            left = count(query.removesuffix("ORDERBYsys_id").rstrip("^"))
            if left is None:  # no Aggregate API: the query's own X-Total-Count (hidden rows too)
                left = fetch(query, 0, count=True).total
            if left is None:
                raise IncompletePullError(
                    f"{table}: an empty census page and no count to tell hidden rows from the end"
                )
            offset = page.limit
            while offset < left and not page.rows:
                page = fetch(query, offset)
                offset += page.limit
            if not page.rows:
                return
        ids = [value(row, "sys_id") for row in page.rows]
        previous = after
        for sys_id in ids:
            if not sys_id or (previous is not None and sys_id <= previous):
                raise IncompletePullError(
                    f"{table}: the sys_id census is out of order or stalled at {previous}",
                    record=sys_id or None,
                )
            previous = sys_id
        yield from ids
        after = ids[-1]


def _past_hidden(
    rng: Range,
    after: Key | None,
    query: str,
    empty: Fetched,
    fetch: PageFetcher,
    count: Counter,
    user_filter: str,
    left: int | None = None,
) -> Fetched:
    """After an empty page: the next visible page, or the empty page if the range is over.

    ``left``: the rows after ``after`` if already known (the empty page's own count).
    """
    if left is None and after is None:
        left = count("^".join([*window_conditions(rng.start, rng.end), user_filter]).strip("^"))
    elif left is None and after is not None:
        left = count(after_key(rng.start, rng.end, after, user_filter))
    if left is None:
        # No Aggregate API: the empty page's own query counts what is left, hidden rows included.
        left = fetch(query, 0, count=True).total
    if left is None:
        raise IncompletePullError(
            f"{rng}: an empty page and no count (Aggregate API or X-Total-Count) to tell rows "
            "hidden by ACLs from the end of the range"
        )
    offset = empty.limit
    last = empty
    while offset < left:
        last = fetch(query, offset)
        if last.rows:
            return last
        offset += last.limit
    return Fetched([], empty.limit, last.server_time or empty.server_time)


def run_ranges(
    indices: Sequence[int],
    reader: Callable[[int, threading.Event], Iterator[RangePage]],
    workers: int,
    *,
    taken: Callable[[], None] | None = None,
) -> Iterator[tuple[int, RangePage]]:
    """Pages of several ranges, each range's pages in order; ranges overlap in time.

    With one worker (or one range) everything runs on the caller's thread. ``taken`` is called
    as each page leaves the queue (to admit another, see :func:`read_range`).
    """
    stop = threading.Event()
    if workers <= 1 or len(indices) <= 1:
        for index in indices:
            for one in reader(index, stop):
                handed = [(index, one)]
                del one
                yield handed.pop()
        return
    # A decoded 1000-record page is ~10 MB: keep few waiting (workers block on a full queue,
    # each holding one more, unless their reader admits pages only as ``taken`` frees room).
    pending: queue.Queue[tuple[int, RangePage | None, BaseException | None]] = queue.Queue(
        maxsize=2
    )

    def put(item: tuple[int, RangePage | None, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                pending.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work(index: int) -> None:
        try:
            for page in reader(index, stop):
                handed = (index, page, None)
                del page  # held by the queue only, not while the next page is fetched
                if not put(handed):
                    return
                del handed
        except BaseException as exc:  # handed to the consumer, which raises it
            put((index, None, exc))

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="itsm-servicenow")
    futures = [pool.submit(work, index) for index in indices]
    finished = 0
    try:
        while finished < len(indices):
            index, got, error = pending.get()
            if error is not None:
                raise error
            assert got is not None
            if got.done:
                finished += 1
            if taken is not None:
                taken()
            handed = [(index, got)]
            del got  # not kept alive here while the consumer works on it
            yield handed.pop()
    finally:
        stop.set()
        while not all(f.done() for f in futures):
            try:
                pending.get(timeout=0.05)
            except queue.Empty:
                continue
        pool.shutdown(wait=True, cancel_futures=True)
