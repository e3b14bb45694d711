"""Measuring a scorer against labelled items, training from labels, and what to label next.

:func:`evaluate` reports what a user needs to trust (or distrust) the verdicts: accuracy,
per-class precision/recall/F1, macro-F1, the confusion matrix (with the undetermined column),
coverage, calibration (Brier score) and, because the product's answer is an effort ratio, the
error of the estimated business-facing effort share against the labelled share. With ``folds``
it cross-validates a learned text model: each fold is scored by a model trained on the others.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from itsm_bridge.errors import DataError, InvalidOptionsError
from itsm_bridge.report.effort import Effort, efforts
from itsm_bridge.schema import Label, ScoredItem, WorkItem
from itsm_bridge.scoring.engine import Scorer
from itsm_bridge.scoring.model import TextModel, TrainingParams
from itsm_bridge.scoring.records import location, parse_label, record_to_item

__all__ = ["Evaluation", "evaluate", "load_model", "train", "uncertain"]

_CLASSES = (Label.BUSINESS, Label.INWARD)
_PREDICTED = (Label.BUSINESS, Label.INWARD, Label.UNDETERMINED)


def _labelled(
    data: Iterable[Any], labels: Sequence[Any] | None
) -> tuple[list[WorkItem], list[Label]]:
    """Items and their labels from records with a ``label`` field, pairs, or items + labels."""
    items: list[WorkItem] = []
    truth: list[Label] = []
    rows = list(data)
    if labels is not None and len(labels) != len(rows):
        raise DataError(f"{len(rows)} items but {len(labels)} labels")
    for position, row in enumerate(rows, start=1):
        if labels is not None:
            item, label = row, labels[position - 1]
        elif isinstance(row, tuple) and len(row) == 2:
            item, label = row
        elif isinstance(row, Mapping):
            item, label = row, row.get("label")
        else:
            raise DataError("labelled data must be records with a 'label', or (item, label) pairs")
        where = location(row, position) if isinstance(row, Mapping) else f"item {position}"
        if isinstance(item, Mapping):
            item = record_to_item(item, position=position)
        if not isinstance(item, WorkItem):
            raise DataError(f"item {position} is not a work item or record")
        try:
            parsed = parse_label(label)
        except DataError as exc:
            raise DataError(exc.message, record=where) from None
        if parsed is None:
            raise DataError("labelled item has no label", record=where)
        items.append(item)
        truth.append(parsed)
    return items, truth


@dataclass
class Evaluation:
    """The figures of one evaluation; ``as_dict()`` for JSON, ``format()`` for people."""

    n: int
    excluded_undetermined_truth: int
    confusion: dict[str, dict[str, int]]
    accuracy: float
    coverage: float
    per_class: dict[str, dict[str, float]]
    macro_f1: float
    macro_f1_decided: float
    brier: float
    effort: dict[str, float | None]
    folds: int | None = None
    fold_macro_f1: list[float] = field(default_factory=list)
    scorer_version: str = ""

    @property
    def undetermined_share(self) -> float:
        return 1.0 - self.coverage

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "excluded_undetermined_truth": self.excluded_undetermined_truth,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "macro_f1_decided": self.macro_f1_decided,
            "coverage": self.coverage,
            "undetermined_share": self.undetermined_share,
            "brier": self.brier,
            "per_class": self.per_class,
            "confusion": self.confusion,
            "effort": self.effort,
            "folds": self.folds,
            "fold_macro_f1": self.fold_macro_f1,
            "scorer_version": self.scorer_version,
        }

    def format(self) -> str:
        lines = [
            f"items evaluated      {self.n}"
            + (
                f" ({self.excluded_undetermined_truth} labelled undetermined left out)"
                if self.excluded_undetermined_truth
                else ""
            ),
            f"accuracy             {self.accuracy:.3f}   (undetermined counts as wrong)",
            f"macro-F1             {self.macro_f1:.3f}   (decided items only: "
            f"{self.macro_f1_decided:.3f})",
            f"coverage             {self.coverage:.3f}   "
            f"(undetermined {self.undetermined_share:.3f})",
            f"Brier score          {self.brier:.3f}   (0 is perfect, 0.25 is a coin)",
        ]
        if self.folds:
            folds = ", ".join(f"{f:.3f}" for f in self.fold_macro_f1)
            lines.append(f"{self.folds}-fold CV macro-F1  {folds}")
        lines.append("")
        lines.append(f"{'class':<17}{'precision':>10}{'recall':>8}{'F1':>7}{'support':>9}")
        for name, m in self.per_class.items():
            lines.append(
                f"{name:<17}{m['precision']:>10.3f}{m['recall']:>8.3f}{m['f1']:>7.3f}"
                f"{int(m['support']):>9}"
            )
        lines.append("")
        header = "".join(f"{p.value:>17}" for p in _PREDICTED)
        corner = "true \\ predicted"
        lines.append(f"{corner:<17}{header}")
        for true in _CLASSES:
            row = "".join(f"{self.confusion[true.value][p.value]:>17}" for p in _PREDICTED)
            lines.append(f"{true.value:<17}{row}")
        e = self.effort
        lines += [
            "",
            f"business effort share, labels     {e['true_share']:.3f}",
            (
                "business effort share, estimated  n/a     (nothing decided)"
                if e["estimated_share"] is None
                else f"business effort share, estimated  {e['estimated_share']:.3f}   "
                f"(error {e['error_points']:+.1f} points; business / decided effort)"
            ),
            f"business effort share, expected   {e['expected_share']:.3f}   "
            f"(error {e['expected_error_points']:+.1f} points; sum of effort x p_business)",
            f"undetermined effort share         {e['undetermined_share']:.3f}",
        ]
        return "\n".join(lines)

    summary = format


def _metrics(
    items: Sequence[WorkItem],
    truth: Sequence[Label],
    scored: Sequence[ScoredItem],
    excluded: int,
) -> Evaluation:
    confusion = {t.value: {p.value: 0 for p in _PREDICTED} for t in _CLASSES}
    brier = 0.0
    for label, s in zip(truth, scored):
        confusion[label.value][s.scoring.label.value] += 1
        y = 1.0 if label is Label.BUSINESS else 0.0
        brier += (s.scoring.p_business - y) ** 2
    n = len(scored)
    correct = sum(confusion[c.value][c.value] for c in _CLASSES)
    decided = sum(confusion[t.value][p.value] for t in _CLASSES for p in _CLASSES)
    per_class: dict[str, dict[str, float]] = {}
    decided_f1: list[float] = []
    for c in _CLASSES:
        tp = confusion[c.value][c.value]
        predicted = sum(confusion[t.value][c.value] for t in _CLASSES)
        support = sum(confusion[c.value].values())
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[c.value] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": support,
        }
        support_decided = sum(confusion[c.value][p.value] for p in _CLASSES)
        recall_d = tp / support_decided if support_decided else 0.0
        decided_f1.append(
            2 * precision * recall_d / (precision + recall_d) if precision + recall_d else 0.0
        )
    return Evaluation(
        n=n,
        excluded_undetermined_truth=excluded,
        confusion=confusion,
        accuracy=correct / n if n else 0.0,
        coverage=decided / n if n else 0.0,
        per_class=per_class,
        macro_f1=sum(m["f1"] for m in per_class.values()) / len(per_class),
        macro_f1_decided=sum(decided_f1) / len(decided_f1),
        brier=brier / n if n else 0.0,
        effort=_effort_figures(items, truth, scored),
    )


def _effort_figures(
    items: Sequence[WorkItem], truth: Sequence[Label], scored: Sequence[ScoredItem]
) -> dict[str, float | None]:
    total = true_business = business = inward = undetermined = expected = 0.0
    for label, s, effort in zip(truth, scored, efforts(items)):
        hours = effort.hours
        total += hours
        if label is Label.BUSINESS:
            true_business += hours
        verdict = s.scoring
        expected += hours * verdict.p_business
        if verdict.label is Label.BUSINESS:
            business += hours
        elif verdict.label is Label.INWARD:
            inward += hours
        else:
            undetermined += hours
    true_share = true_business / total if total else 0.0
    # Nothing decided: the estimate (business / decided effort) is not defined, nor its error.
    estimated = business / (business + inward) if business + inward else None
    expected_share = expected / total if total else 0.0
    return {
        "total_hours": total,
        "true_share": true_share,
        "estimated_share": estimated,
        "error_points": None if estimated is None else 100 * (estimated - true_share),
        "expected_share": expected_share,
        "expected_error_points": 100 * (expected_share - true_share),
        "undetermined_share": undetermined / total if total else 0.0,
    }


def evaluate(
    data: Iterable[Any],
    labels: Sequence[Any] | Scorer | None = None,
    scorer: Scorer | None = None,
    *,
    folds: int | None = None,
    params: TrainingParams | None = None,
    seed: int = 0,
    residual: bool = True,
) -> Evaluation:
    """Evaluate ``scorer`` (default rules when omitted) on labelled items.

    ``data`` holds records with a ``label`` field, ``(item, label)`` pairs, or items with
    ``labels`` given separately (``evaluate(records, scorer)`` also works). Items labelled
    ``undetermined`` are left out (and counted).
    ``folds=k`` runs k-fold cross-validation of a text model (trained with ``params``, or the
    scorer's model's parameters) combined with the scorer's rules; with ``residual`` (default)
    each fold's model is fitted on top of the rules' evidence, as :func:`train` does.
    """
    if isinstance(labels, Scorer):  # evaluate(records, scorer): labels are in the records
        labels, scorer = None, labels
    active = scorer if scorer is not None else Scorer()
    all_items, all_truth = _labelled(data, labels)
    keep = [i for i, t in enumerate(all_truth) if t is not Label.UNDETERMINED]
    excluded = len(all_truth) - len(keep)
    items = [all_items[i] for i in keep]
    truth = [all_truth[i] for i in keep]
    if not items:
        raise DataError("no items labelled business-facing or inward-facing to evaluate")
    if folds is None:
        scored = _score_in_context(active, all_items, keep)
        result = _metrics(items, truth, scored, excluded)
        result.scorer_version = active.version
        return result
    if folds < 2 or folds > len(items):
        raise InvalidOptionsError(
            f"folds must be between 2 and the number of labelled items ({len(items)}), not {folds}"
        )
    train_params = params or (active.model.params if active.model else TrainingParams())
    assignment = _stratified_folds(truth, folds, seed)
    offsets = _rule_offsets(active, all_items, keep) if residual and len(active.rules) else None
    scored_by_index: dict[int, ScoredItem] = {}
    fold_f1: list[float] = []
    for fold in range(folds):
        train_idx = [i for i, f in enumerate(assignment) if f != fold]
        test_idx = [i for i, f in enumerate(assignment) if f == fold]
        model = TextModel.train(
            [(items[i].title, items[i].description) for i in train_idx],
            [truth[i] for i in train_idx],
            train_params,
            offsets=None if offsets is None else [offsets[i] for i in train_idx],
        )
        fold_scorer = Scorer(
            active.rules, model, active.thresholds, model_weight=active.model_weight
        )
        scored_all = _score_in_context(fold_scorer, all_items, keep)
        fold_scored = [scored_all[i] for i in test_idx]
        fold_result = _metrics(
            [items[i] for i in test_idx], [truth[i] for i in test_idx], fold_scored, 0
        )
        fold_f1.append(fold_result.macro_f1)
        for i in test_idx:
            scored_by_index[i] = scored_all[i]
    scored = [scored_by_index[i] for i in range(len(items))]
    result = _metrics(items, truth, scored, excluded)
    result.folds = folds
    result.fold_macro_f1 = fold_f1
    result.scorer_version = f"{active.rules.version}+cv{folds}"
    return result


def _score_in_context(
    scorer: Scorer, all_items: Sequence[WorkItem], keep: Sequence[int]
) -> list[ScoredItem]:
    """Score every item (so parents inherit across the whole set), return the kept ones."""
    scored = list(scorer.score(all_items))
    return [scored[i] for i in keep]


def _stratified_folds(truth: Sequence[Label], folds: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    assignment = [0] * len(truth)
    for label in _CLASSES:
        indices = [i for i, t in enumerate(truth) if t is label]
        rng.shuffle(indices)
        for position, i in enumerate(indices):
            assignment[i] = position % folds
    return assignment


def train(
    data: Iterable[Any],
    labels: Sequence[Any] | None = None,
    params: TrainingParams | None = None,
    *,
    scorer: Scorer | None = None,
    residual: bool = True,
    **overrides: Any,
) -> TextModel:
    """Fit a :class:`TextModel` on labelled items (records with ``label``, pairs, or items +
    ``labels``). Items labelled ``undetermined`` are skipped.

    With ``residual`` (the default) the model is fitted on top of the rules' evidence (the
    ``scorer``'s rules, default rules when omitted): it learns what the rules get wrong for
    this team, and ``Scorer(rules, model)`` is then exactly the fitted combination. With
    ``residual=False`` it is a text model on its own (use it with ``RuleSet.empty()``).
    """
    items, truth = _labelled(data, labels)
    keep = [n for n, t in enumerate(truth) if t is not Label.UNDETERMINED]
    active = scorer or Scorer()
    offsets = _rule_offsets(active, items, keep) if residual else None
    model = TextModel.train(
        [(items[n].title, items[n].description) for n in keep],
        [truth[n] for n in keep],
        params,
        offsets=offsets,
        **overrides,
    )
    if residual:
        # Scoring with other rules than these still works, but is not what was fitted.
        model.info["rules_version"] = active.rules.version
    return model


def _rule_offsets(scorer: Scorer, items: Sequence[WorkItem], keep: Sequence[int]) -> list[float]:
    """The rules' log-odds for each kept item (parents resolved over all items)."""
    rules_only = Scorer(scorer.rules, None, scorer.thresholds)
    logits = [_logit(s.scoring.p_business) for s in rules_only.score(items)]
    return [logits[n] for n in keep]


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


def load_model(path: Any) -> TextModel:
    """A model saved by :meth:`TextModel.save` (``itsm-bridge train``)."""
    return TextModel.load(path)


def uncertain(
    items: Iterable[WorkItem], scorer: Scorer | None = None, n: int = 20
) -> list[ScoredItem]:
    """The ``n`` items whose verdict is least certain: label these next.

    Uncertainty sampling: items closest to ``p_business = 0.5`` teach a model most per label.
    Among equally uncertain items, the one with more effort comes first (its label moves the
    effort ratio more); ties then break by key, so the list is stable.
    """
    active = scorer if scorer is not None else Scorer()
    materialised = list(items)
    scored = list(active.score(materialised))  # in input order

    def priority(pair: tuple[ScoredItem, Effort]) -> tuple[float, float, str]:
        s, effort = pair
        return (round(abs(s.scoring.p_business - 0.5), 3), -effort.hours, s.key)

    ranked = sorted(zip(scored, efforts(materialised)), key=priority)
    return [s for s, _ in ranked[:n]]
