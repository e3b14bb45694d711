"""Helpers for the report tests: scored items with chosen verdicts, hours and dates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from itsm_bridge.schema import EffortSource, Kind, Label, Reason, ScoredItem, Status, Verdict

_P = {Label.BUSINESS: 0.9, Label.INWARD: 0.1, Label.UNDETERMINED: 0.5}


def scored(
    key: str,
    label: Label,
    hours: float | None = 1.0,
    *,
    kind: str = "task",
    month: int = 1,
    year: int = 2026,
    source: EffortSource | None = EffortSource.MEASURED,
    p: float | None = None,
    **fields: Any,
) -> ScoredItem:
    data: dict[str, Any] = {
        "id": f"test:{key}",
        "source": "test",
        "kind": Kind(kind),
        "key": key,
        "title": key,
        "status": Status.CLOSED,
        "created_at": datetime(year, month, 15, tzinfo=UTC),
        "updated_at": datetime(year, month, 20, tzinfo=UTC),
        "effort_hours": hours,
        "effort_source": source if hours is not None else None,
        "scoring": Verdict(
            label=label,
            p_business=_P[label] if p is None else p,
            reasons=(Reason(rule="test", weight=0.0, evidence="chosen by the test"),),
        ),
    }
    data.update(fields)
    return ScoredItem(**data)
