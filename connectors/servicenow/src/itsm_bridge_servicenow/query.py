"""Encoded queries: the keyset and window conditions, and the field names a query uses.

Syntax from ``platform-apis.md`` A3: ``^`` is AND, ``^OR`` ORs a condition with the one before it,
``^NQ`` starts a new query ORed with the previous ones at the top level. Date literals are compared
as UTC (the stored value). Quirk: a condition on a field the table does not have is silently
dropped, which can turn a query into "the whole table" (A12.2), so every name this module emits or
reads is validated against ``sys_dictionary`` before the first data request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from itsm_bridge import ConfigurationError
from itsm_bridge_servicenow.values import format_utc

__all__ = [
    "ORDER",
    "Key",
    "after_key",
    "check_user_filter",
    "count_query",
    "fields_in_query",
    "id_keyset_query",
    "keyset_query",
    "window_conditions",
]

Key = tuple[str, str]
"""A keyset position: (raw ``sys_updated_on``, ``sys_id``) of the last record read."""

ORDER = "ORDERBYsys_updated_on^ORDERBYsys_id"

# Operators in the order they must be tried (longest first where one is a prefix of another).
_OPERATORS = (
    "ISNOTEMPTY",
    "ISEMPTY",
    "ANYTHING",
    "EMPTYSTRING",
    "NOT LIKE",
    "NOT IN",
    "STARTSWITH",
    "ENDSWITH",
    "BETWEEN",
    "DATEPART",
    "NSAMEAS",
    "SAMEAS",
    "IN_HIERARCHY",
    "LIKE",
    "ON",
    "IN",
    "!=",
    "<=",
    ">=",
    "=",
    "<",
    ">",
)
_FIELD = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*")


def window_conditions(start: datetime | None, end: datetime | None) -> list[str]:
    """``sys_updated_on`` in [start, end): either bound may be open."""
    conditions = []
    if start is not None:
        conditions.append(f"sys_updated_on>={format_utc(start)}")
    if end is not None:
        conditions.append(f"sys_updated_on<{format_utc(end)}")
    return conditions


def _join(parts: Sequence[str]) -> str:
    return "^".join(p for p in parts if p)


def keyset_query(
    start: datetime | None, end: datetime | None, after: Key | None, user_filter: str = ""
) -> str:
    """Records of the window after ``after`` in (sys_updated_on, sys_id) order.

    ``^NQ`` ORs whole queries, so the window and the user's filter are repeated in both branches:
    ``W^sys_updated_on>T^F ^NQ W^sys_updated_on=T^sys_id>ID^F``.
    """
    window = window_conditions(start, end)
    if after is None:
        return _join([*window, user_filter, ORDER])
    stamp, sys_id = after
    later = _join([*window, f"sys_updated_on>{stamp}", user_filter])
    same_second = _join([*window, f"sys_updated_on={stamp}", f"sys_id>{sys_id}", user_filter])
    return f"{later}^NQ{same_second}^{ORDER}"


def count_query(start: datetime | None, end: datetime | None, user_filter: str = "") -> str:
    """The window as an Aggregate API query; ``end`` is inclusive here (a closed window)."""
    conditions = []
    if start is not None:
        conditions.append(f"sys_updated_on>={format_utc(start)}")
    if end is not None:
        conditions.append(f"sys_updated_on<={format_utc(end)}")
    return _join([*conditions, user_filter])


def after_key(
    start: datetime | None, end: datetime | None, after: Key, user_filter: str = ""
) -> str:
    """Records of the window strictly after ``after`` (for counting what is left of a range)."""
    return keyset_query(start, end, after, user_filter).removesuffix(f"^{ORDER}")


def id_keyset_query(after: str | None, user_filter: str = "") -> str:
    """Every record in ``sys_id`` order after ``after`` (the id census)."""
    return _join([f"sys_id>{after}" if after else "", user_filter, "ORDERBYsys_id"])


def fields_in_query(query: str) -> set[str]:
    """The field names an encoded query uses; raises ConfigurationError on what it can't read.

    Refuses ``^NQ`` in a user's filter: ANDed to the connector's window it would escape it.
    """
    names: set[str] = set()
    if not query:
        return names
    for branch in query.split("^NQ"):
        for term in branch.split("^"):
            term = term.strip()
            if not term or term == "EQ":
                continue
            if term.startswith("ORDERBYDESC"):
                term = term[len("ORDERBYDESC") :]
                names.add(_field_or_fail(term, query, whole=True))
                continue
            if term.startswith("ORDERBY"):
                names.add(_field_or_fail(term[len("ORDERBY") :], query, whole=True))
                continue
            if term.startswith("OR"):
                term = term[2:]
            names.add(_field_or_fail(term, query))
    return names


def _field_or_fail(term: str, query: str, *, whole: bool = False) -> str:
    match = _FIELD.match(term)
    if match is None:
        raise ConfigurationError(f"cannot read the encoded query {query!r} at {term!r}")
    rest = term[match.end() :]
    if whole and rest:
        raise ConfigurationError(f"cannot read the encoded query {query!r} at {term!r}")
    if not whole and not any(rest.startswith(op) for op in _OPERATORS):
        raise ConfigurationError(
            f"encoded query {query!r}: no operator after field {match.group()!r} in {term!r}"
        )
    return match.group()


def check_user_filter(query: str, table: str) -> set[str]:
    """Validate a user's filter's shape and return its field names."""
    if "^NQ" in query:
        raise ConfigurationError(
            f"filter for {table!r} uses ^NQ: a new query would escape the connector's window; "
            "express it with ^OR instead"
        )
    if query.startswith(("^", "OR")) or "ORDERBY" in query:
        raise ConfigurationError(
            f"filter for {table!r} must be plain conditions (no leading ^/OR, no ORDERBY)"
        )
    return fields_in_query(query)
