"""parse_vendor_datetime and friends over the formats the vendors really send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from connectors.timeparse import format_iso_utc, parse_vendor_datetime, to_epoch_ms


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # HubSpot: ISO with milliseconds and Z, and ms-epoch strings.
        ("2025-11-03T23:36:13.632Z", datetime(2025, 11, 3, 23, 36, 13, 632000, tzinfo=UTC)),
        ("1762212973632", datetime(2025, 11, 3, 23, 36, 13, 632000, tzinfo=UTC)),
        (1762212973632, datetime(2025, 11, 3, 23, 36, 13, 632000, tzinfo=UTC)),
        ("2024-02-28T00:00:00Z", datetime(2024, 2, 28, tzinfo=UTC)),
        # Zoho and Bitrix24: offsets, seconds precision.
        ("2019-05-02T11:17:33+05:30", datetime(2019, 5, 2, 5, 47, 33, tzinfo=UTC)),
        ("2023-05-10T01:10:47-07:00", datetime(2023, 5, 10, 8, 10, 47, tzinfo=UTC)),
        ("2022-05-21T12:18:35+03:00", datetime(2022, 5, 21, 9, 18, 35, tzinfo=UTC)),
        # Insightly and SuiteCRM DB format: naive, UTC.
        ("2018-04-12 18:01:13", datetime(2018, 4, 12, 18, 1, 13, tzinfo=UTC)),
        ("2024-01-02T03:04:05+00:00", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        # Epoch seconds.
        (1700000000, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        ("1700000000", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        (1700000000.5, datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=UTC)),
        # Padding and date-only.
        ("  2024-01-02T03:04:05Z ", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02", datetime(2024, 1, 2, tzinfo=UTC)),
    ],
)
def test_parse_vendor_datetime(value: str | int | float, expected: datetime) -> None:
    parsed = parse_vendor_datetime(value)
    assert parsed == expected
    assert parsed.tzinfo is UTC


def test_datetimes_pass_through_as_utc() -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    assert parse_vendor_datetime(datetime(2024, 1, 1, 5, 30, tzinfo=ist)) == datetime(
        2024, 1, 1, tzinfo=UTC
    )
    assert parse_vendor_datetime(datetime(2024, 1, 1)).tzinfo is UTC


@pytest.mark.parametrize(
    "value", ["", "yesterday", "0000-00-00 00:00:00", "2024-13-01", "12:30", True, float("nan")]
)
def test_garbage_is_a_value_error_quoting_the_value(value: object) -> None:
    with pytest.raises(ValueError, match="not a date-time") as raised:
        parse_vendor_datetime(value)  # type: ignore[arg-type]
    assert repr(value) in str(raised.value)


def test_absurd_epoch_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_vendor_datetime("9" * 30)


def test_format_iso_utc() -> None:
    dt = datetime(2024, 1, 2, 8, 34, 5, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert format_iso_utc(dt) == "2024-01-02T03:04:05Z"
    assert format_iso_utc(dt, milliseconds=True) == "2024-01-02T03:04:05.123Z"
    with pytest.raises(ValueError, match="naive"):
        format_iso_utc(datetime(2024, 1, 2))


def test_to_epoch_ms_round_trips_hubspot_values() -> None:
    assert to_epoch_ms(parse_vendor_datetime("1762212973632")) == 1762212973632
    assert to_epoch_ms(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    with pytest.raises(ValueError, match="naive"):
        to_epoch_ms(datetime(2024, 1, 2))
