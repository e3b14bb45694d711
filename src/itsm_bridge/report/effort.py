"""The effort convention shared by the report, the evaluation and the sandbox's ground truth.

An item's effort is its ``effort_hours`` (measured or estimated, as ``effort_source`` says), else
an estimate found in ``extra["estimate_hours"]``, else a default per kind, marked ``default`` so
the report can say how much of the total is guessed. The effort of an item whose children are in
the same set is not counted: its children carry it (a project's hours are its tasks' hours), so
nothing is counted twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from itsm_bridge.schema import EffortSource, Kind, WorkItem

__all__ = [
    "DEFAULT_EFFORT_HOURS",
    "Effort",
    "effort_of",
    "efforts",
    "finite_number",
    "parents_with_children",
]

DEFAULT_EFFORT_HOURS: Mapping[Kind, float] = {
    Kind.INCIDENT: 2.0,
    Kind.PROBLEM: 8.0,
    Kind.CHANGE: 4.0,
    Kind.REQUEST: 1.0,
    Kind.PROJECT: 80.0,
    Kind.TASK: 6.0,
}
"""Hours assumed when an item has neither logged time nor an estimate (documented guesses:
a typical incident takes a couple of hours, a change half a day, a story most of a day)."""


@dataclass(frozen=True, slots=True)
class Effort:
    hours: float
    source: EffortSource
    counted: bool


def finite_number(value: Any) -> float | None:
    """A finite number from a number or a numeric string (``"3"``, ``" 2.5 "``), else None
    (booleans, NaN and text are not numbers here)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _estimate(extra: Mapping[str, Any]) -> float | None:
    value = finite_number(extra.get("estimate_hours"))
    return value if value is not None and value >= 0 else None


def effort_of(
    item: WorkItem,
    *,
    has_children: bool = False,
    defaults: Mapping[Kind, float] = DEFAULT_EFFORT_HOURS,
) -> Effort:
    """The hours an item contributes under the convention (0 when its children carry them)."""
    if item.effort_hours is not None:
        hours, source = item.effort_hours, item.effort_source or EffortSource.MEASURED
    else:
        estimate = _estimate(item.extra)
        if estimate is not None:
            hours, source = estimate, EffortSource.ESTIMATED
        else:
            hours, source = defaults.get(item.kind, 0.0), EffortSource.DEFAULT
    if has_children:
        return Effort(0.0, source, False)
    return Effort(hours, source, True)


def parents_with_children(items: Iterable[WorkItem]) -> set[tuple[str, str]]:
    """``(source, key)`` of the items whose effort their children in the same set carry.

    A parent is a parent within its source (``OPS-7`` on one Jira site is not ``OPS-7`` on
    another). An item is carried when a chain of its descendants ends in an item with no
    children here, whose hours are counted. The members of a parent cycle (A -> B -> A) with
    no such descendant are not carried: nobody else would count their hours.
    """
    parent_of: dict[tuple[str, str], tuple[str, str]] = {}
    nodes: set[tuple[str, str]] = set()
    for item in items:
        node = (item.source, item.key)
        nodes.add(node)
        if item.parent_key and item.parent_key != item.key:
            parent_of.setdefault(node, (item.source, item.parent_key))
    has_child = {parent for parent in parent_of.values() if parent in nodes}
    carried: set[tuple[str, str]] = set()
    for leaf in nodes - has_child:
        # Walk up from each counted item: everything above it is carried by it.
        parent = parent_of.get(leaf)
        while parent is not None and parent in nodes and parent not in carried:
            carried.add(parent)
            parent = parent_of.get(parent)
    return carried


def efforts(items: Iterable[WorkItem]) -> list[Effort]:
    """Each item's :class:`Effort` under the convention, over this set of items (see
    :func:`parents_with_children`): a carried parent's is 0 hours, not counted."""
    materialised = list(items)
    carried = parents_with_children(materialised)
    return [effort_of(i, has_children=(i.source, i.key) in carried) for i in materialised]
