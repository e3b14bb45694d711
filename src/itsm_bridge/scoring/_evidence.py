"""One item's evidence and verdict, worked out fast: the scoring loop of :class:`Scorer`.

What an item's fields match is remembered per distinct value, and what follows from the matches
per distinct set of matches: work records repeat their titles, templates, services and
categories, and even unique texts mostly repeat the phrases found in them. Three rules keep
this fast on one core:

- Every memo is bounded (cleared when full: it is a cache) and holds only strings, numbers and
  tuples or dicts of them, at most two levels deep. CPython's garbage collector stops tracking
  such values; remembered objects (verdicts, deeper tuples) stayed tracked, aged into the oldest
  generation and triggered full collections over all of the caller's items, which cost more
  than the memo saved.
- Verdicts and ScoredItems are built from trusted values without validation (``construct``);
  a test checks they equal validated ones.
- Floating-point sums run in rule order, never in set order, so verdicts do not depend on the
  process (``PYTHONHASHSEED``).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from itsm_bridge.schema import Kind, Label, Reason, ScoredItem, Verdict, WorkItem
from itsm_bridge.scoring._compiled import NO_GROUP, Compiled, FieldCheck, Group, field_values
from itsm_bridge.scoring._text import Line, tokenize

if TYPE_CHECKING:
    from itsm_bridge.scoring.engine import Thresholds
    from itsm_bridge.scoring.model import TextModel

MEMO_LIMIT = 50_000
_MEMO_TEXT_CHARS = 1_000  # long texts rarely repeat; not keeping them bounds the memo's memory
_MAX_LOGIT = 35.0
_NOTHING: tuple[str, ...] = ()

Ranked = tuple[float, str, float, str]
"""A reason as it is ranked: ``(-|weight|, rule id, weight, evidence)`` sorts strongest first,
ties by rule id."""

Own = tuple[float, bool, float, int, float, tuple[Any, ...], tuple[Any, ...], int]
"""An item's evidence as plain data: its total, whether the prior stands alone (no rule
matched), the log-odds (prior included), the label (index in ``LABELS``), p_business, and the
reasons strongest first, as indexes into the reasons table (empty when not kept there) and as
ranked entries (kept flat, four values each: see ``entries``); then the table's generation. A
child's evidence with its parent's share (never remembered) has ``-1`` for the reasons not in the
table and generation ``_MIXED - generation``."""

LABELS = tuple(Label)
_LABEL_INDEX = {label: index for index, label in enumerate(LABELS)}
_BUSINESS = _LABEL_INDEX[Label.BUSINESS]
_INWARD = _LABEL_INDEX[Label.INWARD]
_UNDETERMINED = _LABEL_INDEX[Label.UNDETERMINED]
# An Own's generation when some of its reasons are not in the table (index -1): a child's.
_MIXED = -10
_chain = itertools.chain

K = TypeVar("K")
V = TypeVar("V")


def remember(memo: dict[K, V], key: K, value: V) -> None:
    """Store in a bounded memo (cleared when full: cheap, and correct because it is a cache)."""
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    memo[key] = value


def entries(flat: tuple[Any, ...]) -> list[Ranked]:
    """Ranked entries from their flat form."""
    values = iter(flat)
    return list(zip(values, values, values, values))


def logistic(z: float) -> float:
    z = max(-_MAX_LOGIT, min(_MAX_LOGIT, z))
    return 1.0 / (1.0 + math.exp(-z))


class _Reasons(dict[Ranked, int]):
    """Ranked entry -> index of its Reason in ``objects``: one Reason per distinct reason, made
    on first use (``__missing__``). A table replaced when full gets the next ``generation``."""

    def __init__(self, generation: int = 0) -> None:
        super().__init__()
        self.objects: list[Reason] = []
        self.generation = generation

    def __missing__(self, key: Ranked) -> int:
        self[key] = index = len(self.objects)
        self.objects.append(_reason(key))
        return index


class Evidence:
    """The memos and the per-item work of one Scorer (rules, thresholds and model fixed)."""

    def __init__(
        self,
        compiled: Compiled,
        thresholds: Thresholds,
        model: TextModel | None = None,
        model_weight: float = 1.0,
    ) -> None:
        self.c = compiled
        self.thresholds = thresholds
        from itsm_bridge.scoring.engine import Thresholds

        self._plain_thresholds = type(thresholds) is Thresholds
        self._business, self._inward = thresholds.business, thresholds.inward
        self.model = model if model is not None and model_weight else None
        self.model_weight = model_weight
        self._find = compiled.phrases.find
        self.reasons = _Reasons()
        self._phrases: dict[str, tuple[str, ...]] = {}  # text -> phrases found (sorted)
        self._lines: dict[str, Line] = {}  # one line of a text -> its phrases (see _phrases_in)
        self._hits: dict[tuple[str, ...], dict[int, str]] = {}  # phrases -> group -> display
        self._rules: dict[tuple[str, ...], tuple[int, ...]] = {}  # phrases -> text rules hit
        self._title_matches: dict[tuple[str, ...], dict[int, str]] = {}  # -> rule -> evidence
        self._text: dict[tuple[tuple[str, ...], tuple[str, ...]], Group] = {}
        self._groups: dict[tuple[Any, ...], Group] = {}  # matches -> the same, with an id
        self._next_id = itertools.count()
        # Items with the same matches (kind, then the ids of their text and field matches)
        # share their own evidence.
        self._own: dict[tuple[Any, ...], Own] = {}

    # -- the item ------------------------------------------------------------------------------

    def evaluate(self, item: WorkItem, parent: tuple[str, float] | None) -> Own:
        """What the item's fields match, then (remembered per distinct set of matches) the
        capped, ranked evidence, then the parent's share if it has one."""
        c = self.c
        fields = item.__dict__
        kind = fields["kind"]
        # The matches in the order they take effect (text rules, field rules: top-level fields,
        # then extra) and, as the memo key, each group's id after the kind.
        groups: list[Group] = []
        key: list[Any] = [kind._value_]

        # Text: one tokenisation per field, every phrase of every rule at once. The phrases
        # found are remembered per text (titles repeat a lot), the rules' evidence per pair of
        # phrase sets (which repeat far more than texts do).
        if c.has_text:
            phrases = self._phrases
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
                text = self._text.get(pair)
                if text is None:
                    text = self._group(self._text_evidence(title_found, desc_found))
                    remember(self._text, pair, text)
                if len(text) > 1:
                    groups.append(text)
                    key.append(text[0])

        for name, check in c.top_checks:
            value = fields.get(name)
            if value is None or value == ():
                continue
            if type(value) is str:  # the common case, inlined: one memo lookup
                matched = check.memo.get(value)
                if matched is None:
                    matched = self._match_field(check, value)
                if len(matched) > 1:
                    groups.append(matched)
                    key.append(matched[0])
            else:
                self._field_evidence(check, value, groups, key)
        extra = fields["extra"]
        if extra and c.extra_checks:
            for first, extra_checks in c.extra_paths:
                top = extra.get(first)
                if top is None:
                    continue
                for check, below in extra_checks:
                    value = top
                    if below:
                        for part in below:
                            value = value.get(part) if isinstance(value, Mapping) else None
                    if type(value) is str:
                        matched = check.memo.get(value)
                        if matched is None:
                            matched = self._match_field(check, value)
                        if len(matched) > 1:
                            groups.append(matched)
                            key.append(matched[0])
                    elif value is not None:
                        self._field_evidence(check, value, groups, key)
        model_entry: tuple[float, str] | None = None
        if self.model is not None:
            model_logit, evidence = self.model.explain(fields["title"], fields["description"])
            model_entry = (self.model_weight * model_logit, evidence)
            key.append(model_entry)

        own_key = tuple(key)
        own = self._own.get(own_key)
        if own is None:
            own = self._own_evidence(kind, groups, model_entry)
            remember(self._own, own_key, own)
        if parent is not None and c.parent_rules:
            total = own[0]
            added: list[Ranked] = []
            kind_filter = c.kind_filter
            for index in c.parent_rules:
                allowed = kind_filter[index]
                if allowed is None or kind in allowed:
                    inherited = self._inherited(index, parent, total)
                    if inherited is not None:
                        total += inherited[0]
                        added.append((-abs(inherited[0]), c.rules[index].id, *inherited))
            if added:
                return self._with_parent(own, added, total)
        return own

    def _with_parent(self, own: Own, added: list[Ranked], total: float) -> Own:
        """An item's own evidence with its parent's share added (not remembered: the parent's
        reason names the parent, so it is new for nearly every child). The own reasons are
        already ranked; each parent reason goes where sorting would put it. Plain data, as
        every Own (children wait in batches, so their evidence must not keep the garbage
        collector busy): own reasons by table index, the parent's as ``-1`` (made later)."""
        table = self.reasons
        if own[1]:  # the prior stood alone: it gives way
            ranked: list[Ranked] = []
            indexes: list[int] = []
        else:
            ranked = entries(own[6])
            if own[5] and own[7] == table.generation:
                indexes = list(own[5])
            else:
                index = table.get
                indexes = [-1 if (i := index(entry)) is None else i for entry in ranked]
        for entry in added:
            at = bisect.bisect_right(ranked, entry)
            ranked.insert(at, entry)
            indexes.insert(at, -1)
        logit = self.c.prior + total
        p = logistic(logit)
        shown = tuple(_chain.from_iterable(ranked))
        generation = _MIXED - table.generation
        return (total, False, logit, self._label(p), round(p, 6), tuple(indexes), shown, generation)

    def verdict(self, own: Own) -> Verdict:
        """The Verdict of an item's evidence (whenever it was worked out)."""
        table = self.reasons
        if own[5] and own[7] == table.generation:
            reasons = tuple(map(table.objects.__getitem__, own[5]))
        elif own[7] == _MIXED - table.generation:
            # A child's: the table's reasons by index, the parent's (-1) made from the entry.
            objects = table.objects
            reasons = tuple(
                [
                    objects[i] if i >= 0 else _reason(entry)
                    for i, entry in zip(own[5], entries(own[6]))
                ]
            )
        else:
            # Evidence not kept in the table, or kept in one since replaced: by content.
            objects, index = table.objects, table.get
            reasons = tuple(
                [
                    objects[i] if (i := index(entry)) is not None else _reason(entry)
                    for entry in entries(own[6])
                ]
            )
        return _make_verdict(own, reasons)

    # -- the evidence --------------------------------------------------------------------------

    def _own_evidence(
        self, kind: Kind, groups: list[Group], model_entry: tuple[float, str] | None
    ) -> Own:
        """The item's own evidence (no parent) from the matches :meth:`evaluate` gathered."""
        c = self.c
        found: dict[int, tuple[int, float, str]] = {}
        for group in groups:  # the first match of a rule counts (a label list matches twice)
            for match in group[1:]:
                if match[0] not in found:
                    found[match[0]] = match
        for match in c.kind_rules.get(kind, ()):
            found[match[0]] = match

        kind_filter, meta, caps = c.kind_filter, c.meta, c.caps
        rows: list[tuple[str, str, float, str]] = []
        subtotals: dict[str, float] = {}
        for index, weight, evidence in found.values():
            allowed = kind_filter[index]
            if allowed is not None and kind not in allowed:
                continue
            signal, rule_id = meta[index]
            rows.append((signal, rule_id, weight, evidence))
            if caps:
                subtotal = subtotals.get(signal)
                subtotals[signal] = weight if subtotal is None else subtotal + weight
        if model_entry is not None:
            rows.append(("model", "model", *model_entry))
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
        ranked: list[Ranked] = []
        for signal, rule_id, weight, evidence in rows:
            if scale and signal in scale:
                weight *= scale[signal]
            total += weight
            ranked.append((-abs(weight), rule_id, weight, evidence))
        return self._conclusion(ranked, total, keep=True)

    def _conclusion(self, ranked: list[Ranked], total: float, *, keep: bool) -> Own:
        """Log-odds, label, p_business and the reasons strongest first, as plain data; with
        ``keep`` the reasons go into the table (and are referred to by index)."""
        prior = self.c.prior
        logit = prior + total
        alone = not ranked
        if alone:
            ranked.append((0.0, "prior", prior, "no rule matched: the prior (base rate) alone"))
        elif len(ranked) > 1:
            ranked.sort()  # strongest first; ties by rule id, so the order is deterministic
        indexes: tuple[int, ...] = ()
        generation = -1
        if keep:
            table = self._table_with_room(len(ranked))
            # A list first: a tuple still being filled when a new Reason triggers a collection
            # is never untracked by the garbage collector.
            indexes = tuple(list(map(table.__getitem__, ranked)))  # noqa: C414
            generation = table.generation
        p = logistic(logit)
        label = self._label(p)
        shown = tuple(_chain.from_iterable(ranked))
        return (total, alone, logit, label, round(p, 6), indexes, shown, generation)

    def _label(self, p: float) -> int:
        """``thresholds.label(p)`` as an index in ``LABELS`` (inlined for the default class)."""
        if not self._plain_thresholds:
            return _LABEL_INDEX[self.thresholds.label(p)]
        business, inward = self._business, self._inward
        if p >= business and p > inward:
            return _BUSINESS
        if p <= inward and p < business:
            return _INWARD
        return _UNDETERMINED

    def _table_with_room(self, needed: int) -> _Reasons:
        """The reasons table, replaced first if ``needed`` more would overfill it (and then the
        remembered evidence is forgotten too: it refers to reasons by index)."""
        if len(self.reasons) + needed > MEMO_LIMIT:
            self.reasons = _Reasons(self.reasons.generation + 1)
            self._own.clear()
        return self.reasons

    def _inherited(
        self, index: int, parent: tuple[str, float], own: float
    ) -> tuple[float, str] | None:
        """The parent's evidence passed to a child: capped at the rule's weight, and faded out
        when the child's own evidence disagrees strongly (at ``strong_evidence`` it is gone)."""
        parent_key, parent_logit = parent
        cap = abs(self.c.rules[index].weight)
        inherited = max(-cap, min(cap, parent_logit))
        if not inherited:
            return None
        strong = self.c.strong_evidence
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

    # -- matches -------------------------------------------------------------------------------

    def _phrases_in(self, text: str) -> tuple[str, ...]:
        """The phrases in a text not yet in the memo (remembered unless the text is long).

        A text of several lines is found line by line: descriptions are made of lines that
        repeat (templates, boilerplate) far more than whole descriptions do. The lines' answers
        are joined unless a phrase or a negation may span two lines (then the whole text)."""
        phrases: tuple[str, ...] | None = None
        if "\n" in text:
            memo = self._lines
            line_of = self.c.phrases.line
            infos = []
            for line in text.split("\n"):
                info = memo.get(line)
                if info is None:
                    info = line_of(tokenize(line))
                    if len(line) <= _MEMO_TEXT_CHARS:
                        remember(memo, line, info)
                infos.append(info)
            phrases = self.c.phrases.join(infos)
        if phrases is None:
            phrases = self._find(tokenize(text))
        if len(text) <= _MEMO_TEXT_CHARS:
            remember(self._phrases, text, phrases)
        return phrases

    def _group(self, matches: list[tuple[int, float, str]]) -> Group:
        """Matches with an id in front: the same matches get the same id (while remembered),
        and an id is never given to other matches, so memo keys can hold ids, not matches."""
        if not matches:
            return NO_GROUP
        key = tuple(matches)
        group = self._groups.get(key)
        if group is None:
            group = (next(self._next_id), *key)
            remember(self._groups, key, group)
        return group

    def _field_evidence(
        self, check: FieldCheck, value: Any, groups: list[Group], key: list[Any]
    ) -> None:
        for text in field_values(value):
            matched = check.memo.get(text)
            if matched is None:
                matched = self._match_field(check, text)
            if len(matched) > 1:
                groups.append(matched)
                key.append(matched[0])

    def _match_field(self, check: FieldCheck, text: str) -> Group:
        matched = self.c.match_field(check, text)
        group = self._group(matched) if matched else NO_GROUP
        remember(check.memo, text, group)
        return group

    def _text_evidence(
        self, title: tuple[str, ...], description: tuple[str, ...]
    ) -> list[tuple[int, float, str]]:
        """Text rules: full weight when the title alone matches (the title states the work),
        ``description_factor`` times the weight when the match needs the description."""
        c = self.c
        rule_at = c.text_rule_at
        title_found = self._title_rules(title)
        desc_hits, desc_rules = self._phrase_info(description)
        if not desc_hits:
            return [(i, rule_at[i].rule.weight, text) for i, text in title_found.items()]
        title_hits, title_rules = self._phrase_info(title)
        found: dict[int, tuple[float, str]] = {}
        from_description: list[int] = []
        merged: dict[int, str] | None = None
        # Rule order, not the order phrases came out of a set (that follows PYTHONHASHSEED): the
        # floating-point sums below, and so the last digits of the weights and the order of
        # near-equal reasons, must not change from one process to the next.
        for index in sorted({*title_rules, *desc_rules}):
            t = rule_at[index]
            text = title_found.get(index)
            if text is not None:
                found[index] = (t.rule.weight, text)
                continue
            if not t.use_description:
                continue
            if t.use_title:
                if merged is None:
                    merged = {**desc_hits, **title_hits}
                hits = merged
            else:
                hits = desc_hits
            if t.matches(hits):
                found[index] = (
                    t.rule.weight * c.description_factor,
                    t.describe("description", hits),
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

    def _title_rules(self, phrases: tuple[str, ...]) -> dict[int, str]:
        """The text rules a title matches on its own, with their evidence (in rule order)."""
        found = self._title_matches.get(phrases)
        if found is None:
            hits, rules = self._phrase_info(phrases)
            rule_at = self.c.text_rule_at
            found = {}
            for index in rules:
                t = rule_at[index]
                if t.use_title and t.matches(hits):
                    found[index] = t.describe("title", hits)
            remember(self._title_matches, phrases, found)
        return found

    def _phrase_info(self, phrases: tuple[str, ...]) -> tuple[dict[int, str], tuple[int, ...]]:
        """Phrase group -> the phrases found (for reading), and the text rules a group of them
        may trigger, in rule order. Two memos (a tuple holding a dict would stay tracked by
        the garbage collector)."""
        hits = self._hits.get(phrases)
        rules = self._rules.get(phrases)
        if hits is None or rules is None:
            hits = self.c.phrases.describe(phrases)
            by_atom = self.c.text_by_atom
            rules = tuple(sorted({rule.index for atom in hits for rule in by_atom.get(atom, ())}))
            remember(self._hits, phrases, hits)
            remember(self._rules, phrases, rules)
        return hits, rules


# -- models from trusted values ----------------------------------------------------------------

_M = TypeVar("_M", bound=BaseModel)
_new = object.__new__
_setattr = object.__setattr__
_REASON_FIELDS = set(Reason.model_fields)
_VERDICT_FIELDS = set(Verdict.model_fields)
_SCORED_FIELDS = set(ScoredItem.model_fields)
_N_SCORED = len(_SCORED_FIELDS)


def construct(cls: type[_M], data: dict[str, Any], fields: set[str] | None = None) -> _M:
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


def _reason(entry: Ranked) -> Reason:
    _, rule, weight, evidence = entry
    values = {"rule": rule, "weight": round(weight, 4), "evidence": evidence}
    return construct(Reason, values, _REASON_FIELDS)


def _make_verdict(own: Own, reasons: tuple[Reason, ...]) -> Verdict:
    """A Verdict from trusted values (``construct``, inlined: once per item)."""
    verdict = _new(Verdict)
    _setattr(
        verdict, "__dict__", {"label": LABELS[own[3]], "p_business": own[4], "reasons": reasons}
    )
    _setattr(verdict, "__pydantic_fields_set__", _VERDICT_FIELDS.copy())
    _setattr(verdict, "__pydantic_extra__", None)
    _setattr(verdict, "__pydantic_private__", None)
    return verdict


def attach(item: WorkItem, verdict: Verdict) -> ScoredItem:
    """The ScoredItem of an item and its verdict."""
    data = item.__dict__.copy()
    data["scoring"] = verdict
    # A WorkItem's __dict__ holds every field (pydantic fills defaults in), so with the verdict
    # it has exactly ScoredItem's fields; anything else gets its own set.
    return construct(ScoredItem, data, _SCORED_FIELDS if len(data) == _N_SCORED else None)


def scored(_payload: object, item: WorkItem, verdict: Verdict) -> ScoredItem:
    """:func:`attach` for Scorer.score's loop (which passes a payload along)."""
    data = item.__dict__.copy()
    data["scoring"] = verdict
    return construct(ScoredItem, data, _SCORED_FIELDS if len(data) == _N_SCORED else None)
