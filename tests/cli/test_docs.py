"""The Python snippets in the CLI, quickstart and nightly docs run as written.

A block preceded by ``<!-- no-test -->`` talks to a real instance or a scheduler and is skipped.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"(<!-- no-test -->\s*\n)?```python\n(.*?)```", re.DOTALL)


def blocks(name: str) -> list[str]:
    text = (DOCS / name).read_text(encoding="utf-8")
    return [code for skip, code in BLOCK.findall(text) if not skip]


@pytest.mark.parametrize("name", ["cli.md", "nightly.md", "quickstart.md"])
def test_doc_snippets_run(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_{name}"}
    for code in blocks(name):
        exec(compile(code, f"{name} snippet", "exec"), namespace)  # noqa: S102 - our own docs


def test_every_doc_has_runnable_or_marked_snippets() -> None:
    assert blocks("cli.md")
    assert blocks("nightly.md")
    assert blocks("quickstart.md")
