"""The run-history chart: records created, updated and failed per run, as SVG geometry.

Public entry points: :func:`run_chart`, :class:`Chart`, :data:`SERIES`.

Computed here, drawn by a template as inline SVG: no script and no chart library, so the
page works offline and with scripts off.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# (count name, legend label), in the order bars stand in each run's group.
SERIES = (("created", "created"), ("updated", "updated"), ("failed", "failed"))


@dataclass(frozen=True)
class Bar:
    series: str
    x: float
    y: float
    width: float
    height: float
    value: int


@dataclass(frozen=True)
class Group:
    run_id: int
    label: str  # the run's start, short
    tooltip: str
    x: float
    width: float
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class Tick:
    value: int
    y: float


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    plot_left: float
    plot_top: float
    plot_bottom: float
    plot_right: float
    groups: tuple[Group, ...]
    ticks: tuple[Tick, ...]
    series: tuple[tuple[str, str], ...] = SERIES


def run_chart(runs: Sequence[dict[str, Any]], *, width: int = 900, height: int = 260) -> Chart:
    """The chart of ``runs`` (as :func:`hub.admin.list_runs` gives them, newest first),
    drawn oldest to newest from left to right."""
    left, right, top, bottom = 48.0, width - 12.0, 12.0, height - 36.0
    chronological = list(reversed(runs))
    highest = max(
        (int(run["counts"].get(name, 0)) for run in chronological for name, _ in SERIES),
        default=0,
    )
    top_value = _nice_ceiling(highest)
    scale = (bottom - top) / top_value
    slot = (right - left) / max(len(chronological), 1)
    bar_width = max(min(slot * 0.8 / len(SERIES), 24.0), 1.0)
    groups = []
    for index, run in enumerate(chronological):
        group_width = bar_width * len(SERIES)
        x = left + index * slot + (slot - group_width) / 2
        bars = []
        for position, (name, _) in enumerate(SERIES):
            value = int(run["counts"].get(name, 0))
            bar_height = value * scale
            bars.append(
                Bar(
                    name,
                    x + position * bar_width,
                    bottom - bar_height,
                    bar_width,
                    bar_height,
                    value,
                )
            )
        counts = ", ".join(f"{label} {int(run['counts'].get(name, 0)):,}" for name, label in SERIES)
        started = str(run["started_at"])[:16].replace("T", " ")
        groups.append(
            Group(
                run_id=int(run["id"]),
                label=started[5:],
                tooltip=f"run {run['id']} ({run['status']}), {started} UTC: {counts}",
                x=x,
                width=group_width,
                bars=tuple(bars),
            )
        )
    ticks = tuple(Tick(value, bottom - value * scale) for value in _ticks(top_value))
    return Chart(width, height, left, top, bottom, right, tuple(groups), ticks)


def _nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1
    power = int(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def _ticks(top_value: int) -> list[int]:
    """Four to six round values from 0 to ``top_value`` (a :func:`_nice_ceiling`)."""
    if top_value <= 5:
        step = 1
    else:
        power = int(10 ** math.floor(math.log10(top_value)))
        step = {1: power // 5, 2: power // 2, 5: power}[top_value // power]
    return list(range(0, top_value + 1, step))
