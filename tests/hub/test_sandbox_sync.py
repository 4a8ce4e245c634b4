"""End to end over HTTP: the sync engine between the HubSpot and Zoho sandboxes.

What a user of ``crmhub sync`` between HubSpot and Zoho would notice: the same people, companies
and deals on both sides after one run, matched despite different formatting, references pointing
at each vendor's own records, nothing duplicated, and an immediate second run that writes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.sampledata import sample_account
from connectors.sandbox import RANDOM_FAULTS, Fault, Sandbox, SandboxOptions, load_sandbox
from hub.config import load_config
from hub.db import open_database
from hub.demo import seed_sandbox, typed_by_hand
from hub.report import RunReport
from hub.runtime import run_sync
from mappings.fieldmap import FieldMap, load_default_map

pytestmark = pytest.mark.slow

SEED = 5
PEOPLE = 60  # per side; people 48..59 of HubSpot are people 48..59 of Zoho too


@pytest.fixture
def sandboxes() -> Iterator[dict[str, Sandbox]]:
    boxes = {
        "hubspot": load_sandbox("hubspot", SandboxOptions(seed=SEED)),
        "zoho": load_sandbox("zoho", SandboxOptions(seed=SEED)),
    }
    for box in boxes.values():
        box.start()
    yield boxes
    for box in boxes.values():
        box.stop()


@pytest.fixture
def maps() -> dict[str, FieldMap]:
    return {"hubspot": load_default_map("hubspot"), "zoho": load_default_map("zoho")}


def configure(
    tmp_path: Path,
    boxes: dict[str, Sandbox],
    *,
    settings: dict[str, Any] | None = None,
    **sync: Any,
) -> Path:
    """A config syncing every sandbox; ``settings`` go to each system, ``sync`` to the sync."""
    config = {
        "database": f"sqlite:///{tmp_path}/state.db",
        "systems": {
            name: {**box.connector_settings(), **(settings or {})} for name, box in boxes.items()
        },
        "syncs": {
            "main": {
                "systems": list(boxes),
                "objects": ["companies", "contacts", "deals"],
                **sync,
            }
        },
    }
    path = tmp_path / "crmhub.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def sync(config_path: Path) -> RunReport:
    config = load_config(config_path)
    [report] = run_sync(open_database(config.database), config)
    return report


def canonical(box: Sandbox, fieldmap: FieldMap, object_type: str) -> dict[str, dict[str, Any]]:
    """Each record of a sandbox in canonical form, by id."""
    return {
        record_id: fieldmap.to_canonical(object_type, fields)
        for record_id, fields in box.api.snapshot(object_type).items()
    }


def test_hubspot_and_zoho_converge_without_duplicates(
    tmp_path: Path, sandboxes: dict[str, Sandbox], maps: dict[str, FieldMap]
) -> None:
    seed_sandbox(sandboxes["hubspot"].api, maps["hubspot"], sample_account(PEOPLE, SEED))
    seed_sandbox(
        sandboxes["zoho"].api,
        maps["zoho"],
        sample_account(PEOPLE, SEED, start=48),
        typed_by_hand,
    )
    config = configure(tmp_path, sandboxes)
    first = sync(config)
    assert first.exit_code == 0, first.as_dict()

    people = {name: canonical(box, maps[name], "contacts") for name, box in sandboxes.items()}
    emails = {name: sorted(p["email"] for p in found.values()) for name, found in people.items()}
    assert emails["hubspot"] == emails["zoho"]
    assert len(emails["hubspot"]) == len(set(emails["hubspot"])) == PEOPLE + 48

    # The same person carries the same values on both sides, phone formatting aside.
    zoho_by_email = {p["email"]: p for p in people["zoho"].values()}
    for person in people["hubspot"].values():
        twin = zoho_by_email[person["email"]]
        for field in ("first_name", "last_name", "phone", "job_title"):
            assert person.get(field) == twin.get(field), (field, person, twin)

    # References point at each vendor's own records: a contact's company is the same company.
    companies = {name: canonical(box, maps[name], "companies") for name, box in sandboxes.items()}
    for name in sandboxes:
        for person in people[name].values():
            if "company" in person:
                company = companies[name][person["company"]]
                assert person["email"].endswith("@" + company["domain"])

    deals = {name: canonical(box, maps[name], "deals") for name, box in sandboxes.items()}
    assert sorted(d["name"] for d in deals["hubspot"].values()) == sorted(
        d["name"] for d in deals["zoho"].values()
    )

    second = sync(config)
    assert second.writes == 0, second.as_dict()


def test_an_edit_on_each_side_reaches_the_other(
    tmp_path: Path, sandboxes: dict[str, Sandbox], maps: dict[str, FieldMap]
) -> None:
    seed_sandbox(sandboxes["hubspot"].api, maps["hubspot"], sample_account(10, SEED))
    config = configure(tmp_path, sandboxes)
    sync(config)

    hubspot_people = sandboxes["hubspot"].api.snapshot("contacts")
    zoho_people = sandboxes["zoho"].api.snapshot("contacts")
    first_hubspot, first_zoho = sorted(hubspot_people)[0], sorted(zoho_people)[-1]
    title = {name: maps[name].vendor_field("contacts", "job_title") for name in maps}
    sandboxes["hubspot"].api.modify("contacts", first_hubspot, {title["hubspot"]: "Edited in HS"})
    sandboxes["zoho"].api.modify("contacts", first_zoho, {title["zoho"]: "Edited in Zoho"})
    report = sync(config)
    assert report.exit_code == 0

    hubspot_titles = [
        p.get("job_title")
        for p in canonical(sandboxes["hubspot"], maps["hubspot"], "contacts").values()
    ]
    zoho_titles = [
        p.get("job_title") for p in canonical(sandboxes["zoho"], maps["zoho"], "contacts").values()
    ]
    for titles in (hubspot_titles, zoho_titles):
        assert "Edited in HS" in titles
        assert "Edited in Zoho" in titles
    assert sync(config).writes == 0


def end_state(
    tmp_path: Path, fault_rate: float, maps: dict[str, FieldMap]
) -> dict[str, dict[str, list[Any]]]:
    """Both sandboxes seeded alike, synced until a run writes nothing: what each then holds,
    references left out (ids differ between sandboxes)."""
    # Stalls too: the connectors give up on an answer after half a second, a stalled request
    # hangs for a second, and the sync must not care.
    every_fault = (*RANDOM_FAULTS, Fault.STALL)
    options = SandboxOptions(
        seed=SEED, fault_rate=fault_rate, faults=every_fault, stall_seconds=1.0
    )
    boxes = {vendor: load_sandbox(vendor, options) for vendor in ("hubspot", "zoho")}
    for box in boxes.values():
        box.start()
        if fault_rate:
            # A sync this size makes a few dozen requests: too few for chance alone to bring
            # every kind of fault, so the ones that drop the connection strike once for sure.
            box.inject(Fault.RESET)
            box.inject(Fault.STALL)
    tmp_path.mkdir()
    try:
        seed_sandbox(boxes["hubspot"].api, maps["hubspot"], sample_account(PEOPLE, SEED))
        seed_sandbox(
            boxes["zoho"].api, maps["zoho"], sample_account(PEOPLE, SEED, start=48), typed_by_hand
        )
        config = configure(tmp_path, boxes, settings={"timeout_seconds": 0.5})
        for _ in range(6):
            report = sync(config)
            if report.exit_code == 0 and report.writes == 0:
                break
        else:
            raise AssertionError(f"no quiet run after six: {report.as_dict()}")
        if fault_rate:
            faults = sum((box.calls.faults for box in boxes.values()), Counter[str]())
            assert faults.total() > 10
            assert set(faults) == set(every_fault), faults
        refs = ("company", "contacts")
        return {
            vendor: {
                object_type: sorted(
                    sorted((k, str(v)) for k, v in record.items() if k not in refs)
                    for record in canonical(box, maps[vendor], object_type).values()
                )
                for object_type in ("companies", "contacts", "deals")
            }
            for vendor, box in boxes.items()
        }
    finally:
        for box in boxes.values():
            box.stop()


def test_vendor_faults_change_nothing_about_where_the_sync_ends(
    tmp_path: Path, maps: dict[str, FieldMap]
) -> None:
    # 5xx, 429s, resets, timeouts, HTML error pages and cut-off JSON on a fifth of all requests:
    # the runs that follow end where a fault-free sync ends, nothing duplicated or missing.
    calm = end_state(tmp_path / "calm", 0.0, maps)
    stormy = end_state(tmp_path / "stormy", 0.2, maps)
    assert stormy == calm
    assert len(calm["hubspot"]["contacts"]) == PEOPLE + 48


# Per target: people to sync (one page of 500 holds them all), the path its creates take, and
# how many create calls they make: Zoho's batches of 100; SuiteCRM and Insightly take one record
# a request, which the hub hands over 50 at a time.
WRITE_TARGETS = {
    "zoho": (450, "/crm/v8/Contacts", 5),
    "suitecrm": (150, "/legacy/Api/V8/module", 150),
    "insightly": (150, "/v3.1/Contacts", 150),
}


@pytest.mark.parametrize("target", list(WRITE_TARGETS))
@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_pages_batches_go_out_as_many_at_once_as_the_target_allows(
    tmp_path: Path, concurrency: int, target: str
) -> None:
    """Over a real network a write mostly waits for the vendor: several in flight divide a
    large sync's write time. Each record still lands once, linked to its own id."""
    people, create_path, creates = WRITE_TARGETS[target]
    maps = {name: load_default_map(name) for name in ("hubspot", target)}
    hubspot = load_sandbox("hubspot", SandboxOptions(seed=SEED))
    # A budget wide enough that the vendor's latency, not its rate limit, paces the writes.
    sink = load_sandbox(target, SandboxOptions(seed=SEED, latency_ms=30, rate_limit=500))
    boxes = {"hubspot": hubspot, target: sink}
    for box in boxes.values():
        box.start()
    try:
        seed_sandbox(hubspot.api, maps["hubspot"], sample_account(people, SEED))
        config = tmp_path / "crmhub.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "database": f"sqlite:///{tmp_path}/state.db",
                    "systems": {
                        "hubspot": hubspot.connector_settings(),
                        target: {**sink.connector_settings(), "max_concurrency": concurrency},
                    },
                    "syncs": {
                        "main": {
                            "systems": {"hubspot": "read", target: "write"},
                            "objects": ["contacts"],
                        }
                    },
                }
            ),
            encoding="utf-8",
        )
        sink.calls.reset()
        first = sync(config)
        assert first.exit_code == 0, first.as_dict()
        assert sink.calls.peak_in_flight == concurrency
        # A request that met the vendor's limit (the client's window and the vendor's never
        # line up) was refused, not made, and went again after its Retry-After.
        refused = sink.calls.by_status.get(429, 0)
        assert sink.calls.count("POST", create_path) - refused == creates

        emails = {
            name: Counter(p["email"] for p in canonical(box, maps[name], "contacts").values())
            for name, box in boxes.items()
        }
        assert emails[target] == emails["hubspot"]
        assert set(emails[target].values()) == {1}
        assert sync(config).writes == 0
    finally:
        for box in boxes.values():
            box.stop()
