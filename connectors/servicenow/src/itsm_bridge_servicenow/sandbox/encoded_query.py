"""The fake instance's encoded-query engine: the subset clients need, and a clear 400 otherwise.

Supported: ``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``IN``, ``STARTSWITH``, ``LIKE``,
``ISEMPTY``, ``ISNOTEMPTY``; ``^`` (AND), ``^OR`` (ORs a condition with the one before it),
``^NQ`` (a new query ORed with the others), ``ORDERBY`` / ``ORDERBYDESC`` (anywhere, global) and
``^EQ``. Unsupported here (answered 400 with the error envelope): ``NOT LIKE``, ``NOT IN``,
``ENDSWITH``, ``BETWEEN``, ``ANYTHING``, ``SAMEAS``, ``NSAMEAS``, ``DATEPART``, ``ON...``,
``IN_HIERARCHY``, related-list queries and ``javascript:`` operands.

Like a real instance, conditions on field names the table does not have are dropped silently
(A2): a misspelt field widens the query instead of failing it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Condition", "Query", "QueryError", "parse"]

_FIELD = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*")
_SUPPORTED = ("ISNOTEMPTY", "ISEMPTY", "STARTSWITH", "LIKE", "IN", "!=", "<=", ">=", "=", "<", ">")
_UNSUPPORTED = (
    "NOT LIKE",
    "NOT IN",
    "ENDSWITH",
    "BETWEEN",
    "ANYTHING",
    "EMPTYSTRING",
    "NSAMEAS",
    "SAMEAS",
    "DATEPART",
    "IN_HIERARCHY",
    "ON",
    "RLQUERY",
)


class QueryError(ValueError):
    """The query cannot be served by the sandbox (or is malformed)."""


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: str


@dataclass
class Query:
    """``branches`` are ORed; each is a list of groups ANDed; each group's conditions ORed."""

    branches: list[list[list[Condition]]] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)

    def fields(self) -> set[str]:
        return {c.field for b in self.branches for g in b for c in g}

    def restrict(self, known: Callable[[str], bool]) -> Query:
        """Drop conditions on unknown fields, as the real instance does."""
        branches = []
        for branch in self.branches:
            groups = [[c for c in g if known(c.field)] for g in branch]
            branches.append([g for g in groups if g])
        return Query(branches, [(f, d) for f, d in self.order if known(f)])

    def bounds(self, name: str) -> tuple[str | None, str | None]:
        """A [low, high] superset of the values of ``name`` any matching row can have."""
        lows: list[str | None] = []
        highs: list[str | None] = []
        for branch in self.branches or [[]]:
            low: str | None = None
            high: str | None = None
            for group in branch:
                if len(group) != 1 or group[0].field != name:
                    continue
                c = group[0]
                if c.op in (">", ">=", "=") and (low is None or c.value > low):
                    low = c.value
                if c.op in ("<", "<=", "=") and (high is None or c.value < high):
                    high = c.value
            lows.append(low)
            highs.append(high)
        low_all = None if any(x is None for x in lows) else min(x for x in lows if x is not None)
        high_all = None if any(x is None for x in highs) else max(x for x in highs if x is not None)
        return low_all, high_all


def _condition(term: str) -> Condition:
    if term.startswith("javascript:") or "javascript:" in term:
        raise QueryError(f"script operands are not supported by the sandbox: {term!r}")
    match = _FIELD.match(term)
    if match is None:
        raise QueryError(f"cannot parse condition {term!r}")
    name, rest = match.group(), term[match.end() :]
    for op in _UNSUPPORTED:
        if rest.startswith(op):
            raise QueryError(f"operator {op} is not supported by the sandbox ({term!r})")
    for op in _SUPPORTED:
        if rest.startswith(op):
            return Condition(name, op, rest[len(op) :])
    raise QueryError(f"no operator in condition {term!r}")


def parse(text: str) -> Query:
    """Parse an encoded query (already URL-decoded)."""
    query = Query()
    if not text:
        return query
    if "RLQUERY" in text:
        raise QueryError("related-list queries are not supported by the sandbox")
    for raw_branch in text.split("^NQ"):
        branch: list[list[Condition]] = []
        for term in raw_branch.split("^"):
            if not term or term == "EQ":
                continue
            if term.startswith("ORDERBYDESC"):
                query.order.append((term[len("ORDERBYDESC") :], True))
            elif term.startswith("ORDERBY"):
                query.order.append((term[len("ORDERBY") :], False))
            elif term.startswith("OR"):
                if not branch:
                    raise QueryError(f"^OR without a condition before it in {text!r}")
                branch[-1].append(_condition(term[2:]))
            else:
                branch.append([_condition(term)])
        query.branches.append(branch)
    return query


def compare(op: str, actual: str, wanted: str, numeric: bool) -> bool:
    """One condition on one raw value (strings, or integers for integer fields)."""
    if op == "ISEMPTY":
        return actual == ""
    if op == "ISNOTEMPTY":
        return actual != ""
    if op == "=":
        return _num(actual, numeric) == _num(wanted, numeric)
    if op == "!=":
        return _num(actual, numeric) != _num(wanted, numeric)
    if op == "IN":
        return actual in wanted.split(",")
    if op == "STARTSWITH":
        return actual.lower().startswith(wanted.lower())
    if op == "LIKE":
        return wanted.lower() in actual.lower()
    if actual == "":
        return False
    left, right = _num(actual, numeric), _num(wanted, numeric)
    if type(left) is not type(right):
        return False
    if op == "<":
        return left < right  # type: ignore[operator]
    if op == "<=":
        return left <= right  # type: ignore[operator]
    if op == ">":
        return left > right  # type: ignore[operator]
    return left >= right  # type: ignore[operator]


def _num(text: str, numeric: bool) -> str | float:
    if numeric:
        try:
            return float(text)
        except ValueError:
            return text
    return text
