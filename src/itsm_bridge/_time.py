"""Honest time: every datetime inside the library is timezone-aware UTC.

Vendor-specific traps (ServiceNow's zone-less ``YYYY-MM-DD HH:MM:SS`` values that are UTC by
contract, Jira's ``+0530`` offsets) are resolved by the connectors with the helpers here, so the
rule "naive means wrong" is enforced in one place.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dateutil import parser as _dateutil_parser

__all__ = [
    "ensure_utc",
    "from_epoch_ms",
    "parse_datetime",
    "parse_naive_as_utc",
    "to_epoch_ms",
    "to_epoch_us",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_datetime(text: str) -> datetime:
    """Parse an ISO 8601 timestamp that carries an offset; return it in UTC.

    Accepts ``Z``, ``+05:30`` and ``+0530`` offsets and fractional seconds. Raises ``ValueError``
    for an unparseable or naive value: guessing a zone is how pulls lose or repeat records.
    """
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = _dateutil_parser.isoparse(value)
        except (ValueError, OverflowError) as exc:
            raise ValueError(f"not an ISO 8601 datetime: {text!r}") from exc
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"naive datetime {text!r}: a timezone offset is required")
    return parsed.astimezone(UTC)


def parse_naive_as_utc(text: str) -> datetime:
    """Parse a zone-less ``YYYY-MM-DD HH:MM:SS`` value that the vendor documents as UTC."""
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"not a datetime: {text!r}") from exc
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    return parsed.replace(tzinfo=UTC)


def ensure_utc(value: datetime) -> datetime:
    """Convert an aware datetime to UTC; refuse a naive one."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetime: a timezone offset is required")
    return value.astimezone(UTC)


def to_epoch_ms(value: datetime) -> int:
    """Milliseconds since the Unix epoch (what JQL accepts as an unambiguous bound)."""
    return to_epoch_us(value) // 1000


def to_epoch_us(value: datetime) -> int:
    """Microseconds since the Unix epoch: exact for every aware datetime (a ``datetime`` holds
    no finer time), so two instants compare as their stamps do; fits a signed 64-bit int."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetime: a timezone offset is required")
    delta = value - _EPOCH  # aware minus aware: exact in any zone, no conversion needed
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_epoch_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)
