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
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from itsm_bridge.schema import Kind, Label, Reason, ScoredItem, Verdict, WorkItem
from itsm_bridge.scoring._text import PhraseIndex, tokenize
from itsm_bridge.scoring.rules import Rule, RuleSet

if TYPE_CHECKING:
    from itsm_bridge.scoring.model import TextModel

__all__ = ["Scorer", "Thresholds", "score"]

P = TypeVar("P")

_MAX_LOGIT = 35.0
_REASON_CACHE_LIMIT = 200_000


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


def _accessor(path: str) -> Callable[[WorkItem], Any]:
    head, _, rest = path.partition(".")
    if head != "extra":
        return lambda item: getattr(item, head, None)
    keys = rest.split(".")

    def get(item: WorkItem) -> Any:
        value: Any = item.extra
        for key in keys:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
        return value

    return get


def _values(value: Any) -> list[str]:
    """A field's value(s) normalised for ``equals`` lookups (lists give one value per element)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        out: list[str] = []
        for element in value:
            out.extend(_values(element))
        return out
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, Kind | Label):
        return [value.value]
    text = str(value).strip().lower()
    return [text] if text else []


@dataclass(frozen=True, slots=True)
class _Evidence:
    logit: float
    verdict: Verdict


class _Compiled:
    """A rule set turned into lookup tables, built once per Scorer."""

    def __init__(self, rules: RuleSet) -> None:
        settings = rules.settings
        self.prior = settings.prior
        self.caps = dict(settings.caps)
        self.description_factor = settings.description_factor
        self.max_chars = settings.max_text_chars
        self.rules: list[Rule] = list(rules.enabled_rules)
        groups: list[tuple[tuple[str, ...], bool]] = []
        # per text rule: (rule index, group for phrases, for and_phrases, for not_phrases)
        self.text_rules: list[tuple[int, int, int | None, int | None]] = []
        self.equals: dict[str, tuple[Callable[[WorkItem], Any], dict[str, list[int]]]] = {}
        self.regexes: list[tuple[int, str, Callable[[WorkItem], Any], re.Pattern[str]]] = []
        self.kind_rules: dict[Kind, list[int]] = {}
        self.parent_rules: list[int] = []

        def group(phrases: tuple[str, ...], inflect: bool) -> int | None:
            if not phrases:
                return None
            groups.append((rules.expand(phrases), inflect))
            return len(groups) - 1

        for index, rule in enumerate(self.rules):
            kind = rule.match_type
            if kind == "phrases":
                main = group(rule.phrases, rule.inflect)
                assert main is not None
                self.text_rules.append(
                    (
                        index,
                        main,
                        group(rule.and_phrases, rule.inflect),
                        group(rule.not_phrases, rule.inflect),
                    )
                )
            elif kind in ("equals", "services"):
                path = rule.field if kind == "equals" and rule.field else "service"
                values = (
                    rule.equals if kind == "equals" else tuple(s.lower() for s in rule.services)
                )
                _, table = self.equals.setdefault(path, (_accessor(path), {}))
                for value in values:
                    table.setdefault(value, []).append(index)
            elif kind == "regex":
                assert rule.field is not None
                assert rule.regex is not None
                self.regexes.append(
                    (index, rule.field, _accessor(rule.field), re.compile(rule.regex))
                )
            elif kind == "kinds":
                assert rule.kinds is not None
                for k in rule.kinds:
                    self.kind_rules.setdefault(k, []).append(index)
            else:
                self.parent_rules.append(index)
        self.phrases = PhraseIndex(
            groups, negators=settings.negators, window=settings.negation_window
        )


class Scorer:
    """Scores WorkItems with a rule set and, optionally, a learned text model.

    ``rules=None`` uses the default rules; ``thresholds`` defaults to the rule set's settings.
    ``model_weight`` scales the model's log-odds before they join the rules' evidence.
    """

    def __init__(
        self,
        rules: RuleSet | None = None,
        model: TextModel | None = None,
        thresholds: Thresholds | None = None,
        *,
        model_weight: float = 1.0,
    ) -> None:
        self.rules = rules if rules is not None else RuleSet.default()
        self.model = model
        self.model_weight = model_weight
        settings = self.rules.settings
        self.thresholds = thresholds or Thresholds(
            settings.business_threshold, settings.inward_threshold
        )
        self._c = _Compiled(self.rules)
        self._reasons: dict[tuple[str, float, str], Reason] = {}

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
        for payload, item in pairs:
            slot: list[Any] = [payload, item, None, self._parent_ref(item)]
            queue.append(slot)
            parent_key = slot[3]
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
        for slot in members:
            slot[2] = self._evaluate(slot[1], None).verdict
        for slot in sorted(members, key=lambda s: s[1].key):
            key = slot[1].key
            if key not in done:
                done[key] = _logit(slot[2].p_business) - self._c.prior
        for slot in members:
            for child in waiting.pop(slot[1].key, ()):
                self._finish(child, (slot[1].key, done[slot[1].key]), done, waiting)
        for slots in list(waiting.values()):  # pragma: no cover - defensive, cannot happen
            for slot in slots:
                slot[2] = self._evaluate(slot[1], None).verdict
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
        kind = item.kind

        # Text: one tokenisation per field, all phrases at once.
        if c.text_rules:
            title_tokens = tokenize(item.title) if item.title else []
            description = item.description
            desc_tokens = tokenize(description[: c.max_chars]) if description else []
            title_hits = c.phrases.match(title_tokens)
            desc_hits = c.phrases.match(desc_tokens) if desc_tokens else {}
            if title_hits or desc_hits:
                self._text_evidence(title_hits, desc_hits, found)

        for path, (get, table) in c.equals.items():
            for value in _values(get(item)):
                for index in table.get(value, ()):
                    if index not in found:
                        found[index] = (rules[index].weight, f"{path} = {value!r}")
        for index, path, get, pattern in c.regexes:
            for value in _values(get(item)):
                m = pattern.search(value)
                if m:
                    found[index] = (rules[index].weight, f"{path} {value!r} matches {m.group(0)!r}")
                    break
        for index in c.kind_rules.get(kind, ()):
            found[index] = (rules[index].weight, f"kind = {kind.value}")
        if parent is not None and c.parent_rules:
            parent_key, parent_logit = parent
            for index in c.parent_rules:
                cap = abs(rules[index].weight)
                inherited = max(-cap, min(cap, parent_logit))
                if inherited:
                    side = "business-facing" if inherited > 0 else "inward-facing"
                    found[index] = (
                        inherited,
                        f"parent {parent_key} leans {side} (evidence {parent_logit:+.2f})",
                    )

        by_signal: dict[str, list[tuple[str, float, str]]] = {}
        for index, (weight, evidence) in found.items():
            rule = rules[index]
            if rule.kinds is not None and kind not in rule.kinds and rule.match_type != "kinds":
                continue
            by_signal.setdefault(rule.signal, []).append((rule.id, weight, evidence))
        if self.model is not None and self.model_weight:
            model_logit, evidence = self.model.explain(item.title, item.description)
            by_signal["model"] = [("model", self.model_weight * model_logit, evidence)]

        total = 0.0
        reasons: list[Reason] = []
        for signal, entries in by_signal.items():
            cap = c.caps.get(signal, 0.0)
            subtotal = sum(weight for _, weight, _ in entries)
            scale = 1.0
            if cap and abs(subtotal) > cap:
                # Correlated evidence of one kind must not stack without bound: scale it to the
                # signal's cap, so the reasons still add up to the log-odds.
                scale = cap / abs(subtotal)
            for rule_id, weight, evidence in entries:
                scaled = weight * scale
                total += scaled
                reasons.append(self._reason(rule_id, scaled, evidence))
        logit = c.prior + total
        if not reasons:
            reasons.append(
                self._reason("prior", c.prior, "no rule matched: the prior (base rate) alone")
            )
        elif len(reasons) > 1:
            reasons.sort(key=lambda r: (-abs(r.weight), r.rule))
        p = _logistic(logit)
        verdict = Verdict.model_construct(
            label=self.thresholds.label(p), p_business=round(p, 6), reasons=tuple(reasons)
        )
        return _Evidence(logit, verdict)

    def _text_evidence(
        self,
        title_hits: dict[int, list[str]],
        desc_hits: dict[int, list[str]],
        found: dict[int, tuple[float, str]],
    ) -> None:
        """Text rules: full weight when the title alone matches (the title states the work),
        ``description_factor`` times the weight when the match needs the description."""
        c = self._c
        for index, main, also, unless in c.text_rules:
            if main not in title_hits and main not in desc_hits:
                continue
            rule = c.rules[index]
            use_title = "title" in rule.fields
            if (
                use_title
                and main in title_hits
                and (also is None or also in title_hits)
                and (unless is None or unless not in title_hits)
            ):
                found[index] = (rule.weight, _describe("title", title_hits, main, also))
                continue
            if "description" not in rule.fields:
                continue
            hits = {**desc_hits, **title_hits} if use_title else desc_hits
            if (
                main in hits
                and (also is None or also in hits)
                and (unless is None or unless not in hits)
            ):
                found[index] = (
                    rule.weight * c.description_factor,
                    _describe("description", hits, main, also),
                )

    def _reason(self, rule: str, weight: float, evidence: str) -> Reason:
        key = (rule, round(weight, 4), evidence)
        reason = self._reasons.get(key)
        if reason is None:
            if len(self._reasons) > _REASON_CACHE_LIMIT:
                self._reasons.clear()
            reason = Reason.model_construct(rule=rule, weight=key[1], evidence=evidence)
            self._reasons[key] = reason
        return reason


def _describe(where: str, hits: Mapping[int, list[str]], main: int, also: int | None) -> str:
    words = hits[main][:3]
    text = ", ".join(f"'{w}'" for w in words)
    if also is not None:
        text += " with " + ", ".join(f"'{w}'" for w in hits[also][:3])
    return f"{where}: {text}"


def _attach(item: WorkItem, verdict: Verdict) -> ScoredItem:
    if isinstance(item, ScoredItem):
        data = dict(item.__dict__)
        data["scoring"] = verdict
        return ScoredItem.model_construct(**data)
    return ScoredItem.model_construct(**item.__dict__, scoring=verdict)


def score(
    items: Iterable[WorkItem],
    rules: RuleSet | str | None = None,
    model: TextModel | None = None,
    *,
    thresholds: Thresholds | None = None,
    parents: Mapping[str, Verdict | float] | None = None,
) -> Iterator[ScoredItem]:
    """Score work items: ``ib.score(items)`` with the default rules, or your own and a model.

    ``rules`` may be a :class:`RuleSet` or the path of a rules file extending the defaults.
    Items come back in input order, as :class:`~itsm_bridge.schema.ScoredItem`.
    """
    rule_set = RuleSet.load(rules) if isinstance(rules, str) or rules is None else rules
    return Scorer(rule_set, model, thresholds).score(items, parents=parents)
