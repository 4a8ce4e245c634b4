"""Zoho CRM facts the connector and the sandbox share: modules, fields, lookups, date-times.

Public entry points: :data:`MODULES`, :data:`LOOKUPS`, :data:`MANY_LOOKUPS`, :data:`FIELDS`,
:data:`READ_ONLY`, :data:`MANDATORY`, :data:`DUPLICATE_CHECK`, :data:`DEFAULT_FIELDS`,
:func:`module_for`, :func:`present`, :func:`to_wire`, :func:`format_zoho_datetime`.

The connector shows Zoho records to the hub with Zoho's field API names (facts B7), except that
a lookup (``{"id": ..., "name": ...}`` on the wire) is shown as the plain id string, and a deal's
``Contact_Name`` as a list of at most one id, so the hub's reference translation works the same
way for every vendor. :func:`present` and :func:`to_wire` convert between the two; the sandbox's
behind-the-back methods speak the presented form too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from connectors.errors import ConnectorConfigError

MODULES: Final[Mapping[str, str]] = {
    "companies": "Accounts",
    "contacts": "Contacts",
    "deals": "Deals",
}
"""Object type → Zoho module API name."""

# Lookup fields per module and the module they point at (ZO-SDK field.py). Owner-style lookups
# (Owner, Created_By, Modified_By) point at users; they are shown as ids too.
LOOKUPS: Final[Mapping[str, Mapping[str, str]]] = {
    "Accounts": {"Parent_Account": "Accounts", "Owner": "users"},
    "Contacts": {
        "Account_Name": "Accounts",
        "Reporting_To": "Contacts",
        "Vendor_Name": "Vendors",
        "Owner": "users",
    },
    "Deals": {
        "Account_Name": "Accounts",
        "Contact_Name": "Contacts",
        "Campaign_Source": "Campaigns",
        "Owner": "users",
    },
}
MANY_LOOKUPS: Final[Mapping[str, frozenset[str]]] = {
    # Zoho's deal holds one primary contact; the canonical deal holds a list (see zoho.yaml).
    "Deals": frozenset({"Contact_Name"}),
}
_SYSTEM_FIELDS = (
    "id",
    "Owner",
    "Created_Time",
    "Modified_Time",
    "Created_By",
    "Modified_By",
    "Tag",
    "Description",
)
FIELDS: Final[Mapping[str, frozenset[str]]] = {
    "Accounts": frozenset(
        (
            *_SYSTEM_FIELDS,
            "Account_Name",
            "Account_Number",
            "Account_Site",
            "Account_Type",
            "Parent_Account",
            "Website",
            "Phone",
            "Fax",
            "Industry",
            "Employees",
            "Annual_Revenue",
            "Ownership",
            "Rating",
            "SIC_Code",
            "Ticker_Symbol",
            "Billing_Street",
            "Billing_City",
            "Billing_State",
            "Billing_Code",
            "Billing_Country",
            "Shipping_Street",
            "Shipping_City",
            "Shipping_State",
            "Shipping_Code",
            "Shipping_Country",
        )
    ),
    "Contacts": frozenset(
        (
            *_SYSTEM_FIELDS,
            "First_Name",
            "Last_Name",
            "Full_Name",
            "Salutation",
            "Email",
            "Secondary_Email",
            "Phone",
            "Mobile",
            "Home_Phone",
            "Other_Phone",
            "Fax",
            "Title",
            "Department",
            "Account_Name",
            "Vendor_Name",
            "Reporting_To",
            "Lead_Source",
            "Mailing_Street",
            "Mailing_City",
            "Mailing_State",
            "Mailing_Zip",
            "Mailing_Country",
            "Other_Street",
            "Other_City",
            "Other_State",
            "Other_Zip",
            "Other_Country",
            "Date_of_Birth",
            "Email_Opt_Out",
            "Last_Activity_Time",
            "Record_Status__s",
            "Locked__s",
        )
    ),
    "Deals": frozenset(
        (
            *_SYSTEM_FIELDS,
            "Deal_Name",
            "Amount",
            "Stage",
            "Pipeline",
            "Closing_Date",
            "Probability",
            "Expected_Revenue",
            "Type",
            "Lead_Source",
            "Next_Step",
            "Campaign_Source",
            "Account_Name",
            "Contact_Name",
            "Reason_For_Loss__s",
            "Currency",
            "Exchange_Rate",
        )
    ),
}
"""The standard fields of each module (facts B7); custom fields are not known here."""

READ_ONLY: Final = frozenset(
    {
        "id",
        "Full_Name",
        "Created_Time",
        "Modified_Time",
        "Created_By",
        "Modified_By",
        "Last_Activity_Time",
        "Expected_Revenue",
        "Record_Status__s",
        "Locked__s",
    }
)
MANDATORY: Final[Mapping[str, tuple[str, ...]]] = {
    "Accounts": ("Account_Name",),
    "Contacts": ("Last_Name",),
    "Deals": ("Deal_Name", "Stage"),
}
"""Fields Zoho requires on insert (ZO-DOC7 insert-records), checked by the sandbox."""

DUPLICATE_CHECK: Final[Mapping[str, str]] = {
    "Accounts": "Account_Name",
    "Contacts": "Email",
    "Deals": "Deal_Name",
}
"""The system duplicate-check field of each module, which upsert matches on by default."""

DEFAULT_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "Accounts": (
        "Account_Name",
        "Website",
        "Phone",
        "Industry",
        "Employees",
        "Annual_Revenue",
        "Billing_Street",
        "Billing_City",
        "Billing_State",
        "Billing_Code",
        "Billing_Country",
        "Description",
    ),
    "Contacts": (
        "First_Name",
        "Last_Name",
        "Email",
        "Phone",
        "Mobile",
        "Title",
        "Account_Name",
        "Mailing_Street",
        "Mailing_City",
        "Mailing_State",
        "Mailing_Zip",
        "Mailing_Country",
    ),
    "Deals": (
        "Deal_Name",
        "Amount",
        "Currency",
        "Stage",
        "Pipeline",
        "Closing_Date",
        "Account_Name",
        "Contact_Name",
    ),
}
"""What a read asks for when the hub names no fields (Zoho requires ``fields`` since v3)."""


def module_for(object_type: str) -> str:
    """The Zoho module of an object type; ConnectorConfigError for one Zoho is not mapped to."""
    try:
        return MODULES[object_type]
    except KeyError:
        known = ", ".join(MODULES)
        raise ConnectorConfigError(
            f"Zoho CRM has no module configured for object type {object_type!r} (known: {known})"
        ) from None


def _lookup_id(value: Any) -> str | None:
    if isinstance(value, Mapping):
        found = value.get("id")
        return None if found is None else str(found)
    if value is None or value == "":
        return None
    return str(value)


def present(module: str, field: str, value: Any) -> Any:
    """A wire value as the hub sees it: a lookup object becomes its id (a list for many)."""
    if field in MANY_LOOKUPS.get(module, ()):
        found = _lookup_id(value[0] if isinstance(value, list) and value else value)
        return [found] if found is not None else []
    if isinstance(value, Mapping) and "id" in value:
        # Any lookup-shaped value (Owner, Created_By, custom lookups) reads as its id.
        return _lookup_id(value)
    return value


def to_wire(module: str, field: str, value: Any) -> Any:
    """A presented value as Zoho takes it: a lookup id becomes ``{"id": ...}``, or null.

    For the one-contact ``Contact_Name`` of a deal only the first id of a list is written;
    Zoho's other deal contacts are Contact Roles, which the default map does not sync.
    """
    if field in MANY_LOOKUPS.get(module, ()):
        if isinstance(value, list | tuple):
            value = value[0] if value else None
        found = _lookup_id(value)
        return {"id": found} if found is not None else None
    if field in LOOKUPS.get(module, {}):
        found = _lookup_id(value)
        return {"id": found} if found is not None else None
    return value


def format_zoho_datetime(instant: datetime, offset: timedelta = timedelta()) -> str:
    """``instant`` as Zoho writes date-times: ``2025-01-10T15:24:10+05:30`` (seconds only)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"naive datetime {instant.isoformat()}; pass an aware datetime")
    local = instant.astimezone(timezone(offset))
    return local.replace(microsecond=0).isoformat()
