"""A child's parent share joins its own ranked reasons: the result is ranked as if sorted afresh."""

from __future__ import annotations

import itertools
import math

from itsm_bridge.scoring import Scorer
from itsm_bridge.scoring.evaluate_datasets import sandbox_items


def test_children_reasons_are_ranked_and_add_up() -> None:
    items = [item for item, _ in sandbox_items(7)[0]]
    scorer = Scorer()
    prior = scorer.rules.settings.prior
    children = 0
    for scored in scorer.score(items):
        reasons = scored.scoring.reasons
        if not any(r.rule == "parent.inherit" for r in reasons):
            continue
        children += 1
        assert all(r.rule != "prior" for r in reasons)
        strengths = [abs(r.weight) for r in reasons]  # rounded: equal ones may come either way
        assert all(a >= b - 1e-4 for a, b in itertools.pairwise(strengths)), scored.key
        logit = prior + sum(r.weight for r in reasons)
        p = 1 / (1 + math.exp(-logit))
        assert abs(p - scored.scoring.p_business) < 1e-3, scored.key
    assert children > 100
