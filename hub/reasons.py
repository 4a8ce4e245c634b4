"""The reason a dead letter gives: the record, the field, the value, and what to do.

Public entry points: :func:`unmappable`, :func:`refused` and :func:`unwritable`, one per way a
record fails: it cannot be read into the canonical schema, a vendor refuses the write, or the
hub cannot put the record into a system's terms.

``crmhub failed list`` shows these lines as they are, so each one is complete on its own: the
system and the record, the field and its value (long values cut, with their length), the words
of whoever refused it, and the fix — correct the value where it came from, or map a value the
field map does not know under ``systems.<name>.map`` in ``crmhub.yaml``. A reason is the same
text every time the same failure recurs, so a failure seen again, or retried, is not a new one
(and one a person discarded stays discarded).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.errors import RecordRejected
from hub.planning import Write
from mappings.errors import MappingError, one_line, show_value
from mappings.fieldmap import FieldMap

__all__ = ["refused", "unmappable", "unwritable"]

_LONG = 60  # values longer than this also show their length: the limit is often the problem
_VENDOR_WORDS = 300  # a vendor's message can quote the whole value back; the row stays readable


def unmappable(system: str, object_type: str, remote_id: str, error: MappingError) -> str:
    """A vendor record the field map cannot read: fixed in the vendor, or in the config."""
    problem = f"{system} {object_type} {remote_id}: {_clause(str(error))}"
    if error.map_key:
        return problem + _config_key(system, error.map_key)
    return f"{problem}; correct it in {system}: the next run reads it again"


def unwritable(
    system: str,
    object_type: str,
    record: str,
    elsewhere: Mapping[str, str],
    error: MappingError,
) -> str:
    """A canonical record the target's field map cannot write (a stage it has no value for).

    ``record`` is its id on ``system`` (or the hub's id when it has none there yet);
    ``elsewhere`` its ids on the other systems, which a person can look up.
    """
    problem = (
        f"cannot write {object_type} {_named(record, elsewhere)} to {system}: {_clause(str(error))}"
    )
    if error.map_key:
        return problem + _config_key(system, error.map_key)
    return f"{problem}; {_source_fix(error.field or 'the value')}"


def refused(
    system: str,
    object_type: str,
    write: Write,
    elsewhere: Mapping[str, str],
    error: RecordRejected,
    fieldmap: FieldMap,
) -> str:
    """A write the vendor refused, in its own words, with the value it refused."""
    record = _named(write.remote_id or write.canonical_id, elsewhere)
    text = f"{system} refused to {write.kind} {object_type} {record}: "
    value = write.payload.get(error.field) if error.field else None
    if error.field and value is not None:
        text += f"{error.field} {_shown(value)}: "
    words = _clause(error.message)
    text += words if len(words) <= _VENDOR_WORDS else words[: _VENDOR_WORDS - 3] + "..."
    if write.kind == "delete":
        return text
    canonical = _canonical_field(fieldmap, object_type, error.field)
    return f"{text}; {_source_fix(canonical or error.field or 'the record')}"


def _named(record: str, elsewhere: Mapping[str, str]) -> str:
    if not elsewhere:
        return record
    return f"{record} ({', '.join(f'{name} {rid}' for name, rid in sorted(elsewhere.items()))})"


def _clause(text: str) -> str:
    return one_line(text).rstrip(".")


def _shown(value: Any) -> str:
    shown = show_value(value)
    if isinstance(value, str) and len(value) > _LONG:
        shown += f" ({len(value):,} characters)"
    return shown


def _config_key(system: str, map_key: str) -> str:
    # The field map's own words say what to add; this says where, for this system.
    return f" (systems.{system}.map.{map_key} in crmhub.yaml)"


def _source_fix(field: str) -> str:
    # Where it came from is named by the record's ids elsewhere, not by this attempt's planning
    # (which differs between a first write and a retry): the same failure keeps the same words.
    return f"correct {field} where it came from; the next run after the fix writes it"


def _canonical_field(fieldmap: FieldMap, object_type: str, vendor_field: str | None) -> str | None:
    if vendor_field is None or object_type not in fieldmap.object_types:
        return None
    for spec in fieldmap.specs(object_type):
        if spec.vendor_field == vendor_field or spec.vendor_path[0] == vendor_field:
            return spec.canonical
    return None
