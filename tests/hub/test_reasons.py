"""The reasons a dead letter gives: a person reads the record, field, value and fix in one line."""

from __future__ import annotations

from typing import Literal

from connectors.errors import RecordRejected
from hub import reasons
from hub.planning import Write
from mappings.errors import MappingError
from mappings.fieldmap import load_default_map

ZOHO = load_default_map("zoho")


def write(kind: Literal["create", "update", "delete"] = "create", **payload: object) -> Write:
    return Write("c0ffee", "zoho", kind, dict(payload), {}, "", {})


def test_a_refused_long_value_is_cut_and_its_length_and_canonical_field_named() -> None:
    refusal = RecordRejected(
        "INVALID_DATA: invalid data (maximum_length=40, api_name=First_Name)",
        code="INVALID_DATA",
        field="First_Name",
    )

    text = reasons.refused(
        "zoho", "contacts", write(First_Name="X" * 5000), {"hubspot": "101"}, refusal, ZOHO
    )

    assert text.startswith("zoho refused to create contacts c0ffee (hubspot 101): First_Name 'XXX")
    assert "(5,000 characters): INVALID_DATA: invalid data (maximum_length=40" in text
    assert text.endswith(
        "correct first_name where it came from; the next run after the fix writes it"
    )
    assert len(text) < 400


def test_a_vendor_message_quoting_a_huge_value_back_is_cut_too() -> None:
    refusal = RecordRejected(f"Email address {'y' * 5000}@x is invalid", field="Email")

    text = reasons.refused("zoho", "contacts", write(), {}, refusal, ZOHO)

    assert len(text) < 500
    assert "..." in text


def test_an_unmapped_stage_names_the_key_to_map_it_at_for_that_system() -> None:
    error = MappingError(
        "deals",
        "stage",
        "Awaiting Legal",
        "is not among the vendor values",
        vendor_field="Stage",
        map_key="deals.fields.stage.values",
    )

    read = reasons.unmappable("zoho", "deals", "649", error)
    written = reasons.unwritable("hubspot", "deals", "c0ffee", {"zoho": "649"}, error)

    assert read.startswith("zoho deals 649: deals.stage: 'Awaiting Legal' (vendor field 'Stage')")
    assert read.endswith("(systems.zoho.map.deals.fields.stage.values in crmhub.yaml)")
    assert written.startswith("cannot write deals c0ffee (zoho 649) to hubspot: deals.stage:")
    assert written.endswith("(systems.hubspot.map.deals.fields.stage.values in crmhub.yaml)")


def test_a_bad_value_says_to_correct_it_in_the_vendor_and_a_refused_delete_only_why() -> None:
    error = MappingError(
        "contacts", "email", "bob@@x", "is not a valid email address.", vendor_field="Email"
    )
    gone = RecordRejected("INVALID_DATA: the id given seems to be invalid", field="id")

    assert reasons.unmappable("zoho", "contacts", "7", error) == (
        "zoho contacts 7: contacts.email: 'bob@@x' (vendor field 'Email') is not a valid email "
        "address; correct it in zoho: the next run reads it again"
    )
    assert reasons.refused("zoho", "contacts", write("delete"), {}, gone, ZOHO) == (
        "zoho refused to delete contacts c0ffee: INVALID_DATA: the id given seems to be invalid"
    )
