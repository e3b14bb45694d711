"""Progress bars on a terminal, silence elsewhere; no dependency.

A scheduled job's log should hold the run report, not ten thousand carriage returns, so the bar
draws only when stderr is a TTY. One line per source, redrawn in place at most ten times a second;
with a known total the line carries a bar and a percentage, without one a running count.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TextIO

from itsm_bridge.sync.result import SyncProgress

__all__ = ["ProgressBar", "make_room"]

_WIDTH = 24
_active: ProgressBar | None = None  # the bar on screen, which a log line must not run into


def make_room() -> None:
    """Erase the bar on screen, if any, before a log line is written: the line then stands on
    its own and the bar is drawn again below it at the next update."""
    bar = _active
    if bar is not None:
        bar.clear()


@dataclass
class _Line:
    kind: str = ""
    kinds: dict[str, tuple[int, int]] = field(
        default_factory=dict
    )  # kind -> (records, quarantined)
    started: float = field(default_factory=time.monotonic)
    finished: bool = False

    @property
    def records(self) -> int:
        return sum(r for r, _ in self.kinds.values())

    @property
    def quarantined(self) -> int:
        return sum(q for _, q in self.kinds.values())


class ProgressBar:
    """A sync ``progress`` callback drawing one line per source on ``stream`` (stderr)."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        enabled: bool | None = None,
        totals: dict[str, int] | None = None,
        interval: float = 0.1,
    ) -> None:
        self.stream = stream or sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(isatty and isatty()) if enabled is None else enabled
        self.totals = dict(totals or {})
        self.interval = interval
        self._lines: dict[str, _Line] = {}
        self._drawn = 0
        self._last = 0.0
        self._lock = threading.Lock()
        self._started = time.monotonic()

    def __call__(self, event: SyncProgress) -> None:
        with self._lock:
            line = self._lines.setdefault(event.source, _Line(started=self._started))
            line.kind = event.kind
            line.kinds[event.kind] = (event.records, event.quarantined)
            self._render(force=event.done)

    def finish(self, source: str) -> None:
        with self._lock:
            if source in self._lines:
                self._lines[source].finished = True
            self._render(force=True)

    def close(self) -> None:
        global _active
        with self._lock:
            self._render(force=True)
            if self.enabled and self._drawn:
                self.stream.write("\n")
                self.stream.flush()
            self._drawn = 0
            if _active is self:
                _active = None

    def clear(self) -> None:
        """Erase the lines drawn so far; the next update draws them again."""
        with self._lock:
            if not self.enabled or not self._drawn:
                return
            back = f"\x1b[{self._drawn - 1}F" if self._drawn > 1 else "\r"
            self.stream.write(back + "\x1b[0J")  # to the first line, then clear to the end
            self.stream.flush()
            self._drawn = 0
            self._last = 0.0

    def __enter__(self) -> ProgressBar:
        global _active
        if self.enabled:
            _active = self
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def line_for(self, source: str) -> str:
        line = self._lines[source]
        count = line.records
        elapsed = max(time.monotonic() - line.started, 1e-6)
        total = self.totals.get(source)
        parts = [f"{source:<14.14}"]
        if total:
            share = min(1.0, count / total)
            filled = int(share * _WIDTH)
            parts.append(f"[{'#' * filled}{'.' * (_WIDTH - filled)}] {share:4.0%}")
        parts.append(f"{count:>8,} records")
        parts.append("done" if line.finished else f"{line.kind:<8}")
        # a rate over the first instants is noise (a whole page in a millisecond)
        parts.append(f"{count / elapsed:>7,.0f}/s" if elapsed >= 1.0 else " " * 9)
        if line.quarantined:
            parts.append(f"{line.quarantined} quarantined")
        return "  ".join(parts)

    def _render(self, *, force: bool = False) -> None:
        if not self.enabled or not self._lines:
            return
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        out = []
        if self._drawn > 1:
            out.append(f"\x1b[{self._drawn - 1}F")  # back to the first line we drew
        elif self._drawn == 1:
            out.append("\r")
        lines = [self.line_for(source) for source in self._lines]
        out.append("\n".join(f"\x1b[2K{text}" for text in lines))
        self.stream.write("".join(out))
        self.stream.flush()
        self._drawn = len(lines)
