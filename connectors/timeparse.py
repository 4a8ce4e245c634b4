"""Vendor date-times in, aware UTC date-times out.

Public entry points: :func:`parse_vendor_datetime`, :func:`format_iso_utc`, :func:`to_epoch_ms`.

Vendors disagree on how to write an instant: HubSpot sends ISO 8601 with milliseconds and ``Z``
and some properties as epoch-millisecond strings; Zoho and Bitrix24 send offsets in the user's or
the portal's time zone (``+05:30``); Insightly sends ``YYYY-MM-DD HH:MM:SS`` in UTC with no zone.
Everything the hub compares is an aware UTC ``datetime``, so connectors parse through here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DIGITS = re.compile(r"-?\d+")
# Epoch values at or above this are milliseconds: as seconds they would be past the year 5000,
# as milliseconds they are after March 1973, before any CRM record we will meet.
_MS_THRESHOLD = 100_000_000_000
_QUOTE_LIMIT = 80


def _quote(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _QUOTE_LIMIT else text[: _QUOTE_LIMIT - 3] + "..."


def _from_epoch(number: int | float, original: object) -> datetime:
    try:
        if abs(number) >= _MS_THRESHOLD:
            return _EPOCH + timedelta(milliseconds=number)
        return _EPOCH + timedelta(seconds=number)
    except OverflowError:
        raise ValueError(f"epoch value out of range: {_quote(original)}") from None


def parse_vendor_datetime(value: str | int | float | datetime) -> datetime:
    """The instant ``value`` names, as an aware ``datetime`` in UTC.

    Accepts ISO 8601 with ``Z`` or an offset, with or without fractional seconds, with ``T`` or a
    space between date and time; epoch milliseconds or seconds as a number or a digit string
    (told apart by magnitude); a ``datetime``. Values without a zone are taken as UTC. Anything
    else raises ``ValueError`` quoting the value.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, bool):
        # bool is an int subclass; True is not 1970-01-01T00:00:01.
        raise ValueError(f"not a date-time: {_quote(value)}")
    elif isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"not a date-time: {_quote(value)}")
        return _from_epoch(value, value)
    elif isinstance(value, str):
        text = value.strip()
        if _DIGITS.fullmatch(text):
            return _from_epoch(int(text), value)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not a date-time: {_quote(value)}") from None
    else:
        raise ValueError(f"not a date-time: {_quote(value)}")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _require_aware(dt: datetime) -> datetime:
    # A naive datetime here is a bug on our side (datetime.now() without tz is local time);
    # guessing UTC would shift every cursor by the machine's offset.
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt.isoformat()}; pass an aware datetime")
    return dt.astimezone(UTC)


def format_iso_utc(dt: datetime, *, milliseconds: bool = False) -> str:
    """``dt`` as ``2024-01-02T03:04:05Z`` (or ``...05.123Z`` with ``milliseconds``).

    Without ``milliseconds`` the fraction is dropped (truncated, so a ``>=`` filter built from it
    reads a little more, never less).
    """
    utc = _require_aware(dt)
    timespec = "milliseconds" if milliseconds else "seconds"
    return utc.replace(tzinfo=None).isoformat(timespec=timespec) + "Z"


def to_epoch_ms(dt: datetime) -> int:
    """Milliseconds since the Unix epoch, truncated; HubSpot's filter and property format."""
    return (_require_aware(dt) - _EPOCH) // timedelta(milliseconds=1)
