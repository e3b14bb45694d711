"""The fake instance's tables: rows, sorted indexes, dot-walking, ACLs and queries.

Rows hold raw values only (strings, "" for empty) plus the choice and reference metadata needed to
render display values. Two sorted indexes per table, (sys_updated_on, sys_id) and sys_id, make
keyset pages cost O(log n + page) even on tens of thousands of rows; a query's bounds on those
fields (from every ``^NQ`` branch) pick the slice, and the full predicate filters it.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from itsm_bridge_servicenow.sandbox.encoded_query import Query, compare
from itsm_bridge_servicenow.sandbox.schema import CHOICES, TABLES, FieldDef, chain

__all__ = ["Instance", "Table"]

_NUMERIC = {"integer", "decimal"}


@dataclass
class Table:
    name: str
    rows: dict[str, dict[str, str]] = field(default_factory=dict)
    by_updated: list[tuple[str, str]] = field(default_factory=list)
    by_id: list[str] = field(default_factory=list)
    hidden: set[str] = field(default_factory=set)

    def put(self, row: dict[str, str]) -> None:
        sys_id = row["sys_id"]
        old = self.rows.get(sys_id)
        if old is not None:
            key = (old.get("sys_updated_on", ""), sys_id)
            at = bisect.bisect_left(self.by_updated, key)
            if at < len(self.by_updated) and self.by_updated[at] == key:
                del self.by_updated[at]
        else:
            bisect.insort(self.by_id, sys_id)
        self.rows[sys_id] = row
        bisect.insort(self.by_updated, (row.get("sys_updated_on", ""), sys_id))

    def remove(self, sys_id: str) -> None:
        old = self.rows.pop(sys_id, None)
        if old is None:
            return
        key = (old.get("sys_updated_on", ""), sys_id)
        at = bisect.bisect_left(self.by_updated, key)
        if at < len(self.by_updated) and self.by_updated[at] == key:
            del self.by_updated[at]
        at = bisect.bisect_left(self.by_id, sys_id)
        if at < len(self.by_id) and self.by_id[at] == sys_id:
            del self.by_id[at]


class Instance:
    """All tables of one fake instance, guarded by one lock (servers are threaded)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tables: dict[str, Table] = {}
        self.extra_fields: dict[str, dict[str, FieldDef]] = {}
        self.choices: dict[tuple[str, str], dict[str, str]] = dict(CHOICES)

    def table(self, name: str) -> Table:
        if name not in self.tables:
            self.tables[name] = Table(name)
        return self.tables[name]

    # -- dictionary ------------------------------------------------------------------------------

    def field_def(self, table: str, name: str) -> FieldDef | None:
        for t in chain(table):
            found = TABLES[t].fields.get(name) or self.extra_fields.get(t, {}).get(name)
            if found is not None:
                return found
        return None

    def all_fields(self, table: str) -> list[str]:
        names: list[str] = []
        for t in reversed(chain(table)):
            names += list(TABLES[t].fields) + list(self.extra_fields.get(t, {}))
        return list(dict.fromkeys(names))

    def path_def(self, table: str, path: str) -> tuple[str, FieldDef] | None:
        """The table and definition at the end of a dot-walk, or None if a hop is unknown."""
        current = table
        hops = path.split(".")
        for i, hop in enumerate(hops):
            found = self.field_def(current, hop)
            if found is None:
                return None
            if i == len(hops) - 1:
                return current, found
            if found.reference is None:
                return None
            current = found.reference
        return None

    def choices_for(self, table: str, name: str) -> dict[str, str] | None:
        """The choice list of ``name`` as seen from ``table`` (nearest table's list wins)."""
        for t in chain(table):
            labels = self.choices.get((t, name))
            if labels is not None:
                return labels
        return None

    # -- values ----------------------------------------------------------------------------------

    def resolve(self, table: str, row: dict[str, str], path: str) -> tuple[str, str]:
        """(raw value, owning table of the last hop) of a possibly dot-walked field."""
        hops = path.split(".")
        current_table, current = table, row
        for hop in hops[:-1]:
            definition = self.field_def(current_table, hop)
            target_id = current.get(hop, "")
            if definition is None or definition.reference is None or not target_id:
                return "", current_table
            target_table = self.tables.get(definition.reference)
            found = target_table.rows.get(target_id) if target_table else None
            if found is None:
                # Reference to a parent class (task, planned_task): find the row by id anywhere.
                found, owner = self.find(target_id)
                if found is None:
                    return "", current_table
                current_table = owner
            else:
                current_table = definition.reference
            current = found
        return current.get(hops[-1], ""), current_table

    def find(self, sys_id: str) -> tuple[dict[str, str] | None, str]:
        for name, t in self.tables.items():
            row = t.rows.get(sys_id)
            if row is not None:
                return row, row.get("sys_class_name") or name
        return None, ""

    def display_of(self, table: str, sys_id: str, reference: str) -> str:
        target = self.tables.get(reference)
        row = target.rows.get(sys_id) if target else None
        owner = reference
        if row is None:
            row, owner = self.find(sys_id)
        if row is None:
            return ""
        return row.get(TABLES[owner].display if owner in TABLES else "name", "")

    # -- queries ---------------------------------------------------------------------------------

    def matcher(self, table: str, query: Query) -> Callable[[dict[str, str]], bool]:
        numeric = {
            name: (d is not None and d[1].type in _NUMERIC)
            for name in query.fields()
            for d in [self.path_def(table, name)]
        }

        def test(row: dict[str, str]) -> bool:
            if not query.branches:
                return True
            for branch in query.branches:
                ok = True
                for group in branch:
                    if not any(
                        compare(c.op, self._value(table, row, c.field), c.value, numeric[c.field])
                        for c in group
                    ):
                        ok = False
                        break
                if ok:
                    return True
            return False

        return test

    def _value(self, table: str, row: dict[str, str], name: str) -> str:
        if "." not in name:
            return row.get(name, "")
        return self.resolve(table, row, name)[0]

    def select(self, table: str, query: Query) -> Iterator[dict[str, str]]:
        """Matching rows in the query's order (ACLs not applied)."""
        t = self.tables.get(table)
        if t is None:
            return iter(())
        test = self.matcher(table, query)
        order = query.order
        if order == [("sys_updated_on", False), ("sys_id", False)]:
            low, high = query.bounds("sys_updated_on")
            start = 0 if low is None else bisect.bisect_left(t.by_updated, (low, ""))
            stop = (
                len(t.by_updated)
                if high is None
                else bisect.bisect_right(t.by_updated, (high, "\uffff"))
            )
            keys: Iterable[str] = (sid for _, sid in t.by_updated[start:stop])
        elif not order or order == [("sys_id", False)]:
            low, high = query.bounds("sys_id")
            start = 0 if low is None else bisect.bisect_left(t.by_id, low)
            stop = len(t.by_id) if high is None else bisect.bisect_right(t.by_id, high)
            keys = t.by_id[start:stop]
        else:
            matched = [row for row in t.rows.values() if test(row)]
            for name, descending in reversed(order):
                matched.sort(key=lambda r, n=name: self._value(table, r, n), reverse=descending)  # type: ignore[misc]
            return iter(matched)
        return (row for row in (t.rows[k] for k in keys) if test(row))
