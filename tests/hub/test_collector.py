"""A run paces the garbage collector for its own allocations, and leaves the process's as it
found it: crmhub runs inside daemons, workers and other people's programs."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from hub.collector import YOUNG_THRESHOLD, run_pace
from tests.hub.harness import Harness


@pytest.fixture(autouse=True)
def _default_collector() -> Iterator[None]:
    saved, enabled = gc.get_threshold(), gc.isenabled()
    gc.set_threshold(700, 10, 10)
    gc.enable()
    try:
        yield
    finally:
        gc.set_threshold(*saved)
        if not enabled:
            gc.disable()


def test_a_run_collects_young_garbage_less_often_and_restores_the_thresholds(db: Engine) -> None:
    harness = Harness(db, objects=("contacts",))
    harness.add("a", "contacts", firstname="Ann", email="ann@example.com")
    during: list[tuple[int, int, int]] = []

    report = harness.run(progress=lambda *_: during.append(gc.get_threshold()))

    assert report.exit_code == 0
    assert during
    assert set(during) == {(YOUNG_THRESHOLD, 10, 10)}
    assert gc.get_threshold() == (700, 10, 10)


def test_overlapping_runs_restore_the_thresholds_when_the_last_one_ends() -> None:
    first, second = run_pace(), run_pace()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    second.__exit__(None, None, None)
    assert gc.get_threshold() == (700, 10, 10)


def test_a_process_that_collects_less_often_or_not_at_all_is_left_alone() -> None:
    gc.set_threshold(200_000, 20, 20)
    with run_pace():
        assert gc.get_threshold() == (200_000, 20, 20)
    gc.disable()
    with run_pace():
        assert not gc.isenabled()
        assert gc.get_threshold() == (200_000, 20, 20)
    assert not gc.isenabled()
