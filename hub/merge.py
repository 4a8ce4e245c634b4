"""Three-way, field-by-field merge of one canonical record, and the conflict policies.

Public entry points: :func:`merge_record`, :class:`Version`, :class:`Policy`,
:class:`MergeResult`, :class:`FieldConflict`, :class:`Contender`, :func:`is_blank`.

The base is the record's last agreed values. A field changed on one side is taken; the same new
value on several sides is taken; different new values are a conflict settled by the policy. A
side linked for the first time (``fresh``) has no relation to the base: its blanks never
overwrite a value, and a value that differs from what the other systems hold competes with it
under the policy. Everything here is pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Version:
    """One system's current view of a record, in canonical terms (references as canonical ids)."""

    system: str
    remote_id: str
    values: Mapping[str, Any]
    hash: str
    modified_at: datetime
    fresh: bool = False


@dataclass(frozen=True, slots=True)
class Contender:
    """A value one system holds for a field in a conflict."""

    system: str
    value: Any
    modified_at: datetime | None


@dataclass(frozen=True, slots=True)
class FieldConflict:
    """Different new values for one field; ``winner`` is None while a person must decide."""

    field: str
    base: Any
    contenders: tuple[Contender, ...]
    winner: str | None
    value: Any
    policy: str


@dataclass(slots=True)
class MergeResult:
    values: dict[str, Any]
    conflicts: list[FieldConflict] = field(default_factory=list)
    # Where each field's new value came from ("sales", "sales+support", "a person"), for the
    # audit log's "why"; fields left at their base have no entry.
    sources: dict[str, str] = field(default_factory=dict)
    # Fields an earlier run left waiting for a person, and still waiting.
    waiting: frozenset[str] = frozenset()

    @property
    def open_fields(self) -> frozenset[str]:
        """Fields waiting for a person: every system keeps its own value until then."""
        return self.waiting | {c.field for c in self.conflicts if c.winner is None}


@dataclass(frozen=True, slots=True)
class Policy:
    """How a sync settles conflicts: owners first, then the prefer list, then the fallback."""

    kind: Literal["newest", "prefer", "manual"]
    system_order: tuple[str, ...]
    prefer: tuple[str, ...] = ()
    owners: Mapping[str, str] = field(default_factory=dict)
    fallback: Literal["newest", "manual"] = "newest"

    def settle(
        self, object_type: str, name: str, contenders: Sequence[Contender]
    ) -> tuple[str | None, str]:
        """The winning system (None: leave it to a person) and the rule that decided."""
        systems = {c.system for c in contenders}
        owner = self.owners.get(f"{object_type}.{name}")
        if owner is not None and owner in systems:
            return owner, f"owner {owner}"
        if self.kind == "manual":
            return None, "manual"
        for system in self.prefer:
            if system in systems:
                return system, f"prefer {system}"
        if self.kind == "prefer" and self.fallback == "manual":
            return None, "manual"
        order = {system: index for index, system in enumerate(self.system_order)}
        newest = max(
            contenders,
            key=lambda c: (c.modified_at or _EPOCH, -order.get(c.system, len(order))),
        )
        return newest.system, "newest"


def is_blank(value: Any) -> bool:
    """None, an empty text or an empty list: no value, which never overwrites one."""
    return value is None or value == "" or value == []


def merge_record(
    object_type: str,
    base: Mapping[str, Any] | None,
    versions: Sequence[Version],
    coverage: Mapping[str, frozenset[str]],
    linked: Mapping[str, datetime | None],
    policy: Policy,
    resolutions: Mapping[str, Any] | None = None,
    waiting: Collection[str] = (),
) -> MergeResult:
    """Merge every system's version against the base.

    ``coverage`` names the canonical fields each system's field map carries (a field a system
    does not map is neither blank nor changed there). ``linked`` gives, for each system already
    linked before this run, the modified time of its last seen version: when a fresh system
    brings a value that differs from the base, the base competes for the linked systems.
    ``resolutions`` are values a person chose for conflicts; they win. ``waiting`` names fields
    whose conflict an earlier run left to a person: they keep their base value, and every system
    its own, whatever changed since, until the person decides.
    """
    held = frozenset(waiting) - set(resolutions or ())
    if not resolutions and len(versions) == 1:
        only = versions[0]
        if base is None:
            # A record new to the hub, seen in one system: nothing to merge with.
            return MergeResult(values=_without_blanks(only.values))
        if not only.fresh:
            result = _one_changed_side(base, only, coverage.get(only.system, frozenset()) - held)
            result.waiting = held
            return result
    has_base = base is not None
    base_values: Mapping[str, Any] = base or {}
    names: set[str] = set(base_values) | set(resolutions or ())
    for version in versions:
        names.update(coverage.get(version.system, ()))
    result = MergeResult(values={}, waiting=held)
    for name in sorted(names):
        base_value = base_values.get(name)
        if resolutions and name in resolutions:
            value = resolutions[name]
            result.sources[name] = "a person (conflict resolved)"
        elif name in held:
            value = base_value
        else:
            value = _merge_field(
                object_type, name, base_value, has_base, versions, coverage, linked, policy, result
            )
        if not is_blank(value):
            result.values[name] = value
    return result


def _without_blanks(values: Mapping[str, Any]) -> dict[str, Any]:
    found = values.values()
    # C-speed scans first: a mapped record holds no blanks, so it is copied as it is.
    if None not in found and "" not in found and [] not in found:
        return dict(values)
    return {k: v for k, v in values.items() if not is_blank(v)}


def _one_changed_side(
    base: Mapping[str, Any], version: Version, covered: frozenset[str]
) -> MergeResult:
    """One linked system changed: every field it maps takes its value (the common case)."""
    result = MergeResult(values=dict(base))
    for name in covered:
        value = version.values.get(name)
        if value == base.get(name):
            continue
        result.sources[name] = version.system
        if is_blank(value):
            result.values.pop(name, None)
        else:
            result.values[name] = value
    return result


def _merge_field(
    object_type: str,
    name: str,
    base_value: Any,
    has_base: bool,
    versions: Sequence[Version],
    coverage: Mapping[str, frozenset[str]],
    linked: Mapping[str, datetime | None],
    policy: Policy,
    result: MergeResult,
) -> Any:
    contenders: list[Contender] = []
    fresh_values = False
    for version in versions:
        if name not in coverage.get(version.system, ()):
            continue
        value = version.values.get(name)
        if not has_base or version.fresh:
            # No history with this side: a blank is "unknown", never a deletion.
            if is_blank(value) or (has_base and value == base_value):
                continue
            fresh_values = fresh_values or has_base
        elif value == base_value:
            continue
        contenders.append(Contender(version.system, value, version.modified_at))
    if not contenders:
        return base_value
    if fresh_values and not is_blank(base_value):
        changed = {c.system for c in contenders if c.system in linked}
        if not changed:
            holder = _holder(name, coverage, linked, policy.system_order)
            if holder is not None:
                contenders.append(Contender(holder, base_value, linked[holder]))
    distinct = {_freeze(c.value) for c in contenders}
    if len(distinct) == 1:
        result.sources[name] = "+".join(c.system for c in contenders)
        return contenders[0].value
    winner, rule = policy.settle(object_type, name, contenders)
    if winner is None:
        result.conflicts.append(
            FieldConflict(name, base_value, tuple(contenders), None, base_value, rule)
        )
        return base_value
    value = next(c.value for c in contenders if c.system == winner)
    result.sources[name] = f"{winner} ({rule})"
    result.conflicts.append(FieldConflict(name, base_value, tuple(contenders), winner, value, rule))
    return value


def _holder(
    name: str,
    coverage: Mapping[str, frozenset[str]],
    linked: Mapping[str, datetime | None],
    order: Sequence[str],
) -> str | None:
    for system in order:
        if system in linked and name in coverage.get(system, ()):
            return system
    return None


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
