"""The run report: what one sync of one source did, as an object, as JSON and as a log line."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from itsm_bridge.errors import ItsmBridgeError

__all__ = ["KindReport", "SyncProgress", "SyncResult"]


@dataclass
class KindReport:
    """Counters for one (source, kind) in one run."""

    kind: str
    pages: int = 0
    records: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    deleted: int | None = None
    complete: bool = False
    cursor_from: str | None = None
    cursor_to: str | None = None
    unavailable: str | None = None  # why a sync of every kind skipped this one
    unstored: int | None = None  # with a census: visible on the platform, not in the store

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "pages": self.pages,
            "records": self.records,
            "new": self.new,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "quarantined": self.quarantined,
            "deleted": self.deleted,
            "complete": self.complete,
            "cursor_from": self.cursor_from,
            "cursor_to": self.cursor_to,
            "unavailable": self.unavailable,
            "unstored": self.unstored,
        }


@dataclass(frozen=True)
class SyncProgress:
    """Handed to a sync's ``progress`` callback after every stored page."""

    source: str
    kind: str
    pages: int
    records: int
    quarantined: int
    done: bool = False


@dataclass
class SyncResult:
    """The run report of one sync of one source.

    ``status`` is ``"ok"``, ``"failed"`` or ``"interrupted"``. ``exit_code`` is what the CLI
    exits with for this run: the error's code when it failed, 5 (bad data) when records were
    quarantined, else 0. A completeness check that disagrees is reported (``completeness_ok``,
    a warning in the log) but decided by the connector: row-level ACLs make counts differ on
    healthy instances, so only a connector in strict mode turns it into an error.
    """

    source: str
    connector: str
    run_id: int
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "running"
    kinds: dict[str, KindReport] = field(default_factory=dict)
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    bytes_received: int = 0
    unknown_codes: Counter[str] = field(default_factory=Counter)
    completeness: list[dict[str, Any]] = field(default_factory=list)
    census: bool = False
    error: str | None = None
    error_type: str | None = None
    error_exit_code: int | None = None
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    def _total(self, name: str) -> int:
        return sum(int(getattr(k, name) or 0) for k in self.kinds.values())

    @property
    def pages(self) -> int:
        return self._total("pages")

    @property
    def records(self) -> int:
        return self._total("records")

    @property
    def new(self) -> int:
        return self._total("new")

    @property
    def updated(self) -> int:
        return self._total("updated")

    @property
    def unchanged(self) -> int:
        return self._total("unchanged")

    @property
    def quarantined(self) -> int:
        return self._total("quarantined")

    @property
    def deleted(self) -> int | None:
        if not any(k.deleted is not None for k in self.kinds.values()):
            return None
        return self._total("deleted")

    @property
    def unstored(self) -> int | None:
        """With a census: records the platform shows that the store lacks (``full`` reads them)."""
        if not any(k.unstored is not None for k in self.kinds.values()):
            return None
        return self._total("unstored")

    @property
    def duration_seconds(self) -> float:
        if self.finished_at is None:
            return 0.0
        return round((self.finished_at - self.started_at).total_seconds(), 3)

    @property
    def completeness_ok(self) -> bool | None:
        """``None`` when the connector ran no completeness check, else whether all agreed."""
        outcomes = [c.get("ok") for c in self.completeness if c.get("ok") is not None]
        if not outcomes:
            return None
        return all(outcomes)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def exit_code(self) -> int:
        if self.status != "ok":
            return self.error_exit_code if self.error_exit_code is not None else 1
        if self.quarantined:
            return 5
        return 0

    def fail(self, exc: BaseException) -> None:
        self.status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        self.error = str(exc) or type(exc).__name__
        self.error_type = type(exc).__name__
        if isinstance(exc, ItsmBridgeError):
            self.error_exit_code = exc.exit_code
        elif isinstance(exc, KeyboardInterrupt):
            self.error_exit_code = 130
        else:
            self.error_exit_code = 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "connector": self.connector,
            "run_id": self.run_id,
            "status": self.status,
            "exit_code": self.exit_code,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "duration_seconds": self.duration_seconds,
            "requests": self.requests,
            "retries": self.retries,
            "throttled": self.throttled,
            "bytes_received": self.bytes_received,
            "pages": self.pages,
            "records": self.records,
            "new": self.new,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "quarantined": self.quarantined,
            "deleted": self.deleted,
            "unstored": self.unstored,
            "unknown_codes": dict(sorted(self.unknown_codes.items())),
            "completeness_ok": self.completeness_ok,
            "completeness": self.completeness,
            "census": self.census,
            "kinds": {name: k.as_dict() for name, k in self.kinds.items()},
            "error": self.error,
            "error_type": self.error_type,
        }

    def to_json(self, *, indent: int | None = None) -> str:
        return json.dumps(self.as_dict(), indent=indent, sort_keys=False)

    def summary(self) -> str:
        """One human line for logs and the terminal."""
        parts = [
            f"{self.source}: {self.status}",
            f"{self.records} records ({self.new} new, {self.updated} updated, "
            f"{self.unchanged} unchanged)",
            f"{self.quarantined} quarantined",
            f"{self.pages} pages",
            f"{self.requests} requests",
            f"{self.retries} retries",
            f"{self.throttled} throttled",
        ]
        if self.deleted is not None:
            parts.append(f"{self.deleted} no longer visible")
        if self.unstored:
            parts.append(f"{self.unstored} visible but not stored (--full reads them)")
        if self.completeness_ok is not None:
            parts.append("completeness " + ("ok" if self.completeness_ok else "MISMATCH"))
        skipped = sorted(k for k, r in self.kinds.items() if r.unavailable)
        if skipped:
            parts.append(f"not on this instance: {', '.join(skipped)}")
        parts.append(f"{self.duration_seconds:.1f}s")
        line = ", ".join(parts)
        if self.error:
            line += f": {self.error}"
        return line
