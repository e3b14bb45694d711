"""The benchmark's own virtual environment: ``bench/.venv``, with the peers installed.

Peers (pysnc, pysnow, jira, atlassian-python-api) never enter the project's environment; the
harness creates ``bench/.venv`` on first use, installs them with the repository's core and
connectors in editable mode, and re-executes itself there. A stamp file holds the hash of the
requirement list, so a changed pin re-installs and an unchanged one costs nothing.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV = BENCH / ".venv"

# Exactly the versions docs/performance.md and shared/reference/peer-performance.md describe.
PEERS = [
    "pysnc==1.2.1",
    "pysnow==0.7.17",
    "jira==3.10.5",
    "atlassian-python-api==5.0.5",
]
TOOLS = ["orjson", "psutil"]


def venv_python(root: Path = VENV) -> Path:
    return root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def editable_targets() -> list[str]:
    targets = [str(REPO)]
    targets += [str(p.parent) for p in sorted((REPO / "connectors").glob("*/pyproject.toml"))]
    return targets


def _stamp_text() -> str:
    parts = [*PEERS, *TOOLS, *editable_targets(), sys.version.split()[0]]
    for target in editable_targets():
        pyproject = Path(target) / "pyproject.toml"
        parts.append(hashlib.sha256(pyproject.read_bytes()).hexdigest())
    return "\n".join(parts)


def ensure_venv(*, quiet: bool = True) -> Path:
    """Create or refresh ``bench/.venv``; return its interpreter."""
    python = venv_python()
    stamp = VENV / ".bench-installed"
    wanted = _stamp_text()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    if not python.exists():
        print(f"bench: creating {VENV.relative_to(REPO)} (peers live only here)", file=sys.stderr)
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    q = ["-q"] if quiet else []
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", *q]
    subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
    editable = [arg for target in editable_targets() for arg in ("-e", target)]
    subprocess.run([*pip, "install", *PEERS, *TOOLS, *editable], check=True)
    stamp.write_text(wanted)
    return python


def in_bench_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


if __name__ == "__main__":
    print(ensure_venv(quiet=False))
