"""Hostile configuration: sync config files and rules files that are wrong in every way.

Property: loading a file (and, for a sync config, building and checking every source the way
``itsm-bridge sync --config`` does) either succeeds or raises a ``ConfigurationError`` whose
message names the spot: the file, the source or rule, and the key. Never another exception (the
CLI would print "unexpected error" and exit 1), never a secret's value in the message. Files are
generated from a valid one by setting a key to a value of the wrong type, a huge value, or an
unknown key; plus fixed cases the generator would rarely reach (100,000 nested arrays, Latin-1
bytes, a 1 MB source name).
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest.mock import create_autospec

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from reliability_kit import FIGURES, SCALE, seed_for

from itsm_bridge.errors import ConfigurationError
from itsm_bridge.scoring import RuleSet
from itsm_bridge.sync import Store, SyncResult
from itsm_bridge.sync import config as sync_config

SECRET = "Zx9-config-canary-secret"
SETTINGS = settings(
    max_examples=SCALE.examples,
    derandomize=SCALE.name != "full",
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# -- a small TOML writer (the stdlib reads TOML but does not write it) ---------------------------


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        # a JSON string is a TOML basic string, once DEL (which JSON leaves raw) is escaped
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def to_toml(doc: dict[str, Any]) -> str:
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    arrays: list[tuple[str, list[dict[str, Any]]]] = []
    for key, value in doc.items():
        if isinstance(value, dict) and value and all(isinstance(k, str) for k in value):
            tables.append((key, value))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            arrays.append((key, value))
        else:
            lines.append(f"{json.dumps(key)} = {toml_value(value)}")
    for key, table in tables:
        lines.append(f"[{json.dumps(key)}]")
        lines.extend(f"{json.dumps(k)} = {toml_value(v)}" for k, v in table.items())
    for key, rows in arrays:
        for row in rows:
            lines.append(f"[[{json.dumps(key)}]]")
            lines.extend(f"{json.dumps(k)} = {toml_value(v)}" for k, v in row.items())
    return "\n".join(lines) + "\n"


WRONG = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.text(max_size=30),
    st.booleans(),
    st.lists(st.integers(-5, 5), max_size=3),
    st.dictionaries(st.sampled_from(["a", "value", "x"]), st.integers(), max_size=2),
    st.datetimes(timezones=st.just(UTC)),
    st.just("x" * 100_000),  # huge
    st.just(2**63 - 1),  # huge
)
UNKNOWN_KEY = st.from_regex(r"[a-z][a-z_]{2,14}", fullmatch=True)


# -- sync config -------------------------------------------------------------------------------


def base_config() -> dict[str, Any]:
    return {
        "store": "itsm.db",
        "census": False,
        "source": [
            {
                "name": "snow-prod",
                "connector": "servicenow",
                "url": "https://acme.service-now.com",
                "user": "svc",
                "password_env": "RELIABILITY_PW",
                "kinds": ["incident", "change"],
                "since": "2026-01-01T00:00:00Z",
                "options": {"page_size": 500, "max_concurrency": 2, "completeness": "report"},
            },
            {
                "name": "jira-cloud",
                "connector": "jira",
                "url": "https://acme.atlassian.net",
                "user": "me@acme.example",
                "password_env": "RELIABILITY_PW",
                "options": {"page_size": 100, "lag_seconds": 2.0},
            },
        ],
    }


def check_config(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``itsm-bridge sync --config`` does before any request: load, build, check sources."""

    def no_network(conn: Any, store: Any, kinds: Any, **kwargs: Any) -> SyncResult:
        return SyncResult(conn.source, conn.name, 0, datetime.now(UTC), status="ok")

    monkeypatch.setattr(sync_config, "run_sync", no_network)
    config = sync_config.load_config(path)
    sync_config.sync_sources(config, store=create_autospec(Store, instance=True))


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELIABILITY_PW", SECRET)


def test_the_base_config_is_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secrets_env: None
) -> None:
    path = tmp_path / "itsm.toml"
    path.write_text(to_toml(base_config()))
    check_config(path, monkeypatch)


@st.composite
def config_mutation(draw: st.DrawFn) -> tuple[dict[str, Any], str, str | None, str]:
    """(document, key, source name or None, how) with one key set wrong or added."""
    doc = base_config()
    level = draw(st.sampled_from(["top", "source", "options"]))
    how = draw(st.sampled_from(["wrong", "unknown"]))
    source_name = None
    if level == "top":
        target = doc
    else:
        src = draw(st.sampled_from(doc["source"]))
        source_name = src["name"]
        target = src if level == "source" else src["options"]
    if how == "unknown":
        key = draw(UNKNOWN_KEY.filter(lambda k: k not in target))
    else:
        key = draw(st.sampled_from(sorted(target)))
    target[key] = draw(WRONG | st.lists(WRONG, min_size=1, max_size=2))
    return doc, key, source_name, how


def assert_names_the_spot(message: str, key: str, source: str | None, path: Path) -> None:
    assert SECRET not in message
    if source is not None and key != "name":
        assert source in message, f"the message does not name source {source!r}: {message}"
    else:
        assert path.name in message, f"the message does not name the file: {message}"
    assert key.lower() in message.lower() or "environment variable" in message, (
        f"the message does not name the key {key!r}: {message}"
    )


@pytest.mark.soak
def test_any_config_mutation_is_accepted_or_refused_naming_the_spot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secrets_env: None
) -> None:
    @SETTINGS
    @seed(seed_for(8401))
    @given(case=config_mutation())
    def run(case: tuple[dict[str, Any], str, str | None, str]) -> None:
        doc, key, source, how = case
        path = tmp_path / "itsm.toml"
        path.write_text(to_toml(doc))
        FIGURES.add("inputs_tried.config_files")
        try:
            check_config(path, monkeypatch)
        except ConfigurationError as exc:
            assert_names_the_spot(str(exc), key, source, path)
            return
        assert how == "wrong", f"unknown key {key!r} accepted silently"

    run()


@pytest.mark.parametrize(
    ("name", "content", "spot"),
    [
        ("deep", "store = " + "[" * 100_000 + "]" * 100_000, "deep.toml"),
        ("latin1", None, "latin1.toml"),
        ("binary", b"\x00\x01\x02\xff\xfe" * 1000, "binary.toml"),
        ("huge-name", "NAME_1MB", "name"),
        ("literal-secret", "LITERAL", "password"),
        ("bad-kind", "KIND", "incidnt"),
        ("bad-since", "SINCE", "since"),
    ],
)
def test_fixed_hostile_configs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    secrets_env: None,
    name: str,
    content: str | bytes | None,
    spot: str,
) -> None:
    path = tmp_path / f"{name}.toml"
    doc = base_config()
    if content is None:
        path.write_bytes(to_toml(doc).replace("svc", "caf\xe9").encode("latin-1"))
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "NAME_1MB":
        doc["source"][0]["name"] = "s" * 1_000_000
        path.write_text(to_toml(doc))
    elif content == "LITERAL":
        doc["source"][0]["password"] = SECRET
        path.write_text(to_toml(doc))
    elif content == "KIND":
        doc["source"][0]["kinds"] = ["incidnt"]
        path.write_text(to_toml(doc))
    elif content == "SINCE":
        doc["source"][1]["since"] = "yesterday"
        path.write_text(to_toml(doc))
    else:
        path.write_text(content)
    with pytest.raises(ConfigurationError) as caught:
        check_config(path, monkeypatch)
    message = str(caught.value)
    assert spot in message, message
    assert SECRET not in message
    assert len(message) < 2000, "a refused huge value must not be echoed whole"
    FIGURES.add("inputs_tried.config_files")


# -- rules files -------------------------------------------------------------------------------


def base_rules() -> dict[str, Any]:
    return {
        "format": 1,
        "settings": {"prior": -0.2, "business_threshold": 0.6, "inward_threshold": 0.4},
        "lexicon": {"shop": ["checkout", "basket", "storefront"]},
        "rule": [
            {"id": "my.text", "signal": "text", "phrases": ["@shop"], "weight": 1.2},
            {
                "id": "my.field",
                "signal": "category",
                "field": "category",
                "equals": ["Hardware"],
                "weight": -0.8,
            },
            {
                "id": "my.regex",
                "signal": "text",
                "field": "title",
                "regex": "^CVE-\\d+",
                "weight": -1.0,
            },
            {"id": "my.kinds", "signal": "kind", "kinds": ["incident"], "weight": -0.5},
        ],
    }


@st.composite
def rules_mutation(draw: st.DrawFn) -> tuple[dict[str, Any], str, str | None, str]:
    doc = base_rules()
    level = draw(st.sampled_from(["top", "settings", "rule"]))
    how = draw(st.sampled_from(["wrong", "unknown"]))
    rule_id = None
    if level == "top":
        target = doc
    elif level == "settings":
        target = doc["settings"]
    else:
        target = draw(st.sampled_from(doc["rule"]))
        rule_id = target["id"]
    if how == "unknown":
        key = draw(UNKNOWN_KEY.filter(lambda k: k not in target))
    else:
        key = draw(st.sampled_from(sorted(k for k in target if k != "id")))
    target[key] = draw(WRONG | st.lists(WRONG, min_size=1, max_size=2))
    return doc, key, rule_id, how


@pytest.mark.soak
def test_any_rules_mutation_is_accepted_or_refused_naming_the_spot(tmp_path: Path) -> None:
    @SETTINGS
    @seed(seed_for(8402))
    @given(case=rules_mutation())
    def run(case: tuple[dict[str, Any], str, str | None, str]) -> None:
        doc, key, rule_id, how = case
        path = tmp_path / "rules.toml"
        path.write_text(to_toml(doc))
        FIGURES.add("inputs_tried.rules_files")
        try:
            RuleSet.load(path)
        except ConfigurationError as exc:
            message = str(exc)
            assert path.name in message, message
            assert rule_id is None or rule_id in message, message
            assert key in message or re.search(r"match|field", message), message
            return
        assert how == "wrong", f"unknown key {key!r} accepted silently"

    run()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("deep", "format = " + "[" * 100_000 + "]" * 100_000),
        ("deep-tables", "a = " + "{b = " * 50_000 + "1" + "}" * 50_000),
        ("latin1", None),
        ("binary", b"\xff\xfe\x00r\x00u\x00l\x00e" * 500),
    ],
)
def test_fixed_hostile_rules_files(tmp_path: Path, name: str, content: str | bytes | None) -> None:
    path = tmp_path / f"{name}.toml"
    if content is None:
        path.write_bytes(to_toml(base_rules()).replace("checkout", "caf\xe9").encode("latin-1"))
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ConfigurationError) as caught:
        RuleSet.load(path)
    assert path.name in str(caught.value)
    assert len(str(caught.value)) < 2000
    FIGURES.add("inputs_tried.rules_files")
