"""Verdicts in the store, kept per scorer version and recomputed when rules or items change.

A verdict is keyed by ``(item id, scorer version)`` and remembers the content hash of the item it
judged. When the rules change, the version changes and nothing matches; when an item changes, its
hash no longer matches. Either way the next :func:`update_verdicts` re-scores. Because a parent's
verdict flows to its children, a re-score covers every live item (parents first, so children do
not wait in memory), not only the changed ones: a changed epic must be able to move its stories.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from itsm_bridge.schema import WorkItem
from itsm_bridge.sync.store import Store

if TYPE_CHECKING:
    from itsm_bridge.scoring import Scorer

__all__ = ["scorer_for", "update_verdicts"]

log = logging.getLogger("itsm_bridge.sync.verdicts")


def scorer_for(rules: Any = None, model: Any = None) -> Scorer:
    """A :class:`~itsm_bridge.scoring.Scorer` from a rule set (or its path) and a model."""
    from itsm_bridge.scoring import RuleSet, Scorer

    if isinstance(rules, Scorer):
        return rules
    rule_set = rules if isinstance(rules, RuleSet) else RuleSet.load(rules)
    return Scorer(rule_set, model)


def update_verdicts(store: Store, scorer: Scorer | None = None, *, force: bool = False) -> int:
    """Bring the store's verdicts for ``scorer`` up to date; return how many items were scored.

    Nothing is done when every live item already has a verdict for this scorer version at its
    current content (unless ``force``).
    """
    scorer = scorer if scorer is not None else scorer_for()
    version = scorer.version
    stale = store.stale_verdicts(version)
    if not stale and not force:
        log.info("verdicts for rule set %s are up to date", version)
        return 0
    log.info("scoring the store with rule set %s (%d items new or changed)", version, stale)
    pairs: Iterator[tuple[str, WorkItem]] = (
        (digest, item) for item, digest in store.item_hashes(parents_first=True)
    )
    scored = ((item.id, digest, verdict) for digest, item, verdict in scorer.score_pairs(pairs))
    return store.save_verdicts(version, scored)
