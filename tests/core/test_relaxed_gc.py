"""relaxed_gc: the collector's young threshold is raised during pulls and always given back."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from itsm_bridge.connector import relaxed_gc


@pytest.fixture(autouse=True)
def _thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_raised_inside_and_restored_after() -> None:
    with relaxed_gc(young=40_000):
        assert gc.get_threshold() == (40_000, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_restored_after_an_error() -> None:
    with pytest.raises(RuntimeError), relaxed_gc():
        raise RuntimeError("pull failed")
    assert gc.get_threshold() == (700, 10, 10)


def test_overlapping_pulls_restore_once_the_last_ends() -> None:
    first, second = relaxed_gc(), relaxed_gc()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold()[0] == 50_000  # the second pull is still running
    second.__exit__(None, None, None)
    assert gc.get_threshold() == (700, 10, 10)


def test_a_generator_gives_it_back_when_closed_early() -> None:
    def stream() -> Iterator[int]:
        with relaxed_gc():
            yield from range(10)

    pages = stream()
    assert next(pages) == 0
    assert gc.get_threshold()[0] == 50_000
    pages.close()
    assert gc.get_threshold() == (700, 10, 10)


def test_someone_elses_change_is_kept() -> None:
    with relaxed_gc():
        gc.set_threshold(1234, 5, 5)
    assert gc.get_threshold() == (1234, 5, 5)


def test_a_collector_switched_off_stays_off() -> None:
    gc.set_threshold(0, 10, 10)
    with relaxed_gc():
        assert gc.get_threshold() == (0, 10, 10)
    assert gc.get_threshold() == (0, 10, 10)


def test_a_higher_threshold_is_not_lowered() -> None:
    gc.set_threshold(100_000, 10, 10)
    with relaxed_gc():
        assert gc.get_threshold() == (100_000, 10, 10)
    assert gc.get_threshold() == (100_000, 10, 10)
