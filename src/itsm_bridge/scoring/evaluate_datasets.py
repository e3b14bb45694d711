"""Reproduce the scoring figures quoted in docs/scoring.md.

    python -m itsm_bridge.scoring.evaluate_datasets                 # everything
    python -m itsm_bridge.scoring.evaluate_datasets sandbox nlbse   # some of it
    python -m itsm_bridge.scoring.evaluate_datasets --data ../shared/data tune speed

Data sets (third-party, never shipped; read from ``--data``, default ``$ITSM_BRIDGE_DATA`` or
``../shared/data``):

- ``sandbox``: the default rules on the sandbox generator's ground truth (seed 7);
- ``nlbse``: NLBSE'24 issue reports: a text model trained on ``issues_train.csv`` scoring
  ``issues_test.csv`` (feature = business-facing, bug = inward-facing, questions left out), and
  the default rules alone on the same test set;
- ``herzig``: the default rules on Herzig et al.'s manually classified Apache issues (titles);
- ``tickets``: the default rules on IT service tickets (all run work: how many come out inward);
- ``tune``: 5-fold cross-validation of the text model's parameters on NLBSE train only;
- ``speed``: items per second of the default rules on one core.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from itsm_bridge.schema import EffortSource, Kind, Label, Status, WorkItem
from itsm_bridge.scoring.engine import Scorer, Thresholds
from itsm_bridge.scoring.evaluation import Evaluation, evaluate, train
from itsm_bridge.scoring.model import TextModel, TrainingParams
from itsm_bridge.scoring.rules import RuleSet

__all__ = ["HERZIG_MAPPING", "herzig_items", "main", "nlbse_items", "truth_to_item"]

HERZIG_MAPPING: dict[str, Label | None] = {
    # New capability for the library's users (its "business"): business-facing.
    "RFE": Label.BUSINESS,
    "IMPROVEMENT": Label.BUSINESS,
    # Break/fix and upkeep, per the axis definition (defects, docs, refactoring, build, tests,
    # backports of fixes to maintained branches): inward-facing.
    "BUG": Label.INWARD,
    "DESIGN_DEFECT": Label.INWARD,
    "DOCUMENTATION": Label.INWARD,
    "REFACTORING": Label.INWARD,
    "CLEANUP": Label.INWARD,
    "BUILD_SYSTEM": Label.INWARD,
    "TEST": Label.INWARD,
    "BACKPORT": Label.INWARD,
    # No meaning on the axis: left out.
    "SPEC": None,
    "TASK": None,
    "OTHER": None,
    "UNKNOWN": None,
}


def _data_dir(given: str | None) -> Path:
    if given:
        return Path(given)
    env = os.environ.get("ITSM_BRIDGE_DATA")
    if env:
        return Path(env)
    return Path.cwd().parent / "shared" / "data"


def _csv_rows(path: Path) -> Iterator[dict[str, str]]:
    csv.field_size_limit(1 << 30)  # NLBSE bodies exceed the default 131,072 characters
    with path.open(encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle)


def _item(
    key: str,
    title: str,
    description: str | None = None,
    *,
    kind: Kind = Kind.TASK,
    extra: dict[str, object] | None = None,
) -> WorkItem:
    return WorkItem(
        id=f"dataset:{key}",
        source="dataset",
        kind=kind,
        key=key,
        title=title,
        description=description,
        status=Status.CLOSED,
        updated_at=datetime(2024, 1, 1, tzinfo=UTC),
        extra=dict(extra or {}),
    )


def nlbse_items(data: Path, split: str) -> list[tuple[WorkItem, Label]]:
    """NLBSE'24 issues as items: feature = business-facing, bug = inward, questions dropped."""
    out: list[tuple[WorkItem, Label]] = []
    path = data / "nlbse24-issue-report-classification" / f"issues_{split}.csv"
    for n, row in enumerate(_csv_rows(path)):
        if row["label"] == "question":
            continue
        label = Label.BUSINESS if row["label"] == "feature" else Label.INWARD
        out.append((_item(f"{split}-{n}", row["title"], row["body"]), label))
    return out


def herzig_items(data: Path, *, with_type: bool = False) -> list[tuple[WorkItem, Label]]:
    """Herzig et al. (2013) Apache issues (titles only) with :data:`HERZIG_MAPPING` labels."""
    out: list[tuple[WorkItem, Label]] = []
    path = data / "herzig2013-issue-classification" / "herzig2013_jira_issues_with_summary.csv"
    jira_types = {"BUG": "Bug", "IMPROVEMENT": "Improvement", "RFE": "New Feature", "TASK": "Task"}
    for row in _csv_rows(path):
        label = HERZIG_MAPPING.get(row["manual_class"])
        if label is None:
            continue
        extra: dict[str, object] = {}
        if with_type and row["jira_issue_type"] in jira_types:
            extra["issue_type"] = jira_types[row["jira_issue_type"]]
        out.append((_item(row["issue_id"], row["summary"], None, extra=extra), label))
    return out


def ticket_items(data: Path) -> list[tuple[WorkItem, str]]:
    path = data / "it-service-tickets-sample" / "it_service_tickets_first3805.csv"
    # Service-desk tickets: scored as requests, which is what a connector would map them to.
    return [
        (
            _item(f"ticket-{n}", row["Document"][:120], row["Document"], kind=Kind.REQUEST),
            row["Topic_group"],
        )
        for n, row in enumerate(_csv_rows(path))
    ]


def truth_to_item(truth: object, services: dict[str, str] | None = None) -> WorkItem:
    """A WorkItem as a connector would map a sandbox record (the label is not carried over).

    ServiceNow records carry the service classification (``business_service``); Jira records
    do not unless configured, so they get none here.
    """
    from itsm_bridge.sandbox.model import TruthItem

    assert isinstance(truth, TruthItem)
    extra: dict[str, object] = {}
    for name in ("issue_type", "change_type", "risk", "close_code", "linked_project"):
        value = getattr(truth, name, None)
        if value is not None:
            extra[name] = value
    for name in ("planned_start", "planned_end"):
        value = getattr(truth, name, None)
        if value is not None:
            extra[name] = value.isoformat()
    if truth.investment:
        extra["investment"] = dict(truth.investment)
    if services and truth.platform == "servicenow" and truth.service in services:
        extra["service_classification"] = services[truth.service]
    if truth.effort_hours is not None:
        effort, source = truth.effort_hours, EffortSource.MEASURED
    elif truth.estimate_hours is not None:
        effort, source = truth.estimate_hours, EffortSource.ESTIMATED
    else:
        effort, source = None, None
    return WorkItem(
        id=f"{truth.platform}:{truth.uid}",
        source=truth.platform,
        kind=truth.kind,
        key=truth.number,
        title=truth.title,
        description=truth.description,
        status=truth.status,
        priority=truth.priority,
        created_at=truth.created,
        updated_at=truth.updated,
        resolved_at=truth.resolved,
        team=truth.team,
        assignee=truth.assignee,
        requester=truth.requester,
        service=truth.service,
        category=truth.category,
        labels=truth.labels,
        effort_hours=effort,
        effort_source=source,
        parent_key=truth.parent,
        extra=extra,
    )


def sandbox_items(seed: int = 7) -> tuple[list[tuple[WorkItem, Label]], float]:
    """The generator's company as labelled items, and its own ground-truth effort share."""
    from itsm_bridge.sandbox import generate_company

    company = generate_company(seed=seed)
    pairs = [(truth_to_item(t, company.services), t.truth) for t in company.items]
    return pairs, company.business_effort_share()


def _print(title: str, result: Evaluation) -> None:
    print(f"\n== {title}")
    print(result.format())


def run_sandbox(seed: int = 7) -> Evaluation:
    pairs, truth_share = sandbox_items(seed)
    result = evaluate(pairs, scorer=Scorer())
    _print(f"default rules on the sandbox generator's ground truth (seed {seed})", result)
    print(
        f"generator's own business effort share (Company.business_effort_share): {truth_share:.3f}"
    )
    by_kind: dict[str, list[tuple[WorkItem, Label]]] = {}
    for item, label in pairs:
        by_kind.setdefault(item.kind.value, []).append((item, label))
    print("\nper kind (scored within the whole set):")
    scored = list(Scorer().score(item for item, _ in pairs))
    verdicts = {s.key: s.scoring.label for s in scored}
    for kind, rows in sorted(by_kind.items()):
        correct = sum(verdicts[i.key] is lab for i, lab in rows)
        undetermined = sum(verdicts[i.key] is Label.UNDETERMINED for i, _ in rows)
        business = sum(lab is Label.BUSINESS for _, lab in rows)
        print(
            f"  {kind:<9} n={len(rows):>5}  business={business:>5}  "
            f"accuracy={correct / len(rows):.3f}  undetermined={undetermined / len(rows):.3f}"
        )
    return result


def run_nlbse(data: Path) -> None:
    train_pairs = nlbse_items(data, "train")
    test_pairs = nlbse_items(data, "test")
    texts = [(i.title, i.description) for i, _ in train_pairs]
    labels = [lab for _, lab in train_pairs]
    forced = Thresholds(0.5, 0.5)
    started = time.perf_counter()
    alone = TextModel.train(texts, labels)
    took = time.perf_counter() - started
    print(f"\ntext model trained on NLBSE train ({alone.info}) in {took:.1f}s, {alone.params}")
    _print(
        "NLBSE'24 test: text model alone (train(..., residual=False)), forced decision",
        evaluate(test_pairs, scorer=Scorer(RuleSet.empty(), alone, forced)),
    )
    residual = train(train_pairs)
    _print(
        "NLBSE'24 test: default rules + model fitted on top of them (train(...)), forced",
        evaluate(test_pairs, scorer=Scorer(RuleSet.default(), residual, forced)),
    )
    _print(
        "NLBSE'24 test: default rules + residual model, default thresholds (0.6 / 0.4)",
        evaluate(test_pairs, scorer=Scorer(RuleSet.default(), residual)),
    )
    _print(
        "NLBSE'24 test: default rules alone, default thresholds",
        evaluate(test_pairs, scorer=Scorer()),
    )
    _print(
        "NLBSE'24 test: default rules alone, forced decision",
        evaluate(test_pairs, scorer=Scorer(thresholds=forced)),
    )


def run_herzig(data: Path) -> None:
    _print(
        "Herzig 2013 (titles only; mapping in HERZIG_MAPPING): default rules",
        evaluate(herzig_items(data), scorer=Scorer()),
    )
    _print(
        "Herzig 2013: default rules, forced decision",
        evaluate(herzig_items(data), scorer=Scorer(thresholds=Thresholds(0.5, 0.5))),
    )
    _print(
        "Herzig 2013 with the reporter's Jira issue type as extra.issue_type: default rules",
        evaluate(herzig_items(data, with_type=True), scorer=Scorer()),
    )
    cv = evaluate(
        herzig_items(data),
        scorer=Scorer(RuleSet.empty(), thresholds=Thresholds(0.5, 0.5)),
        folds=5,
    )
    _print("Herzig 2013: text model alone, 5-fold cross-validation (titles)", cv)


def run_tickets(data: Path) -> None:
    rows = ticket_items(data)
    scored = list(Scorer().score(item for item, _ in rows))
    print("\n== IT service tickets (pre-processed text, scored as requests): default rules")
    groups: dict[str, list[Label]] = {}
    for (_, group), s in zip(rows, scored):
        groups.setdefault(group, []).append(s.scoring.label)
    for group, labels in sorted(groups.items()):
        n = len(labels)
        inward = sum(lab is Label.INWARD for lab in labels) / n
        business = sum(lab is Label.BUSINESS for lab in labels) / n
        print(f"  {group:<24} n={n:>4}  inward={inward:.3f}  business={business:.3f}")
    total = len(scored)
    inward_all = sum(s.scoring.label is Label.INWARD for s in scored) / total
    business_all = sum(s.scoring.label is Label.BUSINESS for s in scored) / total
    print(f"  {'all':<24} n={total:>4}  inward={inward_all:.3f}  business={business_all:.3f}")


def run_tune(data: Path) -> None:
    """The grid behind :class:`TrainingParams`' defaults, chosen on NLBSE train only.

    Selection uses the one-standard-error rule (Hastie, Tibshirani & Friedman): among settings
    whose 5-fold CV macro-F1 is within one standard error of the best, take the most
    regularised (smallest C), then the best score. Differences of a few thousandths between
    settings are noise at 1,000 documents; the rule prefers the safer model.
    """
    pairs = nlbse_items(data, "train")
    print("\n== text model: 5-fold cross-validation on NLBSE train only (macro-F1, forced)")
    forced = Thresholds(0.5, 0.5)
    grids = {
        "model alone": (RuleSet.empty(), (3.0, 10.0, 30.0, 100.0), (3000, 10000)),
        "rules + residual model": (RuleSet.default(), (10.0, 30.0, 100.0), (3000, 10000)),
    }
    for name, (rules, cs, lengths) in grids.items():
        print(f"  {name}:")
        results: list[tuple[TrainingParams, float, list[float]]] = []
        for c in cs:
            for max_chars in lengths:
                for title_features in (True, False):
                    params = TrainingParams(C=c, title_features=title_features, max_chars=max_chars)
                    result = evaluate(
                        pairs, scorer=Scorer(rules, thresholds=forced), folds=5, params=params
                    )
                    results.append((params, result.macro_f1, result.fold_macro_f1))
                    print(
                        f"    C={c:<5} max_chars={max_chars:<6} "
                        f"title_features={title_features!s:<5} macro-F1={result.macro_f1:.4f}"
                    )
        best_params, best_score, best_folds = max(results, key=lambda r: r[1])
        se = statistics.stdev(best_folds) / math.sqrt(len(best_folds))
        eligible = [r for r in results if r[1] >= best_score - se]
        chosen = min(eligible, key=lambda r: (r[0].C, -r[1]))[0]
        print(
            f"  best C={best_params.C} max_chars={best_params.max_chars} "
            f"title_features={best_params.title_features} ({best_score:.4f}, SE {se:.4f}); "
            f"one-SE choice: C={chosen.C} max_chars={chosen.max_chars} "
            f"title_features={chosen.title_features}"
        )


def run_speed(
    n: int = 50_000, repeats: int = 3, company_size: int = 100_000, data: Path | None = None
) -> None:
    """Items per second of the default rules on one core: CPU time (other processes on a shared
    machine inflate wall time, not CPU time), best of ``repeats`` runs, a fresh Scorer per run
    (its memos cold), the whole ``score()`` generator consumed.

    Inputs: generated incidents, changes, requests and tasks as they come (titles and
    descriptions repeat, as tickets' do); the same with every title and description made unique
    (the worst case: nothing is remembered from a repeated text, only from repeated phrase sets
    and field values); and a generated company of every kind with its parents and children
    (parent inheritance included; ``bench/scoring_bench.py`` scores such a company pulled
    through both connectors). With ``data``, also the real datasets: the rate falls with the
    length of the descriptions (every word of a new text is looked up).
    """
    import gc

    from itsm_bridge.sandbox import generate_company
    from itsm_bridge.sandbox.generator import iter_items

    def pairs(batch: Sequence[WorkItem]) -> int:
        return len({(item.title, item.description) for item in batch})

    def rate(batch: Sequence[WorkItem], scorer: Scorer | None = None) -> float:
        best = float("inf")
        for _ in range(repeats):
            active = scorer or Scorer()
            gc.collect()
            cpu = time.process_time()
            for _ in active.score(batch):
                pass
            best = min(best, time.process_time() - cpu)
        return len(batch) / best

    kinds = (Kind.INCIDENT, Kind.CHANGE, Kind.REQUEST, Kind.TASK)
    items = [truth_to_item(t) for k in kinds for t in iter_items(k, n // len(kinds), seed=3)]
    unique = [
        item.model_copy(
            update={
                "title": f"{item.title} #{number}",
                "description": None
                if item.description is None
                else f"{item.description} #{number}",
            }
        )
        for number, item in enumerate(items)
    ]
    company = generate_company(seed=11, scale=company_size / 4_700)
    family = [truth_to_item(t, company.services) for t in company.items]
    children = sum(1 for item in family if Scorer._parent_ref(item) is not None)
    warm = Scorer()
    for _ in warm.score(items):
        pass

    print(f"\n== speed: default rules, one core, CPU time, best of {repeats}, fresh Scorer per run")
    rows = [
        (
            f"generated tickets as they come ({len(items):,} items, {pairs(items):,} distinct "
            "title + description pairs)",
            rate(items),
        ),
        (
            f"every title and description unique ({len(unique):,} items, {pairs(unique):,} pairs)",
            rate(unique),
        ),
        (
            f"generated company, parents and children ({len(family):,} items, {children:,} with a "
            f"parent, {pairs(family):,} pairs)",
            rate(family),
        ),
        ("generated tickets again with the same Scorer (memos warm)", rate(items, warm)),
    ]
    if data is not None and data.is_dir():
        for name, real in (
            ("NLBSE'24 issues, title and body", [i for i, _ in nlbse_items(data, "test")]),
            ("Herzig 2013 issues, titles only", [i for i, _ in herzig_items(data)]),
            ("IT service tickets, the ticket text", [i for i, _ in ticket_items(data)]),
        ):
            chars = sum(len(i.description or "") for i in real) // max(len(real), 1)
            rows.append((f"{name} ({len(real):,} items, {chars:,} characters each)", rate(real)))
    for label, value in rows:
        print(f"  {value:>9,.0f} items/s  {label}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m itsm_bridge.scoring.evaluate_datasets")
    parser.add_argument(
        "parts",
        nargs="*",
        choices=["sandbox", "nlbse", "herzig", "tickets", "tune", "speed", []],
        help="what to run (default: sandbox nlbse herzig tickets speed)",
    )
    parser.add_argument("--data", help="the shared data folder (default ../shared/data)")
    parser.add_argument("--seed", type=int, default=7, help="sandbox generator seed")
    args = parser.parse_args(argv)
    parts = args.parts or ["sandbox", "nlbse", "herzig", "tickets", "speed"]
    data = _data_dir(args.data)
    if "sandbox" in parts:
        run_sandbox(args.seed)
    if "nlbse" in parts:
        run_nlbse(data)
    if "herzig" in parts:
        run_herzig(data)
    if "tickets" in parts:
        run_tickets(data)
    if "tune" in parts:
        run_tune(data)
    if "speed" in parts:
        run_speed(data=data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
