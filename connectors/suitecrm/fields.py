"""SuiteCRM V8 modules, field names and date formats, shared by the connector and its sandbox.

Public entry points: :data:`MODULES`, :data:`OBJECT_NAMES`, :data:`FIELDS`, :data:`READ_ONLY`,
:data:`DEFAULT_FIELDS`, :data:`SALES_STAGES`, :func:`module_for`, :func:`parse_suitecrm_datetime`,
:func:`format_db_datetime`, :func:`format_atom`, :func:`present`.

Facts: section 1.7 of ``/work/shared/vendors/suitecrm-bitrix24-insightly-apptivo.md``. Every
attribute SuiteCRM returns is text (bean values are raw database strings): numbers such as
``amount`` and ``employees`` come as text, ``deleted`` as ``"0"``/``"1"``, an empty field as
``""``. Date-times come as ``DATE_ATOM`` (``2024-01-02T03:04:05+00:00``) whose wall clock is
the UTC database value but whose offset is the PHP server's default zone (SuiteCRM#9952), and
on some releases with the seconds zeroed (SuiteCRM#10912); they are sent back in database form,
``YYYY-MM-DD HH:MM:SS`` in UTC.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from connectors.errors import ConnectorConfigError

__all__ = [
    "DEFAULT_FIELDS",
    "FIELDS",
    "MODULES",
    "OBJECT_NAMES",
    "READ_ONLY",
    "SALES_STAGES",
    "format_atom",
    "format_db_datetime",
    "module_for",
    "parse_suitecrm_datetime",
    "present",
]

MODULES: Final[Mapping[str, str]] = {
    "companies": "Accounts",
    "contacts": "Contacts",
    "deals": "Opportunities",
}
"""Object type → SuiteCRM module name (as in URLs, ``data.type`` and ``fields[...]``)."""

OBJECT_NAMES: Final[Mapping[str, str]] = {
    "Accounts": "Account",
    "Contacts": "Contact",
    "Opportunities": "Opportunity",
}
"""Module → bean object name, which responses carry as ``data.type`` and errors quote."""

_BASIC: Final = (
    "date_entered",
    "date_modified",
    "modified_user_id",
    "modified_by_name",
    "created_by",
    "created_by_name",
    "description",
    "deleted",
    "assigned_user_id",
    "assigned_user_name",
)

FIELDS: Final[Mapping[str, frozenset[str]]] = {
    "Contacts": frozenset(
        (
            *_BASIC,
            "salutation",
            "first_name",
            "last_name",
            "full_name",
            "title",
            "department",
            "phone_home",
            "phone_mobile",
            "phone_work",
            "phone_other",
            "phone_fax",
            "email1",
            "email2",
            "email_opt_out",
            "invalid_email",
            "primary_address_street",
            "primary_address_city",
            "primary_address_state",
            "primary_address_postalcode",
            "primary_address_country",
            "alt_address_street",
            "alt_address_city",
            "alt_address_state",
            "alt_address_postalcode",
            "alt_address_country",
            "assistant",
            "assistant_phone",
            "lead_source",
            "account_name",
            "account_id",
            "reports_to_id",
            "birthdate",
            "do_not_call",
        )
    ),
    "Accounts": frozenset(
        (
            *_BASIC,
            "name",
            "account_type",
            "industry",
            "annual_revenue",
            "phone_fax",
            "phone_office",
            "phone_alternate",
            "website",
            "ownership",
            "employees",
            "ticker_symbol",
            "rating",
            "sic_code",
            "billing_address_street",
            "billing_address_city",
            "billing_address_state",
            "billing_address_postalcode",
            "billing_address_country",
            "shipping_address_street",
            "shipping_address_city",
            "shipping_address_state",
            "shipping_address_postalcode",
            "shipping_address_country",
            "email1",
            "parent_id",
        )
    ),
    "Opportunities": frozenset(
        (
            *_BASIC,
            "name",
            "opportunity_type",
            "account_name",
            "account_id",
            "campaign_id",
            "lead_source",
            "amount",
            "amount_usdollar",
            "currency_id",
            "date_closed",
            "next_step",
            "sales_stage",
            "probability",
        )
    ),
}
"""The attributes each module has (vardefs of SuiteCRM 7.14, the subset a sync meets)."""

READ_ONLY: Final = frozenset(
    {
        "date_entered",
        "date_modified",
        "modified_user_id",
        "modified_by_name",
        "created_by",
        "created_by_name",
        "assigned_user_name",
        "full_name",
        "account_name",
        "amount_usdollar",
        "deleted",
    }
)
"""Attributes the connector never sends: SuiteCRM computes them, and a ``date_modified`` (or
``date_entered``, ``created_by``, ``modified_user_id``) that is sent is *kept* instead of being
stamped, which would hide our own write from the next incremental read (facts 1.5)."""

DEFAULT_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "Contacts": ("first_name", "last_name", "email1", "phone_work", "title", "account_id"),
    "Accounts": ("name", "website", "phone_office", "industry"),
    "Opportunities": ("name", "amount", "sales_stage", "date_closed", "account_id"),
}
"""What ``find`` reads besides the field it matches on."""

SALES_STAGES: Final = (
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Id. Decision Makers",
    "Perception Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
)
"""The keys of ``sales_stage_dom`` (``include/language/en_us.lang.php``)."""

_WALL_CLOCK: Final = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)")


def module_for(object_type: str) -> str:
    """The module of an object type; ConnectorConfigError for one SuiteCRM is not mapped to."""
    try:
        return MODULES[object_type]
    except KeyError:
        known = ", ".join(sorted(MODULES))
        raise ConnectorConfigError(
            f"SuiteCRM has no object type {object_type!r} (known: {known})"
        ) from None


def parse_suitecrm_datetime(value: str, *, trust_offset: bool = False) -> datetime:
    """An attribute date-time as an aware UTC ``datetime``.

    By default only the wall clock counts and is taken as UTC: SuiteCRM writes the UTC database
    value with the PHP server's zone as the offset (SuiteCRM#9952), so the offset lies on every
    server not set to UTC. ``trust_offset`` honours the offset, for servers patched to convert.
    Raises ValueError for anything that is not a date-time.
    """
    text = value.strip()
    if trust_offset:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    match = _WALL_CLOCK.match(text)
    if match is None:
        raise ValueError(f"not a SuiteCRM date-time: {text[:40]!r}")
    clock = match.group(2)
    return datetime.fromisoformat(
        f"{match.group(1)}T{clock if len(clock) == 8 else clock + ':00'}"
    ).replace(tzinfo=UTC)


def format_db_datetime(instant: datetime) -> str:
    """``instant`` as SuiteCRM's database form, ``YYYY-MM-DD HH:MM:SS`` in UTC (fraction cut).

    The form filters compare with (facts 1.4); truncating makes a ``gte`` filter read a little
    more, never less.
    """
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("pass an aware datetime")
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def format_atom(
    instant: datetime, offset: timedelta = timedelta(), *, zero_seconds: bool = False
) -> str:
    """How SuiteCRM shows a stored UTC date-time: the UTC wall clock labelled with ``offset``
    (the server's zone, whatever the value really is), seconds zeroed on affected releases."""
    utc = instant.astimezone(UTC).replace(microsecond=0)
    if zero_seconds:
        utc = utc.replace(second=0)
    sign = "-" if offset < timedelta() else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{utc.strftime('%Y-%m-%dT%H:%M:%S')}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def present(value: Any) -> Any:
    """An attribute as the hub sees it: SuiteCRM's empty text is no value."""
    if value == "" or value is None:
        return None
    return value
