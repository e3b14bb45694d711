"""ADF -> plain text, node by node, and wiki markup kept as text."""

from __future__ import annotations

from typing import Any

import pytest
from itsm_bridge_jira.adf import adf_to_text, rich_text


def doc(*content: dict[str, Any]) -> dict[str, Any]:
    return {"type": "doc", "version": 1, "content": list(content)}


def p(*content: dict[str, Any]) -> dict[str, Any]:
    return {"type": "paragraph", "content": list(content)}


def t(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "text", "text": text, **extra}


def li(*content: dict[str, Any]) -> dict[str, Any]:
    return {"type": "listItem", "content": list(content)}


CASES: list[tuple[str, dict[str, Any], str]] = [
    (
        "paragraphs",
        doc(p(t("Users disconnected.")), p(t("Second."))),
        "Users disconnected.\n\nSecond.",
    ),
    (
        "heading",
        doc({"type": "heading", "attrs": {"level": 2}, "content": [t("Impact")]}, p(t("All"))),
        "Impact\n\nAll",
    ),
    (
        "bullets, nested",
        doc(
            {
                "type": "bulletList",
                "content": [
                    li(p(t("one"))),
                    li(p(t("two")), {"type": "bulletList", "content": [li(p(t("two.a")))]}),
                ],
            }
        ),
        "- one\n- two\n  - two.a",
    ),
    (
        "ordered list from 3",
        doc(
            {
                "type": "orderedList",
                "attrs": {"order": 3},
                "content": [li(p(t("c"))), li(p(t("d")))],
            }
        ),
        "3. c\n4. d",
    ),
    (
        "code block",
        doc(
            {
                "type": "codeBlock",
                "attrs": {"language": "bash"},
                "content": [t("kubectl get pods\nexit 1")],
            }
        ),
        "kubectl get pods\nexit 1",
    ),
    (
        "table",
        doc(
            {
                "type": "table",
                "content": [
                    {
                        "type": "tableRow",
                        "content": [
                            {"type": "tableHeader", "content": [p(t("Host"))]},
                            {"type": "tableHeader", "content": [p(t("State"))]},
                        ],
                    },
                    {
                        "type": "tableRow",
                        "content": [
                            {"type": "tableCell", "content": [p(t("vpn-01"))]},
                            {"type": "tableCell", "content": [p(t("down"))]},
                        ],
                    },
                ],
            }
        ),
        "Host | State\nvpn-01 | down",
    ),
    (
        "mention with and without text",
        doc(
            p(
                t("Ask "),
                {"type": "mention", "attrs": {"id": "5b10", "text": "@Ada"}},
                t(" and "),
                {"type": "mention", "attrs": {"id": "5b11"}},
            )
        ),
        "Ask @Ada and @5b11",
    ),
    (
        "emoji",
        doc(p(t("Fixed "), {"type": "emoji", "attrs": {"shortName": ":tada:", "text": "🎉"}})),
        "Fixed 🎉",
    ),
    (
        "link mark keeps the URL",
        doc(p(t("runbook", marks=[{"type": "link", "attrs": {"href": "https://wiki/rb"}}]))),
        "runbook (https://wiki/rb)",
    ),
    (
        "inline and block cards",
        doc(
            p(
                t("See "),
                {"type": "inlineCard", "attrs": {"url": "https://acme.atlassian.net/browse/OPS-7"}},
            ),
            {"type": "blockCard", "attrs": {"url": "https://status.example.com"}},
        ),
        "See https://acme.atlassian.net/browse/OPS-7\n\nhttps://status.example.com",
    ),
    (
        "media placeholders",
        doc(
            {
                "type": "mediaSingle",
                "content": [
                    {"type": "media", "attrs": {"type": "file", "id": "x", "alt": "trace.png"}}
                ],
            },
            {
                "type": "mediaGroup",
                "content": [{"type": "media", "attrs": {"type": "file", "id": "y"}}],
            },
        ),
        "[attachment: trace.png]\n\n[attachment]",
    ),
    (
        "hard break",
        doc(p(t("line one"), {"type": "hardBreak"}, t("line two"))),
        "line one\nline two",
    ),
    ("rule", doc(p(t("above")), {"type": "rule"}, p(t("below"))), "above\n\n---\n\nbelow"),
    (
        "panel",
        doc(
            {
                "type": "panel",
                "attrs": {"panelType": "warning"},
                "content": [p(t("Do not restart"))],
            }
        ),
        "[warning] Do not restart",
    ),
    (
        "expand",
        doc({"type": "expand", "attrs": {"title": "Logs"}, "content": [p(t("ERROR 500"))]}),
        "Logs\nERROR 500",
    ),
    (
        "status lozenge and date",
        doc(
            p(
                {"type": "status", "attrs": {"text": "BLOCKED", "color": "red"}},
                t(" since "),
                {"type": "date", "attrs": {"timestamp": "1767225600000"}},
            )
        ),
        "[BLOCKED] since 2026-01-01",
    ),
    (
        "task list and blockquote",
        doc(
            {
                "type": "taskList",
                "content": [
                    {"type": "taskItem", "attrs": {"state": "DONE"}, "content": [t("backup")]},
                    {"type": "taskItem", "attrs": {"state": "TODO"}, "content": [t("restore")]},
                ],
            },
            {"type": "blockquote", "content": [p(t("quoted"))]},
        ),
        "[x] backup\n[ ] restore\n\n> quoted",
    ),
    (
        "unknown nodes keep their text",
        doc(
            {"type": "futureBlock", "content": [p(t("kept"))]},
            p({"type": "futureInline", "text": "also"}),
        ),
        "kept\n\nalso",
    ),
    ("empty document", doc(), ""),
]


@pytest.mark.parametrize(("name", "adf", "expected"), CASES, ids=[c[0] for c in CASES])
def test_adf_to_text(name: str, adf: dict[str, Any], expected: str) -> None:
    assert adf_to_text(adf) == expected


def test_rich_text_by_shape() -> None:
    assert rich_text(None) is None
    assert rich_text(doc()) is None
    assert rich_text("h1. Outage\r\n* VPN down\r\n{code}ping{code}") == (
        "h1. Outage\n* VPN down\n{code}ping{code}"
    )  # wiki markup kept as written
    assert rich_text(doc(p(t("x")))) == "x"
    assert rich_text("   ") is None


def test_malformed_nodes_never_raise() -> None:
    weird: dict[str, Any] = {
        "type": "doc",
        "content": [None, 3, {"type": "paragraph", "content": "not a list"}, {"type": "date"}],
    }
    assert adf_to_text(weird) == ""
