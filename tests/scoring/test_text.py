"""Tokenising: the ASCII fast path gives exactly the regular expression's tokens."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from itsm_bridge.scoring._text import tokenize

_REFERENCE = re.compile(r"[^\W_]+")


def _reference(text: str) -> list[str]:
    return _REFERENCE.findall(text.lower())


def test_every_ascii_character_splits_or_joins_like_the_regex() -> None:
    for code in range(128):
        c = chr(code)
        for text in (c, f"a{c}b", f"{c}{c}X9{c}", f"Re{c}Issue"):
            assert tokenize(text) == _reference(text), repr(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=60))
def test_ascii_text(text: str) -> None:
    assert tokenize(text) == _reference(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text(text: str) -> None:
    assert tokenize(text) == _reference(text)


def test_non_ascii_words() -> None:
    assert tokenize("Café-Umsatz für Kunden_2") == ["café", "umsatz", "für", "kunden", "2"]
