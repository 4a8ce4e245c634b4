"""The sync engine against in-memory CRMs: what a user of crmhub would notice."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, event, func, select

from connectors.base import Page, RemoteRecord
from connectors.errors import AuthError, RecordRejected
from connectors.memory.connector import MemoryConnector
from hub import admin
from hub.engine import READ_AHEAD_PAGES, LeaseHeldError, MassDeleteError
from hub.tables import audit_entries, conflicts, dead_letters, leases, links, runs
from mappings.fieldmap import load_default_map
from tests.hub.harness import Harness


def _audit(db: Engine, **where: str) -> list[dict]:
    query = select(audit_entries)
    for column, value in where.items():
        query = query.where(audit_entries.c[column] == value)
    with db.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query.order_by(audit_entries.c.id))]


# --------------------------------------------------------------------------- first sync


def test_first_sync_matches_the_same_person_despite_formatting_and_fills_the_gaps(db: Engine):
    h = Harness(db)
    h.add(
        "a",
        "contacts",
        firstname="Ann",
        lastname="Lee",
        email="ann@acme.com",
        phone="(415) 555-0100",
    )
    h.add(
        "b",
        "contacts",
        firstname="Ann",
        email="ANN@Acme.com",
        phone="+1 415 555 0100",
        jobtitle="CTO",
    )
    h.add("b", "contacts", firstname="Bob", email="bob@acme.com")

    report = h.run()

    assert report.exit_code == 0
    assert len(h.records("a", "contacts")) == 2  # Bob created in a; Ann not duplicated
    assert len(h.records("b", "contacts")) == 2
    ann_a = h.by("a", "contacts", "email", "ann@acme.com")
    ann_b = h.by("b", "contacts", "email", "ANN@Acme.com")
    assert ann_a["jobtitle"] == "CTO"  # filled from b
    assert ann_b["lastname"] == "Lee"  # filled from a
    assert sorted(map(sorted_items, h.canonical("a", "contacts"))) == sorted(
        map(sorted_items, h.canonical("b", "contacts"))
    )


def sorted_items(record: dict) -> list:
    return sorted(record.items())


def test_an_immediate_second_run_writes_nothing(db: Engine):
    h = Harness(db)
    company = h.add("a", "companies", name="Acme", domain="acme.com")
    h.add("a", "contacts", firstname="Ann", email="ann@acme.com", company_id=company)
    h.add("b", "companies", name="Globex", website="https://www.globex.com/")
    h.add(
        "a", "deals", dealname="Big one", amount="1000", dealstage="closedwon", company_id=company
    )
    h.run()

    second = h.run_without_writes()

    assert second.writes == 0
    assert second.exit_code == 0


def test_a_blank_never_overwrites_a_value_at_first_link(db: Engine):
    h = Harness(db)
    h.add("a", "contacts", firstname="Ann", email="ann@acme.com", jobtitle="CTO")
    h.add("b", "contacts", firstname="Ann", email="ann@acme.com")
    h.run()
    assert h.by("b", "contacts", "email", "ann@acme.com")["jobtitle"] == "CTO"
    assert h.by("a", "contacts", "email", "ann@acme.com")["jobtitle"] == "CTO"


def test_clearing_a_field_after_the_first_link_clears_it_everywhere(db: Engine):
    h = Harness(db)
    ann = h.add("a", "contacts", firstname="Ann", email="ann@acme.com", jobtitle="CTO")
    h.run()
    h.edit("a", "contacts", ann, jobtitle=None)
    h.run()
    assert "jobtitle" not in h.by("b", "contacts", "email", "ann@acme.com")


def test_references_are_translated_to_each_systems_own_ids(db: Engine):
    h = Harness(db)
    h.add("b", "companies", name="Filler", domain="filler.com")  # shifts b's ids
    acme = h.add("a", "companies", name="Acme", domain="acme.com")
    ann = h.add("a", "contacts", firstname="Ann", email="ann@acme.com", company_id=acme)
    bob = h.add("a", "contacts", firstname="Bob", email="bob@acme.com", company_id=acme)
    h.add(
        "a",
        "deals",
        dealname="Rockets",
        company_id=acme,
        contact_ids=[ann, bob],
        dealstage="qualifiedtobuy",
    )
    h.run()

    acme_b = h.by("b", "companies", "domain", "acme.com")["id"]
    ann_b = h.by("b", "contacts", "email", "ann@acme.com")
    bob_b = h.by("b", "contacts", "email", "bob@acme.com")
    deal_b = h.by("b", "deals", "dealname", "Rockets")
    assert acme_b != acme
    assert ann_b["company_id"] == acme_b
    assert sorted(deal_b["contact_ids"]) == sorted([ann_b["id"], bob_b["id"]])
    assert deal_b["company_id"] == acme_b


def test_a_reference_to_a_record_that_failed_is_filled_in_once_that_record_syncs(db: Engine):
    # Bob's email is broken, so Bob is dead-lettered and the deal reaches b without him.
    h = Harness(db)
    ann = h.add("a", "contacts", firstname="Ann", email="ann@acme.com")
    bob = h.stores["a"].create("contacts", {"firstname": "Bob"})
    bob.fields["email"] = "bob@@acme.com"  # imported around the vendor's own check
    h.add("a", "deals", dealname="Rockets", contact_ids=[ann, bob.id], dealstage="closedwon")
    h.run()
    ann_b = h.by("b", "contacts", "email", "ann@acme.com")["id"]
    assert h.by("b", "deals", "dealname", "Rockets")["contact_ids"] == [ann_b]

    # Bob is fixed; the deal itself is never edited again, yet it gains Bob in b.
    h.edit("a", "contacts", bob.id, email="bob@acme.com")
    h.run()
    h.run()
    bob_b = h.by("b", "contacts", "email", "bob@acme.com")["id"]
    assert sorted(h.by("b", "deals", "dealname", "Rockets")["contact_ids"]) == sorted(
        [ann_b, bob_b]
    )
    assert h.run().writes == 0


def test_a_vendor_holding_one_contact_per_deal_gets_one_and_loses_none_elsewhere(db: Engine):
    one_contact = load_default_map("memory").with_fields(
        "deals", {"contacts": {"field": "contact_ids", "ref": "contacts", "limit": 1}}
    )
    h = Harness(db, fieldmaps={"b": one_contact})
    ann = h.add("a", "contacts", firstname="Ann", email="ann@acme.com")
    bob = h.add("a", "contacts", firstname="Bob", email="bob@acme.com")
    deal = h.add("a", "deals", dealname="Rockets", contact_ids=[ann, bob])
    h.run()
    deal_b = h.by("b", "deals", "dealname", "Rockets")
    assert len(deal_b["contact_ids"]) == 1
    assert h.run_without_writes().writes == 0

    h.edit("b", "deals", deal_b["id"], amount="5000")
    h.run()
    [deal_a] = h.records("a", "deals")
    assert deal_a["amount"] == "5000"
    assert sorted(deal_a["contact_ids"]) == sorted([ann, bob])  # b's one contact removed none
    assert h.stores["a"].get("deals", deal) is not None
    assert h.run_without_writes().writes == 0


def test_at_first_link_a_capped_list_holding_the_first_contact_is_no_conflict(db: Engine):
    one_contact = load_default_map("memory").with_fields(
        "deals", {"contacts": {"field": "contact_ids", "ref": "contacts", "limit": 1}}
    )
    h = Harness(db, fieldmaps={"b": one_contact})
    people = {}
    for system in ("a", "b"):
        acme = h.add(system, "companies", name="Acme", domain="acme.com")
        people[system] = [
            h.add(system, "contacts", firstname=name, email=f"{name}@acme.com", company_id=acme)
            for name in ("ann", "bob")
        ]
        held = people[system] if system == "a" else people[system][:1]
        h.add(system, "deals", dealname="Rockets", company_id=acme, contact_ids=held)
    report = h.run()
    assert report.counts["deals"]["b"].get("conflicts", 0) == 0
    [deal_a] = h.records("a", "deals")
    assert sorted(deal_a["contact_ids"]) == sorted(people["a"])
    assert h.run_without_writes().writes == 0


def test_references_to_object_types_outside_the_sync_are_not_even_read(db: Engine):
    h = Harness(db, objects=("contacts",))
    acme = h.add("a", "companies", name="Acme", domain="acme.com")
    h.add("a", "contacts", firstname="Ann", email="ann@acme.com", company_id=acme)
    asked: list[list[str]] = []
    read_changes = h.connectors["a"].read_changes

    def recording(object_type, since, token, fields):  # type: ignore[no-untyped-def]
        asked.append(list(fields))
        return read_changes(object_type, since, token, fields)

    h.connectors["a"].read_changes = recording  # type: ignore[method-assign]
    h.run()
    assert asked
    assert all("company_id" not in fields and "email" in fields for fields in asked)
    [ann_b] = h.records("b", "contacts")
    assert "company_id" not in ann_b
    assert h.run_without_writes().writes == 0


def test_three_systems_converge_and_each_gets_what_it_lacks(db: Engine):
    h = Harness(db, ("a", "b", "c"))
    h.add("a", "contacts", firstname="Ann", email="ann@x.com")
    h.add("b", "contacts", firstname="Bob", email="bob@x.com")
    h.add("c", "contacts", firstname="Cy", email="cy@x.com", phone="+44 (0)20 7946 0321")
    h.run()
    for system in "abc":
        emails = sorted(r["email"] for r in h.records(system, "contacts"))
        assert emails == ["ann@x.com", "bob@x.com", "cy@x.com"]
    assert h.by("a", "contacts", "email", "cy@x.com")["phone"] == "+442079460321"
    assert h.run_without_writes().writes == 0


def test_read_only_systems_are_never_written_and_write_only_systems_never_read(db: Engine):
    h = Harness(db, {"source": "read", "target": "write"})
    h.add("source", "contacts", firstname="Ann", email="ann@x.com")
    h.add("target", "contacts", firstname="Zed", email="zed@x.com")
    h.run()
    assert [r["email"] for r in h.records("source", "contacts")] == ["ann@x.com"]
    assert sorted(r["email"] for r in h.records("target", "contacts")) == ["ann@x.com", "zed@x.com"]
    assert h.stores["target"].calls.get("read_changes", 0) == 0


# --------------------------------------------------------------------------- incremental


def test_a_change_on_one_side_reaches_the_other_and_its_echo_is_skipped(db: Engine):
    h = Harness(db)
    ann = h.add("a", "contacts", firstname="Ann", email="ann@x.com")
    h.run()
    h.edit("a", "contacts", ann, jobtitle="VP Sales")

    report = h.run()

    assert report.counts["contacts"]["b"]["updated"] == 1
    assert h.by("b", "contacts", "email", "ann@x.com")["jobtitle"] == "VP Sales"
    entries = _audit(db, action="update", system="b")
    assert entries[-1]["changes"] == {"job_title": [None, "VP Sales"]}
    assert "job_title from a" in entries[-1]["reason"]
    assert h.run_without_writes().writes == 0


def test_changes_to_different_fields_on_both_sides_both_survive(db: Engine):
    h = Harness(db)
    ann = h.add("a", "contacts", firstname="Ann", email="ann@x.com")
    h.run()
    ann_b = h.by("b", "contacts", "email", "ann@x.com")["id"]
    h.edit("a", "contacts", ann, jobtitle="CTO")
    h.edit("b", "contacts", ann_b, phone="415-555-0100")
    h.run()
    for system in "ab":
        record = h.by(system, "contacts", "email", "ann@x.com")
        assert record["jobtitle"] == "CTO"
        assert record["phone"] in ("415-555-0100", "+14155550100")


# --------------------------------------------------------------------------- conflicts


def _conflicting_edit(h: Harness) -> None:
    ann = h.add("a", "contacts", firstname="Ann", email="ann@x.com", jobtitle="Engineer")
    h.run()
    ann_b = h.by("b", "contacts", "email", "ann@x.com")["id"]
    h.edit("a", "contacts", ann, jobtitle="CTO")  # earlier
    h.edit("b", "contacts", ann_b, jobtitle="CEO", firstname="Anne")  # later


def _conflict_rows(db: Engine) -> list[dict]:
    with db.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(conflicts).order_by(conflicts.c.id))]


def test_newest_edit_wins_a_conflict_and_the_loser_is_recorded(db: Engine):
    h = Harness(db, policy="newest")
    _conflicting_edit(h)
    report = h.run()
    for system in "ab":
        assert h.by(system, "contacts", "email", "ann@x.com")["jobtitle"] == "CEO"
    [row] = _conflict_rows(db)
    assert row["status"] == "settled"
    assert row["winner"] == "b"
    assert row["policy"] == "newest"
    assert row["candidates"]["a"]["value"] == "CTO"
    [entry] = _audit(db, action="conflict")
    assert entry["system"] == "a"
    assert entry["changes"] == {"job_title": ["CTO", "CEO"]}
    assert report.exit_code == 0  # settled by policy: nothing waits for a person


def test_prefer_policy_takes_the_preferred_system_even_when_older(db: Engine):
    h = Harness(db, policy="prefer", prefer=["a", "b"])
    _conflicting_edit(h)
    h.run()
    assert h.by("b", "contacts", "email", "ann@x.com")["jobtitle"] == "CTO"
    # the other field only b changed is still taken from b
    assert h.by("a", "contacts", "email", "ann@x.com")["firstname"] == "Anne"


def test_a_field_owner_wins_its_field_and_the_fallback_decides_the_rest(db: Engine):
    h = Harness(db, policy="newest", owners={"contacts.job_title": "a"})
    _conflicting_edit(h)
    h.run()
    assert h.by("b", "contacts", "email", "ann@x.com")["jobtitle"] == "CTO"


def test_manual_conflicts_wait_while_other_fields_merge_then_the_resolution_is_written(
    db: Engine,
):
    h = Harness(db, policy="manual")
    _conflicting_edit(h)

    first = h.run()

    assert first.exit_code == 1  # something waits for a person
    assert first.open_conflicts == 1
    assert h.by("a", "contacts", "email", "ann@x.com")["jobtitle"] == "CTO"  # untouched
    assert h.by("b", "contacts", "email", "ann@x.com")["jobtitle"] == "CEO"  # untouched
    assert h.by("a", "contacts", "email", "ann@x.com")["firstname"] == "Anne"  # merged
    assert h.run_without_writes().writes == 0  # waiting is stable, no ping-pong

    [row] = admin.list_conflicts(db)
    admin.resolve_conflict(db, row["id"], value="Chief Executive")
    third = h.run()

    for system in "ab":
        assert h.by(system, "contacts", "email", "ann@x.com")["jobtitle"] == "Chief Executive"
    assert third.open_conflicts == 0
    assert third.exit_code == 0
    assert _audit(db, action="resolve")
    assert h.run_without_writes().writes == 0


def test_a_field_waiting_for_a_person_is_not_overwritten_by_a_later_edit_of_another_field(
    db: Engine,
):
    h = Harness(db, policy="manual")
    _conflicting_edit(h)
    h.run()  # job title: CTO in a, CEO in b, waiting for a person
    ann_a = h.by("a", "contacts", "email", "ann@x.com")["id"]

    h.edit("a", "contacts", ann_a, lastname="Lee")  # only a, and not the job title
    second = h.run()

    assert h.by("b", "contacts", "email", "ann@x.com")["lastname"] == "Lee"  # merged
    assert h.by("b", "contacts", "email", "ann@x.com")["jobtitle"] == "CEO"  # still b's own
    assert h.by("a", "contacts", "email", "ann@x.com")["jobtitle"] == "CTO"
    assert second.open_conflicts == 1
    [update] = _audit(db, action="update", system="b")[-1:]
    assert update["changes"] == {"last_name": [None, "Lee"]}
    assert h.run_without_writes().writes == 0

    [row] = admin.list_conflicts(db)
    admin.resolve_conflict(db, row["id"], system="b")
    h.run()
    for system in "ab":
        assert h.by(system, "contacts", "email", "ann@x.com")["jobtitle"] == "CEO"


# --------------------------------------------------------------------------- bad records


def test_an_invalid_email_is_dead_lettered_with_its_reason_while_the_rest_syncs(db: Engine):
    h = Harness(db)
    h.add("a", "contacts", firstname="Ann", email="ann@x.com")
    bad = h.stores["a"].create("contacts", {"firstname": "Bad"})
    bad.fields["email"] = "bad@@x"  # imported around the vendor's own check

    report = h.run()

    assert report.exit_code == 1
    assert [r["email"] for r in h.records("b", "contacts")] == ["ann@x.com"]
    [failed] = admin.list_failed(db)
    assert failed["remote_id"] == bad.id
    assert failed["stage"] == "map"
    assert "bad@@x" in failed["reason"]
    assert "email" in failed["reason"]


def test_a_fixed_record_is_retried_and_its_failure_closed(db: Engine):
    h = Harness(db)
    bad = h.stores["a"].create("contacts", {"firstname": "Bad"})
    bad.fields["email"] = "bad@@x"
    h.run()
    h.edit("a", "contacts", bad.id, email="good@x.com")
    report = h.run()
    assert report.exit_code == 0
    assert [r["email"] for r in h.records("b", "contacts")] == ["good@x.com"]
    assert admin.list_failed(db) == []


def test_a_vendor_rejection_is_dead_lettered_in_the_vendors_words_and_the_batch_commits(
    db: Engine,
):
    h = Harness(db)
    h.add("a", "contacts", firstname="Ann", email="ann@x.com")
    h.add("a", "contacts", firstname="Bob", email="bob@x.com")

    original = h.stores["b"].create

    def create(object_type: str, fields: dict) -> object:
        if fields.get("email") == "bob@x.com":
            raise RecordRejected("Property values were not valid: phone", code="INVALID")
        return original(object_type, fields)

    h.stores["b"].create = create  # type: ignore[method-assign]
    report = h.run()

    assert report.exit_code == 1
    assert [r["email"] for r in h.records("b", "contacts")] == ["ann@x.com"]
    [failed] = admin.list_failed(db)
    assert failed["stage"] == "write"
    assert failed["system"] == "b"
    assert "Property values were not valid" in failed["reason"]

    h.stores["b"].create = original  # type: ignore[method-assign]
    admin.retry_failed(db, None)
    assert h.run().exit_code == 0
    assert sorted(r["email"] for r in h.records("b", "contacts")) == ["ann@x.com", "bob@x.com"]


def test_duplicates_inside_one_system_are_reported_never_merged(db: Engine):
    h = Harness(db, unique_emails=False)
    h.add("a", "contacts", firstname="Ann", email="ann@x.com")
    h.add("a", "contacts", firstname="Annie", email="ANN@x.com")
    report = h.run()
    assert len(h.records("a", "contacts")) == 2
    assert len(h.records("b", "contacts")) == 1
    assert report.counts["contacts"]["a"]["duplicates"] == 1
    [failed] = admin.list_failed(db)
    assert failed["stage"] == "duplicate"
    assert "same email" in failed["reason"]


def test_an_edit_stamped_in_the_same_second_as_our_write_is_not_missed(db: Engine):
    # Zoho stamps modified times to the second: an edit right after the hub's write to a
    # record carries the very stamp the link stored.
    h = Harness(db)
    h.connectors["b"].capabilities = dataclasses.replace(
        h.connectors["b"].capabilities, modified_precision=timedelta(seconds=1)
    )
    same_second = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    h.stores["b"].clock = lambda: same_second
    h.add("a", "contacts", firstname="Ann", email="ann@x.com")
    h.run()
    ann_b = h.by("b", "contacts", "email", "ann@x.com")
    h.edit("b", "contacts", ann_b["id"], jobtitle="CTO")
    h.run()
    assert h.by("a", "contacts", "email", "ann@x.com")["jobtitle"] == "CTO"
    assert h.run_without_writes().writes == 0


def test_an_edit_behind_a_full_read_listing_by_id_is_read_next_run(db: Engine):
    # HubSpot lists a full read in id order: a record edited after the read passed it, then
    # another edited later and listed further on, must not push the cursor past the first.
    h = Harness(db, objects=("contacts",), store_page_size=5)
    h.spec = dataclasses.replace(h.spec, overlap=timedelta(seconds=1))
    ids = [h.add("a", "contacts", firstname=f"P{i}", email=f"p{i}@x.com") for i in range(15)]
    store = h.stores["a"]
    by_id = sorted(store.all("contacts"), key=lambda r: int(r.id))

    def listing_by_id(object_type, since, token, fields):  # type: ignore[no-untyped-def]
        start = int(token or 0)
        if start == 5:  # the read has passed the first page: two people are edited now
            store.update("contacts", ids[0], {"jobtitle": "Edited behind the read"})
            for _ in range(5):  # seconds pass: more than the one-second overlap
                h.clock()
            store.update("contacts", ids[12], {"jobtitle": "Edited ahead of the read"})
        page = [store.get("contacts", r.id) for r in by_id[start : start + 5]]
        records = [RemoteRecord(r.id, r.modified_at, dict(r.fields)) for r in page if r is not None]
        more = start + 5 < len(by_id)
        return Page(records, str(start + 5) if more else None)

    h.connectors["a"].read_changes = listing_by_id  # type: ignore[method-assign]
    h.run()
    del h.connectors["a"].read_changes  # the connector's own, modified-time order, again
    h.run()
    titles = {r["email"]: r.get("jobtitle") for r in h.records("b", "contacts")}
    assert titles["p0@x.com"] == "Edited behind the read"
    assert titles["p12@x.com"] == "Edited ahead of the read"


def test_a_quiet_object_type_stops_re_reading_the_last_burst_of_activity(db: Engine):
    h = Harness(db, objects=("companies", "contacts"))
    h.add("a", "companies", name="Acme", domain="acme.com")
    for i in range(5):
        h.add("a", "contacts", firstname=f"P{i}", email=f"p{i}@x.com")
    h.run()
    h.run()  # reads the first run's writes back, as echoes
    h.clock.advance(timedelta(hours=1))
    ann = h.add("a", "contacts", firstname="Ann", email="ann@x.com")
    h.run()
    h.clock.advance(timedelta(hours=1))
    h.edit("a", "contacts", ann, jobtitle="CTO")
    report = h.run()
    # Only Ann is read: companies, quiet for two hours, are not read again and again.
    assert report.counts["contacts"]["a"]["read"] == 1
    assert report.counts.get("companies", {}).get("a", {}).get("read", 0) == 0
    assert report.counts.get("companies", {}).get("b", {}).get("read", 0) == 0


# --------------------------------------------------------------------------- vendor merges


def test_a_vendor_merge_into_an_unlinked_record_moves_the_link_instead_of_duplicating(
    db: Engine,
):
    h = Harness(db)
    h.add("a", "contacts", firstname="Ann", lastname="Lee", email="ann@x.com")
    h.run()
    [linked] = h.stores["b"].all("contacts")
    # Someone in b created the same person again, then merged the synced copy into it.
    manual = h.add("b", "contacts", firstname="Ann", lastname="Lee", email="ann.lee@x.com")
    h.stores["b"].merge("contacts", manual, linked.id)
    h.run()
    [in_a] = h.records("a", "contacts")
    assert in_a["email"] == "ann.lee@x.com"  # the survivor's values, not a second Ann
    [relinked] = _audit(db, action="relink")
    assert relinked["remote_id"] == manual
    assert relinked["changes"] == {"remote_id": [linked.id, manual]}
    assert h.run_without_writes().writes == 0


def test_a_vendor_merge_of_two_linked_records_detaches_the_absorbed_one(db: Engine):
    h = Harness(db)
    h.add("a", "contacts", firstname="Ann", email="ann@x.com")
    h.add("a", "contacts", firstname="Ann", email="ann.private@y.com")
    h.run()
    work = h.by("b", "contacts", "email", "ann@x.com")["id"]
    private = h.by("b", "contacts", "email", "ann.private@y.com")["id"]
    h.stores["b"].merge("contacts", work, private)
    h.run()
    # b keeps its merge: the absorbed record is never written back, a keeps both.
    assert [r["email"] for r in h.records("b", "contacts")] == ["ann@x.com"]
    assert len(h.records("a", "contacts")) == 2
    [detached] = _audit(db, action="detach")
    assert detached["remote_id"] == private
    assert "merged record" in detached["reason"]
    assert h.run_without_writes().writes == 0


def test_an_update_answered_for_a_merged_survivor_moves_the_link(db: Engine):
    h = Harness(db, {"a": "both", "b": "write"})
    ann = h.add("a", "contacts", firstname="Ann", email="ann@x.com")
    h.run()
    [synced] = h.stores["b"].all("contacts")
    survivor = h.add("b", "contacts", firstname="Ann", email="ann.lee@x.com")
    h.stores["b"].merge("contacts", survivor, synced.id)
    h.edit("a", "contacts", ann, jobtitle="CTO")
    h.run()  # b is never read: only the update's answer tells of the merge
    h.edit("a", "contacts", ann, jobtitle="CEO")
    h.run()
    [in_b] = h.records("b", "contacts")
    assert in_b["jobtitle"] == "CEO"
    [relinked] = _audit(db, action="relink")
    assert relinked["remote_id"] == survivor


# --------------------------------------------------------------------------- deletes


def test_deletes_are_ignored_by_default(db: Engine):
    h = Harness(db)
    ann = h.add("a", "contacts", firstname="Ann", email="ann@x.com")
    h.run()
    h.stores["a"].delete("contacts", ann)
    h.run()
    assert len(h.records("b", "contacts")) == 1
    assert h.stores["a"].calls.get("read_deletes", 0) == 0


def test_propagate_deletes_the_linked_records_and_audits_it(db: Engine):
    h = Harness(db, deletes="propagate")
    ann = h.add("a", "contacts", firstname="Ann", email="ann@x.com")
    h.add("a", "contacts", firstname="Bob", email="bob@x.com")
    h.run()
    h.stores["a"].delete("contacts", ann)
    h.run()
    assert [r["email"] for r in h.records("b", "contacts")] == ["bob@x.com"]
    assert [e["system"] for e in _audit(db, action="delete")] == ["a", "b"]
    assert h.run_without_writes().writes == 0


def test_unlink_keeps_the_other_copies_and_never_recreates_the_deleted_one(db: Engine):
    h = Harness(db, deletes="unlink")
    ann = h.add("a", "contacts", firstname="Ann", email="ann@x.com")
    h.run()
    h.stores["a"].delete("contacts", ann)
    h.run()
    ann_b = h.by("b", "contacts", "email", "ann@x.com")
    h.edit("b", "contacts", ann_b["id"], jobtitle="CTO")
    h.run()
    assert h.records("a", "contacts") == []
    assert _audit(db, action="unlink")


class BlindToDeletes(MemoryConnector):
    """A vendor like Bitrix24: lists never show deleted records, and it reports no deletes;
    it offers its live ids for a sweep instead."""

    def __init__(self, connector: MemoryConnector) -> None:
        super().__init__(connector.system, connector.settings, store=connector.store)
        self.capabilities = dataclasses.replace(connector.capabilities, detects_deletes=False)
        self.swept = 0

    def read_deletes(self, object_type, since, page_token):  # type: ignore[no-untyped-def]
        raise AssertionError("this vendor has no way to read deletes")

    def list_ids(self, object_type: str, page_token: str | None) -> tuple[list[str], str | None]:
        self.swept += 1
        return [record.id for record in self.store.all(object_type)], None


def test_a_vendor_blind_to_deletes_is_swept_for_them_once_a_day(db: Engine):
    h = Harness(db, deletes="propagate", objects=("contacts",))
    blind = BlindToDeletes(h.connectors["b"])
    h.connectors["b"] = blind
    h.add("a", "contacts", firstname="Ann", email="ann@x.com")
    h.add("a", "contacts", firstname="Bob", email="bob@x.com")
    h.run()
    assert blind.swept == 1  # the first run sweeps too: nothing is linked yet, nothing gone
    ann_b = h.by("b", "contacts", "email", "ann@x.com")
    h.stores["b"].delete("contacts", ann_b["id"])
    h.run()
    assert blind.swept == 1  # not a day yet: the delete waits for the next sweep
    assert len(h.records("a", "contacts")) == 2
    h.clock.advance(timedelta(days=1))
    h.run()
    assert blind.swept == 2
    assert [r["email"] for r in h.records("a", "contacts")] == ["bob@x.com"]
    assert sorted(e["system"] for e in _audit(db, action="delete")) == ["a", "b"]
    assert h.run_without_writes().writes == 0


def test_the_mass_delete_guard_refuses_and_deletes_nothing(db: Engine):
    h = Harness(db, deletes="propagate")
    ids = [h.add("a", "contacts", firstname=f"P{i}", email=f"p{i}@x.com") for i in range(20)]
    h.run()
    for record_id in ids[:15]:
        h.stores["a"].delete("contacts", record_id)
    with pytest.raises(MassDeleteError, match="15 of its 20"):
        h.run()
    assert len(h.records("b", "contacts")) == 20
    h.run(allow_mass_delete=True)
    assert len(h.records("b", "contacts")) == 5


def test_a_system_that_lost_every_record_is_refused_however_few_it_had(db: Engine):
    # Below the guard's minimum count, deletes pass; all of a system's records at once do not.
    h = Harness(db, deletes="propagate", objects=("companies", "contacts"))
    added = [
        (object_type, h.add("a", object_type, **fields))
        for i in range(3)
        for object_type, fields in (
            ("companies", {"name": f"Firm {i}", "domain": f"firm{i}.com"}),
            ("contacts", {"firstname": f"P{i}", "email": f"p{i}@firm{i}.com"}),
        )
    ]
    h.run()
    for object_type, record_id in added:
        h.stores["a"].delete(object_type, record_id)
    with pytest.raises(MassDeleteError, match="3 of its 3 linked companies"):
        h.run()
    assert len(h.records("b", "companies")) == len(h.records("b", "contacts")) == 3
    h.run(allow_mass_delete=True)
    assert h.records("b", "companies") == h.records("b", "contacts") == []


# --------------------------------------------------------------------------- dry run


def test_a_dry_run_plans_but_writes_nothing_anywhere(db: Engine):
    h = Harness(db)
    h.add("a", "contacts", firstname="Ann", email="ann@x.com")
    h.forbid_writes()
    report = h.run(dry_run=True)
    assert report.counts["contacts"]["b"]["to_create"] == 1
    assert report.planned[0]["action"] == "create"
    with db.connect() as conn:
        for table in (runs, links, audit_entries, dead_letters):
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 0


def test_a_dry_run_of_a_first_sync_plans_what_the_real_one_then_does(db: Engine):
    # The same deal on both sides, under the same company: matched on name + company, which
    # the dry run can only know from the company links it would make but does not commit.
    h = Harness(db)
    for system in ("a", "b"):
        acme = h.add(system, "companies", name="Acme", domain="acme.com")
        ann = h.add(system, "contacts", firstname="Ann", email="ann@acme.com", company_id=acme)
        h.add(system, "deals", dealname="Rockets", company_id=acme, contact_ids=[ann])
    h.add("a", "deals", dealname="Satellites", company_id=acme)
    # Someone only b holds, at a company both hold: nothing to change there.
    h.add("b", "contacts", firstname="Bo", email="bo@acme.com", company_id=acme)

    planned = h.run(dry_run=True)
    done = h.run()

    for object_type in ("companies", "contacts", "deals"):
        for system in ("a", "b"):
            would = planned.counts[object_type][system]
            did = done.counts[object_type][system]
            assert would["to_create"] == did["created"], (object_type, system)
            assert would["to_update"] == did["updated"], (object_type, system)
    assert planned.counts["deals"]["a"]["to_create"] == 0
    assert planned.counts["deals"]["b"]["to_create"] == 1  # Satellites only


# --------------------------------------------------------------------------- crashes


class Killed(BaseException):
    """Stands for the process dying: not an error the engine may catch."""


@pytest.mark.parametrize("target", ["both", "write"])
def test_a_crash_between_a_vendor_create_and_our_commit_creates_no_duplicate(
    db: Engine, target: str
):
    # A reading target finds the orphans by matching; a write-only one only by the lookup the
    # write-ahead intent triggers. The vendor accepts duplicate emails, so it cannot save us.
    h = Harness(db, {"a": "both", "b": target}, unique_emails=False)
    for i in range(30):
        h.add("a", "contacts", firstname=f"P{i}", email=f"p{i}@x.com")

    def die_after_create(operation: str, object_type: str, results: object) -> None:
        if operation == "create":
            raise Killed()

    h.connectors["b"].after_write = die_after_create
    with pytest.raises(Killed):
        h.run()
    assert len(h.records("b", "contacts")) == 30  # the vendor has them; we never heard back

    h.connectors["b"].after_write = None
    h.run()

    emails = [r["email"] for r in h.records("b", "contacts")]
    assert len(emails) == 30 == len(set(emails))
    assert len(_audit(db, action="link", system="b")) == 30  # found again, not re-created
    assert h.run_without_writes().writes == 0


def test_a_run_killed_mid_page_resumes_from_its_cursor_without_duplicates(db: Engine):
    h = Harness(db, page_size=10)
    for i in range(45):
        h.add("a", "contacts", firstname=f"P{i}", email=f"p{i}@x.com")
    pages = {"n": 0}

    def stop_after_two_pages(operation: str, object_type: str, results: object) -> None:
        pages["n"] += 1
        if pages["n"] == 2:
            raise Killed()

    h.connectors["b"].after_write = stop_after_two_pages
    with pytest.raises(Killed):
        h.run()
    h.connectors["b"].after_write = None
    report = h.run()
    assert report.exit_code == 0
    emails = [r["email"] for r in h.records("b", "contacts")]
    assert len(emails) == 45 == len(set(emails))


def test_a_graceful_stop_finishes_the_page_and_the_next_run_completes(db: Engine):
    h = Harness(db, page_size=10)
    for i in range(35):
        h.add("a", "contacts", firstname=f"P{i}", email=f"p{i}@x.com")
    calls = {"n": 0}

    def stop_soon() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    report = h.run(should_stop=stop_soon)
    assert report.status == "interrupted"
    assert 0 < len(h.records("b", "contacts")) < 35
    h.run()
    assert len(h.records("b", "contacts")) == 35


# --------------------------------------------------------------------------- systems failing


def test_a_system_refusing_credentials_is_dropped_and_caught_up_next_run(db: Engine):
    h = Harness(db, ("a", "b", "c"))
    h.add("a", "contacts", firstname="Ann", email="ann@x.com")
    h.fail_calls("c", lambda op, obj: AuthError("token revoked", system="c"))

    report = h.run()

    assert report.exit_code == 3
    assert [f.system for f in report.failures] == ["c"]
    assert "token revoked" in report.failures[0].message
    assert [r["email"] for r in h.records("b", "contacts")] == ["ann@x.com"]
    assert h.records("c", "contacts") == []

    h.connectors["c"].before_call = None
    assert h.run().exit_code == 0
    assert [r["email"] for r in h.records("c", "contacts")] == ["ann@x.com"]


def test_batches_in_flight_finish_when_one_is_refused_and_no_more_go_out_until_next_run(
    db: Engine,
):
    # Three batches go out at once. When one finds the credentials revoked, the two already on
    # their way finish; no later batch is sent; the next run sends the rest, each record once.
    h = Harness(db, {"a": "read", "b": "write"}, objects=("contacts",), page_size=1000)
    for i in range(1000):
        h.add("a", "contacts", firstname=f"P{i}", email=f"p{i}@x.com")
    target = h.connectors["b"]
    target.capabilities = dataclasses.replace(target.capabilities, write_concurrency=3)
    creates = {"n": 0}
    counting = threading.Lock()
    all_three_on_their_way = threading.Barrier(3, timeout=10)

    def second_create_refused(operation: str, object_type: str) -> None:
        if operation != "create":
            return
        with counting:
            creates["n"] += 1
            number = creates["n"]
        if number <= 3:
            all_three_on_their_way.wait()
        if number == 2:
            raise AuthError("token revoked", system="b")
        time.sleep(0.1)  # still on its way when the second is refused

    target.before_call = second_create_refused
    report = h.run()

    assert report.exit_code == 3
    assert [f.system for f in report.failures] == ["b"]
    assert creates["n"] == 3
    assert len(h.records("b", "contacts")) == 200
    target.before_call = None
    assert h.run().exit_code == 0
    emails = Counter(r["email"] for r in h.records("b", "contacts"))
    assert emails == Counter(f"p{i}@x.com" for i in range(1000))


def test_credentials_refused_while_looking_up_an_interrupted_create_drop_only_that_system(
    db: Engine,
):
    # A crash left creates on b unconfirmed; b's credentials are revoked before the run that
    # looks those records up. b is dropped (exit 3); a and c still sync; nothing is duplicated.
    h = Harness(db, {"a": "both", "b": "write", "c": "both"}, unique_emails=False)
    for i in range(5):
        h.add("a", "contacts", firstname=f"P{i}", email=f"p{i}@x.com")

    def die_after_create(operation: str, object_type: str, results: object) -> None:
        if operation == "create":
            raise Killed()

    h.connectors["b"].after_write = die_after_create
    with pytest.raises(Killed):
        h.run()
    h.connectors["b"].after_write = None
    h.add("a", "contacts", firstname="Newcomer", email="new@x.com")
    h.fail_calls("b", lambda op, obj: AuthError("token revoked", system="b"))

    report = h.run()

    assert report.exit_code == 3
    assert [f.system for f in report.failures] == ["b"]
    assert "new@x.com" in [r["email"] for r in h.records("c", "contacts")]
    assert len(h.records("b", "contacts")) == 5
    h.connectors["b"].before_call = None
    assert h.run().exit_code == 0
    emails = sorted(r["email"] for r in h.records("b", "contacts"))
    assert emails == sorted([*(f"p{i}@x.com" for i in range(5)), "new@x.com"])


def test_two_runs_of_one_sync_never_overlap(db: Engine):
    h = Harness(db)
    h.add("a", "contacts", firstname="Ann", email="ann@x.com")
    inner: dict[str, Exception] = {}

    def start_another(operation: str, object_type: str) -> None:
        if operation == "read_changes" and "error" not in inner:
            try:
                h.engine().run()
            except LeaseHeldError as exc:
                inner["error"] = exc

    h.connectors["a"].before_call = start_another
    h.run()
    assert "already running" in str(inner["error"])


# --------------------------------------------------------------------------- cost


def test_a_page_costs_a_handful_of_queries_not_one_per_record(db: Engine):
    def statements_for(count: int) -> int:
        h = Harness(db, objects=("contacts",), page_size=500, store_page_size=500)
        h.spec = dataclasses.replace(h.spec, name=f"cost{count}")
        for i in range(count):
            h.add("a", "contacts", firstname=f"P{i}", email=f"p{i}-{count}@x.com")
        seen = {"n": 0}

        def count_statement(*args: object) -> None:
            seen["n"] += 1

        event.listen(db, "before_cursor_execute", count_statement)
        try:
            h.run()
        finally:
            event.remove(db, "before_cursor_execute", count_statement)
        return seen["n"]

    few, many = statements_for(20), statements_for(400)
    assert many <= few + 20, (few, many)


def test_the_database_has_one_row_per_link_and_no_orphans(db: Engine):
    h = Harness(db)
    for i in range(5):
        h.add("a", "contacts", firstname=f"P{i}", email=f"p{i}@x.com")
    h.run()
    with db.connect() as conn:
        per_system = dict(
            conn.execute(sa.select(links.c.system, func.count()).group_by(links.c.system)).all()
        )
    assert per_system == {"a": 5, "b": 5}


def test_matching_spilled_to_disk_gives_the_same_outcome(
    db: Engine, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr("hub.engine.MATCH_IN_MEMORY_LIMIT", 0)  # as for a very large account
    h = Harness(db, ("a", "b", "c"), unique_emails=False)
    h.add("a", "contacts", firstname="Ann", email="ann@x.com")
    h.add("b", "contacts", firstname="Ann", email="ANN@x.com", jobtitle="CTO")
    h.add("c", "contacts", firstname="Annie", email="ann@x.com")
    h.add("c", "contacts", firstname="Ann B", email="Ann@X.com")  # a duplicate inside c
    report = h.run()
    assert report.counts["contacts"]["c"]["duplicates"] == 1
    for system in "ab":
        [ann] = h.records(system, "contacts")
        assert ann["jobtitle"] == "CTO"
    assert len(h.records("c", "contacts")) == 2


def test_a_stop_during_the_last_object_type_is_reported_as_interrupted(db: Engine):
    h = Harness(db, objects=("contacts",), page_size=10)
    for i in range(35):
        h.add("a", "contacts", firstname=f"P{i}", email=f"p{i}@x.com")
    calls = {"n": 0}

    def stop_after_a_page() -> bool:
        calls["n"] += 1
        return calls["n"] > 1

    report = h.run(should_stop=stop_after_a_page)
    assert report.status == "interrupted"
    with db.connect() as conn:
        assert conn.execute(select(runs.c.status)).scalar_one() == "interrupted"


def test_re_reading_a_failed_record_in_the_overlap_window_is_not_another_attempt(db: Engine):
    h = Harness(db)
    bad = h.stores["a"].create("contacts", {"firstname": "Bad"})
    bad.fields["email"] = "bad@@x"
    for _ in range(3):
        h.run()  # each run re-reads the record: it is inside the overlap window
    [failed] = admin.list_failed(db)
    assert failed["attempts"] == 1
    admin.retry_failed(db, [failed["id"]])
    h.run()
    [failed] = admin.list_failed(db)
    assert failed["attempts"] == 2


def test_a_lease_taken_over_during_a_long_read_stops_the_run_before_any_write(
    db: Engine, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr("hub.engine.LEASE_TTL", timedelta(0))  # renew at every page
    h = Harness(db, objects=("contacts",), store_page_size=10)
    for i in range(200):
        h.add("a", "contacts", firstname=f"P{i}", email=f"p{i}@x.com")
    reads = {"n": 0}

    def another_process_takes_the_lease(operation: str, object_type: str) -> None:
        if operation == "read_changes" and object_type == "contacts":
            reads["n"] += 1
            if reads["n"] == 2:
                with db.begin() as conn:
                    conn.execute(
                        sa.update(leases).values(
                            owner="elsewhere", expires_at=datetime(2100, 1, 1, tzinfo=UTC)
                        )
                    )

    h.connectors["a"].before_call = another_process_takes_the_lease
    with pytest.raises(LeaseHeldError, match="lost the lease"):
        h.run()
    assert h.records("b", "contacts") == []
    # Stopped at once: the pages after the one that found the lease gone may already have
    # been on their way (reads run READ_AHEAD_PAGES ahead, one more waiting to be handed
    # over); the rest of the twenty were never asked for.
    assert reads["n"] <= 3 + READ_AHEAD_PAGES
    assert h.stores["b"].calls.get("read_changes", 0) == 0


def test_the_systems_of_a_two_way_sync_are_read_at_the_same_time(db: Engine) -> None:
    # Each vendor is read on its own thread: the pass waits for the slowest, not for the sum.
    h = Harness(db, objects=("contacts",), store_page_size=10)
    for i in range(300):
        h.add("a", "contacts", firstname=f"A{i}", email=f"a{i}@x.com")
        h.add("b", "contacts", firstname=f"B{i}", email=f"b{i}@x.com")
    calls: list[tuple[str, str]] = []
    for name, connector in h.connectors.items():
        connector.before_call = lambda operation, _type, name=name: calls.append((name, operation))

    report = h.run()

    assert report.exit_code == 0, report.as_dict()
    reads = {
        name: [i for i, call in enumerate(calls) if call == (name, "read_changes")] for name in "ab"
    }
    assert len(reads["a"]) == len(reads["b"]) == 30
    assert reads["b"][0] < reads["a"][-1]
    assert reads["a"][0] < reads["b"][-1]
    assert len(h.records("a", "contacts")) == len(h.records("b", "contacts")) == 600
