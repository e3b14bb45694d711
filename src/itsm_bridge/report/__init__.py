"""The effort-ratio report: aggregation of scored items and its renderers.

::

    from itsm_bridge.report import build_report, render
    report = build_report(ib.score(items), by=["month", "team"])
    print(render(report, "table"))          # also "json", "csv", "html"

See ``docs/report.md`` for what each figure means and how its interval is computed.
"""

from __future__ import annotations

from itsm_bridge.report.aggregate import (
    DIMENSIONS,
    LABELS,
    Group,
    Report,
    Share,
    Trend,
    build_report,
)
from itsm_bridge.report.effort import (
    DEFAULT_EFFORT_HOURS,
    Effort,
    effort_of,
    efforts,
    parents_with_children,
)
from itsm_bridge.report.html import render_html
from itsm_bridge.report.render import FORMATS, render, render_csv, render_json, render_table

__all__ = [
    "DEFAULT_EFFORT_HOURS",
    "DIMENSIONS",
    "FORMATS",
    "LABELS",
    "Effort",
    "Group",
    "Report",
    "Share",
    "Trend",
    "build_report",
    "effort_of",
    "efforts",
    "parents_with_children",
    "render",
    "render_csv",
    "render_html",
    "render_json",
    "render_table",
]
