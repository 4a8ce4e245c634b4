"""End to end over HTTP: several vendors' sandboxes in one sync.

HubSpot, Zoho CRM, SuiteCRM and Bitrix24 in one; Insightly, Apptivo and HubSpot in another.
What a user notices: the same people, companies and deals everywhere after one run, nothing
duplicated, every deal pointing at a company of its own system, an edit in each CRM reaching
the others, and a quiet run after.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from connectors.sampledata import sample_account
from connectors.sandbox import SandboxOptions, load_sandbox
from hub.demo import seed_sandbox, typed_by_hand
from mappings.fieldmap import load_default_map
from tests.hub.test_sandbox_sync import SEED, canonical, configure, sync

pytestmark = pytest.mark.slow

FOUR = ("hubspot", "zoho", "suitecrm", "bitrix24")
# What a small company leaving Insightly or Apptivo would run.
SMALL_BUSINESS = ("insightly", "apptivo", "hubspot")


@pytest.mark.parametrize("vendors", [FOUR, SMALL_BUSINESS], ids="+".join)
def test_crms_converge_and_converge_again_after_an_edit_on_each(
    tmp_path: Path, vendors: tuple[str, ...]
) -> None:
    boxes = {vendor: load_sandbox(vendor, SandboxOptions(seed=SEED)) for vendor in vendors}
    maps = {vendor: load_default_map(vendor) for vendor in vendors}
    for box in boxes.values():
        box.start()
    try:
        # Each CRM holds 20 people; neighbours share 8 of them, typed differently.
        for n, vendor in enumerate(vendors):
            style = typed_by_hand if n % 2 else None
            seed_sandbox(
                boxes[vendor].api, maps[vendor], sample_account(20, SEED, start=12 * n), style
            )
        config = configure(tmp_path, boxes)
        first = sync(config)
        assert first.exit_code == 0, first.as_dict()
        everyone = 12 * (len(vendors) - 1) + 20
        deal_names = {}
        for vendor, box in boxes.items():
            emails = sorted(p["email"] for p in canonical(box, maps[vendor], "contacts").values())
            assert len(emails) == len(set(emails)) == everyone, vendor
            companies = canonical(box, maps[vendor], "companies")
            deals = canonical(box, maps[vendor], "deals")
            # Every deal points at a company of its own system.
            assert all(deal.get("company") in companies for deal in deals.values()), vendor
            deal_names[vendor] = sorted(deal["name"] for deal in deals.values())
        assert all(names == deal_names[vendors[0]] for names in deal_names.values())
        assert sync(config).writes == 0

        # One edit in each CRM, each to a different person's job title.
        edited: dict[str, str] = {}
        for n, (vendor, box) in enumerate(boxes.items()):
            people = canonical(box, maps[vendor], "contacts")
            record_id, person = sorted(people.items(), key=lambda item: item[1]["email"])[n]
            title = f"Edited in {vendor}"
            field = maps[vendor].vendor_field("contacts", "job_title")
            assert field is not None
            box.api.modify("contacts", record_id, {field: title})
            edited[person["email"]] = title
        second = sync(config)
        assert second.exit_code == 0, second.as_dict()
        for vendor, box in boxes.items():
            titles = {
                p["email"]: p.get("job_title")
                for p in canonical(box, maps[vendor], "contacts").values()
            }
            assert {email: titles[email] for email in edited} == edited, vendor
        assert sync(config).writes == 0
    finally:
        for box in boxes.values():
            box.stop()


def test_a_delete_in_bitrix24_is_found_by_the_id_sweep_and_propagated(tmp_path: Path) -> None:
    # Bitrix24 reports no deletes: the hub lists its ids (delete_sweep) and finds the gap.
    boxes = {
        vendor: load_sandbox(vendor, SandboxOptions(seed=SEED)) for vendor in ("bitrix24", "zoho")
    }
    for box in boxes.values():
        box.start()
    try:
        seed_sandbox(boxes["bitrix24"].api, load_default_map("bitrix24"), sample_account(20, SEED))
        config = configure(tmp_path, boxes, deletes="propagate", delete_sweep="1s")
        assert sync(config).exit_code == 0
        assert len(boxes["zoho"].api.snapshot("contacts")) == 20
        gone = sorted(boxes["bitrix24"].api.snapshot("contacts"))[0]
        boxes["bitrix24"].api.remove("contacts", gone)
        time.sleep(1.1)  # past delete_sweep
        report = sync(config)
        assert report.exit_code == 0
        assert report.counts["contacts"]["zoho"]["deleted"] == 1
        assert len(boxes["zoho"].api.snapshot("contacts")) == 19
        assert sync(config).writes == 0
    finally:
        for box in boxes.values():
            box.stop()
