"""Bad vendor data: each bad record is dead-lettered with a reason a person acts on; the rest syncs.

What a user of ``crmhub sync`` notices: an invalid email, an impossible date, a stage or country
no map knows, a value longer than the other vendor takes — each stops only its own record, shows
up once in ``crmhub failed list`` naming the record, the field, the value and the fix, is
retried on its backoff without piling up, and goes through (closing its dead letter) once it is
fixed where it came from.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner, Result

from connectors.sampledata import sample_account
from connectors.sandbox import Sandbox, SandboxOptions, load_sandbox
from hub import admin
from hub.cli import app
from hub.demo import seed_sandbox, typed_by_hand
from mappings.errors import MappingError
from mappings.fieldmap import FieldMap, load_default_map
from tests.hub.harness import Harness
from tests.hub.test_sandbox_sync import configure

runner = CliRunner(env={"COLUMNS": "500"})

# --------------------------------------------------------------------------- the hub alone


def test_a_value_the_targets_map_cannot_write_fails_that_record_alone(db: Engine) -> None:
    # a maps its own "discovery" stage to needs_analysis; b's map has no value for it.
    a_map = load_default_map("memory").with_fields(
        "deals", {"stage": {"values": {"discovery": "needs_analysis"}}}
    )
    h = Harness(db, fieldmaps={"a": a_map})
    h.add("a", "deals", dealname="Won deal", dealstage="closedwon")
    h.add("a", "deals", dealname="Discovery deal", dealstage="discovery")

    first = h.run()

    assert first.exit_code == 1
    assert [d["dealname"] for d in h.records("b", "deals")] == ["Won deal"]
    [failed] = admin.list_failed(db)
    assert (failed["system"], failed["stage"], failed["object_type"]) == ("b", "write", "deals")
    assert "'needs_analysis' (vendor field 'dealstage')" in failed["reason"]
    assert "systems.b.map.deals.fields.stage.values in crmhub.yaml" in failed["reason"]
    discovery = h.by("a", "deals", "dealname", "Discovery deal")
    assert f"(a {discovery['id']})" in failed["reason"]

    assert h.run().exit_code == 1
    [again] = admin.list_failed(db)
    assert (again["id"], again["attempts"]) == (failed["id"], 1)

    # The fix is a map entry: once b can write the stage, the retry delivers the deal.
    h.fieldmaps["b"] = load_default_map("memory").with_fields(
        "deals", {"stage": {"values": {"presentationscheduled": "needs_analysis"}}}
    )
    admin.retry_failed(db, None)
    assert h.run().exit_code == 0
    assert h.by("b", "deals", "dealname", "Discovery deal")["dealstage"] == "presentationscheduled"
    assert admin.list_failed(db) == []


# --------------------------------------------------------------------------- HubSpot and Zoho

SEED = 7
PEOPLE = 12  # per side; HubSpot's people 8..11 are Zoho's people 8..11 too
LONG = 5_000


@pytest.fixture
def sandboxes() -> Iterator[dict[str, Sandbox]]:
    boxes = {
        vendor: load_sandbox(vendor, SandboxOptions(seed=SEED)) for vendor in ("hubspot", "zoho")
    }
    for box in boxes.values():
        box.start()
    yield boxes
    for box in boxes.values():
        box.stop()


def cli(config: Path, *args: str) -> Result:
    return runner.invoke(app, [*args, "--config", str(config)])


def failed_list(config: Path, *options: str) -> list[dict[str, Any]]:
    result = cli(config, "failed", "list", "--json", *options)
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def good_records(box: Sandbox, fieldmap: FieldMap, object_type: str) -> dict[str, dict[str, Any]]:
    """The sandbox's records that map, in canonical form, by id."""
    found = {}
    for record_id, fields in box.api.snapshot(object_type).items():
        try:
            found[record_id] = fieldmap.to_canonical(object_type, fields)
        except MappingError:
            continue
    return found


def names(box: Sandbox, fieldmap: FieldMap, object_type: str) -> set[str]:
    key = "email" if object_type == "contacts" else "name"
    return {r[key] for r in good_records(box, fieldmap, object_type).values()}


@pytest.mark.slow
def test_bad_records_on_either_side_are_dead_lettered_once_and_sync_once_fixed(
    tmp_path: Path, sandboxes: dict[str, Sandbox]
) -> None:
    hubspot, zoho = sandboxes["hubspot"], sandboxes["zoho"]
    maps = {"hubspot": load_default_map("hubspot"), "zoho": load_default_map("zoho")}
    seed_sandbox(hubspot.api, maps["hubspot"], sample_account(PEOPLE, SEED))
    seed_sandbox(zoho.api, maps["zoho"], sample_account(PEOPLE, SEED, start=8), typed_by_hand)
    # Good records each side holds; after the sync, both sides hold all of them.
    expected = {
        object_type: names(hubspot, maps["hubspot"], object_type)
        | names(zoho, maps["zoho"], object_type)
        for object_type in ("companies", "contacts", "deals")
    }

    # What each vendor's own UI or import let in, and the other vendor (or the hub) refuses.
    bad = {
        # Zoho holds text the hub cannot read: bad emails, an impossible date, a stage and a
        # country no map knows.
        "at_at": zoho.api.insert(
            "contacts", {"First_Name": "Bob", "Last_Name": "Atat", "Email": "bob@@example"}
        ),
        "no_at": zoho.api.insert(
            "contacts", {"First_Name": "Nora", "Last_Name": "Mail", "Email": "not an email"}
        ),
        "leap": zoho.api.insert(
            "deals",
            {"Deal_Name": "Leap deal", "Stage": "Qualification", "Closing_Date": "2026-02-30"},
        ),
        "stage": zoho.api.insert(
            "deals",
            {"Deal_Name": "Legal deal", "Stage": "Awaiting Legal", "Closing_Date": "2026-03-31"},
        ),
        "country": zoho.api.insert(
            "companies", {"Account_Name": "Atlantis Trading", "Billing_Country": "Atlantis"}
        ),
        # HubSpot takes 65,536 characters a value; Zoho's First_Name 40, Account_Name 200.
        "long_name": hubspot.api.insert(
            "contacts",
            {"firstname": "X" * LONG, "lastname": "Long", "email": "long@longco.example"},
        ),
        "long_company": hubspot.api.insert(
            "companies", {"name": "C" * LONG, "domain": "longco.example"}
        ),
    }
    config = configure(tmp_path, sandboxes)

    first = cli(config, "sync")

    assert first.exit_code == 1, first.output
    for object_type, wanted in expected.items():
        for vendor, box in sandboxes.items():
            assert names(box, maps[vendor], object_type) >= wanted, (vendor, object_type)
    assert not {"bob@@example", "not an email"} & set(
        str(p.get("email")) for p in hubspot.api.snapshot("contacts").values()
    )
    assert "Legal deal" not in {d.get("dealname") for d in hubspot.api.snapshot("deals").values()}
    assert "long@longco.example" not in names(zoho, maps["zoho"], "contacts")

    failed = {row["remote_id"] or row["canonical_id"]: row for row in failed_list(config)}
    assert len(failed) == len(bad)
    by_record = {key: failed[bad[key]] for key in ("at_at", "no_at", "leap", "stage", "country")}
    for row in by_record.values():
        assert (row["system"], row["stage"], row["status"]) == ("zoho", "map", "open")
        assert row["remote_id"] in row["reason"]
    assert "Email" in by_record["at_at"]["reason"]
    assert "'bob@@example'" in by_record["at_at"]["reason"]
    assert "'not an email'" in by_record["no_at"]["reason"]
    assert "Closing_Date" in by_record["leap"]["reason"]
    assert "'2026-02-30'" in by_record["leap"]["reason"]
    assert "'Awaiting Legal'" in by_record["stage"]["reason"]
    assert "systems.zoho.map.deals.fields.stage.values" in by_record["stage"]["reason"]
    assert "Billing_Country" in by_record["country"]["reason"]
    assert "'Atlantis'" in by_record["country"]["reason"]
    for row in by_record.values():
        if row is not by_record["stage"]:
            assert "correct it in zoho" in row["reason"]
    refused = {row["object_type"]: row for row in failed.values() if row["stage"] == "write"}
    for object_type, key, field, limit in (
        ("contacts", "long_name", "First_Name", 40),
        ("companies", "long_company", "Account_Name", 200),
    ):
        row = refused[object_type]
        assert (row["system"], row["status"]) == ("zoho", "open")
        assert f"(hubspot {bad[key]})" in row["reason"]
        assert f"{field} '{'X' if key == 'long_name' else 'C'}" in row["reason"]
        assert f"({LONG:,} characters)" in row["reason"]
        assert f"maximum_length={limit}" in row["reason"]
        assert "where it came from" in row["reason"]
        assert len(row["reason"]) < 600  # the value is cut, not pasted whole

    # The next run re-reads the bad records in its overlap window: no new dead letters, no
    # extra attempt before the backoff is due.
    assert cli(config, "sync").exit_code == 1
    again = failed_list(config)
    assert sorted(row["id"] for row in again) == sorted(row["id"] for row in failed.values())
    assert {row["attempts"] for row in again} == {1}

    # Due again (as after its backoff): each is tried once more, still one row each.
    assert cli(config, "failed", "retry", "--all").exit_code == 0
    assert cli(config, "sync").exit_code == 1
    retried = failed_list(config)
    assert sorted(row["id"] for row in retried) == sorted(row["id"] for row in failed.values())
    assert {row["attempts"] for row in retried} == {2}

    # Fixed where they came from: the next run syncs each and closes its dead letter.
    zoho.api.modify("contacts", bad["at_at"], {"Email": "bob@example.com"})
    zoho.api.modify("contacts", bad["no_at"], {"Email": "nora@example.com"})
    zoho.api.modify("deals", bad["leap"], {"Closing_Date": "2026-02-28"})
    zoho.api.modify("deals", bad["stage"], {"Stage": "Negotiation/Review"})
    zoho.api.modify("companies", bad["country"], {"Billing_Country": "Greece"})
    hubspot.api.modify("contacts", bad["long_name"], {"firstname": "Xavier"})
    hubspot.api.modify("companies", bad["long_company"], {"name": "Longco"})

    fixed = cli(config, "sync")

    assert fixed.exit_code == 0, fixed.output
    assert failed_list(config) == []
    closed = failed_list(config, "--all")
    assert {row["status"] for row in closed} == {"resolved"}
    assert len(closed) == len(bad)
    expected["contacts"] |= {"bob@example.com", "nora@example.com", "long@longco.example"}
    expected["deals"] |= {"Leap deal", "Legal deal"}
    expected["companies"] |= {"Atlantis Trading", "Longco"}
    for object_type, wanted in expected.items():
        for vendor, box in sandboxes.items():
            assert names(box, maps[vendor], object_type) == wanted, (vendor, object_type)
    assert cli(config, "sync").exit_code == 0
