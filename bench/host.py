"""The runner's side of the processes: the sandbox host and one client run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent


class SandboxHost:
    """Starts ``bench/server.py`` and talks to it over its stdin/stdout."""

    def __init__(self, python: str, spec: dict[str, Any], *, timeout: float = 900) -> None:
        self.python = python
        self.spec = spec
        self.timeout = timeout
        self.proc: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}

    def __enter__(self) -> SandboxHost:
        self.proc = subprocess.Popen(
            [self.python, str(BENCH / "server.py"), json.dumps(self.spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=BENCH.parent,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise RuntimeError(f"sandbox host for {self.spec} exited ({code}) before serving")
        self.info = json.loads(line)
        return self

    def stats(self) -> dict[str, Any]:
        assert self.proc is not None
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        stats: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return stats

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def run_client(
    python: str, spec: dict[str, Any], *, timeout: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """One client run in a fresh process; a crash or timeout becomes an ``error`` entry."""
    try:
        done = subprocess.run(
            [python, str(BENCH / "worker.py"), "-"],
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=BENCH.parent,
            env={**os.environ, **(env or {})},
        )
    except subprocess.TimeoutExpired:
        return {"client": spec["client"], "error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])[:500]
        return {"client": spec["client"], "error": f"worker exited {done.returncode}: {tail}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
