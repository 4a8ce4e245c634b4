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
from hub.merge import is_blank
from hub.migration import Migration
from mappings.errors import MappingError
from mappings.schema import content_hash

__all__ = ["Differing", "Extra", "Missing", "ObjectCheck", "Verification", "verify_migration"]

Progress = Callable[[str, str, int, int | None], None]
# Findings kept one by one per object type and kind; beyond, they are counted.
LISTED = 500
# Canonical ids whose links are looked up in one go: memory for the answer stays small.
LINKS_AT_ONCE = 5_000


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
                _ObjectCheck(db, migration, object_type, source, target, progress).run()
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


class _ObjectCheck:
    """One object type: the source read and held compactly (the hash of what the target
    should hold of each moved record), then the target streamed past it page by page; only
    the records that differ are read again to name their fields. Memory holds a few hundred
    bytes per source record, never both accounts."""

    def __init__(
        self,
        db: Engine,
        migration: Migration,
        object_type: str,
        source: SystemRuntime,
        target: SystemRuntime,
        progress: Progress | None,
    ) -> None:
        self.db = db
        self.sync = migration.name
        self.migration = migration
        self.object_type = object_type
        self.source = source
        self.target = target
        self.progress = progress
        self.check = ObjectCheck(object_type)
        writable = target.fieldmap.writable_fields(object_type)
        self.compared = sorted(source.fieldmap.canonical_fields(object_type) & writable)
        self.limits = target.fieldmap.limits(object_type)
        # canonical id -> (source id, the fields expected, their hash) of every moved source
        # record: a few hundred bytes each, whatever the record holds.
        self.expected: dict[str, tuple[str, tuple[str, ...], str]] = {}
        self._field_sets: dict[tuple[str, ...], tuple[str, ...]] = {}
        # Records whose hashes differ: (canonical id, target id, the target's values), the
        # first LISTED kept for the field-by-field report once the source is read again.
        self.suspects: list[tuple[str, str, dict[str, Any]]] = []
        # canonical id -> the target record the migration linked it to.
        self.target_ids: dict[str, str] = {}
        self.unreadable_in_target: dict[str, str] = {}
        self.source_waits: dict[str, str] = {}
        self.target_waits: dict[str, str] = {}

    def run(self) -> ObjectCheck:
        with self.db.connect() as conn:
            self.source_waits = store.open_failure_reasons(
                conn, self.sync, self.object_type, self.source.name
            )
            self.target_waits = store.open_failure_reasons(
                conn, self.sync, self.object_type, self.target.name
            )
        self._hold_the_source()
        seen = self._stream_the_target()
        self._spell_out_differences()
        for canonical_id in sorted(self.expected.keys() - seen):
            source_id, _, _ = self.expected[canonical_id]
            target_id = self.target_ids[canonical_id]
            unreadable = self.unreadable_in_target.get(target_id)
            self._missing(
                source_id,
                target_id,
                f"{self.target.name} holds {target_id} but it cannot be read: {unreadable}"
                if unreadable
                else f"{self.target.name} no longer lists {target_id}",
            )
        return self.check

    def _hold_the_source(self) -> None:
        check, target = self.check, self.target.name
        for page in _mapped_pages(self.db, self.migration, self.object_type, self.source):
            check.source_records += len(page)
            self._progress(self.source.name, check.source_records)
            for source_id, values, link in page:
                if isinstance(values, str):
                    self._missing(source_id, None, self.source_waits.get(source_id, values))
                elif link is None:
                    never = f"never reached {target}: run crmhub migrate run"
                    self._missing(source_id, None, self.source_waits.get(source_id, never))
                else:
                    expected = self._expectations(values)
                    names = tuple(expected)
                    names = self._field_sets.setdefault(names, names)
                    self.expected[link.canonical_id] = (source_id, names, content_hash(expected))
        ids = list(self.expected)
        for start in range(0, len(ids), LINKS_AT_ONCE):
            chunk = ids[start : start + LINKS_AT_ONCE]
            with self.db.connect() as conn:
                links = store.links_by_canonical(conn, self.sync, self.object_type, chunk)
            for canonical_id in chunk:
                link = links.get(canonical_id, {}).get(target)
                if link is None or link.detached:
                    source_id, _, _ = self.expected.pop(canonical_id)
                    not_there = f"not in {target}: run crmhub migrate run"
                    self._missing(source_id, None, self.target_waits.get(canonical_id, not_there))
                else:
                    self.target_ids[canonical_id] = link.remote_id

    def _expectations(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """What the target should hold of a source record: the fields its map writes, blanks
        left out (a migration never erases), capped lists cut to what the target keeps."""
        expected: dict[str, Any] = {}
        for name in self.compared:
            value = values.get(name)
            if is_blank(value):
                continue
            if isinstance(value, list) and name in self.limits:
                value = value[: self.limits[name]]
            expected[name] = value
        return expected

    def _stream_the_target(self) -> set[str]:
        check = self.check
        seen: set[str] = set()
        for page in _mapped_pages(self.db, self.migration, self.object_type, self.target):
            check.target_records += len(page)
            self._progress(self.target.name, check.target_records)
            strangers: dict[str, str] = {}
            for target_id, values, link in page:
                if isinstance(values, str):
                    self.unreadable_in_target[target_id] = values
                elif link is None:
                    check.only_in_target += 1
                elif link.canonical_id in self.expected:
                    seen.add(link.canonical_id)
                    self._compare(link.canonical_id, target_id, values)
                else:
                    strangers[link.canonical_id] = target_id
            self._extras(strangers)
        return seen

    def _compare(self, canonical_id: str, target_id: str, values: Mapping[str, Any]) -> None:
        _, names, digest = self.expected[canonical_id]
        held = {name: values.get(name) for name in names}
        if content_hash(held) == digest:
            self.check.matching += 1
            return
        self.check.differing += 1
        if len(self.suspects) < LISTED:
            self.suspects.append((canonical_id, target_id, held))

    def _spell_out_differences(self) -> None:
        """Read the differing records' source versions again, by id, and name each field
        that differs with both values."""
        if not self.suspects:
            return
        wanted = {self.expected[cid][0]: cid for cid, _, _ in self.suspects}
        fresh: dict[str, dict[str, Any]] = {}
        fields = _fields_to_read(self.migration, self.object_type, self.source)
        ids = sorted(wanted)
        connector, fieldmap = self.source.connector, self.source.fieldmap
        size = max(1, connector.capabilities.max_batch)
        for start in range(0, len(ids), size):
            records = connector.read(self.object_type, ids[start : start + size], fields)
            mapped = []
            for record in records:
                try:
                    values = fieldmap.to_canonical(
                        self.object_type, record.fields, default_region=self.source.phone_region
                    )
                except MappingError:
                    continue
                mapped.append((record.id, values))
            with self.db.connect() as conn:
                _references_to_canonical(
                    conn,
                    self.sync,
                    self.source.name,
                    fieldmap.reference_fields(self.object_type),
                    [values for _, values in mapped],
                )
            fresh.update((wanted[source_id], values) for source_id, values in mapped)
        for canonical_id, target_id, held in self.suspects:
            source_id, _, _ = self.expected[canonical_id]
            expected = self._expectations(fresh.get(canonical_id, {}))
            differences = {
                name: (value, held.get(name))
                for name, value in expected.items()
                if held.get(name) != value
            }
            if not differences:
                # The source changed while we read, to what the target holds.
                self.check.differing -= 1
                self.check.matching += 1
                continue
            self.check.listed_differing.append(
                Differing(self.object_type, source_id, target_id, canonical_id, differences)
            )

    def _extras(self, strangers: Mapping[str, str]) -> None:
        """Target records linked by the migration but to no record the source lists: moved
        from a source record since gone, or there before and matched by nothing."""
        if not strangers:
            return
        with self.db.connect() as conn:
            links = store.links_by_canonical(conn, self.sync, self.object_type, list(strangers))
        check = self.check
        for canonical_id, target_id in strangers.items():
            source_link = links.get(canonical_id, {}).get(self.source.name)
            if source_link is None:
                check.only_in_target += 1
                continue
            check.extra += 1
            if len(check.listed_extra) < LISTED:
                check.listed_extra.append(
                    Extra(
                        self.object_type,
                        target_id,
                        source_link.remote_id,
                        f"{self.source.name} no longer lists {source_link.remote_id}, "
                        "which it was moved from",
                    )
                )

    def _missing(self, source_id: str, target_id: str | None, reason: str) -> None:
        check = self.check
        check.missing += 1
        if len(check.listed_missing) < LISTED:
            check.listed_missing.append(Missing(self.object_type, source_id, target_id, reason))

    def _progress(self, system: str, done: int) -> None:
        if self.progress is not None:
            self.progress(f"{self.object_type}:verify", system, done, None)


def _mapped_pages(
    db: Engine, migration: Migration, object_type: str, runtime: SystemRuntime
) -> Iterator[list[tuple[str, dict[str, Any] | str, store.Link | None]]]:
    """Every record of one system, a page at a time: (remote id, canonical values or why they
    cannot be read, the migration's link), references as canonical ids."""
    fieldmap = runtime.fieldmap
    references = fieldmap.reference_fields(object_type)
    fields = _fields_to_read(migration, object_type, runtime)
    for records in _pages(runtime, object_type, fields):
        mapped: list[tuple[str, dict[str, Any] | str]] = []
        for record in records:
            try:
                values: dict[str, Any] | str = fieldmap.to_canonical(
                    object_type, record.fields, default_region=runtime.phone_region
                )
            except MappingError as exc:
                values = str(exc)
            mapped.append((record.id, values))
        readable = [values for _, values in mapped if isinstance(values, dict)]
        with db.connect() as conn:
            links = store.links_by_remote(
                conn, migration.name, object_type, runtime.name, [rid for rid, _ in mapped]
            )
            _references_to_canonical(conn, migration.name, runtime.name, references, readable)
        page: list[tuple[str, dict[str, Any] | str, store.Link | None]] = []
        for remote_id, values in mapped:
            link = links.get(remote_id)
            page.append((remote_id, values, None if link is None or link.detached else link))
        yield page


def _fields_to_read(migration: Migration, object_type: str, runtime: SystemRuntime) -> list[str]:
    """The vendor fields of the map, less references to object types the migration leaves
    out (as the engine reads them)."""
    fieldmap = runtime.fieldmap
    unused = {
        fieldmap.vendor_field(object_type, name)
        for name, target in fieldmap.reference_fields(object_type).items()
        if target not in migration.objects
    }
    return [name for name in fieldmap.vendor_fields(object_type) if name not in unused]


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
