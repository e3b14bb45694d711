"""Property: a connector's ``map_record`` returns a valid WorkItem or raises MappingError.

The contract (``Connector.map_record``): "Map one raw record; pure (no I/O). Raise MappingError
(or any DataError) if it can't." ``Connector.map_safely`` would turn a stray ``KeyError`` or
``TypeError`` into a reject too, so the property is checked on ``map_record`` itself: a raw
``KeyError`` is a mapper bug even where the sync would survive it.

Inputs: records each connector really received from its sandbox (captured during a pull, in the
platform's wire shape), with fields replaced by arbitrary JSON values, deleted, or re-typed; and
arbitrary JSON objects. Derandomized in the reduced form; ``make soak`` tries more, seeded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from reliability_kit import FIGURES, SCALE, seed_for

import itsm_bridge as ib
from itsm_bridge import DataError, Kind, WorkItem
from itsm_bridge.connector import Connector
from itsm_bridge.sandbox import generate_company, make_sandbox

SETTINGS = settings(
    max_examples=SCALE.examples,
    derandomize=SCALE.name != "full",
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# What a JSON decoder can hand a mapper (the stdlib also decodes NaN and Infinity).
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()
    | st.text(max_size=40)
    | st.sampled_from(["", " ", "2026-13-45T99:99:99Z", "0000-00-00 00:00:00", "null", "1e999"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=16,
)


@pytest.fixture(scope="module")
def captured() -> dict[str, tuple[Connector, list[tuple[Kind, dict[str, Any]]]]]:
    """Per platform: a connector (site discovered) and the raw records it mapped in a pull."""
    found: dict[str, tuple[Connector, list[tuple[Kind, dict[str, Any]]]]] = {}
    for platform in ("servicenow", "jira"):
        items = generate_company(41, scale=0.15).for_platform(platform)
        with make_sandbox(platform, items) as sandbox:
            conn = ib.connect(
                platform, sandbox.url, auth=sandbox.auth(), **sandbox.connect_options()
            )
            raws: list[tuple[Kind, dict[str, Any]]] = []
            original = conn.map_record

            def spy(
                kind: Kind,
                raw: Mapping[str, Any],
                original: Any = original,
                raws: list[tuple[Kind, dict[str, Any]]] = raws,
            ) -> WorkItem:
                raws.append((kind, dict(raw)))
                return original(kind, raw)  # type: ignore[no-any-return]

            conn.map_record = spy  # type: ignore[method-assign]
            list(conn.pull())
            conn.map_record = original  # type: ignore[method-assign]
            conn.close()
        by_kind: dict[Kind, list[tuple[Kind, dict[str, Any]]]] = {}
        for kind, raw in raws:
            by_kind.setdefault(kind, []).append((kind, raw))
        # a few of each kind, every kind the platform serves
        found[platform] = (conn, [pair for pairs in by_kind.values() for pair in pairs[:5]])
    return found


def check_contract(conn: Connector, kind: Kind, raw: Mapping[str, Any]) -> None:
    try:
        item = conn.map_record(kind, raw)
    except DataError as exc:
        refused: DataError | None = exc
    except Exception as exc:
        raise AssertionError(
            f"{conn.name}.map_record raised {type(exc).__name__}: {exc!r} (the contract allows "
            f"a WorkItem or MappingError) for {kind.value} record {str(raw)[:600]}"
        ) from exc
    else:
        refused = None
    if refused is not None:
        assert str(refused), "a data error must say what is wrong"
        return
    assert isinstance(item, WorkItem)
    again = WorkItem.model_validate_json(item.model_dump_json())
    assert again == item or _has_nan(item), "the WorkItem does not survive its own JSON round trip"
    assert item.id.startswith(f"{conn.source}:")


def _has_nan(item: WorkItem) -> bool:
    return item.effort_hours is not None and math.isnan(item.effort_hours)


@st.composite
def perturbed(draw: st.DrawFn, samples: list[tuple[Kind, dict[str, Any]]]) -> tuple[Kind, dict]:
    kind, raw = draw(st.sampled_from(samples))
    record = {**raw}
    target = record
    if isinstance(record.get("fields"), dict) and draw(st.booleans()):
        target = record["fields"] = {**record["fields"]}  # Jira: most data sits in "fields"
    keys = sorted(target)
    for _ in range(draw(st.integers(1, 6))):
        if not keys:
            break
        key = draw(st.sampled_from(keys))
        action = draw(st.sampled_from(["replace", "delete", "retype", "wrap"]))
        if action == "delete":
            target.pop(key, None)
        elif action == "replace":
            target[key] = draw(JSON)
        elif action == "retype":
            value = target.get(key)
            target[key] = (
                [value] if isinstance(value, str) else str(value) if value is not None else {}
            )
        else:
            target[key] = {"value": target.get(key), "display_value": draw(JSON), "link": 7}
    return kind, record


@pytest.mark.soak
@pytest.mark.parametrize("platform", ["servicenow", "jira"])
def test_map_record_returns_a_work_item_or_raises_mapping_error(
    platform: str, captured: dict[str, tuple[Connector, list[tuple[Kind, dict[str, Any]]]]]
) -> None:
    conn, samples = captured[platform]
    assert samples
    for kind, raw in samples:  # the unperturbed records map cleanly
        assert isinstance(conn.map_record(kind, raw), WorkItem)

    @SETTINGS
    @seed(seed_for(8301))
    @given(case=perturbed(samples))
    def near_valid(case: tuple[Kind, dict[str, Any]]) -> None:
        check_contract(conn, *case)
        FIGURES.add(f"inputs_tried.mappers.{platform}")

    @SETTINGS
    @seed(seed_for(8302))
    @given(kind=st.sampled_from(list(conn.kinds)), raw=st.dictionaries(st.text(max_size=20), JSON))
    def arbitrary(kind: Kind, raw: dict[str, Any]) -> None:
        check_contract(conn, kind, raw)
        FIGURES.add(f"inputs_tried.mappers.{platform}")

    near_valid()
    arbitrary()
