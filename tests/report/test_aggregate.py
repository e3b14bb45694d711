"""Aggregation: shares by count and by effort, intervals, coverage, parents, trend, top lists."""

from __future__ import annotations

import pytest

from itsm_bridge.errors import InvalidOptionsError
from itsm_bridge.report import DEFAULT_EFFORT_HOURS, build_report, render
from itsm_bridge.report.stats import effective_n, linear_trend, wilson
from itsm_bridge.schema import EffortSource, Kind, Label

from .conftest import scored

B, IN, U = Label.BUSINESS, Label.INWARD, Label.UNDETERMINED


def test_shares_by_count_and_by_effort() -> None:
    items = [
        scored("A", B, 30.0),
        scored("B", IN, 10.0),
        scored("C", IN, 10.0),
        scored("D", U, 50.0),
    ]
    total = build_report(items).total
    assert total.count == 4
    assert total.hours == 100.0
    assert total.shares[B.value].count_share == 0.25
    assert total.shares[B.value].effort_share == 0.30
    assert total.shares[IN.value].count_share == 0.5
    assert total.shares[IN.value].effort_share == 0.20
    assert total.shares[U.value].effort_share == 0.50  # undetermined is its own share
    assert total.business_ratio == pytest.approx(30 / 50)  # business / decided effort
    assert total.expected_business_share == pytest.approx((30 * 0.9 + 20 * 0.1 + 50 * 0.5) / 100)


def test_every_share_has_an_interval_around_it() -> None:
    items = [scored(f"K{n}", B if n % 3 == 0 else IN, float(1 + n % 5)) for n in range(60)]
    total = build_report(items).total
    for share in total.shares.values():
        assert share.count_ci[0] <= share.count_share <= share.count_ci[1]
        assert share.effort_ci[0] <= share.effort_share <= share.effort_ci[1]
        assert 0.0 <= share.effort_ci[0] <= share.effort_ci[1] <= 1.0
    lo, hi = total.business_ratio_ci
    assert lo <= total.business_ratio <= hi


def test_effort_interval_widens_when_a_few_items_carry_the_hours() -> None:
    even = [scored(f"E{n}", B if n < 50 else IN, 2.0) for n in range(100)]
    skewed = [scored(f"S{n}", B if n < 50 else IN, 2.0) for n in range(98)]
    skewed += [scored("BIG1", B, 400.0), scored("BIG2", IN, 400.0)]
    even_ci = build_report(even).total.shares[B.value].effort_ci
    skewed_ci = build_report(skewed).total.shares[B.value].effort_ci
    assert (skewed_ci[1] - skewed_ci[0]) > 2 * (even_ci[1] - even_ci[0])


def test_wilson_known_values() -> None:
    lo, hi = wilson(0, 10)
    assert lo == 0.0
    assert hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson(5, 10)
    assert (lo, hi) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    assert wilson(0, 0) == (0.0, 1.0)


def test_effective_n_and_trend_helpers() -> None:
    assert effective_n([1.0] * 10) == pytest.approx(10)
    assert effective_n([1.0] * 9 + [91.0]) == pytest.approx(100**2 / (9 + 91**2))
    assert linear_trend([(0, 10, 1), (1, 20, 1), (2, 30, 1)]) == pytest.approx(10)
    assert linear_trend([(0, 10, 1)]) is None


def test_a_parent_cycle_keeps_its_hours() -> None:
    # A -> B -> A: each "has a child", but no child outside the cycle counts their hours.
    items = [scored("A", B, 5.0, parent_key="B"), scored("B", IN, 7.0, parent_key="A")]
    report = build_report(items)
    assert (report.total.count, report.total.hours) == (2, 12.0)
    assert report.parent_hours_not_counted == 0.0
    # A cycle with a way out to a counted item is carried by it, as any chain is.
    items.append(scored("C", B, 3.0, parent_key="B"))
    report = build_report(items)
    assert (report.total.count, report.total.hours) == (1, 3.0)
    assert report.parent_hours_not_counted == 12.0


def test_a_parent_is_a_parent_within_its_own_source() -> None:
    project = scored("P1", B, 80.0, kind="project").model_copy(
        update={"id": "snow:P1", "source": "snow"}
    )
    elsewhere = scored("J-1", IN, 5.0, parent_key="P1").model_copy(
        update={"id": "jira:J-1", "source": "jira"}
    )
    report = build_report([project, elsewhere])
    assert (report.total.count, report.total.hours) == (2, 85.0)
    assert report.parent_hours_not_counted == 0.0


def test_effort_convention_default_estimate_and_parents() -> None:
    project = scored("PRJ1", B, 500.0, kind="project")
    items = [
        project,
        scored("T1", B, 8.0, parent_key="PRJ1"),
        scored("T2", B, None, parent_key="PRJ1", extra={"estimate_hours": 5.0}),
        scored("INC1", IN, None, kind="incident"),  # no hours: the default for its kind
    ]
    report = build_report(items)
    total = report.total
    assert report.parent_hours_not_counted == 500.0  # its children carry it
    assert total.count == 3
    incident_default = DEFAULT_EFFORT_HOURS[Kind.INCIDENT]
    assert total.hours == pytest.approx(8 + 5 + incident_default)
    assert total.coverage == {
        EffortSource.MEASURED.value: 8.0,
        EffortSource.ESTIMATED.value: 5.0,
        EffortSource.DEFAULT.value: incident_default,
    }


def test_a_parent_without_its_children_counts_its_own_hours() -> None:
    total = build_report([scored("PRJ1", B, 500.0, kind="project")]).total
    assert total.hours == 500.0


def test_breakdowns_by_every_dimension() -> None:
    items = [
        scored("A", B, 12.0, month=1, team="Shop", service="Online Store", category="Feature"),
        scored(
            "B", IN, 5.0, month=2, team="Ops", service="VPN", category="network", kind="incident"
        ),
        scored("C", IN, 5.0, month=4, team="Ops", service=None, category=None, kind="incident"),
    ]
    report = build_report(items, by=["month", "quarter", "team", "service", "kind", "category"])
    months = [g.value for g in report.breakdowns["month"]]
    assert months == ["2026-01", "2026-02", "2026-04"]
    assert [g.value for g in report.breakdowns["quarter"]] == ["2026-Q1", "2026-Q2"]
    assert [g.value for g in report.breakdowns["team"]] == ["Shop", "Ops"]  # by effort
    assert "(none)" in [g.value for g in report.breakdowns["service"]]
    kinds = {g.value: g for g in report.breakdowns["kind"]}
    assert kinds["incident"].shares[IN.value].effort_share == 1.0


def test_items_without_a_date_are_reported_as_unknown_month() -> None:
    item = scored("A", B, 1.0, created_at=None)
    assert [g.value for g in build_report([item]).breakdowns["month"]] == ["unknown"]


def test_unknown_dimension_is_a_configuration_error() -> None:
    with pytest.raises(InvalidOptionsError, match="unknown report dimension"):
        build_report([], by=["colour"])


def test_trend_rises_when_the_business_share_grows() -> None:
    items = []
    for month in range(1, 7):
        items += [scored(f"B{month}-{n}", B, 1.0, month=month) for n in range(month)]
        items += [scored(f"I{month}-{n}", IN, 1.0, month=month) for n in range(6)]
    trend = build_report(items).trend
    assert trend.direction == "rising"
    assert trend.slope_points_per_month is not None
    assert trend.slope_points_per_month > 0
    assert trend.months[0] == "2026-01"


def test_trend_needs_two_months() -> None:
    assert build_report([scored("A", B)]).trend.direction == "not enough months"


def test_top_inward_categories_and_services_merge_spellings() -> None:
    items = [
        scored("A", IN, 10.0, category="Software", service="ERP"),
        scored("B", IN, 5.0, category="software", service="ERP"),
        scored("C", IN, 12.0, category="Network", service="VPN"),
        scored("D", B, 100.0, category="Feature", service="Online Store"),
    ]
    report = build_report(items)
    top = report.top_inward_categories
    assert top[0]["category"] == "Software" or top[0]["category"] == "software"
    assert top[0]["hours"] == 15.0
    assert top[0]["items"] == 2
    assert top[1]["category"] == "Network"
    assert all(row["category"] != "Feature" for row in top)
    assert report.top_inward_services[0] == {
        "service": "ERP",
        "hours": 15.0,
        "items": 2,
        "share_of_inward_effort": round(15 / 27, 4),
    }


def test_empty_input_gives_an_empty_report() -> None:
    report = build_report([])
    assert report.total.count == 0
    assert report.total.hours == 0.0
    assert report.to_dict()["total"]["count"] == 0


def test_the_trend_runs_on_calendar_months_not_on_months_with_work() -> None:
    # January all inward, December all business: 100 points over 11 months, not over 1.
    items = [scored("I", IN, 1.0, month=1), scored("B", B, 1.0, month=12)]
    report = build_report(items, by=["month"])
    trend = report.trend
    assert trend.slope_points_per_month == pytest.approx(100 / 11)
    assert trend.span_months == 12
    assert trend.describe().endswith("over 12 months (2026-01 to 2026-12, 2 with work)")
    # Across a year boundary the axis goes on: December to February is two months.
    turn = build_report([scored("I", IN, 1.0, month=12, year=2025), scored("B", B, 1.0, month=2)])
    assert turn.trend.slope_points_per_month == pytest.approx(50)
    # The HTML chart keeps the empty months in their place.
    html = render(report, "html")
    chart = html[html.index('<svg id="chart-shares-over-time"') :]
    chart = chart[: chart.index("</svg>")]
    labels = [part.split("<", 1)[0] for part in chart.split('fill="#495057">')[1:]]
    assert labels == [f"2026-{m:02d}" for m in range(1, 13)]  # January to December, in place


def test_a_ratio_of_nothing_decided_is_not_a_number() -> None:
    items = [scored("B", B, 5.0, kind="incident"), scored("P", U, 10.0, kind="project")]
    report = build_report(items, by=["kind"])
    project = next(g for g in report.breakdowns["kind"] if g.value == "project")
    assert project.business_ratio is None
    assert project.to_dict()["business_ratio"] is None
    assert project.to_dict()["business_ratio_ci"] is None
    assert "n/a" in render(report, "table")
    assert "n/a" in render(report, "html")


def test_a_numeric_string_estimate_counts_as_an_estimate() -> None:
    item = scored("T", IN, None, extra={"estimate_hours": " 3 "})
    assert build_report([item]).total.coverage[EffortSource.ESTIMATED.value] == 3.0
