"""An exact set of record ids that costs 24-48 bytes per 16-byte id instead of ~85.

A pull remembers every id it delivered so that it delivers each record once, and a million-record
pull would otherwise keep a million small ``bytes`` objects (and a ``set`` table) alive: ~85 MB,
and objects that small, allocated between short-lived page objects, also pin the allocator's
arenas. Ids of one fixed width (e.g. a ServiceNow sys_id packed to 16 bytes) are kept here in one
open-addressing table inside a ``bytearray`` instead; any other id goes to an ordinary set. It is
exact: no probabilistic filter, so no record is ever taken for one already delivered.

The table is at most 2/3 full (about three probes for a new id, each a C-level compare) and
doubles when full; :meth:`IdSet.reserve` sizes it once when the caller knows how many ids come
(rehashing a million ids in Python costs about a second). Adding an id costs ~0.7 µs against
~0.1 µs for a ``set``, so the first ``small`` ids (65,536 unless told) are kept in a plain dict
and packed only when there are more: most pulls are incremental and small, and pay dict speed
(6-8 MB at most), while a pull of millions still ends in the packed table.

:class:`IdMap` is the same table with a signed 64-bit integer beside each packed id (a version
stamp, say): one slot is the id's bytes then the value's eight, so ids and values stay in the one
buffer, and :meth:`IdMap.keys_with` finds every id holding a value with C-level searches of it.
"""

from __future__ import annotations

import struct

__all__ = ["IdMap", "IdSet"]

_FIRST_SLOTS = 1 << 10
SMALL = 1 << 16  # ids kept in a plain dict before the table is used (see the module docstring)
_PERTURB_SHIFT = 5
_MASK64 = (1 << 64) - 1
_VALUE = struct.Struct("<q")  # an IdMap's value, after the id in its slot


class IdSet:
    """Ids seen so far: :meth:`add` says whether an id is new (and remembers it).

    ``width`` is the byte length of the ids kept packed; a ``bytes`` id of another length and
    every ``str`` id are kept in a plain set, so any mix of ids stays exact.
    """

    __slots__ = (
        "_count",
        "_empty",
        "_has_empty",
        "_limit",
        "_mask",
        "_other",
        "_packing",
        "_small",
        "_stride",
        "_table",
        "_width",
    )

    def __init__(self, width: int = 16, *, small: int = SMALL, _value_width: int = 0) -> None:
        if width < 1:
            raise ValueError(f"an IdSet needs a positive key width, not {width}")
        self._width = width
        self._stride = width + _value_width  # bytes per slot: the id, then its value (IdMap)
        # An all-zero slot is empty; the all-zero id itself is remembered by a flag.
        self._empty = bytes(width)
        self._has_empty = False
        # Ids kept as themselves, with their values (0 in a plain IdSet): every id while there
        # are at most `small`, afterwards those not of the packed width.
        self._other: dict[str | bytes, int] = {}
        self._small = small
        self._count = 0
        # The width of the ids the table holds: -1 (no id is that long) until the ids are
        # packed. Every check of an id's width compares with this: a small set costs one dict
        # operation.
        self._packing = -1
        self._table = bytearray()
        self._mask = self._limit = 0
        if small <= 0:
            self._pack(0)

    def _alloc(self, slots: int) -> None:
        self._table = bytearray(slots * self._stride)
        self._mask = slots - 1
        self._limit = slots * 2 // 3  # at most 2/3 full: ~3 probes for a new id

    def __len__(self) -> int:
        return self._count + self._has_empty + len(self._other)

    def __contains__(self, key: object) -> bool:
        if type(key) is not bytes or len(key) != self._packing:
            return key in self._other
        if key == self._empty:
            return self._has_empty
        return self._find(key)[1]

    def add(self, key: str | bytes) -> bool:
        """Remember ``key``; True if it was not there yet."""
        width = self._packing
        if type(key) is not bytes or len(key) != width:
            other = self._other
            if key in other:
                return False
            other[key] = 0
            if width < 0 and len(other) > self._small:
                self._pack(0)
            return True
        if key == self._empty:  # the all-zero id would read as an empty slot: it lives in a flag
            if self._has_empty:
                return False
            self._has_empty = True
            return True
        offset, found = self._find(key)
        if found:
            return False
        self._table[offset : offset + width] = key
        self._count += 1
        if self._count > self._limit:
            self._resize(2 * (self._mask + 1))
        return True

    def _find(self, key: bytes) -> tuple[int, bool]:
        """The offset of ``key``'s slot and True, or of the empty slot where it would go and
        False. CPython's own probe sequence (dict/set): every slot is visited, clusters stay
        short."""
        table, mask, stride, empty = self._table, self._mask, self._stride, self._empty
        perturb = hash(key) & _MASK64
        i = perturb & mask
        offset = i * stride
        while not table.startswith(empty, offset):
            if table.startswith(key, offset):
                return offset, True
            perturb >>= _PERTURB_SHIFT
            i = (i * 5 + perturb + 1) & mask
            offset = i * stride
        return offset, False

    def reserve(self, more: int) -> None:
        """Make room for ``more`` ids beyond those held, at once (one copy, not several)."""
        if self._packing < 0:
            if len(self._other) + more > self._small:
                self._pack(more)
            return
        need = self._count + max(0, more)
        slots = self._mask + 1
        while need > slots * 2 // 3:
            slots *= 2
        if slots > self._mask + 1:
            self._resize(slots)

    def _pack(self, more: int) -> None:
        """Start using the table: the ids of the packed width move into it from the dict, in a
        table sized for them and ``more`` (one allocation)."""
        width = self._width
        moving = [(k, v) for k, v in self._other.items() if type(k) is bytes and len(k) == width]
        for key, _ in moving:
            del self._other[key]
        self._packing = width
        slots = _FIRST_SLOTS
        while len(moving) + max(0, more) > slots * 2 // 3:
            slots *= 2
        self._alloc(slots)
        for key, value in moving:
            self._place(key, value)

    def _place(self, key: bytes, value: int) -> None:
        """Put an id (of the packed width) and its value into the table."""
        self.add(key)

    def _resize(self, slots: int) -> None:
        """Move every id into a table of ``slots`` slots (a power of two)."""
        old, width, stride, empty = bytes(self._table), self._width, self._stride, self._empty
        self._table = bytearray()  # the old table goes before the new one is allocated
        self._alloc(slots)
        table = self._table
        if stride == width:
            for (key,) in struct.iter_unpack(f"{width}s", old):
                if key != empty:
                    offset = self._find(key)[0]
                    table[offset : offset + width] = key
            return
        for key, value in struct.iter_unpack(f"<{width}s{stride - width}s", old):
            if key != empty:
                offset = self._find(key)[0]
                table[offset : offset + stride] = key + value

    def nbytes(self) -> int:
        """The packed table's size in bytes (the ids kept in the plain set are not counted)."""
        return len(self._table)


class IdMap(IdSet):
    """Ids -> a signed 64-bit integer each, exactly as a ``dict`` would keep them.

    ``width``-byte ``bytes`` ids are packed with their value into one slot of the table
    (``width + 8`` bytes, at most 2/3 full); any other id is kept in a plain dict. An id
    :meth:`add`-ed without a value holds 0.
    """

    __slots__ = ("_empty_value",)

    def __init__(self, width: int = 8, *, small: int = SMALL) -> None:
        self._empty_value = 0  # the value of the all-zero id (when `_has_empty`)
        super().__init__(width, small=small, _value_width=_VALUE.size)

    def _place(self, key: bytes, value: int) -> None:
        self.swap(key, value)

    def add(self, key: str | bytes) -> bool:
        """Remember ``key`` with the value 0 if it is new; True if it was."""
        if key in self:
            return False
        self.put(key, 0)
        return True

    def get(self, key: str | bytes) -> int | None:
        """The value of ``key``, or None when it was never put."""
        if type(key) is not bytes or len(key) != self._packing:
            return self._other.get(key)
        if key == self._empty:
            return self._empty_value if self._has_empty else None
        offset, found = self._find(key)
        if not found:
            return None
        value: int = _VALUE.unpack_from(self._table, offset + self._width)[0]
        return value

    def put(self, key: str | bytes, value: int) -> bool:
        """Set the value of ``key`` (a signed 64-bit int); True if ``key`` is new."""
        return self.swap(key, value) is None

    def swap(self, key: str | bytes, value: int) -> int | None:
        """Set the value of ``key``; its value until now, or None if it is new (one probe)."""
        packed = _VALUE.pack(value)  # refuses a value out of range before anything changes
        width = self._packing
        if type(key) is not bytes or len(key) != width:
            other = self._other
            old = other.get(key)
            other[key] = value
            if old is None and width < 0 and len(other) > self._small:
                self._pack(0)
            return old
        if key == self._empty:
            old = self._empty_value if self._has_empty else None
            self._has_empty = True
            self._empty_value = value
            return old
        offset, found = self._find(key)
        table = self._table
        if found:
            before: int = _VALUE.unpack_from(table, offset + width)[0]
            table[offset + width : offset + self._stride] = packed
            return before
        table[offset : offset + self._stride] = key + packed
        self._count += 1
        if self._count > self._limit:
            self._resize(2 * (self._mask + 1))
        return None

    def keys_with(self, value: int) -> list[str | bytes]:
        """Every id whose value is ``value``, in no particular order.

        The packed ones are found by searching the table for the value's eight bytes (C-level
        ``bytearray.find``), keeping the hits that are a slot's value: one pass over the buffer
        however many ids it holds, not a Python loop over them.
        """
        found: list[str | bytes] = [key for key, v in self._other.items() if v == value]
        if self._has_empty and self._empty_value == value:
            found.append(self._empty)
        table, width, stride, empty = self._table, self._width, self._stride, self._empty
        needle = _VALUE.pack(value)
        at = table.find(needle, width)
        while at >= 0:
            misaligned = (at - width) % stride
            if misaligned:  # a hit across two fields: look on from the next slot's value
                at = table.find(needle, at + stride - misaligned)
                continue
            start = at - width
            if not table.startswith(empty, start):
                found.append(bytes(table[start:at]))
            at = table.find(needle, at + stride)
        return found

    def items(self) -> list[tuple[str | bytes, int]]:
        """Every id with its value, in no particular order (a Python loop: for tests and
        small maps)."""
        out: list[tuple[str | bytes, int]] = list(self._other.items())
        if self._has_empty:
            out.append((self._empty, self._empty_value))
        empty = self._empty
        for key, value in struct.iter_unpack(f"<{self._width}sq", self._table):
            if key != empty:
                out.append((key, value))
        return out
