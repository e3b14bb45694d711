"""The public API is exactly ``__all__`` of ``itsm_bridge`` and its two documented subpackages.

The test checks consistency rather than a frozen list, so that adding a public name is one edit
(import it, list it) and forgetting either half fails here.
"""

from __future__ import annotations
import __future__

import dataclasses
import importlib
import inspect
import pkgutil
import types

import pytest

import itsm_bridge as ib
import itsm_bridge.sandbox
import itsm_bridge.testing

PUBLIC = [ib, itsm_bridge.testing, itsm_bridge.sandbox]
IDS = [m.__name__ for m in PUBLIC]


def _isort_style(name: str) -> tuple[int, str]:
    # The order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions and the rest.
    group = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return group, name


@pytest.mark.parametrize("module", PUBLIC, ids=IDS)
def test_all_names_exist_are_unique_and_sorted(module: types.ModuleType) -> None:
    names = list(module.__all__)
    missing = [n for n in names if not hasattr(module, n)]
    assert not missing, f"{module.__name__}.__all__ lists names it does not have: {missing}"
    assert len(names) == len(set(names)), "a name is listed twice"
    assert names == sorted(names, key=_isort_style), f"{module.__name__}.__all__ is not sorted"


@pytest.mark.parametrize("module", PUBLIC, ids=IDS)
def test_every_other_name_is_private_or_a_submodule(module: types.ModuleType) -> None:
    strays = []
    for name, value in vars(module).items():
        if name in module.__all__ or name.startswith("_"):
            continue
        if value is __future__.annotations:
            continue
        if isinstance(value, types.ModuleType) and value.__name__.startswith(f"{module.__name__}."):
            continue
        strays.append(name)
    assert not strays, (
        f"{module.__name__} exposes {strays} without listing them in __all__: "
        "list them, or import them under a private name"
    )


def _documented(obj: object) -> bool:
    doc = inspect.getdoc(obj) or ""
    if inspect.isclass(obj) and dataclasses.is_dataclass(obj):
        # the docstring dataclasses invent ("Name(field: type, ...)") documents nothing
        return bool(doc) and not doc.startswith(f"{obj.__name__}(")
    return bool(doc.strip())


@pytest.mark.parametrize("module", PUBLIC, ids=IDS)
def test_public_classes_and_functions_are_documented(module: types.ModuleType) -> None:
    undocumented = [
        name
        for name in module.__all__
        if (inspect.isclass(obj := getattr(module, name)) or inspect.isfunction(obj))
        and not _documented(obj)
    ]
    assert not undocumented, f"{module.__name__}: no docstring on {undocumented}"


@pytest.mark.parametrize("module", PUBLIC, ids=IDS)
def test_public_objects_are_our_own(module: types.ModuleType) -> None:
    foreign = [
        name
        for name in module.__all__
        if (inspect.isclass(obj := getattr(module, name)) or inspect.isfunction(obj))
        and not obj.__module__.startswith("itsm_bridge")
    ]
    assert not foreign, f"{module.__name__} re-exports third-party objects: {foreign}"


def test_the_package_docstring_marks_everything_else_internal() -> None:
    doc = " ".join((ib.__doc__ or "").split())
    assert "``__all__``" in doc
    assert "itsm_bridge.testing" in doc
    assert "itsm_bridge.sandbox" in doc
    assert "internal" in doc


def _modules() -> list[str]:
    found = [
        info.name
        for info in pkgutil.walk_packages(ib.__path__, prefix="itsm_bridge.")
        if not info.name.endswith("__main__")  # importing it would run the CLI
    ]
    assert "itsm_bridge.http.transport" in found
    return found


@pytest.mark.parametrize("name", _modules())
def test_every_module_imports_and_its_all_is_honest(name: str) -> None:
    module = importlib.import_module(name)
    for listed in getattr(module, "__all__", ()):
        assert hasattr(module, listed), f"{name}.__all__ lists {listed!r}, which it lacks"


def test_version() -> None:
    assert isinstance(ib.__version__, str)
    assert ib.__version__.count(".") >= 2
