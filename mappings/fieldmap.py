"""The declarative field-map engine: vendor records to flat canonical records and back.

Public entry points: :class:`FieldMap` (``from_dict``, ``load``, ``extend``, ``with_fields``,
``to_canonical``, ``to_vendor`` and the introspection methods), :class:`FieldSpec`,
:func:`load_default_map` and :func:`default_map_vendors`.

A field map is one YAML document per vendor (``mappings/maps/<vendor>.yaml``)::

    vendor: memory
    objects:
      contacts:
        fields:
          first_name: firstname                      # canonical field: vendor field
          company: {field: company_id, ref: companies}
          address.city: address.city                 # dotted vendor path = nested dicts
      deals:
        fields:
          amount: {field: amount, transform: decimal}
          stage:
            field: dealstage
            values: {closedwon: closed_won, appointmentscheduled: qualification}
            prefer: {qualification: appointmentscheduled}
            unknown: error                           # error | keep | blank
          description: {field: notes, direction: read}  # read | write | both

Field keys: ``field`` (required), ``transform`` (a name in :data:`mappings.transforms.TRANSFORMS`,
default ``string``, or ``list`` for a multi-reference), ``direction``, ``ref`` and ``many`` (a
reference field's target type and plurality; inferred from the schema when left out, checked
when given), ``values`` (vendor value → canonical value, matched case-insensitively; a canonical
``null`` reads as blank), ``limit`` (a list of references whose vendor field holds at most
that many ids: the first ones are written, and reading back that prefix is no change),
``prefer`` (canonical value → the vendor value written back; default
the first vendor value listed for it) and ``unknown`` (what a vendor value missing from
``values`` becomes on read: ``error``, ``keep`` it as is, or ``blank``; on write, a canonical
value with no vendor value is written as is under ``keep`` and is an error otherwise). Such an
error's ``map_key`` (``deals.fields.stage.values``) is where the value is mapped, inside a
system's ``map:``; the default maps leave stages at ``error``, so a stage is never guessed at.

Everything is checked when the map is built, and every problem is a one-line
:class:`~mappings.errors.FieldMapError` naming the source and key path. The map is compiled into
small per-field specs at that point, so mapping a record only walks a precomputed list.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final, TypeVar

import yaml

from mappings.errors import FieldMapError, MappingError, NormalizeError, one_reason
from mappings.normalize import normalize_text
from mappings.schema import (
    MULTI_REFERENCE_FIELDS,
    OBJECT_TYPES,
    REFERENCE_FIELDS,
    canonical_fields,
    is_canonical_field,
    normalized_by,
    validate_flat,
)
from mappings.transforms import TRANSFORMS, Transform

__all__ = ["FieldMap", "FieldSpec", "default_map_vendors", "load_default_map"]

_FIELD_KEYS: Final = (
    "field",
    "transform",
    "direction",
    "ref",
    "many",
    "values",
    "prefer",
    "unknown",
    "limit",
)
_DIRECTIONS: Final = ("read", "write", "both")
_UNKNOWN_POLICIES: Final = ("error", "keep", "blank")
_TOP_KEYS: Final = ("vendor", "objects", "description")
_VENDOR_NAME = re.compile(r"[a-z][a-z0-9_]*")
_MAX_LISTED = 8

CanonicalScalar = str | int | float | bool
_T = TypeVar("_T")


# ---------------------------------------------------------------------------------------------
# compiled field specs


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One compiled field mapping: where a canonical field lives on the vendor and how."""

    object_type: str
    canonical: str
    vendor_field: str
    transform: Transform
    direction: str = "both"
    ref: str | None = None
    many: bool = False
    values: Mapping[str, CanonicalScalar | None] | None = None
    """Case-folded vendor value → canonical value (None reads as blank)."""
    prefer: Mapping[CanonicalScalar, str] | None = None
    """Canonical value → vendor value written back, for every canonical value in ``values``."""
    unknown: str = "error"
    limit: int | None = None
    """For a list of references: the most the vendor field holds (Zoho's one Contact_Name)."""
    listed: tuple[str, ...] = ()
    """The vendor values of ``values`` as spelled in the map, for messages."""
    vendor_path: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "vendor_path", tuple(self.vendor_field.split(".")))

    @property
    def values_key(self) -> str:
        """Where a person adds a value to this field's ``values:``, inside a system's ``map:``."""
        return f"{self.object_type}.fields.{self.canonical}.values"

    @property
    def readable(self) -> bool:
        return self.direction != "write"

    @property
    def writable(self) -> bool:
        return self.direction != "read"

    def read(self, raw: object) -> Any:
        """The canonical value of a vendor value (not yet normalized by the schema)."""
        value = self.transform.to_canonical(raw)
        if self.values is None or value is None:
            return value
        key = str(value).strip().casefold()
        try:
            return self.values[key]
        except KeyError:
            pass
        if self.unknown == "keep":
            return value
        if self.unknown == "blank":
            return None
        raise NormalizeError(
            raw,
            f"is not among the vendor values in the field map ({_some(self.listed)}); "
            "add it under values, or set unknown: keep",
            map_key=self.values_key,
        )

    def write(self, value: Any) -> Any:
        """The vendor value of a canonical value."""
        if self.prefer is not None:
            try:
                vendor_value: object = self.prefer[value]
            except (KeyError, TypeError):
                if self.unknown != "keep":
                    raise NormalizeError(
                        value,
                        "has no vendor value in the field map (canonical values it maps: "
                        f"{_some(sorted(map(str, self.prefer)))}); add one under values, "
                        "or set unknown: keep",
                        map_key=self.values_key,
                    ) from None
                vendor_value = value
            return self.transform.to_vendor(vendor_value)
        return self.transform.to_vendor(value)


def _some(items: Iterable[str]) -> str:
    listed = list(items)
    more = ", ..." if len(listed) > _MAX_LISTED else ""
    return ", ".join(listed[:_MAX_LISTED]) + more


@dataclass(frozen=True, slots=True)
class _FieldDef:
    """A field's raw definition, kept so ``extend`` can merge into it and errors can name it."""

    raw: Mapping[str, Any]
    source: str
    path: str
    generation: int = 0


_Defs = dict[str, dict[str, _FieldDef]]


def _problem(defn: _FieldDef, key: str, problem: str) -> FieldMapError:
    return FieldMapError(defn.source, f"{defn.path}.{key}" if key else defn.path, problem)


def _scalar_text(value: object) -> str | None:
    if isinstance(value, str | int | float | bool):
        return normalize_text(value)
    return None


def _compile(object_type: str, canonical: str, defn: _FieldDef) -> FieldSpec:
    raw = defn.raw
    for key in raw:
        if key not in _FIELD_KEYS:
            raise _problem(
                defn, str(key), f"unknown key (expected one of: {', '.join(_FIELD_KEYS)})"
            )
    if not is_canonical_field(object_type, canonical):
        raise _problem(defn, "", _unknown_field_problem(object_type, canonical))

    vendor_field = raw.get("field")
    if not isinstance(vendor_field, str) or not all(vendor_field.split(".")):
        raise _problem(defn, "field", f"must name a vendor field, not {vendor_field!r}")

    target = REFERENCE_FIELDS.get(object_type, {}).get(canonical)
    ref = raw.get("ref")
    if ref is not None:
        if target is None:
            raise _problem(defn, "ref", f"{canonical} is not a reference field of {object_type}")
        if ref != target:
            raise _problem(defn, "ref", f"{canonical} refers to {target}, not {ref!r}")
    multi = (object_type, canonical) in MULTI_REFERENCE_FIELDS
    many = raw.get("many", multi)
    if not isinstance(many, bool):
        raise _problem(defn, "many", f"must be true or false, not {many!r}")
    if many != multi:
        holds = "a list of references" if multi else "a single value"
        raise _problem(defn, "many", f"{object_type}.{canonical} holds {holds}")

    transform_name = raw.get("transform", "list" if many else "string")
    transform = TRANSFORMS.get(transform_name) if isinstance(transform_name, str) else None
    if transform is None:
        raise _problem(
            defn,
            "transform",
            f"unknown transform {transform_name!r} (known: {', '.join(sorted(TRANSFORMS))})",
        )
    if many and transform.name != "list":
        raise _problem(defn, "transform", "a list of references uses the list transform")

    direction = raw.get("direction", "both")
    if direction not in _DIRECTIONS:
        raise _problem(
            defn, "direction", f"must be one of {', '.join(_DIRECTIONS)}, not {direction!r}"
        )

    values, prefer, listed = _compile_values(defn, target is not None)
    unknown = raw.get("unknown", "error")
    if "unknown" in raw and values is None:
        raise _problem(defn, "unknown", "only applies to a field with values:")
    if unknown not in _UNKNOWN_POLICIES:
        raise _problem(
            defn, "unknown", f"must be one of {', '.join(_UNKNOWN_POLICIES)}, not {unknown!r}"
        )
    limit = raw.get("limit")
    if limit is not None and (not many or not isinstance(limit, int) or limit < 1):
        raise _problem(
            defn, "limit", f"applies to a list of references, as a positive count, not {limit!r}"
        )
    return FieldSpec(
        object_type=object_type,
        canonical=canonical,
        vendor_field=vendor_field,
        transform=transform,
        direction=direction,
        ref=target,
        many=many,
        values=values,
        prefer=prefer,
        unknown=unknown,
        limit=limit,
        listed=listed,
    )


def _unknown_field_problem(object_type: str, canonical: str) -> str:
    known = sorted(canonical_fields(object_type))
    close = difflib.get_close_matches(canonical, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return (
        f"{canonical!r} is not a canonical field of {object_type} (custom fields are named "
        f"custom.<name>){hint}"
    )


def _compile_values(
    defn: _FieldDef, is_reference: bool
) -> tuple[
    dict[str, CanonicalScalar | None] | None, dict[CanonicalScalar, str] | None, tuple[str, ...]
]:
    raw = defn.raw
    values_raw = raw.get("values")
    if values_raw is None:
        if raw.get("prefer") is not None:
            raise _problem(defn, "prefer", "only applies to a field with values:")
        return None, None, ()
    if is_reference:
        raise _problem(defn, "values", "a reference field holds ids and cannot have values:")
    if not isinstance(values_raw, Mapping) or not values_raw:
        raise _problem(defn, "values", "must map vendor values to canonical values")

    values: dict[str, CanonicalScalar | None] = {}
    listed: list[str] = []
    first_vendor: dict[CanonicalScalar, str] = {}
    for vendor_raw, canonical_raw in values_raw.items():
        vendor_value = _scalar_text(vendor_raw)
        if vendor_value is None:
            raise _problem(defn, f"values.{vendor_raw}", "a vendor value must be text or a number")
        if canonical_raw is not None and not isinstance(canonical_raw, str | int | float | bool):
            raise _problem(
                defn, f"values.{vendor_raw}", "the canonical value must be text, a number or null"
            )
        canonical = (
            normalize_text(canonical_raw) if isinstance(canonical_raw, str) else canonical_raw
        )
        key = vendor_value.casefold()
        if key in values and values[key] != canonical:
            raise _problem(
                defn,
                f"values.{vendor_raw}",
                "is listed twice with different canonical values (matching ignores case)",
            )
        if key not in values:
            listed.append(vendor_value)
        values[key] = canonical
        if canonical is not None:
            first_vendor.setdefault(canonical, vendor_value)

    prefer = dict(first_vendor)
    prefer_raw = raw.get("prefer")
    if prefer_raw is not None:
        if not isinstance(prefer_raw, Mapping):
            raise _problem(defn, "prefer", "must map canonical values to vendor values")
        for canonical_raw, vendor_raw in prefer_raw.items():
            where = f"prefer.{canonical_raw}"
            canonical = (
                normalize_text(canonical_raw) if isinstance(canonical_raw, str) else canonical_raw
            )
            if canonical not in first_vendor:
                raise _problem(defn, where, f"no vendor value in values: maps to {canonical_raw!r}")
            vendor_value = _scalar_text(vendor_raw)
            if vendor_value is None or vendor_value.casefold() not in values:
                raise _problem(
                    defn, where, f"{vendor_raw!r} is not a vendor value listed in values:"
                )
            if values[vendor_value.casefold()] != canonical:
                raise _problem(
                    defn,
                    where,
                    f"{vendor_raw!r} maps to {values[vendor_value.casefold()]!r}, "
                    f"not {canonical_raw!r}",
                )
            prefer[canonical] = _listed_spelling(values_raw, vendor_value)
    return values, prefer, tuple(listed)


def _listed_spelling(values_raw: Mapping[Any, Any], vendor_value: str) -> str:
    # Write back the vendor's own spelling from values:, not however prefer: cased it.
    folded = vendor_value.casefold()
    for key in values_raw:
        text = _scalar_text(key)
        if text is not None and text.casefold() == folded:
            return text
    return vendor_value  # pragma: no cover - the caller checked it is listed


# ---------------------------------------------------------------------------------------------
# the map


_ReadStep = tuple[str | None, tuple[str, ...], Callable[[object], Any], str, FieldSpec]
# (canonical field, vendor field when the path is one name, path, write function, spec)
_WriteStep = tuple[str, str | None, tuple[str, ...], Callable[[object], Any], FieldSpec]


class FieldMap:
    """A vendor's field map, compiled. Immutable: ``extend`` and ``with_fields`` return new maps.

    Build one with :meth:`from_dict`, :meth:`load` or :func:`load_default_map`.
    """

    __slots__ = (
        "_covered",
        "_defs",
        "_read",
        "_refs",
        "_settled",
        "_specs",
        "_vendor_fields",
        "_vendor_of",
        "_writable",
        "_write",
        "source",
        "vendor",
    )

    def __init__(self, vendor: str, source: str, defs: _Defs) -> None:
        """Compile ``defs``; use :meth:`from_dict` or :meth:`load` rather than this."""
        self.vendor = vendor
        self.source = source
        self._defs = defs
        self._specs: dict[str, tuple[FieldSpec, ...]] = {}
        self._read: dict[str, tuple[_ReadStep, ...]] = {}
        self._write: dict[str, dict[str, _WriteStep]] = {}
        self._covered: dict[str, frozenset[str]] = {}
        self._writable: dict[str, frozenset[str]] = {}
        self._vendor_fields: dict[str, tuple[str, ...]] = {}
        self._vendor_of: dict[str, dict[str, str]] = {}
        self._refs: dict[str, dict[str, str]] = {}
        self._settled: dict[str, frozenset[str]] = {}
        for object_type, fields in defs.items():
            specs = tuple(_compile(object_type, canonical, d) for canonical, d in fields.items())
            _check_write_paths(specs, [fields[s.canonical] for s in specs])
            self._specs[object_type] = specs
            self._read[object_type] = tuple(_read_step(s) for s in specs if s.readable)
            self._write[object_type] = {
                # Without prefer:, FieldSpec.write is the transform: one call less per value.
                s.canonical: (
                    s.canonical,
                    s.vendor_path[0] if len(s.vendor_path) == 1 else None,
                    s.vendor_path,
                    s.transform.to_vendor if s.prefer is None else s.write,
                    s,
                )
                for s in specs
                if s.writable
            }
            # Fields whose read already gives the canonical value: validation takes them as
            # they are instead of normalizing every value a second time.
            self._settled[object_type] = frozenset(
                s.canonical
                for s in specs
                if s.readable
                and s.values is None
                and normalized_by(object_type, s.canonical, s.transform.to_canonical)
            )
            self._covered[object_type] = frozenset(s.canonical for s in specs if s.readable)
            self._writable[object_type] = frozenset(s.canonical for s in specs if s.writable)
            self._vendor_fields[object_type] = tuple(
                dict.fromkeys(s.vendor_path[0] for s in specs if s.readable)
            )
            self._vendor_of[object_type] = {s.canonical: s.vendor_field for s in specs}
            self._refs[object_type] = {s.canonical: s.ref for s in specs if s.ref is not None}

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: object, *, source: str) -> FieldMap:
        """A map from its YAML-shaped dict; ``source`` names it in error messages."""
        if not isinstance(data, Mapping):
            raise FieldMapError(source, "", "must be a mapping with vendor: and objects:")
        for key in data:
            if key not in _TOP_KEYS:
                raise FieldMapError(
                    source, str(key), f"unknown key (expected one of: {', '.join(_TOP_KEYS)})"
                )
        vendor = data.get("vendor")
        if not isinstance(vendor, str) or _VENDOR_NAME.fullmatch(vendor) is None:
            raise FieldMapError(
                source,
                "vendor",
                f"must be a lower-case vendor name such as hubspot, not {vendor!r}",
            )
        objects = data.get("objects")
        if not isinstance(objects, Mapping) or not objects:
            raise FieldMapError(source, "objects", "must map object types to their fields")
        defs: _Defs = {}
        _merge_objects(defs, objects, source=source, prefix="objects.", generation=0)
        return cls(vendor, source, defs)

    @classmethod
    def load(cls, path: str | Path, *, source: str | None = None) -> FieldMap:
        """A map from a YAML file; errors name ``source`` (default: the path as given)."""
        name = source if source is not None else str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise FieldMapError(name, "", f"cannot read the file ({exc.strerror})") from None
        return cls.from_dict(_parse_yaml(text, name), source=name)

    def extend(
        self, overrides: Mapping[str, Any], *, source: str, path_prefix: str = ""
    ) -> FieldMap:
        """A new map with a user's overrides deep-merged in.

        ``overrides`` has the shape of the YAML's ``objects:`` content, e.g.
        ``{"contacts": {"fields": {"custom.segment": "segment"}}}``. A field given as a string
        replaces the vendor field and keeps the other keys; a mapping merges key by key, and its
        ``values`` and ``prefer`` add to or replace single entries; ``null`` unmaps the field.
        Errors name ``source`` and ``path_prefix`` + the key path inside ``overrides``.
        """
        if not isinstance(overrides, Mapping):
            raise FieldMapError(source, path_prefix.rstrip("."), "must map object types to fields")
        defs: _Defs = {ot: dict(fields) for ot, fields in self._defs.items()}
        generation = 1 + max(
            (d.generation for fields in defs.values() for d in fields.values()), default=0
        )
        _merge_objects(defs, overrides, source=source, prefix=path_prefix, generation=generation)
        return FieldMap(self.vendor, self.source, defs)

    def with_fields(
        self, object_type: str, fields: Mapping[str, Any], *, source: str = "config"
    ) -> FieldMap:
        """A new map with extra or replaced fields of one object type, e.g. custom fields:
        ``fm.with_fields("contacts", {"custom.segment": "segment"})``."""
        return self.extend({object_type: {"fields": fields}}, source=source)

    # -- introspection ------------------------------------------------------------------------

    @property
    def object_types(self) -> frozenset[str]:
        """The object types this map covers."""
        return frozenset(self._specs)

    def specs(self, object_type: str) -> tuple[FieldSpec, ...]:
        """The compiled field specs of an object type, in map order."""
        return self._get(self._specs, object_type)

    def canonical_fields(self, object_type: str) -> frozenset[str]:
        """Canonical fields read from this vendor (both-way and read-only ones)."""
        return self._get(self._covered, object_type)

    def writable_fields(self, object_type: str) -> frozenset[str]:
        """Canonical fields written to this vendor (both-way and write-only ones)."""
        return self._get(self._writable, object_type)

    def vendor_fields(self, object_type: str) -> list[str]:
        """Vendor field names to request on reads: top-level names of the read paths, once each."""
        return list(self._get(self._vendor_fields, object_type))

    def vendor_field(self, object_type: str, canonical: str) -> str | None:
        """The vendor field (dotted path) mapped to a canonical field, or None."""
        return self._get(self._vendor_of, object_type).get(canonical)

    def reference_fields(self, object_type: str) -> dict[str, str]:
        """Mapped reference fields of an object type → the object type each points at."""
        return dict(self._get(self._refs, object_type))

    def limits(self, object_type: str) -> dict[str, int]:
        """Lists of references the vendor holds only so many of → that count."""
        return {s.canonical: s.limit for s in self.specs(object_type) if s.limit is not None}

    def project(self, object_type: str, flat: Mapping[str, Any]) -> dict[str, Any]:
        """``flat`` restricted to the canonical fields this vendor covers."""
        covered = self._get(self._covered, object_type)
        return {k: v for k, v in flat.items() if k in covered}

    def as_dict(self) -> dict[str, Any]:
        """The effective map (overrides merged) in its YAML shape, for display and debugging."""
        return {
            "vendor": self.vendor,
            "objects": {
                ot: {"fields": {c: _plain(d.raw) for c, d in fields.items()}}
                for ot, fields in self._defs.items()
            },
        }

    def __repr__(self) -> str:
        return f"FieldMap(vendor={self.vendor!r}, source={self.source!r})"

    def _get(self, table: Mapping[str, _T], object_type: str) -> _T:
        try:
            return table[object_type]
        except KeyError:
            covered = ", ".join(ot for ot in OBJECT_TYPES if ot in self._specs)
            raise FieldMapError(
                self.source,
                f"objects.{object_type}",
                f"the {self.vendor} map does not cover {object_type!r} (it covers: {covered})",
            ) from None

    # -- mapping ------------------------------------------------------------------------------

    def to_canonical(
        self,
        object_type: str,
        vendor_record: Mapping[str, Any],
        *,
        default_region: str | None = "US",
    ) -> dict[str, Any]:
        """The flat canonical record of a vendor record, normalized and validated.

        Reference fields come out as the vendor's own ids (text; a sorted list for a
        multi-reference): the hub translates them. Any failure raises MappingError naming the
        canonical field, the vendor field and the value.
        """
        steps: tuple[_ReadStep, ...] = self._get(self._read, object_type)
        flat: dict[str, Any] = {}
        for key, path, read, canonical, spec in steps:
            raw = vendor_record.get(key) if key is not None else _dig(vendor_record, path)
            if raw is None:
                continue
            try:
                value = read(raw)
            except (ValueError, TypeError) as exc:
                raise _field_error(spec, raw, exc) from None
            if value is not None:
                flat[canonical] = value
        try:
            return validate_flat(
                object_type,
                flat,
                default_region=default_region,
                normalized=self._settled[object_type],
            )
        except MappingError as exc:
            vendor_field = self._vendor_of[object_type].get(exc.field) if exc.field else None
            raise exc.with_vendor_field(vendor_field) from None

    def vendor_value(self, object_type: str, canonical: str, value: Any) -> Any:
        """One canonical value as this vendor holds it (a stage's vendor value, a number as
        the vendor's text); None when the map does not write the field. Raises MappingError
        as :meth:`to_vendor` does."""
        vendor_field = self.vendor_field(object_type, canonical)
        if vendor_field is None:
            return None
        payload = self.to_vendor(object_type, {canonical: value}, [canonical])
        return _dig(payload, tuple(vendor_field.split(".")))

    def to_vendor(
        self,
        object_type: str,
        flat: Mapping[str, Any],
        fields: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """The vendor-shaped fields for a flat canonical record.

        Writes ``fields`` (default: every writable field of the map); fields the map does not
        write (read-only or unmapped) are skipped. A field absent or blank in ``flat`` is written
        as None, which clears it on the vendor. References must already be the vendor's ids.
        Dotted vendor paths build nested dicts.
        """
        plan: dict[str, _WriteStep] = self._get(self._write, object_type)
        steps: Iterable[_WriteStep] = (
            plan.values()
            if fields is None
            else [plan[f] for f in dict.fromkeys(fields) if f in plan]
        )
        out: dict[str, Any] = {}
        get = flat.get
        for canonical, key, path, write, spec in steps:
            value = get(canonical)
            # Blank is None, "" or []; `not value` first, so a present value costs one test.
            if not value and (value is None or value == "" or value == []):
                vendor_value = None
            else:
                try:
                    vendor_value = write(value)
                except (ValueError, TypeError) as exc:
                    raise _field_error(spec, value, exc) from None
            if key is not None:
                out[key] = vendor_value
            else:
                _put(out, path, vendor_value)
        return out


def _read_step(spec: FieldSpec) -> _ReadStep:
    path = spec.vendor_path
    read = spec.read if spec.values is not None else spec.transform.to_canonical
    return (path[0] if len(path) == 1 else None, path, read, spec.canonical, spec)


def _field_error(spec: FieldSpec, value: object, exc: Exception) -> MappingError:
    map_key: str | None = None
    if isinstance(exc, NormalizeError):
        shown, reason, map_key = exc.value, exc.reason, exc.map_key
    else:
        shown, reason = value, f"cannot be converted ({one_reason(exc)})"
    return MappingError(
        spec.object_type,
        spec.canonical,
        shown,
        reason,
        vendor_field=spec.vendor_field,
        map_key=map_key,
    )


def _dig(record: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    current: Any = record
    for part in path:
        if not isinstance(current, Mapping):
            return None
        current = current.get(part)
        if current is None:
            return None
    return current


def _put(out: dict[str, Any], path: tuple[str, ...], value: object) -> None:
    current = out
    for part in path[:-1]:
        current = current.setdefault(part, {})
    current[path[-1]] = value


def _check_write_paths(specs: tuple[FieldSpec, ...], defs: list[_FieldDef]) -> None:
    # Two writers of one vendor field (or of a field and its parent) would overwrite each
    # other on every write, and the record would never converge.
    owners: list[tuple[tuple[str, ...], FieldSpec, _FieldDef]] = []
    for spec, defn in zip(specs, defs, strict=True):
        if not spec.writable:
            continue
        path = spec.vendor_path
        for other_path, other, other_def in owners:
            n = min(len(path), len(other_path))
            if path[:n] == other_path[:n]:
                blamed = defn if defn.generation >= other_def.generation else other_def
                first, second = (other, spec) if blamed is defn else (spec, other)
                raise _problem(
                    blamed,
                    "field",
                    f"vendor field {second.vendor_field!r} is also written by "
                    f"{first.canonical}; make one of them direction: read",
                )
        owners.append((path, spec, defn))


def _merge_objects(
    defs: _Defs, objects: Mapping[Any, Any], *, source: str, prefix: str, generation: int
) -> None:
    for object_type, body in objects.items():
        where = f"{prefix}{object_type}"
        if object_type not in OBJECT_TYPES:
            raise FieldMapError(
                source, where, f"is not an object type (expected one of: {', '.join(OBJECT_TYPES)})"
            )
        if not isinstance(body, Mapping):
            raise FieldMapError(source, where, "must be a mapping with fields:")
        for key in body:
            if key != "fields":
                raise FieldMapError(source, f"{where}.{key}", "unknown key (expected: fields)")
        fields = body.get("fields")
        if not isinstance(fields, Mapping) or (generation == 0 and not fields):
            raise FieldMapError(
                source, f"{where}.fields", "must map canonical fields to vendor fields"
            )
        target = defs.setdefault(object_type, {})
        for canonical, spec in fields.items():
            field_where = f"{where}.fields.{canonical}"
            if not isinstance(canonical, str):
                raise FieldMapError(source, field_where, "a canonical field name must be text")
            base = target.get(canonical)
            if spec is None:
                if generation == 0:
                    raise FieldMapError(source, field_where, "needs a vendor field")
                target.pop(canonical, None)
                continue
            if isinstance(spec, str):
                spec = {"field": spec}
            elif not isinstance(spec, Mapping):
                raise FieldMapError(
                    source, field_where, "must be a vendor field name or a mapping with field:"
                )
            raw = dict(base.raw) if base is not None else {}
            for key, value in spec.items():
                previous = raw.get(key)
                if (
                    key in ("values", "prefer")
                    and isinstance(previous, Mapping)
                    and isinstance(value, Mapping)
                ):
                    raw[key] = {**previous, **value}
                else:
                    raw[key] = value
            target[canonical] = _FieldDef(raw, source, field_where, generation)
        if not target:
            del defs[object_type]


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------------------------
# YAML and default maps


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads yes/no/on/off as text (YAML 1.2) and rejects duplicate keys.

    YAML 1.1 turns a vendor value ``no`` (Norway, or a "no" option) into False, and a duplicated
    key silently wins over the first: both would corrupt a value map without a word.
    """


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _parse_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise FieldMapError(source, "", f"is not valid YAML{where}: {problem}") from None


def default_map_vendors() -> list[str]:
    """Vendors with a default map in ``mappings/maps/``, sorted."""
    folder = resources.files("mappings").joinpath("maps")
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml") and entry.is_file()
    )


@cache
def load_default_map(vendor: str) -> FieldMap:
    """The default field map of a vendor, from ``mappings/maps/<vendor>.yaml``.

    Cached: maps are immutable, so every caller may share one. Raises FieldMapError naming the
    vendor when there is no such map or it is broken.
    """
    name = f"{vendor}.yaml"
    resource = resources.files("mappings").joinpath("maps", name)
    if _VENDOR_NAME.fullmatch(vendor) is None or not resource.is_file():
        available = ", ".join(default_map_vendors()) or "none"
        raise FieldMapError(
            "mappings/maps",
            "",
            f"no default field map for vendor {vendor!r} (available: {available})",
        )
    fieldmap = FieldMap.from_dict(
        _parse_yaml(resource.read_text(encoding="utf-8"), name), source=name
    )
    if fieldmap.vendor != vendor:
        raise FieldMapError(
            name, "vendor", f"is {fieldmap.vendor!r} but the file is for {vendor!r}"
        )
    return fieldmap
