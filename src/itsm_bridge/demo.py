"""``itsm-bridge demo``: the whole product on a fresh machine, with nothing to configure.

It generates a fictional company's twelve months of work, serves it from a ServiceNow and a Jira
sandbox on loopback, syncs both through the real connectors over real HTTP into a temporary store,
scores everything, prints the ratio report, writes the HTML report, and compares the estimate with
the generator's ground truth. Sandboxes are found through the ``itsm_bridge.sandboxes`` entry
points, so the core imports no connector package. A missing piece is announced loudly and the demo
goes on with what exists: a demo that hides what it could not do would teach the wrong lesson.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from itsm_bridge import _json
from itsm_bridge.connector import Connector, connect
from itsm_bridge.errors import ItsmBridgeError
from itsm_bridge.sandbox import Company, PlatformSandbox, generate_company, make_sandbox
from itsm_bridge.sandbox.model import TruthItem
from itsm_bridge.schema import Label, ScoredItem
from itsm_bridge.sync.result import SyncResult
from itsm_bridge.sync.store import Store

__all__ = ["Comparison", "compare_with_truth", "run_demo"]

PLATFORMS = ("servicenow", "jira")
REPORT_DIMENSIONS = ("month", "team", "kind")


@dataclass
class Comparison:
    """The estimate against the generator's ground truth, over the items that were synced."""

    matched: int = 0
    unmatched: int = 0
    estimated_share_count: float = 0.0
    estimated_share_effort: float = 0.0
    undetermined_share_count: float = 0.0
    undetermined_share_effort: float = 0.0
    true_share_count: float = 0.0
    true_share_effort: float = 0.0
    accuracy: float = 0.0
    accuracy_determined: float = 0.0
    coverage: float = 0.0
    macro_f1: float = 0.0
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def _share(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def _estimated_hours(scored: Sequence[ScoredItem]) -> list[float]:
    """Hours per item under the report's effort convention, from the synced data only."""
    try:
        from itsm_bridge.report.effort import efforts
    except ImportError:  # the report module is missing: measured hours, nothing else
        return [s.effort_hours or 0.0 for s in scored]
    return [e.hours for e in efforts(scored)]


def compare_with_truth(
    scored: Sequence[ScoredItem], truth: dict[str, TruthItem], company: Company
) -> Comparison:
    """The estimate from the synced, scored items against the generator's ground truth.

    Estimated shares are business / decided (business + inward), by count and by effort (the
    report's effort convention applied to what was synced); the undetermined share is shown
    beside them, never folded in. The true effort share is the generator's own
    (``Company.business_effort_share``) over the same records. Accuracy counts undetermined as
    wrong; macro-F1 averages the F1 of both classes (undetermined is a miss), as
    ``itsm-bridge evaluate`` does.
    """
    result = Comparison()
    matched = [s for s in scored if s.key in truth]
    result.matched = len(matched)
    result.unmatched = len(scored) - len(matched)
    if not matched:
        return result
    pairs = [(s, truth[s.key]) for s in matched]
    hours = _estimated_hours(matched)
    labels = [s.scoring.label for s in matched]
    n = len(pairs)
    by_label: dict[Label, float] = dict.fromkeys(Label, 0.0)
    for label, h in zip(labels, hours):
        by_label[label] += h
    decided_hours = by_label[Label.BUSINESS] + by_label[Label.INWARD]
    decided = n - labels.count(Label.UNDETERMINED)
    result.estimated_share_count = _share(labels.count(Label.BUSINESS), decided)
    result.undetermined_share_count = _share(labels.count(Label.UNDETERMINED), n)
    result.estimated_share_effort = _share(by_label[Label.BUSINESS], decided_hours)
    result.undetermined_share_effort = _share(by_label[Label.UNDETERMINED], sum(hours))
    result.true_share_count = _share(sum(t.truth is Label.BUSINESS for _, t in pairs), n)
    result.true_share_effort = company.business_effort_share(t for _, t in pairs)
    correct = sum(s.scoring.label is t.truth for s, t in pairs)
    result.accuracy = _share(correct, n)
    result.accuracy_determined = _share(correct, decided)
    result.coverage = _share(decided, n)
    f1s = []
    for cls in (Label.BUSINESS, Label.INWARD):
        tp = sum(s.scoring.label is cls and t.truth is cls for s, t in pairs)
        precision = _share(tp, labels.count(cls))
        recall = _share(tp, sum(t.truth is cls for _, t in pairs))
        f1s.append(_share(2 * precision * recall, precision + recall))
    result.macro_f1 = sum(f1s) / len(f1s)
    for s, t in pairs:
        row = result.confusion.setdefault(t.truth.value, {})
        row[s.scoring.label.value] = row.get(s.scoring.label.value, 0) + 1
    return result


class _Demo:
    def __init__(self, out: TextIO, as_json: bool) -> None:
        self.out = out
        self.as_json = as_json
        self.missing: list[str] = []
        self.summary: dict[str, Any] = {}

    def say(self, text: str = "") -> None:
        if not self.as_json:
            print(text, file=self.out, flush=True)

    def missing_piece(self, what: str, why: object) -> None:
        self.missing.append(f"{what}: {why}")
        print(f"\n!!! DEMO INCOMPLETE: {what} is not available ({why})", file=sys.stderr)
        print("!!! the demo goes on with what exists\n", file=sys.stderr)


def _start_sandboxes(
    demo: _Demo, company: Company, seed: int, stack: contextlib.ExitStack
) -> list[PlatformSandbox]:
    started = []
    for platform in PLATFORMS:
        items = company.for_platform(platform)
        try:
            sandbox = make_sandbox(platform, items, seed=seed)
            stack.enter_context(sandbox)
        except (ItsmBridgeError, ImportError, AttributeError, OSError) as exc:
            demo.missing_piece(f"the {platform} sandbox", exc)
            continue
        demo.say(f"  {platform:<11} sandbox at {sandbox.url} serving {len(items):,} records")
        started.append(sandbox)
    return started


def _connectors(demo: _Demo, sandboxes: Iterable[PlatformSandbox]) -> list[Connector]:
    conns = []
    for sandbox in sandboxes:
        try:
            conn = connect(
                sandbox.connector,
                sandbox.url,
                auth=sandbox.auth(),
                **{"source": sandbox.connector, **sandbox.connect_options()},
            )
        except (ItsmBridgeError, ImportError) as exc:
            demo.missing_piece(f"the {sandbox.connector} connector", exc)
            continue
        conns.append(conn)
    return conns


def _sync_all(
    demo: _Demo, conns: Sequence[Connector], store: Store, progress: Any
) -> list[SyncResult]:
    from itsm_bridge.sync.engine import run_sync

    with ThreadPoolExecutor(max_workers=max(1, len(conns))) as pool:
        futures = [pool.submit(run_sync, conn, store, None, progress=progress) for conn in conns]
        results = [f.result() for f in futures]
    if progress is not None:
        progress.close()
    for result in results:
        demo.say("  " + result.summary())
        if result.exception is not None:
            demo.missing_piece(f"the sync of {result.source}", result.exception)
    return results


def _score(demo: _Demo, store: Store) -> list[ScoredItem]:
    try:
        from itsm_bridge.sync.verdicts import scorer_for, update_verdicts

        scorer = scorer_for()
    except ImportError as exc:
        demo.missing_piece("the scoring module (itsm_bridge.scoring)", exc)
        return []
    update_verdicts(store, scorer)
    demo.summary["ruleset"] = scorer.version
    return list(store.scored_items(scorer.version))


def _report(demo: _Demo, scored: Sequence[ScoredItem], html_path: Path) -> None:
    try:
        from itsm_bridge.report import build_report, render
    except ImportError as exc:
        demo.missing_piece("the report module (itsm_bridge.report)", exc)
        return
    report = build_report(scored, by=list(REPORT_DIMENSIONS))
    demo.say("\nThe business-facing share of IT effort (the ratio report)\n")
    demo.say(render(report, "table").rstrip())
    html_path.parent.mkdir(parents=True, exist_ok=True)
    from itsm_bridge.sync.exports import atomic_output

    with atomic_output(html_path) as handle:
        handle.write(render(report, "html"))
    demo.summary["html_report"] = str(html_path)
    demo.say(f"\nHTML report written to {html_path}")


def _print_comparison(demo: _Demo, c: Comparison) -> None:
    def row(name: str, count: float, effort: float, points: bool = False) -> str:
        if points:
            return f"  {name:<28}{100 * count:+8.1f}    {100 * effort:+8.1f}"
        return f"  {name:<28}{count:8.1%}    {effort:8.1%}"

    demo.say("\nEstimate against the generator's ground truth")
    demo.say(f"  items compared: {c.matched:,}")
    demo.say(f"  {'business-facing share':<28}{'by count':>8}    {'by effort':>8}")
    demo.say(row("estimated (of decided)", c.estimated_share_count, c.estimated_share_effort))
    demo.say(row("ground truth", c.true_share_count, c.true_share_effort))
    demo.say(
        row(
            "error (points)",
            c.estimated_share_count - c.true_share_count,
            c.estimated_share_effort - c.true_share_effort,
            points=True,
        )
    )
    demo.say(row("undetermined", c.undetermined_share_count, c.undetermined_share_effort))
    demo.say(
        f"  verdicts: accuracy {c.accuracy:.1%} (on decided items {c.accuracy_determined:.1%},"
        f" coverage {c.coverage:.1%}), macro-F1 {c.macro_f1:.3f}"
    )


def run_demo(
    *,
    seed: int = 7,
    scale: float = 1.0,
    out_dir: str | Path | None = None,
    keep_store: str | Path | None = None,
    as_json: bool = False,
    progress: bool = True,
    out: TextIO | None = None,
) -> int:
    """Run the demo; returns the exit code (0 when every step ran)."""
    from itsm_bridge._progress import ProgressBar

    started = time.monotonic()
    demo = _Demo(out or sys.stdout, as_json)
    company = generate_company(seed=seed, scale=scale)
    demo.say(f"{company.name}: {len(company):,} work records over 12 months (seed {seed})")
    truth = company.by_number()
    html_path = Path(out_dir or Path(tempfile.gettempdir()) / "itsm-bridge-demo") / "report.html"
    with contextlib.ExitStack() as stack:
        sandboxes = _start_sandboxes(demo, company, seed, stack)
        conns = _connectors(demo, sandboxes)
        for conn in conns:
            stack.callback(conn.close)
        if keep_store:
            store_path = Path(keep_store)
        else:
            store_path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "demo.db"
        store = stack.enter_context(Store(store_path))
        totals = {sb.connector: len(sb.visible_items()) for sb in sandboxes}
        bar = ProgressBar(totals=totals, enabled=None if progress else False)
        demo.say(f"\nSyncing into {store_path if keep_store else 'a temporary store'}")
        results = _sync_all(demo, conns, store, bar)
        demo.summary["syncs"] = [r.as_dict() for r in results]
        scored = _score(demo, store)
        if scored:
            _report(demo, scored, html_path)
            comparison = compare_with_truth(scored, truth, company)
            _print_comparison(demo, comparison)
            demo.summary["comparison"] = comparison.as_dict()
    elapsed = time.monotonic() - started
    demo.summary.update({"seconds": round(elapsed, 2), "missing": demo.missing})
    if as_json:
        print(_json.dumps(demo.summary), file=demo.out)
    demo.say(f"\nDone in {elapsed:.1f}s.")
    if demo.missing:
        print("\n!!! DEMO INCOMPLETE; missing pieces:", file=sys.stderr)
        for line in demo.missing:
            print(f"!!!   {line}", file=sys.stderr)
    synced = any(r.status == "ok" for r in results)
    return 0 if synced and not demo.missing else 1
