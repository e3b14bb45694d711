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
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from itsm_bridge.schema import Label, ScoredItem, Verdict, WorkItem
from itsm_bridge.scoring._compiled import Compiled
from itsm_bridge.scoring._evidence import Evidence, Own, attach, scored
from itsm_bridge.scoring.records import record_to_item
from itsm_bridge.scoring.rules import RuleSet

if TYPE_CHECKING:
    from itsm_bridge.scoring.model import TextModel

__all__ = ["Scorer", "Thresholds", "score"]

P = TypeVar("P")
R = TypeVar("R")
Node = tuple[str, str]  # (source, key): how the batch knows an item, and a parent


def _triple(payload: P, item: WorkItem, verdict: Verdict) -> tuple[P, WorkItem, Verdict]:
    return payload, item, verdict


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


def _logit(p: float) -> float:
    p = min(max(p, 1e-15), 1 - 1e-15)
    return math.log(p / (1 - p))


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
        self._rules = rules if isinstance(rules, RuleSet) else RuleSet.load(rules)
        self._model = model
        self._model_weight = model_weight
        settings = self._rules.settings
        self._thresholds = thresholds or Thresholds(
            settings.business_threshold, settings.inward_threshold
        )
        self._restart()

    # Evidence is remembered for the rules, thresholds and model in use: changing one of them
    # starts afresh.

    @property
    def rules(self) -> RuleSet:
        return self._rules

    @rules.setter
    def rules(self, rules: RuleSet) -> None:
        self._rules = rules
        self._restart()

    @property
    def model(self) -> TextModel | None:
        return self._model

    @model.setter
    def model(self, model: TextModel | None) -> None:
        self._model = model
        self._restart()

    @property
    def model_weight(self) -> float:
        return self._model_weight

    @model_weight.setter
    def model_weight(self, weight: float) -> None:
        self._model_weight = weight
        self._restart()

    @property
    def thresholds(self) -> Thresholds:
        return self._thresholds

    @thresholds.setter
    def thresholds(self, thresholds: Thresholds) -> None:
        self._thresholds = thresholds
        self._restart()

    def _restart(self) -> None:
        # The compiled tables keep per-value memos too: compiled again for a fresh start.
        self._compiled = Compiled(self._rules)
        self._evidence = Evidence(self._compiled, self._thresholds, self._model, self._model_weight)

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
        evidence = self._evidence
        return attach(item, evidence.verdict(evidence.evaluate(item, parent_evidence)))

    def verdict(
        self, item: WorkItem, parent: Verdict | ScoredItem | float | None = None
    ) -> Verdict:
        """The verdict alone (no copy of the item)."""
        return self.score_one(item, parent).scoring

    def _parent_logit(self, parent: Verdict | ScoredItem | float) -> float:
        if isinstance(parent, ScoredItem):
            parent = parent.scoring
        if isinstance(parent, Verdict):
            return _logit(parent.p_business) - self._compiled.prior
        return float(parent)

    # -- batches -------------------------------------------------------------------------------

    def score(
        self,
        items: Iterable[WorkItem | Mapping[str, Any]],
        *,
        parents: Mapping[str, Verdict | float] | None = None,
    ) -> Iterator[ScoredItem]:
        """Score a stream of items in input order, resolving parent inheritance over the batch.

        Items are WorkItems, or plain records (mappings with at least a ``title``, read as the
        ``score`` command reads its input lines). A child whose parent comes later in the
        stream is held back until the parent is scored (so memory grows only with such
        children). ``parents`` supplies verdicts for parents that are not in the batch (from a
        store); they are used only when the batch lacks them.
        """
        yield from self._resolve(zip(itertools.repeat(None), _work_items(items)), parents, scored)

    def score_pairs(
        self,
        pairs: Iterable[tuple[P, WorkItem]],
        *,
        parents: Mapping[str, Verdict | float] | None = None,
    ) -> Iterator[tuple[P, WorkItem, Verdict]]:
        """Like :meth:`score` for ``(payload, item)`` pairs; yields ``(payload, item, verdict)``."""
        return self._resolve(pairs, parents, _triple)

    def _resolve(
        self,
        pairs: Iterable[tuple[P, WorkItem]],
        parents: Mapping[str, Verdict | float] | None,
        out: Callable[[P, WorkItem, Verdict], R],
    ) -> Iterator[R]:
        """``out(payload, item, verdict)`` for each pair, in input order."""
        held = _Held()
        # Items are known by (source, key): a parent is a parent within its own source.
        done: dict[Node, float] = {}  # node -> evidence log-odds (prior excluded)
        waiting: dict[Node, list[int]] = {}  # parent node -> positions in `held` of its children
        prior = self._evidence.c.prior
        evidence = self._evidence
        evaluate = evidence.evaluate
        parent_ref = self._parent_ref
        verdict = evidence.verdict
        payloads, items, owns, parent_keys = held.payloads, held.items, held.owns, held.parents
        head = 0  # held.head, kept in a local while the loop runs
        for payload, item in pairs:
            source = item.source
            parent_key = item.parent_key
            if not parent_key or parent_key == item.key:
                parent_key = parent_ref(item)
            above = None if parent_key is None else (source, parent_key)
            if head == len(items):
                if above is None or above in done:
                    # Fast path: nothing is held back (so no child waits for this item either).
                    own = evaluate(item, None if above is None else (above[1], done[above]))
                    node = (source, item.key)
                    if node not in done:
                        done[node] = own[2] - prior
                    yield out(payload, item, verdict(own))
                    continue
                held.clear()
                head = 0
            position = len(items)
            payloads.append(payload)
            items.append(item)
            parent_keys.append(above)
            if above is None or above in done:
                parent = None if above is None else (above[1], done[above])
                node = (source, item.key)
                if node in waiting:  # its children are finished with it, as they always were
                    owns.append(None)
                    self._finish(position, parent, held, done, waiting)
                else:
                    own = evaluate(item, parent)
                    owns.append(own)
                    if node not in done:
                        done[node] = own[2] - prior
            else:
                owns.append(None)
                waiting.setdefault(above, []).append(position)
            while head < len(items) and (own := owns[head]) is not None:
                yield out(payloads[head], items[head], verdict(own))
                payloads[head] = items[head] = owns[head] = None
                head += 1
        held.head = head
        if waiting:
            self._drain(waiting, held, done, parents or {})
        while held.head < len(items):
            yield out(*held.pop(verdict))

    def _finish(
        self,
        position: int,
        parent: tuple[str, float] | None,
        held: _Held,
        done: dict[Node, float],
        waiting: dict[Node, list[int]],
    ) -> None:
        stack = [(position, parent)]
        while stack:
            current, parent_evidence = stack.pop()
            item = held.items[current]
            held.owns[current] = own = self._evidence.evaluate(item, parent_evidence)
            node = (item.source, item.key)
            if node not in done:
                done[node] = own[2] - self._evidence.c.prior
                for child in waiting.pop(node, ()):
                    stack.append((child, (item.key, done[node])))

    def _drain(
        self,
        waiting: dict[Node, list[int]],
        held: _Held,
        done: dict[Node, float],
        external: Mapping[str, Verdict | float],
    ) -> None:
        """Finish children whose parent never came: external parents first, then cycles."""
        items = held.items

        def node_of(i: int) -> Node:
            return (items[i].source, items[i].key)

        pending = {node_of(i) for positions in waiting.values() for i in positions}
        for parent in sorted(k for k in waiting if k not in pending):
            known = external.get(parent[1])
            evidence = None if known is None else (parent[1], self._parent_logit(known))
            for i in waiting.pop(parent):
                self._finish(i, evidence, held, done, waiting)
        if not waiting:
            return
        # What remains are parent cycles (A -> B -> A) and their descendants. Every member of a
        # cycle is scored without parent evidence, so the result does not depend on input order.
        parent_of = {node_of(i): held.parents[i] for pos in waiting.values() for i in pos}
        in_cycle: set[Node] = set()
        for start in sorted(parent_of):
            path: list[Node] = []
            step: Node | None = start
            while step is not None and step in parent_of and step not in path:
                path.append(step)
                step = parent_of[step]
            if step is not None and step in path:
                in_cycle.update(path[path.index(step) :])
        members = [i for pos in waiting.values() for i in pos if node_of(i) in in_cycle]
        for positions in waiting.values():
            positions[:] = [i for i in positions if node_of(i) not in in_cycle]
        logits: dict[Node, float] = {}
        for i in members:
            held.owns[i] = own = self._evidence.evaluate(items[i], None)
            logits.setdefault(node_of(i), own[2] - self._evidence.c.prior)
        for node, logit in logits.items():
            done.setdefault(node, logit)
        for i in members:
            node = node_of(i)
            for child in waiting.pop(node, ()):
                self._finish(child, (node[1], done[node]), held, done, waiting)
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


def _work_items(items: Iterable[WorkItem | Mapping[str, Any]]) -> Iterator[WorkItem]:
    """The items as WorkItems: records (mappings) converted, anything else refused by name."""
    for position, item in enumerate(items, start=1):
        if isinstance(item, WorkItem):
            yield item
        elif isinstance(item, Mapping):
            yield record_to_item(item, position=position)
        else:
            raise TypeError(
                f"item {position} is a {type(item).__name__}: score takes WorkItems or records "
                "(mappings with at least a 'title')"
            )


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
        self.owns: list[Any] = []  # its evidence (Own) once worked out, else None
        self.parents: list[Node | None] = []  # (source, parent key)

    def clear(self) -> None:
        """Called when everything held has left: positions start again at 0."""
        self.head = 0
        self.payloads.clear()
        self.items.clear()
        self.owns.clear()
        self.parents.clear()

    def pop(self, verdict: Callable[[Own], Verdict]) -> tuple[Any, WorkItem, Verdict]:
        """The first held item, finished, with its verdict; its slots are emptied."""
        i = self.head
        own = self.owns[i]
        assert own is not None
        out = (self.payloads[i], self.items[i], verdict(own))
        self.payloads[i] = self.items[i] = self.owns[i] = None
        self.head = i + 1
        return out


def score(
    items: Iterable[WorkItem | Mapping[str, Any]],
    rules: RuleSet | str | Path | None = None,
    model: TextModel | None = None,
    *,
    thresholds: Thresholds | None = None,
    parents: Mapping[str, Verdict | float] | None = None,
) -> Iterator[ScoredItem]:
    """Score work items: ``ib.score(items)`` with the default rules, or your own and a model.

    ``items`` are WorkItems or plain records with at least a ``title`` (see :meth:`Scorer.score`).

    ``rules`` may be a :class:`RuleSet` or the path of a rules file extending the defaults.
    Items come back in input order, as :class:`~itsm_bridge.schema.ScoredItem`.
    """
    return Scorer(rules, model, thresholds).score(items, parents=parents)
