"""End to end over HTTP: revoked credentials and the mass-delete guard, as ``crmhub sync`` sees
them.

Revoked credentials. A system whose credentials the vendor refuses is dropped from the run with
exit code 3 and a message naming the system and the setting to change. "Nothing is written
half-way" means, precisely:

* on the healthy system, every record the run created is linked to its canonical record and
  holds that record's values, and nothing is written there that depends on what the run could
  not read (when the refusal comes before any read, the healthy system is not written at all);
* on the refused system, whatever the vendor accepted before the refusal is linked, or owed as
  a pending intent that the next run completes through the vendor's upsert or a lookup by key,
  so nothing is left that a rerun could duplicate;
* the refused system's cursors do not move, so whatever it did not hand over is read again;
* once the credentials are renewed, the next runs reach exactly the state an uninterrupted sync
  reaches, references included, with no duplicate.

The guard. With ``deletes: propagate``, a system that suddenly reports its records gone (every
record archived in HubSpot; a Bitrix24 portal whose id sweep lists none) makes the run refuse
with exit code 1 before deleting anything anywhere, saying how many of how many, the threshold
and ``--allow-mass-delete``; the state it leaves lets the next run either find the records again
or, with ``--allow-mass-delete``, propagate the deletes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Connection, select
from typer.testing import CliRunner, Result

from connectors.sampledata import sample_account
from connectors.sandbox import Exchange, Sandbox, SandboxOptions, load_sandbox
from hub import store
from hub.cli import app
from hub.config import load_config
from hub.db import open_database
from hub.demo import seed_sandbox, typed_by_hand
from hub.tables import canonical_records, cursors, links
from mappings.fieldmap import load_default_map

pytestmark = pytest.mark.slow

SEED = 7
PEOPLE = 24  # per side: the first system holds people 0..23, the second 16..39
OBJECTS = ("companies", "contacts", "deals")
runner = CliRunner(env={"COLUMNS": "500"})
MAPS = {vendor: load_default_map(vendor) for vendor in ("hubspot", "zoho", "bitrix24")}


# ------------------------------------------------------------------------------ set-up


def start(*vendors: str) -> dict[str, Sandbox]:
    boxes = {vendor: load_sandbox(vendor, SandboxOptions(seed=SEED)) for vendor in vendors}
    for box in boxes.values():
        box.start()
    return boxes


@pytest.fixture
def hubspot_and_zoho() -> Iterator[dict[str, Sandbox]]:
    boxes = start("hubspot", "zoho")
    seed(boxes)
    yield boxes
    for box in boxes.values():
        box.stop()


def seed(boxes: Mapping[str, Sandbox]) -> None:
    """People 0..23 in the first system, 16..39 in the second (typed by hand): 8 in both."""
    first, second = boxes
    seed_sandbox(boxes[first].api, MAPS[first], sample_account(PEOPLE, SEED))
    seed_sandbox(
        boxes[second].api, MAPS[second], sample_account(PEOPLE, SEED, start=16), typed_by_hand
    )


def write_config(path: Path, systems: Mapping[str, Mapping[str, Any]], **sync: Any) -> Path:
    config = {
        "database": f"sqlite:///{path.parent}/state.db",
        "systems": dict(systems),
        "syncs": {"main": {"systems": list(systems), "objects": list(OBJECTS), **sync}},
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def crmhub_sync(config: Path, *options: str) -> Result:
    return runner.invoke(app, ["sync", "--config", str(config), *options])


def report_of(result: Result) -> dict[str, Any]:
    [report] = json.loads(result.stdout)
    assert isinstance(report, dict)
    return report


def writes(report: Mapping[str, Any]) -> int:
    return sum(
        n
        for systems in report["counts"].values()
        for counts in systems.values()
        for kind, n in counts.items()
        if kind in ("created", "updated", "deleted")
    )


def sync_until_quiet(config: Path, runs: int = 4) -> None:
    """Sync until a run exits 0 having written nothing."""
    for _ in range(runs):
        result = crmhub_sync(config, "--json")
        assert result.exit_code in (0, 1), result.output
        if result.exit_code == 0 and writes(report_of(result)) == 0:
            return
    raise AssertionError(f"no quiet run after {runs}: {result.output}")


# ------------------------------------------------------------------------------ what is where


def canonical(box: Sandbox, vendor: str, object_type: str) -> dict[str, dict[str, Any]]:
    """Each record of a sandbox in canonical form, by its id there."""
    return {
        record_id: MAPS[vendor].to_canonical(object_type, fields)
        for record_id, fields in box.api.snapshot(object_type).items()
    }


def contents(box: Sandbox, vendor: str) -> dict[str, list[str]]:
    """Everything a sandbox holds, references spelled by what they point at (a company by its
    name, contacts by their emails), so two accounts with different ids compare."""
    companies = canonical(box, vendor, "companies")
    people = canonical(box, vendor, "contacts")
    held: dict[str, list[str]] = {}
    for object_type in OBJECTS:
        rows = []
        for record in canonical(box, vendor, object_type).values():
            spelled = dict(record)
            if "company" in spelled:
                spelled["company"] = companies[spelled["company"]]["name"]
            if "contacts" in spelled:
                spelled["contacts"] = sorted(people[c]["email"] for c in spelled["contacts"])
            rows.append(json.dumps(spelled, sort_keys=True, default=str))
        held[object_type] = sorted(rows)
    return held


def edit(box: Sandbox, vendor: str, record_id: str, **values: Any) -> None:
    """A contact edited in the vendor's UI, given canonical values."""
    box.api.modify("contacts", record_id, MAPS[vendor].to_vendor("contacts", values, list(values)))


def emails(box: Sandbox, vendor: str) -> list[str]:
    return sorted(p["email"] for p in canonical(box, vendor, "contacts").values())


@contextmanager
def state_db(config: Path) -> Iterator[Connection]:
    """A connection to the sync's state database."""
    db = open_database(load_config(config).database)
    try:
        with db.connect() as conn:
            yield conn
    finally:
        db.dispose()


def linked(config: Path) -> dict[tuple[str, str], dict[str, str]]:
    """(system, object type) → remote id → canonical id, for every live link."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    with state_db(config) as conn:
        rows = conn.execute(
            select(
                links.c.system, links.c.object_type, links.c.remote_id, links.c.canonical_id
            ).where(links.c.sync == "main", links.c.detached.is_(False))
        )
        for system, object_type, remote_id, canonical_id in rows:
            by_remote = found.setdefault((system, object_type), {})
            assert remote_id not in by_remote, f"{system} {object_type} {remote_id} linked twice"
            by_remote[remote_id] = canonical_id
    return found


def cursor_positions(config: Path, system: str) -> dict[str, Any]:
    """Object type → (cursor, last id sweep) of one system."""
    with state_db(config) as conn:
        rows = conn.execute(
            select(cursors.c.object_type, cursors.c.position, cursors.c.swept_at).where(
                cursors.c.sync == "main", cursors.c.system == system
            )
        )
        return {object_type: (position, swept) for object_type, position, swept in rows}


def owed(config: Path, object_type: str) -> dict[tuple[str, str], str]:
    """What earlier runs left to do: (canonical id, system) → kind of write."""
    with state_db(config) as conn:
        intents, _ = store.load_pending(conn, "main", object_type)
    return intents


def base_values(config: Path, object_type: str) -> dict[str, dict[str, Any]]:
    """Canonical id → the values the systems last agreed on."""
    with state_db(config) as conn:
        rows = conn.execute(
            select(canonical_records.c.id, canonical_records.c.base).where(
                canonical_records.c.sync == "main",
                canonical_records.c.object_type == object_type,
            )
        )
        return {cid: dict(base) for cid, base in rows}


def snapshots(boxes: Mapping[str, Sandbox]) -> dict[str, dict[str, Any]]:
    return {vendor: {t: box.api.snapshot(t) for t in OBJECTS} for vendor, box in boxes.items()}


def assert_nothing_half_written(
    config: Path,
    boxes: Mapping[str, Sandbox],
    refused: str,
    healthy: str,
    before: Mapping[str, Any],
) -> int:
    """The invariants of the module docstring, right after a run that lost ``refused``; returns
    how many records the refused system took without crmhub learning their ids."""
    links_now = linked(config)
    unconfirmed = 0
    for object_type in OBJECTS:
        bases = base_values(config, object_type)
        pending = owed(config, object_type)
        for vendor in (refused, healthy):
            held = canonical(boxes[vendor], vendor, object_type)
            mine = links_now.get((vendor, object_type), {})
            # Every link points at a record the vendor holds.
            assert set(mine) <= set(held), (vendor, object_type)
            unlinked = set(held) - set(mine) - set(before[vendor][object_type])
            if vendor == healthy:
                # The healthy side got only whole records, each linked to its canonical one.
                assert not unlinked, (vendor, object_type, unlinked)
                covered = MAPS[vendor].canonical_fields(object_type) - {"company", "contacts"}
                for remote_id, cid in mine.items():
                    for field in covered:
                        assert held[remote_id].get(field) == bases[cid].get(field), (
                            object_type,
                            remote_id,
                            field,
                        )
            else:
                # What the refused side took before the refusal is owed a completing write.
                owed_keys = {
                    bases[cid].get("email") or bases[cid].get("name")
                    for (cid, system), kind in pending.items()
                    if system == refused and kind == "create"
                }
                for remote_id in unlinked:
                    record = held[remote_id]
                    assert (record.get("email") or record.get("name")) in owed_keys, (
                        object_type,
                        remote_id,
                    )
                unconfirmed += len(unlinked)
    return unconfirmed


# ------------------------------------------------------------------------------ credentials


def test_credentials_revoked_before_the_run_stop_that_system_with_exit_3_and_write_nothing(
    tmp_path: Path, hubspot_and_zoho: dict[str, Sandbox]
) -> None:
    boxes = hubspot_and_zoho
    hubspot, zoho = boxes["hubspot"], boxes["zoho"]
    config = write_config(
        tmp_path / "crmhub.yaml", {v: b.connector_settings() for v, b in boxes.items()}
    )
    assert crmhub_sync(config).exit_code == 0

    # Work waits on both sides: an edit in HubSpot, a new person and an edit in Zoho.
    edited_in_hubspot = sorted(hubspot.api.snapshot("contacts"))[0]
    edit(hubspot, "hubspot", edited_in_hubspot, job_title="Edited in HubSpot")
    edited_in_zoho = sorted(zoho.api.snapshot("contacts"))[-1]
    edit(zoho, "zoho", edited_in_zoho, job_title="Edited in Zoho")
    newcomer = {"first_name": "Nadia", "last_name": "Newcomb", "email": "nadia@newcomb.example"}
    zoho.api.insert("contacts", MAPS["zoho"].to_vendor("contacts", newcomer, list(newcomer)))
    hubspot.api.revoke_credentials()  # the config still holds the revoked ones

    before = snapshots(boxes)
    cursors_before = cursor_positions(config, "hubspot")
    links_before = linked(config)
    result = crmhub_sync(config, "--json")

    assert result.exit_code == 3, result.output
    report = report_of(result)
    assert report["status"] == "partial"
    [failure] = report["failures"]
    assert failure["system"] == "hubspot"
    assert failure["exit_code"] == 3
    assert "refresh token was refused" in failure["message"]
    assert "set systems.hubspot.refresh_token" in failure["message"]
    revoked = yaml.safe_load(config.read_text())["systems"]["hubspot"]
    for secret in ("client_secret", "refresh_token"):
        assert revoked[secret] not in result.stdout + result.stderr
    # Nothing was written on either side: all the run could send came from the system it lost,
    # or goes to it.
    assert snapshots(boxes) == before
    assert cursor_positions(config, "hubspot") == cursors_before
    assert {k: v for k, v in linked(config).items() if k[0] == "hubspot"} == {
        k: v for k, v in links_before.items() if k[0] == "hubspot"
    }
    # What HubSpot misses is owed to it: the newcomer and the Zoho edit.
    contact_links = linked(config)[("zoho", "contacts")]
    owed_to_hubspot = {cid for (cid, system) in owed(config, "contacts") if system == "hubspot"}
    newcomer_id = next(
        rid
        for rid, p in canonical(zoho, "zoho", "contacts").items()
        if p["email"] == newcomer["email"]
    )
    assert {contact_links[newcomer_id], contact_links[edited_in_zoho]} <= owed_to_hubspot

    # The user makes new credentials and puts them in the config: the next run delivers all.
    write_config(config, {v: b.connector_settings() for v, b in boxes.items()})
    result = crmhub_sync(config, "--json")
    assert result.exit_code == 0, result.output
    for vendor, box in boxes.items():
        people = canonical(box, vendor, "contacts").values()
        assert len(emails(box, vendor)) == len(set(emails(box, vendor))) == PEOPLE + 16 + 1
        titles = {p.get("job_title") for p in people}
        assert {"Edited in HubSpot", "Edited in Zoho"} <= titles, vendor
    assert contents(hubspot, "hubspot") == contents(zoho, "zoho")
    sync_until_quiet(config, runs=1)


def revoke_when(box: Sandbox, moment: Callable[[Exchange], bool]) -> threading.Event:
    """Revoke ``box``'s credentials once the vendor has acted on the first request ``moment``
    picks (its answer still goes out as the vendor made it); the event says it happened."""
    done = threading.Event()
    lock = threading.Lock()

    def observer(exchange: Exchange) -> None:
        if exchange.sent or done.is_set() or not moment(exchange):
            return
        with lock:
            if not done.is_set():
                box.api.revoke_credentials()
                done.set()

    box.observe(observer)
    return done


def is_write(exchange: Exchange, path: str) -> bool:
    return (
        exchange.request.method == "POST"
        and exchange.request.path == path
        and exchange.response is not None
        and exchange.response.status < 300
    )


MID_RUN = {
    # HubSpot created the companies it lacked; the contacts pass finds it refused.
    "after its company creates": lambda e: is_write(e, "/crm/v3/objects/companies/batch/create"),
    # A page of contacts was listed; the read of their company associations is refused.
    "while reading contacts": lambda e: (
        e.request.method == "GET" and e.request.path == "/crm/v3/objects/contacts"
    ),
    # HubSpot upserted contacts; their company associations are refused.
    "between contact upserts and their associations": lambda e: is_write(
        e, "/crm/v3/objects/contacts/batch/upsert"
    ),
}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, list[str]]]:
    """What each side holds after a sync no revocation interrupted, from the same seeds."""
    boxes = start("hubspot", "zoho")
    try:
        seed(boxes)
        folder = tmp_path_factory.mktemp("uninterrupted")
        config = write_config(
            folder / "crmhub.yaml", {v: b.connector_settings() for v, b in boxes.items()}
        )
        sync_until_quiet(config)
        return {vendor: contents(box, vendor) for vendor, box in boxes.items()}
    finally:
        for box in boxes.values():
            box.stop()


@pytest.mark.parametrize("moment", list(MID_RUN))
def test_credentials_revoked_mid_run_exit_3_then_a_rerun_converges_as_if_uninterrupted(
    tmp_path: Path,
    hubspot_and_zoho: dict[str, Sandbox],
    uninterrupted: dict[str, dict[str, list[str]]],
    moment: str,
) -> None:
    boxes = hubspot_and_zoho
    config = write_config(
        tmp_path / "crmhub.yaml", {v: b.connector_settings() for v, b in boxes.items()}
    )
    before = snapshots(boxes)
    revoked = revoke_when(boxes["hubspot"], MID_RUN[moment])

    result = crmhub_sync(config)

    assert revoked.is_set(), "the revocation point was never reached"
    assert result.exit_code == 3, result.output
    assert "✗ hubspot: " in result.stdout
    assert "set systems.hubspot.refresh_token" in result.stdout
    unconfirmed = assert_nothing_half_written(config, boxes, "hubspot", "zoho", before)
    # Upserted contacts whose associations were refused: HubSpot holds them, crmhub never
    # heard back; the next run's upsert finds them.
    assert (unconfirmed > 0) == (moment == "between contact upserts and their associations")
    # Companies were done when HubSpot refused; contacts and deals keep no cursor for it, so
    # the next run reads them in full.
    assert set(cursor_positions(config, "hubspot")) == {"companies"}

    write_config(config, {v: b.connector_settings() for v, b in boxes.items()})
    sync_until_quiet(config)
    for vendor, box in boxes.items():
        assert len(emails(box, vendor)) == len(set(emails(box, vendor))), vendor
        assert contents(box, vendor) == uninterrupted[vendor], vendor


# ------------------------------------------------------------------------------ the guard


def test_a_hubspot_account_emptied_is_refused_then_propagated_only_when_allowed(
    tmp_path: Path, hubspot_and_zoho: dict[str, Sandbox]
) -> None:
    boxes = hubspot_and_zoho
    hubspot, zoho = boxes["hubspot"], boxes["zoho"]
    config = write_config(
        tmp_path / "crmhub.yaml",
        {v: b.connector_settings() for v, b in boxes.items()},
        deletes="propagate",
    )
    assert crmhub_sync(config).exit_code == 0
    held = {t: len(zoho.api.snapshot(t)) for t in OBJECTS}
    cursors_before = cursor_positions(config, "hubspot")
    # Everything archived in HubSpot at once (an import gone wrong, a clean-up script).
    for object_type in OBJECTS:
        for record_id in hubspot.api.snapshot(object_type):
            hubspot.api.remove(object_type, record_id)

    result = crmhub_sync(config)

    assert result.exit_code == 1, result.output
    message = result.stderr.strip()
    assert message.startswith("crmhub: hubspot reports ")
    assert f"{held['companies']} of its {held['companies']} linked companies" in message
    assert "max_delete_fraction=0.5" in message
    assert "--allow-mass-delete" in message
    assert {t: len(zoho.api.snapshot(t)) for t in OBJECTS} == held  # Zoho keeps every record
    assert cursor_positions(config, "hubspot") == cursors_before

    # Refused again until the user says the deletes are meant...
    assert crmhub_sync(config).exit_code == 1
    assert {t: len(zoho.api.snapshot(t)) for t in OBJECTS} == held
    # ... and then they reach Zoho, and the sync is quiet afterwards.
    allowed = crmhub_sync(config, "--allow-mass-delete", "--json")
    assert allowed.exit_code == 0, allowed.output
    assert {t: len(zoho.api.snapshot(t)) for t in OBJECTS} == dict.fromkeys(OBJECTS, 0)
    sync_until_quiet(config, runs=1)


def test_a_bitrix24_portal_that_lists_no_ids_is_refused_and_nothing_changes_once_it_does(
    tmp_path: Path,
) -> None:
    # The id sweep is how deletes are found in Bitrix24. A portal answering with no records at
    # all (here: the config pointed at a new, empty portal) must not empty Zoho.
    boxes = start("bitrix24", "zoho")
    empty = load_sandbox("bitrix24", SandboxOptions(seed=SEED + 1))
    empty.start()
    try:
        seed(boxes)
        settings = {v: b.connector_settings() for v, b in boxes.items()}
        config = write_config(
            tmp_path / "crmhub.yaml", settings, deletes="propagate", delete_sweep="0s"
        )
        assert crmhub_sync(config).exit_code == 0
        before = snapshots(boxes)
        links_before = linked(config)
        cursors_before = cursor_positions(config, "bitrix24")
        linked_contacts = len(links_before[("bitrix24", "contacts")])

        write_config(
            config,
            {**settings, "bitrix24": empty.connector_settings()},
            deletes="propagate",
            delete_sweep="0s",
        )
        result = crmhub_sync(config)

        assert result.exit_code == 1, result.output
        message = result.stderr.strip()
        assert "bitrix24 reports" in message
        assert f"of its {len(links_before[('bitrix24', 'companies')])} linked companies" in message
        assert "--allow-mass-delete" in message
        assert snapshots(boxes) == before  # Zoho keeps every record
        assert {t: empty.api.snapshot(t) for t in OBJECTS} == {t: {} for t in OBJECTS}
        assert linked(config) == links_before
        assert cursor_positions(config, "bitrix24") == cursors_before

        # The right portal again: nothing was lost, nothing is deleted or written anywhere.
        write_config(config, settings, deletes="propagate", delete_sweep="0s")
        result = crmhub_sync(config, "--json")
        assert result.exit_code == 0, result.output
        assert snapshots(boxes) == before
        assert len(linked(config)[("bitrix24", "contacts")]) == linked_contacts
        sync_until_quiet(config, runs=1)
    finally:
        for box in (*boxes.values(), empty):
            box.stop()
