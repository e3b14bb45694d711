"""Reading one field of a Table API record, whatever shape the instance sent it in.

A field arrives as a bare string (``sysparm_display_value=false``), as ``{"value", "link"}`` (a
reference without display values), or as ``{"display_value", "value"[, "link"]}`` (``all``).
Everything is a string; an empty reference is ``""`` (A4, A12.7). Datetimes are read from the raw
value, which is UTC by contract; the display value is in the account's time zone and is never
used for time (A12.4).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "display",
    "duration_hours",
    "format_utc",
    "parse_utc",
    "text",
    "value",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_fromisoformat = datetime.fromisoformat


def value(raw: Mapping[str, Any], name: str) -> str:
    """The raw value of ``name`` ("" when absent or empty)."""
    field: Any = raw.get(name)
    # Exact-class checks first: this runs ~30 times per record, and isinstance() against the
    # Mapping ABC costs more than the rest of the function.
    if field.__class__ is str:
        return field
    if field.__class__ is dict or isinstance(field, Mapping):
        field = field.get("value")
        if field.__class__ is str:
            return field
    if field is None:
        return ""
    return field if isinstance(field, str) else str(field)


def display(raw: Mapping[str, Any], name: str) -> str | None:
    """The display value of ``name`` when the instance sent one, else ``None``."""
    field = raw.get(name)
    if field.__class__ is dict or isinstance(field, Mapping):
        shown = field.get("display_value")
        if shown is None:
            return None
        return shown if isinstance(shown, str) else str(shown)
    return None


def text(raw: Mapping[str, Any], name: str) -> str | None:
    """A human-readable value: the display value if sent, else a non-reference raw value."""
    shown = display(raw, name)
    if shown:
        return shown
    field = raw.get(name)
    if isinstance(field, Mapping) and "link" in field and "display_value" not in field:
        return None  # a bare reference: the raw value is a sys_id, not a name
    return value(raw, name) or None


def parse_utc(text_value: str) -> datetime | None:
    """A raw ``YYYY-MM-DD HH:MM:SS`` (UTC by contract) or ``YYYY-MM-DD`` value; "" is None."""
    if len(text_value) == 19 and text_value[10] == " ":
        # The raw shape of every datetime field: appending the zone lets fromisoformat build the
        # aware value in one C call (datetime.replace(tzinfo=...) costs ~5x as much).
        try:
            return _fromisoformat(text_value + "+00:00")
        except ValueError:
            pass  # not that shape after all: the general path decides
    stripped = text_value.strip()
    if not stripped:
        return None
    if _DATE_ONLY.match(stripped):
        return datetime.fromisoformat(stripped).replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(stripped)
    except ValueError:
        raise ValueError(f"not a ServiceNow datetime: {text_value!r}") from None
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    return parsed.replace(tzinfo=UTC)


def format_utc(moment: datetime) -> str:
    """The encoded-query literal for a UTC moment (seconds precision, no zone: A3)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration_hours(raw_value: str) -> float | None:
    """Hours in a ``glide_duration`` / timer value.

    Quirk: durations come back as an epoch-offset datetime ("1970-01-03 04:00:00" = 52 h); some
    timer fields hold plain seconds ("28800").
    """
    stripped = raw_value.strip()
    if not stripped:
        return None
    if stripped.isdigit():
        return int(stripped) / 3600.0
    moment = parse_utc(stripped)
    if moment is None:
        return None
    delta: timedelta = moment - _EPOCH
    if delta.total_seconds() < 0:
        raise ValueError(f"negative duration: {raw_value!r}")
    return delta.total_seconds() / 3600.0
