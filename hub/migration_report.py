"""The migration plan as files a person reads or filters: an HTML page with charts, and a CSV.

Public entry points: :func:`write_html`, :func:`write_csv`, :func:`report_paths`,
:func:`duration`.

``crmhub migrate plan --report FILE`` writes both. The page is one file that opens offline and
prints: inline style and SVG, no script, nothing fetched. Values come from the vendors' records
(picklist values, ids, reasons), so the page is rendered with Jinja2's autoescape: one that
looks like markup shows as text. The CSV has one fact a row under fixed columns, so a
spreadsheet's filter finds every gap, duplicate or count of one object type.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, StrictUndefined

from hub.migration import MigrationPlan, ObjectPlan, ValueGap

__all__ = ["CSV_COLUMNS", "duration", "report_paths", "write_csv", "write_html"]

CSV_COLUMNS = ("section", "object", "item", "value", "records", "detail")

# What happens to a source record, in the order the bars stack: (label, colour). Okabe-Ito
# colours stay apart for colour-blind readers; the legend's numbers carry them in grey print.
OUTCOMES = (
    ("to create", "#0072b2"),
    ("to match", "#009e73"),
    ("to update", "#e69f00"),
    ("unchanged", "#999999"),
    ("duplicates in source", "#cc79a7"),
    ("unreadable", "#d55e00"),
    ("held by a value gap", "#56b4e9"),
)
CHART_WIDTH = 720
# A count of 1 beside a million still shows as a sliver this wide (SVG user units).
MIN_BAR = 3.0
# Picklist choices shown in a gap's row; the rest are counted (and listed in its tooltip).
CHOICES_SHOWN = 8
# A cell a spreadsheet would run as a formula starts with one of these (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def report_paths(path: Path) -> tuple[Path, Path]:
    """The HTML and CSV files for what the user named: ``plan``, ``plan.html`` or
    ``plan.csv`` all give ``(plan.html, plan.csv)``."""
    suffix = path.suffix.lower()
    if suffix not in ("", ".html", ".csv"):
        raise ValueError(
            f"{path.name!r} ends in {path.suffix!r}: the plan is written as .html and .csv, "
            "so give a name ending in .html, .csv or with no suffix"
        )
    return path.with_suffix(".html"), path.with_suffix(".csv")


# --------------------------------------------------------------------------- HTML


def write_html(plan: MigrationPlan, path: Path) -> None:
    """The plan as one self-contained HTML page with its charts."""
    charts = _outcome_charts(plan.objects)
    page = _PAGE.render(
        plan=plan,
        made=_timestamp(plan.made_at),
        planning=duration(plan.planning_seconds),
        summary=_summary(plan.objects),
        charts=charts,
        calls=_calls_chart(plan),
        floor=duration(plan.floor_seconds) if plan.floor_seconds is not None else None,
        duplicates=[p for p in plan.objects if p.duplicates],
        unreadable=[p for p in plan.objects if p.unreadable],
        chart_width=CHART_WIDTH,
    )
    path.write_text(page, encoding="utf-8")


@dataclass(frozen=True)
class _Cell:
    figure: int
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Segment:
    label: str
    colour: str
    value: int
    x: float
    width: float


@dataclass(frozen=True)
class _OutcomeChart:
    """One object type's bar: what its source records would become."""

    object_type: str
    source_records: int
    total: int
    segments: tuple[_Segment, ...]  # every outcome, zero ones too: the legend lists them all
    # Records the source's own map cannot read because of a value gap: in no segment.
    gap_records: int


@dataclass(frozen=True)
class _CallsRow:
    system: str
    role: str
    calls: int
    least_time: str | None  # None: no client-side limit
    width: float


def _summary(objects: Sequence[ObjectPlan]) -> list[tuple[str, list[_Cell]]]:
    """The summary's rows, a column per object type: a page stays narrow enough to print
    however many figures an object type has."""
    return [
        ("In source", [_Cell(p.source_records) for p in objects]),
        ("In target", [_Cell(p.target_records) for p in objects]),
        ("To create", [_Cell(p.to_create) for p in objects]),
        (
            "To match",
            [
                _Cell(p.matched, tuple(f"{n:,} on {rule}" for rule, n in p.to_match.most_common()))
                for p in objects
            ],
        ),
        (
            "Of those, changed",
            [_Cell(p.to_match_changed) for p in objects],
        ),
        ("To update (moved before)", [_Cell(p.to_update) for p in objects]),
        ("Unchanged", [_Cell(p.unchanged) for p in objects]),
        ("Duplicates in source", [_Cell(p.duplicates) for p in objects]),
        ("Unreadable", [_Cell(sum(p.unreadable.values())) for p in objects]),
        ("Held by a value gap", [_Cell(p.blocked) for p in objects]),
        (
            "Value gaps",
            [
                _Cell(len(p.gaps), (f"{sum(gap.records for gap in p.gaps):,} records",))
                if p.gaps
                else _Cell(0)
                for p in objects
            ],
        ),
        (
            "Dropped fields",
            [_Cell(len(p.dropped), tuple(d.field_name for d in p.dropped)) for p in objects],
        ),
    ]


def _outcome_charts(objects: Sequence[ObjectPlan]) -> list[_OutcomeChart]:
    """Bars on one scale, so a type with few records looks small beside a large one."""
    counts = {
        p.object_type: [
            p.to_create,
            p.matched,
            p.to_update,
            p.unchanged,
            p.duplicates,
            sum(p.unreadable.values()),
            p.blocked,
        ]
        for p in objects
    }
    largest = max((sum(values) for values in counts.values()), default=0)
    charts = []
    for p in objects:
        values = counts[p.object_type]
        total = sum(values)
        span = CHART_WIDTH * total / largest if largest else 0.0
        widths = _widths(values, span)
        segments, x = [], 0.0
        for (label, colour), value, width in zip(OUTCOMES, values, widths, strict=True):
            segments.append(_Segment(label, colour, value, x, width))
            x += width
        charts.append(
            _OutcomeChart(
                p.object_type,
                p.source_records,
                total,
                tuple(segments),
                sum(gap.records for gap in p.gaps if gap.side == "source"),
            )
        )
    return charts


def _calls_chart(plan: MigrationPlan) -> list[_CallsRow]:
    systems = list(dict.fromkeys([*plan.calls, *plan.seconds]))
    calls = [plan.calls.get(system, 0) for system in systems]
    largest = max(calls, default=0)
    rows = []
    for system, count in zip(systems, calls, strict=True):
        role = "source" if system == plan.source else "target" if system == plan.target else ""
        width = max(CHART_WIDTH * count / largest, MIN_BAR) if count else 0.0
        seconds = plan.seconds.get(system)
        least_time = duration(seconds) if seconds is not None else None
        rows.append(_CallsRow(system, role, count, least_time, width))
    return rows


def _widths(values: Sequence[int], span: float) -> list[float]:
    """Widths in proportion to ``values`` that fill ``span``, every non-zero one at least
    :data:`MIN_BAR` wide; the others shrink to make room."""
    nonzero = [index for index, value in enumerate(values) if value > 0]
    span = max(span, MIN_BAR * len(nonzero))
    pinned: set[int] = set()
    while True:
        free = [index for index in nonzero if index not in pinned]
        room = span - MIN_BAR * len(pinned)
        rest = sum(values[index] for index in free)
        too_thin = {index for index in free if values[index] / rest * room < MIN_BAR}
        if not too_thin:
            break
        pinned |= too_thin
    return [
        0.0 if value <= 0 else MIN_BAR if index in pinned else value / rest * room
        for index, value in enumerate(values)
    ]


def duration(seconds: float) -> str:
    """A time a person reads at a glance: ``45 s``, ``12 min``, ``2 h 05 min``."""
    if seconds == 0:
        return "0 s"
    if round(seconds) < 1:
        return "under 1 s"
    if round(seconds) < 60:
        return f"{round(seconds)} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _number(value: int) -> str:
    return f"{value:,}"


def _abbreviated(choices: Sequence[str]) -> str:
    shown = ", ".join(choices[:CHOICES_SHOWN])
    more = len(choices) - CHOICES_SHOWN
    return f"{shown}, … and {more} more" if more > 0 else shown


def _fix(gap: ValueGap, target: str) -> str:
    return gap.fix or f"the target's own field map (systems.{target}.map)"


_ENVIRONMENT = Environment(
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_ENVIRONMENT.filters["num"] = _number
_ENVIRONMENT.filters["choices"] = _abbreviated
_ENVIRONMENT.filters["px"] = lambda value: f"{value:.1f}"
_ENVIRONMENT.globals["fix"] = _fix

_PAGE = _ENVIRONMENT.from_string(
    """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Migration plan: {{ plan.source }} → {{ plan.target }}</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: #1a1a1a; max-width: 1100px; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 2rem 0 .5rem; padding-bottom: .2rem;
  border-bottom: 1px solid #ccc; }
h3 { font-size: 1rem; margin: 1rem 0 .25rem; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d0d0; padding: .25rem .5rem; text-align: left;
  vertical-align: top; overflow-wrap: break-word; }
thead th, tbody th { background: #f2f2f2; }
.summary { width: auto; min-width: 50%; }
.n { text-align: right; }
td.n { white-space: nowrap; }
.muted { color: #555; }
.rules { display: block; color: #555; font-size: .85em; }
.banner { border: 2px solid #b00020; color: #b00020; padding: .5rem .75rem; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: .9em; }
/* Dotted keys and ids are long words: let them wrap rather than push the table off the page. */
td code, td.id { overflow-wrap: anywhere; }
figure { margin: .5rem 0 1.25rem; }
figcaption { margin-bottom: .25rem; }
svg { display: block; width: 100%; max-width: {{ chart_width + 20 }}px; height: auto; }
svg text { font: 12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; fill: #1a1a1a; }
.track { fill: none; stroke: #bbb; }
.errors li { color: #b00020; }
@media print {
  body { margin: 0; max-width: none; font-size: 9pt; }
  th, td { padding: .15rem .3rem; }
  figure, tr { break-inside: avoid; }
  h2, h3 { break-after: avoid; }
  thead { display: table-header-group; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
</style>
</head>
<body>
<header>
<h1>Migration plan: {{ plan.source }} → {{ plan.target }}</h1>
<p class="muted">From {{ plan.source }} ({{ plan.source_vendor }}) to {{ plan.target }}
({{ plan.target_vendor }}). Made {{ made }} in {{ planning }}; nothing was written.
Migration <code>{{ plan.name }}</code>.</p>
{% if plan.errors %}
<p class="banner">The plan met {{ plan.errors | length | num }}
error{{ "" if plan.errors | length == 1 else "s" }}: its figures may be incomplete.
See <a href="#errors">Errors</a>.</p>
{% endif %}
</header>

<h2>Summary</h2>
{% if plan.objects %}
<table class="summary">
<thead><tr>
<th></th>
{% for p in plan.objects %}
<th class="n" scope="col">{{ p.object_type }}</th>
{% endfor %}
</tr></thead>
<tbody>
{% for label, cells in summary %}
<tr>
<th scope="row">{{ label }}</th>
{% for cell in cells %}
<td class="n">{{ cell.figure | num }}
{% for detail in cell.details %}
<span class="rules">{{ detail }}</span>
{% endfor %}
</td>
{% endfor %}
</tr>
{% endfor %}
</tbody>
</table>
{% else %}
<p>No object types in this plan.</p>
{% endif %}

<h2>What happens to the source's records</h2>
<p class="muted">One scale for every object type. “To match” joins a record already in the
target (and updates it where they differ); “to update” is a record an earlier run moved whose
source changed since.</p>
{% for chart in charts %}
<figure>
<figcaption><strong>{{ chart.object_type }}</strong>: {{ chart.source_records | num }} source
records{% if chart.gap_records %}; {{ chart.gap_records | num }} hold a value the source's map
cannot read (see Value gaps) and wait for the values file{% endif %}.</figcaption>
{% set legend_rows = (chart.segments | length + 2) // 3 %}
<svg viewBox="-2 -2 {{ chart_width + 4 }} {{ 34 + legend_rows * 22 }}" role="img"
 aria-labelledby="chart-{{ loop.index }}">
<title id="chart-{{ loop.index }}">{{ chart.object_type }}:
{% for s in chart.segments %}{{ s.label }} {{ s.value | num }}{{ ", " if not loop.last else "" }}
{% endfor %}</title>
<rect class="track" x="0" y="0" width="{{ chart_width }}" height="26"/>
{% for s in chart.segments if s.width > 0 %}
<rect x="{{ s.x | px }}" y="0" width="{{ s.width | px }}" height="26" fill="{{ s.colour }}">
<title>{{ s.label }}: {{ s.value | num }} {{ chart.object_type }}</title></rect>
{% endfor %}
{% if not chart.total %}
<text x="{{ chart_width / 2 }}" y="17" text-anchor="middle">
nothing to create, match or update</text>
{% endif %}
{% for s in chart.segments %}
<g transform="translate({{ (loop.index0 % 3) * 240 }} {{ 38 + (loop.index0 // 3) * 22 }})">
<rect width="12" height="12" fill="{{ s.colour }}"/>
<text x="18" y="11">{{ s.label }}: {{ s.value | num }}</text>
</g>
{% endfor %}
</svg>
</figure>
{% endfor %}

<h2>API calls and the least time they take</h2>
{% if calls %}
<figure>
<figcaption>Calls the migration needs on each system, and the least time its client-side rate
limit allows for them.</figcaption>
<svg viewBox="-2 -2 {{ chart_width + 4 }} {{ calls | length * 46 + 4 }}" role="img"
 aria-labelledby="calls-title">
<title id="calls-title">API calls per system</title>
{% for row in calls %}
<g transform="translate(0 {{ loop.index0 * 46 }})">
<text x="0" y="13">{{ row.system }}{% if row.role %} ({{ row.role }}){% endif %}:
{{ row.calls | num }} calls,
{% if row.least_time %}at least {{ row.least_time }}{% else %}no client-side limit{% endif %}
</text>
<rect class="track" x="0" y="20" width="{{ chart_width }}" height="18"/>
{% if row.width > 0 %}
<rect x="0" y="20" width="{{ row.width | px }}" height="18" fill="#0072b2">
<title>{{ row.system }}: {{ row.calls | num }} calls</title></rect>
{% endif %}
</g>
{% endfor %}
</svg>
</figure>
{% endif %}
{% if floor is not none %}
<p>In all, at least {{ floor }} at the vendors' rate limits.</p>
{% else %}
<p>Neither system has a client-side rate limit: the vendors' servers set the pace.</p>
{% endif %}

<h2>Value gaps</h2>
{% if plan.gaps %}
<p class="muted">Values a field map has no mapping for. Source gaps: the source's map cannot
read the value. Target gaps: the target does not accept the value crmhub would write.</p>
<table>
<thead><tr>
<th>Object</th><th>Side</th><th>Field</th><th>Vendor field</th><th>Value</th>
<th class="n">Records</th><th>Examples</th><th>Where to fix</th><th>Choices</th>
</tr></thead>
<tbody>
{% for gap in plan.gaps %}
<tr>
<td>{{ gap.object_type }}</td><td>{{ gap.side }}</td><td>{{ gap.field_name }}</td>
<td>{% if gap.vendor_field %}<code>{{ gap.vendor_field }}</code>{% endif %}</td>
<td><code>{{ gap.value }}</code></td>
<td class="n">{{ gap.records | num }}</td>
<td class="id">{{ gap.examples | join(", ") }}</td>
<td>{% if gap.fix %}<code>{{ gap.fix }}</code>{% else %}{{ fix(gap, plan.target) }}{% endif %}</td>
<td title="{{ gap.choices | join(', ') }}">{{ gap.choices | choices }}</td>
</tr>
{% endfor %}
</tbody>
</table>
{% else %}
<p>None: both field maps carry every value found.</p>
{% endif %}

<h2>Dropped fields</h2>
{% set dropped = plan.objects | map(attribute="dropped") | sum(start=[]) %}
{% if dropped %}
<p class="muted">Fields the source fills that {{ plan.target }}'s field map does not write.</p>
<table>
<thead><tr><th>Object</th><th>Field</th><th class="n">Source records that fill it</th></tr></thead>
<tbody>
{% for d in dropped %}
<tr><td>{{ d.object_type }}</td><td>{{ d.field_name }}</td>
<td class="n">{{ d.records | num }}</td></tr>
{% endfor %}
</tbody>
</table>
{% else %}
<p>None: the target writes every field the source fills.</p>
{% endif %}

<h2>Duplicates in the source</h2>
{% if duplicates %}
<p class="muted">Source records with the same match key as another: one moves, the other
waits until they are merged in {{ plan.source }}.</p>
<table>
<thead><tr><th>Object</th><th>Source id</th><th>Duplicate of</th><th>Rule</th></tr></thead>
<tbody>
{% for p in duplicates %}
{% for d in p.listed_duplicates %}
<tr><td>{{ d.object_type }}</td><td class="id">{{ d.remote_id }}</td>
<td class="id">{{ d.duplicate_of }}</td>
<td>{{ d.rule }}</td></tr>
{% endfor %}
{% if p.duplicates > p.listed_duplicates | length %}
<tr><td colspan="4">
and {{ (p.duplicates - p.listed_duplicates | length) | num }} more {{ p.object_type }}</td></tr>
{% endif %}
{% endfor %}
</tbody>
</table>
{% else %}
<p>None.</p>
{% endif %}

<h2>Unreadable records</h2>
{% if unreadable %}
<table>
<thead><tr><th>Object</th><th>Reason</th><th class="n">Records</th></tr></thead>
<tbody>
{% for p in unreadable %}
{% for reason, count in p.unreadable.most_common() %}
<tr><td>{{ p.object_type }}</td><td>{{ reason }}</td><td class="n">{{ count | num }}</td></tr>
{% endfor %}
{% endfor %}
</tbody>
</table>
{% else %}
<p>None.</p>
{% endif %}

<h2>Notes</h2>
{% if plan.notes %}
<ul>
{% for note in plan.notes %}
<li>{{ note }}</li>
{% endfor %}
</ul>
{% else %}
<p>None.</p>
{% endif %}

<h2 id="errors">Errors</h2>
{% if plan.errors %}
<ul class="errors">
{% for error in plan.errors %}
<li>{{ error }}</li>
{% endfor %}
</ul>
{% else %}
<p>None.</p>
{% endif %}
</body>
</html>
"""
)


# --------------------------------------------------------------------------- CSV


def write_csv(plan: MigrationPlan, path: Path) -> None:
    """The plan as one CSV, a fact a row under :data:`CSV_COLUMNS`.

    Written with a byte-order mark, which is how Excel knows the file is UTF-8 (names with
    accents stay readable); Python reads it back with ``encoding="utf-8-sig"``.
    """
    with path.open("w", newline="", encoding="utf-8-sig") as file:
        writer = csv.writer(file)
        writer.writerow(CSV_COLUMNS)
        for row in _csv_rows(plan):
            writer.writerow([_cell(value) for value in row])


_Row = tuple[str, str, str, str | int, str | int, str]


def _csv_rows(plan: MigrationPlan) -> Iterator[_Row]:
    facts: list[tuple[str, str | int]] = [
        ("migration", plan.name),
        ("source", plan.source),
        ("target", plan.target),
        ("source_vendor", plan.source_vendor),
        ("target_vendor", plan.target_vendor),
        ("made_at", plan.made_at.isoformat()),
        ("exit_code", plan.exit_code),
    ]
    for item, value in facts:
        yield ("plan", "", item, value, "", "")
    for p in plan.objects:
        counts: list[tuple[str, int]] = [
            ("to_create", p.to_create),
            *((f"to_match:{rule}", n) for rule, n in p.to_match.most_common()),
            ("to_match_changed", p.to_match_changed),
            ("to_update", p.to_update),
            ("unchanged", p.unchanged),
            ("duplicates", p.duplicates),
            ("unreadable", sum(p.unreadable.values())),
            ("blocked", p.blocked),
            ("source_records", p.source_records),
            ("target_records", p.target_records),
        ]
        for item, count in counts:
            yield ("summary", p.object_type, item, count, "", "")
    for system, calls in plan.calls.items():
        seconds = plan.seconds.get(system)
        yield ("calls", "", system, calls, "", "" if seconds is None else str(round(seconds, 3)))
    for gap in plan.gaps:
        detail = [
            f"vendor_field={gap.vendor_field or ''}",
            f"fix={_fix(gap, plan.target)}",
            f"examples={', '.join(gap.examples)}",
            f"choices={', '.join(gap.choices)}",
        ]
        yield (
            "value_gap",
            gap.object_type,
            f"{gap.side}:{gap.field_name}",
            gap.value,
            gap.records,
            "; ".join(detail),
        )
    for p in plan.objects:
        for dropped in p.dropped:
            yield ("dropped_field", p.object_type, dropped.field_name, "", dropped.records, "")
    for p in plan.objects:
        for d in p.listed_duplicates:
            yield ("duplicate", p.object_type, d.remote_id, d.duplicate_of, "", d.rule)
        unlisted = p.duplicates - len(p.listed_duplicates)
        if unlisted > 0:
            yield (
                "duplicate",
                p.object_type,
                "not_listed",
                "",
                unlisted,
                f"{unlisted} more duplicates, not listed one by one",
            )
    for p in plan.objects:
        for reason, count in p.unreadable.most_common():
            yield ("unreadable", p.object_type, reason, "", count, "")
    for note in plan.notes:
        yield ("note", "", "", "", "", note)
    for error in plan.errors:
        yield ("error", "", "", "", "", error)


def _cell(value: str | int) -> str | int:
    """A text cell a spreadsheet shows as text: a vendor's value such as ``=HYPERLINK(..)``
    would otherwise run as a formula when the file is opened."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
