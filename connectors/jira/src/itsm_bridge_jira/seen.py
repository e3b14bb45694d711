"""What one pull of one kind has seen, in flat memory: the issues it emitted, and the census ids.

A pull of a million issues remembers each one it emitted, with the ``updated`` it was emitted
at (to drop a repeat, hold the watermark for a newer version, and name the cursor's boundary
ids), and each id the census saw. As ``dict`` entries of ``str`` and ``datetime`` objects that
is ~130 bytes an issue for the first and ~100 for the second. Here both live in one
:class:`~itsm_bridge._idset.IdMap` table: an issue id, a decimal integer on every Jira, is
packed to 8 bytes, and beside it 8 more hold the stamp of its emitted ``updated`` and one bit
for "the census saw it" (16-byte slots at most 2/3 full: 24-48 bytes an issue for both). An id
the census saw that was not emitted (yet) holds no stamp; only those are also listed in the
order the census saw them, for :meth:`Census.unemitted`. Any other id (not canonical decimal,
or beyond 64 bits) is kept as itself, so everything stays exact: no issue is ever taken for one
already emitted, none is lost.

Stamps are microseconds since the epoch (:func:`~itsm_bridge._time.to_epoch_us`): a
``datetime`` holds nothing finer, so stamps compare exactly as the datetimes did.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from itsm_bridge._idset import IdMap, IdSet
from itsm_bridge._time import to_epoch_us

__all__ = ["UNDATED", "Census", "Emitted", "Seen", "id_key", "id_of", "id_set", "record_keys"]

_WIDTH = 8
# The stamp of an issue emitted without a parseable `updated` (the mapper rejects it): below
# every real one, so any later version of it counts as newer, as `datetime.min` did.
UNDATED = to_epoch_us(datetime.min.replace(tzinfo=UTC))
# A slot's value is `stamp << 1 | census bit`. Stamps of datetimes lie within +-2**58, so a value
# from _UNSTAMPED up means "not emitted": an id only the census saw.
_CENSUS = 1
_UNSTAMPED = 1 << 61


def id_key(issue_id: str) -> str | bytes:
    """An issue id as a key: 8 bytes for a canonical decimal below 10**19, else itself.

    Canonical (ASCII digits, no leading zero but in "0") makes the packing one-to-one: "010"
    or "١٠" stay text, so two different ids never share a key.
    """
    if (
        issue_id.isdigit()
        and issue_id.isascii()
        and len(issue_id) < 20
        and (issue_id[0] != "0" or len(issue_id) == 1)
    ):
        return int(issue_id).to_bytes(_WIDTH, "little")
    return issue_id


def record_keys(records: Iterable[Mapping[str, Any]]) -> Iterator[str | bytes]:
    """The :func:`id_key` of every record that has an id."""
    for record in records:
        issue_id = record.get("id")
        if issue_id:
            yield id_key(str(issue_id))


def id_set() -> IdSet:
    """An empty exact set of :func:`id_key` keys (8 bytes a decimal id, packed)."""
    return IdSet(_WIDTH)


def id_of(key: str | bytes) -> str:
    """The issue id a key was made from (the inverse of :func:`id_key`)."""
    if type(key) is bytes:
        return str(int.from_bytes(key, "little"))
    assert isinstance(key, str)
    return key


class Seen:
    """The one table behind a pull's :class:`Emitted` and :class:`Census`."""

    __slots__ = ("_census", "_map", "_odd", "_order", "_unstamped", "census", "emitted")

    def __init__(self) -> None:
        self._map = IdMap(_WIDTH)
        self._unstamped = 0  # ids in the table the census saw and the pull did not emit
        self._census = 0  # distinct ids the census saw
        self._order = bytearray()  # packed census keys not emitted when first seen, in order
        self._odd: list[tuple[int, str]] = []  # (keys listed before it, id) of unpacked ones
        self.emitted = Emitted(self)
        self.census = Census(self)

    def nbytes(self) -> int:
        return self._map.nbytes() + len(self._order)


class Emitted:
    """Issue keys (see :func:`id_key`) -> the stamp of the ``updated`` each was emitted at."""

    __slots__ = ("_seen",)

    def __init__(self, seen: Seen) -> None:
        self._seen = seen

    def __len__(self) -> int:
        seen = self._seen
        return len(seen._map) - seen._unstamped

    def __contains__(self, key: str | bytes) -> bool:
        value = self._seen._map.get(key)
        return value is not None and value < _UNSTAMPED

    def stamp(self, key: str | bytes) -> int | None:
        """The stamp ``key`` was emitted at, or None if it was not emitted."""
        value = self._seen._map.get(key)
        if value is None or value >= _UNSTAMPED:
            return None
        return value >> 1

    def add(self, key: str | bytes, stamp: int) -> None:
        """Record ``key`` as emitted at ``stamp`` (or at a newer one: the last call wins)."""
        seen = self._seen
        before = seen._map.swap(key, stamp << 1)
        if before is not None and before & _CENSUS:  # the census saw it first: keep its bit
            seen._map.put(key, stamp << 1 | _CENSUS)
            if before >= _UNSTAMPED:
                seen._unstamped -= 1

    def ids_at(self, when: datetime) -> list[str]:
        """The ids emitted at exactly ``when``, sorted (two C-level searches of the table)."""
        table = self._seen._map
        value = to_epoch_us(when) << 1
        keys = table.keys_with(value) + table.keys_with(value | _CENSUS)
        return sorted(id_of(key) for key in keys)


class Census:
    """The issue keys the census saw, each counted once."""

    __slots__ = ("_seen",)

    def __init__(self, seen: Seen) -> None:
        self._seen = seen

    def __len__(self) -> int:
        return self._seen._census

    def __contains__(self, key: str | bytes) -> bool:
        value = self._seen._map.get(key)
        return value is not None and bool(value & _CENSUS)

    def add(self, key: str | bytes) -> None:
        seen = self._seen
        value = seen._map.get(key)
        if value is None:  # not emitted (yet): listed, for `unemitted`
            seen._map.put(key, _UNSTAMPED | _CENSUS)
            seen._unstamped += 1
            if type(key) is bytes:
                seen._order += key
            else:
                assert isinstance(key, str)
                seen._odd.append((len(seen._order) // _WIDTH + len(seen._odd), key))
        elif value & _CENSUS:
            return
        else:
            seen._map.put(key, value | _CENSUS)
        seen._census += 1

    def update(self, keys: Iterable[str | bytes]) -> None:
        for key in keys:
            self.add(key)

    def unemitted(self) -> list[str | bytes]:
        """The keys the census saw that are not emitted, in the order it first saw them.

        Only keys not emitted when the census first saw them are listed (emitted keys stay
        emitted), so this reads that short list, not every key the census saw.
        """
        seen = self._seen
        emitted = seen.emitted
        # A copy: iterating the bytearray itself would lock it against `add` until done.
        packed = iter(struct.iter_unpack(f"{_WIDTH}s", bytes(seen._order)))
        listed: list[str | bytes] = []
        for before, odd in seen._odd:
            while len(listed) < before:
                listed.append(next(packed)[0])
            listed.append(odd)
        listed.extend(key for (key,) in packed)
        return [key for key in listed if key not in emitted]
