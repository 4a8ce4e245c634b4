"""Proving a migration: every source record compared, field by field, with its target record.

Public entry points: :func:`verify_migration`, :class:`Verification`, :class:`ObjectCheck`,
:class:`Missing`, :class:`Differing`, :class:`Extra`.

Both systems are read in full and mapped to canonical values through their field maps (with
the migration's values file), references turned into canonical ids through the migration's
links. A source record is *missing* when no target record stands for it (never moved, refused,
or gone from the target since), *differing* when a field the target's map writes holds another
value than the source's, and a target record is *extra* when the migration linked it to a
source record that no longer exists. Target records the migration never touched (there before
it, and unlike any source record) are counted, not faulted. The verdict is clean only when
nothing is missing, differing or extra.

A source field left blank is not compared: a migration never blanks a value the target held.
A list the target holds only so many of (Zoho's one contact per deal) is compared up to that
count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from connectors.base import RemoteRecord
from connectors.errors import Action, ConnectorError
from hub import store
from hub.engine import SystemRuntime
from hub.migration import Migration
from mappings.errors import MappingError

__all__ = ["Differing", "Extra", "Missing", "ObjectCheck", "Verification", "verify_migration"]

Progress = Callable[[str, str, int, int | None], None]
# Findings kept one by one per object type and kind; beyond, they are counted.
LISTED = 500


@dataclass
class Missing:
    object_type: str
    source_id: str
    target_id: str | None
    reason: str


@dataclass
class Differing:
    object_type: str
    source_id: str
    target_id: str
    canonical_id: str
    fields: dict[str, tuple[Any, Any]]  # field -> (source value, target value)


@dataclass
class Extra:
    object_type: str
    target_id: str
    source_id: str | None
    reason: str


@dataclass
class ObjectCheck:
    object_type: str
    source_records: int = 0
    target_records: int = 0
    matching: int = 0
    missing: int = 0
    differing: int = 0
    extra: int = 0
    only_in_target: int = 0
    listed_missing: list[Missing] = field(default_factory=list)
    listed_differing: list[Differing] = field(default_factory=list)
    listed_extra: list[Extra] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.missing or self.differing or self.extra)


@dataclass
class Verification:
    name: str
    source: str
    target: str
    objects: list[ObjectCheck]
    errors: list[str] = field(default_factory=list)
    error_exit_code: int = 0

    @property
    def clean(self) -> bool:
        return not self.errors and all(check.clean for check in self.objects)

    @property
    def exit_code(self) -> int:
        if self.error_exit_code:
            return self.error_exit_code
        return 0 if self.clean else 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "migration": self.name,
            "source": self.source,
            "target": self.target,
            "clean": self.clean,
            "objects": [
                {
                    "object": c.object_type,
                    "source_records": c.source_records,
                    "target_records": c.target_records,
                    "matching": c.matching,
                    "missing": c.missing,
                    "differing": c.differing,
                    "extra": c.extra,
                    "only_in_target": c.only_in_target,
                    "listed_missing": [m.__dict__ for m in c.listed_missing],
                    "listed_differing": [
                        {**d.__dict__, "fields": {k: list(v) for k, v in d.fields.items()}}
                        for d in c.listed_differing
                    ],
                    "listed_extra": [e.__dict__ for e in c.listed_extra],
                }
                for c in self.objects
            ],
            "errors": self.errors,
            "exit_code": self.exit_code,
        }


@dataclass
class _Side:
    """One system's records of one object type: canonical id → (remote id, values)."""

    linked: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    unlinked: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)  # remote id -> why
    read: int = 0


def verify_migration(
    db: Engine, migration: Migration, *, progress: Progress | None = None
) -> Verification:
    """Compare what the source holds with what the target holds, record by record."""
    source, target = migration.runtimes()
    result = Verification(migration.name, source.name, target.name, [])
    try:
        for object_type in migration.objects:
            if not all(
                object_type in runtime.fieldmap.object_types
                and object_type in runtime.connector.capabilities.object_types
                for runtime in (source, target)
            ):
                continue
            result.objects.append(
                _check_object(db, migration, object_type, source, target, progress)
            )
    except ConnectorError as exc:
        if exc.action is Action.REJECT_RECORD:
            raise
        result.errors.append(str(exc))
        result.error_exit_code = exc.exit_code
    finally:
        for runtime in (source, target):
            runtime.connector.close()
    return result


def _check_object(
    db: Engine,
    migration: Migration,
    object_type: str,
    source: SystemRuntime,
    target: SystemRuntime,
    progress: Progress | None,
) -> ObjectCheck:
    check = ObjectCheck(object_type)
    theirs = _read_side(db, migration, object_type, source, progress)
    ours = _read_side(db, migration, object_type, target, progress)
    check.source_records, check.target_records = theirs.read, ours.read
    check.only_in_target = len(ours.unlinked)
    with db.connect() as conn:
        source_waits = store.open_failure_reasons(conn, migration.name, object_type, source.name)
        target_waits = store.open_failure_reasons(conn, migration.name, object_type, target.name)
        links = store.links_by_canonical(conn, migration.name, object_type, list(theirs.linked))
    compared = sorted(source.fieldmap.canonical_fields(object_type))
    writable = target.fieldmap.writable_fields(object_type)
    limits = target.fieldmap.limits(object_type)

    def missing(source_id: str, target_id: str | None, reason: str) -> None:
        check.missing += 1
        if len(check.listed_missing) < LISTED:
            check.listed_missing.append(Missing(object_type, source_id, target_id, reason))

    for source_id in theirs.unlinked:
        missing(
            source_id,
            None,
            source_waits.get(source_id, f"never reached {target.name}: run crmhub migrate run"),
        )
    for source_id, reason in theirs.unreadable.items():
        missing(source_id, None, source_waits.get(source_id, reason))
    for canonical_id, (source_id, values) in theirs.linked.items():
        target_link = links.get(canonical_id, {}).get(target.name)
        if target_link is None:
            missing(
                source_id,
                None,
                target_waits.get(canonical_id, f"not in {target.name}: run crmhub migrate run"),
            )
            continue
        held = ours.linked.get(canonical_id)
        if held is None:
            unreadable = ours.unreadable.get(target_link.remote_id)
            missing(
                source_id,
                target_link.remote_id,
                f"{target.name} holds {target_link.remote_id} but it cannot be read: {unreadable}"
                if unreadable
                else f"{target.name} no longer lists {target_link.remote_id}",
            )
            continue
        target_id, target_values = held
        differences: dict[str, tuple[Any, Any]] = {}
        for name in compared:
            if name not in writable:
                continue
            expected = values.get(name)
            if _blank(expected):
                continue
            if isinstance(expected, list) and name in limits:
                expected = expected[: limits[name]]
            actual = target_values.get(name)
            if expected != actual:
                differences[name] = (expected, actual)
        if differences:
            check.differing += 1
            if len(check.listed_differing) < LISTED:
                check.listed_differing.append(
                    Differing(object_type, source_id, target_id, canonical_id, differences)
                )
        else:
            check.matching += 1
    for canonical_id, (target_id, _) in ours.linked.items():
        if canonical_id in theirs.linked:
            continue
        source_link = _source_link(db, migration, object_type, canonical_id, source.name)
        if source_link is None:
            check.only_in_target += 1
            continue
        check.extra += 1
        if len(check.listed_extra) < LISTED:
            check.listed_extra.append(
                Extra(
                    object_type,
                    target_id,
                    source_link,
                    f"{source.name} no longer lists {source_link}, which it was moved from",
                )
            )
    return check


def _source_link(
    db: Engine, migration: Migration, object_type: str, canonical_id: str, system: str
) -> str | None:
    with db.connect() as conn:
        linked = store.links_by_canonical(conn, migration.name, object_type, [canonical_id])
    link = linked.get(canonical_id, {}).get(system)
    return link.remote_id if link is not None else None


def _read_side(
    db: Engine,
    migration: Migration,
    object_type: str,
    runtime: SystemRuntime,
    progress: Progress | None,
) -> _Side:
    side = _Side()
    fieldmap = runtime.fieldmap
    references = fieldmap.reference_fields(object_type)
    unused = {
        fieldmap.vendor_field(object_type, name)
        for name, target in references.items()
        if target not in migration.objects
    }
    fields = [name for name in fieldmap.vendor_fields(object_type) if name not in unused]
    for page in _pages(runtime, object_type, fields):
        side.read += len(page)
        mapped: list[tuple[RemoteRecord, dict[str, Any]]] = []
        for record in page:
            try:
                values = fieldmap.to_canonical(
                    object_type, record.fields, default_region=runtime.phone_region
                )
            except MappingError as exc:
                side.unreadable[record.id] = str(exc)
                continue
            mapped.append((record, values))
        with db.connect() as conn:
            links = store.links_by_remote(
                conn, migration.name, object_type, runtime.name, [r.id for r, _ in mapped]
            )
            _references_to_canonical(
                conn, migration.name, runtime.name, references, [v for _, v in mapped]
            )
        for record, values in mapped:
            link = links.get(record.id)
            if link is None or link.detached:
                side.unlinked.append(record.id)
            else:
                side.linked[link.canonical_id] = (record.id, values)
        if progress is not None:
            progress(f"{object_type}:verify", runtime.name, side.read, None)
    return side


def _pages(
    runtime: SystemRuntime, object_type: str, fields: Sequence[str]
) -> Iterator[Sequence[RemoteRecord]]:
    token: str | None = None
    while True:
        page = runtime.connector.read_changes(object_type, None, token, fields)
        yield page.records
        token = page.next_token
        if not token:
            return


def _references_to_canonical(
    conn: Any,
    sync: str,
    system: str,
    references: Mapping[str, str],
    batch: list[dict[str, Any]],
) -> None:
    """Vendor ids in reference fields as canonical ids; an id the migration never linked
    stays as ``system:id``, so it compares unequal to anything but itself."""
    for ref_field, target in references.items():
        ids = sorted({item for values in batch for item in _as_list(values.get(ref_field))})
        if not ids:
            continue
        known = store.links_by_remote(conn, sync, target, system, ids)
        for values in batch:
            value = values.get(ref_field)
            if value is None:
                continue
            if isinstance(value, list):
                values[ref_field] = sorted(
                    known[v].canonical_id if v in known else f"{system}:{v}" for v in value
                )
            else:
                values[ref_field] = (
                    known[value].canonical_id if value in known else f"{system}:{value}"
                )


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == []
