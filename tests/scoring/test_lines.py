"""Texts of several lines are matched line by line (lines repeat far more than whole texts), and
the answer is exactly that of the whole text: phrases and negations spanning two lines included."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from itsm_bridge.scoring import Scorer
from itsm_bridge.scoring._text import tokenize

from .conftest import make_item

SCORER = Scorer()
PHRASES = SCORER._compiled.phrases

# Words of multi-word phrases, negators, filler, and separators that do or do not split lines.
_WORDS = [
    "customer", "impact", "end", "of", "life", "not", "no", "without", "service", "down",
    "is", "restore", "the", "checkout", "timed", "out", "steps", "to", "reproduce", "add",
    "for", "our", "customers", "unable", "x", "",
]  # fmt: skip
_SEPARATORS = [" ", "\n", "\n\n", " \n", "-", ". "]


def _by_lines(text: str) -> tuple[str, ...]:
    joined = PHRASES.join([PHRASES.line(tokenize(line)) for line in text.split("\n")])
    return PHRASES.find(tokenize(text)) if joined is None else joined


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_WORDS), st.sampled_from(_SEPARATORS)), max_size=14))
def test_lines_give_the_phrases_of_the_whole_text(parts: list[tuple[str, str]]) -> None:
    text = "".join(word + separator for word, separator in parts)
    assert _by_lines(text) == PHRASES.find(tokenize(text))


def test_a_phrase_split_over_two_lines_is_still_found() -> None:
    text = "We reached the end\nof life for this box"
    assert "end of life" in _by_lines(text)
    assert _by_lines(text) == PHRASES.find(tokenize(text))


def test_a_negator_at_the_end_of_a_line_negates_the_next_line() -> None:
    text = "Good news: no\ncustomer impact expected"
    assert _by_lines(text) == PHRASES.find(tokenize(text))
    alone = "Good news\ncustomer impact expected"
    assert _by_lines(alone) == PHRASES.find(tokenize(alone))
    assert _by_lines(text) != _by_lines(alone)


def test_scoring_a_text_of_lines_equals_scoring_it_fresh() -> None:
    # The same lines first seen in other descriptions, then in this one: the answer must be
    # that of a scorer that never saw them.
    lines = ["Checkout is down for our customers.", "No customer impact", "Restore the service."]
    warm = Scorer()
    for first in lines:
        warm.score_one(make_item("x", description=f"{first}\nfiller"))
    description = "\n".join(lines)
    item = make_item("Checkout incident", "incident", description=description)
    assert warm.score_one(item).scoring == Scorer().score_one(item).scoring
