"""Every Python snippet in docs/ runs, and the site's navigation and links hold together.

The snippets of each page run in order, in one namespace (a page may build on an earlier
block), in a scratch working directory. A block that needs a real instance or a scheduler opts
out with a ``<!-- no-test -->`` line right before its opening fence. New pages are picked up
without touching this file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
BLOCK = re.compile(r"^(<!-- no-test -->[ \t]*\n)?```python[ \t]*\n(.*?)^```", re.DOTALL | re.M)
LINK = re.compile(r"\]\(([^)\s#]+\.md)(?:#[^)]*)?\)")


def python_blocks(text: str) -> list[str]:
    """The runnable ```python blocks of a page, in order."""
    return [code for opt_out, code in BLOCK.findall(text) if not opt_out]


def _pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def _runnable_pages() -> list[Path]:
    return [p for p in _pages() if python_blocks(p.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("page", _runnable_pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_snippets_run(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs.{page.stem}"}
    for number, code in enumerate(python_blocks(page.read_text(encoding="utf-8")), 1):
        where = f"{page.relative_to(REPO)} python block {number}"
        exec(compile(code, where, "exec"), namespace)  # noqa: S102 - our own documentation


def test_the_core_pages_have_runnable_snippets() -> None:
    for name in ("index.md", "concepts.md", "write-a-connector.md"):
        assert python_blocks((DOCS / name).read_text(encoding="utf-8")), name


def test_the_extractor_honours_the_opt_out() -> None:
    text = (
        "intro\n\n```python\nx = 1\n```\n\n<!-- no-test -->\n```python\nraise SystemExit\n```\n"
        "\n```toml\n[a]\n```\n\n```python\ny = x + 1\n```\n"
    )
    assert python_blocks(text) == ["x = 1\n", "y = x + 1\n"]


def _nav_pages() -> list[str]:
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["docs_dir"] == "docs"

    def walk(entries: list[object]) -> list[str]:
        found: list[str] = []
        for entry in entries:
            if isinstance(entry, str):
                found.append(entry)
            elif isinstance(entry, dict):
                for value in entry.values():
                    found += walk(value) if isinstance(value, list) else [str(value)]
        return found

    return walk(config["nav"])


def test_every_page_is_in_the_navigation() -> None:
    nav = _nav_pages()
    assert len(nav) == len(set(nav)), "a page is listed twice"
    assert nav[0] == "index.md"
    missing = [str(p.relative_to(DOCS)) for p in _pages() if str(p.relative_to(DOCS)) not in nav]
    assert not missing, f"pages not in mkdocs.yml nav: {missing}"


def test_links_between_pages_point_at_pages_of_the_site() -> None:
    nav = set(_nav_pages())
    broken = []
    for page in _pages():
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if "://" in target:
                continue
            resolved = (page.parent / target).resolve()
            if not resolved.is_relative_to(DOCS.resolve()):
                if not resolved.exists():  # outside the site (README): must at least exist
                    broken.append(f"{page.relative_to(DOCS)} -> {target}")
                continue
            if resolved.relative_to(DOCS.resolve()).as_posix() not in nav:
                broken.append(f"{page.relative_to(DOCS)} -> {target}")
    assert not broken, f"links to pages that are not part of the site: {broken}"
