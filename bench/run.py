"""itsm-bridge against peer clients, on the same seeded sandboxes: ``make bench``.

Creates (or reuses) ``bench/.venv`` with the peers, re-executes itself there, then for each
scenario starts one sandbox host process and runs every client in a fresh process, in
alternation, ``--runs`` times. Writes ``bench/results/<stamp>.{json,md}`` (and ``latest.*``); with
``--write-docs`` also refreshes the generated block of docs/performance.md.

    python bench/run.py                      # everything (about 40 min on 2 cores)
    python bench/run.py --quick              # small N, 1 run: checks the harness in ~3 min
    python bench/run.py --only servicenow --latency 0 --runs 3
    python bench/run.py --only scoring       # or: million, million-jira
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _env, measure, report, summary
from bench.clients import Client, clients_for
from bench.host import SandboxHost, log, run_client
from bench.target import SCENARIOS, Target

RESULTS = _env.BENCH / "results"
EXTRAS = ("scoring", "million", "million-jira")


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small N, one run (harness check)")
    p.add_argument(
        "--only",
        action="append",
        choices=[*SCENARIOS, *EXTRAS],
        help="run only these parts, in this order (repeatable)",
    )
    p.add_argument("--clients", help="comma-separated client names (default: all)")
    p.add_argument("--runs", type=int, help="runs per client (default 3; --quick: 1)")
    p.add_argument(
        "--latency",
        type=float,
        action="append",
        help="server latency per request in seconds (default: 0 and 0.2)",
    )
    p.add_argument("--n-servicenow", type=int, help="incidents (default 50,000)")
    p.add_argument("--n-jira", type=int, help="Jira issues (default 20,000)")
    p.add_argument(
        "--n-million",
        type=int,
        help="records of the streamed syncs (million, million-jira: 1,000,000)",
    )
    p.add_argument("--n-scoring", type=int, help="items scored (60,000)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per client run")
    p.add_argument(
        "--no-venv",
        action="store_true",
        help="run in this interpreter (peers that are not installed are skipped)",
    )
    p.add_argument(
        "--sandbox-factory",
        action="append",
        default=[],
        metavar="SCENARIO=MODULE:FUNC",
        help="serve a scenario from another sandbox factory (e.g. a third-party connector's)",
    )
    p.add_argument(
        "--merge",
        type=Path,
        metavar="RESULTS.json",
        help="start from an earlier run's JSON and replace only the parts run now",
    )
    p.add_argument(
        "--no-pin",
        action="store_true",
        help="let the scheduler place the sandbox host and the client (default: a core each)",
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    p.add_argument(
        "--write-docs",
        action="store_true",
        help="refresh the generated block of docs/performance.md",
    )
    return p.parse_args(argv)


def settings(a: argparse.Namespace) -> dict[str, Any]:
    quick = a.quick
    return {
        "runs": a.runs or (1 if quick else 3),
        "latencies": a.latency if a.latency is not None else ([0.0, 0.05] if quick else [0.0, 0.2]),
        "n": {
            "servicenow": a.n_servicenow or (3_000 if quick else 50_000),
            "jira-cloud": a.n_jira or (1_000 if quick else 20_000),
            "jira-dc": a.n_jira or (1_000 if quick else 20_000),
        },
        "n_million": a.n_million or (20_000 if quick else 1_000_000),
        "n_scoring": a.n_scoring or (6_000 if quick else 60_000),
        "parts": a.only or [*SCENARIOS, *EXTRAS],
        "clients": set(a.clients.split(",")) if a.clients else None,
        "factories": dict(f.split("=", 1) for f in a.sandbox_factory),
    }


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration):
        mem_kb = 0
    packages = {}
    for dist in ("itsm-bridge", "requests", "pydantic", "orjson", "pysnc", "pysnow", "jira",
                 "atlassian-python-api"):  # fmt: skip
        try:
            packages[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            packages[dist] = "not installed"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": mem_kb / 2**20,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": packages,
        "load_start": os.getloadavg()[0],
        "pinned": os.environ.get(measure.PIN_ENV) == "1" and (os.cpu_count() or 1) > 1,
    }


def installed(dist: str | None) -> bool:
    if dist is None:
        return True
    try:
        metadata.version(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


def command_for(argv_parts: list[str]) -> str:
    return "python bench/run.py " + " ".join(shlex.quote(p) for p in argv_parts)


def run_scenario(
    scenario: str, latency: float, cfg: dict[str, Any], workdir: str
) -> dict[str, Any]:
    n = cfg["n"][scenario]
    runs = cfg["runs"]
    picked: list[Client] = [
        c for c in clients_for(scenario) if cfg["clients"] is None or c.name in cfg["clients"]
    ]
    rows: dict[str, dict[str, Any]] = {}
    active: list[Client] = []
    for c in picked:
        base = {"label": c.label, "page": c.page, "group": c.group, "object_peer": c.object_peer}
        if latency > 0 and not c.in_latency:
            rows[c.name] = {**base, "skipped": c.why_not_in_latency}
        elif not installed(c.peer_package):
            rows[c.name] = {**base, "skipped": f"{c.peer_package} is not installed here"}
        else:
            rows[c.name] = base
            active.append(c)
    n_flag = "--n-servicenow" if scenario == "servicenow" else "--n-jira"
    cmd = command_for(["--only", scenario, "--latency", f"{latency:g}", n_flag, str(n),
                       "--runs", str(runs)])  # fmt: skip
    log(f"== {scenario}: n={n:,} latency={latency * 1000:.0f} ms, {len(active)} clients x {runs}")
    spec = {"scenario": scenario, "n": n, "latency": latency, "seed": 7}
    spec["factory"] = cfg["factories"].get(scenario)
    t_start = time.perf_counter()
    with SandboxHost(sys.executable, spec) as host:
        info = host.info
        target = Target(
            scenario=scenario, url=info["url"], username=info["username"],
            password=info["password"], auth=info["auth"], connector=info["connector"],
            kind=info["kind"],
            n=info["n"], latency=latency, workdir=workdir,
            connect_options=info["connect_options"], jql=info["jql"],
        )  # fmt: skip
        all_runs: dict[str, list[dict[str, Any]]] = {c.name: [] for c in active}
        dead: dict[str, str] = {}
        for r in range(runs):
            order = active[r % len(active) :] + active[: r % len(active)] if active else []
            for c in order:
                if c.name in dead:
                    continue
                before = host.stats()
                load1 = os.getloadavg()[0]
                result = run_client(
                    sys.executable,
                    {"client": c.name, "target": target.as_dict()},
                    timeout=cfg["timeout"],
                )
                after = host.stats()
                result["server_cpu"] = after["cpu"] - before["cpu"]
                if after.get("requests") is not None and before.get("requests") is not None:
                    result["requests"] = after["requests"] - before["requests"]
                result["load1"] = load1
                all_runs[c.name].append(result)
                if result.get("error", "").startswith(("setup:", "worker exited")):
                    dead[c.name] = result["error"]  # it cannot run: do not retry
                log(_progress(c.name, r, result))
    for c in active:
        rows[c.name].update(summary.summarise(all_runs[c.name], target.n))
        rows[c.name]["all_runs"] = all_runs[c.name]
    summary.add_ratios(rows)
    return {
        "scenario": scenario, "n": target.n, "latency": latency, "runs": runs, "rows": rows,
        "command": cmd, "seconds": time.perf_counter() - t_start,
        "load_end": os.getloadavg()[0],
    }  # fmt: skip


def _progress(name: str, r: int, result: dict[str, Any]) -> str:
    if result.get("error"):
        return f"   run {r + 1} {name:16s} ERROR {result['error'][:300]}"
    return (
        f"   run {r + 1} {name:16s} {result['wall']:8.2f} s  cpu {result['cpu']:7.2f} s  "
        f"peak {result['peak_rss_mb']:7.0f} MB  srv {result['server_cpu']:6.2f} s  "
        f"load {result['load1']:.2f}"
    )


def run_scoring(cfg: dict[str, Any]) -> dict[str, Any]:
    import subprocess

    n, runs = cfg["n_scoring"], max(3, cfg["runs"])
    log(f"== scoring: {n:,} items, {runs} runs, one core")
    done = subprocess.run(
        [sys.executable, str(_env.BENCH / "scoring_bench.py"), str(n), str(runs)],
        capture_output=True, text=True, cwd=_env.REPO, timeout=cfg["timeout"],
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    result: dict[str, Any] = (
        json.loads(lines[-1]) if lines else {"error": done.stderr.strip()[-500:]}
    )
    result["command"] = command_for(["--only", "scoring", "--n-scoring", str(n)])
    log(f"   scoring: {result.get('items_per_s', result.get('error'))}")
    return result


# The streamed syncs: part name -> the scenario served, and what its records are.
MILLION = {
    "million": ("servicenow", "ServiceNow incidents"),
    "million-jira": ("jira-cloud", "Jira Cloud issues"),
}


def run_million(cfg: dict[str, Any], workdir: str, part: str = "million") -> dict[str, Any]:
    n = cfg["n_million"]
    scenario, what = MILLION[part]
    cmd = command_for(["--only", part, "--n-million", str(n)])
    log(f"== streamed sync of {n:,} {what} (server in its own process)")
    spec = {"scenario": scenario, "n": n, "latency": 0.0, "seed": 7}
    spec["factory"] = cfg["factories"].get(scenario)
    try:
        host_cm = SandboxHost(sys.executable, spec)
        with host_cm as host:
            info = host.info
            target = Target(
                scenario=scenario, url=info["url"], username=info["username"],
                password=info["password"], auth=info["auth"], connector=info["connector"],
            kind=info["kind"],
                n=info["n"], latency=0.0, workdir=workdir,
                connect_options=info["connect_options"],
            )  # fmt: skip
            before = host.stats()
            result = run_client(
                sys.executable,
                {"client": "ours-sync", "target": target.as_dict(), "sample": True,
                 "sample_interval": 1.0},
                timeout=max(cfg["timeout"], 3600),
            )  # fmt: skip
            after = host.stats()
    except Exception as exc:
        return {"n": n, "command": cmd, "error": f"{type(exc).__name__}: {exc}"}
    out: dict[str, Any] = {"n": n, "command": cmd, "records": what, **result}
    if result.get("error") and not result.get("rss_samples"):
        return out
    samples = [tuple(s) for s in result["rss_samples"]]
    out.update(summary.rss_flatness(samples))  # type: ignore[arg-type]
    step = max(1, len(samples) // 12)
    out["samples_mb"] = samples
    out["samples_preview"] = ", ".join(f"{t:.0f}:{mb:.0f}" for t, mb in samples[::step])
    out["rps"] = n / result["wall"]
    server_cpu = after["cpu"] - before["cpu"]
    out["server_note"] = (
        f"sandbox host process (not in the client's RSS), {server_cpu:.1f} s CPU during the sync"
    )
    return out


def merge(earlier: dict[str, Any], now: dict[str, Any]) -> dict[str, Any]:
    """An earlier run's results with the parts re-run now replacing theirs (and saying so)."""
    merged = dict(earlier)
    fresh = {(sc["scenario"], sc["latency"]): sc for sc in now["scenarios"]}
    # Each re-run part takes its earlier one's place (the report keeps its order); new parts last.
    scenarios = [
        fresh.pop((sc["scenario"], sc["latency"]), sc) for sc in earlier.get("scenarios", [])
    ]
    merged["scenarios"] = scenarios + list(fresh.values())
    for part in EXTRAS:
        if part in now:
            merged[part] = now[part]
    merged["command"] = f"{earlier.get('command')}; then {now['command']}"
    merged.setdefault("reruns", []).append(
        {"started": now["started"], "command": now["command"], "load": now["machine"]["load_start"]}
    )
    return merged


def main(argv: list[str]) -> int:
    args = parse(argv)
    if not args.no_venv and not _env.in_bench_venv():
        python = _env.ensure_venv()
        os.execv(str(python), [str(python), str(Path(__file__).resolve()), *argv])  # noqa: S606
    os.environ[measure.PIN_ENV] = "0" if args.no_pin else "1"  # read by server.py and worker.py
    cfg = {**settings(args), "timeout": args.timeout}
    started = datetime.now(UTC)
    result: dict[str, Any] = {
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command": command_for(argv),
        "machine": machine(),
        "settings": {k: (sorted(v) if isinstance(v, set) else v) for k, v in cfg.items()},
        "scenarios": [],
    }
    with tempfile.TemporaryDirectory(prefix="itsm-bench-") as workdir:
        for part in dict.fromkeys(cfg["parts"]):  # in the order given to --only
            if part == "scoring":
                result["scoring"] = run_scoring(cfg)
            elif part in MILLION:
                result[part] = run_million(cfg, workdir, part)
            else:
                for latency in cfg["latencies"]:
                    result["scenarios"].append(run_scenario(part, latency, cfg, workdir))
    if args.merge:
        result = merge(json.loads(args.merge.read_text()), result)
    result["finished"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    result["load_end"] = os.getloadavg()[0]
    result["targets"] = summary.targets(result)
    markdown = report.render(result)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%S")
    for name in (stamp, "latest"):
        (args.out / f"{name}.json").write_text(json.dumps(result, indent=1, default=str))
        (args.out / f"{name}.md").write_text(markdown + "\n")
    if args.write_docs:
        report.write_docs(_env.REPO / "docs" / "performance.md", markdown)
    print(markdown)
    log(f"results: {args.out / (stamp + '.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
