"""IdSet and IdMap: exact (never a false 'seen'), compact, and equal to a plain set or dict on any
mix of ids, whether the ids are still in the dict (``small``), packed, or moved from one to the
other part way."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from itsm_bridge._idset import SMALL, IdMap, IdSet

# Packed from the first id, dict-held throughout (the default for this many), and moved midway.
SMALLS = [0, SMALL, 7]


def _ids(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(16) for _ in range(count)]


def test_each_id_is_new_once_across_growth() -> None:
    ids = _ids(50_000, seed=1)
    seen = IdSet(16, small=0)
    assert all(seen.add(key) for key in ids)  # grows from 1,024 slots several times
    assert len(seen) == len(ids)
    assert not any(seen.add(key) for key in ids)
    assert all(key in seen for key in ids)
    assert not any(key in seen for key in _ids(5_000, seed=2))
    # 16 bytes per slot, at most 2/3 full: 24-48 bytes per id, one buffer.
    assert 16 * len(ids) * 3 // 2 <= seen.nbytes() <= 16 * len(ids) * 3


def test_reserve_keeps_every_id_and_sizes_once() -> None:
    ids = _ids(3_000, seed=3)
    seen = IdSet(16)
    for key in ids[:1_000]:
        seen.add(key)
    seen.reserve(100_000)
    size = seen.nbytes()
    assert size >= 16 * 101_000 * 3 // 2
    assert all(key in seen for key in ids[:1_000])
    assert all(seen.add(key) for key in ids[1_000:])
    assert seen.nbytes() == size
    seen.reserve(-5)  # nothing to do
    assert seen.nbytes() == size


@pytest.mark.parametrize("small", SMALLS)
def test_colliding_hashes_stay_distinct(small: int) -> None:
    # Ids differing only in bytes the first probe does not look at, plus many more ids than
    # the first table holds, so probe chains are long.
    base = bytes(15)
    ids = [base + bytes([n]) for n in range(1, 256)] + [bytes([n]) + base for n in range(1, 256)]
    seen = IdSet(16, small=small)
    assert [seen.add(key) for key in ids] == [True] * len(ids)
    assert [seen.add(key) for key in ids] == [False] * len(ids)


@pytest.mark.parametrize("small", SMALLS)
def test_the_all_zero_id_is_an_id_like_any_other(small: int) -> None:
    seen = IdSet(16, small=small)
    zero = bytes(16)
    assert zero not in seen
    assert seen.add(b"\x01" * 16)
    assert zero not in seen  # an empty slot is not the zero id
    assert seen.add(zero)
    assert zero in seen
    assert not seen.add(zero)
    assert len(seen) == 2
    for key in _ids(2_000, seed=4):
        seen.add(key)
    assert zero in seen
    assert not seen.add(zero)


@pytest.mark.parametrize("small", SMALLS)
def test_other_widths_and_text_ids_are_kept_exactly(small: int) -> None:
    seen = IdSet(16, small=small)
    assert [seen.add("INC0001"), seen.add(b"short"), seen.add("0" * 32)] == [True] * 3
    assert [seen.add("INC0001"), seen.add(b"short")] == [False, False]
    assert "INC0002" not in seen
    assert b"short" in seen
    assert bytes(16) not in seen  # text "000..." is not the packed zero id
    assert len(seen) == 3


def test_a_width_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        IdSet(0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(min_size=4, max_size=4),
            st.binary(min_size=0, max_size=6),
            st.text(max_size=5),
        ),
        max_size=3_000,
    )
)
def test_behaves_like_a_set(keys: list[str | bytes]) -> None:
    for small in SMALLS:
        _like_a_set(keys, IdSet(4, small=small))


def _like_a_set(keys: list[str | bytes], seen: IdSet) -> None:
    plain: set[str | bytes] = set()
    for key in keys:
        assert seen.add(key) == (key not in plain)
        plain.add(key)
    assert len(seen) == len(plain)
    assert all(key in seen for key in plain)


# -- IdMap: the same table with a signed 64-bit value beside each packed id ----------------------


def test_a_map_keeps_the_last_value_of_each_id_across_growth() -> None:
    ids = _ids(20_000, seed=5)
    values = IdMap(16, small=0)
    assert all(values.put(key, n - 10_000) for n, key in enumerate(ids))
    assert len(values) == len(ids)
    assert [values.get(key) for key in ids] == [n - 10_000 for n in range(len(ids))]
    assert not values.put(ids[7], -(2**63))  # an overwrite is not new
    assert values.get(ids[7]) == -(2**63)
    assert values.get(_ids(1, seed=6)[0]) is None
    assert all(key in values for key in ids)
    # 16 + 8 bytes per slot, at most 2/3 full, one buffer.
    assert 24 * len(ids) * 3 // 2 <= values.nbytes() <= 24 * len(ids) * 3


def test_a_value_out_of_range_is_refused_before_anything_changes() -> None:
    values = IdMap(8)
    with pytest.raises(struct.error):
        values.put(b"\x01" * 8, 2**63)
    assert b"\x01" * 8 not in values
    assert len(values) == 0


@pytest.mark.parametrize("small", SMALLS)
def test_keys_with_finds_only_whole_values_of_occupied_slots(small: int) -> None:
    values = IdMap(8, small=small)
    wanted = 0x0102030405060708
    # Search hits that are not a value: an id spelling it, and an id's last byte followed by
    # its value's first seven.
    values.put(wanted.to_bytes(8, "little"), 1)
    values.put(b"\x11" * 7 + b"\x08", wanted >> 8)
    expected = {n.to_bytes(8, "little") for n in range(1, 3_000, 7)}
    for key in expected:
        values.put(key, wanted)
    values.put(bytes(8), wanted)  # the all-zero id, kept in a flag
    values.put("odd", wanted)
    values.put("other", wanted + 1)
    assert sorted(values.keys_with(wanted), key=repr) == sorted(
        [*expected, bytes(8), "odd"], key=repr
    )
    assert values.keys_with(-1) == []
    # Value 0 is what empty slots hold: only occupied ones count.
    zeros = IdMap(8, small=small)
    zeros.put(b"\x05" * 8, 0)
    zeros.add(b"\x06" * 8)
    assert sorted(zeros.keys_with(0)) == [b"\x05" * 8, b"\x06" * 8]


@pytest.mark.parametrize("small", SMALLS)
def test_a_map_adds_like_a_set_with_value_zero(small: int) -> None:
    values = IdMap(4, small=small)
    assert values.add(b"abcd")
    assert not values.add(b"abcd")
    assert values.get(b"abcd") == 0
    values.put(b"abcd", 9)
    assert not values.add(b"abcd")
    assert values.get(b"abcd") == 9  # add keeps a value already there
    assert values.add("text")
    assert values.get("text") == 0
    assert values.add(bytes(4))
    assert not values.add(bytes(4))
    assert values.get(bytes(4)) == 0


@pytest.mark.parametrize("small", SMALLS)
def test_a_map_reserves_without_losing_values(small: int) -> None:
    values = IdMap(8, small=small)
    for n in range(1, 1_500):
        values.put(n.to_bytes(8, "little"), -n)
    values.reserve(50_000)
    assert all(values.get(n.to_bytes(8, "little")) == -n for n in range(1, 1_500))


_MAP_KEYS = st.one_of(
    st.binary(min_size=4, max_size=4),
    st.binary(min_size=0, max_size=6),
    st.text(max_size=5),
)
_MAP_VALUES = st.one_of(st.integers(-3, 3), st.integers(-(2**63), 2**63 - 1))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_MAP_KEYS, _MAP_VALUES), max_size=3_000), _MAP_VALUES)
def test_behaves_like_a_dict(pairs: list[tuple[str | bytes, int]], probe: int) -> None:
    for small in SMALLS:
        _like_a_dict(pairs, probe, IdMap(4, small=small))


def _like_a_dict(pairs: list[tuple[str | bytes, int]], probe: int, values: IdMap) -> None:
    plain: dict[str | bytes, int] = {}
    for n, (key, value) in enumerate(pairs):
        assert values.get(key) == plain.get(key)
        if n % 2:
            assert values.put(key, value) == (key not in plain)
        else:
            assert values.swap(key, value) == plain.get(key)
        plain[key] = value
    assert len(values) == len(plain)
    assert sorted(values.items(), key=repr) == sorted(plain.items(), key=repr)
    for value in {probe, *(v for _, v in pairs[:20])}:
        expected = sorted((k for k, v in plain.items() if v == value), key=repr)
        assert sorted(values.keys_with(value), key=repr) == expected


def test_the_first_ids_are_held_as_themselves_then_packed_once() -> None:
    values = IdMap(8, small=101)
    for n in range(1, 101):
        values.put(n.to_bytes(8, "little"), -n)
    values.put("odd", 5)
    assert values.nbytes() == 0  # still a dict: nothing packed yet
    values.put(bytes(8), 7)  # the all-zero id moves to its flag when packed
    assert values.nbytes() > 0  # the 102nd id packed the 101 of the packed width
    assert len(values) == 102
    assert [values.get(n.to_bytes(8, "little")) for n in range(1, 101)] == [
        -n for n in range(1, 101)
    ]
    assert (values.get("odd"), values.get(bytes(8))) == (5, 7)
    assert sorted(values.keys_with(7), key=repr) == [bytes(8)]
    # Reserving beyond `small` packs at once, in a table of the final size.
    early = IdSet(8, small=1_000)
    early.add(b"\x01" * 8)
    early.reserve(50_000)
    size = early.nbytes()
    assert size >= 8 * 50_001 * 3 // 2
    assert all(early.add(n.to_bytes(8, "little")) for n in range(2, 50_002))
    assert early.nbytes() == size
    assert b"\x01" * 8 in early
