"""JQL for incremental windows, with bounds as epoch milliseconds.

JQL date literals (``"2026-01-05 10:00"``) have minute precision and are read in the time zone of
the account running the search, so a UTC watermark sent as a literal skips records for accounts
west of UTC and repeats them east of it. An unquoted number is milliseconds since the epoch and
means the same instant for every account, so bounds are always sent that way. Lower bounds are
also widened to the whole minute (a server that truncated them would otherwise drop the edge of
a window; the connector filters to the exact window client-side). Upper bounds stay exact: a
window whose membership can only shrink while it is paged is what makes offset paging checkable.

JQL reference: https://support.atlassian.com/jira-software-cloud/docs/use-advanced-search-with-jira-query-language-jql/
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from itsm_bridge import InvalidOptionsError
from itsm_bridge._time import to_epoch_ms

__all__ = ["ORDER", "ceil_minute_ms", "floor_minute_ms", "quote", "window_jql"]

ORDER = "ORDER BY updated ASC, id ASC"
_MINUTE_MS = 60_000
_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)
_STRING = re.compile(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'""", re.DOTALL)
_SAFE_WORD = re.compile(r"^[A-Za-z0-9_]+$")


def floor_minute_ms(when: datetime) -> int:
    ms = to_epoch_ms(when)
    return ms - ms % _MINUTE_MS


def ceil_minute_ms(when: datetime) -> int:
    ms = to_epoch_ms(when)
    return ms if ms % _MINUTE_MS == 0 else ms - ms % _MINUTE_MS + _MINUTE_MS


def quote(value: str) -> str:
    """A JQL string literal (project keys and type ids pass unquoted when they are words)."""
    if _SAFE_WORD.match(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check_user_jql(jql: str | None) -> str | None:
    """The user's extra restriction; it may not carry its own ORDER BY (the pull orders)."""
    if jql is None or not jql.strip():
        return None
    if _ORDER_BY.search(_STRING.sub('""', jql)):  # words inside a quoted value are not JQL
        raise InvalidOptionsError(
            "option 'jql' must not contain ORDER BY: the connector orders by updated, id "
            "to make incremental pulls resumable"
        )
    return jql.strip()


def window_jql(
    *,
    lo: datetime | None,
    hi: datetime | None,
    projects: Sequence[str] = (),
    type_ids: Sequence[str] | None = None,
    exclude_type_ids: Sequence[str] = (),
    user_jql: str | None = None,
    issue_ids: Sequence[str] = (),
    order: bool = True,
    exact_lo: bool = False,
) -> str:
    """``project in (..) AND issuetype in (..) AND updated >= <ms> AND updated < <ms> ORDER ..``."""
    clauses: list[str] = []
    if user_jql:
        clauses.append(f"({user_jql})")
    if projects:
        clauses.append(f"project in ({', '.join(quote(p) for p in projects)})")
    if type_ids is not None:
        clauses.append(f"issuetype in ({', '.join(quote(t) for t in type_ids)})")
    if exclude_type_ids:
        clauses.append(f"issuetype not in ({', '.join(quote(t) for t in exclude_type_ids)})")
    if issue_ids:
        clauses.append(f"id in ({', '.join(str(int(i)) for i in issue_ids)})")
    if lo is not None:
        clauses.append(f"updated >= {to_epoch_ms(lo) if exact_lo else floor_minute_ms(lo)}")
    if hi is not None:
        clauses.append(f"updated < {to_epoch_ms(hi)}")
    text = " AND ".join(clauses)
    return f"{text} {ORDER}".strip() if order else text
