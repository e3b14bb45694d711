"""What a pull has seen (itsm_bridge_jira.seen): packed where an id is a plain decimal, exact for
any id, and equal to the dicts it replaced (emitted: id -> updated; census: ids in first-seen
order), the two sharing one table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from itsm_bridge_jira.seen import UNDATED, Seen, id_key, id_of

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
    emitted = Seen().emitted
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
    seen = Seen()
    for n in range(10_000, 210_000):
        key = id_key(str(n))
        seen.emitted.add(key, n)
        seen.census.add(key)
    # One table for both: 16-byte slots at most 2/3 full (24-48 bytes an issue); nothing is
    # listed in order when the census sees what was emitted.
    assert seen.nbytes() <= 48 * 200_000
    assert len(seen.emitted) == len(seen.census) == 200_000
    assert seen.census.unemitted() == []


def test_the_census_keeps_first_seen_order_over_any_mix_of_ids() -> None:
    seen = Seen()
    census, emitted = seen.census, seen.emitted
    emitted.add(id_key("20"), 5)  # emitted before the census saw it
    census.update(id_key(i) for i in ["30", "ABC-1", "10", "30", "007", "20", "ABC-1", "0", "40"])
    assert [id_of(k) for k in census.unemitted()] == ["30", "ABC-1", "10", "007", "0", "40"]
    assert len(census) == 7
    assert id_key("007") in census
    assert id_key("7") not in census
    assert len(emitted) == 1
    emitted.add(id_key("ABC-1"), 7)  # emitted after the census saw it (a fetch by id)
    emitted.add(id_key("0"), 7)
    assert len(emitted) == 3
    assert emitted.ids_at(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=7)) == [
        "0",
        "ABC-1",
    ]
    census.add(id_key("X"))  # adding after reading
    assert [id_of(k) for k in census.unemitted()] == ["30", "10", "007", "40", "X"]
    assert len(census) == 8


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
@given(st.lists(st.tuples(_IDS, _WHEN, st.booleans()), max_size=2_000), _WHEN)
def test_emitted_and_census_behave_like_the_dicts_they_replace(
    events: list[tuple[str, datetime | None, bool]], probe: datetime | None
) -> None:
    """The pull's uses: membership, `updated > emitted[id]`, ids at one `updated`, counts,
    and census ids in first-seen order; `None` stands for an issue without `updated`; each
    event is a census sighting or a record read (census and pull interleave)."""
    floor = datetime.min.replace(tzinfo=UTC)
    seen = Seen()
    emitted, census = seen.emitted, seen.census
    plain: dict[str, datetime] = {}
    plain_census: dict[str, None] = {}
    for issue_id, when, sighting in events:
        key = id_key(issue_id)
        assert (key in census) == (issue_id in plain_census)
        if sighting:
            census.add(key)
            plain_census[issue_id] = None
            assert len(census) == len(plain_census)
            continue
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
    assert len(emitted) == len(plain)
    assert len(census) == len(plain_census)
    assert [id_of(k) for k in census.unemitted()] == [i for i in plain_census if i not in plain]
    for when in {probe or T0, floor, *(w for _, w, _ in events[:10] if w is not None)}:
        assert emitted.ids_at(when) == sorted(i for i, w in plain.items() if w == when)
