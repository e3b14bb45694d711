"""Rules as data: the TOML rule format, the shipped default rules and a user's overrides.

A rule is one piece of evidence: when its match spec matches a WorkItem it adds its signed
``weight`` (log-odds; positive leans business-facing) to the verdict. Rules are plain data read
with :mod:`tomllib`; nothing in a rules file is ever executed. The format is documented in
``docs/scoring.md``; in short::

    format = 1

    [settings]
    prior = -0.3                 # log-odds before any evidence
    business_threshold = 0.6     # p_business at or above: business-facing
    inward_threshold = 0.4       # p_business at or below: inward-facing

    [lexicon]                    # named phrase lists, referenced as "@name"
    run_objects = ["server", "certificate", "load balancer"]

    [[rule]]
    id = "text.run-objects"      # unique; a user's rule with the same id overrides this one
    signal = "text"              # investment | kind | parent | service | category | text
    phrases = ["@run_objects"]   # or field+equals, field+regex, services, kinds
    weight = -0.7
    description = "The work is done on infrastructure."

A user's file is loaded on top of the defaults: a rule with a new id is added, a rule with an
existing id is merged into it (giving any match key replaces the whole match spec), and
``enabled = false`` disables it. Validation collects every problem and raises one
:class:`~itsm_bridge.errors.InvalidOptionsError` naming the file, the rule and the key.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from itsm_bridge.errors import InvalidOptionsError
from itsm_bridge.schema import Kind, WorkItem

__all__ = ["SIGNALS", "Rule", "RuleSet", "Settings"]

SIGNALS: tuple[str, ...] = ("investment", "kind", "parent", "service", "category", "text")
"""Signal types, most trusted first. Each has an optional cap on its total evidence."""

DEFAULT_RULES_FILE = "default_rules.toml"

_MATCH_KEYS = frozenset(
    {"phrases", "and_phrases", "not_phrases", "fields", "inflect", "field", "equals", "regex"}
    | {"services"}
)
_RULE_KEYS = frozenset({"id", "signal", "weight", "description", "enabled", "kinds"}) | _MATCH_KEYS
_TOP_KEYS = frozenset({"format", "settings", "lexicon", "lexicon_add", "rule"})
_SETTINGS_KEYS = frozenset(
    {
        "prior",
        "business_threshold",
        "inward_threshold",
        "description_factor",
        "max_text_chars",
        "negation_window",
        "negators",
        "caps",
        "strong_evidence",
        "description_cap",
    }
)
_TEXT_FIELDS = ("title", "description")
_ITEM_FIELDS = frozenset(WorkItem.model_fields)
_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:/-]+$")


@dataclass(frozen=True, slots=True)
class Settings:
    """Rule-set wide settings: the prior, the thresholds and text-matching knobs."""

    prior: float = 0.0
    business_threshold: float = 0.6
    inward_threshold: float = 0.4
    description_factor: float = 0.5
    max_text_chars: int = 4000
    negation_window: int = 3
    negators: tuple[str, ...] = ("no", "not", "without", "never", "non", "t", "nor")
    caps: Mapping[str, float] = field(default_factory=dict)
    strong_evidence: float = 2.0
    description_cap: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "prior": self.prior,
            "business_threshold": self.business_threshold,
            "inward_threshold": self.inward_threshold,
            "description_factor": self.description_factor,
            "max_text_chars": self.max_text_chars,
            "negation_window": self.negation_window,
            "negators": list(self.negators),
            "caps": dict(sorted(self.caps.items())),
            "strong_evidence": self.strong_evidence,
            "description_cap": self.description_cap,
        }


@dataclass(frozen=True, slots=True)
class Rule:
    """One piece of evidence. Exactly one match spec is set (``kinds`` may also filter others).

    Match specs: ``phrases`` (text, optionally with ``and_phrases`` that must also be present and
    ``not_phrases`` that must be absent), ``field`` + ``equals``, ``field`` + ``regex``,
    ``services`` (service names), ``kinds`` alone, or nothing for a ``parent`` rule (whose weight
    caps the inherited evidence).
    """

    id: str
    signal: str
    weight: float
    description: str = ""
    enabled: bool = True
    kinds: frozenset[Kind] | None = None
    phrases: tuple[str, ...] = ()
    and_phrases: tuple[str, ...] = ()
    not_phrases: tuple[str, ...] = ()
    fields: tuple[str, ...] = _TEXT_FIELDS
    inflect: bool = True
    field: str | None = None
    equals: tuple[str, ...] = ()
    regex: str | None = None
    services: tuple[str, ...] = ()

    @property
    def match_type(self) -> str:
        if self.phrases:
            return "phrases"
        if self.regex is not None:
            return "regex"
        if self.equals:
            return "equals"
        if self.services:
            return "services"
        if self.kinds is not None and self.signal != "parent":
            return "kinds"
        return "parent"

    def as_dict(self) -> dict[str, Any]:
        """The rule as TOML-shaped data (defaults left out), used for hashing and export."""
        out: dict[str, Any] = {"id": self.id, "signal": self.signal, "weight": self.weight}
        if self.description:
            out["description"] = self.description
        if not self.enabled:
            out["enabled"] = False
        if self.kinds is not None:
            out["kinds"] = sorted(k.value for k in self.kinds)
        for name in ("phrases", "and_phrases", "not_phrases", "equals", "services"):
            value = getattr(self, name)
            if value:
                out[name] = list(value)
        if self.phrases and self.fields != _TEXT_FIELDS:
            out["fields"] = list(self.fields)
        if self.phrases and not self.inflect:
            out["inflect"] = False
        if self.field is not None:
            out["field"] = self.field
        if self.regex is not None:
            out["regex"] = self.regex
        return out


@dataclass(frozen=True)
class RuleSet:
    """An ordered, validated set of rules with its settings and phrase lexicon.

    ``version`` is a stable hash of everything that can change a verdict, so a store can keep
    verdicts per rule-set version and know when to re-score.
    """

    rules: tuple[Rule, ...]
    settings: Settings = field(default_factory=Settings)
    lexicon: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: str | Path | None = None, *, defaults: bool = True) -> RuleSet:
        """The default rules, extended or overridden by the user's file at ``path`` if given.

        ``defaults=False`` loads only the user's file (a rule set written from scratch).
        """
        base = cls.default() if defaults else cls.empty()
        if path is None:
            return base
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8-sig")  # a BOM (Notepad writes one) is no error
        except OSError as exc:
            raise InvalidOptionsError(f"{file}: cannot read rules file: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise InvalidOptionsError(
                f"{file}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                f"{exc.start}); rules files are UTF-8 TOML"
            ) from None
        return base.extend(_parse_toml(text, str(file)), source=str(file))

    @classmethod
    def default(cls) -> RuleSet:
        """The rules shipped with the package (``itsm_bridge/scoring/default_rules.toml``)."""
        text = (
            resources.files("itsm_bridge.scoring")
            .joinpath(DEFAULT_RULES_FILE)
            .read_text(encoding="utf-8")
        )
        return cls.empty().extend(_parse_toml(text, DEFAULT_RULES_FILE), source="<default>")

    @classmethod
    def empty(cls) -> RuleSet:
        """No rules at all (a learned model alone, or a rule set written from scratch)."""
        return cls(rules=(), settings=Settings(), lexicon={}, sources=())

    @classmethod
    def from_toml(cls, text: str, *, name: str = "<string>", defaults: bool = True) -> RuleSet:
        """Like :meth:`load` for TOML text already in memory (tests, embedded configuration)."""
        base = cls.default() if defaults else cls.empty()
        return base.extend(_parse_toml(text, name), source=name)

    def extend(self, data: Mapping[str, Any], *, source: str = "<mapping>") -> RuleSet:
        """A new rule set: this one with ``data`` (parsed TOML) merged on top; validated."""
        errors: list[str] = []
        _check_keys(data, _TOP_KEYS, source, "top level", errors)
        fmt = data.get("format", 1)
        if fmt != 1:
            errors.append(f"{source}: format: unsupported format {fmt!r} (this version reads 1)")
        settings = _merge_settings(self.settings, data.get("settings", {}), source, errors)
        lexicon = dict(self.lexicon)
        lexicon.update(_read_lexicon(data.get("lexicon", {}), source, "lexicon", errors))
        for name, words in _read_lexicon(
            data.get("lexicon_add", {}), source, "lexicon_add", errors
        ).items():
            if name not in lexicon:
                errors.append(
                    f"{source}: lexicon_add.{name}: no list of that name to add to "
                    "(a new list goes under [lexicon])"
                )
                continue
            lexicon[name] = lexicon.get(name, ()) + tuple(
                w for w in words if w not in lexicon.get(name, ())
            )
        rules = {rule.id: rule for rule in self.rules}
        order = [rule.id for rule in self.rules]
        raw_rules = data.get("rule", [])
        if not isinstance(raw_rules, list):
            errors.append(f"{source}: rule: must be an array of tables ([[rule]])")
            raw_rules = []
        seen: set[str] = set()
        for position, raw in enumerate(raw_rules, start=1):
            rule = _read_rule(raw, position, rules, seen, source, errors)
            if rule is None:
                continue
            if rule.id not in rules:
                order.append(rule.id)
            rules[rule.id] = rule
        final = tuple(rules[rule_id] for rule_id in order)
        _check_references(final, lexicon, source, errors)
        if errors:
            raise InvalidOptionsError("invalid rules: " + "; ".join(errors))
        return RuleSet(
            rules=final, settings=settings, lexicon=lexicon, sources=(*self.sources, source)
        )

    @property
    def enabled_rules(self) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if rule.enabled)

    def get(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    def expand(self, phrases: Iterable[str]) -> tuple[str, ...]:
        """Phrases with every ``@name`` lexicon reference replaced by its words."""
        out: list[str] = []
        for phrase in phrases:
            if phrase.startswith("@"):
                out.extend(self.lexicon[phrase[1:]])
            else:
                out.append(phrase)
        return tuple(dict.fromkeys(out))

    @property
    def version(self) -> str:
        """A stable 12-hex hash of the settings, the lexicon and the enabled rules."""
        payload = {
            "settings": self.settings.as_dict(),
            "lexicon": {name: list(words) for name, words in sorted(self.lexicon.items())},
            "rules": [rule.as_dict() for rule in self.enabled_rules],
        }
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def __len__(self) -> int:
        return len(self.enabled_rules)


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidOptionsError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise InvalidOptionsError(f"{source}: values nested too deeply for a rules file") from None


def _check_keys(
    data: Mapping[str, Any], allowed: frozenset[str], source: str, where: str, errors: list[str]
) -> None:
    for key in data:
        if key not in allowed:
            errors.append(
                f"{source}: {where}: unknown key {key!r} (allowed: {', '.join(sorted(allowed))})"
            )


def nested_repeat(pattern: str) -> bool:
    """Whether an unbounded repeat holds another one (``(a+)+``, ``(\\w*\\s?)*``, ``(x|y+)*``):
    on a near-miss the regex engine tries every way of splitting the text between them, which
    takes time exponential in its length (ReDoS). Possessive repeats and atomic groups never
    backtrack into themselves and are fine. (Read from the ``re`` module's own parser; on a
    Python whose internals differ, no pattern is refused.)"""
    try:
        c = importlib.import_module("re._constants")
        parser = importlib.import_module("re._parser")
    except ImportError:  # pragma: no cover - another implementation's internals
        return False

    def walk(items: Any, inside: bool) -> bool:
        for op, av in items:
            if op in (c.MAX_REPEAT, c.MIN_REPEAT):
                unbounded = av[1] == c.MAXREPEAT
                if (unbounded and inside) or walk(av[2], inside or unbounded):
                    return True
            elif op is c.SUBPATTERN:
                if walk(av[-1], inside):
                    return True
            elif op is c.BRANCH:
                if any(walk(branch, inside) for branch in av[1]):
                    return True
            elif op in (c.ASSERT, c.ASSERT_NOT) and walk(av[1], inside):
                return True
        return False

    try:
        return walk(parser.parse(pattern), False)
    except Exception:  # pragma: no cover - internals changed shape: do not refuse
        return False


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _merge_settings(base: Settings, raw: Any, source: str, errors: list[str]) -> Settings:
    if not isinstance(raw, Mapping):
        errors.append(f"{source}: settings: must be a table")
        return base
    _check_keys(raw, _SETTINGS_KEYS, source, "settings", errors)
    values: dict[str, Any] = {}
    for key in (
        "prior",
        "business_threshold",
        "inward_threshold",
        "description_factor",
        "strong_evidence",
        "description_cap",
    ):
        if key in raw:
            if _is_number(raw[key]):
                values[key] = float(raw[key])
            else:
                errors.append(f"{source}: settings: {key}: must be a number, got {raw[key]!r}")
    # A factor below 0 would turn a description's evidence around; a strong_evidence of 0 or
    # less would switch the fading of a parent's evidence off, or make any evidence erase it.
    if values.get("description_factor", 0.0) < 0:
        errors.append(f"{source}: settings: description_factor: must be >= 0")
    if values.get("strong_evidence", 1.0) <= 0:
        errors.append(f"{source}: settings: strong_evidence: must be > 0")
    for key in ("max_text_chars", "negation_window"):
        if key in raw:
            if isinstance(raw[key], int) and not isinstance(raw[key], bool) and raw[key] >= 0:
                values[key] = raw[key]
            else:
                errors.append(f"{source}: settings: {key}: must be a whole number >= 0")
    if "negators" in raw:
        negators = raw["negators"]
        if isinstance(negators, list) and all(isinstance(w, str) and w for w in negators):
            values["negators"] = tuple(w.lower() for w in negators)
        else:
            errors.append(f"{source}: settings: negators: must be a list of words")
    if "caps" in raw:
        caps = raw["caps"]
        merged = dict(base.caps)
        if not isinstance(caps, Mapping):
            errors.append(f"{source}: settings: caps: must be a table of signal = number")
        else:
            for signal, cap in caps.items():
                if signal not in SIGNALS and signal != "model":
                    errors.append(f"{source}: settings: caps: unknown signal {signal!r}")
                elif not _is_number(cap) or cap <= 0:
                    errors.append(f"{source}: settings: caps: {signal}: must be a number > 0")
                else:
                    merged[signal] = float(cap)
        values["caps"] = merged
    settings = replace(base, **values)
    for key in ("business_threshold", "inward_threshold"):
        value = getattr(settings, key)
        if not 0.0 <= value <= 1.0:
            errors.append(f"{source}: settings: {key}: must be between 0 and 1")
    if settings.inward_threshold > settings.business_threshold:
        errors.append(f"{source}: settings: inward_threshold must not exceed business_threshold")
    return settings


def _read_lexicon(
    raw: Any, source: str, table: str, errors: list[str]
) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, Mapping):
        errors.append(f"{source}: {table}: must be a table of name = [phrases]")
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for name, words in raw.items():
        if not isinstance(words, list) or not words:
            errors.append(f"{source}: {table}.{name}: must be a non-empty list of phrases")
            continue
        bad = [w for w in words if not isinstance(w, str) or not w.strip() or w.startswith("@")]
        if bad:
            errors.append(f"{source}: {table}.{name}: invalid phrase(s) {bad[:3]!r}")
            continue
        out[str(name).lower()] = tuple(w.strip().lower() for w in words)
    return out


def _read_rule(
    raw: Any,
    position: int,
    existing: Mapping[str, Rule],
    seen: set[str],
    source: str,
    errors: list[str],
) -> Rule | None:
    if not isinstance(raw, Mapping):
        errors.append(f"{source}: rule #{position}: must be a table")
        return None
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not _ID_PATTERN.match(rule_id):
        errors.append(
            f"{source}: rule #{position}: id: required, letters, digits and . _ - : / only"
        )
        return None
    where = f"rule {rule_id!r}"
    if rule_id in seen:
        errors.append(f"{source}: {where}: id: duplicate id in the same file")
        return None
    seen.add(rule_id)
    n_errors = len(errors)
    _check_keys(raw, _RULE_KEYS, source, where, errors)
    merged: dict[str, Any] = {}
    base = existing.get(rule_id)
    if base is None and "weight" not in raw and "signal" not in raw:
        # a change to a rule that is not there (a misspelt default id, say)
        errors.append(
            f"{source}: {where}: no rule has this id to change (a new rule needs signal, weight "
            "and a match)"
        )
        return None
    if base is not None:
        merged = base.as_dict()
        if any(key in raw for key in _MATCH_KEYS | {"kinds"}):
            for key in (*_MATCH_KEYS, "kinds"):
                merged.pop(key, None)
    merged.update(raw)
    if "weight" not in merged:
        errors.append(f"{source}: {where}: weight: required")
    elif not _is_number(merged["weight"]):
        errors.append(f"{source}: {where}: weight: must be a number, got {merged['weight']!r}")
    signal = merged.get("signal")
    if signal not in SIGNALS:
        errors.append(
            f"{source}: {where}: signal: must be one of {', '.join(SIGNALS)}, got {signal!r}"
        )
    for key in ("description",):
        if key in merged and not isinstance(merged[key], str):
            errors.append(f"{source}: {where}: {key}: must be a string")
    for key in ("enabled", "inflect"):
        if key in merged and not isinstance(merged[key], bool):
            errors.append(f"{source}: {where}: {key}: must be true or false")
    kinds = _read_kinds(merged.get("kinds"), source, where, errors)
    phrases = _read_phrases(merged, "phrases", source, where, errors)
    and_phrases = _read_phrases(merged, "and_phrases", source, where, errors)
    not_phrases = _read_phrases(merged, "not_phrases", source, where, errors)
    fields = _read_fields(merged.get("fields"), source, where, errors)
    field_name = merged.get("field")
    if field_name is not None and not _valid_field(field_name):
        errors.append(
            f"{source}: {where}: field: unknown field {field_name!r} "
            "(a WorkItem field or extra.<key>[.<key>])"
        )
    equals: tuple[str, ...] = ()
    if "equals" in merged:
        value = merged["equals"]
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(v, (str, int, float, bool)) for v in items):
            errors.append(f"{source}: {where}: equals: must be a non-empty list of values")
        else:
            equals = tuple(_norm_value(v) for v in items)
    regex = merged.get("regex")
    if regex is not None:
        if not isinstance(regex, str) or not regex:
            errors.append(f"{source}: {where}: regex: must be a non-empty string")
            regex = None
        else:
            try:
                re.compile(regex)
            except re.error as exc:
                errors.append(f"{source}: {where}: regex: invalid regular expression: {exc}")
                regex = None
            else:
                if nested_repeat(regex):
                    errors.append(
                        f"{source}: {where}: regex: a repeat inside a repeat with no upper "
                        "bound, as in (a+)+, can take exponential time on a title that almost "
                        "matches; make the inner one possessive (a++) or atomic ((?>a+))"
                    )
                    regex = None
    services = _read_phrases(merged, "services", source, where, errors)
    specs = [
        name
        for name, present in (
            ("phrases", bool(phrases)),
            ("equals", "equals" in merged),
            ("regex", "regex" in merged),
            ("services", bool(services)),
        )
        if present
    ]
    if len(specs) > 1:
        errors.append(f"{source}: {where}: match: give one of {', '.join(specs)}, not several")
    if ("equals" in merged or "regex" in merged) and field_name is None:
        errors.append(f"{source}: {where}: field: required with equals or regex")
    if field_name is not None and "equals" not in merged and "regex" not in merged:
        errors.append(f"{source}: {where}: field: needs equals or regex")
    if (and_phrases or not_phrases or "fields" in merged) and not phrases:
        errors.append(f"{source}: {where}: phrases: required with and_phrases/not_phrases/fields")
    if not specs and kinds is None and signal != "parent" and signal in SIGNALS:
        errors.append(
            f"{source}: {where}: match: no match spec (phrases, field+equals, field+regex, "
            "services or kinds)"
        )
    if signal == "parent" and specs:
        errors.append(f"{source}: {where}: match: a parent rule takes only weight and kinds")
    if len(errors) > n_errors:
        return None
    return Rule(
        id=rule_id,
        signal=str(signal),
        weight=float(merged["weight"]),
        description=str(merged.get("description", "")),
        enabled=bool(merged.get("enabled", True)),
        kinds=kinds,
        phrases=phrases,
        and_phrases=and_phrases,
        not_phrases=not_phrases,
        fields=fields,
        inflect=bool(merged.get("inflect", True)),
        field=field_name,
        equals=equals,
        regex=regex,
        services=services,
    )


def _norm_value(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip().lower()


def _read_kinds(raw: Any, source: str, where: str, errors: list[str]) -> frozenset[Kind] | None:
    if raw is None:
        return None
    values = raw if isinstance(raw, list) else [raw]
    kinds: set[Kind] = set()
    for value in values:
        try:
            kinds.add(Kind(str(value).lower()))
        except ValueError:
            allowed = ", ".join(k.value for k in Kind)
            errors.append(f"{source}: {where}: kinds: unknown kind {value!r} (allowed: {allowed})")
    if not values:
        errors.append(f"{source}: {where}: kinds: must not be empty")
    return frozenset(kinds)


def _read_phrases(
    merged: Mapping[str, Any], key: str, source: str, where: str, errors: list[str]
) -> tuple[str, ...]:
    if key not in merged:
        return ()
    value = merged[key]
    if not isinstance(value, list) or not value:
        errors.append(f"{source}: {where}: {key}: must be a non-empty list of strings")
        return ()
    out: list[str] = []
    for phrase in value:
        if not isinstance(phrase, str) or not phrase.strip():
            errors.append(f"{source}: {where}: {key}: empty or non-string phrase {phrase!r}")
            return ()
        out.append(phrase.strip() if key == "services" else phrase.strip().lower())
    return tuple(out)


def _read_fields(raw: Any, source: str, where: str, errors: list[str]) -> tuple[str, ...]:
    if raw is None:
        return _TEXT_FIELDS
    if (
        not isinstance(raw, list)
        or not raw
        or not all(isinstance(f, str) and f in _TEXT_FIELDS for f in raw)
    ):
        errors.append(f"{source}: {where}: fields: must list 'title' and/or 'description'")
        return _TEXT_FIELDS
    return tuple(dict.fromkeys(raw))


def _valid_field(name: Any) -> bool:
    if not isinstance(name, str) or not name:
        return False
    head, _, rest = name.partition(".")
    if head == "extra":
        return bool(rest) and all(part for part in rest.split("."))
    return not rest and name in _ITEM_FIELDS


def _check_references(
    rules: Sequence[Rule], lexicon: Mapping[str, tuple[str, ...]], source: str, errors: list[str]
) -> None:
    for rule in rules:
        for key in ("phrases", "and_phrases", "not_phrases"):
            for phrase in getattr(rule, key):
                if phrase.startswith("@") and phrase[1:] not in lexicon:
                    errors.append(
                        f"{source}: rule {rule.id!r}: {key}: unknown lexicon name {phrase!r}"
                    )
