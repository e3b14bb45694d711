"""The sandbox's search index: issues ordered by ``(updated, id)`` for fast windowed paging.

A pull pages ``updated >= a AND updated < b ORDER BY updated ASC, id ASC``; the index answers it
by bisecting to ``a`` (or to the position a page token carries) and evaluating the predicate only
until the page is full, so 20,000 issues page in linear time. Other orders fall back to a sort of
the matches. With ``delay`` > 0 the index lags the data (Cloud's search is eventually
consistent): a change becomes searchable ``delay`` seconds after it is made, and until then the
search sees, and renders, the previous version.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from itsm_bridge._time import to_epoch_ms
from itsm_bridge.sandbox import TruthItem
from itsm_bridge_jira.sandbox.jql import Doc, Query
from itsm_bridge_jira.sandbox.render import (
    Renderer,
    issue_id,
    issue_number,
    project_key,
    type_of,
)

__all__ = ["SearchIndex", "epoch_ms"]

_PRIORITY_RANK = {"1": 1, "2": 2, "3": 3, "4": 4, "5": 5}


def epoch_ms(value: datetime) -> int:
    """Milliseconds since the epoch, truncated as Jira's millisecond timestamps are.

    Integer arithmetic: ``int(ts * 1000)`` on a float can land one millisecond below the
    rendered value, and a record would then sit on the wrong side of a window bound.
    """
    return to_epoch_ms(value)


@dataclass(frozen=True)
class _Entry:
    doc: Doc
    item: TruthItem


class SearchIndex:
    """Thread-safe; ``clock`` is monotonic seconds (for the consistency delay)."""

    def __init__(
        self,
        renderer: Renderer,
        *,
        delay: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.renderer = renderer
        self.delay = delay
        self.clock = clock
        self._lock = threading.RLock()
        self._entries: dict[str, _Entry] = {}
        self._order: list[tuple[int, int, str]] = []
        self._pending: list[tuple[float, str, TruthItem | None]] = []
        self.revision = 0
        self._matches: dict[str, tuple[int, list[tuple[Doc, TruthItem]]]] = {}

    def doc(self, item: TruthItem, parent_key: str | None) -> Doc:
        t = type_of(item)
        return Doc(
            id=issue_id(item.uid),
            key=item.number.upper(),
            number=issue_number(item.number),
            project=project_key(item.number),
            type_id=t.id,
            type_name=t.name,
            status=self.renderer.status_name(item),
            status_category=self.renderer.status_category(item),
            priority=self.renderer.priority_name(item),
            labels=tuple(item.labels),
            updated=epoch_ms(item.updated),
            created=epoch_ms(item.created),
            resolved=epoch_ms(item.resolved) if item.resolved else None,
            parent=parent_key,
        )

    def load(self, items: Iterable[TruthItem]) -> None:
        with self._lock:
            for item in items:
                self._put(item)
            self._order.sort()

    def _put(self, item: TruthItem) -> None:
        self.revision += 1
        old = self._entries.get(item.number)
        if old is not None:
            self._drop_order(old.doc, item.number)
        doc = self.doc(item, item.parent)
        self._entries[item.number] = _Entry(doc, item)
        bisect.insort(self._order, (doc.updated, doc.id, item.number))

    def _drop_order(self, doc: Doc, number: str) -> None:
        key = (doc.updated, doc.id, number)
        at = bisect.bisect_left(self._order, key)
        if at < len(self._order) and self._order[at] == key:
            del self._order[at]

    def change(self, number: str, item: TruthItem | None) -> None:
        """A new version of ``number`` (``None``: deleted); searchable after the delay."""
        with self._lock:
            if self.delay > 0:
                self._pending.append((self.clock() + self.delay, number, item))
            else:
                self._apply(number, item)

    def _apply(self, number: str, item: TruthItem | None) -> None:
        self.revision += 1
        if item is None:
            old = self._entries.pop(number, None)
            if old is not None:
                self._drop_order(old.doc, number)
        else:
            self._put(item)

    def _catch_up(self) -> None:
        if not self._pending:
            return
        now = self.clock()
        due = [p for p in self._pending if p[0] <= now]
        if due:
            self._pending = [p for p in self._pending if p[0] > now]
            for _, number, item in due:
                self._apply(number, item)

    def item(self, number: str) -> TruthItem | None:
        with self._lock:
            entry = self._entries.get(number)
            return entry.item if entry is not None else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    # -- searching -------------------------------------------------------------------------------

    @staticmethod
    def fast(query: Query) -> bool:
        """Whether the query's order is the index's own (``updated ASC[, id|key ASC]``)."""
        return query.order in (
            [("updated", True)],
            [("updated", True), ("id", True)],
            [("updated", True), ("key", True)],
        )

    def _scan(self, query: Query, after: tuple[int, int] | None) -> Iterator[tuple[Doc, TruthItem]]:
        lo = query.updated_lo
        hi = query.updated_hi
        if after is not None:
            start = bisect.bisect_right(self._order, (after[0], after[1], "\uffff"))
        else:
            start = bisect.bisect_left(self._order, (lo, -1, "")) if lo is not None else 0
        order = self._order
        entries = self._entries
        predicate = query.predicate
        for at in range(start, len(order)):
            updated, _, number = order[at]
            if hi is not None and updated >= hi:
                return
            entry = entries[number]
            if predicate(entry.doc):
                yield entry.doc, entry.item

    def page_after(
        self, query: Query, after: tuple[int, int] | None, limit: int
    ) -> tuple[list[tuple[Doc, TruthItem]], bool]:
        """Up to ``limit`` matches after a position, and whether more follow (search-after)."""
        with self._lock:
            self._catch_up()
            out: list[tuple[Doc, TruthItem]] = []
            for hit in self._scan(query, after):
                if len(out) == limit:
                    return out, True
                out.append(hit)
            return out, False

    def page_at(
        self, query: Query, offset: int, limit: int, *, key: str | None = None
    ) -> tuple[list[tuple[Doc, TruthItem]], int]:
        """``limit`` matches from ``offset`` and the total (offset paging).

        The matches of a query (``key``: its JQL) are kept until the index changes, so paging
        a large result costs one scan rather than one per page.
        """
        with self._lock:
            self._catch_up()
            cached = self._matches.get(key) if key is not None else None
            if cached is not None and cached[0] == self.revision:
                matches = cached[1]
            else:
                if self.fast(query):
                    matches = list(self._scan(query, None))
                else:
                    matches = [
                        (e.doc, e.item) for e in self._entries.values() if query.predicate(e.doc)
                    ]
                    for name, ascending in reversed(query.order or [("key", False)]):
                        matches.sort(key=_sorter(name), reverse=not ascending)
                if key is not None:
                    if len(self._matches) > 8:
                        self._matches.clear()
                    self._matches[key] = (self.revision, matches)
            return matches[offset : offset + limit], len(matches)

    def count(self, query: Query) -> int:
        with self._lock:
            self._catch_up()
            if query.updated_lo is not None or query.updated_hi is not None:
                return sum(1 for _ in self._scan(query, None))
            return sum(1 for e in self._entries.values() if query.predicate(e.doc))


def _sorter(name: str) -> Callable[[tuple[Doc, TruthItem]], tuple[object, ...]]:
    def key(hit: tuple[Doc, TruthItem]) -> tuple[object, ...]:
        return _sort_key(hit[0], name)

    return key


def _sort_key(doc: Doc, name: str) -> tuple[object, ...]:
    if name == "updated":
        return (doc.updated,)
    if name == "created":
        return (doc.created,)
    if name == "id":
        return (doc.id,)
    if name == "priority":
        return (doc.priority,)
    return (doc.project, doc.number)
