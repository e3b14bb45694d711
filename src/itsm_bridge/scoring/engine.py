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

import itertools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
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
_NOTHING: tuple[str, ...] = ()
_TextFound = tuple[tuple[int, float, str], ...]  # (rule index, weight, evidence), in rule order
_Group = tuple[_TextFound, int]  # matches and their id (see Scorer._group)
_NO_GROUP: _Group = ((), -1)

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
    memo: dict[str, _Group] = field(default_factory=dict)


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


class _Reasons(dict[tuple[float, str, float, str], int]):
    """Ranked evidence ``(-|weight|, rule, weight, evidence)`` -> index of its Reason in
    ``objects``: one Reason per distinct reason, made on first use (``__missing__``)."""

    def __init__(self) -> None:
        super().__init__()
        self.objects: list[Reason] = []

    def __missing__(self, key: tuple[float, str, float, str]) -> int:
        _, rule, weight, evidence = key
        values = {"rule": rule, "weight": round(weight, 4), "evidence": evidence}
        self[key] = index = len(self.objects)
        self.objects.append(_construct(Reason, values, _REASON_FIELDS))
        return index


# An item's evidence as plain data: its total and unsorted reasons (so a parent's share can be
# added), the log-odds (prior included), the label (index in _LABELS), p_business, and the
# reasons strongest first: as indexes into Scorer._reasons.objects and as ranked entries.
_Ranked = tuple[float, str, float, str]  # (-|weight|, rule id, weight, evidence)
_Own = tuple[float, tuple[_Ranked, ...], float, int, float, tuple[int, ...], tuple[_Ranked, ...]]
_LABELS = tuple(Label)
_LABEL_INDEX = {label: index for index, label in enumerate(_LABELS)}


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
        self.text_rule_at: dict[int, _TextRule] = {}
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


class _Held:
    """Items held back to keep the input order, in parallel lists from position ``head`` on.

    One list per field rather than one object per item: a batch whose first child precedes its
    parent holds nearly everything, and millions of small containers would make the garbage
    collector's full passes (over the caller's items too) dominate the run.
    """

    __slots__ = ("head", "items", "owns", "parents", "payloads")

    def __init__(self) -> None:
        self.head = 0
        self.payloads: list[Any] = []
        self.items: list[Any] = []  # WorkItem (None once it has left)
        self.owns: list[Any] = []  # its evidence (_Own) once worked out, else None
        self.parents: list[str | None] = []

    def clear(self) -> None:
        """Called when everything held has left: positions start again at 0."""
        self.head = 0
        self.payloads.clear()
        self.items.clear()
        self.owns.clear()
        self.parents.clear()

    def pop(self, verdict: Callable[[_Own], Verdict]) -> tuple[Any, WorkItem, Verdict]:
        """The first held item, finished, with its verdict; its slots are emptied."""
        i = self.head
        own = self.owns[i]
        assert own is not None
        out = (self.payloads[i], self.items[i], verdict(own))
        self.payloads[i] = self.items[i] = self.owns[i] = None
        self.head = i + 1
        return out


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
        self._find = self._c.phrases.find
        # Memos hold only strings, numbers and tuples or dicts of them, which the garbage
        # collector stops tracking: large memos do not make its full collections slower (a
        # memo of objects, such as one verdict per distinct evidence, did, by more than it
        # saved). Reasons are the exception: one per distinct reason, referred to by index.
        self._reasons = _Reasons()
        self._hits_memo: dict[str, tuple[str, ...]] = {}
        self._groups_memo: dict[tuple[str, ...], tuple[dict[int, str], tuple[int, ...]]] = {}
        self._title_memo: dict[
            tuple[str, ...],
            tuple[dict[int, str], tuple[int, ...], dict[int, tuple[float, str]]],
        ] = {}
        self._evidence_memo: dict[tuple[tuple[str, ...], tuple[str, ...]], _Group] = {}
        self._group_ids: dict[_TextFound, int] = {}
        self._next_id = itertools.count()
        # Items with the same matches (text, fields, kind) share their own evidence.
        self._own_memo: dict[tuple[Any, ...], _Own] = {}

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
        return _attach(item, self._verdict(self._evaluate(item, parent_evidence)))

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
        attach = _attach
        for _, item, verdict in self._resolve(zip(itertools.repeat(None), items), parents):
            yield attach(item, verdict)

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
        held = _Held()
        done: dict[str, float] = {}  # key -> evidence log-odds (prior excluded)
        waiting: dict[str, list[int]] = {}  # parent key -> positions in `held` of its children
        prior = self._c.prior
        evaluate = self._evaluate
        parent_ref = self._parent_ref
        verdict = self._verdict
        later = self._held_verdict
        payloads, items, owns, parent_keys = held.payloads, held.items, held.owns, held.parents
        for payload, item in pairs:
            parent_key = parent_ref(item)
            if held.head == len(items):
                if parent_key is None or parent_key in done:
                    # Fast path: nothing is held back (so no child waits for this item either).
                    own = evaluate(
                        item, None if parent_key is None else (parent_key, done[parent_key])
                    )
                    key = item.key
                    if key not in done:
                        done[key] = own[2] - prior
                    yield payload, item, verdict(own)
                    continue
                held.clear()
            position = len(items)
            payloads.append(payload)
            items.append(item)
            owns.append(None)
            parent_keys.append(parent_key)
            if parent_key is None:
                self._finish(position, None, held, done, waiting)
            elif parent_key in done:
                self._finish(position, (parent_key, done[parent_key]), held, done, waiting)
            else:
                waiting.setdefault(parent_key, []).append(position)
            while held.head < len(items) and owns[held.head] is not None:
                yield held.pop(later)
        if waiting:
            self._drain(waiting, held, done, parents or {})
        while held.head < len(items):
            yield held.pop(later)

    def _finish(
        self,
        position: int,
        parent: tuple[str, float] | None,
        held: _Held,
        done: dict[str, float],
        waiting: dict[str, list[int]],
    ) -> None:
        stack = [(position, parent)]
        while stack:
            current, parent_evidence = stack.pop()
            item = held.items[current]
            held.owns[current] = own = self._evaluate(item, parent_evidence)
            key = item.key
            if key not in done:
                done[key] = own[2] - self._c.prior
                for child in waiting.pop(key, ()):
                    stack.append((child, (key, done[key])))

    def _drain(
        self,
        waiting: dict[str, list[int]],
        held: _Held,
        done: dict[str, float],
        external: Mapping[str, Verdict | float],
    ) -> None:
        """Finish children whose parent never came: external parents first, then cycles."""
        items = held.items
        pending = {items[i].key for positions in waiting.values() for i in positions}
        for parent_key in sorted(k for k in waiting if k not in pending):
            known = external.get(parent_key)
            evidence = None if known is None else (parent_key, self._parent_logit(known))
            for i in waiting.pop(parent_key):
                self._finish(i, evidence, held, done, waiting)
        if not waiting:
            return
        # What remains are parent cycles (A -> B -> A) and their descendants. Every member of a
        # cycle is scored without parent evidence, so the result does not depend on input order.
        parent_of = {items[i].key: held.parents[i] for pos in waiting.values() for i in pos}
        in_cycle: set[str] = set()
        for start in sorted(parent_of):
            path: list[str] = []
            node: str | None = start
            while node is not None and node in parent_of and node not in path:
                path.append(node)
                node = parent_of[node]
            if node is not None and node in path:
                in_cycle.update(path[path.index(node) :])
        members = [i for pos in waiting.values() for i in pos if items[i].key in in_cycle]
        for positions in waiting.values():
            positions[:] = [i for i in positions if items[i].key not in in_cycle]
        logits: dict[str, float] = {}
        for i in members:
            held.owns[i] = own = self._evaluate(items[i], None)
            logits.setdefault(items[i].key, own[2] - self._c.prior)
        for key, logit in logits.items():
            done.setdefault(key, logit)
        for i in members:
            key = items[i].key
            for child in waiting.pop(key, ()):
                self._finish(child, (key, done[key]), held, done, waiting)
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

    def _evaluate(self, item: WorkItem, parent: tuple[str, float] | None) -> _Own:
        """The item's evidence: what its fields match, then (remembered per distinct set of
        matches) the capped, ranked verdict, then the parent's share if it has one."""
        c = self._c
        fields = item.__dict__
        kind = fields["kind"]
        # The matches in the order they take effect (text rules, field rules: top-level fields,
        # then extra) and, as the memo key, each group's id with the kind (and the model's part).
        groups: list[_TextFound] = []
        key: list[Any] = [kind._value_]

        # Text: one tokenisation per field, every phrase of every rule at once. The phrases
        # found are remembered per text (titles repeat a lot), the rules' evidence per pair of
        # phrase sets (which repeat far more than texts do).
        if c.has_text:
            phrases = self._hits_memo
            title = fields["title"]
            if title:
                title_found = phrases.get(title)
                if title_found is None:
                    title_found = self._phrases_in(title)
            else:
                title_found = _NOTHING
            description = fields["description"]
            if description:
                description = description[: c.max_chars]
                desc_found = phrases.get(description)
                if desc_found is None:
                    desc_found = self._phrases_in(description)
            else:
                desc_found = _NOTHING
            if title_found or desc_found:
                pair = (title_found, desc_found)
                text = self._evidence_memo.get(pair)
                if text is None:
                    text = self._group(self._text_evidence(title_found, desc_found))
                    _remember(self._evidence_memo, pair, text)
                if text[0]:
                    groups.append(text[0])
                    key.append(text[1])

        for name, check in c.top_checks:
            value = fields.get(name)
            if value is None or value == ():
                continue
            if type(value) is str:  # the common case, inlined: one memo lookup
                matched = check.memo.get(value)
                if matched is None:
                    matched = self._match_field(check, value)
                    _remember(check.memo, value, matched)
                if matched[0]:
                    groups.append(matched[0])
                    key.append(matched[1])
            else:
                self._field_evidence(check, value, groups, key)
        extra = fields["extra"]
        if extra and c.extra_checks:
            for first, extra_checks in c.extra_checks.items():
                top = extra.get(first)
                if top is None:
                    continue
                for check in extra_checks:
                    value = top
                    for part in check.keys[1:]:
                        value = value.get(part) if isinstance(value, Mapping) else None
                    if value is not None:
                        self._field_evidence(check, value, groups, key)
        model_entry: tuple[float, str] | None = None
        if self.model is not None and self.model_weight:
            model_logit, evidence = self.model.explain(fields["title"], fields["description"])
            model_entry = (self.model_weight * model_logit, evidence)
            key.append(model_entry)

        own_key = tuple(key)
        own = self._own_memo.get(own_key)
        if own is None:
            own = self._own(kind, groups, model_entry)
            _remember(self._own_memo, own_key, own)
        if parent is not None and c.parent_rules:
            ranked = list(own[1])
            total = own[0]
            kind_filter = c.kind_filter
            for index in c.parent_rules:
                allowed = kind_filter[index]
                if allowed is None or kind in allowed:
                    inherited = self._inherited(index, parent, total)
                    if inherited is not None:
                        total += inherited[0]
                        ranked.append((-abs(inherited[0]), c.rules[index].id, *inherited))
            if len(ranked) > len(own[1]):
                return self._conclusion(ranked, total)
        return own

    def _verdict(self, own: _Own) -> Verdict:
        """The Verdict for evidence just worked out (its reason indexes are current)."""
        return _make_verdict(own, tuple(map(self._reasons.objects.__getitem__, own[5])))

    def _held_verdict(self, own: _Own) -> Verdict:
        """The Verdict for evidence worked out earlier: the reasons table may have been
        cleared since, so the reasons are looked up again by what they say."""
        table = self._reasons_with_room(len(own[6]))
        reasons = tuple(map(table.objects.__getitem__, map(table.__getitem__, own[6])))
        return _make_verdict(own, reasons)

    def _reasons_with_room(self, needed: int) -> _Reasons:
        """The reasons table, emptied first if ``needed`` more would overfill it (and then the
        remembered evidence too: it refers to reasons by index)."""
        if len(self._reasons) + needed > _MEMO_LIMIT:
            self._reasons = _Reasons()
            self._own_memo.clear()
        return self._reasons

    def _own(
        self, kind: Kind, groups: list[_TextFound], model_entry: tuple[float, str] | None
    ) -> _Own:
        """The item's own evidence (no parent) from the matches :meth:`_evaluate` gathered."""
        c = self._c
        found: dict[int, tuple[int, float, str]] = {}
        for group in groups:  # the first match of a rule counts (a label list matches twice)
            for entry in group:
                if entry[0] not in found:
                    found[entry[0]] = entry
        for entry in c.kind_rules.get(kind, ()):
            found[entry[0]] = entry

        kind_filter, meta, caps = c.kind_filter, c.meta, c.caps
        entries: list[tuple[str, str, float, str]] = []
        subtotals: dict[str, float] = {}
        for index, weight, evidence in found.values():
            allowed = kind_filter[index]
            if allowed is not None and kind not in allowed:
                continue
            signal, rule_id = meta[index]
            entries.append((signal, rule_id, weight, evidence))
            if caps:
                subtotals[signal] = subtotals.get(signal, 0.0) + weight
        if model_entry is not None:
            entries.append(("model", "model", *model_entry))
            if caps:
                subtotals["model"] = subtotals.get("model", 0.0) + model_entry[0]

        scale: dict[str, float] = {}
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
        return self._conclusion(ranked, total)

    def _conclusion(self, ranked: list[tuple[float, str, float, str]], total: float) -> _Own:
        """Log-odds, label, p_business and the reasons strongest first, as plain data (the
        reasons as indexes into ``_reasons.objects``)."""
        prior = self._c.prior
        logit = prior + total
        unsorted = tuple(ranked)
        if not ranked:
            ranked.append((0.0, "prior", prior, "no rule matched: the prior (base rate) alone"))
        elif len(ranked) > 1:
            ranked.sort()  # strongest first; ties by rule id, so the order is deterministic
        shown = tuple(ranked)
        reasons = tuple(map(self._reasons_with_room(len(shown)).__getitem__, shown))
        p = _logistic(logit)
        label = _LABEL_INDEX[self.thresholds.label(p)]
        return (total, unsorted, logit, label, round(p, 6), reasons, shown)

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

    def _phrases_in(self, text: str) -> tuple[str, ...]:
        """The phrases in a text not yet in the memo (remembered unless the text is long)."""
        phrases = self._find(tokenize(text))
        if len(text) <= _MEMO_TEXT_CHARS:
            _remember(self._hits_memo, text, phrases)
        return phrases

    def _group(self, matches: list[tuple[int, float, str]]) -> _Group:
        """Matches as a tuple with an id: the same matches get the same id (while remembered),
        and an id is never given to other matches, so memo keys can hold ids, not matches."""
        if not matches:
            return _NO_GROUP
        group = tuple(matches)
        known = self._group_ids.get(group)
        if known is None:
            known = next(self._next_id)
            _remember(self._group_ids, group, known)
        return group, known

    def _field_evidence(
        self, check: _FieldCheck, value: Any, groups: list[_TextFound], key: list[Any]
    ) -> None:
        for text in _values(value):
            matched = check.memo.get(text)
            if matched is None:
                matched = self._match_field(check, text)
                _remember(check.memo, text, matched)
            if matched[0]:
                groups.append(matched[0])
                key.append(matched[1])

    def _match_field(self, check: _FieldCheck, text: str) -> _Group:
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
        return self._group(out) if out else _NO_GROUP

    def _text_evidence(
        self, title: tuple[str, ...], description: tuple[str, ...]
    ) -> list[tuple[int, float, str]]:
        """Text rules: full weight when the title alone matches (the title states the work),
        ``description_factor`` times the weight when the match needs the description."""
        c = self._c
        title_hits, title_rules, title_found = self._title_info(title)
        desc_hits, desc_rules = self._description_info(description)
        if not desc_hits:
            return [(index, *entry) for index, entry in title_found.items()]
        found: dict[int, tuple[float, str]] = {}
        from_description: list[int] = []
        merged: dict[int, str] | None = None
        # Rule order, not the order phrases came out of a set (that follows PYTHONHASHSEED): the
        # floating-point sums below, and so the last digits of the weights and the order of
        # near-equal reasons, must not change from one process to the next.
        for index in sorted({*title_rules, *desc_rules}):
            entry = title_found.get(index)
            if entry is not None:
                found[index] = entry
                continue
            t = c.text_rule_at[index]
            if not t.use_description:
                continue
            if t.use_title:
                if merged is None:
                    merged = {**desc_hits, **title_hits}
                hits = merged
            else:
                hits = desc_hits
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
        return [(index, weight, evidence) for index, (weight, evidence) in found.items()]

    def _title_info(
        self, phrases: tuple[str, ...]
    ) -> tuple[dict[int, str], tuple[int, ...], dict[int, tuple[float, str]]]:
        """A title's phrase groups, the text rules they may trigger and those the title alone
        matches (with their evidence), remembered per set of phrases."""
        info = self._title_memo.get(phrases)
        if info is None:
            hits, rules = self._description_info(phrases)
            matches: dict[int, tuple[float, str]] = {}
            for index in rules:
                t = self._c.text_rule_at[index]
                if (
                    t.use_title
                    and not t.main.isdisjoint(hits)
                    and (not t.also or not t.also.isdisjoint(hits))
                    and t.unless.isdisjoint(hits)
                ):
                    matches[index] = (t.rule.weight, _describe("title", hits, t))
            info = (hits, rules, matches)
            _remember(self._title_memo, phrases, info)
        return info

    def _description_info(self, phrases: tuple[str, ...]) -> tuple[dict[int, str], tuple[int, ...]]:
        """Phrase group -> the phrases found (for reading), and the text rules a group of them
        may trigger, in rule order; remembered per set of phrases."""
        info = self._groups_memo.get(phrases)
        if info is None:
            hits = self._c.phrases.describe(phrases)
            by_atom = self._c.text_by_atom
            rules = {text_rule.index for atom in hits for text_rule in by_atom.get(atom, ())}
            info = (hits, tuple(sorted(rules)))
            _remember(self._groups_memo, phrases, info)
        return info


def _describe(where: str, hits: Mapping[int, str], rule: _TextRule) -> str:
    text = ", ".join([hits[atom] for atom in rule.main_order if atom in hits])
    if rule.also:
        text += " with " + ", ".join([hits[atom] for atom in rule.also_order if atom in hits])
    return f"{where}: {text}"


_M = TypeVar("_M", bound=BaseModel)


def _construct(cls: type[_M], data: dict[str, Any], fields: set[str] | None = None) -> _M:
    """A pydantic model from trusted, complete field values without validation.

    ``model_construct`` does the same but walks every field for defaults and aliases; this is
    the scoring loop's hottest allocation. Every field must be present in ``data``; ``fields``
    is the set of them when known (copied: cheaper than building it). A test checks the result
    equals the validated model.
    """
    obj = _new(cls)
    _setattr(obj, "__dict__", data)
    _setattr(obj, "__pydantic_fields_set__", set(data) if fields is None else fields.copy())
    _setattr(obj, "__pydantic_extra__", None)
    _setattr(obj, "__pydantic_private__", None)
    return obj


_new = object.__new__
_setattr = object.__setattr__
_REASON_FIELDS = set(Reason.model_fields)
_VERDICT_FIELDS = set(Verdict.model_fields)
_SCORED_FIELDS = set(ScoredItem.model_fields)
_N_SCORED = len(_SCORED_FIELDS)


def _make_verdict(own: _Own, reasons: tuple[Reason, ...]) -> Verdict:
    """A Verdict from trusted values (what _construct does, inlined: once per item)."""
    verdict = _new(Verdict)
    _setattr(
        verdict, "__dict__", {"label": _LABELS[own[3]], "p_business": own[4], "reasons": reasons}
    )
    _setattr(verdict, "__pydantic_fields_set__", _VERDICT_FIELDS.copy())
    _setattr(verdict, "__pydantic_extra__", None)
    _setattr(verdict, "__pydantic_private__", None)
    return verdict


def _attach(item: WorkItem, verdict: Verdict) -> ScoredItem:
    data = item.__dict__.copy()
    data["scoring"] = verdict
    # A WorkItem's __dict__ holds every field (pydantic fills defaults in), so with the verdict
    # it has exactly ScoredItem's fields; anything else gets its own set.
    return _construct(ScoredItem, data, _SCORED_FIELDS if len(data) == _N_SCORED else None)


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
