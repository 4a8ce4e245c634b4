"""The HubSpot connector against its live sandbox: what the shared contract suite does not cover.

Associations, merges, incremental reads under concurrent edits, the search cap and crowded
instants, validation shapes, rate-limit answers.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
import requests

from connectors.base import RemoteRecord
from connectors.hubspot import sandbox as hubspot_sandbox
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.sandbox import HubSpotApi
from connectors.sandbox import RollingWindow, Sandbox, SandboxOptions
from connectors.timeparse import to_epoch_ms
from mappings.fieldmap import load_default_map

FIELDMAP = load_default_map("hubspot")


@pytest.fixture
def live() -> Iterator[tuple[HubSpotApi, Sandbox, HubSpotConnector]]:
    options = SandboxOptions(rate_limit=200, seed=3)
    api = HubSpotApi(options)
    api.seed_records(60, 3)
    # Tests page through many searches; the real 5-per-second bucket would only slow them down.
    api.search_bucket = RollingWindow(1000, 1.0)
    with Sandbox(api, options) as sandbox:
        settings = api.connector_settings(sandbox.url)
        assert settings.pop("connector") == "hubspot"
        connector = HubSpotConnector("hs", {**settings, "search_per_second": 100})
        yield api, sandbox, connector
        connector.close()


def read_all(
    connector: HubSpotConnector, object_type: str, since: datetime | None = None
) -> list[RemoteRecord]:
    records: list[RemoteRecord] = []
    token: str | None = None
    fields = FIELDMAP.vendor_fields(object_type)
    while True:
        page = connector.read_changes(object_type, since, token, fields)
        records.extend(page.records)
        token = page.next_token
        if token is None:
            return records


def test_seeded_account_reads_and_maps_with_its_references(live: Any) -> None:
    _, sandbox, hs = live
    companies = {r.id for r in read_all(hs, "companies")}
    contacts = read_all(hs, "contacts")
    deals = read_all(hs, "deals")

    assert (len(companies), len(contacts), len(deals)) == (6, 60, 12)
    assert all(r.fields["company_id"] in companies for r in contacts)
    canonical = [FIELDMAP.to_canonical("deals", r.fields) for r in deals]
    assert {c["stage"] for c in canonical} <= {
        "prospecting",
        "qualification",
        "needs_analysis",
        "proposal",
        "negotiation",
        "closed_won",
        "closed_lost",
    }
    assert all(c["contacts"] and c["company"] in companies for c in canonical)
    # One list call and one association batch read per page of contacts.
    assert sandbox.calls.count("POST", "/crm/v4/associations/contacts/companies") == 1
    # Data varies as people type it: some emails capitalised, phones in national format.
    assert any(r.fields["email"] != r.fields["email"].lower() for r in contacts)
    assert any(str(r.fields["phone"]).startswith("(") for r in contacts)


def test_a_record_edited_many_times_is_listed_once_and_the_listing_ends(live: Any) -> None:
    api, sandbox, _ = live
    settings = api.connector_settings(sandbox.url)
    settings.pop("connector")
    small_pages = HubSpotConnector("hs", {**settings, "page_size": 2})
    edited = sorted(api.snapshot("contacts"), key=int)[0]
    for n in range(3):
        api.modify("contacts", edited, {"jobtitle": f"Title {n}"})

    listed: list[str] = []
    token: str | None = None
    fields = FIELDMAP.vendor_fields("contacts")
    for _ in range(100):  # 60 contacts: 30 pages; a listing that loops never ends
        page = small_pages.read_changes("contacts", None, token, fields)
        listed.extend(record.id for record in page.records)
        token = page.next_token
        if token is None:
            break
    small_pages.close()

    assert token is None, "the listing never ended"
    assert sorted(listed, key=int) == sorted(api.snapshot("contacts"), key=int)


def test_created_records_and_references_read_back_and_stale_references_go(live: Any) -> None:
    api, _, hs = live
    company = hs.create("companies", [{"name": "Initech", "domain": "initech.example"}])[0]
    people = hs.create(
        "contacts",
        [
            {
                "email": f"p{n}@initech.example",
                "firstname": f"P{n}",
                "company_id": company.remote_id,
            }
            for n in range(3)
        ],
    )
    ids = [p.remote_id for p in people]
    deal = hs.create(
        "deals",
        [
            {
                "dealname": "Copiers",
                "dealstage": "qualifiedtobuy",
                "pipeline": "default",
                "company_id": company.remote_id,
                "contact_ids": ids[:2],
            }
        ],
    )[0]
    assert deal.ok
    assert all(p.ok for p in people)

    result = hs.update("deals", [(str(deal.remote_id), {"contact_ids": ids[1:]})])[0]

    assert result.ok
    stored = api.snapshot("deals")[str(deal.remote_id)]
    assert stored["contact_ids"] == ids[1:]
    assert stored["company_id"] == company.remote_id
    back = hs.read("contacts", [ids[0]], FIELDMAP.vendor_fields("contacts"))[0]
    assert back.fields["company_id"] == company.remote_id


def test_create_is_idempotent_for_contacts_by_email_in_any_case(live: Any) -> None:
    api, _, hs = live
    first = hs.create("contacts", [{"email": "Milton@Initech.example", "firstname": "Milton"}])[0]
    again = hs.create("contacts", [{"email": "milton@initech.example", "lastname": "Waddams"}])[0]

    assert first.remote_id == again.remote_id
    stored = api.snapshot("contacts")[str(first.remote_id)]
    assert (stored["firstname"], stored["lastname"]) == ("Milton", "Waddams")
    found = hs.find("contacts", "email", ["MILTON@initech.example"])
    assert [r.id for r in found] == [first.remote_id]


def test_bad_records_are_rejected_alone_with_hubspot_codes(live: Any) -> None:
    _, _, hs = live
    results = hs.create(
        "contacts",
        [
            {"email": "good1@x.example"},
            {"email": "not-an-email"},
            {"email": "good2@x.example", "favourite_colour": "blue"},
            {"email": "good3@x.example"},
        ],
    )

    assert [r.ok for r in results] == [True, False, False, True]
    assert results[1].error is not None
    assert results[1].error.code == "INVALID_EMAIL"
    assert results[2].error is not None
    assert (results[2].error.code, results[2].error.field) == (
        "PROPERTY_DOESNT_EXIST",
        "favourite_colour",
    )
    missing = hs.update("contacts", [("424242", {"firstname": "X"})])[0]
    assert missing.error is not None
    assert missing.error.code == "OBJECT_NOT_FOUND"


def _post(api: HubSpotApi, sandbox: Sandbox, path: str, body: Any) -> requests.Response:
    return requests.post(
        f"{sandbox.url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {api.private_app_token}"},
        timeout=5,
    )


def test_a_bad_value_refuses_its_record_alone_in_a_207_naming_it(live: Any) -> None:
    api, sandbox, _ = live
    first, second = sorted(api.snapshot("deals"))[:2]

    update = _post(
        api,
        sandbox,
        "/crm/v3/objects/deals/batch/update",
        {
            "inputs": [
                {"id": first, "properties": {"dealstage": "awaitinglegal"}},
                {"id": second, "properties": {"dealname": "Renamed"}},
            ]
        },
    )
    create = _post(
        api,
        sandbox,
        "/crm/v3/objects/companies/batch/create",
        {
            "inputs": [
                {"properties": {"name": "N" * 65_537}, "objectWriteTraceId": "0"},
                {"properties": {"name": "Fits"}, "objectWriteTraceId": "1"},
            ]
        },
    )

    assert update.status_code == 207
    [error] = update.json()["errors"]
    assert (error["category"], error["context"]) == ("VALIDATION_ERROR", {"ids": [first]})
    assert error["errors"][0]["code"] == "INVALID_OPTION"
    assert error["errors"][0]["context"] == {"propertyName": ["dealstage"]}
    assert api.snapshot("deals")[second]["dealname"] == "Renamed"
    assert create.status_code == 207
    [error] = create.json()["errors"]
    assert error["context"] == {"objectWriteTraceId": ["0"]}
    assert error["errors"][0]["context"] == {"propertyName": ["name"]}
    assert "65,536" in error["errors"][0]["message"]
    assert [r["properties"]["name"] for r in create.json()["results"]] == ["Fits"]


def test_without_trace_ids_one_bad_value_refuses_the_whole_batch_create(live: Any) -> None:
    api, sandbox, _ = live
    before = len(api.snapshot("companies"))

    answer = _post(
        api,
        sandbox,
        "/crm/v3/objects/companies/batch/create",
        {"inputs": [{"properties": {"name": "N" * 65_537}}, {"properties": {"name": "Fits"}}]},
    )

    assert answer.status_code == 400
    assert answer.json()["category"] == "VALIDATION_ERROR"
    assert len(api.snapshot("companies")) == before


def test_the_connector_reads_per_record_refusals_with_code_and_property(live: Any) -> None:
    api, _, hs = live
    deal = sorted(api.snapshot("deals"))[0]

    created = hs.create(
        "contacts", [{"email": "a@x.example", "firstname": "F" * 65_537}, {"email": "b@x.example"}]
    )
    [updated] = hs.update("deals", [(deal, {"closedate": "2026-02-30"})])

    assert created[0].error is not None
    assert (created[0].error.code, created[0].error.field) == ("VALUE_TOO_LONG", "firstname")
    assert created[1].ok
    assert updated.error is not None
    assert (updated.error.code, updated.error.field) == ("INVALID_DATE", "closedate")


def test_merged_contacts_and_deals_are_read_under_the_survivor(live: Any) -> None:
    api, _, hs = live
    contacts = sorted(api.snapshot("contacts"), key=int)
    survivor = api.merge("contacts", contacts[0], contacts[1])

    merged = hs.read("contacts", [contacts[1]], ["email"])
    assert [(r.id, r.merged_ids) for r in merged] == [(contacts[0], (contacts[1],))]
    assert survivor == contacts[0]

    deals = sorted(api.snapshot("deals"), key=int)
    new_deal = api.merge("deals", deals[0], deals[1])
    assert new_deal not in deals
    [read_back] = hs.read("deals", [deals[1]], FIELDMAP.vendor_fields("deals"))
    assert read_back.id == new_deal
    assert set(read_back.merged_ids) == {deals[0], deals[1]}
    assert read_back.fields["contact_ids"]  # associations moved to the new deal


def test_a_crowded_instant_is_read_once_each_without_looping(live: Any) -> None:
    api, sandbox, hs = live
    instant = to_epoch_ms(datetime.now(UTC)) + 86_400_000  # after every seeded record
    crowd = {
        str(api._store("contacts", {"firstname": f"Batch {n}"}, instant, instant).id)
        for n in range(450)
    }
    later = str(api._store("contacts", {"firstname": "Later"}, instant + 5, instant + 5).id)

    records = read_all(hs, "contacts", datetime.fromtimestamp(instant / 1000, UTC))

    ids = [r.id for r in records]
    assert len(ids) == len(set(ids))
    assert set(ids) == crowd | {later}
    assert sandbox.calls.count("POST", "/crm/v3/objects/contacts/search") <= 6


def test_incremental_read_never_pages_by_offset_so_the_search_cap_is_never_met(
    live: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cap of one page: any offset past the first page would be refused.
    monkeypatch.setattr(hubspot_sandbox, "SEARCH_CAP", 200)
    api, sandbox, hs = live
    base = to_epoch_ms(datetime.now(UTC)) + 86_400_000  # after every seeded record
    # Pairs of records share a millisecond, so page edges fall inside ties.
    made = {
        str(api._store("contacts", {"firstname": f"N{n}"}, base + n // 2, base + n // 2).id)
        for n in range(1500)
    }

    records = read_all(hs, "contacts", datetime.fromtimestamp(base / 1000, UTC))

    ids = [r.id for r in records]
    assert len(ids) == len(set(ids)) == 1500
    assert set(ids) == made
    assert [r.modified_at for r in records] == sorted(r.modified_at for r in records)
    # 1500 records, 200 a page less the one or two handed out at each page's last instant.
    assert sandbox.calls.count("POST", "/crm/v3/objects/contacts/search") == 8


def modified_since(api: HubSpotApi, object_type: str, since_ms: int) -> set[str]:
    return {str(r.id) for r in api._table(object_type).live.values() if r.updated_ms >= since_ms}


def test_an_edit_between_pages_of_a_read_loses_no_record(live: Any) -> None:
    """The lost-update bug: an edit moves a record handed out on page 1 to the end of the
    modified-time order; with offset paging every later record shifted one place down and the
    one at the next page edge was never returned, its update lost for good."""
    api, _, hs = live
    base = to_epoch_ms(datetime.now(UTC)) - 3_600_000
    for n in range(500):
        api._store("contacts", {"firstname": f"Old {n}"}, base + 10 * n, base + 10 * n)
    since = datetime.fromtimestamp(base / 1000, UTC)
    existing = modified_since(api, "contacts", base)
    fields = FIELDMAP.vendor_fields("contacts")

    first = hs.read_changes("contacts", since, None, fields)
    assert first.next_token is not None
    edited = first.records[len(first.records) // 2]
    api.modify("contacts", edited.id, {"firstname": "Edited mid-read"})
    records = list(first.records)
    token: str | None = first.next_token
    while token is not None:
        page = hs.read_changes("contacts", since, token, fields)
        records.extend(page.records)
        token = page.next_token

    assert {r.id for r in records} >= existing
    again = [r for r in records[len(first.records) :] if r.id == edited.id]
    assert [r.fields["firstname"] for r in again] == ["Edited mid-read"]
    assert again[0].modified_at > edited.modified_at
    # The hub's cursor goes to the newest time handed out: it cannot pass an unread edit.
    assert max(r.modified_at for r in records) == again[0].modified_at


def test_edits_between_every_page_lose_nothing_and_end_with_the_latest_values(
    live: Any,
) -> None:
    api, _, hs = live
    base = to_epoch_ms(datetime.now(UTC)) - 3_600_000
    # Triples share a millisecond, so page edges fall inside ties.
    for n in range(900):
        api._store("contacts", {"firstname": f"Old {n}"}, base + n // 3, base + n // 3)
    since = datetime.fromtimestamp(base / 1000, UTC)
    existing = sorted(modified_since(api, "contacts", base), key=int)
    fields = FIELDMAP.vendor_fields("contacts")
    rng = random.Random(7)
    latest: dict[str, str] = {}

    records: list[RemoteRecord] = []
    token: str | None = None
    for turn in range(100):
        page = hs.read_changes("contacts", since, token, fields)
        records.extend(page.records)
        token = page.next_token
        if token is None:
            break
        # Some of these were handed out already, some not yet.
        for victim in rng.sample(existing, 4):
            latest[victim] = f"Turn {turn} {victim}"
            api.modify("contacts", victim, {"firstname": latest[victim]})
    assert token is None

    assert {r.id for r in records} == set(existing)
    last_seen = {r.id: r.fields["firstname"] for r in records}
    assert {rid: last_seen[rid] for rid in latest} == latest


def test_a_crowded_instant_edited_while_paged_by_id_loses_nothing(live: Any) -> None:
    api, sandbox, hs = live
    instant = to_epoch_ms(datetime.now(UTC)) + 86_400_000  # after every seeded record
    crowd = [
        str(api._store("contacts", {"firstname": f"Batch {n}"}, instant, instant).id)
        for n in range(450)
    ]
    later = str(api._store("contacts", {"firstname": "Later"}, instant + 5, instant + 5).id)
    since = datetime.fromtimestamp(instant / 1000, UTC)
    fields = FIELDMAP.vendor_fields("contacts")
    sandbox.calls.reset()

    first = hs.read_changes("contacts", since, None, fields)
    handed_out, pending = first.records[0].id, crowd[-1]
    assert pending not in {r.id for r in first.records}
    records = list(first.records)
    token = first.next_token
    edits = 0
    while token is not None:
        page = hs.read_changes("contacts", since, token, fields)
        records.extend(page.records)
        token = page.next_token
        if edits == 0 and token is not None:
            # Mid-crowd: one record already handed out, one not yet, move out of the instant.
            for rid in (handed_out, pending):
                api.modify("contacts", rid, {"firstname": f"Edited {rid}"})
            edits += 1

    ids = [r.id for r in records]
    assert set(ids) == {*crowd, later}
    assert all(ids.count(rid) == 1 for rid in crowd if rid not in (handed_out, pending))
    final = {r.id: r.fields["firstname"] for r in records}
    assert final[handed_out] == f"Edited {handed_out}"
    assert final[pending] == f"Edited {pending}"
    assert sandbox.calls.count("POST", "/crm/v3/objects/contacts/search") <= 7


def test_search_past_10000_results_is_a_400_as_on_hubspot(live: Any) -> None:
    api, sandbox, _ = live
    token = api.private_app_token
    answer = requests.post(
        f"{sandbox.url}/crm/v3/objects/contacts/search",
        json={"limit": 200, "after": "9900"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert answer.status_code == 400
    assert answer.json()["category"] == "VALIDATION_ERROR"
    assert "X-HubSpot-RateLimit-Remaining" not in answer.headers


def test_expired_tokens_are_refreshed_and_burst_429_has_hubspot_shape(live: Any) -> None:
    api, sandbox, hs = live
    hs.check()
    issued = api.tokens.issued
    api.expire_tokens()
    hs.check()
    assert api.tokens.issued == issued + 1

    api.burst = RollingWindow(1, 10.0)
    headers = {"Authorization": f"Bearer {api.private_app_token}"}
    url = f"{sandbox.url}/crm/v3/objects/contacts"
    ok = requests.get(url, headers=headers, timeout=5)
    limited = requests.get(url, headers=headers, timeout=5)
    assert ok.headers["X-HubSpot-RateLimit-Max"] == "1"
    assert ok.headers["X-HubSpot-RateLimit-Daily"] == "1000000"
    assert limited.status_code == 429
    assert limited.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert "Retry-After" not in limited.headers


def test_the_daily_headers_count_each_call_of_the_day_and_start_again_at_midnight() -> None:
    api = HubSpotApi(SandboxOptions(seed=3))
    token = {"Authorization": f"Bearer {api.private_app_token}"}
    with Sandbox(api) as sandbox:
        url = f"{sandbox.url}/crm/v3/objects/contacts"

        def daily_remaining() -> int:
            answer = requests.get(url, headers=token, timeout=5)
            assert answer.headers["X-HubSpot-RateLimit-Daily"] == str(hubspot_sandbox.DAILY)
            return int(answer.headers["X-HubSpot-RateLimit-Daily-Remaining"])

        counted = [daily_remaining() for _ in range(3)]
        searched = requests.post(f"{url}/search", json={}, headers=token, timeout=5)
        after_search = daily_remaining()
        now = api.clock.now()
        midnight = datetime.combine(now.date() + timedelta(days=1), time(), UTC)
        api.clock.advance((midnight - now).total_seconds())
        next_day = daily_remaining()

    assert counted == [hubspot_sandbox.DAILY - n for n in (1, 2, 3)]
    assert "X-HubSpot-RateLimit-Daily-Remaining" not in searched.headers
    assert after_search == hubspot_sandbox.DAILY - 4  # search has its own budget
    assert next_day == hubspot_sandbox.DAILY - 1


def test_oauth_calls_get_the_ten_second_headers_and_no_daily_ones(live: Any) -> None:
    api, sandbox, hs = live
    hs.check()
    access = api.tokens.issue()

    answer = requests.get(
        f"{sandbox.url}/crm/v3/objects/contacts",
        headers={"Authorization": f"Bearer {access}"},
        timeout=5,
    )

    assert int(answer.headers["X-HubSpot-RateLimit-Remaining"]) == api.burst.remaining()
    assert "X-HubSpot-RateLimit-Daily" not in answer.headers
    assert set(hs.headroom()) == {"10s"}


def test_removed_records_are_read_as_deletes(live: Any) -> None:
    api, _, hs = live
    before = datetime.now(UTC).replace(microsecond=0)
    victim = sorted(api.snapshot("companies"), key=int)[0]
    api.remove("companies", victim)

    page = hs.read_deletes("companies", before, None)

    assert [(r.id, r.deleted) for r in page.records] == [(victim, True)]
    assert victim not in {r.id for r in read_all(hs, "companies")}


def test_new_records_get_their_associations_without_reading_any_first(live: Any) -> None:
    api, sandbox, hs = live
    company = sorted(api.snapshot("companies"))[0]
    known = api.snapshot("contacts")
    existing_id, existing = sorted(known.items())[0]
    sandbox.calls.reset()
    created = hs.create(
        "contacts",
        [
            {"email": "fresh.one@assoc.example", "lastname": "One", "company_id": company},
            {"email": "fresh.two@assoc.example", "lastname": "Two", "company_id": company},
        ],
    )
    assert all(result.ok for result in created)
    reads = "/crm/v4/associations/contacts/companies/batch/read"
    assert sandbox.calls.count("POST", reads) == 0  # HubSpot said both are new
    assert all(api.snapshot("contacts")[r.remote_id]["company_id"] == company for r in created)

    # An upsert landing on a contact that exists may find associations to replace: it reads.
    [again] = hs.create(
        "contacts", [{"email": existing["email"], "lastname": "Again", "company_id": company}]
    )
    assert again.remote_id == existing_id
    assert sandbox.calls.count("POST", reads) == 1
    assert api.snapshot("contacts")[existing_id]["company_id"] == company


def test_batch_writes_stamped_alike_still_read_200_new_records_a_page(live: Any) -> None:
    # A batch write stamps its hundred records with one instant: a page that ends inside such
    # an instant must not make the next page return that instant's records again.
    api, sandbox, hs = live
    start = to_epoch_ms(datetime.now(UTC)) + 86_400_000  # after every seeded record
    written = [
        str(api._store("contacts", {"firstname": f"B{b}-{n}"}, start + b, start + b).id)
        for b in range(6)
        for n in range(100)
    ]
    sandbox.calls.reset()
    records = read_all(hs, "contacts", datetime.fromtimestamp(start / 1000, UTC))
    assert sorted(r.id for r in records) == sorted(written)
    assert sandbox.calls.count("POST", "/crm/v3/objects/contacts/search") == 3


def test_revoked_credentials_get_hubspots_own_refusals_and_new_ones_work(live: Any) -> None:
    api, sandbox, _ = live
    old = api.connector_settings(sandbox.url)
    old_private = api.private_app_token
    contacts = f"{sandbox.url}/crm/v3/objects/contacts"

    def refresh(settings: dict[str, Any]) -> requests.Response:
        form = {key: settings[key] for key in ("client_id", "client_secret", "refresh_token")}
        return requests.post(
            f"{sandbox.url}/oauth/v1/token", data={"grant_type": "refresh_token", **form}, timeout=5
        )

    access = refresh(old).json()["access_token"]
    api.revoke_credentials()

    refused = refresh(old)
    assert refused.status_code == 400
    assert refused.json()["status"] == "BAD_REFRESH_TOKEN"
    for token in (access, old_private):
        answer = requests.get(contacts, headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert answer.status_code == 401
        assert answer.json()["category"] == "INVALID_AUTHENTICATION"

    new = api.connector_settings(sandbox.url)
    assert new["refresh_token"] != old["refresh_token"]
    fresh = refresh(new).json()["access_token"]
    for token in (fresh, api.private_app_token):
        answer = requests.get(contacts, headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert answer.status_code == 200
