"""Scoring: explainable business-facing vs inward-facing verdicts, learning and evaluation.

::

    from itsm_bridge.scoring import RuleSet, Scorer, TextModel, evaluate
    scorer = Scorer(RuleSet.load("my-rules.toml"), model=TextModel.load("model.json"))
    for scored in scorer.score(items):
        print(scored.key, scored.scoring.label, scored.scoring.reasons[0].evidence)

The rules are data (``default_rules.toml`` here, your file on top); see ``docs/scoring.md``.
"""

from __future__ import annotations

from itsm_bridge.scoring.engine import Scorer, Thresholds, score
from itsm_bridge.scoring.evaluation import Evaluation, evaluate, load_model, train, uncertain
from itsm_bridge.scoring.model import TextModel, TrainingParams
from itsm_bridge.scoring.records import (
    parse_label,
    read_records,
    record_to_item,
    records_to_items,
    score_records,
)
from itsm_bridge.scoring.rules import SIGNALS, Rule, RuleSet, Settings

__all__ = [
    "SIGNALS",
    "Evaluation",
    "Rule",
    "RuleSet",
    "Scorer",
    "Settings",
    "TextModel",
    "Thresholds",
    "TrainingParams",
    "evaluate",
    "load_model",
    "parse_label",
    "read_records",
    "record_to_item",
    "records_to_items",
    "score",
    "score_records",
    "train",
    "uncertain",
]
