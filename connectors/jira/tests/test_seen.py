"""What a pull has seen (itsm_bridge_jira.seen): packed where an id is a plain decimal, exact for
any id, and equal to the dicts it replaced (emitted: id -> updated; census: ids in first-seen
order)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from itsm_bridge_jira.seen import UNDATED, Census, Emitted, id_key, id_of

from itsm_bridge._time import to_epoch_us

T0 = datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)


def test_decimal_ids_pack_to_8_bytes_and_every_id_comes_back() -> None:
    assert id_key("10001") == (10001).to_bytes(8, "little")
    assert id_key("0") == bytes(8)
    assert id_key("9" * 19) == int("9" * 19).to_bytes(8, "little")
    # Not canonical ASCII decimal, or too long for 8 bytes: kept as text, never sharing a key
    # with the decimal it reads as.
    for odd in ("", "010", "00", "+5", " 5", "5 ", "1_000", "١٢", "²", "1" * 20, "ABC-1", "-1"):
        assert id_key(odd) == odd
    for issue_id in ("0", "1", "10001", "9" * 19, "010", "ABC-1", "1" * 20, ""):
        assert id_of(id_key(issue_id)) == issue_id


def test_emitted_keeps_stamps_to_the_microsecond_and_finds_the_boundary() -> None:
    emitted = Emitted()
    at = {"10001": T0, "10002": T0, "10003": T0 + timedelta(microseconds=1), "KEY-1": T0}
    for issue_id, when in at.items():
        emitted.add(id_key(issue_id), to_epoch_us(when))
    emitted.add(id_key("0"), to_epoch_us(T0))
    emitted.add(id_key("10004"), UNDATED)
    assert len(emitted) == 6
    assert emitted.ids_at(T0) == ["0", "10001", "10002", "KEY-1"]
    assert emitted.ids_at(T0 + timedelta(microseconds=1)) == ["10003"]
    assert emitted.ids_at(datetime.min.replace(tzinfo=UTC)) == ["10004"]
    assert emitted.ids_at(T0 - timedelta(milliseconds=1)) == []
    # The same instant in another zone is the same stamp.
    assert emitted.ids_at(T0.astimezone(datetime.now().astimezone().tzinfo)) == emitted.ids_at(T0)
    assert emitted.stamp(id_key("10003")) == to_epoch_us(T0) + 1
    assert emitted.stamp(id_key("10005")) is None
    assert to_epoch_us(datetime(1, 1, 2, tzinfo=UTC)) > UNDATED


def test_each_issue_costs_tens_of_bytes() -> None:
    emitted, census = Emitted(), Census()
    for n in range(10_000, 210_000):
        key = id_key(str(n))
        emitted.add(key, n)
        census.add(key)
    # 16-byte slots at most 2/3 full (24-48 bytes an issue); census 12-24 + 8 in order.
    assert emitted.nbytes() <= 48 * 200_000
    assert census.nbytes() <= 32 * 200_000


def test_the_census_keeps_first_seen_order_over_any_mix_of_ids() -> None:
    census = Census()
    census.update(id_key(i) for i in ["30", "ABC-1", "10", "30", "007", "20", "ABC-1", "0", "40"])
    assert [id_of(k) for k in census] == ["30", "ABC-1", "10", "007", "20", "0", "40"]
    assert len(census) == 7
    assert id_key("007") in census
    assert id_key("7") not in census
    census.add(id_key("X"))  # adding after iterating
    assert [id_of(k) for k in census][-2:] == ["40", "X"]


_IDS = st.one_of(
    st.integers(0, 2**64 + 5).map(str),
    st.integers(0, 300).map(str),  # repeats
    st.text(alphabet="0123456789-AB١", max_size=4),
)
_WHEN = st.one_of(
    st.none(),
    st.integers(-5, 5).map(lambda us: T0 + timedelta(microseconds=us)),
    st.datetimes(timezones=st.just(UTC)),
)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(_IDS, _WHEN), max_size=2_000), _WHEN)
def test_emitted_and_census_behave_like_the_dicts_they_replace(
    events: list[tuple[str, datetime | None]], probe: datetime | None
) -> None:
    """The pull's uses: membership, `updated > emitted[id]`, ids at one `updated`, counts,
    and census ids in first-seen order; `None` stands for an issue without `updated`."""
    floor = datetime.min.replace(tzinfo=UTC)
    emitted, census = Emitted(), Census()
    plain: dict[str, datetime] = {}
    plain_census: dict[str, None] = {}
    for issue_id, when in events:
        key = id_key(issue_id)
        census.add(key)
        plain_census[issue_id] = None
        assert (key in emitted) == (issue_id in plain)
        stamp = emitted.stamp(key)
        if when is None:
            if issue_id not in plain:
                emitted.add(key, UNDATED)
                plain[issue_id] = floor
            continue
        if stamp is not None:
            assert (to_epoch_us(when) > stamp) == (when > plain[issue_id])
            continue
        emitted.add(key, to_epoch_us(when))
        plain[issue_id] = when
    assert len(emitted) == len(plain)
    assert len(census) == len(plain_census)
    assert [id_of(k) for k in census] == list(plain_census)
    assert [i for i in plain_census if id_key(i) not in emitted] == [
        i for i in plain_census if i not in plain
    ]
    for when in {probe or T0, floor, *(w for _, w in events[:10] if w is not None)}:
        assert emitted.ids_at(when) == sorted(i for i, w in plain.items() if w == when)
