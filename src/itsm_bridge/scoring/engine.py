"""The scoring engine: evidence from rules (and optionally a text model) combined as log-odds.

Each matching rule adds its signed weight; ``logit = prior + sum(weights)`` and
``p_business = 1 / (1 + exp(-logit))``. Thresholds turn ``p_business`` into a label. Every verdict
lists its reasons, strongest first; when nothing matched the prior itself is the reason.

Parent inheritance (an epic's or project's verdict passed to its children) is resolved over the
batch being scored, independent of the order of the items: a child waits until its parent has been
scored, and output keeps the input order. Parents outside the batch can be supplied (from the
store) as a mapping of key to verdict.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from itsm_bridge.schema import Kind, Label, Reason, ScoredItem, Verdict, WorkItem
from itsm_bridge.scoring._text import PhraseIndex, tokenize
from itsm_bridge.scoring.rules import Rule, RuleSet

if TYPE_CHECKING:
    from itsm_bridge.scoring.model import TextModel

__all__ = ["Scorer", "Thresholds", "score"]

P = TypeVar("P")

_MAX_LOGIT = 35.0
_MEMO_LIMIT = 50_000
_MEMO_TEXT_CHARS = 1_000  # long texts rarely repeat; not keeping them bounds the memo's memory
_NO_HITS: dict[int, str] = {}

K = TypeVar("K")
V = TypeVar("V")


def _remember(memo: dict[K, V], key: K, value: V) -> None:
    """Store in a bounded memo (cleared when full: cheap, and correct because it is a cache)."""
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    memo[key] = value


@dataclass(frozen=True, slots=True)
class Thresholds:
    """``p_business >= business``: business-facing; ``<= inward``: inward-facing; else undetermined.

    Equal thresholds (0.5, 0.5) force a decision for every item except an exact tie.
    """

    business: float = 0.6
    inward: float = 0.4

    def __post_init__(self) -> None:
        if not (0.0 <= self.inward <= self.business <= 1.0):
            raise ValueError("thresholds need 0 <= inward <= business <= 1")

    def label(self, p: float) -> Label:
        if p >= self.business and p > self.inward:
            return Label.BUSINESS
        if p <= self.inward and p < self.business:
            return Label.INWARD
        return Label.UNDETERMINED


def _logistic(z: float) -> float:
    z = max(-_MAX_LOGIT, min(_MAX_LOGIT, z))
    return 1.0 / (1.0 + math.exp(-z))


def _logit(p: float) -> float:
    p = min(max(p, 1e-15), 1 - 1e-15)
    return math.log(p / (1 - p))


@dataclass(slots=True)
class _FieldCheck:
    """Every equals/regex rule on one field path, checked with one read of the value."""

    path: str
    keys: tuple[str, ...]  # the path below its head ("extra.investment.x" -> ("investment", "x"))
    equals: dict[str, list[int]]
    regexes: list[tuple[int, re.Pattern[str]]]
    memo: dict[str, tuple[tuple[int, float, str], ...]] = field(default_factory=dict)


def _values(value: Any) -> list[str]:
    """A field's value(s) as text (lists give one value per element; booleans true/false)."""
    if type(value) is str:
        return [value]
    if isinstance(value, (list, tuple, set, frozenset)):
        out: list[str] = []
        for element in value:
            out.extend(_values(element))
        return out
    if value is None:
        return []
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, Kind | Label):
        return [value.value]
    return [str(value)]


@dataclass(frozen=True, slots=True)
class _TextRule:
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
    ) -> _TextRule:
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


@dataclass(frozen=True, slots=True)
class _Evidence:
    logit: float
    verdict: Verdict


class _Compiled:
    """A rule set turned into lookup tables, built once per Scorer.

    Text rules share one :class:`PhraseIndex`; field rules are grouped by field so each field is
    read once per item; kind rules are a dict lookup. No per-rule loop over an item's text.
    """

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
        self.text_rules: list[_TextRule] = []
        self.text_by_atom: dict[int, list[_TextRule]] = {}
        self.top_checks: list[tuple[str, _FieldCheck]] = []
        self.extra_checks: dict[str, list[_FieldCheck]] = {}
        self.kind_rules: dict[Kind, list[tuple[int, float, str]]] = {}
        self.parent_rules: list[int] = []
        checks: dict[str, _FieldCheck] = {}

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

        def check(path: str) -> _FieldCheck:
            if path not in checks:
                head, _, rest = path.partition(".")
                keys = tuple(rest.split(".")) if rest else ()
                checks[path] = _FieldCheck(path, keys, {}, [])
                if head == "extra":
                    self.extra_checks.setdefault(keys[0], []).append(checks[path])
                else:
                    self.top_checks.append((head, checks[path]))
            return checks[path]

        for index, rule in enumerate(self.rules):
            kind = rule.match_type
            if kind == "phrases":
                text_rule = _TextRule.build(
                    index,
                    rule,
                    spec(rule.phrases, rule.inflect),
                    spec(rule.and_phrases, rule.inflect),
                    spec(rule.not_phrases, rule.inflect),
                )
                self.text_rules.append(text_rule)
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


class Scorer:
    """Scores WorkItems with a rule set and, optionally, a learned text model.

    ``rules=None`` uses the default rules (a path loads a rules file on top of them);
    ``thresholds`` defaults to the rule set's settings.
    ``model_weight`` scales the model's log-odds before they join the rules' evidence.
    """

    def __init__(
        self,
        rules: RuleSet | str | Path | None = None,
        model: TextModel | None = None,
        thresholds: Thresholds | None = None,
        *,
        model_weight: float = 1.0,
    ) -> None:
        self.rules = rules if isinstance(rules, RuleSet) else RuleSet.load(rules)
        self.model = model
        self.model_weight = model_weight
        settings = self.rules.settings
        self.thresholds = thresholds or Thresholds(
            settings.business_threshold, settings.inward_threshold
        )
        self._c = _Compiled(self.rules)
        self._reasons: dict[tuple[str, float, str], Reason] = {}
        self._hits_memo: dict[str, dict[int, str]] = {}
        self._text_memo: dict[tuple[str, str | None], dict[int, tuple[float, str]]] = {}

    @property
    def version(self) -> str:
        """Rule-set version, plus the model's fingerprint when a model is combined."""
        if self.model is None:
            return self.rules.version
        return f"{self.rules.version}+{self.model.fingerprint}"

    # -- one item ------------------------------------------------------------------------------

    def score_one(
        self, item: WorkItem, parent: Verdict | ScoredItem | float | None = None
    ) -> ScoredItem:
        """Score one item; ``parent`` is its parent's verdict (or evidence log-odds) if known."""
        parent_evidence: tuple[str, float] | None = None
        if parent is not None:
            parent_evidence = (self._parent_ref(item) or "parent", self._parent_logit(parent))
        return _attach(item, self._evaluate(item, parent_evidence).verdict)

    def verdict(
        self, item: WorkItem, parent: Verdict | ScoredItem | float | None = None
    ) -> Verdict:
        """The verdict alone (no copy of the item)."""
        return self.score_one(item, parent).scoring

    def _parent_logit(self, parent: Verdict | ScoredItem | float) -> float:
        if isinstance(parent, ScoredItem):
            parent = parent.scoring
        if isinstance(parent, Verdict):
            return _logit(parent.p_business) - self._c.prior
        return float(parent)

    # -- batches -------------------------------------------------------------------------------

    def score(
        self, items: Iterable[WorkItem], *, parents: Mapping[str, Verdict | float] | None = None
    ) -> Iterator[ScoredItem]:
        """Score a stream of items in input order, resolving parent inheritance over the batch.

        A child whose parent comes later in the stream is held back until the parent is scored
        (so memory grows only with such children). ``parents`` supplies verdicts for parents
        that are not in the batch (from a store); they are used only when the batch lacks them.
        """
        for _, item, verdict in self._resolve(((None, it) for it in items), parents):
            yield _attach(item, verdict)

    def score_pairs(
        self,
        pairs: Iterable[tuple[P, WorkItem]],
        *,
        parents: Mapping[str, Verdict | float] | None = None,
    ) -> Iterator[tuple[P, WorkItem, Verdict]]:
        """Like :meth:`score` for ``(payload, item)`` pairs; yields ``(payload, item, verdict)``."""
        return self._resolve(pairs, parents)

    def _resolve(
        self,
        pairs: Iterable[tuple[P, WorkItem]],
        parents: Mapping[str, Verdict | float] | None,
    ) -> Iterator[tuple[P, WorkItem, Verdict]]:
        queue: deque[list[Any]] = deque()  # [payload, item, verdict | None, parent key]
        done: dict[str, float] = {}  # key -> evidence log-odds (prior excluded)
        waiting: dict[str, list[list[Any]]] = {}
        prior = self._c.prior
        evaluate = self._evaluate
        for payload, item in pairs:
            parent_key = self._parent_ref(item)
            if not queue and (parent_key is None or parent_key in done):
                # Fast path: nothing is held back (so no child waits for this item either).
                evidence = evaluate(
                    item, None if parent_key is None else (parent_key, done[parent_key])
                )
                if item.key not in done:
                    done[item.key] = evidence.logit - prior
                yield payload, item, evidence.verdict
                continue
            slot: list[Any] = [payload, item, None, parent_key]
            queue.append(slot)
            if parent_key is None:
                self._finish(slot, None, done, waiting)
            elif parent_key in done:
                self._finish(slot, (parent_key, done[parent_key]), done, waiting)
            else:
                waiting.setdefault(parent_key, []).append(slot)
            while queue and queue[0][2] is not None:
                head = queue.popleft()
                yield head[0], head[1], head[2]
        if waiting:
            self._drain(waiting, done, parents or {})
        while queue:
            head = queue.popleft()
            yield head[0], head[1], head[2]

    def _finish(
        self,
        slot: list[Any],
        parent: tuple[str, float] | None,
        done: dict[str, float],
        waiting: dict[str, list[list[Any]]],
    ) -> None:
        stack = [(slot, parent)]
        while stack:
            current, parent_evidence = stack.pop()
            evidence = self._evaluate(current[1], parent_evidence)
            current[2] = evidence.verdict
            key = current[1].key
            if key not in done:
                done[key] = evidence.logit - self._c.prior
                for child in waiting.pop(key, ()):
                    stack.append((child, (key, done[key])))

    def _drain(
        self,
        waiting: dict[str, list[list[Any]]],
        done: dict[str, float],
        external: Mapping[str, Verdict | float],
    ) -> None:
        """Finish children whose parent never came: external parents first, then cycles."""
        pending = {slot[1].key for slots in waiting.values() for slot in slots}
        for parent_key in sorted(k for k in waiting if k not in pending):
            known = external.get(parent_key)
            evidence = None if known is None else (parent_key, self._parent_logit(known))
            for slot in waiting.pop(parent_key):
                self._finish(slot, evidence, done, waiting)
        if not waiting:
            return
        # What remains are parent cycles (A -> B -> A) and their descendants. Every member of a
        # cycle is scored without parent evidence, so the result does not depend on input order.
        parent_of = {slot[1].key: slot[3] for slots in waiting.values() for slot in slots}
        in_cycle: set[str] = set()
        for start in sorted(parent_of):
            path: list[str] = []
            node: str | None = start
            while node is not None and node in parent_of and node not in path:
                path.append(node)
                node = parent_of[node]
            if node is not None and node in path:
                in_cycle.update(path[path.index(node) :])
        members = [slot for slots in waiting.values() for slot in slots if slot[1].key in in_cycle]
        for slots in waiting.values():
            slots[:] = [slot for slot in slots if slot[1].key not in in_cycle]
        logits: dict[str, float] = {}
        for slot in members:
            scored = self._evaluate(slot[1], None)
            slot[2] = scored.verdict
            logits.setdefault(slot[1].key, scored.logit - self._c.prior)
        for key, logit in logits.items():
            done.setdefault(key, logit)
        for slot in members:
            for child in waiting.pop(slot[1].key, ()):
                self._finish(child, (slot[1].key, done[slot[1].key]), done, waiting)
        waiting.clear()

    @staticmethod
    def _parent_ref(item: WorkItem) -> str | None:
        parent = item.parent_key
        if not parent:
            extra = item.extra
            # A change linked to a project or demand is that project's work (its "parent").
            parent = extra.get("linked_project") or extra.get("linked_demand") if extra else None
            if not isinstance(parent, str):
                return None
        return parent if parent and parent != item.key else None

    # -- evidence ------------------------------------------------------------------------------

    def _evaluate(self, item: WorkItem, parent: tuple[str, float] | None) -> _Evidence:
        c = self._c
        rules = c.rules
        found: dict[int, tuple[float, str]] = {}
        fields = item.__dict__
        kind = fields["kind"]

        # Text: one tokenisation per field, every phrase of every rule at once. Work records
        # repeat their titles and templates a lot, so results are memoised per text.
        if c.has_text:
            title = fields["title"]
            description = fields["description"]
            text_key = (title, description)
            text_found = self._text_memo.get(text_key)
            if text_found is None:
                text_found = {}
                title_hits = self._hits(title) if title else _NO_HITS
                desc_hits = self._hits(description[: c.max_chars]) if description else _NO_HITS
                if title_hits or desc_hits:
                    self._text_evidence(title_hits, desc_hits, text_found)
                if description is None or len(description) <= _MEMO_TEXT_CHARS:
                    _remember(self._text_memo, text_key, text_found)
            if text_found:
                found.update(text_found)

        for name, check in c.top_checks:
            value = fields.get(name)
            if value is None or value == ():
                continue
            if type(value) is str:  # the common case, inlined: one memo lookup
                matched = check.memo.get(value)
                if matched is None:
                    matched = self._match_field(check, value)
                    _remember(check.memo, value, matched)
                for index, weight, evidence in matched:
                    if index not in found:
                        found[index] = (weight, evidence)
            else:
                self._field_evidence(check, value, found)
        extra = fields["extra"]
        if extra and c.extra_checks:
            for first, extra_checks in c.extra_checks.items():
                top = extra.get(first)
                if top is None:
                    continue
                for check in extra_checks:
                    value = top
                    for key in check.keys[1:]:
                        value = value.get(key) if isinstance(value, Mapping) else None
                    if value is not None:
                        self._field_evidence(check, value, found)
        for index, weight, evidence in c.kind_rules.get(kind, ()):
            found[index] = (weight, evidence)

        entries: list[tuple[str, str, float, str]] = []
        kind_filter, meta = c.kind_filter, c.meta
        for index, (weight, evidence) in found.items():
            allowed = kind_filter[index]
            if allowed is not None and kind not in allowed:
                continue
            signal, rule_id = meta[index]
            entries.append((signal, rule_id, weight, evidence))
        if self.model is not None and self.model_weight:
            model_logit, evidence = self.model.explain(fields["title"], fields["description"])
            entries.append(("model", "model", self.model_weight * model_logit, evidence))

        caps = c.caps
        scale: dict[str, float] = {}
        if caps and entries:
            subtotals: dict[str, float] = {}
            for signal, _, weight, _ in entries:
                subtotals[signal] = subtotals.get(signal, 0.0) + weight
            for signal, subtotal in subtotals.items():
                limit = caps.get(signal)
                if limit and abs(subtotal) > limit:
                    # Correlated evidence of one kind must not stack without bound: scale it to
                    # the signal's cap, so the reasons still add up to the log-odds.
                    scale[signal] = limit / abs(subtotal)
        total = 0.0
        ranked: list[tuple[float, str, float, str]] = []
        for signal, rule_id, weight, evidence in entries:
            if scale and signal in scale:
                weight *= scale[signal]
            total += weight
            ranked.append((-abs(weight), rule_id, weight, evidence))
        if parent is not None and c.parent_rules:
            for index in c.parent_rules:
                allowed = kind_filter[index]
                if allowed is None or kind in allowed:
                    inherited = self._inherited(index, parent, total)
                    if inherited is not None:
                        total += inherited[0]
                        ranked.append((-abs(inherited[0]), rules[index].id, *inherited))
        logit = c.prior + total
        if not ranked:
            ranked.append((0.0, "prior", c.prior, "no rule matched: the prior (base rate) alone"))
        elif len(ranked) > 1:
            ranked.sort()  # strongest first; ties by rule id, so the order is deterministic
        reason = self._reason
        reasons = [reason(rule_id, weight, evidence) for _, rule_id, weight, evidence in ranked]
        p = _logistic(logit)
        verdict = _construct(
            Verdict,
            {
                "label": self.thresholds.label(p),
                "p_business": round(p, 6),
                "reasons": tuple(reasons),
            },
        )
        return _Evidence(logit, verdict)

    def _inherited(
        self, index: int, parent: tuple[str, float], own: float
    ) -> tuple[float, str] | None:
        """The parent's evidence passed to a child: capped at the rule's weight, and faded out
        when the child's own evidence disagrees strongly (at ``strong_evidence`` it is gone)."""
        parent_key, parent_logit = parent
        cap = abs(self._c.rules[index].weight)
        inherited = max(-cap, min(cap, parent_logit))
        if not inherited:
            return None
        strong = self._c.strong_evidence
        note = ""
        if own * inherited < 0 and strong > 0:
            keep = max(0.0, 1.0 - abs(own) / strong)
            if keep < 1.0:
                note = f", faded to {keep:.0%} by the item's own evidence {own:+.2f}"
            inherited *= keep
            if not inherited:
                return None
        side = "business-facing" if parent_logit > 0 else "inward-facing"
        return inherited, f"parent {parent_key} leans {side} (evidence {parent_logit:+.2f}{note})"

    def _hits(self, text: str) -> dict[int, str]:
        hits = self._hits_memo.get(text)
        if hits is None:
            hits = self._c.phrases.match(tokenize(text))
            if len(text) <= _MEMO_TEXT_CHARS:
                _remember(self._hits_memo, text, hits)
        return hits

    def _field_evidence(
        self, check: _FieldCheck, value: Any, found: dict[int, tuple[float, str]]
    ) -> None:
        for text in _values(value):
            matched = check.memo.get(text)
            if matched is None:
                matched = self._match_field(check, text)
                _remember(check.memo, text, matched)
            for index, weight, evidence in matched:
                if index not in found:
                    found[index] = (weight, evidence)

    def _match_field(self, check: _FieldCheck, text: str) -> tuple[tuple[int, float, str], ...]:
        rules = self._c.rules
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
        return tuple(out)

    def _text_evidence(
        self,
        title_hits: dict[int, str],
        desc_hits: dict[int, str],
        found: dict[int, tuple[float, str]],
    ) -> None:
        """Text rules: full weight when the title alone matches (the title states the work),
        ``description_factor`` times the weight when the match needs the description."""
        c = self._c
        by_atom = c.text_by_atom
        candidates: dict[int, _TextRule] = {}
        for atom in title_hits:
            for text_rule in by_atom.get(atom, ()):
                candidates[text_rule.index] = text_rule
        for atom in desc_hits:
            for text_rule in by_atom.get(atom, ()):
                candidates[text_rule.index] = text_rule
        from_description: list[int] = []
        # Rule order, not the order phrases came out of a set (that follows PYTHONHASHSEED): the
        # floating-point sums below, and so the last digits of the weights and the order of
        # near-equal reasons, must not change from one process to the next.
        for index in sorted(candidates):
            t = candidates[index]
            if (
                t.use_title
                and not t.main.isdisjoint(title_hits)
                and (not t.also or not t.also.isdisjoint(title_hits))
                and t.unless.isdisjoint(title_hits)
            ):
                found[index] = (t.rule.weight, _describe("title", title_hits, t))
                continue
            if not desc_hits or not t.use_description:
                continue
            hits = {**desc_hits, **title_hits} if t.use_title else desc_hits
            if (
                not t.main.isdisjoint(hits)
                and (not t.also or not t.also.isdisjoint(hits))
                and t.unless.isdisjoint(hits)
            ):
                found[index] = (
                    t.rule.weight * c.description_factor,
                    _describe("description", hits, t),
                )
                from_description.append(index)
        if from_description and c.description_cap:
            # A long description (issue templates, logs, pasted mails) matches many phrases; it
            # is context, the title states the work, so its evidence together is bounded.
            subtotal = sum(found[i][0] for i in from_description)
            if abs(subtotal) > c.description_cap:
                scale = c.description_cap / abs(subtotal)
                for i in from_description:
                    weight, evidence = found[i]
                    found[i] = (weight * scale, evidence)

    def _reason(self, rule: str, weight: float, evidence: str) -> Reason:
        key = (rule, weight, evidence)
        reason = self._reasons.get(key)
        if reason is None:
            values = {"rule": rule, "weight": round(weight, 4), "evidence": evidence}
            reason = _construct(Reason, values)
            _remember(self._reasons, key, reason)
        return reason


def _describe(where: str, hits: Mapping[int, str], rule: _TextRule) -> str:
    text = ", ".join([hits[atom] for atom in rule.main_order if atom in hits])
    if rule.also:
        text += " with " + ", ".join([hits[atom] for atom in rule.also_order if atom in hits])
    return f"{where}: {text}"


_M = TypeVar("_M", bound=BaseModel)


def _construct(cls: type[_M], data: dict[str, Any]) -> _M:
    """A pydantic model from trusted, complete field values without validation.

    ``model_construct`` does the same but walks every field for defaults and aliases; this is
    the scoring loop's hottest allocation. Every field must be present in ``data``; a test
    checks the result equals the validated model.
    """
    obj = cls.__new__(cls)
    object.__setattr__(obj, "__dict__", data)
    object.__setattr__(obj, "__pydantic_fields_set__", set(data))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


def _attach(item: WorkItem, verdict: Verdict) -> ScoredItem:
    data = dict(item.__dict__)
    data["scoring"] = verdict
    return _construct(ScoredItem, data)


def score(
    items: Iterable[WorkItem],
    rules: RuleSet | str | Path | None = None,
    model: TextModel | None = None,
    *,
    thresholds: Thresholds | None = None,
    parents: Mapping[str, Verdict | float] | None = None,
) -> Iterator[ScoredItem]:
    """Score work items: ``ib.score(items)`` with the default rules, or your own and a model.

    ``rules`` may be a :class:`RuleSet` or the path of a rules file extending the defaults.
    Items come back in input order, as :class:`~itsm_bridge.schema.ScoredItem`.
    """
    return Scorer(rules, model, thresholds).score(items, parents=parents)
