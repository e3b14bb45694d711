"""The effort ratio: business-facing, inward-facing and undetermined shares, by dimension.

Shares are given by count of items and by effort hours (the effort convention of
:mod:`itsm_bridge.report.effort`), each with a 95 % confidence interval (:mod:`.stats`).
Undetermined work is its own share, never folded into either side; the headline ratio
``business / (business + inward)`` is shown next to it. The report also says how much of the
effort is measured, estimated or a default guess, the monthly trend, and where inward-facing
effort goes (top categories and services).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from itsm_bridge.errors import InvalidOptionsError
from itsm_bridge.report.effort import DEFAULT_EFFORT_HOURS, effort_of, efforts
from itsm_bridge.report.stats import linear_trend, wilson
from itsm_bridge.schema import EffortSource, Label, ScoredItem

__all__ = ["DIMENSIONS", "LABELS", "Group", "Report", "Share", "Trend", "build_report"]

LABELS: tuple[str, ...] = (Label.BUSINESS.value, Label.INWARD.value, Label.UNDETERMINED.value)
DIMENSIONS: tuple[str, ...] = ("month", "quarter", "team", "service", "kind", "category", "source")
_NONE = "(none)"
_SOURCES = tuple(source.value for source in EffortSource)
_FLAT_POINTS_PER_MONTH = 0.5


def _when(item: ScoredItem) -> datetime | None:
    # Work is dated by when it was raised; resolved_at stands in when created_at is missing.
    # updated_at is not used: it is when a record was last touched, not when work happened.
    return item.created_at or item.resolved_at


def _dimension_value(item: ScoredItem, dimension: str) -> str:
    if dimension in ("month", "quarter"):
        when = _when(item)
        if when is None:
            return "unknown"
        if dimension == "month":
            return f"{when.year:04d}-{when.month:02d}"
        return f"{when.year:04d}-Q{(when.month - 1) // 3 + 1}"
    if dimension == "kind":
        return item.kind.value
    value = getattr(item, dimension)
    return str(value) if value else _NONE


@dataclass
class Share:
    """One label's share of a group, by count and by effort, with 95 % intervals."""

    label: str
    count: int
    hours: float
    count_share: float
    count_ci: tuple[float, float]
    effort_share: float
    effort_ci: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "count": self.count,
            "hours": round(self.hours, 2),
            "count_share": round(self.count_share, 4),
            "count_ci": [round(v, 4) for v in self.count_ci],
            "effort_share": round(self.effort_share, 4),
            "effort_ci": [round(v, 4) for v in self.effort_ci],
        }


@dataclass
class Group:
    """The figures for one value of one dimension (or for everything: dimension ``total``)."""

    dimension: str
    value: str
    count: int
    hours: float
    shares: dict[str, Share]
    business_ratio: float | None  # None: no decided effort (business / 0 is not defined)
    business_ratio_ci: tuple[float, float] | None
    expected_business_share: float
    coverage: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dimension": self.dimension,
            "value": self.value,
            "count": self.count,
            "hours": round(self.hours, 2),
            "shares": {label: share.to_dict() for label, share in self.shares.items()},
            "business_ratio": _rounded(self.business_ratio),
            "business_ratio_ci": (
                None
                if self.business_ratio_ci is None
                else [round(v, 4) for v in self.business_ratio_ci]
            ),
            "expected_business_share": round(self.expected_business_share, 4),
            "coverage": {k: round(v, 2) for k, v in self.coverage.items()},
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


@dataclass(slots=True)
class _Row:
    label: str
    hours: float
    source: EffortSource
    p: float
    category: str
    service: str
    values: dict[str, str]


class _Accumulator:
    """Running sums for one group: one pass over its rows, whatever the number of figures."""

    __slots__ = ("count", "coverage", "expected", "hours", "keep", "n", "rows", "squares", "sums")

    def __init__(self, *, keep_rows: bool = False) -> None:
        self.keep = keep_rows
        self.rows: list[_Row] = []  # the total keeps its rows, for the top inward lists
        self.n = dict.fromkeys(LABELS, 0)
        self.sums = dict.fromkeys(LABELS, 0.0)
        self.squares = dict.fromkeys(LABELS, 0.0)
        self.coverage = dict.fromkeys(_SOURCES, 0.0)
        self.count = 0
        self.hours = 0.0
        self.expected = 0.0

    def add(self, row: _Row) -> None:
        if self.keep:
            self.rows.append(row)
        hours = row.hours
        self.n[row.label] += 1
        self.sums[row.label] += hours
        self.squares[row.label] += hours * hours
        self.coverage[row.source.value] += hours
        self.count += 1
        self.hours += hours
        self.expected += hours * row.p

    def group(self, dimension: str, value: str) -> Group:
        count, hours = self.count, self.hours
        squares = sum(self.squares.values())
        n_eff = hours * hours / squares if squares else 0.0
        shares: dict[str, Share] = {}
        for label in LABELS:
            label_hours = self.sums[label]
            effort_share = label_hours / hours if hours else 0.0
            shares[label] = Share(
                label=label,
                count=self.n[label],
                hours=label_hours,
                count_share=self.n[label] / count if count else 0.0,
                count_ci=wilson(self.n[label], count),
                effort_share=effort_share,
                effort_ci=wilson(effort_share * n_eff, n_eff),
            )
        business, inward = Label.BUSINESS.value, Label.INWARD.value
        decided_hours = self.sums[business] + self.sums[inward]
        decided_squares = self.squares[business] + self.squares[inward]
        ratio = self.sums[business] / decided_hours if decided_hours else None
        n_decided = decided_hours * decided_hours / decided_squares if decided_squares else 0.0
        return Group(
            dimension=dimension,
            value=value,
            count=count,
            hours=hours,
            shares=shares,
            business_ratio=ratio,
            business_ratio_ci=None if ratio is None else wilson(ratio * n_decided, n_decided),
            expected_business_share=self.expected / hours if hours else 0.0,
            coverage=dict(self.coverage),
        )


@dataclass
class Trend:
    """How the business-facing effort share moves month by month."""

    months: list[str]
    business_share: list[float]
    slope_points_per_month: float | None
    change_points: float | None
    direction: str

    @property
    def span_months(self) -> int:
        """Calendar months from the first month with work to the last, both counted."""
        if not self.months:
            return 0
        return month_index(self.months[-1]) - month_index(self.months[0]) + 1

    def describe(self) -> str:
        """``rising: +1.20 points per month over 12 months (2026-01 to 2026-12, 10 with work)``."""
        if self.slope_points_per_month is None:
            return self.direction
        worked = "" if len(self.months) == self.span_months else f", {len(self.months)} with work"
        return (
            f"{self.direction}: {self.slope_points_per_month:+.2f} points per month over "
            f"{self.span_months} months ({self.months[0]} to {self.months[-1]}{worked})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "months": self.months,
            "business_share": [round(v, 4) for v in self.business_share],
            "slope_points_per_month": (
                None
                if self.slope_points_per_month is None
                else round(self.slope_points_per_month, 2)
            ),
            "change_points": None if self.change_points is None else round(self.change_points, 2),
            "direction": self.direction,
        }


@dataclass
class Report:
    """The effort ratio with coverage and uncertainty; ``to_dict()`` is the JSON format."""

    by: tuple[str, ...]
    total: Group
    breakdowns: dict[str, list[Group]]
    trend: Trend
    top_inward_categories: list[dict[str, Any]]
    top_inward_services: list[dict[str, Any]]
    parent_hours_not_counted: float
    default_effort_hours: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": list(self.by),
            "total": self.total.to_dict(),
            "breakdowns": {d: [g.to_dict() for g in gs] for d, gs in self.breakdowns.items()},
            "trend": self.trend.to_dict(),
            "top_inward_categories": self.top_inward_categories,
            "top_inward_services": self.top_inward_services,
            "parent_hours_not_counted": round(self.parent_hours_not_counted, 2),
            "default_effort_hours": self.default_effort_hours,
        }


def build_report(scored: Iterable[ScoredItem], by: Sequence[str] = ("month",)) -> Report:
    """Aggregate scored items into the effort-ratio report.

    ``by`` names the breakdowns shown (month, quarter, team, service, kind, category, source);
    month and team are always computed too, for the trend and the HTML charts.
    """
    dimensions = tuple(dict.fromkeys(by))
    unknown = [d for d in dimensions if d not in DIMENSIONS]
    if unknown:
        raise InvalidOptionsError(
            f"unknown report dimension(s) {unknown}: choose from {', '.join(DIMENSIONS)}"
        )
    items = list(scored)
    computed = tuple(dict.fromkeys((*dimensions, "month", "team")))
    total = _Accumulator(keep_rows=True)
    groups: dict[str, dict[str, _Accumulator]] = {d: {} for d in computed}
    parent_hours = 0.0
    for item, effort in zip(items, efforts(items)):
        if not effort.counted:
            parent_hours += effort_of(item).hours
            continue  # its children carry its effort
        row = _Row(
            label=item.scoring.label.value,
            hours=effort.hours,
            source=effort.source,
            p=item.scoring.p_business,
            category=item.category or _NONE,
            service=item.service or _NONE,
            values={d: _dimension_value(item, d) for d in computed},
        )
        total.add(row)
        for d in computed:
            acc = groups[d].get(row.values[d])
            if acc is None:
                acc = groups[d][row.values[d]] = _Accumulator()
            acc.add(row)
    breakdowns = {
        d: [acc.group(d, value) for value, acc in sorted(groups[d].items(), key=_order(d))]
        for d in computed
    }
    return Report(
        by=dimensions,
        total=total.group("total", "all"),
        breakdowns=breakdowns,
        trend=_trend(breakdowns["month"]),
        top_inward_categories=_top_inward(total.rows, "category"),
        top_inward_services=_top_inward(total.rows, "service"),
        parent_hours_not_counted=parent_hours,
        default_effort_hours={k.value: v for k, v in DEFAULT_EFFORT_HOURS.items()},
    )


def _order(dimension: str) -> Any:
    if dimension in ("month", "quarter"):
        return lambda kv: kv[0]  # chronological ("unknown" sorts last)
    return lambda kv: (-kv[1].hours, kv[0])  # biggest effort first


def month_index(value: str) -> int:
    """``"2026-03"`` -> months since year 0: the time axis, where a month without work still
    takes its place."""
    year, month = value.split("-")
    return int(year) * 12 + int(month) - 1


def _trend(months: list[Group]) -> Trend:
    dated = [g for g in months if g.value != "unknown" and g.hours > 0]
    shares = [g.shares[Label.BUSINESS.value].effort_share for g in dated]
    slope = linear_trend(
        [(float(month_index(g.value)), 100 * share, g.hours) for g, share in zip(dated, shares)]
    )
    change = 100 * (shares[-1] - shares[0]) if len(shares) >= 2 else None
    if slope is None:
        direction = "not enough months"
    elif abs(slope) < _FLAT_POINTS_PER_MONTH:
        direction = "flat"
    else:
        direction = "rising" if slope > 0 else "falling"
    return Trend(
        months=[g.value for g in dated],
        business_share=shares,
        slope_points_per_month=slope,
        change_points=change,
        direction=direction,
    )


def _top_inward(rows: list[_Row], attribute: str, n: int = 5) -> list[dict[str, Any]]:
    """Where inward-facing effort goes. Names that differ only in case are one entry
    (platforms spell categories differently: "Software" and "software")."""
    hours: dict[str, float] = {}
    counts: dict[str, int] = {}
    spellings: dict[str, dict[str, int]] = {}
    inward_total = 0.0
    for row in rows:
        if row.label != Label.INWARD.value:
            continue
        name = getattr(row, attribute)
        key = name.casefold()
        hours[key] = hours.get(key, 0.0) + row.hours
        counts[key] = counts.get(key, 0) + 1
        variants = spellings.setdefault(key, {})
        variants[name] = variants.get(name, 0) + 1
        inward_total += row.hours
    ranked = sorted(hours.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return [
        {
            attribute: max(spellings[key].items(), key=lambda kv: (kv[1], kv[0]))[0],
            "hours": round(h, 2),
            "items": counts[key],
            "share_of_inward_effort": round(h / inward_total, 4) if inward_total else 0.0,
        }
        for key, h in ranked
    ]
