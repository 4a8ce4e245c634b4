"""Bitrix24's wire formats, shared by the connector and its sandbox.

Public entry points: :func:`build_query` and :func:`parse_query` (PHP's nested query strings,
the form of every ``batch`` command), :data:`ENTITIES`, :data:`MULTIFIELDS` with
:class:`Multifield`, :func:`multifields_of`, :func:`present_record` (a vendor record as the hub
sees it), :func:`multifield_changes` (the ID-addressed item list that rewrites a multifield),
:data:`DATE_FIELDS`, :func:`format_portal_datetime` and :func:`epoch_second`.

How the connector shows Bitrix24 records to the hub (and the sandbox's ``insert``/``snapshot``
take and give): every value as Bitrix24 sends it (strings), except

* multifields (``PHONE``, ``EMAIL``, ``WEB``: lists of ``{"ID", "VALUE_TYPE", "VALUE"}`` items)
  appear as one string each, the first item's value, and the contact's first ``MOBILE`` phone as
  the pseudo-field ``PHONE_MOBILE`` (``PHONE`` is then the first phone that is not a mobile);
* date fields (``BIRTHDATE``, ``BEGINDATE``, ``CLOSEDATE``), which Bitrix24 sends as midnight in
  the portal's time zone, appear as the portal's calendar date ``YYYY-MM-DD`` (converting the
  midnight to UTC would move an eastern portal's date to the day before);
* a deal's contacts appear as the pseudo-field ``CONTACT_IDS``, a list of id strings, primary
  first (Bitrix24 lists do not return it; the connector reads ``crm.deal.contact.items.get``);
* an empty reference (``COMPANY_ID`` ``"0"``) is ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final
from urllib.parse import parse_qsl, quote

__all__ = [
    "CONTACT_IDS_FIELD",
    "DATE_FIELDS",
    "ENTITIES",
    "MULTIFIELDS",
    "Multifield",
    "build_query",
    "epoch_second",
    "format_portal_datetime",
    "multifield_changes",
    "multifields_of",
    "parse_query",
    "present_record",
]

# The hub's object types and Bitrix24's entity names (crm.<entity>.list, findbycomm's type).
ENTITIES: Final[Mapping[str, str]] = {
    "companies": "company",
    "contacts": "contact",
    "deals": "deal",
}

CONTACT_IDS_FIELD: Final = "CONTACT_IDS"  # a deal's contacts, a pseudo-field
DATE_FIELDS: Final = frozenset({"BIRTHDATE", "BEGINDATE", "CLOSEDATE"})
REFERENCE_FIELDS: Final = frozenset({"COMPANY_ID", "CONTACT_ID", "LEAD_ID"})


@dataclass(frozen=True, slots=True)
class Multifield:
    """One presented multifield: ``name`` shown to the hub, stored in Bitrix24's ``kind``.

    ``mobile`` True picks only ``MOBILE`` items, False every item but those (when the object
    also shows ``PHONE_MOBILE``), None every item. ``value_type`` is the ``VALUE_TYPE`` of an
    item the connector adds.
    """

    name: str
    kind: str
    mobile: bool | None
    value_type: str

    def picks(self, item: Mapping[str, Any]) -> bool:
        if self.mobile is None:
            return True
        return (str(item.get("VALUE_TYPE", "")).upper() == "MOBILE") == self.mobile


_PHONE: Final = Multifield("PHONE", "PHONE", None, "WORK")
_PHONE_NOT_MOBILE: Final = Multifield("PHONE", "PHONE", False, "WORK")
_MOBILE: Final = Multifield("PHONE_MOBILE", "PHONE", True, "MOBILE")
_EMAIL: Final = Multifield("EMAIL", "EMAIL", None, "WORK")
_WEB: Final = Multifield("WEB", "WEB", None, "WORK")

MULTIFIELDS: Final[Mapping[str, Mapping[str, Multifield]]] = {
    "companies": {m.name: m for m in (_PHONE, _EMAIL, _WEB)},
    "contacts": {m.name: m for m in (_PHONE_NOT_MOBILE, _MOBILE, _EMAIL, _WEB)},
    "deals": {},
}


def multifields_of(object_type: str) -> Mapping[str, Multifield]:
    """The presented multifields of an object type, by presented name."""
    return MULTIFIELDS.get(object_type, {})


def _first(items: Any, multifield: Multifield) -> Mapping[str, Any] | None:
    if not isinstance(items, list):
        return None
    for item in items:
        if isinstance(item, Mapping) and multifield.picks(item) and item.get("VALUE"):
            return item
    return None


def present_value(object_type: str, name: str, raw: Mapping[str, Any]) -> Any:
    """The value of presented field ``name`` of a raw Bitrix24 record."""
    multifield = multifields_of(object_type).get(name)
    if multifield is not None:
        item = _first(raw.get(multifield.kind), multifield)
        return None if item is None else str(item["VALUE"])
    value = raw.get(name)
    if name in DATE_FIELDS and isinstance(value, str) and len(value) >= 10:
        return value[:10]
    if name in REFERENCE_FIELDS and value in ("0", 0, ""):
        return None
    return value


def present_record(
    object_type: str, raw: Mapping[str, Any], names: Sequence[str]
) -> dict[str, Any]:
    """The presented fields ``names`` of a raw record (``CONTACT_IDS`` is filled elsewhere)."""
    return {name: present_value(object_type, name, raw) for name in names}


def multifield_changes(
    object_type: str, wanted: Mapping[str, Any], current: Mapping[str, Any]
) -> dict[str, list[dict[str, str]]]:
    """The item lists that set the presented multifields in ``wanted`` on a stored record.

    ``current`` is the record's raw multifields as read (items with their ``ID``). An item that
    is there is rewritten by its ``ID`` (or deleted with ``DELETE: "Y"`` when the new value is
    blank); only a value with no item yet is added without an ``ID`` — Bitrix24 appends every
    item sent without one, which is the classic duplicate-phone bug.
    """
    changes: dict[str, list[dict[str, str]]] = {}
    for name, value in wanted.items():
        multifield = multifields_of(object_type).get(name)
        if multifield is None:
            continue
        text = "" if value is None else str(value).strip()
        existing = _first(current.get(multifield.kind), multifield)
        items = changes.setdefault(multifield.kind, [])
        if existing is not None and existing.get("ID") is not None:
            if text:
                value_type = str(existing.get("VALUE_TYPE") or multifield.value_type)
                items.append({"ID": str(existing["ID"]), "VALUE": text, "VALUE_TYPE": value_type})
            else:
                items.append({"ID": str(existing["ID"]), "DELETE": "Y"})
        elif text:
            items.append({"VALUE": text, "VALUE_TYPE": multifield.value_type})
    return {kind: items for kind, items in changes.items() if items}


# --------------------------------------------------------------------------------------------
# Date-times


def epoch_second(instant: datetime) -> int:
    """Whole seconds since the epoch (Bitrix24 stamps carry no fraction)."""
    return int(instant.astimezone(UTC).timestamp() // 1)


def format_portal_datetime(instant: datetime, offset: timedelta = timedelta()) -> str:
    """``2024-08-15T10:38:21+03:00``: ISO 8601 at ``offset``, whole seconds (Bitrix24's form)."""
    local = instant.astimezone(timezone(offset)).replace(microsecond=0)
    return local.isoformat()


# --------------------------------------------------------------------------------------------
# PHP query strings


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _flatten(f"{prefix}[{key}]", inner, out)
    elif isinstance(value, list | tuple):
        for index, inner in enumerate(value):
            _flatten(f"{prefix}[{index}]", inner, out)
    elif value is None:
        out.append((prefix, ""))
    elif isinstance(value, bool):
        out.append((prefix, "Y" if value else "N"))
    else:
        out.append((prefix, str(value)))


def build_query(params: Mapping[str, Any]) -> str:
    """``params`` as PHP's ``http_build_query`` writes them: ``filter[>ID]=5&select[0]=ID``.

    Nested mappings and lists become bracketed keys; None is an empty string. An empty list
    or mapping vanishes, as in PHP (so a command cannot send one).
    """
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        _flatten(str(key), value, pairs)
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)


def _split_key(key: str) -> list[str]:
    if "[" not in key or not key.endswith("]"):
        return [key]
    head, _, rest = key.partition("[")
    return [head, *rest[:-1].split("][")]


def _listify(value: Any) -> Any:
    if isinstance(value, dict):
        converted = {key: _listify(inner) for key, inner in value.items()}
        if converted and all(key.isdigit() for key in converted):
            return [converted[key] for key in sorted(converted, key=int)]
        return converted
    return value


def parse_query(query: str) -> dict[str, Any]:
    """A PHP query string as nested dicts; keys ``0..n`` (and ``[]``) make lists."""
    root: dict[str, Any] = {}
    for raw_key, value in parse_qsl(query, keep_blank_values=True):
        parts = _split_key(raw_key)
        node = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if part == "":
                part = str(sum(1 for key in node if key.isdigit()))
            if last:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    result = _listify(root)
    assert isinstance(result, dict)
    return result
