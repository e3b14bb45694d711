"""A self-contained HTML report: inline CSS and SVG charts, no scripts, fonts or fetches.

The page can be mailed, archived or opened offline; its Content-Security-Policy forbids loading
anything, so what you see is all there is. Charts: the effort shares by month (100 % stacked
bars) and the effort hours by team (stacked by label). Every bar has a tooltip (SVG ``<title>``).
"""

from __future__ import annotations

from html import escape

from itsm_bridge.report.aggregate import LABELS, Group, Report, month_index
from itsm_bridge.schema import Label

__all__ = ["COLOURS", "render_html"]

COLOURS = {
    Label.BUSINESS.value: "#2f9e44",
    Label.UNDETERMINED.value: "#adb5bd",
    Label.INWARD.value: "#1c7ed6",
}
_STACK = (Label.BUSINESS.value, Label.UNDETERMINED.value, Label.INWARD.value)  # bottom to top

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
  max-width: 960px; padding: 0 1rem; color: #212529; background: #fff; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
.sub { color: #6c757d; margin-top: 0; }
.cards { display: flex; gap: 1rem; flex-wrap: wrap; margin: 1rem 0; }
.card { border: 1px solid #dee2e6; border-radius: 6px; padding: .8rem 1rem; min-width: 200px; }
.card .big { font-size: 1.8rem; font-weight: 600; } .card .ci { color: #6c757d; font-size: .85rem; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; margin: .5rem 0; }
th, td { text-align: right; padding: .25rem .5rem; border-bottom: 1px solid #e9ecef;
  white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { background: #f8f9fa; white-space: normal; }
.scroll { overflow-x: auto; }
.legend span { display: inline-block; margin-right: 1rem; font-size: .85rem; }
.legend i { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem;
  vertical-align: middle; border-radius: 2px; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
.notes { color: #495057; font-size: .85rem; }
"""


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _ci(ci: tuple[float, float] | None) -> str:
    return "n/a" if ci is None else f"{100 * ci[0]:.1f}–{100 * ci[1]:.1f}%"


def _legend() -> str:
    items = "".join(
        f'<span><i style="background:{COLOURS[label]}"></i>{escape(label)}</span>'
        for label in _STACK
    )
    return f'<p class="legend">{items}</p>'


_MAX_SLOTS = 240  # beyond 20 years of months (a stray date), bars stand side by side instead


def _calendar(months: list[Group]) -> list[tuple[str, Group | None]]:
    """Every calendar month from the first with work to the last (None where there was none),
    then ``unknown`` if present: bars on a time axis, not side by side."""
    dated = {g.value: g for g in months if g.value != "unknown"}
    undated = [(g.value, g) for g in months if g.value == "unknown"]
    if not dated:
        return [*undated]
    first, last = (month_index(v) for v in (min(dated), max(dated)))
    if last - first >= _MAX_SLOTS:
        return [*((v, dated[v]) for v in sorted(dated)), *undated]
    values = [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(first, last + 1)]
    return [*((v, dated.get(v)) for v in values), *undated]


def shares_over_time_svg(months: list[Group]) -> str:
    """100 % stacked bars of the effort shares per month."""
    width, height = 900, 320
    left, right, top, bottom = 48, 12, 12, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    parts = [
        f'<svg id="chart-shares-over-time" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="Share of effort by month, stacked by verdict">'
    ]
    for tick in (0, 25, 50, 75, 100):
        y = top + plot_h * (1 - tick / 100)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#e9ecef"/><text x="{left - 6}" y="{y + 4:.1f}" font-size="11" '
            f'text-anchor="end" fill="#6c757d">{tick}%</text>'
        )
    slots = _calendar(months)
    n = max(len(slots), 1)
    step = plot_w / n
    bar = step * 0.72
    label_every = 1 if n <= 14 else 2 if n <= 28 else max(1, n // 12)
    for i, (value, group) in enumerate(slots):
        x = left + i * step + (step - bar) / 2
        if i % label_every == 0:
            cx = x + bar / 2
            parts.append(
                f'<text x="{cx:.1f}" y="{top + plot_h + 16}" font-size="11" text-anchor="middle" '
                f'fill="#495057">{escape(value)}</text>'
            )
        if group is None:
            continue  # a month without work keeps its place on the time axis, empty
        y = top + plot_h
        for label in _STACK:
            share = group.shares[label].effort_share if group.hours else 0.0
            h = plot_h * share
            y -= h
            tip = (
                f"{group.value}: {label} {_pct(share)} of {group.hours:,.1f} h "
                f"({group.shares[label].count} items)"
            )
            parts.append(
                f'<rect class="bar {escape(label)}" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                f'height="{max(h, 0):.1f}" fill="{COLOURS[label]}"><title>{escape(tip)}</title>'
                "</rect>"
            )
    if not months:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="#6c757d">'
            "no dated items</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def effort_by_team_svg(teams: list[Group], limit: int = 15) -> str:
    """Horizontal bars of effort hours per team, stacked by verdict (largest teams first)."""
    shown = teams[:limit]
    row_h, left, right, top = 26, 180, 70, 8
    width = 900
    height = top * 2 + row_h * max(len(shown), 1)
    plot_w = width - left - right
    biggest = max((g.hours for g in shown), default=0.0) or 1.0
    parts = [
        f'<svg id="chart-effort-by-team" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="Effort hours by team, stacked by verdict">'
    ]
    for i, group in enumerate(shown):
        y = top + i * row_h
        parts.append(
            f'<text x="{left - 8}" y="{y + row_h * 0.62:.1f}" font-size="12" text-anchor="end" '
            f'fill="#212529">{escape(group.value[:28])}</text>'
        )
        x = float(left)
        for label in _STACK:
            hours = group.shares[label].hours
            w = plot_w * hours / biggest
            tip = (
                f"{group.value}: {label} {hours:,.1f} h ({_pct(group.shares[label].effort_share)})"
            )
            parts.append(
                f'<rect class="bar {escape(label)}" x="{x:.1f}" y="{y + 4}" width="{w:.1f}" '
                f'height="{row_h - 8}" fill="{COLOURS[label]}"><title>{escape(tip)}</title></rect>'
            )
            x += w
        parts.append(
            f'<text x="{x + 6:.1f}" y="{y + row_h * 0.62:.1f}" font-size="11" fill="#495057">'
            f"{group.hours:,.0f} h</text>"
        )
    if not shown:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no teams</text>')
    parts.append("</svg>")
    return "".join(parts)


def _group_table(groups: list[Group], dimension: str) -> str:
    head = (
        f"<tr><th>{escape(dimension)}</th><th>items</th><th>hours</th>"
        + "".join(f"<th>{escape(label)}</th>" for label in LABELS)
        + "<th>business / decided</th><th>95% CI</th></tr>"
    )
    rows = []
    for g in groups:
        cells = "".join(
            f'<td title="95% CI {_ci(g.shares[label].effort_ci)}">'
            f"{_pct(g.shares[label].effort_share)}</td>"
            for label in LABELS
        )
        rows.append(
            f"<tr><td>{escape(g.value)}</td><td>{g.count}</td><td>{g.hours:,.1f}</td>{cells}"
            f"<td>{_pct(g.business_ratio)}</td><td>{_ci(g.business_ratio_ci)}</td></tr>"
        )
    return f'<div class="scroll"><table>{head}{"".join(rows)}</table></div>'


def _top_table(rows: list[dict[str, object]], key: str) -> str:
    if not rows:
        return "<p>No inward-facing items.</p>"
    body = "".join(
        f"<tr><td>{escape(str(r[key]))}</td><td>{r['items']}</td><td>{float(str(r['hours'])):,.1f}"
        f"</td><td>{_pct(float(str(r['share_of_inward_effort'])))}</td></tr>"
        for r in rows
    )
    return (
        f"<table><tr><th>{escape(key)}</th><th>items</th><th>hours</th>"
        f"<th>share of inward effort</th></tr>{body}</table>"
    )


def render_html(report: Report, title: str = "Where IT's effort goes") -> str:
    t = report.total
    b, i, u = (t.shares[label] for label in LABELS)
    hours = t.hours or 1.0
    cov = t.coverage
    trend = report.trend
    trend_text = escape(trend.describe())
    cards = "".join(
        f'<div class="card"><div>{escape(name)}</div><div class="big" '
        f'style="color:{COLOURS[share.label]}">{_pct(share.effort_share)}</div>'
        f'<div class="ci">of effort, 95% CI {_ci(share.effort_ci)}<br>'
        f"{_pct(share.count_share)} of items</div></div>"
        for name, share in (("Business-facing", b), ("Inward-facing", i), ("Undetermined", u))
    )
    sections = "".join(
        f"<h2>By {escape(d)}</h2>{_group_table(report.breakdowns[d], d)}"
        for d in report.by
        if d not in ("month", "team")
    )
    default_hours = ", ".join(f"{k} {v:g} h" for k, v in report.default_effort_hours.items())
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{escape(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{escape(title)}</h1>
<p class="sub">{t.count} items, {t.hours:,.1f} hours. Business share of decided effort:
<strong>{_pct(t.business_ratio)}</strong> (95% CI {_ci(t.business_ratio_ci)}); expected from
p_business: {_pct(t.expected_business_share)}.</p>
<div class="cards">{cards}</div>
<p class="sub">Effort coverage: measured {_pct(cov["measured"] / hours)}, estimated
{_pct(cov["estimated"] / hours)}, default {_pct(cov["default"] / hours)}.</p>
<h2>Share of effort by month</h2>
{_legend()}
{shares_over_time_svg(report.breakdowns["month"])}
<p>Trend of the business-facing share: {trend_text}.</p>
<h2>Effort by team</h2>
{_legend()}
{effort_by_team_svg(report.breakdowns["team"])}
<h2>By month</h2>{_group_table(report.breakdowns["month"], "month")}
<h2>By team</h2>{_group_table(report.breakdowns["team"], "team")}
{sections}
<h2>Where inward-facing effort goes</h2>
<h3>Categories</h3>{_top_table(report.top_inward_categories, "category")}
<h3>Services</h3>{_top_table(report.top_inward_services, "service")}
<h2>How to read this</h2>
<p class="notes">Each item's effort is its logged hours, else its estimate, else a default per
kind ({escape(default_hours)}). An item whose children are in the report is not counted
({report.parent_hours_not_counted:,.1f} h): its children carry its effort. Undetermined work is
shown as its own share. Intervals are 95%: Wilson for shares of items; for shares of effort,
Wilson at the effective number of items (sum of hours squared over the sum of squared hours),
which is the delta-method width for a ratio of sums. They cover sampling, not
misclassification: see the coverage and the expected share from p_business.</p>
</body>
</html>
"""
