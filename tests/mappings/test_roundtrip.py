"""Round trip: a canonical record written to a vendor and read back comes back unchanged.

Without this property two-way sync never converges: every read of our own write would look
like a change. For any valid flat canonical record restricted to the fields a map both reads
and writes, ``to_canonical(to_vendor(x)) == x``.
"""

from __future__ import annotations

import string
from typing import Any

import pycountry
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from mappings.errors import MappingError
from mappings.fieldmap import FieldMap, load_default_map
from mappings.schema import content_hash, validate_flat

_texts = st.text(max_size=24)
_names = st.text(string.ascii_letters + " .,&'-", min_size=1, max_size=24)
_ids = st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=12)
_labels = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=10)
_domains = st.builds(
    lambda a, b, tld: f"{a}.{b}.{tld}",
    _labels,
    _labels,
    st.sampled_from(["com", "de", "io", "co.uk"]),
)
_emails = st.builds(lambda local, domain: f"{local}@{domain}", _labels, _domains)
_phones = st.one_of(
    st.builds(lambda n: f"+1 415 {n // 10000:03d} {n % 10000:04d}", st.integers(2000000, 9999999)),
    st.text("0123456789 +()-", max_size=16),
    st.sampled_from(["ask reception", "+44 20 7946 0018 ext. 7", "0049 30 1234567"]),
)
_countries = st.sampled_from(sorted(c.alpha_2 for c in pycountry.countries))
_decimals = st.one_of(
    st.decimals(min_value=-(10**12), max_value=10**12, places=4, allow_nan=False),
    st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
    st.integers(-(10**12), 10**12),
)
_dates = st.dates()
_street = st.lists(_texts, max_size=3).map("\n".join)


def _record(
    fields: dict[str, st.SearchStrategy[Any]], required: tuple[str, ...] = ()
) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {k: v for k, v in fields.items() if k in required},
        optional={k: v for k, v in fields.items() if k not in required},
    )


_ADDRESS = {
    "address.street": _street,
    "address.city": _texts,
    "address.region": _texts,
    "address.postal_code": _texts,
    "address.country": _countries,
}
_RECORDS = {
    "companies": _record(
        {
            "name": _names,
            "domain": _domains,
            "website": _domains.map(lambda d: f"https://www.{d}/about"),
            "phone": _phones,
            "industry": _texts,
            "employees": st.integers(0, 10**7),
            "annual_revenue": _decimals,
            "description": _texts,
            **_ADDRESS,
        },
        required=("name",),
    ),
    "contacts": _record(
        {
            "first_name": _texts,
            "last_name": _texts,
            "email": _emails,
            "phone": _phones,
            "mobile": _phones,
            "job_title": _texts,
            "company": _ids,
            **_ADDRESS,
        }
    ),
    "deals": _record(
        {
            "name": _names,
            "amount": _decimals,
            "currency": st.sampled_from(["USD", "eur", "JPY", "gbp"]),
            # Stages the memory map can write; others are refused (tested in test_fieldmap).
            "stage": st.sampled_from(
                ["qualification", "proposal", "negotiation", "closed_won", "closed_lost"]
            ),
            "close_date": _dates,
            "pipeline": _texts,
            "company": _ids,
            "contacts": st.lists(_ids, max_size=4),
        },
        required=("name",),
    ),
}


def _canonical(object_type: str, raw: dict[str, Any], fm: FieldMap) -> dict[str, Any]:
    try:
        flat = validate_flat(object_type, raw)
    except MappingError:
        reject()
    both = fm.canonical_fields(object_type) & fm.writable_fields(object_type)
    return {k: v for k, v in flat.items() if k in both}


def _assert_round_trip(fm: FieldMap, object_type: str, flat: dict[str, Any]) -> None:
    vendor = fm.to_vendor(object_type, flat)
    try:
        back = fm.to_canonical(object_type, vendor)
    except MappingError:
        # A record that lost its required fields to the restriction cannot be read back;
        # that is the record's fault, not the map's.
        reject()
    assert back == flat
    assert content_hash(back) == content_hash(flat)


@pytest.mark.parametrize("object_type", ["companies", "contacts", "deals"])
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_memory_map_round_trips(object_type, data):
    fm = load_default_map("memory")
    flat = _canonical(object_type, data.draw(_RECORDS[object_type]), fm)
    _assert_round_trip(fm, object_type, flat)


_NESTED_MAP = FieldMap.from_dict(
    {
        "vendor": "nested",
        "objects": {
            "contacts": {
                "fields": {
                    "first_name": "props.name.first",
                    "last_name": "props.name.last",
                    "email": "props.email",
                    "address.street": {"field": "props.addr.lines", "transform": "lines"},
                    "address.country": {
                        "field": "props.addr.country",
                        "values": {"Deutschland": "DE", "Germany": "DE", "Frankreich": "FR"},
                        "prefer": {"DE": "Germany"},
                        "unknown": "keep",
                    },
                    "custom.vip": {"field": "vip", "transform": "bool"},
                    "custom.score": {"field": "score", "transform": "number"},
                    "custom.since": {"field": "since_ms", "transform": "epoch_ms_date"},
                    "custom.segment": "segment",
                    "job_title": {"field": "title", "direction": "read"},
                }
            }
        },
    },
    source="nested.yaml",
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    _record(
        {
            "first_name": _texts,
            "last_name": _texts,
            "email": _emails,
            "address.street": _street,
            "address.country": st.one_of(_countries, st.sampled_from(["DE", "FR"])),
            "custom.vip": st.booleans(),
            "custom.score": st.one_of(
                st.integers(-(10**9), 10**9), st.floats(-1e9, 1e9, allow_nan=False)
            ),
            "custom.since": _dates.map(lambda d: d.isoformat()),
            "custom.segment": _texts,
            "job_title": _texts,
        }
    )
)
def test_nested_paths_value_maps_and_typed_custom_fields_round_trip(raw):
    flat = _canonical("contacts", raw, _NESTED_MAP)
    assert "job_title" not in flat  # read-only: outside the property
    _assert_round_trip(_NESTED_MAP, "contacts", flat)


@pytest.mark.parametrize(
    ("object_type", "flat"),
    [
        ("deals", {"name": "D", "stage": "qualification", "contacts": ["b", "a"]}),
        ("deals", {"name": "D", "amount": "0.1", "close_date": "2024-02-29", "currency": "EUR"}),
        ("companies", {"name": "Acme", "employees": 0, "annual_revenue": "-12.5"}),
        (
            "contacts",
            {"email": "a@b.com", "phone": "+14155550100;ext=12", "address.street": "a\nb"},
        ),
        ("contacts", {"first_name": "Ada", "phone": "ask reception", "address.country": "NO"}),
    ],
)
def test_round_trip_table(object_type, flat):
    fm = load_default_map("memory")
    expected = validate_flat(object_type, flat)
    assert fm.to_canonical(object_type, fm.to_vendor(object_type, expected)) == expected
