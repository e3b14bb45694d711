"""The harness's arithmetic and rendering: medians, ratios, target verdicts, the docs block."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import report, summary


def _run(wall: float, **extra: Any) -> dict[str, Any]:
    return {"wall": wall, "cpu": wall * 0.9, "peak_rss_mb": 80.0, "drss_mb": 40.0, **extra}


def test_summarise_takes_medians_and_keeps_errors_apart() -> None:
    runs = [_run(3.0), _run(1.0), _run(2.0), {"error": "fetch: boom"}]
    row = summary.summarise(runs, n=1000)
    assert row["runs"] == 3
    assert row["attempts"] == 4
    assert row["wall"] == 2.0
    assert row["rps"] == 500.0
    assert (row["wall_min"], row["wall_max"]) == (1.0, 3.0)
    assert row["errors"] == ["fetch: boom"]


def test_summarise_with_only_failures_has_no_figures() -> None:
    row = summary.summarise([{"error": "setup: refused"}], n=10)
    assert row["runs"] == 0
    assert "wall" not in row
    assert row["errors"] == ["setup: refused"]


def test_ratios_are_relative_to_our_pull() -> None:
    rows = {"ours-pull": {"wall": 2.0}, "pysnc-1000": {"wall": 20.0}, "raw-orjson": {"wall": 1.6}}
    summary.add_ratios(rows)
    assert rows["pysnc-1000"]["x_ours"] == 10.0
    assert rows["raw-orjson"]["x_ours"] == 0.8
    assert rows["ours-pull"]["x_ours"] == 1.0


def _scenario(latency: float, rows: dict[str, dict[str, Any]], n: int = 50_000) -> dict[str, Any]:
    summary.add_ratios(rows)
    return {"scenario": "servicenow", "n": n, "latency": latency, "rows": rows}


def test_targets_report_met_and_missed() -> None:
    cpu_bound = _scenario(
        0.0,
        {
            "ours-pull": {"wall": 2.0, "rps": 25_000, "peak_rss_mb": 120, "group": "ours"},
            "raw-orjson": {"wall": 2.4, "rps": 20_800, "group": "baseline"},
            "pysnc-1000": {"wall": 30.0, "group": "peer", "object_peer": True},
            "pysnow-1000": {"wall": 2.5, "group": "peer", "object_peer": False},
        },
    )
    latency = _scenario(
        0.2,
        {
            "ours-pull": {"wall": 5.0, "group": "ours"},
            "pysnow-10000": {"wall": 12.0, "group": "peer"},
            "pysnc-1000": {"wall": 40.0, "group": "peer"},
        },
    )
    result = {
        "scenarios": [cpu_bound, latency],
        "scoring": {"items_per_s": 40_000.0, "items": 1000},
        "million": {
            "n": 1_000_000,
            "samples_mb": [[0, 50], [10, 90]],
            "peak_rss_mb": 95.0,
            "flat": True,
            "ok": True,
            "rss_at_10pct_mb": 88.0,
            "rss_end_mb": 90.0,
            "growth_mb": 2.0,
            "rps": 9000.0,
        },
    }
    verdicts = {t["target"]: t["met"] for t in summary.targets(result)}
    assert verdicts == {
        "servicenow n=50,000 latency=0 ms: pull incl. mapping >= 80 % of requests+orjson": True,
        "servicenow n=50,000 latency=0 ms: beats every object-returning peer by >= 2x": True,
        "servicenow n=50,000 latency=0 ms: peak RSS of the pull <= 150 MB": True,
        # fastest peer 12 s / ours 5 s = 2.4x < 4x
        "servicenow n=50,000 latency=200 ms: full pull >= 4x faster than the fastest peer": False,
        "sync of 1,000,000 records: RSS flat and < 200 MB": True,
        "scoring >= 50,000 items/s on one core (default rules)": False,
    }


def test_small_runs_never_claim_the_memory_target() -> None:
    sc = _scenario(0.0, {"ours-pull": {"wall": 1.0, "rps": 300, "peak_rss_mb": 60}}, n=300)
    (rss,) = [t for t in summary.targets({"scenarios": [sc]}) if "RSS" in t["target"]]
    assert rss["met"] is False
    assert "not conclusive" in rss["evidence"]


def test_rss_flatness_measures_growth_after_warm_up() -> None:
    flat = summary.rss_flatness([(0, 30.0), (1, 80.0), (10, 90.0), (50, 95.0), (100, 96.0)])
    assert flat["flat"] is True
    assert flat["rss_at_10pct_mb"] == 90.0
    leak = summary.rss_flatness([(0, 30.0), (10, 90.0), (50, 150.0), (100, 210.0)])
    assert leak["flat"] is False
    assert leak["growth_mb"] == 120.0


def test_write_docs_replaces_only_the_generated_block(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text(
        f"# Performance\n\nprose before\n\n{report.BEGIN}\nold table\n{report.END}\n\nafter\n"
    )
    report.write_docs(doc, "| new | table |")
    text = doc.read_text()
    assert "old table" not in text
    assert "| new | table |" in text
    assert text.index("prose before") < text.index("| new | table |") < text.index("after")


def test_merge_replaces_only_the_parts_run_again() -> None:
    from bench.run import merge

    earlier = {
        "command": "python bench/run.py",
        "scenarios": [
            {"scenario": "servicenow", "latency": 0.0, "rows": {"old": {}}},
            {"scenario": "jira-dc", "latency": 0.0, "rows": {}},
        ],
        "scoring": {"items_per_s": 1.0},
        "million": {"n": 10},
    }
    now = {
        "started": "2026-11-27 10:00 UTC",
        "command": "python bench/run.py --only scoring --only servicenow",
        "machine": {"load_start": 1.5},
        "scenarios": [
            {"scenario": "servicenow", "latency": 0.0, "rows": {"new": {}}},
            {"scenario": "jira-cloud", "latency": 0.2, "rows": {}},
        ],
        "scoring": {"items_per_s": 2.0},
    }
    merged = merge(earlier, now)
    # a re-run part takes the earlier one's place; a part new to the run comes last
    assert [(sc["scenario"], list(sc["rows"])) for sc in merged["scenarios"]] == [
        ("servicenow", ["new"]),
        ("jira-dc", []),
        ("jira-cloud", []),
    ]
    assert merged["scoring"] == {"items_per_s": 2.0}
    assert merged["million"] == {"n": 10}
    assert merged["reruns"][0]["load"] == 1.5
