"""From raw runs to medians, ratios and target verdicts (pure functions, tested in tests/bench)."""

from __future__ import annotations

import statistics
from typing import Any

REFERENCE = "ours-pull"


def summarise(runs: list[dict[str, Any]], n: int) -> dict[str, Any]:
    """Median figures over one client's runs; errors are kept, never averaged in."""
    good = [r for r in runs if not r.get("error")]
    errors = sorted({r["error"] for r in runs if r.get("error")})
    row: dict[str, Any] = {"runs": len(good), "attempts": len(runs), "errors": errors}
    if not good:
        return row

    def med(key: str) -> float | None:
        values = [r[key] for r in good if r.get(key) is not None]
        return statistics.median(values) if values else None

    wall = med("wall")
    row.update(
        wall=wall,
        wall_min=min(r["wall"] for r in good),
        wall_max=max(r["wall"] for r in good),
        rps=n / wall if wall else None,
        cpu=med("cpu"),
        cpu_us_per_rec=(med("cpu") or 0.0) / n * 1e6 if n else None,
        peak_rss_mb=med("peak_rss_mb"),
        drss_mb=med("drss_mb"),
        requests=med("requests"),
        server_cpu=med("server_cpu"),
        load=med("load1"),
    )
    return row


def add_ratios(rows: dict[str, dict[str, Any]]) -> None:
    """``x_ours``: a client's median wall over ours' (``>1`` means slower than itsm-bridge)."""
    ours = rows.get(REFERENCE, {}).get("wall")
    for row in rows.values():
        wall = row.get("wall")
        row["x_ours"] = wall / ours if wall and ours else None


def _fmt_x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with its status and the figures it rests on."""
    out: list[dict[str, Any]] = []
    scenarios = result.get("scenarios", [])
    for sc in scenarios:
        rows = sc["rows"]
        ours = rows.get(REFERENCE, {})
        name = f"{sc['scenario']} n={sc['n']:,} latency={sc['latency'] * 1000:.0f} ms"
        peers = {k: r for k, r in rows.items() if r.get("group") == "peer" and r.get("wall")}
        if sc["latency"] > 0:
            if ours.get("wall") and peers:
                fastest = min(peers, key=lambda k: peers[k]["wall"])
                speedup = peers[fastest]["wall"] / ours["wall"]
                out.append(
                    _t(
                        f"{name}: full pull >= 4x faster than the fastest peer",
                        speedup >= 4.0,
                        f"ours {ours['wall']:.2f} s vs {fastest} {peers[fastest]['wall']:.2f} s: "
                        f"{speedup:.2f}x",
                    )
                )
            continue
        ceiling = rows.get("raw-orjson", {})
        if ours.get("rps") and ceiling.get("rps"):
            share = ours["rps"] / ceiling["rps"]
            out.append(
                _t(
                    f"{name}: pull incl. mapping >= 80 % of requests+orjson",
                    share >= 0.8,
                    f"ours {ours['rps']:,.0f} rec/s vs raw-orjson {ceiling['rps']:,.0f} rec/s: "
                    f"{share:.0%} (client CPU {_us(ours)} vs {_us(ceiling)} µs/rec)",
                )
            )
        objects = {k: r for k, r in peers.items() if r.get("object_peer")}
        if ours.get("wall") and objects:
            slowest_margin = min(r["wall"] / ours["wall"] for r in objects.values())
            worst = min(objects, key=lambda k: objects[k]["wall"])
            out.append(
                _t(
                    f"{name}: beats every object-returning peer by >= 2x",
                    slowest_margin >= 2.0,
                    f"closest: {worst} at {_fmt_x(slowest_margin)} ours' wall time "
                    f"(client CPU {_us(objects[worst])} vs ours {_us(ours)} µs/rec)",
                )
            )
        if sc["scenario"] == "servicenow" and ours.get("peak_rss_mb"):
            out.append(
                _t(
                    f"{name}: peak RSS of the pull <= 150 MB",
                    ours["peak_rss_mb"] <= 150 and sc["n"] >= 50_000,
                    f"ours-pull (streamed) {ours['peak_rss_mb']:.0f} MB peak"
                    + ("" if sc["n"] >= 50_000 else f" (n={sc['n']:,} < 50,000: not conclusive)"),
                )
            )
    million = result.get("million")
    if million and million.get("samples_mb"):
        peak = million["peak_rss_mb"]
        out.append(
            _t(
                f"sync of {million['n']:,} records: RSS flat and < 200 MB",
                peak < 200 and million["flat"] and million["ok"],
                f"peak {peak:.0f} MB; RSS at 10 % of the run "
                f"{million['rss_at_10pct_mb']:.0f} MB, highest after it "
                f"{million['rss_at_10pct_mb'] + million['growth_mb']:.0f} MB "
                f"(growth {million['growth_mb']:+.0f} MB); {million['rps']:,.0f} rec/s",
            )
        )
    scoring = result.get("scoring")
    if scoring and scoring.get("items_per_s"):
        per_cpu = scoring.get("items_per_cpu_s") or scoring["items_per_s"]
        out.append(
            _t(
                "scoring >= 50,000 items/s on one core (default rules)",
                per_cpu >= 50_000,
                f"{per_cpu:,.0f} items per CPU-second of the pinned core "
                f"({scoring['items_per_s']:,.0f} items/s by the wall clock on the shared core) "
                f"over {scoring['items']:,} items",
            )
        )
    return out


def _us(row: dict[str, Any]) -> str:
    value = row.get("cpu_us_per_rec")
    return "?" if value is None else f"{value:.0f}"


def _t(name: str, met: bool, evidence: str) -> dict[str, Any]:
    return {"target": name, "met": bool(met), "evidence": evidence}


def rss_flatness(samples: list[tuple[float, float]]) -> dict[str, float | bool]:
    """Growth of RSS between 10 % of the run and its end; 'flat' allows 25 MB of drift."""
    if not samples:
        return {"flat": False}
    end_t = samples[-1][0]
    after = [mb for t, mb in samples if t >= 0.1 * end_t] or [samples[-1][1]]
    at10 = after[0]
    end = samples[-1][1]
    growth = max(after) - at10
    return {
        "rss_at_10pct_mb": at10,
        "rss_end_mb": end,
        "rss_max_mb": max(mb for _, mb in samples),
        "growth_mb": growth,
        "flat": growth <= 25.0,
    }
