"""Scoring throughput on one core: ``python bench/scoring_bench.py N RUNS``.

Realistic input: a generated company's WorkItems of every kind, served by the connectors' own
sandboxes in this process and pulled through ``pull()`` (untimed). Then the
process is pinned to one CPU and ``score(items)`` with the default rules is timed, consumed to the
end, ``RUNS`` times; prints one JSON object with the median items/s, by the wall clock and per
second of this process's CPU time (the latter does not count time the shared core spent on
other processes).
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def load_items(total: int) -> list[Any]:
    """A generated company's work (every kind, parents and children), pulled through both
    connectors from their sandboxes, so the items are exactly what a user would score."""
    import itsm_bridge as ib
    from itsm_bridge.sandbox import available_sandboxes, generate_company, make_sandbox

    company = generate_company(seed=11, scale=max(0.05, total / 4_700))
    items: list[Any] = []
    for platform in ("servicenow", "jira"):
        truth = company.for_platform(platform)
        if platform not in available_sandboxes() or not truth:
            continue
        with make_sandbox(platform, truth) as sandbox:
            opts = sandbox.connect_options()
            with ib.connect(platform, sandbox.url, auth=sandbox.auth(), **opts) as conn:
                kinds = sorted({t.kind for t in truth} & set(conn.kinds), key=str)
                items.extend(conn.pull(kinds=kinds))
    return items


def main(argv: list[str]) -> int:
    total = int(argv[0]) if argv else 60_000
    runs = int(argv[1]) if len(argv) > 1 else 3
    out: dict[str, Any] = {}
    try:
        from itsm_bridge.scoring import score

        items = load_items(total)
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"[:500]}))
        return 0
    pinned: Any = "no (sched_setaffinity unavailable)"
    if hasattr(os, "sched_setaffinity"):
        cpu = max(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        pinned = f"cpu {cpu}"
    gc.collect()
    rates = []
    cpu_rates = []
    labels: Counter[str] = Counter()
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        count = 0
        for scored in score(items):
            count += 1
            if not rates:
                labels[str(scored.scoring.label.value)] += 1
        rates.append(count / (time.perf_counter() - t0))
        cpu_rates.append(count / (time.process_time() - c0))
    out.update(
        items=len(items),
        runs=runs,
        items_per_s=statistics.median(rates),
        items_per_cpu_s=statistics.median(cpu_rates),
        rates=rates,
        cpu_rates=cpu_rates,
        pinned=pinned,
        kinds=dict(Counter(i.kind.value for i in items)),
        labels=dict(labels),
    )
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
