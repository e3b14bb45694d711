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

__all__ = ["Line", "PhraseIndex", "inflections", "phrase_tokens", "tokenize"]

Line = tuple[tuple[str, ...], str | None, str | None, bool]
"""One line's phrases, first and last word, and whether it ends with a negator in reach."""

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
        # Every phrase variant as text ("restored", "end of life") -> its groups; a phrase of
        # several words is found as a token tuple, whose text is in ``_texts``.
        self._groups: dict[str, tuple[int, ...]] = {}
        self._texts: dict[tuple[str, ...], str] = {}
        for key, ids in tables.pop(1, {}).items():
            self._groups[key[0]] = tuple(sorted(ids))
        self._words = frozenset(self._groups)
        self._canonical = {word: word for word in self._words}
        pairs = tables.pop(2, {})
        for key, ids in pairs.items():
            self._texts[key] = " ".join(key)
            self._groups[self._texts[key]] = tuple(sorted(ids))
        self._pairs: frozenset[tuple[str, ...]] = frozenset(pairs)
        # Longer phrases: (length, token tuples, first tokens), and the first two tokens of each.
        self._longer: list[tuple[int, frozenset[tuple[str, ...]], frozenset[str]]] = []
        prefixes: set[tuple[str, ...]] = set()
        for length in sorted(tables):
            for key, ids in tables[length].items():
                self._texts[key] = " ".join(key)
                self._groups[self._texts[key]] = tuple(sorted(ids))
                prefixes.add(key[:2])
            keys = frozenset(tables[length])
            self._longer.append((length, keys, frozenset(key[0] for key in keys)))
        self._prefixes = frozenset(prefixes)
        # Every two adjacent words of a phrase: a phrase can span two lines only where the last
        # word of one and the first of the next are such a pair.
        self._joins = frozenset(
            pair
            for length, keys, _ in self._longer
            for key in keys
            for pair in zip(key, key[1:])  # noqa: RUF007
        ) | frozenset(pairs)
        self._starts = frozenset(self._pairs | self._prefixes)
        self._negators = frozenset(negators)
        self._window = window

    def match(self, tokens: list[str]) -> dict[int, str]:
        """Group id -> the phrases of that group found in ``tokens``, for people to read:
        ``"'restore', 'timeout'"`` (sorted, at most three)."""
        return self.describe(self.find(tokens))

    def find(self, tokens: list[str]) -> tuple[str, ...]:
        """The phrases present in ``tokens`` and not negated, as sorted text.

        The answer is the same for every text with the same phrases, so what follows from it
        (groups, rule evidence) can be remembered per answer rather than per text; and a tuple
        of strings costs the garbage collector nothing when it is remembered.
        """
        if not tokens:
            return ()
        words: Iterable[str] = self._words.intersection(tokens)
        grams: Iterable[tuple[str, ...]] = ()
        n = len(tokens)
        if n > 1 and self._starts:
            # Adjacent pairs that are two-word phrases or begin a longer phrase; most texts
            # have few or none, and only then are longer n-grams built.
            grams = self._starts.intersection(zip(tokens, tokens[1:]))  # noqa: RUF007
            if grams and not self._prefixes.isdisjoint(grams):
                longer: list[tuple[str, ...]] = []
                for length, keys, firsts in self._longer:
                    if n < length:
                        break
                    if firsts.isdisjoint(tokens):
                        continue
                    if length == 3:
                        longer.extend(keys.intersection(zip(tokens, tokens[1:], tokens[2:])))
                    else:
                        longer.extend(keys.intersection(zip(*(tokens[i:] for i in range(length)))))
                grams = [*self._pairs.intersection(grams), *longer]
        if not words and not grams:
            return ()
        if self._window > 0 and not self._negators.isdisjoint(tokens):
            negated = self._negated
            words = [word for word in words if not negated(tokens, (word,))]
            grams = [gram for gram in grams if not negated(tokens, gram)]
        # The index's own strings, not the text's: a remembered answer then keeps no token of
        # the text alive, and equal answers compare by identity.
        words = map(self._canonical.__getitem__, words)
        if grams:
            texts = self._texts
            return tuple(sorted([*words, *[texts[gram] for gram in grams]]))
        return tuple(sorted(words))

    def line(self, tokens: list[str]) -> Line:
        """:meth:`find` for one line of a text, with what :meth:`join` needs: the line's first
        and last word (``None`` when it has none) and whether a negator is among its last
        ``window`` words (it could negate a phrase on the next line)."""
        if not tokens:
            return (), None, None, False
        tail = self._window > 0 and not self._negators.isdisjoint(tokens[-self._window :])
        return self.find(tokens), tokens[0], tokens[-1], tail

    def join(self, lines: Iterable[Line]) -> tuple[str, ...] | None:
        """:meth:`find` of a text from its lines', or ``None`` when a phrase may span two lines
        or a negator at the end of a line may reach into the next (then find the whole text)."""
        found: list[tuple[str, ...]] = []
        last: str | None = None
        negating = False
        joins = self._joins
        for phrases, first, final, tail in lines:
            if first is None:
                continue
            if last is not None and (negating or (last, first) in joins):
                return None
            if phrases:
                found.append(phrases)
            last, negating = final, tail
        if len(found) > 1:
            return tuple(sorted(set().union(*found)))
        return found[0] if found else ()

    def describe(self, found: Iterable[str]) -> dict[int, str]:
        """:meth:`match`'s answer from :meth:`find`'s (groups in ascending order)."""
        hits: dict[int, list[str]] = {}
        groups = self._groups
        for text in found:
            for group_id in groups[text]:
                phrases = hits.get(group_id)
                if phrases is None:
                    hits[group_id] = [text]
                else:
                    phrases.append(text)
        return {
            group: ", ".join([f"'{p}'" for p in sorted(set(hits[group]))[:3]])
            for group in sorted(hits)
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
