"""The engine: evidence as log-odds, reasons, caps, negation, inheritance over a batch."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import itsm_bridge as ib
from itsm_bridge.errors import DataError
from itsm_bridge.schema import Label, ScoredItem, Verdict
from itsm_bridge.scoring import RuleSet, Scorer, Thresholds, record_to_item, score

from .conftest import make_item

SCORER = Scorer()


def logit(p: float) -> float:
    return math.log(p / (1 - p))


@pytest.mark.parametrize(
    "title",
    ["", "Weekly sync", "Restore checkout", "Add gift cards to the webshop", "x" * 5000],
)
def test_every_verdict_has_a_reason_and_reasons_add_up(title: str) -> None:
    verdict = SCORER.score_one(make_item(title)).scoring
    assert verdict.reasons
    weights = [r.weight for r in verdict.reasons]
    assert weights == sorted(weights, key=lambda w: -abs(w))
    prior = SCORER.rules.settings.prior
    total = sum(weights) if verdict.reasons[0].rule != "prior" else prior
    if verdict.reasons[0].rule != "prior":
        total += prior
    assert logit(verdict.p_business) == pytest.approx(total, abs=1e-3)


def test_no_evidence_gives_the_prior_and_undetermined() -> None:
    verdict = SCORER.score_one(make_item("Weekly sync")).scoring
    assert verdict.label is Label.UNDETERMINED
    assert [r.rule for r in verdict.reasons] == ["prior"]


def test_reasons_name_the_rule_and_the_evidence() -> None:
    verdict = SCORER.score_one(make_item("Restore checkout after outage", "incident")).scoring
    by_rule = {r.rule: r for r in verdict.reasons}
    assert by_rule["kind.incident"].evidence == "kind = incident"
    assert "restore" in by_rule["text.run.restoration"].evidence
    assert by_rule["text.run.restoration"].evidence.startswith("title:")


def test_investment_fields_decide_against_all_other_evidence() -> None:
    item = make_item(
        "Restore checkout outage, fix crash, patch servers",
        "incident",
        extra={"investment": {"investment_class": "Change"}},
    )
    verdict = SCORER.score_one(item).scoring
    assert verdict.label is Label.BUSINESS
    assert verdict.reasons[0].rule == "investment.class.change"


def test_negation_guard_drops_negated_phrases() -> None:
    plain = SCORER.score_one(make_item("Downtime for the loyalty database")).scoring
    negated = SCORER.score_one(make_item("Zero downtime for the loyalty database")).scoring
    assert any("downtime" in r.evidence for r in plain.reasons)
    assert not any("downtime" in r.evidence for r in negated.reasons)
    no_impact = SCORER.score_one(make_item("Deploy new pricing, no customer impact")).scoring
    assert not any("customer" in r.evidence for r in no_impact.reasons)


def test_words_inside_other_words_do_not_match() -> None:
    verdict = SCORER.score_one(make_item("Fixture catalogue for the patchwork quilt shop")).scoring
    assert not any("'fix'" in r.evidence or "'patch'" in r.evidence for r in verdict.reasons)


def test_inflections_match() -> None:
    for title in ("Restored the VPN", "Restoring the VPN", "Restores the VPN"):
        reasons = SCORER.score_one(make_item(title)).scoring.reasons
        assert any(r.rule == "text.run.restoration" for r in reasons), title


def test_description_counts_less_than_the_title() -> None:
    in_title = SCORER.score_one(make_item("Restore the VPN")).scoring
    in_description = SCORER.score_one(make_item("VPN", description="Restore the VPN")).scoring
    title_weight = {r.rule: r.weight for r in in_title.reasons}["text.run.restoration"]
    desc_weight = {r.rule: r.weight for r in in_description.reasons}["text.run.restoration"]
    factor = SCORER.rules.settings.description_factor
    assert desc_weight == pytest.approx(title_weight * factor)


def test_text_evidence_is_capped_per_signal() -> None:
    title = (
        "Restore outage, fix crash bug, patch upgrade, renew certificate, backup failover, "
        "monitoring alert, capacity disk space, vulnerability, licence cost, refactor, flaky tests"
    )
    verdict = SCORER.score_one(make_item(title)).scoring
    text_total = sum(r.weight for r in verdict.reasons if r.rule.startswith("text."))
    assert text_total == pytest.approx(-SCORER.rules.settings.caps["text"], abs=1e-3)


def test_kind_filter_on_a_field_rule() -> None:
    case = {"extra": {"investment": {"business_case": True}}}
    project = SCORER.score_one(make_item("Programme X", "project", **case)).scoring
    task = SCORER.score_one(make_item("Programme X", "task", **case)).scoring
    assert any(r.rule == "kind.project.business-case" for r in project.reasons)
    assert not any(r.rule == "kind.project.business-case" for r in task.reasons)


def test_service_and_labels_are_low_trust_evidence() -> None:
    item = make_item(
        "Weekly sync",
        service="Online Store",
        labels=("tech-debt",),
        extra={"service_classification": "business"},
    )
    reasons = {r.rule: r for r in SCORER.score_one(item).scoring.reasons}
    assert reasons["service.classification.business"].weight > 0
    assert reasons["labels.run"].weight < 0
    assert abs(reasons["labels.run"].weight) < 1


def test_thresholds_are_configurable() -> None:
    item = make_item("Launch gift cards")
    strict = Scorer(thresholds=Thresholds(business=0.999, inward=0.001)).score_one(item)
    assert strict.scoring.label is Label.UNDETERMINED
    forced = Scorer(thresholds=Thresholds(0.5, 0.5)).score_one(make_item("Weekly sync"))
    assert forced.scoring.label is Label.INWARD  # the prior leans inward
    with pytest.raises(ValueError, match="thresholds"):
        Thresholds(business=0.3, inward=0.6)


def test_scored_item_keeps_the_item_and_serialises() -> None:
    item = make_item("Restore checkout", "incident", team="Ops", labels=("p1",))
    scored = SCORER.score_one(item)
    assert isinstance(scored, ScoredItem)
    assert scored.item == item
    line = scored.model_dump(mode="json")
    assert line["scoring"]["label"] == "inward-facing"
    assert line["scoring"]["reasons"][0]["rule"]
    again = ScoredItem.model_validate(line)
    assert again == scored
    assert Verdict.model_validate(line["scoring"]) == scored.scoring


# -- parent inheritance --------------------------------------------------------------------


def family() -> list:
    return [
        make_item(
            "Omnichannel programme",
            "project",
            key="PRJ1",
            extra={"investment": {"portfolio_category": "grow"}},
        ),
        make_item("Sprint 3 tasks", key="T1", parent_key="PRJ1"),
        make_item("Write test cases", key="T2", parent_key="PRJ1"),
        make_item("Sub-task of T1", key="T3", parent_key="T1"),
        make_item(
            "Keep the lights on",
            "project",
            key="PRJ2",
            extra={"investment": {"portfolio_category": "run"}},
        ),
        make_item("Sprint 3 tasks", key="T4", parent_key="PRJ2"),
        make_item("Orphan work", key="T5", parent_key="PRJ404"),
        make_item("Restore the VPN outage", "incident", key="INC1", parent_key="PRJ1"),
    ]


def verdicts(items: list) -> dict[str, tuple[str, float]]:
    return {s.key: (s.scoring.label.value, s.scoring.p_business) for s in SCORER.score(items)}


def test_children_inherit_their_parents_verdict() -> None:
    result = verdicts(family())
    assert result["T1"][0] == "business-facing"
    assert result["T2"][0] == "business-facing"
    assert result["T3"][0] == "business-facing"  # grandchild, through T1
    assert result["T4"][0] == "inward-facing"
    assert result["T5"][0] == "undetermined"  # parent unknown: no inherited evidence
    assert result["INC1"][0] == "inward-facing"  # strong own evidence beats the parent


def test_inheritance_reason_names_the_parent() -> None:
    scored = {s.key: s for s in SCORER.score(family())}
    reasons = {r.rule: r for r in scored["T1"].scoring.reasons}
    assert "PRJ1" in reasons["parent.inherit"].evidence
    assert reasons["parent.inherit"].weight == pytest.approx(3.0)


@settings(max_examples=40, deadline=None)
@given(st.permutations(range(8)))
def test_inheritance_is_independent_of_input_order(order: list[int]) -> None:
    items = family()
    shuffled = [items[i] for i in order]
    out = list(SCORER.score(shuffled))
    assert [s.key for s in out] == [i.key for i in shuffled]  # output keeps input order
    assert {s.key: (s.scoring.label.value, s.scoring.p_business) for s in out} == verdicts(items)


@pytest.mark.parametrize("snow_first", [True, False])
def test_a_parent_is_found_in_the_childs_own_source(snow_first: bool) -> None:
    # Two sources with a "P1" each: the Jira child's parent is the Jira P1, whatever the order.
    grow = {"investment": {"portfolio_category": "grow"}}
    snow = make_item("P", "project", key="P1", id="snow:P1", source="snow", extra=grow)
    jira = make_item("Restore the backup", key="P1", id="jira:P1", source="jira")
    child = make_item("Sprint 3 tasks", key="J-1", id="jira:J-1", source="jira", parent_key="P1")
    batch = [snow, jira, child] if snow_first else [jira, snow, child]
    scored = {s.id: s for s in SCORER.score(batch)}
    inherited = {r.rule: r.weight for r in scored["jira:J-1"].scoring.reasons}["parent.inherit"]
    parent_own = scored["jira:P1"].scoring.p_business
    assert (inherited < 0) == (parent_own < 0.5)  # the Jira parent's sign, not the project's
    assert scored["jira:J-1"].scoring.label is not Label.BUSINESS


def test_parents_from_the_store_fill_the_gap() -> None:
    child = make_item("Sprint 3 tasks", key="T9", parent_key="PRJ9")
    parent_verdict = SCORER.score_one(
        make_item("P", "project", extra={"investment": {"portfolio_category": "grow"}})
    ).scoring
    [alone] = SCORER.score([child])
    [helped] = SCORER.score([child], parents={"PRJ9": parent_verdict})
    assert alone.scoring.label is Label.UNDETERMINED
    assert helped.scoring.label is Label.BUSINESS


def test_parent_cycles_do_not_hang_and_do_not_depend_on_order() -> None:
    a = make_item("Sprint tasks", key="A", parent_key="B")
    b = make_item("Sprint tasks", key="B", parent_key="A")
    c = make_item("Restore the VPN", key="C", parent_key="A")
    first = verdicts([a, b, c])
    assert first == verdicts([c, b, a])
    assert set(first) == {"A", "B", "C"}


def test_linked_project_acts_as_parent() -> None:
    project = make_item(
        "P", "project", key="PRJ7", extra={"investment": {"portfolio_category": "transform"}}
    )
    change = make_item("Deploy release 4", "change", key="CHG7", extra={"linked_project": "PRJ7"})
    result = {s.key: s.scoring.label for s in SCORER.score([change, project])}
    assert result["CHG7"] is Label.BUSINESS


def test_streaming_yields_before_the_input_ends() -> None:
    produced: list[str] = []

    def items():  # type: ignore[no-untyped-def]
        for n in range(3):
            produced.append(f"K{n}")
            yield make_item("Restore VPN", key=f"K{n}")

    stream = SCORER.score(items())
    first = next(stream)
    assert first.key == "K0"
    assert produced == ["K0"]


def test_score_function_and_public_name(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text('[[rule]]\nid = "kind.incident"\nweight = -9.0\n')
    [scored] = score([make_item("x", "incident")], rules=str(path))
    assert scored.scoring.reasons[0].weight == pytest.approx(-3.0)  # capped by the kind cap
    assert ib.score is score
    [default] = ib.score([make_item("Restore VPN", "incident")])
    assert default.scoring.label is Label.INWARD


def test_score_pairs_carries_payloads() -> None:
    out = list(SCORER.score_pairs([("a", make_item("Restore VPN")), ("b", make_item("x"))]))
    assert [p for p, _, _ in out] == ["a", "b"]
    assert isinstance(out[0][2], Verdict)


def test_fast_construction_equals_validation() -> None:
    scored = SCORER.score_one(make_item("Add gift cards to the webshop", team="Shop"))
    rebuilt = ScoredItem.model_validate(scored.model_dump())
    assert rebuilt == scored
    assert rebuilt.model_fields_set == scored.model_fields_set | rebuilt.model_fields_set


def test_memo_does_not_change_results() -> None:
    scorer = Scorer()
    item = make_item("Restore checkout", "incident", description="Timeout at the gateway")
    first = scorer.score_one(item).scoring
    second = scorer.score_one(item).scoring
    assert first == second == Scorer().score_one(item).scoring


def test_empty_rule_set_without_model_gives_the_prior() -> None:
    verdict = Scorer(RuleSet.empty()).score_one(make_item("Restore VPN")).scoring
    assert [r.rule for r in verdict.reasons] == ["prior"]


def test_strong_own_evidence_fades_the_inheritance() -> None:
    grow = {"extra": {"investment": {"portfolio_category": "grow"}}}
    items = [
        make_item("Programme", "project", key="PRJ5", **grow),
        make_item("Sprint tasks", key="C1", parent_key="PRJ5"),
        make_item("Refactor", key="C2", parent_key="PRJ5"),
        make_item("Restore the outage and fix the crash", key="C3", parent_key="PRJ5"),
    ]
    scored = {s.key: s.scoring for s in SCORER.score(items)}
    inherited = {
        key: next((r for r in v.reasons if r.rule == "parent.inherit"), None)
        for key, v in scored.items()
    }
    assert inherited["C1"] is not None
    assert inherited["C1"].weight == pytest.approx(3.0)
    assert inherited["C2"] is not None
    assert 0 < inherited["C2"].weight < 3.0
    assert "faded" in inherited["C2"].evidence
    assert inherited["C3"] is None  # own evidence beyond strong_evidence: no inheritance
    assert scored["C3"].label is Label.INWARD


def test_score_takes_plain_records_as_the_score_command_reads_them() -> None:
    records = [{"title": "Launch the loyalty programme for store customers"}, {"title": "x"}]
    scored = list(ib.score(records))
    assert [s.title for s in scored] == [r["title"] for r in records]
    assert scored[0].scoring.label is Label.BUSINESS
    items = [record_to_item(r, position=n) for n, r in enumerate(records, start=1)]
    assert [s.scoring for s in scored] == [s.scoring for s in ib.score(items)]
    with pytest.raises(DataError, match="no title"):
        list(ib.score([{"key": "X-1"}]))
    with pytest.raises(TypeError, match="item 2 is a str"):
        list(ib.score([records[0], "Upgrade the firewall"]))  # type: ignore[list-item]
