"""Fast phrase matching on word boundaries, with inflections and a cheap negation guard.

Every phrase of every rule is compiled once into lookup tables keyed by token tuples, so scoring
an item costs one tokenisation per text field and a few C-level set intersections, whatever the
number of rules: no per-rule regex loop. Inflected forms ("restore" -> "restored", "restoring",
"restores") are generated at compile time, so the text is never stemmed at run time.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence

__all__ = ["PhraseIndex", "inflections", "phrase_tokens", "tokenize"]

_TOKEN = re.compile(r"[^\W_]+")
_VOWELS = frozenset("aeiou")
# For ASCII text, [^\W_] is exactly [A-Za-z0-9]: lower-case letters, keep digits, and turn every
# other character into a space, then split. About twice as fast as the regular expression.
_ASCII_WORDS = str.maketrans(
    {code: (chr(code).lower() if chr(code).isalnum() else " ") for code in range(128)}
)


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens (letters and digits; punctuation and hyphens split words)."""
    if text.isascii():
        return text.translate(_ASCII_WORDS).split()
    return _TOKEN.findall(text.lower())


def phrase_tokens(phrase: str) -> tuple[str, ...]:
    return tuple(tokenize(phrase))


def inflections(word: str) -> set[str]:
    """Regular English inflections of ``word`` (over-generation is harmless: a non-word never
    occurs in text). Words with digits or shorter than three letters are left alone."""
    forms = {word}
    if len(word) < 3 or not word.isalpha():
        return forms
    last, before = word[-1], word[-2]
    consonant_y = last == "y" and before not in _VOWELS
    if word.endswith(("s", "x", "z", "ch", "sh")):
        forms.add(word + "es")
    elif consonant_y:
        forms.add(word[:-1] + "ies")
    else:
        forms.add(word + "s")
    if last == "e":
        forms.update((word + "d", word[:-1] + "ing"))
    elif consonant_y:
        forms.update((word[:-1] + "ied", word + "ing"))
    else:
        forms.update((word + "ed", word + "ing"))
        # consonant-vowel-consonant doubles its last letter: stop -> stopped, plan -> planning
        if (
            last not in _VOWELS
            and last not in "wxy"
            and before in _VOWELS
            and word[-3] not in _VOWELS
        ):
            forms.update((word + last + "ed", word + last + "ing"))
    return forms


class PhraseIndex:
    """Phrase groups compiled into token-tuple lookups.

    ``groups[g]`` is a list of phrases; :meth:`match` returns, for each group with a hit, the
    sorted matched phrases (as they appear in the text), dropping hits preceded by a negator
    within ``window`` tokens ("no customer impact", "not customer-facing").
    """

    def __init__(
        self,
        groups: Sequence[tuple[Iterable[str], bool]],
        *,
        negators: Iterable[str] = (),
        window: int = 2,
    ) -> None:
        tables: dict[int, dict[tuple[str, ...], set[int]]] = {}
        for group_id, (phrases, inflect) in enumerate(groups):
            for phrase in phrases:
                tokens = phrase_tokens(phrase)
                if not tokens:
                    continue
                variants = (
                    itertools.product(
                        *(
                            # an infinitive is never inflected: "to support", not "to supported"
                            [t] if i and tokens[i - 1] == "to" else sorted(inflections(t))
                            for i, t in enumerate(tokens)
                        )
                    )
                    if inflect
                    else [tokens]
                )
                for variant in variants:
                    tables.setdefault(len(variant), {}).setdefault(tuple(variant), set()).add(
                        group_id
                    )
        # Each table maps a token tuple to (the phrase as text, the token tuple, its groups).
        self._unigrams: dict[str, tuple[str, tuple[str, ...], tuple[int, ...]]] = {
            key[0]: (key[0], key, tuple(sorted(ids))) for key, ids in tables.pop(1, {}).items()
        }
        self._unigram_keys = frozenset(self._unigrams)
        self._ngrams: list[
            tuple[
                int,
                dict[tuple[str, ...], tuple[str, tuple[str, ...], tuple[int, ...]]],
                frozenset[tuple[str, ...]],
                frozenset[str],
            ]
        ] = []
        for length in sorted(tables):
            table = {
                key: (" ".join(key), key, tuple(sorted(ids))) for key, ids in tables[length].items()
            }
            firsts = frozenset(key[0] for key in table)
            self._ngrams.append((length, table, frozenset(table), firsts))
        self._negators = frozenset(negators)
        self._window = window

    def match(self, tokens: list[str]) -> dict[int, str]:
        """Group id -> the phrases of that group found in ``tokens``, for people to read:
        ``"'restore', 'timeout'"`` (sorted, at most three)."""
        if not tokens:
            return {}
        unigrams = self._unigrams
        found = [unigrams[word] for word in self._unigram_keys.intersection(tokens)]
        n = len(tokens)
        for length, table, keys, firsts in self._ngrams:
            if n < length:
                break
            if length > 2 and firsts.isdisjoint(tokens):
                continue  # no phrase of this length can start here: skip building the n-grams
            grams: Iterable[tuple[str, ...]]
            if length == 2:
                grams = zip(tokens, tokens[1:])  # noqa: RUF007 - zip of slices is faster
            elif length == 3:
                grams = zip(tokens, tokens[1:], tokens[2:])
            else:
                grams = zip(*(tokens[i:] for i in range(length)))
            found.extend(map(table.__getitem__, keys.intersection(grams)))
        hits: dict[int, list[str]] = {}
        if not found:
            return {}
        check_negation = self._window > 0 and not self._negators.isdisjoint(tokens)
        for text, gram, group_ids in found:
            if check_negation and self._negated(tokens, gram):
                continue
            for group_id in group_ids:
                phrases = hits.get(group_id)
                if phrases is None:
                    hits[group_id] = [text]
                else:
                    phrases.append(text)
        return {
            group: ", ".join([f"'{p}'" for p in sorted(set(phrases))[:3]])
            for group, phrases in hits.items()
        }

    def _negated(self, tokens: list[str], gram: tuple[str, ...]) -> bool:
        """True when every occurrence of ``gram`` has a negator just before it."""
        first, length, start = gram[0], len(gram), 0
        negators, window = self._negators, self._window
        while True:
            try:
                i = tokens.index(first, start)
            except ValueError:
                return True
            if tuple(tokens[i : i + length]) == gram and negators.isdisjoint(
                tokens[max(0, i - window) : i]
            ):
                return False
            start = i + 1
