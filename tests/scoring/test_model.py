"""The text model: training, transparency, persistence, combination with the rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from itsm_bridge.errors import DataError, InvalidOptionsError
from itsm_bridge.schema import Label
from itsm_bridge.scoring import RuleSet, Scorer, TextModel, Thresholds, TrainingParams, train

from .conftest import make_item

BUSINESS_TEXTS = [
    "add wishlist sharing for shoppers",
    "launch gift vouchers online",
    "new loyalty tier for members",
    "shoppers can compare products side by side",
    "wishlist reminders by email for shoppers",
    "gift wrapping option at checkout for shoppers",
]
INWARD_TEXTS = [
    "restart hung print spooler",
    "print queue stuck again",
    "spooler service crashed overnight",
    "clear stuck jobs on floor printer",
    "printer driver hung after update",
    "restart spooler on print server",
]


def tiny_model(**overrides: object) -> TextModel:
    texts = BUSINESS_TEXTS + INWARD_TEXTS
    labels = ["business-facing"] * len(BUSINESS_TEXTS) + ["inward-facing"] * len(INWARD_TEXTS)
    return TextModel.train(texts, labels, min_df=1, **overrides)  # type: ignore[arg-type]


def test_model_separates_its_training_classes() -> None:
    model = tiny_model()
    assert model.predict_proba("shoppers wishlist") > 0.5
    assert model.predict_proba("spooler hung") < 0.5
    assert model.info["documents"] == 12
    assert model.info["business"] == 6


def test_strongest_features_are_the_reason() -> None:
    model = tiny_model()
    logit, reason = model.explain("restart the spooler for shoppers")
    assert reason.startswith("text model: ")
    assert "'spooler'" in reason or "'restart'" in reason
    top = model.top_features(3)
    assert {term for term, _ in top["inward-facing"]} & {"spooler", "hung", "stuck", "restart"}
    assert logit == pytest.approx(model.log_odds("restart the spooler for shoppers"))


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    model = tiny_model()
    path = tmp_path / "model.json"
    model.save(path)
    loaded = TextModel.load(path)
    for text in ("shoppers wishlist", "spooler hung", "nothing known here"):
        assert loaded.log_odds(text) == pytest.approx(model.log_odds(text), abs=1e-6)
    assert loaded.fingerprint == TextModel.from_dict(json.loads(path.read_text())).fingerprint
    assert json.loads(model.to_json())["format"] == "itsm-bridge/text-model"


def test_loading_a_wrong_file_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_text('{"format": "something else"}')
    with pytest.raises(InvalidOptionsError, match="not an itsm-bridge text model"):
        TextModel.load(path)
    path.write_text("not json")
    with pytest.raises(InvalidOptionsError, match="not a JSON model file"):
        TextModel.load(path)


def test_training_refuses_bad_labels_and_one_class() -> None:
    with pytest.raises(DataError, match="training label"):
        TextModel.train(["a", "b"], ["business-facing", "maybe"])
    with pytest.raises(DataError, match="both"):
        TextModel.train(["a", "b"], ["business-facing", "business-facing"])
    with pytest.raises(InvalidOptionsError, match="unknown training parameter"):
        TextModel.train(["a", "b"], ["business", "inward"], colour="red")


def test_training_is_deterministic() -> None:
    assert tiny_model().to_json() == tiny_model().to_json()


def test_regularisation_shrinks_weights() -> None:
    strong = tiny_model(C=0.1)
    weak = tiny_model(C=100.0)
    assert max(abs(w) for _, w in strong.features.values()) < max(
        abs(w) for _, w in weak.features.values()
    )


def test_model_joins_the_rules_as_one_reason() -> None:
    model = tiny_model()
    scored = Scorer(RuleSet.default(), model).score_one(make_item("shoppers wishlist", "task"))
    rules = [r.rule for r in scored.scoring.reasons]
    assert "model" in rules
    model_reason = next(r for r in scored.scoring.reasons if r.rule == "model")
    assert "text model:" in model_reason.evidence
    assert Scorer(RuleSet.default(), model).version.startswith(RuleSet.default().version + "+")


def test_residual_training_fits_on_top_of_the_rules() -> None:
    items = [make_item(t) for t in BUSINESS_TEXTS + INWARD_TEXTS]
    labels = [Label.BUSINESS] * 6 + [Label.INWARD] * 6
    residual = train(items, labels, min_df=1)
    alone = train(items, labels, residual=False, min_df=1)
    assert residual.info["residual_of_rules"] is True
    assert alone.info["residual_of_rules"] is False
    combined = Scorer(RuleSet.default(), residual, Thresholds(0.5, 0.5))
    right = sum(
        s.scoring.label is lab for s, lab in zip(combined.score(items), labels, strict=True)
    )
    assert right >= 11


def test_params_defaults_are_recorded() -> None:
    model = tiny_model()
    assert model.params == TrainingParams(min_df=1)
    assert model.to_dict()["params"]["min_df"] == 1
