"""The scorer's memos are caches: however small they are, verdicts do not change."""

from __future__ import annotations

import pytest

from itsm_bridge.schema import Verdict, WorkItem
from itsm_bridge.scoring import Scorer, engine
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
    monkeypatch.setattr(engine, "_MEMO_LIMIT", limit)
    scorer = Scorer()
    first = [s.scoring for s in scorer.score(company)]
    again = [s.scoring for s in scorer.score(company)]
    assert first == reference
    assert again == reference
    assert len(scorer._reasons.objects) <= max(limit, 20)


def test_a_scorer_reused_across_batches_gives_the_same_verdicts(
    company: list[WorkItem], reference: list[Verdict]
) -> None:
    scorer = Scorer()
    for _ in range(2):
        assert [s.scoring for s in scorer.score(company)] == reference
    one_by_one = [scorer.score_one(item).scoring for item in company]
    alone = [Scorer().score_one(item).scoring for item in company[:20]]
    assert one_by_one[:20] == alone
