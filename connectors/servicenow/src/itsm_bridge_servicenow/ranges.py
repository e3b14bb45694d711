"""Time ranges of a pull window and the resumable state that records their progress.

A pull reads a fixed window [lo, hi) of ``sys_updated_on``, split into contiguous ranges that
workers page through independently, then a closing catch-up range [hi, open) for records that
changed while the window was read. The state records, for every range, the last (timestamp,
sys_id) *delivered to the caller*, so a cursor taken after any page resumes each range exactly
where its delivered pages end: nothing is lost, and only pages never delivered are read again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from itsm_bridge import ConfigurationError
from itsm_bridge_servicenow.query import Key
from itsm_bridge_servicenow.values import format_utc, parse_utc

__all__ = [
    "STATE_VERSION",
    "PullState",
    "Range",
    "floor_second",
    "split_at",
    "split_window",
    "window_start",
]

STATE_VERSION = 1
Phase = Literal["main", "catchup"]


def floor_second(moment: datetime) -> datetime:
    """Range bounds sit on whole seconds: the instance compares at second resolution."""
    return moment.replace(microsecond=0)


def _iso(moment: datetime | None) -> str | None:
    return format_utc(moment) if moment is not None else None


def _dt(text: Any) -> datetime | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise ConfigurationError(f"malformed ServiceNow cursor: {text!r} is not a datetime")
    return parse_utc(text)


@dataclass
class Range:
    """[start, end) of ``sys_updated_on`` (None = unbounded) and how far it has been delivered."""

    start: datetime | None
    end: datetime | None
    after: Key | None = None
    done: bool = False
    closed_at: datetime | None = None  # server time when its final empty page was read

    def to_state(self) -> list[Any]:
        return [
            _iso(self.start),
            _iso(self.end),
            list(self.after) if self.after else None,
            self.done,
            _iso(self.closed_at),
        ]

    @classmethod
    def from_state(cls, data: Any) -> Range:
        try:
            start, end, after, done, closed = data
            key = (str(after[0]), str(after[1])) if after else None
            return cls(_dt(start), _dt(end), key, bool(done), _dt(closed))
        except (TypeError, ValueError, IndexError) as exc:
            raise ConfigurationError(f"malformed ServiceNow cursor range {data!r}: {exc}") from None

    def progress(self) -> datetime | None:
        """Everything of this range updated before this moment has been delivered."""
        if self.after is not None:
            return parse_utc(self.after[0])
        return self.start


def split_window(
    start: datetime | None, first: datetime | None, end: datetime, parts: int
) -> list[Range]:
    """Contiguous ranges covering [start, end), split evenly in time from ``first`` on.

    ``first`` is the oldest update in the window (from the Aggregate API) when ``start`` is open;
    the first range keeps the open bound so nothing older is missed.
    """
    origin = start or first
    if parts <= 1 or origin is None or origin >= end:
        return [Range(start, end)]
    span = (end - origin) / parts
    return split_at(start, end, [origin + span * i for i in range(1, parts)], origin)


def split_at(
    start: datetime | None,
    end: datetime,
    bounds: list[datetime],
    origin: datetime | None = None,
) -> list[Range]:
    """Contiguous ranges covering [start, end), cut at ``bounds`` (floored to whole seconds).

    Bounds outside (``origin`` or ``start``, ``end``) and repeated ones are dropped.
    """
    low = origin or start
    edges = [
        b
        for b in dict.fromkeys(floor_second(b) for b in sorted(bounds))
        if (low is None or low < b) and b < end
    ]
    ranges: list[Range] = []
    lower = start
    for edge in edges:
        ranges.append(Range(lower, edge))
        lower = edge
    ranges.append(Range(lower, end))
    return ranges


@dataclass
class PullState:
    """Where a pull of one kind stands: its window, the current table and its ranges."""

    lo: datetime | None
    hi: datetime
    tables: list[str]
    table_index: int = 0
    phase: Phase = "main"
    ranges: list[Range] = field(default_factory=list)
    closed: list[datetime] = field(default_factory=list)  # catch-up end per finished table
    fetched: dict[str, int] = field(default_factory=dict)
    previous: dict[str, str] = field(default_factory=dict)  # versions delivered by the last run

    def watermark(self) -> datetime | None:
        """Everything updated before this moment is delivered, across all tables of the kind."""
        if self.table_index < len(self.tables) - 1:
            return self.lo
        if self.phase == "catchup":
            return self.hi
        for r in self.ranges:
            if not r.done:
                return r.progress()
        return self.hi

    def to_state(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "lo": _iso(self.lo),
            "hi": _iso(self.hi),
            "tables": list(self.tables),
            "table_index": self.table_index,
            "phase": self.phase,
            "ranges": [r.to_state() for r in self.ranges],
            "closed": [_iso(c) for c in self.closed],
            "fetched": dict(self.fetched),
            "previous": dict(self.previous),
        }

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> PullState:
        if data.get("v") != STATE_VERSION:
            raise ConfigurationError(f"ServiceNow cursor state version {data.get('v')!r} unknown")
        try:
            hi = _dt(data["hi"])
            if hi is None:
                raise ValueError("no window end")
            phase = data.get("phase", "main")
            if phase not in ("main", "catchup"):
                raise ValueError(f"phase {phase!r}")
            return cls(
                lo=_dt(data.get("lo")),
                hi=hi,
                tables=[str(t) for t in data["tables"]],
                table_index=int(data.get("table_index", 0)),
                phase=phase,
                ranges=[Range.from_state(r) for r in data.get("ranges", [])],
                closed=[c for c in (_dt(x) for x in data.get("closed", [])) if c is not None],
                fetched={str(k): int(v) for k, v in dict(data.get("fetched", {})).items()},
                previous={str(k): str(v) for k, v in dict(data.get("previous", {})).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"malformed ServiceNow cursor state: {exc}") from None


def window_start(watermark: datetime | None, overlap: float) -> datetime | None:
    """The next window's lower bound: the last upper bound minus the overlap, on a second."""
    if watermark is None:
        return None
    return floor_second(watermark - timedelta(seconds=overlap))
