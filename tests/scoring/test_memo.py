"""The scorer's memos are caches: however small they are, verdicts do not change."""

from __future__ import annotations

import pytest

from itsm_bridge.schema import Verdict, WorkItem
from itsm_bridge.scoring import RuleSet, Scorer, Thresholds, _evidence
from itsm_bridge.scoring.evaluate_datasets import sandbox_items


@pytest.fixture(scope="module")
def company() -> list[WorkItem]:
    return [item for item, _ in sandbox_items(7)[0]][::3]  # every kind, with parents


@pytest.fixture(scope="module")
def reference(company: list[WorkItem]) -> list[Verdict]:
    return [s.scoring for s in Scorer().score(company)]


@pytest.mark.parametrize("limit", [1, 40])
def test_tiny_memos_give_the_same_verdicts(
    company: list[WorkItem], reference: list[Verdict], limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every memo is cleared when full; reasons are remembered by index, so clearing them must
    # also forget the evidence that refers to them.
    monkeypatch.setattr(_evidence, "MEMO_LIMIT", limit)
    scorer = Scorer()
    first = [s.scoring for s in scorer.score(company)]
    again = [s.scoring for s in scorer.score(company)]
    assert first == reference
    assert again == reference
    assert len(scorer._evidence.reasons.objects) <= max(limit, 20)


def test_a_scorer_reused_across_batches_gives_the_same_verdicts(
    company: list[WorkItem], reference: list[Verdict]
) -> None:
    scorer = Scorer()
    for _ in range(2):
        assert [s.scoring for s in scorer.score(company)] == reference
    one_by_one = [scorer.score_one(item).scoring for item in company]
    alone = [Scorer().score_one(item).scoring for item in company[:20]]
    assert one_by_one[:20] == alone


def test_changing_thresholds_rules_or_model_after_scoring_is_not_answered_from_memory(
    company: list[WorkItem],
) -> None:
    items = company[:300]
    scorer = Scorer()
    list(scorer.score(items))
    forced = Thresholds(0.5, 0.5)
    scorer.thresholds = forced
    assert [s.scoring for s in scorer.score(items)] == [
        s.scoring for s in Scorer(thresholds=forced).score(items)
    ]
    strict = RuleSet.from_toml('[[rule]]\nid = "kind.incident"\nweight = -9.0\n')
    scorer.rules = strict
    assert [s.scoring for s in scorer.score(items)] == [
        s.scoring for s in Scorer(strict, thresholds=forced).score(items)
    ]
