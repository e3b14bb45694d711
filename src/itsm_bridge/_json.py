"""JSON encoding and decoding, with orjson when it is installed (the ``fast`` extra).

Decoding is the largest single cost of a pull (see docs/performance.md); orjson roughly
halves it. The stdlib is the fallback so the core keeps its four dependencies.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["HAVE_ORJSON", "dumps", "loads", "loads_exact"]

from types import ModuleType

_orjson: ModuleType | None
try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised when the extra is absent
    _orjson = None

HAVE_ORJSON = _orjson is not None


def loads(data: bytes | str) -> Any:
    """Decode JSON; every failure is a ``ValueError``, whichever decoder runs.

    Bytes must be UTF-8 (RFC 8259) with both decoders: the stdlib would otherwise guess UTF-16
    or UTF-32 where orjson refuses, and a too deeply nested document would escape the stdlib as
    ``RecursionError`` (orjson stops at 1024 levels).
    """
    if _orjson is not None:
        try:
            return _orjson.loads(data)
        except _orjson.JSONDecodeError as exc:
            raise ValueError(str(exc)) from None
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray, memoryview)) else data
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nesting depth limit exceeded") from None


# orjson reads an integer beyond 64 bits as a float (2**64 -> 1.8446744073709552e+19): a line
# with a run of 19 digits or more is read by the stdlib, which keeps every integer exact.
_LONG_DIGITS = re.compile(r"\d{19}")


def loads_exact(text: str) -> Any:
    """:func:`loads` for text that must come back exactly (a user's input lines, kept as they
    were): integers of any size stay integers."""
    if _orjson is not None and _LONG_DIGITS.search(text) is None:
        return loads(text)
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nesting depth limit exceeded") from None


def _default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(value: Any, *, sort_keys: bool = False) -> str:
    """Compact JSON text (UTF-8, no ASCII escaping)."""
    if _orjson is not None:
        option = _orjson.OPT_SORT_KEYS if sort_keys else 0
        try:
            encoded: bytes = _orjson.dumps(value, default=_default, option=option)
            return encoded.decode()
        except _orjson.JSONEncodeError as exc:
            if "64-bit" not in str(exc):
                raise
            # An integer beyond 64 bits (read by loads_exact): the stdlib writes it exactly.
    return json.dumps(
        value, default=_default, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys
    )
