"""What the Insightly connector and its emulator share about the v3.1 wire.

Public entry points: :data:`OBJECTS` (object type → :class:`InsightlyObject`),
:data:`MAX_TOP`, :data:`CLOSED_STATES`, :data:`STAGE_FIELD`, :data:`READ_ONLY`,
:func:`present_record` and :func:`wire_fields` (a record as the connector shows it, and back),
:func:`format_insightly_datetime` and :func:`error_body`.

Facts: ``/work/shared/vendors/suitecrm-bitrix24-insightly-apptivo.md`` section 3.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

__all__ = [
    "CLOSED_STATES",
    "MAX_TOP",
    "OBJECTS",
    "READ_ONLY",
    "STAGE_FIELD",
    "InsightlyObject",
    "error_body",
    "format_insightly_datetime",
    "present_record",
    "wire_fields",
]

MAX_TOP: Final = 500  # the most rows ``top`` may ask for
# An opportunity's OPPORTUNITY_STATE other than OPEN, as real v3.1 data spells them.
CLOSED_STATES: Final = frozenset({"WON", "LOST", "ABANDONED", "SUSPENDED"})
# The pseudo-field the connector shows an opportunity's stage in: its OPPORTUNITY_STATE when
# the opportunity is closed, else the STAGE_NAME of its pipeline stage (see the connector).
STAGE_FIELD: Final = "STAGE"
# Set by Insightly, never sent: it refuses or ignores them (read-only in PUT). STAGE is written
# through OPPORTUNITY_STATE and the pipeline endpoints instead.
READ_ONLY: Final = frozenset(
    {"DATE_CREATED_UTC", "DATE_UPDATED_UTC", "OPPORTUNITY_VALUE", "PIPELINE_ID", "STAGE_ID"}
    | {"OWNER_USER_ID", "CREATED_USER_ID", STAGE_FIELD}
)
_REFERENCES: Final = frozenset({"ORGANISATION_ID"})
_DATE_FIELDS: Final = frozenset({"FORECAST_CLOSE_DATE", "ACTUAL_CLOSE_DATE", "DATE_OF_BIRTH"})
_DAY_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class InsightlyObject:
    """One Insightly object: its path below ``/v3.1`` and the name of its id field."""

    path: str
    id_field: str
    name: str  # as LINKS name it (OBJECT_NAME)


OBJECTS: Final[dict[str, InsightlyObject]] = {
    "companies": InsightlyObject("Organisations", "ORGANISATION_ID", "Organisation"),
    "contacts": InsightlyObject("Contacts", "CONTACT_ID", "Contact"),
    "deals": InsightlyObject("Opportunities", "OPPORTUNITY_ID", "Opportunity"),
}


def format_insightly_datetime(instant: datetime) -> str:
    """``instant`` as Insightly writes date-times: ``YYYY-MM-DD HH:MM:SS`` in UTC, no zone."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"naive datetime {instant.isoformat()}; pass an aware datetime")
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def error_body(message: str) -> dict[str, Any]:
    """Insightly's error body. Assumed: ``{"Message": ...}``, the ASP.NET Web API shape the Go
    client reads (its ``Name`` is optional there); no real v3.1 error body was found."""
    return {"Message": message}


def present_record(
    object_type: str, row: Mapping[str, Any], stage_name: Callable[[int], str | None]
) -> dict[str, Any]:
    """A record as the connector shows it to the hub: top-level values only (sub-collections
    are not synced), ``ORGANISATION_ID`` as text like every id the hub holds, and for an
    opportunity the pseudo-field ``STAGE``: its ``OPPORTUNITY_STATE`` when closed, else the
    name ``stage_name`` gives its ``STAGE_ID``."""
    shown: dict[str, Any] = {
        name: value for name, value in row.items() if not isinstance(value, list | dict)
    }
    for name in _REFERENCES & shown.keys():
        if shown[name] is not None:
            shown[name] = str(shown[name])
    if object_type == "deals":
        state = str(row.get("OPPORTUNITY_STATE") or "").upper()
        stage_id = row.get("STAGE_ID")
        if state in CLOSED_STATES:
            shown[STAGE_FIELD] = state
        else:
            shown[STAGE_FIELD] = stage_name(int(stage_id)) if stage_id is not None else None
    return shown


def wire_fields(object_type: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """The writable fields of a shown record as Insightly takes them: ids and ``BID_AMOUNT``
    as JSON numbers, a bare date as ``YYYY-MM-DD 00:00:00``, ``None`` kept (v3.1's partial PUT
    clears a field sent as ``null``); read-only fields and ``STAGE`` left out. Raises
    ``ValueError`` naming the field whose value cannot be sent."""
    body: dict[str, Any] = {}
    for name, value in record.items():
        if name in READ_ONLY or name == OBJECTS[object_type].id_field:
            continue
        if value is None:
            body[name] = None
        elif name in _REFERENCES:
            try:
                body[name] = int(str(value))
            except ValueError:
                raise ValueError(
                    f"{name} must be an Insightly id, not {str(value)[:40]!r}"
                ) from None
        elif name == "BID_AMOUNT":
            body[name] = _number(name, value)
        elif name in _DATE_FIELDS and _DAY_ONLY.match(str(value)):
            body[name] = f"{value} 00:00:00"
        else:
            body[name] = value
    return body


def _number(name: str, value: Any) -> int | float:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{name} must be a number, not {str(value)[:40]!r}") from None
    return int(amount) if amount == amount.to_integral_value() else float(amount)
