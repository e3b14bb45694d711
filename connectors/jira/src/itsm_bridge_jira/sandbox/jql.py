"""The JQL subset the sandbox understands, compiled to Python predicates.

Supported (what the connector and the docs' examples send, plus common hand-written filters):

- fields: ``project``, ``issuetype``/``type``, ``id``/``key``/``issue``/``issuekey``, ``status``,
  ``statusCategory``, ``priority``, ``labels``, ``updated``, ``created``,
  ``resolved``/``resolutiondate``, ``parent``;
- operators: ``= != > >= < <=``, ``IN (..)``, ``NOT IN (..)``, ``IS EMPTY``/``IS NOT EMPTY``
  (also ``NULL``), ``AND``, ``OR``, ``NOT``, parentheses;
- date values: an unquoted number is epoch milliseconds (exact); ``"yyyy-MM-dd HH:mm"``,
  ``"yyyy/MM/dd HH:mm"``, ``"yyyy-MM-dd"``, ``"yyyy/MM/dd"`` are read **in the account's time zone
  at minute precision**, as Jira does; relative ``"-15m"``, ``"-2h"``, ``"-1d"``, ``"-1w"``;
- ``ORDER BY field [ASC|DESC], ...`` over ``updated``, ``created``, ``id``, ``key``, ``priority``.

Everything else (functions such as ``now()`` or ``membersOf()``, ``~`` text search, ``WAS`` and
``CHANGED`` history operators, other fields) is answered with 400 and Jira's error envelope, so a
client never mistakes an unsupported query for an empty result.

JQL reference: https://support.atlassian.com/jira-software-cloud/docs/jql-fields/
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["Doc", "JqlError", "Query", "parse_jql"]


class JqlError(ValueError):
    """A query the sandbox refuses, with Jira's wording where it has one."""


@dataclass(frozen=True)
class Doc:
    """The searchable view of one issue (what the index holds)."""

    id: int
    key: str
    number: int
    project: str
    type_id: str
    type_name: str
    status: str
    status_category: str
    priority: str
    labels: tuple[str, ...]
    updated: int
    created: int
    resolved: int | None
    parent: str | None


_FIELDS = {
    "project": "project",
    "issuetype": "type",
    "type": "type",
    "id": "key",
    "key": "key",
    "issue": "key",
    "issuekey": "key",
    "status": "status",
    "statuscategory": "status_category",
    "priority": "priority",
    "labels": "labels",
    "updated": "updated",
    "updateddate": "updated",
    "created": "created",
    "createddate": "created",
    "resolved": "resolved",
    "resolutiondate": "resolved",
    "parent": "parent",
}
_DATE_FIELDS = {"updated", "created", "resolved"}
_ORDER_FIELDS = {"updated", "created", "id", "key", "issuekey", "priority"}

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<op>!=|>=|<=|=|>|<|~|!~)
    | (?P<punct>[(),])
    | (?P<word>[A-Za-z0-9_.\-/:\[\]]+)
    )""",
    re.VERBOSE,
)
_RELATIVE = re.compile(r"^([+-]?)(\d+)([mhdw])$")
_LITERALS = (
    ("%Y-%m-%d %H:%M", True),
    ("%Y/%m/%d %H:%M", True),
    ("%Y-%m-%d", False),
    ("%Y/%m/%d", False),
)


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise JqlError(f"Error in the JQL Query: unexpected character at position {pos}.")
        pos = match.end()
        kind = match.lastgroup or "word"
        value = match.group(kind)
        if kind == "str":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        out.append(_Tok(kind, value))
    return out


Predicate = Callable[[Doc], bool]


@dataclass
class Query:
    """A compiled query: the predicate, the order and the bounds an index can use."""

    predicate: Predicate
    order: list[tuple[str, bool]] = field(default_factory=list)
    bounded: bool = True
    updated_lo: int | None = None
    updated_hi: int | None = None


class _Parser:
    def __init__(self, tokens: list[_Tok], tz: ZoneInfo, now: datetime) -> None:
        self.tokens = tokens
        self.i = 0
        self.tz = tz
        self.now = now
        self.lo: int | None = None
        self.hi: int | None = None

    def peek(self, offset: int = 0) -> _Tok | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def word(self, offset: int = 0) -> str:
        tok = self.peek(offset)
        return tok.text.lower() if tok is not None and tok.kind == "word" else ""

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise JqlError("Error in the JQL Query: the query ended unexpectedly.")
        self.i += 1
        return tok

    def expect(self, text: str) -> None:
        tok = self.take()
        if tok.text.lower() != text:
            raise JqlError(f"Error in the JQL Query: expecting '{text}' but got '{tok.text}'.")

    # expression := or ; or := and (OR and)* ; and := not (AND not)* ; not := NOT not | atom
    def parse_or(self, top: bool) -> Predicate:
        parts = [self.parse_and(top)]
        while self.word() == "or":
            self.take()
            parts.append(self.parse_and(False))
        if len(parts) == 1:
            return parts[0]
        if top:
            self.lo = self.hi = None  # bounds under OR are not index bounds
        return lambda d: any(p(d) for p in parts)

    def parse_and(self, top: bool) -> Predicate:
        parts = [self.parse_not(top)]
        while self.word() == "and":
            self.take()
            parts.append(self.parse_not(top))
        if len(parts) == 1:
            return parts[0]
        return lambda d: all(p(d) for p in parts)

    def parse_not(self, top: bool) -> Predicate:
        if self.word() == "not":
            self.take()
            inner = self.parse_not(False)
            return lambda d: not inner(d)
        tok = self.peek()
        if tok is not None and tok.text == "(":
            self.take()
            inner = self.parse_or(False)
            self.expect(")")
            return inner
        return self.parse_clause(top)

    def value(self, name: str) -> Any:
        tok = self.take()
        if tok.kind == "punct":
            raise JqlError(f"Error in the JQL Query: expecting a value for '{name}'.")
        if tok.kind == "word" and self.peek() is not None and self.peek().text == "(":  # type: ignore[union-attr]
            raise JqlError(
                f"Error in the JQL Query: the function '{tok.text}' is not supported by the "
                "sandbox (see the sandbox JQL reference)."
            )
        if name in _DATE_FIELDS:
            return self.date(tok)
        return tok.text

    def date(self, tok: _Tok) -> int:
        text = tok.text.strip()
        if tok.kind == "word" and re.fullmatch(r"-?\d+", text) and len(text) > 8:
            return int(text)  # epoch milliseconds: exact, zone-free
        rel = _RELATIVE.match(text)
        if rel:
            sign = -1 if rel.group(1) == "-" else 1
            unit = {"m": 60, "h": 3600, "d": 86400, "w": 604800}[rel.group(3)]
            moment = self.now + timedelta(seconds=sign * int(rel.group(2)) * unit)
            return int(moment.timestamp() * 1000) // 60_000 * 60_000
        for pattern, _with_time in _LITERALS:
            try:
                naive = datetime.strptime(text, pattern)
            except ValueError:
                continue
            # Quirk reproduced: literals are wall-clock times in the account's zone, to the minute.
            return int(naive.replace(tzinfo=self.tz).timestamp() * 1000)
        raise JqlError(
            f"Date value '{text}' for field is invalid. Valid formats include: "
            "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period "
            "format e.g. '-5d', '4w 2d'."
        )

    def values(self, name: str) -> list[Any]:
        self.expect("(")
        out = [self.value(name)]
        while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
            self.take()
            out.append(self.value(name))
        self.expect(")")
        return out

    def parse_clause(self, top: bool) -> Predicate:
        tok = self.take()
        if tok.kind not in ("word", "str"):
            raise JqlError(f"Error in the JQL Query: unexpected '{tok.text}'.")
        name = _FIELDS.get(tok.text.lower())
        if name is None:
            raise JqlError(
                f"Field '{tok.text}' does not exist or you do not have permission to view it."
            )
        op_tok = self.take()
        op = op_tok.text.lower()
        if op in ("~", "!~"):
            raise JqlError("The operator '~' is not supported by the sandbox.")
        if op == "is":
            negate = False
            if self.word() == "not":
                self.take()
                negate = True
            if self.word() not in ("empty", "null"):
                raise JqlError("Error in the JQL Query: expecting EMPTY or NULL after IS.")
            self.take()
            return lambda d: _is_empty(d, name) != negate
        if op == "not" and self.word() == "in":
            self.take()
            wanted = self.values(name)
            return _membership(name, wanted, negate=True)
        if op == "in":
            wanted = self.values(name)
            return _membership(name, wanted, negate=False)
        if op in ("was", "changed"):
            raise JqlError(f"The operator '{op.upper()}' is not supported by the sandbox.")
        if op_tok.kind != "op":
            raise JqlError(f"Error in the JQL Query: expecting an operator but got '{op}'.")
        value = self.value(name)
        if name in _DATE_FIELDS:
            bound = int(value)
            if top and name == "updated":
                if op in (">=", ">"):
                    low = bound if op == ">=" else bound + 1
                    self.lo = low if self.lo is None else max(self.lo, low)
                elif op in ("<", "<="):
                    high = bound if op == "<" else bound + 1
                    self.hi = high if self.hi is None else min(self.hi, high)
            return _compare(name, op, bound)
        if op not in ("=", "!="):
            if name == "key" and op in (">", ">=", "<", "<="):
                return _key_compare(op, str(value))
            raise JqlError(f"The operator '{op}' is not supported for the field '{tok.text}'.")
        return _membership(name, [value], negate=op == "!=")


def _is_empty(doc: Doc, name: str) -> bool:
    value = getattr(doc, name)
    return value is None or value == () or value == ""


def _matches(doc: Doc, name: str, value: Any) -> bool:
    text = str(value)
    if name == "type":
        return text == doc.type_id or text.lower() == doc.type_name.lower()
    if name == "key":
        return text == str(doc.id) or text.upper() == doc.key
    if name == "project":
        return text.upper() == doc.project
    if name == "labels":
        return text in doc.labels
    return str(getattr(doc, name) or "").lower() == text.lower()


def _membership(name: str, wanted: Sequence[Any], *, negate: bool) -> Predicate:
    if name in _DATE_FIELDS:
        values = {int(v) for v in wanted}
        return lambda d: (getattr(d, name) in values) != negate
    if name == "type":
        # Set lookups: the connector's per-kind clauses run over every issue on every page.
        types = {str(v).lower() for v in wanted}
        return lambda d: (d.type_id in types or d.type_name.lower() in types) != negate
    if name == "project":
        projects = {str(v).upper() for v in wanted}
        return lambda d: (d.project in projects) != negate
    return lambda d: any(_matches(d, name, v) for v in wanted) != negate


def _compare(name: str, op: str, bound: int) -> Predicate:
    def check(doc: Doc) -> bool:
        value = getattr(doc, name)
        if value is None:
            return False
        if op == "=":
            return bool(value == bound)
        if op == "!=":
            return bool(value != bound)
        if op == ">":
            return bool(value > bound)
        if op == ">=":
            return bool(value >= bound)
        if op == "<":
            return bool(value < bound)
        return bool(value <= bound)

    return check


def _key_compare(op: str, value: str) -> Predicate:
    project, _, digits = value.upper().rpartition("-")
    if not digits.isdigit():
        raise JqlError(f"The issue key '{value}' for field 'key' is invalid.")
    number = int(digits)
    check = _compare("number", op, number)
    return lambda d: d.project == project and check(d)


def parse_jql(text: str, *, tz: ZoneInfo, now: datetime) -> Query:
    """Compile ``text``; raises :class:`JqlError` with Jira's wording for what it refuses."""
    tokens = _tokens(text)
    order_at = next(
        (
            i
            for i in range(len(tokens) - 1)
            if tokens[i].text.lower() == "order" and tokens[i + 1].text.lower() == "by"
        ),
        None,
    )
    where, order_tokens = (tokens, []) if order_at is None else (
        tokens[:order_at], tokens[order_at + 2 :]
    )  # fmt: skip
    parser = _Parser(where, tz, now)
    if where:
        predicate = parser.parse_or(True)
        if parser.peek() is not None:
            raise JqlError(f"Error in the JQL Query: unexpected '{parser.peek().text}'.")  # type: ignore[union-attr]
    else:
        predicate = _always
    order: list[tuple[str, bool]] = []
    i = 0
    while i < len(order_tokens):
        tok = order_tokens[i]
        if tok.text == ",":
            i += 1
            continue
        name = tok.text.lower()
        if name not in _ORDER_FIELDS:
            raise JqlError(f"Not able to sort using field '{tok.text}'.")
        ascending = True
        if i + 1 < len(order_tokens) and order_tokens[i + 1].text.lower() in ("asc", "desc"):
            ascending = order_tokens[i + 1].text.lower() == "asc"
            i += 1
        order.append(("key" if name == "issuekey" else name, ascending))
        i += 1
    if len(order) > 7:
        raise JqlError("The ORDER BY clause may name at most 7 fields.")
    return Query(predicate, order, bool(where), parser.lo, parser.hi)


def _always(_doc: Doc) -> bool:
    return True
