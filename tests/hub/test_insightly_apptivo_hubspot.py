"""End to end over HTTP: the Insightly, Apptivo and HubSpot sandboxes in one sync.

What a small company leaving Insightly or Apptivo would notice: the same people, companies and
deals in all three after one run, matched despite different formatting and with references
pointing at each vendor's own records, nothing duplicated; an edit in each reaches the others;
and a second run writes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from connectors.sampledata import sample_account
from connectors.sandbox import SandboxOptions, load_sandbox
from hub.demo import seed_sandbox, typed_by_hand
from mappings.fieldmap import load_default_map
from tests.hub.test_sandbox_sync import SEED, canonical, configure, sync

pytestmark = pytest.mark.slow

THREE = ("insightly", "apptivo", "hubspot")


def by_email(box: Any, fieldmap: Any) -> dict[str, dict[str, Any]]:
    return {p["email"]: p for p in canonical(box, fieldmap, "contacts").values()}


def test_insightly_apptivo_and_hubspot_converge_and_carry_an_edit_from_each(
    tmp_path: Any,
) -> None:
    boxes = {vendor: load_sandbox(vendor, SandboxOptions(seed=SEED)) for vendor in THREE}
    maps = {vendor: load_default_map(vendor) for vendor in THREE}
    for box in boxes.values():
        box.start()
    try:
        # Each CRM holds 20 people; neighbours share 8 of them, typed differently.
        for n, vendor in enumerate(THREE):
            style = typed_by_hand if n % 2 else None
            seed_sandbox(
                boxes[vendor].api, maps[vendor], sample_account(20, SEED, start=12 * n), style
            )
        config = configure(tmp_path, boxes)
        first = sync(config)
        assert first.exit_code == 0, first.as_dict()
        everyone = 12 * (len(THREE) - 1) + 20
        for vendor, box in boxes.items():
            emails = sorted(p["email"] for p in canonical(box, maps[vendor], "contacts").values())
            assert len(emails) == len(set(emails)) == everyone, vendor
            companies = canonical(box, maps[vendor], "companies")
            deals = canonical(box, maps[vendor], "deals")
            # Every deal points at a company of its own system.
            assert all(deal.get("company") in companies for deal in deals.values()), vendor
        # The same companies and deals everywhere, by their names.
        names = {
            vendor: sorted(d["name"] for d in canonical(box, maps[vendor], "deals").values())
            for vendor, box in boxes.items()
        }
        assert names["insightly"] == names["apptivo"] == names["hubspot"]
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
            people = by_email(box, maps[vendor])
            assert {email: people[email].get("job_title") for email in edited} == edited, vendor
        assert sync(config).writes == 0
    finally:
        for box in boxes.values():
            box.stop()
