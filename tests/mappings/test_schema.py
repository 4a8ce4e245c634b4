"""The canonical schema: flat records, blank handling, canonical forms, errors, content hash."""

from __future__ import annotations

import hashlib
import json
import pickle
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mappings.errors import MappingError
from mappings.schema import (
    DEAL_STAGES,
    MODELS,
    MULTI_REFERENCE_FIELDS,
    OBJECT_TYPES,
    REFERENCE_FIELDS,
    Contact,
    Deal,
    canonical_fields,
    content_hash,
    flatten,
    is_canonical_field,
    normalized_by,
    unflatten,
    validate_flat,
)


def test_object_types_in_dependency_order_with_a_model_each():
    assert OBJECT_TYPES == ("companies", "contacts", "deals")
    assert set(MODELS) == set(OBJECT_TYPES)
    assert REFERENCE_FIELDS["deals"] == {"company": "companies", "contacts": "contacts"}
    assert ("deals", "contacts") in MULTI_REFERENCE_FIELDS
    assert "closed_won" in DEAL_STAGES


def test_canonical_fields_are_dotted_and_exclude_custom():
    fields = canonical_fields("contacts")
    assert {"email", "company", "address.country", "address.street"} <= fields
    assert "address" not in fields
    assert not any(f.startswith("custom") for f in fields)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("email", True),
        ("address.city", True),
        ("custom.segment", True),
        ("custom.Lead_Source2", True),
        ("custom.", False),
        ("custom.has-dash", False),
        ("custom.a.b", False),
        ("address", False),
        ("emial", False),
    ],
)
def test_is_canonical_field(name, expected):
    assert is_canonical_field("contacts", name) is expected


def test_is_canonical_field_of_unknown_object_type_is_false():
    assert not is_canonical_field("notes", "email")


# -- normalization through validate_flat --------------------------------------------------------


def test_validate_flat_normalizes_every_kind_of_field():
    flat = validate_flat(
        "companies",
        {
            "name": "  ACME, Inc. ",
            "domain": "https://www.Acme.com/about",
            "website": "acme.com",
            "phone": "(415) 555-0100",
            "employees": "1,200",
            "annual_revenue": 1234567.5,
            "address.street": "1 Main St\r\nFloor 2",
            "address.country": "United States",
            "custom.tier": " gold ",
            "custom.score": 3.0,
            "custom.active": True,
        },
    )
    assert flat == {
        "name": "ACME, Inc.",
        "domain": "acme.com",
        "website": "https://acme.com",
        "phone": "+14155550100",
        "employees": 1200,
        "annual_revenue": "1234567.5",
        "address.street": "1 Main St\nFloor 2",
        "address.country": "US",
        "custom.tier": "gold",
        "custom.score": 3,
        "custom.active": True,
    }


def test_validate_flat_uses_the_default_region_for_national_phone_numbers():
    flat = validate_flat(
        "contacts", {"email": "a@b.com", "phone": "030 1234567"}, default_region="DE"
    )
    assert flat["phone"] == "+49301234567"


def test_normalized_fields_are_taken_as_given_and_the_others_still_normalized():
    flat = validate_flat(
        "contacts",
        {"first_name": "Ann", "email": " A@B.com ", "phone": "030 1234567"},
        default_region="DE",
        normalized={"first_name"},
    )
    assert flat == {"first_name": "Ann", "email": "a@b.com", "phone": "+49301234567"}


def test_normalized_by_names_the_schema_own_normalizer_only():
    from mappings.normalize import normalize_date, normalize_phone, normalize_text

    assert normalized_by("contacts", "first_name", normalize_text)
    assert normalized_by("companies", "name", normalize_text)  # required text
    assert normalized_by("contacts", "custom.segment", normalize_text)
    assert normalized_by("deals", "close_date", normalize_date)
    assert not normalized_by("contacts", "email", normalize_text)
    assert not normalized_by("contacts", "phone", normalize_phone)  # depends on the region
    assert not normalized_by("contacts", "custom.bad key", normalize_text)
    assert not normalized_by("contacts", "no_such_field", normalize_text)


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("1234.50", "1234.5"),
        (Decimal("1E+3"), "1000"),
        (0, "0"),
        ("0.000", "0"),
        (1e-7, "0.0000001"),
    ],
)
def test_decimals_are_plain_canonical_text(amount, expected):
    assert validate_flat("deals", {"name": "D", "amount": amount})["amount"] == expected


def test_deal_contacts_are_sorted_and_deduplicated_and_dates_iso():
    flat = validate_flat(
        "deals",
        {
            "name": "Renewal",
            "contacts": ["c9", "c10", "c9", " ", 7],
            "close_date": date(2024, 6, 30),
            "currency": "eur",
        },
    )
    assert flat["contacts"] == ["7", "c10", "c9"]
    assert flat["close_date"] == "2024-06-30"
    assert flat["currency"] == "EUR"


def test_stage_is_free_text():
    assert (
        validate_flat("deals", {"name": "D", "stage": " Legal review "})["stage"] == "Legal review"
    )


def test_blank_means_absent():
    with_blanks = validate_flat(
        "contacts",
        {
            "email": "a@b.com",
            "phone": None,
            "first_name": "   ",
            "address.city": "",
            "custom.segment": None,
            "company": "",
        },
    )
    assert with_blanks == validate_flat("contacts", {"email": "a@b.com"}) == {"email": "a@b.com"}
    assert validate_flat("deals", {"name": "D", "contacts": []}) == {"name": "D"}


def test_validate_flat_is_idempotent():
    once = validate_flat(
        "contacts",
        {"first_name": "Ana", "email": "Ana@X.com", "phone": "+1 415 555 0100 x 3"},
    )
    assert validate_flat("contacts", once) == once


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record",
    [{}, {"phone": "+14155550100"}, {"first_name": "  ", "email": None}, {"job_title": "CEO"}],
)
def test_contact_needs_a_name_or_an_email(record):
    with pytest.raises(MappingError, match="needs at least one of first_name, last_name or email"):
        validate_flat("contacts", record)


@pytest.mark.parametrize("record", [{"first_name": "Ada"}, {"last_name": "L"}, {"email": "a@b.io"}])
def test_one_of_name_or_email_is_enough(record):
    assert validate_flat("contacts", record)


@pytest.mark.parametrize("object_type", ["companies", "deals"])
@pytest.mark.parametrize("record", [{}, {"name": ""}, {"name": None}])
def test_name_is_required_for_companies_and_deals(object_type, record):
    with pytest.raises(MappingError) as info:
        validate_flat(object_type, record)
    assert info.value.field == "name"
    assert str(info.value).startswith(f"{object_type}.name")
    assert "is required" in str(info.value)


def test_error_names_field_value_and_reason_on_one_line():
    with pytest.raises(MappingError) as info:
        validate_flat("contacts", {"first_name": "Bob", "email": "bob@@example"})
    error = info.value
    assert (error.object_type, error.field, error.value) == ("contacts", "email", "bob@@example")
    assert str(error).startswith("contacts.email: 'bob@@example' is not a valid email address: ")
    assert "\n" not in str(error)


def test_error_counts_further_problems():
    with pytest.raises(MappingError) as info:
        validate_flat("deals", {"name": "D", "amount": "lots", "currency": "dollars"})
    assert info.value.field == "amount"
    assert str(info.value).endswith("(and 1 more problem)")


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"email": "a@b.com", "fax": "1"}, "fax"),
        ({"email": "a@b.com", "address.planet": "Mars"}, "address.planet"),
        ({"email": "a@b.com", "custom.bad-name": "x"}, "custom.bad-name"),
    ],
)
def test_unknown_fields_are_rejected(record, field):
    with pytest.raises(MappingError, match="is not a canonical field of contacts") as info:
        validate_flat("contacts", record)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"name": "A", "employees": -3}, "employees"),
        ({"name": "A", "employees": 2.5}, "employees"),
        ({"name": "A", "address.country": "Atlantis"}, "address.country"),
        ({"name": "A", "domain": "not a domain"}, "domain"),
        ({"name": "A", "custom.tags": ["a", "b"]}, "custom.tags"),
        ({"name": "A", "custom.weight": float("nan")}, "custom.weight"),
    ],
)
def test_invalid_values_name_their_field(record, field):
    with pytest.raises(MappingError) as info:
        validate_flat("companies", record)
    assert info.value.field == field
    assert str(info.value).startswith(f"companies.{field}: ")


def test_unknown_object_type():
    with pytest.raises(MappingError, match="notes: is not an object type"):
        validate_flat("notes", {})


def test_mapping_error_survives_pickling_for_celery_workers():
    with pytest.raises(MappingError) as info:
        validate_flat("contacts", {"email": "nope"})
    copy = pickle.loads(pickle.dumps(info.value))
    assert str(copy) == str(info.value)
    assert (copy.field, copy.value, copy.reason) == ("email", "nope", info.value.reason)


# -- the models agree with validate_flat --------------------------------------------------------


def test_models_normalize_with_the_phone_region_from_context():
    contact = Contact.model_validate(
        {"first_name": " Ada ", "phone": "030 1234567", "address": {"country": "Germany"}},
        context={"default_region": "DE"},
    )
    assert contact.first_name == "Ada"
    assert contact.phone == "+49301234567"
    assert contact.address is not None
    assert contact.address.country == "DE"


def test_models_enforce_the_same_rules():
    with pytest.raises(ValidationError, match="needs at least one of"):
        Contact.model_validate({"phone": "1"})
    with pytest.raises(ValidationError):
        Deal.model_validate({"name": "D", "currency": "ZZZ"})
    deal = Deal.model_validate({"name": "D", "amount": "1,000.10", "contacts": ["b", "a"]})
    assert deal.amount == Decimal("1000.10")
    assert deal.contacts == ["a", "b"]


_values = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.integers(-5, 10**6),
    st.sampled_from(
        [
            "Bob@Example.com",
            "+1 415 555 0100",
            "germany",
            "UK",
            "1,234.50",
            "2024-02-29",
            "1709251200000",
            "https://Acme.com/",
            "usd",
        ]
    ),
)


@pytest.mark.parametrize("object_type", OBJECT_TYPES)
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_validate_flat_matches_validating_the_model(object_type, data):
    """The fast flat path and the pydantic models must agree on values and on failure."""
    keys = st.sampled_from([*sorted(canonical_fields(object_type)), "custom.x"])
    flat = data.draw(st.dictionaries(keys, _values, max_size=8))
    model = MODELS[object_type]
    try:
        expected = flatten(
            model.model_validate(unflatten(object_type, flat), context={"default_region": "US"})
        )
    except ValidationError:
        with pytest.raises(MappingError):
            validate_flat(object_type, flat)
    else:
        assert validate_flat(object_type, flat) == expected


# -- content hash -------------------------------------------------------------------------------


def test_content_hash_ignores_key_order_and_blanks():
    a = {"first_name": "Ada", "email": "ada@x.com", "contacts": ["1", "2"]}
    b = {"contacts": ["2", "1"], "phone": None, "email": "ada@x.com", "first_name": "Ada", "x": ""}
    assert content_hash(a) == content_hash(b)
    assert content_hash({}) == content_hash({"phone": None, "tags": []})


def test_content_hash_changes_with_any_value_or_type():
    base = {"name": "Acme", "employees": 10, "custom.vip": True}
    seen = {content_hash(base)}
    for changed in (
        {**base, "name": "Acme!"},
        {**base, "employees": 11},
        {**base, "employees": "10"},
        {**base, "custom.vip": False},
        {**base, "custom.vip": 1},
        {**base, "domain": "acme.com"},
        {"name": "Acme", "employees": 10},
    ):
        seen.add(content_hash(changed))
    assert len(seen) == 8


def test_content_hash_is_a_fixed_function_of_the_record():
    # Hashes are stored in links: a change of algorithm would make every record look changed
    # (and be rewritten) after an upgrade, so the exact value is pinned.
    record = {"email": "ada@x.com", "first_name": "Ada", "contacts": ["1", "2"], "employees": 3}
    assert content_hash({**record, "custom.vip": True}) == "4b2e37a5c3d3fa49618425b436945e54"


_text = st.text(st.characters(), max_size=10)  # lone surrogates included


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.text(max_size=8),
        st.one_of(
            _text,
            st.integers(),  # past 64 bits too
            st.booleans(),
            st.floats(allow_nan=False),
            st.lists(_text, max_size=3),
        ),
        max_size=6,
    )
)
def test_content_hash_is_blake2b_of_sorted_compact_json_whatever_the_values(record):
    # The fast encoder must write exactly what json does, or stored hashes would all change.
    cleaned = {
        k: sorted(v) if isinstance(v, list) else v
        for k, v in record.items()
        if v not in (None, "", [])
    }
    text = json.dumps(cleaned, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    expected = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16)
    assert content_hash(record) == expected.hexdigest()


def test_content_hash_accepts_decimals_and_dates_as_their_canonical_text():
    assert content_hash(
        {"amount": Decimal("10.50"), "close_date": date(2024, 1, 2)}
    ) == content_hash({"amount": "10.5", "close_date": "2024-01-02"})
