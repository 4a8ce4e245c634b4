"""Apptivo's apps and wire formats, shared by the connector and its sandbox.

Public entry points: :class:`App`, :data:`APPS`, :func:`app_for`, :class:`DisplayFormats`,
:func:`flatten`, :func:`expand`, :data:`COLLECTIONS`.

Apptivo answers with nested collections (``emailAddresses``, ``phoneNumbers``, ``addresses``)
and writes every date in the account's display format and time zone. The connector shows a
record as flat vendor fields so a field map can name them: the collections' first entries
become the pseudo-fields below, named after the entry attribute they hold.

* ``emailAddress``: the first entry of ``emailAddresses``;
* ``phoneNumber``: the first phone that is not a mobile; ``mobileNumber``: the first mobile
  (``phoneTypeCode`` ``PHONE_MOBILE``);
* ``addressLine1``, ``city``, ``state``, ``zipCode``, ``countryName``: the first address.

Dates (``closeDate``) are ISO ``YYYY-MM-DD`` on the flat side, the account's date format on
the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "ADDRESS_FIELDS",
    "APPS",
    "COLLECTIONS",
    "App",
    "DisplayFormats",
    "app_for",
    "expand",
    "flatten",
]


@dataclass(frozen=True, slots=True)
class App:
    """One Apptivo app: its URL name, the parameters naming its JSON and id, its object id.

    ``attribute_param`` is how ``a=update`` names the changed attributes: ``attributeNames``,
    except on customers, which take the singular ``attributeName`` (facts 4.5).
    ``envelope`` is where ``save``/``update`` answers put the record (``None``: top level).
    """

    object_type: str
    name: str
    data_param: str
    id_param: str
    object_id: int
    attribute_param: str
    envelope: str | None
    date_fields: frozenset[str] = frozenset()


APPS: Final[dict[str, App]] = {
    app.object_type: app
    for app in (
        App("contacts", "contacts", "contactData", "contactId", 2, "attributeNames", None),
        App("companies", "customers", "customerData", "customerId", 3, "attributeName", "customer"),
        App(
            "deals",
            "opportunities",
            "opportunityData",
            "opportunityId",
            11,
            "attributeNames",
            "data",
            frozenset({"closeDate"}),
        ),
    )
}

EMAIL: Final = "emailAddress"
PHONE: Final = "phoneNumber"
MOBILE: Final = "mobileNumber"
MOBILE_CODE: Final = "PHONE_MOBILE"
ADDRESS_FIELDS: Final = ("addressLine1", "city", "state", "zipCode", "countryName")
# Flat pseudo-field -> the collection it lives in.
COLLECTIONS: Final[dict[str, str]] = {
    EMAIL: "emailAddresses",
    PHONE: "phoneNumbers",
    MOBILE: "phoneNumbers",
    **dict.fromkeys(ADDRESS_FIELDS, "addresses"),
}


def app_for(object_type: str) -> App:
    try:
        return APPS[object_type]
    except KeyError:
        raise ValueError(
            f"Apptivo has no object type {object_type!r} (known: {', '.join(sorted(APPS))})"
        ) from None


class DisplayFormats:
    """The account's display formats: ``date_format`` and ``datetime_format`` are ``strftime``
    patterns (Apptivo's ``MM/dd/yyyy`` is ``%m/%d/%Y``; ``MMM dd, yyyy hh:mm:ss a`` is
    ``%b %d, %Y %I:%M:%S %p``), ``timezone`` an IANA zone name. Raises ValueError naming the
    setting when one is unusable."""

    def __init__(self, date_format: str, datetime_format: str, timezone: str) -> None:
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone: unknown time zone {timezone!r}") from None
        self.date_format = date_format
        self.datetime_format = datetime_format
        probe = datetime(2024, 12, 31, 23, 59, 58)
        for name, pattern, exact in (
            ("date_format", date_format, False),
            ("datetime_format", datetime_format, True),
        ):
            try:
                back = self._parse(probe.strftime(pattern), pattern)
            except ValueError:
                back = None
            wanted = probe if exact else probe.replace(hour=0, minute=0, second=0)
            if (
                back is None
                or (back if exact else back.replace(hour=0, minute=0, second=0)) != wanted
            ):
                raise ValueError(
                    f"{name}: {pattern!r} does not read back what it writes (it needs the "
                    "year, month and day, and the datetime format also hours, minutes and "
                    "seconds)"
                )

    @staticmethod
    def _parse(text: str, pattern: str) -> datetime:
        return datetime.strptime(text.strip(), pattern)

    def parse_datetime(self, text: str) -> datetime:
        """A stamp such as ``Oct 07, 2017 05:44:26 PM`` in the account's zone, as aware UTC."""
        local = self._parse(text, self.datetime_format)
        return local.replace(tzinfo=self.zone).astimezone(UTC)

    def format_datetime(self, instant: datetime) -> str:
        return instant.astimezone(self.zone).strftime(self.datetime_format)

    def parse_date(self, text: str) -> date:
        return self._parse(text, self.date_format).date()

    def format_date(self, day: date) -> str:
        return day.strftime(self.date_format)


def _first(entries: Any, *, mobile: bool | None = None) -> Mapping[str, Any] | None:
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, Mapping):
            continue
        if mobile is None or (entry.get("phoneTypeCode") == MOBILE_CODE) == mobile:
            return entry
    return None


def flatten(app: App, record: Mapping[str, Any], formats: DisplayFormats) -> dict[str, Any]:
    """An Apptivo record as flat vendor fields (see the module docstring). Scalars pass as
    sent; an empty string is no value."""
    flat: dict[str, Any] = {
        name: value
        for name, value in record.items()
        if not isinstance(value, list | dict) and value not in ("", None)
    }
    for name in app.date_fields:
        if name in flat:
            flat[name] = formats.parse_date(str(flat[name])).isoformat()
    email = _first(record.get("emailAddresses"))
    if email and email.get(EMAIL):
        flat[EMAIL] = email[EMAIL]
    for name, mobile in ((PHONE, False), (MOBILE, True)):
        phone = _first(record.get("phoneNumbers"), mobile=mobile)
        if phone and phone.get(PHONE):
            flat[name] = phone[PHONE]
    address = _first(record.get("addresses"))
    for name in ADDRESS_FIELDS:
        if address and address.get(name):
            flat[name] = address[name]
    return flat


def expand(
    app: App,
    fields: Mapping[str, Any],
    formats: DisplayFormats,
    current: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Flat vendor fields as Apptivo JSON: scalars as they are, pseudo-fields folded into
    their collections. ``current`` is the stored record an update changes: its collections
    are kept with only the named entries changed (``None`` removes an entry)."""
    current = current or {}
    data: dict[str, Any] = {}
    for name, value in fields.items():
        if name in COLLECTIONS:
            continue
        if name in app.date_fields and value not in (None, ""):
            value = formats.format_date(date.fromisoformat(str(value)))
        data[name] = "" if value is None else value
    touched = {COLLECTIONS[name] for name in fields if name in COLLECTIONS}
    if "emailAddresses" in touched:
        kept = [dict(e) for e in current.get("emailAddresses") or [] if isinstance(e, Mapping)]
        data["emailAddresses"] = _replace_first(
            kept, None, EMAIL, fields[EMAIL], {"emailTypeCode": "BUSINESS", "emailType": "Business"}
        )
    if "phoneNumbers" in touched:
        phones = [dict(e) for e in current.get("phoneNumbers") or [] if isinstance(e, Mapping)]
        for name, mobile, kind in (
            (PHONE, False, {"phoneTypeCode": "PHONE_BUSINESS", "phoneType": "Business"}),
            (MOBILE, True, {"phoneTypeCode": MOBILE_CODE, "phoneType": "Mobile"}),
        ):
            if name in fields:
                phones = _replace_first(phones, mobile, PHONE, fields[name], kind)
        data["phoneNumbers"] = phones
    if "addresses" in touched:
        addresses = [dict(e) for e in current.get("addresses") or [] if isinstance(e, Mapping)]
        first = addresses[0] if addresses else {"addressTypeCode": "1", "addressType": "Billing"}
        for name in ADDRESS_FIELDS:
            if name in fields:
                first[name] = "" if fields[name] is None else str(fields[name])
        filled = any(first.get(name) for name in ADDRESS_FIELDS)
        data["addresses"] = ([first] if filled else []) + addresses[1:]
    return data


def _replace_first(
    entries: list[dict[str, Any]],
    mobile: bool | None,
    key: str,
    value: Any,
    kind: Mapping[str, str],
) -> list[dict[str, Any]]:
    """``entries`` with the first matching entry's ``key`` set to ``value`` (added when there
    is none, removed when ``value`` is None or empty)."""
    for index, entry in enumerate(entries):
        if mobile is None or (entry.get("phoneTypeCode") == MOBILE_CODE) == mobile:
            if value in (None, ""):
                return entries[:index] + entries[index + 1 :]
            return [*entries[:index], {**entry, key: str(value)}, *entries[index + 1 :]]
    if value in (None, ""):
        return entries
    return [*entries, {key: str(value), **kind}]
