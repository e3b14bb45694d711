"""Where a client's time goes: ``python bench/profile_client.py SCENARIO CLIENT [N] [--latency S]``.

Starts the scenario's sandbox host in its own process (so the server's work is not in the
profile), builds the client exactly as the benchmark does, and runs its fetch under cProfile.
Prints the cumulative time of the stages that matter (HTTP, JSON decode, mapping, pydantic
validation, store) and the top functions by own time. cProfile inflates pure-Python code against
C code: read the stages as shares, not as seconds.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.clients import find
from bench.host import SandboxHost
from bench.target import Target

# (stage, predicate on (file, function name)) - the first matching function's cumulative time.
STAGES: list[tuple[str, str, str]] = [
    ("whole fetch (main thread)", "bench/clients", "fetch"),
    ("HTTP: requests send + read body", "requests/sessions.py", "request"),
    ("JSON decode (itsm_bridge._json.loads)", "itsm_bridge/_json.py", "loads"),
    ("JSON decode (orjson/json direct)", "~", "<built-in method orjson.loads>"),
    ("mapping (connector map_record)", "itsm_bridge_", "map_record"),
    ("pydantic validation (WorkItem init)", "pydantic/main.py", "__init__"),
    ("pydantic model_validate", "pydantic/main.py", "model_validate"),
    ("store upsert", "itsm_bridge/sync/store.py", "upsert_page"),
    ("gc (explicit collections)", "~", "<built-in method gc.collect>"),
]


def stage_times(stats: pstats.Stats) -> list[tuple[str, float, int]]:
    table: dict[tuple[str, int, str], Any] = stats.stats  # type: ignore[attr-defined]
    out = []
    for label, file_part, func in STAGES:
        best = None
        for (filename, _line, name), (_cc, nc, _tt, ct, _callers) in table.items():
            if name == func and file_part in filename and (best is None or ct > best[0]):
                best = (ct, nc)
        if best is not None:
            out.append((label, best[0], best[1]))
    return out


def _profile_threads() -> list[cProfile.Profile]:
    """Profile every thread started from now on (cProfile sees only the thread that enabled
    it; the connectors fetch and decode pages in worker threads)."""
    profiles: list[cProfile.Profile] = []
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()
        try:
            original(self)
        finally:
            profile.disable()

    threading.Thread.run = run  # type: ignore[method-assign]
    return profiles


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("scenario")
    p.add_argument("client")
    p.add_argument("n", type=int, nargs="?", default=20_000)
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--no-profile", action="store_true", help="time it plain, with GC stats")
    a = p.parse_args(argv)
    spec = {"scenario": a.scenario, "n": a.n, "latency": a.latency, "seed": 7}
    with SandboxHost(sys.executable, spec) as host, tempfile.TemporaryDirectory() as workdir:
        info = host.info
        target = Target(
            scenario=a.scenario, url=info["url"], username=info["username"],
            password=info["password"], auth=info["auth"], connector=info["connector"],
            kind=info["kind"], n=info["n"], latency=a.latency, workdir=workdir,
            connect_options=info["connect_options"], jql=info["jql"],
        )  # fmt: skip
        fetch = find(a.scenario, a.client).build(target)
        if a.no_profile:
            gc_time = [0.0]
            started: list[float] = []

            def on_gc(phase: str, _info: dict[str, Any]) -> None:
                if phase == "start":
                    started.append(time.perf_counter())
                elif started:
                    gc_time[0] += time.perf_counter() - started.pop()

            gc.callbacks.append(on_gc)
            t0, c0 = time.perf_counter(), time.process_time()
            result = fetch()
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            gc.callbacks.remove(on_gc)
            got = len(result() if callable(result) else result)
            print(f"{a.client}: {got} records, wall {wall:.2f} s, cpu {cpu:.2f} s, "
                  f"cyclic GC {gc_time[0]:.2f} s ({gc_time[0] / wall:.0%} of wall)")  # fmt: skip
            return 0
        profiler = cProfile.Profile()
        thread_profiles = _profile_threads()
        t0 = time.perf_counter()
        profiler.enable()
        result = fetch()
        profiler.disable()
        wall = time.perf_counter() - t0
        got = len(result() if callable(result) else result)
    stats = pstats.Stats(profiler)
    for extra in thread_profiles:
        stats.add(extra)
    if thread_profiles:
        print(f"(merged the profiles of {len(thread_profiles)} worker threads)")
    print(f"{a.client} on {a.scenario}: {got} records, {wall:.2f} s under cProfile")
    print("\nstage (cumulative over all threads; stages nest)        seconds   calls  / wall")
    for label, ct, calls in stage_times(stats):
        print(f"  {label:54s} {ct:8.2f} {calls:7d} {ct / wall:7.0%}")
    buf = io.StringIO()
    stats.stream = buf  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(a.top)
    print(buf.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
