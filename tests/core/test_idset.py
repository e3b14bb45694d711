"""IdSet: exact (never a false 'seen'), compact, and equal to a plain set on any mix of ids."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from itsm_bridge._idset import IdSet


def _ids(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(16) for _ in range(count)]


def test_each_id_is_new_once_across_growth() -> None:
    ids = _ids(50_000, seed=1)
    seen = IdSet(16)
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


def test_colliding_hashes_stay_distinct() -> None:
    # Ids differing only in bytes the first probe does not look at, plus many more ids than
    # the first table holds, so probe chains are long.
    base = bytes(15)
    ids = [base + bytes([n]) for n in range(1, 256)] + [bytes([n]) + base for n in range(1, 256)]
    seen = IdSet(16)
    assert [seen.add(key) for key in ids] == [True] * len(ids)
    assert [seen.add(key) for key in ids] == [False] * len(ids)


def test_the_all_zero_id_is_an_id_like_any_other() -> None:
    seen = IdSet(16)
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


def test_other_widths_and_text_ids_are_kept_exactly() -> None:
    seen = IdSet(16)
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
    seen = IdSet(4)
    plain: set[str | bytes] = set()
    for key in keys:
        assert seen.add(key) == (key not in plain)
        plain.add(key)
    assert len(seen) == len(plain)
    assert all(key in seen for key in plain)
