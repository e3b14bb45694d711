"""Field names checked against the instance's data dictionary before any data request.

Quirk: the Table API silently ignores unknown names in ``sysparm_query`` and ``sysparm_fields``
(A2, A12.2), so a misspelt filter returns the whole table and a misspelt projection returns
nothing, without an error. ``sys_dictionary`` lists each field on the table that *defines* it
(incident's ``number`` lives on ``task``), so the table's ancestry is read from ``sys_db_object``
(``super_class``) first and the dictionary is queried for the whole chain. Dot-walked names
(``business_service.service_classification``) follow the reference to its target table.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from itsm_bridge import ConfigurationError, PermissionDeniedError
from itsm_bridge.http import HttpResponse, Transport

__all__ = ["DictionaryUnreadable", "FieldCatalog", "NoSuchTable", "TableFields"]

log = logging.getLogger("itsm_bridge.servicenow")

_DEPTH = 6  # super_class hops read per request (task tables are 2-3 deep)

# The ancestry every instance gives these tables (sys_db_object still has the last word): the
# dictionary is read for it while sys_db_object is, saving a round trip per table, and read
# again only if the instance says otherwise.
LIKELY_ANCESTRY: dict[str, tuple[str, ...]] = {
    "task": ("task",),
    "incident": ("incident", "task"),
    "problem": ("problem", "task"),
    "change_request": ("change_request", "task"),
    "sc_req_item": ("sc_req_item", "task"),
    "pm_project": ("pm_project", "planned_task", "task"),
    "pm_project_task": ("pm_project_task", "planned_task", "task"),
    "cmdb_ci_service": ("cmdb_ci_service", "cmdb_ci", "cmdb"),
}


class DictionaryUnreadable(Exception):
    """sys_dictionary or sys_db_object answered 403 for this account."""


class NoSuchTable(ConfigurationError):
    """sys_db_object has no table of that name on this instance."""

    def __init__(self, table: str) -> None:
        super().__init__(
            f"table {table!r} does not exist on this instance (sys_db_object has no such name); "
            "check the table name in the connector options"
        )
        self.table = table


@dataclass
class TableFields:
    """A table's ancestry and its fields (own and inherited), each with its reference target."""

    table: str
    chain: tuple[str, ...]
    fields: dict[str, str | None] = field(default_factory=dict)
    checked: set[str] = field(default_factory=set)


class FieldCatalog:
    """Reads and caches table ancestry and field definitions; thread-safe."""

    def __init__(
        self, transport: Transport, observe: Callable[[HttpResponse], None] | None = None
    ) -> None:
        self._transport = transport
        self._observe = observe  # sees every response: small reads that time the round trip
        self._lock = threading.RLock()
        self._chains: dict[str, tuple[str, ...]] = {}
        self._tables: dict[str, TableFields] = {}

    def _get(self, table: str, query: str, fields: str, limit: int) -> list[dict[str, str]]:
        try:
            response = self._transport.get(
                f"/api/now/table/{table}",
                params={
                    "sysparm_query": query,
                    "sysparm_fields": fields,
                    "sysparm_limit": limit,
                    "sysparm_display_value": "false",
                    "sysparm_exclude_reference_link": "true",
                    "sysparm_no_count": "true",
                    "sysparm_suppress_pagination_header": "true",
                },
                endpoint=table,
            )
        except PermissionDeniedError as exc:
            raise DictionaryUnreadable(str(exc)) from None
        if self._observe is not None:
            self._observe(response)
        result = (response.data or {}).get("result") if isinstance(response.data, dict) else None
        if not isinstance(result, list):
            raise ConfigurationError(f"{table} answered without a result list")
        return [row for row in result if isinstance(row, dict)]

    def chain(self, table: str) -> tuple[str, ...]:
        """``table`` and its ancestors, nearest first (incident, task)."""
        walk = ["name"] + [".".join(["super_class"] * i + ["name"]) for i in range(1, _DEPTH)]
        with self._lock:
            if table in self._chains:
                return self._chains[table]
            chain: list[str] = []
            current = table
            while True:
                rows = self._get("sys_db_object", f"name={current}", ",".join(walk), 1)
                if not rows:
                    if chain:
                        break
                    raise NoSuchTable(table)
                names: list[str] = []
                for hop in walk:
                    name = str(rows[0].get(hop) or "")
                    if not name:
                        break
                    names.append(name)
                fresh = [n for n in names[1 if chain else 0 :] if n not in chain]
                chain.extend(fresh)
                if len(names) < _DEPTH or not fresh:
                    break
                current = names[-1]
            self._chains[table] = tuple(chain)
            return self._chains[table]

    def table(self, table: str, elements: Iterable[str]) -> TableFields:
        """The definitions of ``elements`` on ``table`` or its ancestors (missing ones absent)."""
        wanted = sorted(set(elements))
        with self._lock:
            known = self._tables.get(table)
            if known is None:
                chain, rows = self._chain_and_guess(table, wanted)
                known = self._tables[table] = TableFields(table, chain)
                if rows is not None:
                    self._learn(known, rows, wanted)
            todo = [e for e in wanted if e not in known.checked]
            if todo:
                self._learn(known, self._definitions(known.chain, todo), todo)
            return known

    def _definitions(self, chain: Sequence[str], elements: Sequence[str]) -> list[dict[str, str]]:
        return self._get(
            "sys_dictionary",
            f"nameIN{','.join(chain)}^elementIN{','.join(elements)}",
            "name,element,internal_type,reference",
            10_000,
        )

    @staticmethod
    def _learn(known: TableFields, rows: list[dict[str, str]], elements: Sequence[str]) -> None:
        for row in rows:
            element = str(row.get("element") or "")
            if element:
                known.fields[element] = str(row.get("reference") or "") or None
        known.checked.update(elements)

    def _chain_and_guess(
        self, table: str, wanted: Sequence[str]
    ) -> tuple[tuple[str, ...], list[dict[str, str]] | None]:
        """The table's ancestry, and its definitions of ``wanted`` if read at the same time."""
        guess = LIKELY_ANCESTRY.get(table)
        if guess is None or not wanted or table in self._chains:
            return self.chain(table), None
        with ThreadPoolExecutor(1, thread_name_prefix="itsm-servicenow-dictionary") as pool:
            early = pool.submit(self._definitions, guess, wanted)
            chain = self.chain(table)
            rows = early.result()
        return chain, rows if chain == guess else None

    def missing(self, table: str, names: Iterable[str]) -> list[str]:
        """The names (dot-walks followed) that ``table`` does not have, in the given order."""
        names = list(dict.fromkeys(names))
        firsts: dict[str, set[str]] = {}
        for name in names:
            head, _, rest = name.partition(".")
            firsts.setdefault(head, set())
            if rest:
                firsts[head].add(rest)
        fields = self.table(table, firsts).fields
        absent: set[str] = {head for head in firsts if head not in fields}
        for head, rests in firsts.items():
            if head in absent or not rests:
                continue
            target = fields.get(head)
            if not target:
                absent.update(f"{head}.{r}" for r in rests)
                continue
            for gone in self.missing(target, rests):
                absent.add(f"{head}.{gone}")
        result = []
        for name in names:
            head = name.split(".", 1)[0]
            if name in absent or head in absent:
                result.append(name)
        return result
