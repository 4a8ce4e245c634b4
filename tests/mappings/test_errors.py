"""Error messages: one line a person understands, naming where and what."""

from __future__ import annotations

import pickle

from mappings.errors import FieldMapError, MappingError, NormalizeError, show_value


def test_mapping_error_message_names_object_field_value_vendor_field_and_reason():
    error = MappingError(
        "contacts",
        "email",
        "bob@@example",
        "is not a valid email address: it must have exactly one @-sign.",
        vendor_field="email",
    )
    assert str(error) == (
        "contacts.email: 'bob@@example' (vendor field 'email') is not a valid email address: "
        "it must have exactly one @-sign."
    )
    assert isinstance(error, ValueError)


def test_mapping_error_without_value_or_field():
    assert str(MappingError("deals", "name", None, "is required")) == "deals.name: is required"
    assert str(MappingError("contacts", None, None, "a contact needs a name")) == (
        "contacts: a contact needs a name"
    )


def test_mapping_error_stays_on_one_line_and_short():
    error = MappingError("companies", "description", "x\n" * 200, "is bad\nreally\n\nbad")
    message = str(error)
    assert "\n" not in message
    assert len(message) < 160
    assert message.endswith("is bad really bad")


def test_with_vendor_field_returns_an_equivalent_error_naming_it():
    error = MappingError("deals", "amount", "abc", "is not a number", more=2)
    named = error.with_vendor_field("amount_usd")
    assert named.vendor_field == "amount_usd"
    assert str(named) == (
        "deals.amount: 'abc' (vendor field 'amount_usd') is not a number (and 2 more problems)"
    )
    assert error.with_vendor_field(None) is error


def test_errors_pickle_with_their_attributes():
    for error in (
        MappingError("deals", "amount", "abc", "is not a number", vendor_field="amt", more=1),
        MappingError("deals", "stage", "x", "is not listed", map_key="deals.fields.stage.values"),
        FieldMapError("memory.yaml", "objects.deals", "is wrong"),
        NormalizeError("abc", "is not a number"),
        NormalizeError("x", "is not listed", map_key="deals.fields.stage.values"),
    ):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert copy.__dict__ == error.__dict__


def test_field_map_error_message():
    error = FieldMapError("memory.yaml", "objects.deals.fields.stage.prefer.won", "not listed")
    assert str(error) == "memory.yaml: objects.deals.fields.stage.prefer.won: not listed"
    assert str(FieldMapError("config", "", "is empty")) == "config: is empty"


def test_show_value_truncates_long_values_keeping_the_quote():
    shown = show_value("a" * 500)
    assert len(shown) == 80
    assert shown.startswith("'aaa")
    assert shown.endswith("...'")
    assert show_value(12) == "12"
