"""What each system should hold after a run, and the writes that get it there.

Public entry points: :class:`WritePlanner`, :class:`Plan`, :class:`Write`, :class:`Unwritable`,
:data:`RemoteRefs`.

The engine decides a record's values (:mod:`hub.merge`); the planner projects them onto each
system — only the fields its map carries, references it can resolve, fields it cannot write and
conflicts waiting for a person left as they are — and compares that view with what the system
holds, to send only what differs. Pure: no database, no vendor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from hub import store
from hub.merge import FieldConflict, Version
from mappings.errors import MappingError
from mappings.fieldmap import FieldMap
from mappings.schema import REFERENCE_FIELDS, content_hash

# target object type -> canonical id -> system -> that system's remote id
RemoteRefs = Mapping[str, Mapping[str, Mapping[str, str]]]


@dataclass
class Write:
    """One planned vendor write of one record to one system."""

    canonical_id: str
    system: str
    kind: Literal["create", "update", "delete"]
    payload: dict[str, Any]
    view: dict[str, Any]
    view_hash: str
    changes: dict[str, list[Any]]
    remote_id: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class Unwritable:
    """A record a system's field map cannot write (a canonical value it has no vendor value
    for): no write is planned, and the engine dead-letters it instead of failing the page."""

    canonical_id: str
    system: str
    remote_id: str | None
    error: MappingError


@dataclass
class Plan:
    """The outcome of reconciling one canonical record, before anything is written."""

    canonical_id: str
    base: store.BaseRecord | None
    values: dict[str, Any]
    versions: dict[str, Version]
    links: dict[str, store.Link]
    new_links: dict[str, Version]
    conflicts: list[FieldConflict]
    sources: dict[str, str] = field(default_factory=dict)
    # Fields waiting for a person (this run's conflicts and earlier ones): left as they are.
    waiting: frozenset[str] = frozenset()
    # For an earlier run's conflicts: what each system held then (system -> field -> value),
    # which is what it still holds if it was not read this run.
    held_values: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: dict[str, str] = field(default_factory=dict)  # system -> why it was linked
    deleted_in: list[str] = field(default_factory=list)
    deleted: bool = False


class WritePlanner:
    """Views and writes for one object type across the systems of a sync."""

    def __init__(self, object_type: str, fieldmaps: Mapping[str, FieldMap]) -> None:
        self.object_type = object_type
        self.fieldmaps = dict(fieldmaps)
        self.coverage = {
            name: fieldmap.canonical_fields(object_type) for name, fieldmap in fieldmaps.items()
        }
        self.writable = {
            name: fieldmap.writable_fields(object_type) for name, fieldmap in fieldmaps.items()
        }
        self.references = REFERENCE_FIELDS.get(object_type, {})
        self.limits = {name: fieldmap.limits(object_type) for name, fieldmap in fieldmaps.items()}
        # Per system, the fields it carries but cannot be written: the same for every record.
        self._read_only = {
            name: self.coverage[name] - self.writable[name] for name in self.fieldmaps
        }

    def widened(
        self, system: str, values: Mapping[str, Any], fuller: Sequence[Mapping[str, Any]]
    ) -> Any:
        """``values`` as read from ``system``, with each capped list that holds exactly the
        first ids of a fuller list (the base, or at first link another system's value) read as
        that fuller list: a vendor that holds one contact per deal has not removed the others.
        Returns ``values`` itself when nothing is widened."""
        limits = self.limits.get(system)
        if not limits:
            return values
        widened: dict[str, Any] | None = None
        for name, limit in limits.items():
            held = values.get(name)
            for other in fuller:
                whole = other.get(name)
                if isinstance(whole, list) and len(whole) > limit and held == whole[:limit]:
                    widened = widened if widened is not None else dict(values)
                    widened[name] = whole
                    break
        return widened if widened is not None else values

    def writes(
        self, plans: Iterable[Plan], targets: Sequence[str], remote_refs: RemoteRefs
    ) -> tuple[list[Write], list[Unwritable]]:
        """Every write that brings the ``targets`` (systems that write, and are up) in line,
        and the records a target's field map cannot write, each on its own."""
        writes: list[Write] = []
        unwritable: list[Unwritable] = []
        for plan in plans:
            for system in targets:
                try:
                    write = self.write_for(plan, system, remote_refs)
                except MappingError as exc:
                    link = plan.links.get(system)
                    remote_id = link.remote_id if link is not None else None
                    unwritable.append(Unwritable(plan.canonical_id, system, remote_id, exc))
                    continue
                if write is not None:
                    writes.append(write)
        return writes, unwritable

    def write_for(self, plan: Plan, system: str, remote_refs: RemoteRefs) -> Write | None:
        """The write ``system`` needs for this record, or None when it already agrees."""
        link = plan.links.get(system)
        version = plan.versions.get(system)
        if (link is not None and link.detached) or system in plan.deleted_in:
            return None
        if plan.deleted:
            if link is None:
                return None
            return Write(
                plan.canonical_id,
                system,
                "delete",
                {},
                {},
                "",
                {},
                remote_id=link.remote_id,
                reason="deleted in another system",
            )
        view = self.view(plan, system, remote_refs)
        current: Mapping[str, Any] | None
        if version is not None:
            current, current_hash, remote_id = version.values, version.hash, version.remote_id
        elif link is not None:
            current_hash, remote_id = link.remote_hash, link.remote_id
            believed = self.view_of_values(self._last_seen(plan, system), system, remote_refs)
            current = believed if content_hash(believed) == link.remote_hash else None
        else:
            if not view:
                return None
            payload = self.to_vendor(system, view, None, remote_refs)
            changes = {name: [None, value] for name, value in sorted(view.items())}
            return Write(
                plan.canonical_id,
                system,
                "create",
                payload,
                view,
                _hash_of(view, plan.versions.values()),
                changes,
                reason=self.origin(plan, ()),
            )
        if version is not None and view == version.values:
            return None  # the common case, decided without hashing
        view_hash = content_hash(view)
        if view_hash == current_hash:
            return None
        writable = self.writable[system]
        if current is None:
            fields = sorted(writable)
            changes = {name: [None, view.get(name)] for name in fields if name in view}
        else:
            fields = sorted(name for name in writable if view.get(name) != current.get(name))
            changes = {name: [current.get(name), view.get(name)] for name in fields}
        if not fields:
            return None
        payload = self.to_vendor(system, view, fields, remote_refs)
        return Write(
            plan.canonical_id,
            system,
            "update",
            payload,
            view,
            view_hash,
            changes,
            remote_id=remote_id,
            reason=self.origin(plan, fields),
        )

    def view(
        self,
        plan: Plan,
        system: str,
        remote_refs: RemoteRefs,
    ) -> dict[str, Any]:
        """What ``system`` should hold after this run, in canonical terms."""
        view = self.view_of_values(plan.values, system, remote_refs)
        own = plan.versions.get(system)
        own_values: Mapping[str, Any] = (
            own.values if own is not None else self._last_seen(plan, system)
        )
        # Fields we cannot write there, and fields waiting for a person, stay as they are.
        held = self._read_only[system]
        if plan.waiting:
            held = held | (plan.waiting & self.coverage[system])
        for name in held:
            if own_values.get(name) is None:
                view.pop(name, None)
            else:
                view[name] = own_values[name]
        return view

    @staticmethod
    def _last_seen(plan: Plan, system: str) -> Mapping[str, Any]:
        """What a system not read this run holds: the base, but for fields waiting for a
        person, the value it held when the wait began."""
        base = plan.base.values if plan.base else {}
        held = plan.held_values.get(system)
        return {**base, **held} if held else base

    def view_of_values(
        self,
        values: Mapping[str, Any],
        system: str,
        remote_refs: RemoteRefs,
    ) -> dict[str, Any]:
        covered = self.coverage[system]
        view = {name: value for name, value in values.items() if name in covered}
        for name, limit in self.limits[system].items():
            value = view.get(name)
            if isinstance(value, list) and len(value) > limit:
                view[name] = value[:limit]
        for ref_field, target in self.references.items():
            value = view.get(ref_field)
            if value is None:
                continue
            reachable = remote_refs.get(target, {})
            if isinstance(value, list):
                kept = [cid for cid in value if system in reachable.get(cid, {})]
                if kept:
                    view[ref_field] = kept
                else:
                    view.pop(ref_field)
            elif system not in reachable.get(value, {}):
                view.pop(ref_field)
        return view

    def to_vendor(
        self,
        system: str,
        view: Mapping[str, Any],
        fields: Sequence[str] | None,
        remote_refs: RemoteRefs,
    ) -> dict[str, Any]:
        translated: Mapping[str, Any] = view
        copied: dict[str, Any] | None = None
        for ref_field, target in self.references.items():
            value = view.get(ref_field)
            if value is None:
                continue
            if copied is None:
                # Copied only when it holds a reference to translate: most views hold none.
                translated = copied = dict(view)
            ids = remote_refs.get(target, {})
            if isinstance(value, list):
                copied[ref_field] = [ids[cid][system] for cid in value]
            else:
                copied[ref_field] = ids[value][system]
        payload = self.fieldmaps[system].to_vendor(self.object_type, translated, fields)
        if fields is None:
            payload = {k: v for k, v in payload.items() if v is not None}
        return payload

    def origin(self, plan: Plan, fields: Iterable[str]) -> str:
        """Why these fields are written: where each new value came from."""
        parts = [f"{name} from {plan.sources[name]}" for name in fields if name in plan.sources]
        if parts:
            return "; ".join(parts)
        if plan.base is None:
            return "new record from " + "+".join(sorted(plan.versions)) if plan.versions else ""
        return "brought up to date with the hub's record"


def _hash_of(view: Mapping[str, Any], versions: Iterable[Version]) -> str:
    """The view's content hash; a record created from one system's version as it was read
    (same fields, same values) has that version's hash already."""
    for version in versions:
        if version.values == view:
            return version.hash
    return content_hash(view)
