"""Evaluation figures, cross-validation, what to label next, and the acceptance measurements."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from itsm_bridge.schema import Label
from itsm_bridge.scoring import RuleSet, Scorer, TextModel, Thresholds, evaluate, uncertain
from itsm_bridge.scoring.evaluate_datasets import nlbse_items, sandbox_items

from .conftest import make_item

RULES = RuleSet.from_toml(
    """
[settings]
prior = 0.0
[[rule]]
id = "good"
signal = "text"
phrases = ["good"]
weight = 5.0
[[rule]]
id = "bad"
signal = "text"
phrases = ["bad"]
weight = -5.0
""",
    defaults=False,
)


def test_metrics_on_a_known_confusion() -> None:
    rows = [
        (make_item("good", effort_hours=10.0, key="1"), Label.BUSINESS),
        (make_item("good", effort_hours=10.0, key="2"), Label.BUSINESS),
        (make_item("bad", effort_hours=10.0, key="3"), Label.BUSINESS),
        (make_item("meh", effort_hours=10.0, key="4"), Label.BUSINESS),
        (make_item("bad", effort_hours=30.0, key="5"), Label.INWARD),
        (make_item("good", effort_hours=30.0, key="6"), Label.INWARD),
        (make_item("x", effort_hours=1.0, key="7"), Label.UNDETERMINED),  # left out
    ]
    result = evaluate(rows, scorer=Scorer(RULES))
    assert result.n == 6
    assert result.excluded_undetermined_truth == 1
    assert result.confusion["business-facing"] == {
        "business-facing": 2,
        "inward-facing": 1,
        "undetermined": 1,
    }
    assert result.confusion["inward-facing"]["inward-facing"] == 1
    assert result.accuracy == pytest.approx(3 / 6)
    assert result.coverage == pytest.approx(5 / 6)
    business = result.per_class["business-facing"]
    assert business["precision"] == pytest.approx(2 / 3)
    assert business["recall"] == pytest.approx(2 / 4)
    inward = result.per_class["inward-facing"]
    assert inward["precision"] == pytest.approx(1 / 2)
    assert inward["recall"] == pytest.approx(1 / 2)
    f1_b = 2 * (2 / 3) * 0.5 / (2 / 3 + 0.5)
    assert result.macro_f1 == pytest.approx((f1_b + 0.5) / 2)
    effort = result.effort
    assert effort["true_share"] == pytest.approx(40 / 100)
    # predicted business: items 1, 2, 6 (50 h); decided effort: 90 h
    assert effort["estimated_share"] == pytest.approx(50 / 90)
    assert effort["error_points"] == pytest.approx(100 * (50 / 90 - 0.4))
    good, bad = 1 / (1 + math.exp(-5)), 1 / (1 + math.exp(5))
    squared = [(good - 1) ** 2] * 2 + [(bad - 1) ** 2, 0.25, bad**2, good**2]
    assert result.brier == pytest.approx(sum(squared) / 6, abs=1e-5)
    text = result.format()
    assert "macro-F1" in text
    assert "Brier" in text
    assert result.as_dict()["confusion"] == result.confusion


def test_records_with_a_label_field() -> None:
    records = [{"title": "good", "label": "business"}, {"title": "bad", "label": "inward"}]
    result = evaluate(records, scorer=Scorer(RULES))
    assert evaluate(records, Scorer(RULES)).as_dict() == result.as_dict()
    assert result.accuracy == 1.0
    assert result.macro_f1 == 1.0
    assert result.brier < 0.01


def test_cross_validation_trains_one_model_per_fold() -> None:
    records = [{"title": f"shoppers wishlist idea {n}", "label": "business"} for n in range(20)]
    records += [{"title": f"printer spooler stuck {n}", "label": "inward"} for n in range(20)]
    result = evaluate(
        records, scorer=Scorer(RuleSet.empty(), thresholds=Thresholds(0.5, 0.5)), folds=4
    )
    assert result.folds == 4
    assert len(result.fold_macro_f1) == 4
    assert result.macro_f1 == 1.0


def test_uncertain_lists_the_closest_calls_first() -> None:
    items = [
        make_item("good", key="sure"),
        make_item("meh", key="coin", effort_hours=1.0),
        make_item("meh", key="coin-big", effort_hours=50.0),
        make_item("bad", key="sure-too"),
    ]
    picked = uncertain(items, Scorer(RULES), n=3)
    assert [s.key for s in picked] == ["coin-big", "coin", "sure"]


# -- acceptance measurements (figures quoted in docs/scoring.md) ----------------------------


def test_default_rules_on_the_sandbox_ground_truth() -> None:
    pairs, generator_share = sandbox_items(seed=7)
    result = evaluate(pairs, scorer=Scorer())
    assert result.macro_f1 >= 0.90
    assert abs(result.effort["error_points"]) <= 3.0
    assert result.effort["true_share"] == pytest.approx(generator_share, abs=1e-9)


@pytest.mark.slow
def test_model_on_nlbse_reaches_the_floor(shared_data: Path) -> None:
    train_pairs = nlbse_items(shared_data, "train")
    test_pairs = nlbse_items(shared_data, "test")
    model = TextModel.train(
        [(i.title, i.description) for i, _ in train_pairs], [lab for _, lab in train_pairs]
    )
    result = evaluate(
        test_pairs, scorer=Scorer(RuleSet.empty(), model, thresholds=Thresholds(0.5, 0.5))
    )
    assert result.macro_f1 >= 0.88
