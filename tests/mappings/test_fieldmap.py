"""The field-map engine: both directions, value maps, references, overrides, bad maps."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from mappings.errors import FieldMapError, MappingError
from mappings.fieldmap import FieldMap, default_map_vendors, load_default_map


@pytest.fixture(scope="module")
def memory() -> FieldMap:
    return load_default_map("memory")


def make_map(objects: dict[str, Any], source: str = "test.yaml") -> FieldMap:
    return FieldMap.from_dict({"vendor": "acme", "objects": objects}, source=source)


def deal_stage_map(**stage: Any) -> FieldMap:
    """A deals map whose stage lists won and open, plus (merged) whatever ``stage`` adds."""
    values: Any = {"won": "closed_won", "open": "qualification"}
    extra = stage.pop("values", {})
    values = {**values, **extra} if isinstance(extra, dict) else extra
    spec = {"field": "dealstage", "values": values, **stage}
    return make_map({"deals": {"fields": {"name": "dealname", "stage": spec}}})


# -- the default memory map ---------------------------------------------------------------------


def test_memory_map_is_listed_and_covers_every_object_type(memory):
    assert "memory" in default_map_vendors()
    assert memory.vendor == "memory"
    assert memory.object_types == {"companies", "contacts", "deals"}
    assert load_default_map("memory") is memory  # cached: maps are immutable


def test_memory_map_introspection(memory):
    assert memory.vendor_fields("contacts") == [
        "firstname",
        "lastname",
        "email",
        "phone",
        "mobilephone",
        "jobtitle",
        "company_id",
        "address",
        "city",
        "state",
        "zip",
        "country",
    ]
    assert memory.reference_fields("deals") == {"company": "companies", "contacts": "contacts"}
    assert memory.reference_fields("companies") == {}
    assert "address.region" in memory.canonical_fields("companies")
    assert memory.vendor_field("companies", "employees") == "numberofemployees"
    assert memory.vendor_field("companies", "custom.nothing") is None


def test_contact_to_canonical_renames_and_normalizes(memory):
    flat = memory.to_canonical(
        "contacts",
        {
            "firstname": " Ada ",
            "lastname": "Lovelace",
            "email": "ADA@Example.com",
            "phone": "(415) 555-0100",
            "mobilephone": "",
            "company_id": 12,
            "address": "1 Main St\r\nSuite 2",
            "country": "United Kingdom",
            "hs_unrelated": "ignored",
        },
    )
    assert flat == {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "phone": "+14155550100",
        "company": "12",
        "address.street": "1 Main St\nSuite 2",
        "address.country": "GB",
    }


def test_default_region_reaches_phone_numbers(memory):
    flat = memory.to_canonical(
        "contacts", {"email": "a@b.de", "phone": "030 1234567"}, default_region="DE"
    )
    assert flat["phone"] == "+49301234567"


def test_company_typed_fields(memory):
    flat = memory.to_canonical(
        "companies",
        {"name": "Acme", "numberofemployees": "1,200", "annualrevenue": 1500000.0},
    )
    assert flat == {"name": "Acme", "employees": 1200, "annual_revenue": "1500000"}
    vendor = memory.to_vendor("companies", flat, ["employees", "annual_revenue"])
    assert vendor == {"numberofemployees": 1200, "annualrevenue": "1500000"}


def test_to_vendor_writes_every_writable_field_and_clears_absent_ones(memory):
    vendor = memory.to_vendor("contacts", {"first_name": "Ada", "email": "ada@x.com"})
    assert vendor["firstname"] == "Ada"
    assert vendor["email"] == "ada@x.com"
    assert vendor["lastname"] is None
    assert set(vendor) == {
        "firstname",
        "lastname",
        "email",
        "phone",
        "mobilephone",
        "jobtitle",
        "company_id",
        "address",
        "city",
        "state",
        "zip",
        "country",
    }


def test_to_vendor_with_fields_writes_only_those(memory):
    vendor = memory.to_vendor(
        "contacts", {"first_name": "Ada", "email": "ada@x.com"}, ["email", "phone", "custom.nope"]
    )
    assert vendor == {"email": "ada@x.com", "phone": None}


def test_deal_references_come_out_as_vendor_ids(memory):
    flat = memory.to_canonical(
        "deals", {"dealname": "Renewal", "company_id": 7, "contact_ids": ["30", "4", "30"]}
    )
    assert flat == {"name": "Renewal", "company": "7", "contacts": ["30", "4"]}
    assert memory.to_vendor("deals", flat, ["company", "contacts"]) == {
        "company_id": "7",
        "contact_ids": ["30", "4"],
    }


def test_deal_contact_ids_as_json_text(memory):
    flat = memory.to_canonical("deals", {"dealname": "D", "contact_ids": '["9", "1"]'})
    assert flat["contacts"] == ["1", "9"]


# -- value maps ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vendor_stage", "canonical"),
    [
        ("appointmentscheduled", "qualification"),
        ("qualifiedtobuy", "qualification"),
        ("QualifiedToBuy", "qualification"),
        ("presentationscheduled", "proposal"),
        ("decisionmakerboughtin", "negotiation"),
        ("contractsent", "negotiation"),
        (" closedwon ", "closed_won"),
        ("closedlost", "closed_lost"),
    ],
)
def test_stage_values_map_many_to_one_ignoring_case(memory, vendor_stage, canonical):
    flat = memory.to_canonical("deals", {"dealname": "D", "dealstage": vendor_stage})
    assert flat["stage"] == canonical


@pytest.mark.parametrize(
    ("canonical", "vendor_stage"),
    [
        ("qualification", "qualifiedtobuy"),  # prefer:
        ("negotiation", "contractsent"),  # prefer:
        ("proposal", "presentationscheduled"),  # the only one listed
        ("closed_won", "closedwon"),
    ],
)
def test_stage_written_back_as_the_preferred_vendor_value(memory, canonical, vendor_stage):
    vendor = memory.to_vendor("deals", {"name": "D", "stage": canonical}, ["stage"])
    assert vendor == {"dealstage": vendor_stage}


def test_first_listed_vendor_value_is_the_default_preference():
    fm = make_map(
        {
            "deals": {
                "fields": {
                    "name": "n",
                    "stage": {"field": "s", "values": {"b1": "won", "b2": "won"}},
                }
            }
        }
    )
    assert fm.to_vendor("deals", {"name": "x", "stage": "won"}, ["stage"]) == {"s": "b1"}


def test_unknown_vendor_stage_is_an_error_by_default(memory):
    with pytest.raises(MappingError) as info:
        memory.to_canonical("deals", {"dealname": "D", "dealstage": "onhold"})
    error = info.value
    assert (error.field, error.vendor_field, error.value) == ("stage", "dealstage", "onhold")
    message = str(error)
    assert message.startswith("deals.stage: 'onhold' (vendor field 'dealstage') is not among")
    assert "appointmentscheduled" in message
    assert "unknown: keep" in message


def test_an_unmapped_value_names_the_map_key_where_a_person_maps_it_both_ways(memory):
    with pytest.raises(MappingError) as read:
        memory.to_canonical("deals", {"dealname": "D", "dealstage": "onhold"})
    with pytest.raises(MappingError) as written:
        memory.to_vendor("deals", {"name": "D", "stage": "needs_analysis"})
    with pytest.raises(MappingError) as bad_email:
        memory.to_canonical("contacts", {"email": "bob@@example"})

    assert read.value.map_key == written.value.map_key == "deals.fields.stage.values"
    assert bad_email.value.map_key is None  # fixed in the vendor, not in the map


@pytest.mark.parametrize("vendor", ["hubspot", "zoho", "suitecrm", "bitrix24"])
def test_default_maps_never_turn_a_stage_they_do_not_list_into_another(vendor):
    fm = load_default_map(vendor)
    name, stage = fm.vendor_field("deals", "name"), fm.vendor_field("deals", "stage")
    assert name is not None
    assert stage is not None

    with pytest.raises(MappingError) as info:
        fm.to_canonical("deals", {name: "D", stage: "Awaiting Legal"})

    assert (info.value.field, info.value.value) == ("stage", "Awaiting Legal")
    assert info.value.map_key == "deals.fields.stage.values"


def test_unknown_keep_passes_the_vendor_value_through_both_ways():
    fm = deal_stage_map(unknown="keep")
    flat = fm.to_canonical("deals", {"dealname": "D", "dealstage": " On Hold "})
    assert flat["stage"] == "On Hold"
    assert fm.to_vendor("deals", flat, ["stage"]) == {"dealstage": "On Hold"}


def test_unknown_blank_drops_the_value():
    fm = deal_stage_map(unknown="blank")
    assert fm.to_canonical("deals", {"dealname": "D", "dealstage": "onhold"}) == {"name": "D"}


def test_canonical_value_without_vendor_value_cannot_be_written(memory):
    with pytest.raises(MappingError, match="has no vendor value in the field map") as info:
        memory.to_vendor("deals", {"name": "D", "stage": "needs_analysis"})
    assert info.value.vendor_field == "dealstage"


def test_null_canonical_value_reads_as_blank():
    fm = deal_stage_map(values={"n/a": None})
    assert fm.to_canonical("deals", {"dealname": "D", "dealstage": "N/A"}) == {"name": "D"}
    assert fm.to_canonical("deals", {"dealname": "D", "dealstage": "won"})["stage"] == "closed_won"


# -- paths, directions, transforms --------------------------------------------------------------


def test_dotted_vendor_paths_read_and_build_nested_dicts():
    fm = make_map(
        {
            "contacts": {
                "fields": {
                    "email": "properties.email",
                    "address.city": "properties.location.city",
                    "address.country": "properties.location.country",
                }
            }
        }
    )
    record = {"properties": {"email": "a@b.com", "location": {"city": "Oslo", "country": "no"}}}
    flat = fm.to_canonical("contacts", record)
    assert flat == {"email": "a@b.com", "address.city": "Oslo", "address.country": "NO"}
    assert fm.to_vendor("contacts", flat) == {
        "properties": {"email": "a@b.com", "location": {"city": "Oslo", "country": "NO"}}
    }
    assert fm.vendor_fields("contacts") == ["properties"]
    # A missing or non-dict parent reads as absent rather than failing.
    assert fm.to_canonical("contacts", {"properties": {"email": "a@b.com", "location": "?"}}) == {
        "email": "a@b.com"
    }


def test_read_only_field_is_read_but_never_written():
    fm = make_map(
        {
            "companies": {
                "fields": {
                    "name": "name",
                    "domain": {"field": "website", "direction": "read"},
                    "website": "website",
                }
            }
        }
    )
    flat = fm.to_canonical("companies", {"name": "Acme", "website": "https://www.acme.com/"})
    assert flat == {"name": "Acme", "domain": "acme.com", "website": "https://www.acme.com"}
    assert "domain" in fm.canonical_fields("companies")
    assert "domain" not in fm.writable_fields("companies")
    assert fm.to_vendor("companies", flat) == {"name": "Acme", "website": "https://www.acme.com"}
    assert fm.to_vendor("companies", flat, ["domain"]) == {}


def test_write_only_field_is_written_but_never_read():
    fm = make_map(
        {
            "contacts": {
                "fields": {"email": "email", "job_title": {"field": "title", "direction": "write"}}
            }
        }
    )
    assert fm.to_canonical("contacts", {"email": "a@b.com", "title": "CEO"}) == {"email": "a@b.com"}
    assert fm.to_vendor("contacts", {"email": "a@b.com", "job_title": "CEO"})["title"] == "CEO"
    assert fm.vendor_fields("contacts") == ["email"]
    assert "job_title" not in fm.canonical_fields("contacts")


def test_typed_custom_fields_and_transforms():
    fm = make_map(
        {
            "contacts": {
                "fields": {
                    "email": "email",
                    "custom.vip": {"field": "is_vip", "transform": "bool"},
                    "custom.score": {"field": "score", "transform": "number"},
                    "custom.signed_up": {"field": "signup_ms", "transform": "epoch_ms_date"},
                }
            }
        }
    )
    flat = fm.to_canonical(
        "contacts", {"email": "a@b.com", "is_vip": "Y", "score": "7.50", "signup_ms": 1709251200000}
    )
    assert flat == {
        "email": "a@b.com",
        "custom.vip": True,
        "custom.score": 7.5,
        "custom.signed_up": "2024-03-01",
    }
    assert fm.to_vendor("contacts", flat) == {
        "email": "a@b.com",
        "is_vip": True,
        "score": 7.5,
        "signup_ms": 1709251200000,
    }


# -- errors while mapping records ---------------------------------------------------------------


def test_invalid_value_names_canonical_field_vendor_field_and_value(memory):
    with pytest.raises(MappingError) as info:
        memory.to_canonical("contacts", {"firstname": "Bob", "email": "bob@@example"})
    assert str(info.value).startswith(
        "contacts.email: 'bob@@example' (vendor field 'email') is not a valid email address: "
    )


def test_transform_failure_names_the_vendor_field(memory):
    with pytest.raises(MappingError) as info:
        memory.to_canonical("companies", {"name": "Acme", "numberofemployees": "a few"})
    assert info.value.field == "employees"
    assert info.value.vendor_field == "numberofemployees"
    assert "'a few'" in str(info.value)


def test_missing_required_field_names_the_vendor_field(memory):
    with pytest.raises(MappingError) as info:
        memory.to_canonical("deals", {"amount": "10"})
    assert str(info.value) == "deals.name (vendor field 'dealname'): is required"


def test_record_level_problem(memory):
    with pytest.raises(MappingError) as info:
        memory.to_canonical("contacts", {"phone": "+14155550100"})
    assert info.value.field is None
    assert str(info.value) == (
        "contacts: a contact needs at least one of first_name, last_name or email"
    )


def test_unmapped_object_type(memory):
    fm = make_map({"contacts": {"fields": {"email": "email"}}})
    with pytest.raises(FieldMapError, match="does not cover 'deals'"):
        fm.to_canonical("deals", {})
    with pytest.raises(FieldMapError, match="does not cover 'deals'"):
        fm.vendor_fields("deals")


# -- extend -------------------------------------------------------------------------------------


def test_extend_adds_a_custom_field_and_leaves_the_original_alone(memory):
    extended = memory.extend(
        {"contacts": {"fields": {"custom.segment": "segment"}}}, source="config"
    )
    record = {"email": "a@b.com", "segment": " SMB "}
    assert extended.to_canonical("contacts", record)["custom.segment"] == "SMB"
    assert "custom.segment" not in memory.to_canonical("contacts", record)
    assert "segment" in extended.vendor_fields("contacts")
    assert extended.to_vendor("contacts", {"email": "a@b.com"}, ["custom.segment"]) == {
        "segment": None
    }


def test_with_fields_is_shorthand_for_extend(memory):
    extended = memory.with_fields("deals", {"custom.source": {"field": "lead_source"}})
    flat = extended.to_canonical("deals", {"dealname": "D", "lead_source": "web"})
    assert flat["custom.source"] == "web"


def test_extend_stage_override_adds_values_and_changes_preference(memory):
    extended = memory.extend(
        {
            "deals": {
                "fields": {
                    "stage": {
                        "values": {"onhold": "needs_analysis", "verbalyes": "negotiation"},
                        "prefer": {"negotiation": "decisionmakerboughtin"},
                    }
                }
            }
        },
        source="config",
    )
    read = extended.to_canonical("deals", {"dealname": "D", "dealstage": "onhold"})
    assert read["stage"] == "needs_analysis"
    # The entries of the default map are still there.
    read = extended.to_canonical("deals", {"dealname": "D", "dealstage": "closedwon"})
    assert read["stage"] == "closed_won"
    assert extended.to_vendor("deals", {"name": "D", "stage": "negotiation"}, ["stage"]) == {
        "dealstage": "decisionmakerboughtin"
    }
    assert extended.to_vendor("deals", {"name": "D", "stage": "qualification"}, ["stage"]) == {
        "dealstage": "qualifiedtobuy"
    }


def test_extend_with_a_plain_name_keeps_the_transform(memory):
    extended = memory.extend({"companies": {"fields": {"employees": "headcount"}}}, source="config")
    assert extended.to_canonical("companies", {"name": "A", "headcount": "1,000"}) == {
        "name": "A",
        "employees": 1000,
    }
    assert extended.as_dict()["objects"]["companies"]["fields"]["employees"] == {
        "field": "headcount",
        "transform": "int",
    }


def test_extend_with_null_unmaps_a_field(memory):
    extended = memory.extend({"contacts": {"fields": {"mobile": None}}}, source="config")
    assert "mobile" not in extended.canonical_fields("contacts")
    assert "mobilephone" not in extended.vendor_fields("contacts")
    assert "mobile" in memory.canonical_fields("contacts")


def test_extend_errors_name_the_override_source_and_path(memory):
    with pytest.raises(FieldMapError) as info:
        memory.extend(
            {"deals": {"fields": {"stage": {"prefer": {"closed_won": "won"}}}}},
            source="crmhub.yaml",
            path_prefix="syncs.main.systems.crm.fields.",
        )
    assert str(info.value).startswith(
        "crmhub.yaml: syncs.main.systems.crm.fields.deals.fields.stage.prefer.closed_won: "
    )
    with pytest.raises(FieldMapError, match=r"^config: contacts\.fields\.custom\.x\.transform: "):
        memory.with_fields("contacts", {"custom.x": {"field": "x", "transform": "upper"}})


def test_extend_blames_the_override_for_a_clashing_writer(memory):
    with pytest.raises(FieldMapError) as info:
        memory.extend({"contacts": {"fields": {"job_title": "firstname"}}}, source="config")
    message = str(info.value)
    assert message.startswith("config: contacts.fields.job_title.field: ")
    assert "also written by first_name" in message


# -- bad maps -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "path", "problem"),
    [
        ({"emial": "email"}, "objects.contacts.fields.emial", "did you mean 'email'"),
        ({"custom.a-b": "x"}, "objects.contacts.fields.custom.a-b", "not a canonical field"),
        ({"email": {"field": "e", "transform": "upper"}}, ".email.transform", "unknown transform"),
        ({"email": {"field": "e", "direction": "sideways"}}, ".email.direction", "one of read"),
        ({"email": {"feild": "e"}}, ".email.feild", "unknown key"),
        ({"email": {"transform": "string"}}, ".email.field", "must name a vendor field"),
        ({"email": "a..b"}, ".email.field", "must name a vendor field"),
        ({"email": 5}, ".email", "vendor field name or a mapping"),
        ({"email": None}, ".email", "needs a vendor field"),
        ({"company": {"field": "c", "ref": "deals"}}, ".company.ref", "refers to companies"),
        ({"email": {"field": "e", "ref": "companies"}}, ".email.ref", "not a reference field"),
        ({"company": {"field": "c", "many": True}}, ".company.many", "holds a single value"),
        ({"company": {"field": "c", "values": {"a": "b"}}}, ".company.values", "holds ids"),
        ({"email": {"field": "e", "unknown": "keep"}}, ".email.unknown", "only applies"),
        ({"email": {"field": "e", "prefer": {"a": "b"}}}, ".email.prefer", "only applies"),
        ({"email": "e", "first_name": "e"}, ".first_name.field", "also written by email"),
        ({"email": "p", "first_name": "p.name"}, ".first_name.field", "also written by email"),
    ],
)
def test_bad_contact_field_definitions(fields, path, problem):
    with pytest.raises(FieldMapError) as info:
        make_map({"contacts": {"fields": fields}})
    message = str(info.value)
    expected_path = path if path.startswith("objects") else "objects.contacts.fields" + path
    assert message.startswith(f"test.yaml: {expected_path}: "), message
    assert problem in message
    assert "\n" not in message


def test_two_fields_may_read_the_same_vendor_field_when_one_is_read_only():
    fm = make_map(
        {
            "contacts": {
                "fields": {"email": "e", "custom.raw_email": {"field": "e", "direction": "read"}}
            }
        }
    )
    assert fm.to_canonical("contacts", {"e": "A@b.com"}) == {
        "email": "a@b.com",
        "custom.raw_email": "A@b.com",
    }


@pytest.mark.parametrize(
    ("stage", "path", "problem"),
    [
        ({"prefer": {"won": "won"}}, "prefer.won", "no vendor value in values: maps to 'won'"),
        ({"prefer": {"closed_won": "done"}}, "prefer.closed_won", "'done' is not a vendor value"),
        ({"prefer": {"closed_won": "open"}}, "prefer.closed_won", "'open' maps to 'qualification'"),
        ({"unknown": "ignore"}, "unknown", "must be one of error, keep, blank"),
        ({"values": {"WON": "closed_lost"}}, "values.WON", "listed twice"),
        ({"values": ["won"]}, "values", "must map vendor values"),
        ({"values": {"x": ["a"]}}, "values.x", "canonical value must be text"),
        ({"transform": "nope"}, "transform", "unknown transform 'nope'"),
    ],
)
def test_bad_stage_maps(stage, path, problem):
    with pytest.raises(FieldMapError) as info:
        deal_stage_map(**stage)
    message = str(info.value)
    assert message.startswith(f"test.yaml: objects.deals.fields.stage.{path}: "), message
    assert problem in message


def test_prefer_may_name_the_vendor_value_in_any_case_but_writes_the_listed_spelling():
    fm = deal_stage_map(
        values={"Won": "closed_won", "WonBig": "closed_won"}, prefer={"closed_won": "WONBIG"}
    )
    assert fm.to_vendor("deals", {"name": "D", "stage": "closed_won"}, ["stage"]) == {
        "dealstage": "WonBig"
    }


@pytest.mark.parametrize(
    ("data", "path", "problem"),
    [
        ([], "", "must be a mapping with vendor: and objects:"),
        ({"vendor": "x", "objects": {}, "extra": 1}, "extra", "unknown key"),
        ({"objects": {"contacts": {"fields": {"email": "e"}}}}, "vendor", "vendor name"),
        ({"vendor": "Acme Corp", "objects": {}}, "vendor", "vendor name"),
        ({"vendor": "x"}, "objects", "must map object types"),
        ({"vendor": "x", "objects": {"notes": {"fields": {}}}}, "objects.notes", "not an object"),
        ({"vendor": "x", "objects": {"contacts": []}}, "objects.contacts", "with fields:"),
        (
            {"vendor": "x", "objects": {"contacts": {"field": {}}}},
            "objects.contacts.field",
            "unknown key",
        ),
        (
            {"vendor": "x", "objects": {"contacts": {"fields": {}}}},
            "objects.contacts.fields",
            "must map",
        ),
    ],
)
def test_bad_map_documents(data, path, problem):
    with pytest.raises(FieldMapError) as info:
        FieldMap.from_dict(data, source="m.yaml")
    prefix = f"m.yaml: {path}: " if path else "m.yaml: "
    assert str(info.value).startswith(prefix), str(info.value)
    assert problem in str(info.value)


def test_field_map_error_survives_pickling():
    with pytest.raises(FieldMapError) as info:
        FieldMap.from_dict({}, source="m.yaml")
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.source, copy.path, str(copy)) == ("m.yaml", info.value.path, str(info.value))


# -- YAML files ---------------------------------------------------------------------------------


def test_load_reads_yes_and_no_as_text_not_booleans(tmp_path):
    path = tmp_path / "acme.yaml"
    path.write_text(
        "vendor: acme\n"
        "objects:\n"
        "  contacts:\n"
        "    fields:\n"
        "      email: email\n"
        "      address.country: {field: country, values: {no: NO, yes: US}, unknown: keep}\n"
        "      custom.vip: {field: vip, transform: bool}\n",
        encoding="utf-8",
    )
    fm = FieldMap.load(path)
    assert fm.source == str(path)
    assert fm.to_canonical("contacts", {"email": "a@b.no", "country": "no"}) == {
        "email": "a@b.no",
        "address.country": "NO",
    }


def test_load_reports_yaml_syntax_errors_with_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("vendor: acme\nobjects:\n  contacts: {fields: [\n", encoding="utf-8")
    with pytest.raises(FieldMapError, match=r"broken\.yaml: is not valid YAML at line \d+"):
        FieldMap.load(path)


def test_load_rejects_duplicate_keys(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(
        "vendor: acme\nobjects:\n  contacts:\n    fields:\n      email: a\n      email: b\n",
        encoding="utf-8",
    )
    with pytest.raises(FieldMapError, match="duplicate key 'email'"):
        FieldMap.load(path, source="dup.yaml")


def test_load_of_missing_file(tmp_path):
    with pytest.raises(FieldMapError, match="cannot read the file"):
        FieldMap.load(tmp_path / "nope.yaml")


@pytest.mark.parametrize("vendor", ["salesforce", "../memory", "Memory"])
def test_load_default_map_of_unknown_vendor_names_it(vendor):
    with pytest.raises(FieldMapError) as info:
        load_default_map(vendor)
    assert f"no default field map for vendor {vendor!r}" in str(info.value)
    assert "memory" in str(info.value)


def test_as_dict_reloads_to_an_equivalent_map(memory):
    again = FieldMap.from_dict(memory.as_dict(), source="copy")
    record = {"dealname": "D", "dealstage": "contractsent", "amount": "10.50"}
    assert again.to_canonical("deals", record) == memory.to_canonical("deals", record)


def test_a_limit_caps_a_list_of_references_and_nothing_else():
    capped = load_default_map("memory").with_fields(
        "deals", {"contacts": {"field": "contact_ids", "ref": "contacts", "limit": 1}}
    )
    assert capped.limits("deals") == {"contacts": 1}
    assert load_default_map("memory").limits("deals") == {}
    with pytest.raises(FieldMapError, match=r"deals\.fields\.company\.limit: applies to a list"):
        load_default_map("memory").with_fields(
            "deals", {"company": {"field": "company_id", "limit": 1}}
        )
    with pytest.raises(FieldMapError, match=r"limit: .*not 0"):
        load_default_map("memory").with_fields(
            "deals", {"contacts": {"field": "contact_ids", "limit": 0}}
        )
