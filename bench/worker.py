"""One client, one run, in a fresh process: ``python bench/worker.py SPEC_JSON``.

Setup (imports, client construction, serverInfo or login calls) is untimed. The clock, CPU time and
RSS baseline are taken around the fetch alone; peak RSS is the kernel's high-water mark for the
whole process. After the clock stops the ids are checked: exactly ``n`` received, all distinct.
Prints one JSON object on stdout (``error`` set when the client could not run).
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import measure
from bench.clients import find
from bench.target import Target


def run(spec: dict[str, Any]) -> dict[str, Any]:
    target = Target(**spec["target"])
    client = find(target.scenario, spec["client"])
    out: dict[str, Any] = {"client": client.name, "scenario": target.scenario, "n": target.n}
    try:
        fetch = client.build(target)
    except Exception as exc:
        return {**out, "error": f"setup: {_describe(exc)}", "traceback": _tb()}
    sampler = measure.RssSampler(spec.get("sample_interval", 0.5)) if spec.get("sample") else None
    rss0 = measure.rss_bytes()
    cpu0 = measure.cpu_seconds()
    t0 = time.perf_counter()
    try:
        if sampler is not None:
            with sampler:
                result = fetch()
        else:
            result = fetch()
    except Exception as exc:
        return {**out, "error": f"fetch: {_describe(exc)}", "traceback": _tb()}
    wall = time.perf_counter() - t0
    cpu = measure.cpu_seconds() - cpu0
    peak = measure.peak_rss_bytes()
    ids = _ids(result)
    distinct = len(set(ids))
    out.update(
        wall=wall,
        cpu=cpu,
        rss_before_mb=rss0 / 2**20,
        peak_rss_mb=peak / 2**20,
        drss_mb=(peak - rss0) / 2**20,
        received=len(ids),
        distinct=distinct,
        ok=len(ids) == target.n and distinct == target.n,
    )
    if sampler is not None:
        out["rss_samples"] = [(round(t, 2), round(b / 2**20, 1)) for t, b in sampler.samples]
    if not out["ok"]:
        out["error"] = f"received {len(ids)} records ({distinct} distinct ids), expected {target.n}"
    return out


def _ids(result: Collection[str] | Callable[[], Collection[str]]) -> list[str]:
    return list(result() if callable(result) else result)


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__module__}.{type(exc).__name__}: {text[:400]}"


def _tb() -> str:
    return "".join(traceback.format_exc().splitlines(keepends=True)[-12:])


def main(argv: list[str]) -> int:
    measure.pin("client")
    spec = json.loads(argv[0]) if argv and argv[0] != "-" else json.load(sys.stdin)
    result = run(spec)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
