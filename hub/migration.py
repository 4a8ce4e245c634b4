"""Moving one CRM's records into another: the migration's sync, its plan, its runs.

Public entry points: :class:`Migration`, :class:`MigrationError`, :func:`plan_migration` with
:class:`MigrationPlan`, :class:`ObjectPlan`, :class:`ValueGap`, :class:`DroppedField`,
:class:`SourceDuplicate`, and :func:`run_migration`.

A migration is a one-way sync named ``migrate-<source>-to-<target>`` that the hub builds
itself: the source is only read; the target is read too, so that records already there are
matched instead of duplicated, and written. Conflicts go the source's way, deletes are left
alone. Its state (links, cursors, audit) lives in the same database as every sync's, so a run
stopped by a crash or Ctrl-C resumes where it stopped, and running it again is a delta pass
that carries only what changed in the source since.

The plan is a dry run of that sync, watched record by record (:class:`RunObserver`): it counts
what would be created or matched and by which rule, the source's duplicates, values neither map
can carry, fields the target's map drops, and the calls the vendors' limits make time for.

Values a default map does not know come back through a *values file* (``--values``), keyed by
system name, each part shaped like that system's ``map:`` in the config; ``plan`` writes a
starter one with every unmapped value set to null for a person to fill.
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from sqlalchemy import Engine

from connectors.base import DescribesPicklists
from connectors.errors import ConnectorError
from hub.config import DEFAULT_MATCH, Config, ConflictPolicy, SyncConfig
from hub.engine import Progress, SyncEngine, SystemRuntime
from hub.merge import is_blank
from hub.planning import Plan, Write
from hub.report import RunObserver, RunReport
from hub.runtime import build_runtimes, sync_spec
from hub.tables import utcnow
from mappings.errors import FieldMapError, MappingError, show_value
from mappings.fieldmap import FieldMap, FieldSpec
from mappings.schema import DEAL_STAGES, OBJECT_TYPES

__all__ = [
    "DroppedField",
    "Migration",
    "MigrationError",
    "MigrationPlan",
    "ObjectPlan",
    "SourceDuplicate",
    "ValueGap",
    "plan_migration",
    "run_migration",
]

# Example record ids kept per finding: enough to look one up, never the whole account.
EXAMPLES = 3
# Duplicates listed one by one in a plan; beyond, they are counted.
LISTED_DUPLICATES = 200


class MigrationError(ValueError):
    """A migration asked for wrongly: unknown systems, a bad values file. Exit code 2."""


@dataclass(frozen=True)
class Migration:
    """One source system moving into one target system, as configured."""

    config: Config
    source: str
    target: str
    objects: tuple[str, ...] = OBJECT_TYPES
    # system -> overrides of its field map, from the values file (see module docstring).
    values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    values_file: str | None = None

    @classmethod
    def from_config(
        cls,
        config: Config,
        source: str,
        target: str,
        objects: Sequence[str] | None = None,
        values_file: Path | None = None,
    ) -> Migration:
        """The migration, checked: both systems configured and distinct, object types known
        (put in dependency order), the values file readable and filled in."""
        for role, name in (("--from", source), ("--to", target)):
            if name not in config.systems:
                raise MigrationError(
                    f"{role} {name!r} is not a configured system "
                    f"(configured: {', '.join(config.systems) or 'none'})"
                )
        if source == target:
            raise MigrationError(f"--from and --to are both {source!r}: pick two systems")
        wanted = list(objects or OBJECT_TYPES)
        unknown = [name for name in wanted if name not in OBJECT_TYPES]
        if unknown:
            raise MigrationError(
                f"unknown object type {', '.join(map(repr, unknown))} "
                f"(known: {', '.join(OBJECT_TYPES)})"
            )
        migration = cls(
            config,
            source,
            target,
            tuple(name for name in OBJECT_TYPES if name in wanted),
        )
        if migration.name in config.syncs:
            raise MigrationError(
                f"the config already has a sync named {migration.name!r}, the name this "
                "migration keeps its state under: rename that sync"
            )
        if values_file is not None:
            values = load_values(values_file, (source, target))
            migration = replace(migration, values=values, values_file=str(values_file))
        return migration

    @property
    def name(self) -> str:
        return f"migrate-{self.source}-to-{self.target}"

    def sync_config(self) -> SyncConfig:
        return SyncConfig(
            name=self.name,
            systems={self.source: "read", self.target: "both"},
            objects=self.objects,
            match=dict(DEFAULT_MATCH),
            conflicts=ConflictPolicy(kind="prefer", prefer=(self.source,)),
            deletes="ignore",
        )

    def runtimes(self, *, sample: int | None = None) -> list[SystemRuntime]:
        """The two systems as a run uses them, the values file applied to their maps."""
        runtimes = build_runtimes(self.config, self.sync_config())
        for index, runtime in enumerate(runtimes):
            overrides = self.values.get(runtime.name)
            if overrides:
                try:
                    fieldmap = runtime.fieldmap.extend(
                        overrides,
                        source=self.values_file or "values file",
                        path_prefix=f"{runtime.name}.",
                    )
                except FieldMapError as exc:
                    raise MigrationError(str(exc)) from None
                runtimes[index] = replace(runtime, fieldmap=fieldmap)
        if sample is not None:
            runtimes[0] = replace(runtimes[0], read_limit=sample)
        return runtimes

    def engine(
        self,
        db: Engine,
        runtimes: Sequence[SystemRuntime],
        *,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
        observer: RunObserver | None = None,
    ) -> SyncEngine:
        """The engine of one run of this migration over ``runtimes`` (:meth:`runtimes`)."""
        return SyncEngine(
            db,
            sync_spec(self.sync_config()),
            runtimes,
            progress=progress,
            should_stop=should_stop,
            observer=observer,
        )


# --------------------------------------------------------------------------- values file


def load_values(
    path: Path, systems: Sequence[str], *, unfilled_ok: bool = False
) -> dict[str, dict[str, Any]]:
    """A values file, checked: only the migration's systems, and (unless ``unfilled_ok``, for
    a starter file a person is still filling) no value left null."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MigrationError(f"cannot read the values file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise MigrationError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise MigrationError(f"{path}: must map system names to field-map overrides")
    for system, overrides in data.items():
        if system not in systems:
            raise MigrationError(
                f"{path}: {system!r} is neither side of this migration ({', '.join(systems)})"
            )
        if not isinstance(overrides, dict):
            raise MigrationError(f"{path}: {system}: must map object types to fields")
        blank = None if unfilled_ok else _first_unfilled(overrides, (str(system),))
        if blank is not None:
            raise MigrationError(
                f"{path}: {blank} has no value yet: fill it in (see the comment above it), "
                "or delete the line to leave those records out"
            )
    return data


def _first_unfilled(node: Any, path: tuple[str, ...]) -> str | None:
    if isinstance(node, dict):
        for key, value in node.items():
            if value is None and len(path) >= 3 and path[-1] in ("values", "prefer"):
                return ".".join((*path, show_value(key)))
            found = _first_unfilled(value, (*path, str(key)))
            if found is not None:
                return found
    return None


# --------------------------------------------------------------------------- the plan


@dataclass
class ValueGap:
    """A value one side's field map has no mapping for, and how many records hold it.

    ``side`` is ``source`` (the source's map cannot read the value: an unknown deal stage) or
    ``target`` (the target does not accept it: a picklist value it does not list). ``value`` is
    the vendor's value for a source gap and the value crmhub would write for a target gap;
    ``fix`` is the key path of the values file that maps it, None when a person must fix the
    target's own map instead; ``choices`` what it may be mapped to, when that is a closed list.
    """

    object_type: str
    side: Literal["source", "target"]
    field_name: str
    vendor_field: str | None
    value: str
    records: int = 0
    examples: list[str] = field(default_factory=list)
    fix: str | None = None
    choices: list[str] = field(default_factory=list)


@dataclass
class DroppedField:
    """A canonical field the source fills that the target's field map does not write."""

    object_type: str
    field_name: str
    records: int


@dataclass
class SourceDuplicate:
    """Two source records with the same match key: one moves, the other waits for a merge."""

    object_type: str
    remote_id: str
    duplicate_of: str
    rule: str


@dataclass
class ObjectPlan:
    """What a migration would do to one object type."""

    object_type: str
    source_records: int = 0
    target_records: int = 0
    to_create: int = 0
    # rule ("email") -> source records that would join a record already in the target by it;
    # ``to_match_changed`` of them differ from it, so the target's record is updated too.
    to_match: Counter[str] = field(default_factory=Counter)
    to_match_changed: int = 0
    # Records moved by an earlier run whose source changed since (a delta pass).
    to_update: int = 0
    unchanged: int = 0
    unreadable: Counter[str] = field(default_factory=Counter)  # reason -> source records
    # Source records held back by a value the source's map cannot read (see ``gaps``).
    blocked: int = 0
    duplicates: int = 0
    listed_duplicates: list[SourceDuplicate] = field(default_factory=list)
    gaps: list[ValueGap] = field(default_factory=list)
    dropped: list[DroppedField] = field(default_factory=list)
    read_calls: dict[str, int] = field(default_factory=dict)
    write_calls: int = 0

    @property
    def matched(self) -> int:
        return sum(self.to_match.values())


@dataclass
class MigrationPlan:
    """What ``crmhub migrate plan`` found, ready for a table, HTML or CSV."""

    name: str
    source: str
    target: str
    source_vendor: str
    target_vendor: str
    made_at: datetime
    objects: list[ObjectPlan]
    calls: dict[str, int]  # system -> API calls the migration needs there
    seconds: dict[str, float | None]  # system -> the least time its rate limit allows
    planning_seconds: float
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    exit_code: int = 0

    @property
    def gaps(self) -> list[ValueGap]:
        return [gap for plan in self.objects for gap in plan.gaps]

    @property
    def floor_seconds(self) -> float | None:
        """The least time the run can take at the vendors' limits (None: no limits known):
        that of the system whose limit holds it longest."""
        known = [s for s in self.seconds.values() if s is not None]
        return max(known) if known else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "migration": self.name,
            "source": self.source,
            "target": self.target,
            "made_at": self.made_at.isoformat(),
            "objects": [
                {
                    "object": p.object_type,
                    "source_records": p.source_records,
                    "target_records": p.target_records,
                    "to_create": p.to_create,
                    "to_match": dict(p.to_match),
                    "to_match_changed": p.to_match_changed,
                    "to_update": p.to_update,
                    "unchanged": p.unchanged,
                    "unreadable": dict(p.unreadable),
                    "blocked": p.blocked,
                    "duplicates": p.duplicates,
                    "listed_duplicates": [d.__dict__ for d in p.listed_duplicates],
                    "value_gaps": [g.__dict__ for g in p.gaps],
                    "dropped_fields": [d.__dict__ for d in p.dropped],
                    "read_calls": p.read_calls,
                    "write_calls": p.write_calls,
                }
                for p in self.objects
            ],
            "calls": self.calls,
            "seconds_at_rate_limits": self.seconds,
            "planning_seconds": round(self.planning_seconds, 3),
            "notes": self.notes,
            "errors": self.errors,
            "exit_code": self.exit_code,
        }


def plan_migration(
    db: Engine, migration: Migration, *, progress: Progress | None = None
) -> MigrationPlan:
    """Read both systems without writing anything, and tell what a migration would do."""
    runtimes = migration.runtimes()
    started = time.monotonic()
    tally = _PlanTally(migration, *runtimes)
    report = migration.engine(db, runtimes, progress=progress, observer=tally).run(dry_run=True)
    return tally.finish(report, time.monotonic() - started)


def run_migration(
    db: Engine,
    migration: Migration,
    *,
    sample: int | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> RunReport:
    """Move the records (the first ``sample`` of each type only, for a rehearsal).

    The first run moves everything; a later one is a delta pass. One stopped part-way resumes:
    what it committed stays linked, and the next run writes only what is left.
    """
    runtimes = migration.runtimes(sample=sample)
    return migration.engine(db, runtimes, progress=progress, should_stop=should_stop).run()


class _PlanTally(RunObserver):
    """Watches the plan's dry run and keeps the figures of a :class:`MigrationPlan`."""

    def __init__(self, migration: Migration, source: SystemRuntime, target: SystemRuntime):
        self.migration = migration
        self.source = source
        self.target = target
        self.objects = {name: ObjectPlan(name) for name in migration.objects}
        self.filled: dict[str, Counter[str]] = defaultdict(Counter)
        self.gaps: dict[tuple[str, str, str, str], ValueGap] = {}
        self.notes: list[str] = []
        self.picklists = self._target_picklists()
        # (object type, field, value) -> whether the target accepts what it would be written
        # as: a picklist holds few distinct values, so each is mapped once, not once a record.
        self._accepted: dict[tuple[str, str, Any], bool] = {}

    # -- what the target accepts ------------------------------------------------------

    def _target_picklists(self) -> dict[str, dict[str, tuple[str, frozenset[str]]]]:
        """object type -> canonical field -> (target vendor field, values it accepts)."""
        connector = self.target.connector
        if not isinstance(connector, DescribesPicklists):
            self.notes.append(
                f"{self.target.name}'s connector does not describe its picklists: values are "
                "checked against its field map only"
            )
            return {}
        fieldmap = self.target.fieldmap
        found: dict[str, dict[str, tuple[str, frozenset[str]]]] = {}
        for object_type in self.migration.objects:
            if object_type not in fieldmap.object_types:
                continue
            for name in sorted(fieldmap.writable_fields(object_type)):
                vendor_field = fieldmap.vendor_field(object_type, name)
                if vendor_field is None or name in fieldmap.reference_fields(object_type):
                    continue
                try:
                    accepted = connector.picklist(object_type, vendor_field)
                except ConnectorError as exc:
                    self.notes.append(
                        f"{self.target.name} would not describe its {object_type} fields "
                        f"({exc.message}): picklist values were not checked"
                    )
                    break
                if accepted is not None:
                    found.setdefault(object_type, {})[name] = (vendor_field, accepted)
        return found

    # -- the observer's hooks ---------------------------------------------------------

    def mapped(self, object_type: str, system: str, values: Sequence[Mapping[str, Any]]) -> None:
        if system != self.source.name:
            return
        filled = self.filled[object_type]
        picklists = self.picklists.get(object_type, {})
        for record in values:
            filled.update(name for name, value in record.items() if not is_blank(value))
            for name, (vendor_field, accepted) in picklists.items():
                value = record.get(name)
                if is_blank(value):
                    continue
                key = (object_type, name, tuple(value) if isinstance(value, list) else value)
                ok = self._accepted.get(key)
                if ok is None:
                    written = self._as_target_writes(object_type, name, value)
                    ok = self._accepted[key] = written is None or all(
                        item in accepted for item in written
                    )
                if not ok:
                    self._target_gap(object_type, name, vendor_field, value, sorted(accepted))

    def _as_target_writes(self, object_type: str, name: str, value: Any) -> list[str] | None:
        try:
            written = self.target.fieldmap.vendor_value(object_type, name, value)
        except MappingError:
            return None  # the planner dead-letters it, and unwritable() reports it
        if written is None:
            return None
        items = written if isinstance(written, list) else [written]
        return [str(item) for item in items]

    def _target_gap(
        self, object_type: str, name: str, vendor_field: str, value: Any, choices: list[str]
    ) -> None:
        # A field the source passes through as text is fixed on the source's side: its value
        # maps straight to one the target lists. A field the source maps to a canonical value
        # (a stage) needs the target's own map to name its value for it.
        passes_through = not self._has_value_map(self.source.fieldmap, object_type, name)
        fix = _values_key(self.source.fieldmap, object_type, name, self.source.name)
        self._count_gap(
            ValueGap(
                object_type,
                "target",
                name,
                vendor_field,
                str(value),
                fix=fix if passes_through else None,
                choices=choices,
            )
        )

    def _count_gap(self, found: ValueGap, example: str | None = None) -> None:
        """One more record holding ``found``'s value (kept the first time it is seen)."""
        key = (found.object_type, found.side, found.field_name, found.value)
        gap = self.gaps.setdefault(key, found)
        gap.records += 1
        if example is not None and len(gap.examples) < EXAMPLES:
            gap.examples.append(example)

    def unmappable(
        self, object_type: str, system: str, remote_id: str, error: MappingError
    ) -> None:
        if system != self.source.name:
            return
        plan = self.objects[object_type]
        if error.map_key is None or error.field is None:
            plan.unreadable[_reason_kind(error)] += 1
            return
        self._count_gap(
            ValueGap(
                object_type,
                "source",
                error.field,
                error.vendor_field,
                str(error.value),
                fix=f"{self.source.name}.{error.map_key}",
                choices=list(DEAL_STAGES) if error.field == "stage" else [],
            ),
            example=remote_id,
        )

    def duplicate(
        self, object_type: str, system: str, remote_id: str, duplicate_of: str, rule: str
    ) -> None:
        if system != self.source.name:
            return
        plan = self.objects[object_type]
        plan.duplicates += 1
        if len(plan.listed_duplicates) < LISTED_DUPLICATES:
            plan.listed_duplicates.append(
                SourceDuplicate(object_type, remote_id, duplicate_of, rule)
            )

    def unwritable(
        self, object_type: str, system: str, canonical_id: str, error: MappingError
    ) -> None:
        if system != self.target.name or error.field is None:
            return
        self._count_gap(
            ValueGap(object_type, "target", error.field, error.vendor_field, str(error.value))
        )

    def planned(self, object_type: str, plans: Sequence[Plan], writes: Sequence[Write]) -> None:
        plan = self.objects[object_type]
        source, target = self.source.name, self.target.name
        matching: set[str] = set()
        for record in plans:
            if source not in record.new_links:
                continue
            if target in record.versions or target in record.links:
                rules = (record.rules.get(source, ""), record.rules.get(target, ""))
                rule = next((r for r in rules if r.startswith("matched on")), "matched")
                plan.to_match[rule.removeprefix("matched on ")] += 1
                matching.add(record.canonical_id)
        for write in writes:
            if write.system != target:
                continue
            if write.kind == "create":
                plan.to_create += 1
            elif write.kind == "update" and write.canonical_id in matching:
                plan.to_match_changed += 1
            elif write.kind == "update":
                plan.to_update += 1

    # -- the result -------------------------------------------------------------------

    def finish(self, report: RunReport, seconds: float) -> MigrationPlan:
        source, target = self.source, self.target
        calls: Counter[str] = Counter()
        for object_type, plan in self.objects.items():
            counts = report.counts.get(object_type, {})
            plan.source_records = counts.get(source.name, Counter())["read"]
            plan.target_records = counts.get(target.name, Counter())["read"]
            plan.unchanged = counts.get(source.name, Counter())["unchanged"]
            plan.blocked = sum(
                gap.records
                for key, gap in self.gaps.items()
                if key[0] == object_type and gap.side == "source"
            )
            plan.gaps = sorted(
                (gap for key, gap in self.gaps.items() if key[0] == object_type),
                key=lambda gap: (gap.side, gap.field_name, -gap.records, gap.value),
            )
            # A field the target only reads carries nothing, unless it reads it out of one it
            # writes (Zoho's domain, read from the website): then the value survives there.
            carried = target.fieldmap.writable_fields(object_type) | {
                spec.canonical
                for spec in target.fieldmap.specs(object_type)
                if spec.readable and _written_elsewhere(target.fieldmap, object_type, spec)
            }
            plan.dropped = [
                DroppedField(object_type, name, n)
                for name, n in sorted(self.filled[object_type].items())
                if name not in carried
            ]
            plan.read_calls = {
                source.name: _read_calls(object_type, plan.source_records, source),
                target.name: _read_calls(object_type, plan.target_records, target),
            }
            batch = max(1, target.connector.capabilities.write_request_size)
            plan.write_calls = math.ceil(plan.to_create / batch) + math.ceil(
                (plan.to_update + plan.to_match_changed) / batch
            )
            calls[source.name] += plan.read_calls[source.name]
            calls[target.name] += plan.read_calls[target.name] + plan.write_calls
        floor: dict[str, float | None] = {}
        for runtime in (source, target):
            floor[runtime.name] = runtime.connector.capabilities.least_seconds(calls[runtime.name])
        notes = list(self.notes)
        left_out = [name for name in OBJECT_TYPES if name not in self.migration.objects]
        if left_out:
            notes.append(
                f"{', '.join(left_out)} are not part of this migration: references to them "
                "(a contact's company, a deal's contacts) are left out"
            )
        notes.append(
            "record owners are not migrated: records are created as the API user of "
            f"{target.name}, to be reassigned there"
        )
        notes.append(
            f"fields outside {source.name}'s field map are not read; map them under "
            f"systems.{source.name}.map (or in the values file) to carry them"
        )
        errors = [f"{f.system}: {f.message}" for f in report.failures]
        return MigrationPlan(
            name=self.migration.name,
            source=source.name,
            target=target.name,
            source_vendor=source.fieldmap.vendor,
            target_vendor=target.fieldmap.vendor,
            made_at=utcnow(),
            objects=list(self.objects.values()),
            calls=dict(calls),
            seconds=floor,
            planning_seconds=seconds,
            notes=notes,
            errors=errors,
            exit_code=max((f.exit_code for f in report.failures), default=0),
        )

    @staticmethod
    def _has_value_map(fieldmap: FieldMap, object_type: str, name: str) -> bool:
        spec = next((s for s in fieldmap.specs(object_type) if s.canonical == name), None)
        return spec is not None and bool(spec.values)


def _values_key(fieldmap: FieldMap, object_type: str, name: str, system: str) -> str | None:
    """Where the values file maps a value of this field, or None when the map lacks it."""
    spec = next((s for s in fieldmap.specs(object_type) if s.canonical == name), None)
    return f"{system}.{spec.values_key}" if spec is not None else None


def _written_elsewhere(fieldmap: FieldMap, object_type: str, spec: FieldSpec) -> bool:
    """Whether a read-only field's vendor field is written for another canonical field."""
    return any(
        other.vendor_field == spec.vendor_field and other.writable and other is not spec
        for other in fieldmap.specs(object_type)
    )


def _read_calls(object_type: str, records: int, runtime: SystemRuntime) -> int:
    """The calls a full read of ``records`` costs: its pages, and what each page costs more."""
    capabilities = runtime.connector.capabilities
    pages = max(1, math.ceil(records / max(1, capabilities.read_page_size)))
    extra = capabilities.read_calls_per_record.get(object_type, 0.0)
    return pages + math.ceil(records * extra)


def _reason_kind(error: MappingError) -> str:
    """A reason with the record's own value taken out, so like failures count together."""
    if error.field is None:
        return f"{error.object_type}: {error.reason}"
    vendor = f" ({error.vendor_field})" if error.vendor_field else ""
    return f"{error.object_type}.{error.field}{vendor} {error.reason}"


# --------------------------------------------------------------------------- starter file


def starter_values(plan: MigrationPlan, existing: Mapping[str, Any] | None = None) -> str | None:
    """A values file for every gap the values file can fix, each set to null with a comment
    naming the records and the choices; entries of ``existing`` a person filled are kept.
    None when there is nothing to fill."""
    entries: dict[str, dict[str, Any]] = {}
    comments: dict[tuple[str, ...], str] = {}
    for gap in plan.gaps:
        if gap.fix is None:
            continue
        system, *path = gap.fix.split(".")
        node = entries.setdefault(system, {})
        for part in path[:-1]:
            node = node.setdefault(part, {})
        values = node.setdefault(path[-1], {})
        values.setdefault(gap.value, None)
        if gap.side == "target":
            node.setdefault("unknown", "keep")
        shown = ", ".join(gap.choices[:12]) + (", ..." if len(gap.choices) > 12 else "")
        where = "in " + (plan.source if gap.side == "source" else plan.target)
        comments[(system, *path, gap.value)] = (
            f"{gap.records} {gap.object_type}; {where}, one of: {shown}"
            if shown
            else f"{gap.records} {gap.object_type}"
        )
    if not entries:
        return None
    for system, overrides in (existing or {}).items():
        _keep_filled(entries.setdefault(system, {}), overrides)
    lines = [
        f"# Values {plan.name} has no mapping for. Replace each null with the value it",
        "# should become (the comment lists the choices), or delete the line to leave",
        "# those records out, then pass this file back:",
        f"#   crmhub migrate plan --from {plan.source} --to {plan.target} --values FILE",
        "# Source entries say what a source value means in crmhub's terms (a deal stage);",
        "# target entries, under the source, what to write instead of a value the target",
        "# does not list.",
    ]
    _emit_yaml(entries, (), comments, lines, 0)
    return "\n".join(lines) + "\n"


def _keep_filled(into: dict[str, Any], filled: Mapping[str, Any]) -> None:
    for key, value in filled.items():
        if isinstance(value, Mapping):
            _keep_filled(into.setdefault(key, {}), value)
        elif value is not None:
            into[key] = value


def _emit_yaml(
    node: Mapping[str, Any],
    path: tuple[str, ...],
    comments: Mapping[tuple[str, ...], str],
    lines: list[str],
    depth: int,
) -> None:
    indent = "  " * depth
    for key, value in node.items():
        shown = yaml.safe_dump(key, default_flow_style=True, allow_unicode=True)
        shown = shown.strip().removesuffix("...").strip()
        if isinstance(value, Mapping):
            lines.append(f"{indent}{shown}:")
            _emit_yaml(value, (*path, key), comments, lines, depth + 1)
            continue
        comment = comments.get((*path, key))
        if comment:
            lines.append(f"{indent}# {comment}")
        rendered = "null" if value is None else yaml.safe_dump(value, default_flow_style=True)
        rendered = rendered.strip().removesuffix("...").strip()
        lines.append(f"{indent}{shown}: {rendered}")
