"""What one pull of one kind has seen, in flat memory: the issues it emitted, and the census ids.

A pull of a million issues remembers each one it emitted, with the ``updated`` it was emitted
at (to drop a repeat, hold the watermark for a newer version, and name the cursor's boundary
ids), and each id the census saw. As ``dict`` entries of ``str`` and ``datetime`` objects that
is ~130 bytes an issue for the first and ~100 for the second. Here an issue id, a decimal
integer on every Jira, is packed to 8 bytes and its stamp to 8 more, in one
:class:`~itsm_bridge._idset.IdMap` table (24-48 bytes an issue), and the census keeps its ids
in an :class:`~itsm_bridge._idset.IdSet` (12-24 bytes) plus one packed array in the order it
saw them (8 bytes). Any other id (not canonical decimal, or beyond 64 bits) is kept as itself,
so both stay exact: no issue is ever taken for one already emitted, none is lost.

Stamps are microseconds since the epoch (:func:`~itsm_bridge._time.to_epoch_us`): a
``datetime`` holds nothing finer, so stamps compare exactly as the datetimes did.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from itsm_bridge._idset import IdMap, IdSet
from itsm_bridge._time import to_epoch_us

__all__ = ["UNDATED", "Census", "Emitted", "id_key", "id_of"]

_WIDTH = 8
# The stamp of an issue emitted without a parseable `updated` (the mapper rejects it): below
# every real one, so any later version of it counts as newer, as `datetime.min` did.
UNDATED = to_epoch_us(datetime.min.replace(tzinfo=UTC))


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


def id_of(key: str | bytes) -> str:
    """The issue id a key was made from (the inverse of :func:`id_key`)."""
    if type(key) is bytes:
        return str(int.from_bytes(key, "little"))
    assert isinstance(key, str)
    return key


class Emitted:
    """Issue keys (see :func:`id_key`) -> the stamp of the ``updated`` each was emitted at."""

    __slots__ = ("_map",)

    def __init__(self) -> None:
        self._map = IdMap(_WIDTH)

    def __len__(self) -> int:
        return len(self._map)

    def __contains__(self, key: str | bytes) -> bool:
        return key in self._map

    def stamp(self, key: str | bytes) -> int | None:
        """The stamp ``key`` was emitted at, or None if it was not emitted."""
        return self._map.get(key)

    def add(self, key: str | bytes, stamp: int) -> None:
        self._map.put(key, stamp)

    def ids_at(self, when: datetime) -> list[str]:
        """The ids emitted at exactly ``when``, sorted (one C-level search of the table)."""
        return sorted(id_of(key) for key in self._map.keys_with(to_epoch_us(when)))

    def nbytes(self) -> int:
        return self._map.nbytes()


class Census:
    """The issue keys the census saw, each once, in the order it first saw them."""

    __slots__ = ("_odd", "_order", "_seen")

    def __init__(self) -> None:
        self._seen = IdSet(_WIDTH)
        self._order = bytearray()  # the packed keys, 8 bytes each, in order
        self._odd: list[tuple[int, str]] = []  # (keys before it in order, id) of unpacked ids

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, key: str | bytes) -> bool:
        return key in self._seen

    def add(self, key: str | bytes) -> None:
        if self._seen.add(key):
            if type(key) is bytes:
                self._order += key
            else:
                assert isinstance(key, str)
                self._odd.append((len(self._order) // _WIDTH + len(self._odd), key))

    def update(self, keys: Iterable[str | bytes]) -> None:
        for key in keys:
            self.add(key)

    def __iter__(self) -> Iterator[str | bytes]:
        """Every key, in the order the census first saw it."""
        # A copy: iterating the bytearray itself would lock it against `add` until done.
        packed = (key for (key,) in struct.iter_unpack(f"{_WIDTH}s", bytes(self._order)))
        position = 0
        for before, key in self._odd:
            while position < before:
                yield next(packed)
                position += 1
            yield key
            position += 1
        yield from packed

    def nbytes(self) -> int:
        return self._seen.nbytes() + len(self._order)
