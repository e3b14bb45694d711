"""Atlassian Document Format (ADF) to readable plain text.

Jira Cloud's v3 API returns rich text (descriptions, comments, worklog comments) as ADF JSON,
while v2 and Data Center return wiki markup strings. Scoring reads words, so every node that
carries words a person would read (mentions, emoji, card links, status lozenges, dates, table
cells) becomes text, and nodes that carry none (media) become a short placeholder instead of
vanishing. Unknown nodes never raise: their children, or their ``text`` attribute, are kept.

Structure reference: https://developer.atlassian.com/cloud/jira/platform/apis/document/structure/
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = ["adf_to_text", "rich_text"]

_BLOCK_SEPARATOR = "\n\n"


def rich_text(value: Any) -> str | None:
    """Plain text of a rich-text field: ADF (v3) converted, wiki markup (v2) kept as it is."""
    if value is None:
        return None
    if type(value) is dict:  # the common case, without the Mapping ABC's check
        return adf_to_text(value) or None
    if isinstance(value, str):
        text = value.replace("\r\n", "\n").replace("\r", "\n").strip()
        return text or None
    if isinstance(value, Mapping):
        text = adf_to_text(value)
        return text or None
    return str(value)


def adf_to_text(doc: Mapping[str, Any]) -> str:
    """Render an ADF document (or any ADF node) as plain text, blocks separated by blank lines."""
    plain = _plain_paragraphs(doc)
    if plain is not None:
        return plain
    return _normalise(_block(doc, depth=0))


def _plain_paragraphs(doc: Mapping[str, Any]) -> str | None:
    """The text of the commonest document, paragraphs of unmarked one-line text, in one pass.

    Gives exactly what the general renderer gives; ``None`` for anything else (which then takes
    the general path).
    """
    content = doc.get("content")
    if doc.get("type") != "doc" or type(content) is not list:
        return None
    paragraphs: list[str] = []
    for block in content:
        if type(block) is not dict or block.get("type") != "paragraph":
            return None
        nodes = block.get("content")
        if nodes is None:
            continue
        if type(nodes) is not list:
            return None
        texts: list[str] = []
        for node in nodes:
            if type(node) is not dict or node.get("type") != "text" or "marks" in node:
                return None
            text = node.get("text")
            if type(text) is not str:
                return None
            texts.append(text)
        paragraph = "".join(texts)
        if "\n" in paragraph or "\r" in paragraph:
            return None
        if paragraph.strip():
            paragraphs.append(paragraph.rstrip())
    return "\n\n".join(paragraphs)


def _normalise(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    out: list[str] = []
    for line in lines:
        if not line and out and not out[-1]:
            continue
        out.append(line)
    return "\n".join(out).strip("\n")


def _children(node: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    content = node.get("content")
    if isinstance(content, list):
        return [c for c in content if isinstance(c, Mapping)]
    return []


def _attrs(node: Mapping[str, Any]) -> Mapping[str, Any]:
    attrs = node.get("attrs")
    return attrs if isinstance(attrs, Mapping) else {}


def _blocks(nodes: Sequence[Mapping[str, Any]], depth: int, sep: str = _BLOCK_SEPARATOR) -> str:
    parts = [_block(n, depth) for n in nodes]
    return sep.join(p for p in parts if p.strip())


def _indent(text: str, prefix: str, rest: str | None = None) -> str:
    lines = text.split("\n")
    follow = rest if rest is not None else " " * len(prefix)
    return "\n".join((prefix if i == 0 else follow) + line for i, line in enumerate(lines))


def _block(node: Mapping[str, Any], depth: int) -> str:
    kind = node.get("type")
    attrs = _attrs(node)
    children = _children(node)
    if kind in ("doc", "layoutSection", "layoutColumn", "bodiedExtension", "extensionFrame"):
        return _blocks(children, depth)
    if kind == "paragraph":
        return _inline_all(children)
    if kind == "heading":
        return _inline_all(children)
    if kind in ("bulletList", "orderedList"):
        start = attrs.get("order", 1) if kind == "orderedList" else None
        number = start if isinstance(start, int) else 1
        items = []
        for child in children:
            marker = f"{number}. " if kind == "orderedList" else "- "
            items.append(_indent(_blocks(_children(child), depth + 1, "\n"), marker))
            number += 1
        return "\n".join(items)
    if kind in ("taskList", "decisionList"):
        items = []
        for child in children:
            if child.get("type") in ("taskList", "decisionList"):
                items.append(_indent(_block(child, depth + 1), "  "))
                continue
            state = _attrs(child).get("state")
            marker = "[x] " if state in ("DONE", "DECIDED") else "[ ] "
            items.append(_indent(_inline_all(_children(child)), marker))
        return "\n".join(items)
    if kind == "codeBlock":
        return "".join(_inline(c) for c in children)
    if kind == "blockquote":
        return _indent(_blocks(children, depth), "> ", "> ")
    if kind == "rule":
        return "---"
    if kind == "panel":
        panel_type = attrs.get("panelType")
        body = _blocks(children, depth)
        return f"[{panel_type}] {body}" if isinstance(panel_type, str) and body else body
    if kind in ("expand", "nestedExpand"):
        title = attrs.get("title")
        body = _blocks(children, depth)
        return f"{title}\n{body}" if isinstance(title, str) and title else body
    if kind == "table":
        return "\n".join(_row(row) for row in children)
    if kind in ("mediaSingle", "mediaGroup"):
        return "\n".join(_media(c) for c in children if c.get("type") == "media")
    if kind == "media":
        return _media(node)
    if kind in ("blockCard", "embedCard"):
        return _card(attrs)
    if kind == "extension":
        return f"[extension: {attrs.get('extensionKey', 'unknown')}]"
    if children:
        # Unknown blocks: keep whatever inline or block content they hold.
        if all(_is_inline(c) for c in children):
            return _inline_all(children)
        return _blocks(children, depth)
    return _inline(node)


def _row(row: Mapping[str, Any]) -> str:
    cells = []
    for cell in _children(row):
        cells.append(_blocks(_children(cell), 0, " ").replace("\n", " "))
    return " | ".join(cells)


_INLINE = {
    "text",
    "hardBreak",
    "mention",
    "emoji",
    "inlineCard",
    "status",
    "date",
    "mediaInline",
    "placeholder",
    "inlineExtension",
}


def _is_inline(node: Mapping[str, Any]) -> bool:
    return node.get("type") in _INLINE


def _inline_all(nodes: Sequence[Mapping[str, Any]]) -> str:
    return "".join(_inline(n) for n in nodes)


def _link_href(node: Mapping[str, Any]) -> str | None:
    marks = node.get("marks")
    if not isinstance(marks, list):
        return None
    for mark in marks:
        if isinstance(mark, Mapping) and mark.get("type") == "link":
            href = _attrs(mark).get("href")
            if isinstance(href, str) and href:
                return href
    return None


def _inline(node: Mapping[str, Any]) -> str:
    kind = node.get("type")
    attrs = _attrs(node)
    if kind == "text":
        text = str(node.get("text") or "")
        href = _link_href(node)
        if href and href != text and href not in text:
            return f"{text} ({href})"
        return text
    if kind == "hardBreak":
        return "\n"
    if kind == "mention":
        label = attrs.get("text")
        if isinstance(label, str) and label:
            return label if label.startswith("@") else f"@{label}"
        return f"@{attrs.get('id', 'someone')}"
    if kind == "emoji":
        emoji = attrs.get("text") or attrs.get("shortName")
        return str(emoji) if emoji else ""
    if kind == "inlineCard":
        return _card(attrs)
    if kind == "status":
        lozenge = attrs.get("text")
        return f"[{lozenge}]" if lozenge else ""
    if kind == "date":
        return _date(attrs.get("timestamp"))
    if kind == "mediaInline":
        return _media(node)
    if kind == "placeholder":
        return str(attrs.get("text") or "")
    if kind == "inlineExtension":
        return f"[extension: {attrs.get('extensionKey', 'unknown')}]"
    children = _children(node)
    if children:
        return _inline_all(children)
    fallback = node.get("text")
    return str(fallback) if isinstance(fallback, str) else ""


def _card(attrs: Mapping[str, Any]) -> str:
    url = attrs.get("url")
    if isinstance(url, str) and url:
        return url
    data = attrs.get("data")
    if isinstance(data, Mapping):
        name = data.get("name") or data.get("url")
        if name:
            return str(name)
    return "[link]"


def _media(node: Mapping[str, Any]) -> str:
    # Media nodes carry no words; a placeholder records that something was attached.
    attrs = _attrs(node)
    name = attrs.get("alt") or attrs.get("filename") or attrs.get("name")
    kind = attrs.get("type")
    if isinstance(name, str) and name:
        return f"[attachment: {name}]"
    if kind == "link" and isinstance(attrs.get("url"), str):
        return f"[attachment: {attrs['url']}]"
    return "[attachment]"


def _date(timestamp: Any) -> str:
    # ADF dates are epoch milliseconds (as a string) at UTC midnight.
    try:
        ms = int(str(timestamp))
    except (TypeError, ValueError):
        return str(timestamp or "")
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date().isoformat()
