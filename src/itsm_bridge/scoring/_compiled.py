"""A rule set turned into lookup tables, built once per Scorer.

Text rules share one :class:`PhraseIndex`; field rules are grouped by field so each field is
read once per item; kind rules are a dict lookup. No per-rule loop over an item's text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from itsm_bridge.schema import Kind, Label
from itsm_bridge.scoring._text import PhraseIndex
from itsm_bridge.scoring.rules import Rule, RuleSet

Group = tuple[Any, ...]
"""Matches of one text or field: an id naming them in memo keys, then ``(rule index, weight,
evidence)`` for each rule matched, in the order the rules take effect. (Two levels deep at
most: the garbage collector stops tracking such tuples.)"""

NO_GROUP: Group = (-1,)


@dataclass(slots=True)
class FieldCheck:
    """Every equals/regex rule on one field path, checked with one read of the value."""

    path: str
    keys: tuple[str, ...]  # the path below its head ("extra.investment.x" -> ("investment", "x"))
    equals: dict[str, list[int]]
    regexes: list[tuple[int, re.Pattern[str]]]
    memo: dict[str, Group] = field(default_factory=dict)  # value -> its matches


@dataclass(frozen=True, slots=True)
class TextRule:
    index: int
    rule: Rule
    main: frozenset[int]
    also: frozenset[int]
    unless: frozenset[int]

    main_order: tuple[int, ...] = ()
    also_order: tuple[int, ...] = ()
    use_title: bool = True
    use_description: bool = True

    @classmethod
    def build(
        cls,
        index: int,
        rule: Rule,
        main: frozenset[int],
        also: frozenset[int],
        unless: frozenset[int],
    ) -> TextRule:
        return cls(
            index,
            rule,
            main,
            also,
            unless,
            tuple(sorted(main)),
            tuple(sorted(also)),
            "title" in rule.fields,
            "description" in rule.fields,
        )

    def matches(self, hits: Mapping[int, str]) -> bool:
        """True when the phrase groups in ``hits`` satisfy this rule."""
        return (
            not self.main.isdisjoint(hits)
            and (not self.also or not self.also.isdisjoint(hits))
            and self.unless.isdisjoint(hits)
        )

    def describe(self, where: str, hits: Mapping[int, str]) -> str:
        text = ", ".join([hits[atom] for atom in self.main_order if atom in hits])
        if self.also:
            text += " with " + ", ".join([hits[atom] for atom in self.also_order if atom in hits])
        return f"{where}: {text}"


class Compiled:
    """The lookup tables of one rule set (see the module docstring)."""

    def __init__(self, rules: RuleSet) -> None:
        settings = rules.settings
        self.prior = settings.prior
        self.caps = dict(settings.caps)
        self.description_factor = settings.description_factor
        self.max_chars = settings.max_text_chars
        self.strong_evidence = settings.strong_evidence
        self.description_cap = settings.description_cap
        self.rules: list[Rule] = list(rules.enabled_rules)
        # A phrase "atom" is one lexicon list (or one rule's literal phrases): shared by every
        # rule that names it, so a phrase found in the text is looked up once, not per rule.
        atoms: dict[tuple[Any, ...], int] = {}
        groups: list[tuple[tuple[str, ...], bool]] = []
        # text rules: (rule index, atoms of phrases, of and_phrases, of not_phrases)
        self.text_rules: list[TextRule] = []
        self.text_by_atom: dict[int, list[TextRule]] = {}
        self.text_rule_at: dict[int, TextRule] = {}
        self.top_checks: list[tuple[str, FieldCheck]] = []
        self.extra_checks: dict[str, list[FieldCheck]] = {}
        self.kind_rules: dict[Kind, list[tuple[int, float, str]]] = {}
        self.parent_rules: list[int] = []
        checks: dict[str, FieldCheck] = {}

        def spec(phrases: tuple[str, ...], inflect: bool) -> frozenset[int]:
            keys: list[tuple[Any, ...]] = [(p, inflect) for p in phrases if p.startswith("@")]
            literal = tuple(sorted(p for p in phrases if not p.startswith("@")))
            if literal:
                keys.append((literal, inflect))
            out = set()
            for key in keys:
                if key not in atoms:
                    atoms[key] = len(groups)
                    words = rules.expand((key[0],)) if isinstance(key[0], str) else key[0]
                    groups.append((words, inflect))
                out.add(atoms[key])
            return frozenset(out)

        def check(path: str) -> FieldCheck:
            if path not in checks:
                head, _, rest = path.partition(".")
                keys = tuple(rest.split(".")) if rest else ()
                checks[path] = FieldCheck(path, keys, {}, [])
                if head == "extra":
                    self.extra_checks.setdefault(keys[0], []).append(checks[path])
                else:
                    self.top_checks.append((head, checks[path]))
            return checks[path]

        for index, rule in enumerate(self.rules):
            kind = rule.match_type
            if kind == "phrases":
                text_rule = TextRule.build(
                    index,
                    rule,
                    spec(rule.phrases, rule.inflect),
                    spec(rule.and_phrases, rule.inflect),
                    spec(rule.not_phrases, rule.inflect),
                )
                self.text_rules.append(text_rule)
                self.text_rule_at[index] = text_rule
                for atom in text_rule.main:
                    self.text_by_atom.setdefault(atom, []).append(text_rule)
            elif kind == "equals":
                assert rule.field is not None
                table = check(rule.field).equals
                for value in rule.equals:
                    table.setdefault(value, []).append(index)
            elif kind == "services":
                table = check("service").equals
                for name in rule.services:
                    table.setdefault(name.strip().lower(), []).append(index)
            elif kind == "regex":
                assert rule.field is not None
                assert rule.regex is not None
                check(rule.field).regexes.append((index, re.compile(rule.regex)))
            elif kind == "kinds":
                assert rule.kinds is not None
                for k in rule.kinds:
                    entry = (index, rule.weight, f"kind = {k.value}")
                    self.kind_rules.setdefault(k, []).append(entry)
            else:
                self.parent_rules.append(index)
        self.phrases = PhraseIndex(
            groups, negators=settings.negators, window=settings.negation_window
        )
        self.has_text = bool(self.text_rules)
        # Per rule index: (signal, id), and the kinds a non-kind rule is restricted to.
        self.meta = [(rule.signal, rule.id) for rule in self.rules]
        self.kind_filter = [
            rule.kinds if rule.kinds is not None and rule.match_type != "kinds" else None
            for rule in self.rules
        ]
        # The extra checks with the keys below their head ((check, ()) for a top-level value).
        self.extra_paths = [
            (first, [(check, check.keys[1:]) for check in checks])
            for first, checks in self.extra_checks.items()
        ]

    def match_field(self, check: FieldCheck, text: str) -> list[tuple[int, float, str]]:
        """The equals and regex rules of ``check`` that one value matches."""
        rules = self.rules
        out: list[tuple[int, float, str]] = []
        if check.equals:
            normal = text.strip().lower()
            for index in check.equals.get(normal, ()):
                out.append((index, rules[index].weight, f"{check.path} = {normal!r}"))
        for index, pattern in check.regexes:
            m = pattern.search(text)
            if m:
                evidence = f"{check.path} {text!r} matches {m.group(0)!r}"
                out.append((index, rules[index].weight, evidence))
        return out


def field_values(value: Any) -> list[str]:
    """A field's value(s) as text (lists give one value per element; booleans true/false)."""
    if type(value) is str:
        return [value]
    if isinstance(value, (list, tuple, set, frozenset)):
        out: list[str] = []
        for element in value:
            out.extend(field_values(element))
        return out
    if value is None:
        return []
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, Kind | Label):
        return [value.value]
    return [str(value)]
