"""The error tree: its drawing matches the classes, one-line messages, pickling, exit codes."""

from __future__ import annotations

import inspect
import pickle
import re

import pytest

from itsm_bridge import errors
from itsm_bridge.errors import ItsmBridgeError, RequestContext

CLASSES = {
    name: obj
    for name, obj in vars(errors).items()
    if inspect.isclass(obj) and issubclass(obj, ItsmBridgeError)
}

_TREE_LINE = re.compile(r"^(?P<indent>[ │├└─]*)(?P<name>[A-Z]\w+)\s{2,}(?P<note>.*?)\s*$")


def _parse_tree() -> dict[str, tuple[str | None, int | None]]:
    """``{class name: (parent name, exit code drawn or None)}`` from the module docstring."""
    doc = errors.__doc__ or ""
    drawn: dict[str, tuple[str | None, int | None]] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        stripped = line[4:] if line.startswith("    ") else None
        if not stripped:
            continue
        match = _TREE_LINE.match(stripped)
        if match is None or not match["name"].endswith("Error"):
            continue
        depth = len(match["indent"]) // 4
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parent = stack[-1][1] if stack else None
        code = re.search(r"exit (\d+)$", match["note"])
        drawn[match["name"]] = (parent, int(code.group(1)) if code else None)
        stack.append((depth, match["name"]))
    return drawn


def test_the_docstring_tree_matches_the_classes() -> None:
    drawn = _parse_tree()
    assert set(drawn) == set(CLASSES), "every error class is drawn, and only those"
    for name, (parent, _code) in drawn.items():
        cls = CLASSES[name]
        if parent is None:
            assert cls is ItsmBridgeError
        else:
            assert cls.__bases__ == (CLASSES[parent],), f"{name} is drawn under {parent}"


def test_exit_codes_per_group_match_the_drawing() -> None:
    drawn = _parse_tree()
    groups = {name: code for name, (_parent, code) in drawn.items() if code is not None}
    assert groups == {
        "ConfigurationError": 2,
        "AccessError": 3,
        "SourceUnavailableError": 4,
        "DataError": 5,
        "StoreError": 6,
    }
    for name, code in groups.items():
        assert CLASSES[name].exit_code == code
    for name, cls in CLASSES.items():
        group = next((g for g in groups if issubclass(cls, CLASSES[g])), None)
        assert cls.exit_code == (groups[group] if group else 1), name
    assert len(set(groups.values())) == len(groups)  # distinct, as design.md asks


def test_every_error_is_exported() -> None:
    assert set(errors.__all__) == {*CLASSES, "RequestContext"}


CONTEXT = RequestContext(
    connector="servicenow",
    endpoint="incident",
    method="GET",
    url="https://acme.service-now.com/api/now/table/incident?sysparm_limit=1000",
    status=503,
    body_excerpt='{"error": {"message": "busy"}}',
    request_id="a1b2c3",
)


def test_str_is_one_useful_line() -> None:
    error = errors.ServerError(
        "server error 503 after the retry budget\nretry later",
        context=CONTEXT,
        source="acme",
        record="INC0012345",
    )
    text = str(error)
    assert "\n" not in text
    for part in (
        "server error 503",
        "retry later",
        "source=acme",
        "record=INC0012345",
        "connector=servicenow",
        "endpoint=incident",
        "GET https://acme.service-now.com/api/now/table/incident",
        "status=503",
        "request_id=a1b2c3",
        "busy",
    ):
        assert part in text
    assert repr(error).startswith("ServerError(")


def test_str_without_context_is_just_the_message() -> None:
    assert str(errors.StoreError("database is locked")) == "database is locked"


@pytest.mark.parametrize("cls", sorted(CLASSES.values(), key=lambda c: c.__name__))
def test_every_error_pickles_with_its_context(cls: type[ItsmBridgeError]) -> None:
    error = cls("it broke", context=CONTEXT, source="acme", record="INC1")
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert type(copy) is cls
    assert str(copy) == str(error)
    assert copy.context == CONTEXT
    assert (copy.source, copy.record, copy.message) == ("acme", "INC1", "it broke")


def test_groups_are_what_callers_catch() -> None:
    assert issubclass(errors.EndpointNotFoundError, errors.ConfigurationError)
    assert issubclass(errors.AuthenticationError, errors.AccessError)
    assert issubclass(errors.RateLimitedError, errors.SourceUnavailableError)
    assert issubclass(errors.ResponseFormatError, errors.DataError)
    assert issubclass(errors.IncompletePullError, errors.DataError)
