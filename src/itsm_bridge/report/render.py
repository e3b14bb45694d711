"""Report renderers: a terminal table, JSON, CSV (long format) and a self-contained HTML page."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

from itsm_bridge.errors import InvalidOptionsError
from itsm_bridge.report.aggregate import LABELS, Group, Report
from itsm_bridge.schema import Label

__all__ = ["FORMATS", "render", "render_csv", "render_json", "render_table"]

_SHORT = {Label.BUSINESS.value: "business", Label.INWARD.value: "inward", "undetermined": "undet."}
# Control characters in a team or service name (a newline, an ANSI escape) would forge rows or
# repaint the terminal: the table shows them escaped.
_CONTROLS = {c: f"\\x{c:02x}" for c in [*range(32), *range(127, 160)]}
# A spreadsheet runs a cell that starts like a formula: the pivot-ready CSV quotes such text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _shown(text: str) -> str:
    return text.translate(_CONTROLS)


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def _pct(value: float | None) -> str:
    return "  n/a" if value is None else f"{100 * value:5.1f}%"


def _ci(ci: tuple[float, float] | None) -> str:
    return "" if ci is None else f"[{100 * ci[0]:.1f}-{100 * ci[1]:.1f}]"


def _headline(report: Report) -> list[str]:
    t = report.total
    b = t.shares[Label.BUSINESS.value]
    i = t.shares[Label.INWARD.value]
    u = t.shares[Label.UNDETERMINED.value]
    cov = t.coverage
    hours = t.hours or 1.0
    lines = [
        f"Effort ratio over {t.count} items, {t.hours:,.1f} hours",
        "",
        f"  business-facing  {_pct(b.effort_share)} of effort {_ci(b.effort_ci)}   "
        f"{_pct(b.count_share)} of items {_ci(b.count_ci)}",
        f"  inward-facing    {_pct(i.effort_share)} of effort {_ci(i.effort_ci)}   "
        f"{_pct(i.count_share)} of items {_ci(i.count_ci)}",
        f"  undetermined     {_pct(u.effort_share)} of effort {_ci(u.effort_ci)}   "
        f"{_pct(u.count_share)} of items {_ci(u.count_ci)}",
        "",
        f"  business share of decided effort  {_pct(t.business_ratio)} "
        f"{_ci(t.business_ratio_ci)}; expected from p_business {_pct(t.expected_business_share)}",
        f"  effort coverage  measured {_pct(cov['measured'] / hours)}, "
        f"estimated {_pct(cov['estimated'] / hours)}, default {_pct(cov['default'] / hours)}",
    ]
    if report.parent_hours_not_counted:
        lines.append(
            f"  {report.parent_hours_not_counted:,.1f} hours of parents not counted "
            "(their children carry them)"
        )
    return lines


def _table(groups: list[Group], dimension: str) -> list[str]:
    values = [_shown(g.value) for g in groups]
    width = max([len(dimension), *(len(v) for v in values)])
    width = min(width, 40)
    header = (
        f"  {dimension:<{width}} {'items':>6} {'hours':>9}  "
        + "  ".join(f"{_SHORT[label]:>8}" for label in LABELS)
        + f"  {'ratio':>6} {'95% CI':>13}"
    )
    lines = [header, "  " + "-" * (len(header) - 2)]
    for g, value in zip(groups, values):
        cells = "  ".join(f"{_pct(g.shares[label].effort_share):>8}" for label in LABELS)
        lines.append(
            f"  {value[:width]:<{width}} {g.count:>6} {g.hours:>9,.1f}  {cells}"
            f"  {_pct(g.business_ratio):>6} {_ci(g.business_ratio_ci):>13}"
        )
    return lines


def render_table(report: Report) -> str:
    """The report for a terminal: headline, one table per dimension, trend, where inward goes."""
    lines = _headline(report)
    for dimension in report.by:
        lines += ["", f"By {dimension} (shares of effort; ratio = business / decided effort)"]
        lines += _table(report.breakdowns[dimension], dimension)
    trend = report.trend
    lines += ["", "Trend of the business-facing effort share"]
    if trend.slope_points_per_month is None:
        lines.append(f"  {trend.direction}")
    else:
        lines.append(f"  {trend.describe()}, {trend.change_points:+.1f} points first to last")
    for title, rows, key in (
        ("Inward-facing effort by category (top 5)", report.top_inward_categories, "category"),
        ("Inward-facing effort by service (top 5)", report.top_inward_services, "service"),
    ):
        lines += ["", title]
        for row in rows:
            lines.append(
                f"  {_shown(str(row[key]))[:40]:<40} {row['hours']:>9,.1f} h  "
                f"{_pct(row['share_of_inward_effort'])} of inward effort  ({row['items']} items)"
            )
        if not rows:
            lines.append("  (no inward-facing items)")
    return "\n".join(lines) + "\n"


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=False) + "\n"


def render_csv(report: Report) -> str:
    """Long format: one row per (dimension, value, label), ready for a spreadsheet pivot."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "dimension",
            "value",
            "label",
            "items",
            "hours",
            "count_share",
            "count_ci_low",
            "count_ci_high",
            "effort_share",
            "effort_ci_low",
            "effort_ci_high",
            "group_items",
            "group_hours",
        ]
    )
    groups = [report.total] + [g for d in report.by for g in report.breakdowns[d]]
    for g in groups:
        for label in LABELS:
            s = g.shares[label]
            writer.writerow(
                [
                    g.dimension,
                    _cell(g.value),
                    label,
                    s.count,
                    f"{s.hours:.2f}",
                    f"{s.count_share:.4f}",
                    f"{s.count_ci[0]:.4f}",
                    f"{s.count_ci[1]:.4f}",
                    f"{s.effort_share:.4f}",
                    f"{s.effort_ci[0]:.4f}",
                    f"{s.effort_ci[1]:.4f}",
                    g.count,
                    f"{g.hours:.2f}",
                ]
            )
    return out.getvalue()


def _html(report: Report) -> str:
    from itsm_bridge.report.html import render_html

    return render_html(report)


FORMATS: dict[str, Callable[[Report], str]] = {
    "table": render_table,
    "json": render_json,
    "csv": render_csv,
    "html": _html,
}


def render(report: Report, fmt: str = "table") -> str:
    """The report as text in ``fmt``: table, json, csv or html."""
    try:
        renderer = FORMATS[fmt]
    except KeyError:
        raise InvalidOptionsError(
            f"unknown report format {fmt!r}: choose from {', '.join(FORMATS)}"
        ) from None
    return renderer(report)
