"""The live record set of a fake platform: records that change while a client pages.

Both fakes (ServiceNow, Jira) hold their records in a :class:`MutableStore` so that the data
faults behave the same on each platform:

- **updates during paging**: :meth:`MutableStore.churn` (call it once per page served) touches a
  random record with probability ``FaultPlan.p_update_during_paging``; the record gets a new
  version with ``updated = now`` (wall-clock time), so it moves past a client's window and must be
  picked up by the client's closing catch-up pass, exactly once;
- **deletes during paging**: with probability ``p_delete_during_paging`` a record disappears
  (kept in :meth:`MutableStore.deleted` for census tests);
- **ACL-hidden records**: a seeded share ``acl_hidden_share`` of records (by ``uid``, stable for a
  seed) exists but is invisible to the client, as ServiceNow ACLs do: the platform counts them in
  totals yet leaves them out of pages, which is why short pages are not the end.

The store never renders anything; fakes read :meth:`current` / :meth:`visible` (or the cached
:meth:`sorted_by` views, recomputed only when :attr:`revision` changes) and render records in
their platform's shape. Thread-safe: the server answers requests from many threads.

Usage in a fake::

    store = MutableStore(items, faults=plan, seed=seed)
    page = [r for r in store.sorted_by("updated", "uid") if ...][offset:offset + limit]
    store.churn(candidates=[r.number for r in page])    # after serving the page
    def visible_items(self): return self.store.visible()  # the PlatformSandbox contract
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from itsm_bridge.sandbox.faults import FaultPlan
from itsm_bridge.sandbox.model import TruthItem

__all__ = ["ChurnEvent", "MutableStore", "acl_hidden"]


@dataclass(frozen=True)
class ChurnEvent:
    """One change the fake made to its data while a client paged (for assertions in tests)."""

    action: Literal["update", "delete"]
    number: str
    at: datetime


def acl_hidden(uid: str, share: float, seed: int = 0) -> bool:
    """Whether ACLs hide the record with this ``uid``: stable per seed, ``share`` of all uids."""
    if share <= 0.0:
        return False
    digest = hashlib.blake2b(f"acl:{seed}:{uid}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < share


def _utcnow() -> datetime:
    return datetime.now(UTC)


class MutableStore:
    """Thread-safe current versions of a fake platform's records, keyed by ``number``."""

    def __init__(
        self,
        items: Iterable[TruthItem],
        *,
        faults: FaultPlan | None = None,
        seed: int = 0,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.faults = faults
        self.seed = seed
        self.clock = clock
        self._lock = threading.RLock()
        self._items: dict[str, TruthItem] = {}
        for item in items:
            if item.number in self._items:
                raise ValueError(f"duplicate record number {item.number!r} in sandbox data")
            self._items[item.number] = item
        self._by_uid = {item.uid: item.number for item in self._items.values()}
        self._numbers = list(self._items)  # for O(1) random picks; deleted ones are skipped
        share = faults.acl_hidden_share if faults is not None else 0.0
        self._hidden = frozenset(
            item.uid for item in self._items.values() if acl_hidden(item.uid, share, seed)
        )
        self._deleted: dict[str, tuple[TruthItem, datetime]] = {}
        self._rng = random.Random(f"churn:{seed}")
        self._events: list[ChurnEvent] = []
        self._views: dict[tuple[Any, ...], list[TruthItem]] = {}
        self.revision = 0

    # -- reading ------------------------------------------------------------------------------
    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, number: object) -> bool:
        with self._lock:
            return number in self._items

    def get(self, number: str) -> TruthItem | None:
        """The current version (hidden ones included); ``None`` when deleted or unknown."""
        with self._lock:
            return self._items.get(number)

    def by_uid(self, uid: str) -> TruthItem | None:
        with self._lock:
            number = self._by_uid.get(uid)
            return None if number is None else self._items.get(number)

    def is_hidden(self, item: TruthItem | str) -> bool:
        """Whether ACLs hide this record (by ``TruthItem`` or ``uid``)."""
        return (item.uid if isinstance(item, TruthItem) else item) in self._hidden

    def current(self) -> list[TruthItem]:
        """Every live record, hidden ones included, in the order they were given."""
        with self._lock:
            return list(self._items.values())

    def visible(self) -> list[TruthItem]:
        """What a client may see: live records that ACLs do not hide."""
        with self._lock:
            return [i for i in self._items.values() if i.uid not in self._hidden]

    def sorted_by(self, *fields: str, visible_only: bool = False) -> list[TruthItem]:
        """Live records ordered by ``fields`` (TruthItem attribute names), cached per revision.

        The returned list is shared; do not mutate it.
        """
        key = (self.revision, fields, visible_only)
        with self._lock:
            view = self._views.get(key)
            if view is None:
                source = self.visible() if visible_only else self.current()
                view = sorted(source, key=lambda i: tuple(getattr(i, f) for f in fields))
                self._views = {k: v for k, v in self._views.items() if k[0] == self.revision}
                self._views[key] = view
            return view

    def deleted(self) -> dict[str, datetime]:
        """Numbers of records deleted so far, with when."""
        with self._lock:
            return {number: at for number, (_, at) in self._deleted.items()}

    @property
    def events(self) -> list[ChurnEvent]:
        """Every update and delete made through this store, in order."""
        with self._lock:
            return list(self._events)

    # -- changing -----------------------------------------------------------------------------
    def _now_after(self, item: TruthItem, now: datetime | None) -> datetime:
        when = now or self.clock()
        # A new version is never older than the last one, whatever the clock says.
        return max(when, item.updated + timedelta(seconds=1))

    def touch(self, number: str, now: datetime | None = None, note: str | None = None) -> TruthItem:
        """Record a new version of ``number`` updated at ``now`` (wall-clock time by default)."""
        with self._lock:
            item = self._items.get(number)
            if item is None:
                raise KeyError(f"no live record {number!r} in the sandbox")
            when = self._now_after(item, now)
            new = item.touched(when, note=note or f"Updated by sandbox churn at {when:%H:%M:%S}.")
            self._items[number] = new
            self._events.append(ChurnEvent("update", number, when))
            self.revision += 1
            return new

    def delete(self, number: str, now: datetime | None = None) -> TruthItem | None:
        """Remove ``number``; return the removed version, or ``None`` if it was not live."""
        with self._lock:
            item = self._items.pop(number, None)
            if item is None:
                return None
            when = now or self.clock()
            self._deleted[number] = (item, when)
            self._events.append(ChurnEvent("delete", number, when))
            self.revision += 1
            return item

    def churn(
        self, candidates: Iterable[str] | None = None, now: datetime | None = None
    ) -> list[ChurnEvent]:
        """Apply the plan's data faults once (call per page served); return what changed.

        ``candidates`` narrows the records that may change, for example those already served in
        this pull (the hard case: a record seen early moves past the window's end).
        """
        plan = self.faults
        if plan is None or (plan.p_update_during_paging <= 0 and plan.p_delete_during_paging <= 0):
            return []
        changed: list[ChurnEvent] = []
        with self._lock:
            if plan.chance(plan.p_update_during_paging):
                number = self._pick(candidates)
                if number is not None:
                    self.touch(number, now)
                    changed.append(self._events[-1])
            if plan.chance(plan.p_delete_during_paging):
                number = self._pick(candidates)
                if number is not None:
                    self.delete(number, now)
                    changed.append(self._events[-1])
        return changed

    def _pick(self, candidates: Iterable[str] | None) -> str | None:
        if candidates is None:
            for _ in range(16):
                number = self._rng.choice(self._numbers) if self._numbers else None
                if number is None or number in self._items:
                    return number
            pool = list(self._items)
        else:
            pool = [n for n in candidates if n in self._items]
        return self._rng.choice(pool) if pool else None
