"""The TOML rule format: loading, overriding, validation messages, the shipped defaults."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from itsm_bridge.errors import InvalidOptionsError
from itsm_bridge.scoring import RuleSet, Scorer

from .conftest import make_item


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_rules_ship_as_package_data() -> None:
    text = resources.files("itsm_bridge.scoring").joinpath("default_rules.toml").read_text()
    assert "[[rule]]" in text
    rules = RuleSet.load()
    assert len(rules) >= 40
    signals = {rule.signal for rule in rules.rules}
    assert signals == {"investment", "kind", "parent", "service", "category", "text"}


def test_version_is_stable_and_changes_with_the_rules(tmp_path: Path) -> None:
    assert RuleSet.load().version == RuleSet.load().version
    assert len(RuleSet.load().version) == 12
    changed = RuleSet.load(write(tmp_path, '[[rule]]\nid = "kind.incident"\nweight = -3.0\n'))
    assert changed.version != RuleSet.load().version


def test_user_rule_extends_the_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[rule]]
id = "acme.storefront"
signal = "text"
phrases = ["storefront revamp"]
weight = 3.0
description = "Our programme name"
""",
    )
    rules = RuleSet.load(path)
    assert rules.get("acme.storefront").weight == 3.0
    assert len(rules) == len(RuleSet.load()) + 1
    verdict = Scorer(rules).score_one(make_item("Storefront revamp sprint 4")).scoring
    assert verdict.reasons[0].rule == "acme.storefront"


def test_user_rule_overrides_weight_and_keeps_the_match(tmp_path: Path) -> None:
    rules = RuleSet.load(write(tmp_path, '[[rule]]\nid = "kind.incident"\nweight = -0.1\n'))
    rule = rules.get("kind.incident")
    assert rule.weight == -0.1
    assert rule.kinds is not None
    assert {k.value for k in rule.kinds} == {"incident"}


def test_user_rule_replaces_the_match_spec(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[rule]]\nid = "text.run.restoration"\nphrases = ["kaputt"]\n',
    )
    rule = RuleSet.load(path).get("text.run.restoration")
    assert rule.phrases == ("kaputt",)
    assert rule.signal == "text"
    assert rule.weight == RuleSet.load().get("text.run.restoration").weight


def test_disable_a_rule(tmp_path: Path) -> None:
    rules = RuleSet.load(write(tmp_path, '[[rule]]\nid = "kind.incident"\nenabled = false\n'))
    assert "kind.incident" not in {r.id for r in rules.enabled_rules}
    verdict = Scorer(rules).score_one(make_item("Weekly sync", "incident")).scoring
    assert all(r.rule != "kind.incident" for r in verdict.reasons)


def test_lexicon_add_extends_a_phrase_list(tmp_path: Path) -> None:
    rules = RuleSet.load(write(tmp_path, '[lexicon_add]\nbusiness_objects = ["policyholder"]\n'))
    assert "policyholder" in rules.lexicon["business_objects"]
    verdict = Scorer(rules).score_one(make_item("Launch policyholder app")).scoring
    assert any("policyholder" in r.evidence for r in verdict.reasons)


def test_settings_override(tmp_path: Path) -> None:
    rules = RuleSet.load(write(tmp_path, "[settings]\nbusiness_threshold = 0.7\nprior = 0.0\n"))
    assert rules.settings.business_threshold == 0.7
    assert rules.settings.prior == 0.0
    assert Scorer(rules).thresholds.business == 0.7


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[[rule]]\nid = "x"\nsignal = "text"\nphrase = ["a"]\nweight = 1\n',
            "rule 'x': unknown key 'phrase'",
        ),
        (
            '[[rule]]\nid = "x"\nsignal = "text"\nphrases = ["a"]\nweight = "heavy"\n',
            "rule 'x': weight: must be a number, got 'heavy'",
        ),
        (
            '[[rule]]\nid = "x"\nsignal = "text"\nphrases = ["a"]\nweight = true\n',
            "rule 'x': weight: must be a number",
        ),
        ('[[rule]]\nid = "x"\nsignal = "text"\nphrases = []\nweight = 1\n', "rule 'x': phrases"),
        (
            '[[rule]]\nid = "x"\nsignal = "text"\nphrases = [""]\nweight = 1\n',
            "rule 'x': phrases: empty",
        ),
        (
            '[[rule]]\nid = "x"\nsignal = "service"\nfield = "service"\nregex = "(["\nweight = 1\n',
            "rule 'x': regex: invalid regular expression",
        ),
        (
            '[[rule]]\nid = "x"\nsignal = "vibes"\nkinds = ["incident"]\nweight = 1\n',
            "rule 'x': signal: must be one of",
        ),
        ('[[rule]]\nid = "x"\nsignal = "kind"\nkinds = ["epic"]\nweight = 1\n', "unknown kind"),
        (
            '[[rule]]\nid = "x"\nsignal = "text"\nphrases = ["@nope"]\nweight = 1\n',
            "unknown lexicon name '@nope'",
        ),
        (
            '[[rule]]\nid = "x"\nsignal = "category"\nfield = "colour"\nequals = ["red"]\n'
            "weight = 1\n",
            "rule 'x': field: unknown field 'colour'",
        ),
        ('[[rule]]\nid = "x"\nsignal = "text"\nweight = 1\n', "rule 'x': match: no match spec"),
        ('[[rule]]\nsignal = "text"\nphrases = ["a"]\nweight = 1\n', "rule #1: id: required"),
        ("[settings]\nbusiness_threshold = 2\n", "settings: business_threshold"),
        ("[settings]\ncolour = 1\n", "settings: unknown key 'colour'"),
        ("rules = 1\n", "top level: unknown key 'rules'"),
        ("[[rule]\n", "not valid TOML"),
    ],
)
def test_validation_names_file_rule_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InvalidOptionsError) as info:
        RuleSet.load(path)
    message = str(info.value)
    assert str(path) in message
    assert expected in message


def test_validation_reports_every_problem_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[rule]]\nid = "a"\nsignal = "text"\nphrase = ["x"]\nweight = 1\n'
        '[[rule]]\nid = "b"\nsignal = "text"\nphrases = ["y"]\nweight = "x"\n',
    )
    with pytest.raises(InvalidOptionsError) as info:
        RuleSet.load(path)
    assert "rule 'a'" in str(info.value)
    assert "rule 'b'" in str(info.value)


def test_duplicate_ids_in_one_file_are_refused(tmp_path: Path) -> None:
    rule = '[[rule]]\nid = "x"\nsignal = "kind"\nkinds = ["task"]\nweight = 1\n'
    with pytest.raises(InvalidOptionsError, match="duplicate id"):
        RuleSet.load(write(tmp_path, rule + rule))


def test_missing_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidOptionsError, match="cannot read rules file"):
        RuleSet.load(tmp_path / "absent.toml")


def test_rules_are_data_not_code(tmp_path: Path) -> None:
    """A rules file cannot run anything: values are only ever compared or matched."""
    path = write(
        tmp_path,
        '[[rule]]\nid = "x"\nsignal = "text"\nphrases = ["__import__(\'os\').system(\'false\')"]\n'
        "weight = 1\n",
    )
    verdict = Scorer(RuleSet.load(path)).score_one(make_item("__import__ os system")).scoring
    assert verdict.label is not None


def test_from_scratch_without_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, '[[rule]]\nid = "only"\nsignal = "kind"\nkinds = ["task"]\nweight = 2\n')
    rules = RuleSet.load(path, defaults=False)
    assert [r.id for r in rules.rules] == ["only"]


@pytest.mark.parametrize("pattern", ["(a+)+$", r"(\w*\s?)*x", "(x|y+)*"])
def test_a_regex_that_backtracks_exponentially_is_refused(tmp_path: Path, pattern: str) -> None:
    """(a+)+$ on 'aaaa...a!' takes seconds at 26 characters and years at 60: one vendor title
    would stall a nightly run. Refused when the rules load, with the remedy."""
    path = tmp_path / "r.toml"
    path.write_text(
        f'[[rule]]\nid = "x.redos"\nsignal = "text"\nweight = 1.0\nfield = "title"\n'
        f"regex = '{pattern}'\n"
    )
    with pytest.raises(InvalidOptionsError, match=r"x\.redos.*possessive"):
        RuleSet.load(path)
    safe = tmp_path / "safe.toml"
    safe.write_text(path.read_text().replace(pattern, "(a++)+$"))
    assert RuleSet.load(safe)


def test_rules_files_refuse_silent_no_ops_and_accept_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text("[lexicon_add]\nbusines_objects = ['till']\n")
    with pytest.raises(InvalidOptionsError, match=r"lexicon_add\.busines_objects: no list"):
        RuleSet.load(path)
    path.write_text("[[rule]]\nid = 'labels.busines'\nenabled = false\n")
    with pytest.raises(InvalidOptionsError, match="no rule has this id to change"):
        RuleSet.load(path)
    for setting in ("description_factor = -2", "strong_evidence = 0"):
        path.write_text(f"[settings]\n{setting}\n")
        with pytest.raises(InvalidOptionsError, match=setting.split()[0]):
            RuleSet.load(path)
    path.write_bytes(b"\xef\xbb\xbf[settings]\nprior = -0.3\n")
    assert RuleSet.load(path).settings.prior == -0.3
