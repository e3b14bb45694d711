"""The public API is exactly ``__all__``; everything else is internal."""

from __future__ import annotations

import itsm_bridge as ib


def test_all_names_exist_and_are_sorted() -> None:
    for name in ib.__all__:
        assert hasattr(ib, name), name
    assert list(ib.__all__) == sorted(ib.__all__)


def test_public_objects_are_documented() -> None:
    for name in ib.__all__:
        obj = getattr(ib, name)
        if callable(obj) and not isinstance(obj, str):
            assert obj.__doc__, f"{name} has no docstring"
