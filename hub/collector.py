"""The garbage collector's pace while syncs run.

Public entry points: :func:`run_pace`, :data:`YOUNG_THRESHOLD`.

A run makes container objects by the million (staged records, plans, rows), most of which live
for one page. Under CPython's default thresholds (700, 10, 10) they outlive two young
collections, reach the oldest generation, and bring a full collection every few pages, each of
which walks every object in the process: a fifth of a first sync of 100,000 records went there.
With a young generation the size of a page's allocations they die young instead. Reference
counting still frees every non-cyclic object at once, so memory stays as flat as before; only
cyclic garbage waits for a larger batch.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 50_000
"""Allocations between young collections while a run is under way (CPython's default: 700)."""

_lock = threading.Lock()
_runs = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def run_pace() -> Iterator[None]:
    """Collect young garbage less often until the last of the process's runs ends.

    Runs may overlap (the scheduler runs each sync on its own thread): the first to start sets
    the pace and the last to end restores what the process had. A process that collects less
    often already, or not at all (``gc.disable()``, a threshold of 0), is left as it is.
    """
    global _runs, _saved
    with _lock:
        if _runs == 0:
            current = gc.get_threshold()
            if gc.isenabled() and 0 < current[0] < YOUNG_THRESHOLD:
                _saved = current
                gc.set_threshold(YOUNG_THRESHOLD, *current[1:])
        _runs += 1
    try:
        yield
    finally:
        with _lock:
            _runs -= 1
            if _runs == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None
