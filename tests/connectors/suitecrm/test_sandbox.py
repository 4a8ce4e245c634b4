"""The SuiteCRM connector against the live SuiteCRM sandbox: what the shared contract leaves out.

SuiteCRM specifics: the two API roots, grant-bound OAuth clients, silent 20-row pages and random
order when ``page[size]``/``sort`` are missing, keyset reads that survive edits between pages
and crowded seconds, lying offsets and zeroed seconds, every error a 400 with ``errors`` an
object, PATCH answering 201 and ignoring ``null``, soft deletes, ``account_id`` links and the
relationships endpoints, the ``email1`` PATCH bug, the request budget.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from connectors.base import Page
from connectors.sandbox import Sandbox, SandboxOptions
from connectors.suitecrm.connector import SuiteCrmConnector, SuiteCrmSettings
from connectors.suitecrm.sandbox import SuiteCrmApi
from mappings.fieldmap import load_default_map

CONTACT_FIELDS = ["first_name", "last_name", "email1", "title", "account_id"]


@pytest.fixture
def api() -> SuiteCrmApi:
    return SuiteCrmApi(SandboxOptions(seed=1))


@pytest.fixture
def sandbox(api: SuiteCrmApi) -> Iterator[Sandbox]:
    with Sandbox(api, api.options) as served:
        yield served


def connect(sandbox: Sandbox, **overrides: Any) -> SuiteCrmConnector:
    config = {**sandbox.connector_settings(), **overrides}
    del config["connector"]
    return SuiteCrmConnector("suite", SuiteCrmSettings.model_validate(config), sleep=lambda _: None)


def read_everything(
    crm: SuiteCrmConnector, object_type: str, fields: list[str], since: datetime | None = None
) -> list[Page]:
    pages: list[Page] = []
    token: str | None = None
    while True:
        page = crm.read_changes(object_type, since, token, fields)
        pages.append(page)
        token = page.next_token
        if token is None:
            return pages


def raw(
    sandbox: Sandbox, crm: SuiteCrmConnector, method: str, path: str, **options: Any
) -> requests.Response:
    return requests.request(
        method,
        f"{sandbox.url}/legacy/Api/V8{path}",
        headers={"Authorization": f"Bearer {crm.auth.token()}"},
        timeout=5,
        **options,
    )


def contacts(n: int, prefix: str = "bulk") -> list[dict[str, Any]]:
    return [
        {"first_name": "Bulk", "last_name": f"Row {i}", "email1": f"{prefix}.{i}@bulk.example"}
        for i in range(n)
    ]


# ---------------------------------------------------------------------------------------------
# Reads


def test_a_record_edited_between_pages_is_not_lost(api: SuiteCrmApi, sandbox: Sandbox) -> None:
    api.seed_records(600, seed=2)
    crm = connect(sandbox, page_size=100)
    first = crm.read_changes("contacts", None, None, CONTACT_FIELDS)
    assert first.next_token
    # Under offset paging, editing a record already read shifts every later record up a place
    # and the one at the next page boundary is never read.
    api.modify("contacts", first.records[0].id, {"title": "Edited Mid-Read"})
    seen = [*first.records]
    token: str | None = first.next_token
    while token:
        page = crm.read_changes("contacts", None, token, CONTACT_FIELDS)
        seen.extend(page.records)
        token = page.next_token

    assert {r.id for r in seen} == set(api.snapshot("contacts"))
    last = {r.id: r for r in seen}[first.records[0].id]
    assert last.fields["title"] == "Edited Mid-Read"
    stamps = [r.modified_at for r in seen]
    assert stamps == sorted(stamps)


def test_a_bulk_import_in_one_second_is_read_once_by_id(api: SuiteCrmApi, sandbox: Sandbox) -> None:
    api.seed_records(30, seed=4)
    imported = api.bulk_import("contacts", contacts(450))
    crm = connect(sandbox, page_size=100)

    pages = read_everything(crm, "contacts", CONTACT_FIELDS)

    ids = [r.id for page in pages for r in page.records]
    assert len(ids) == len(set(ids)) == 480
    assert set(imported) <= set(ids)
    # 480 records, 100 a page: the crowded second costs two calls beyond the minimum of five
    # (its first 70 rows, read again by id, and one to find nothing after the second).
    assert len(pages) <= 7


def test_incremental_reads_cope_with_lying_offsets_and_zeroed_seconds(sandbox: Sandbox) -> None:
    api = sandbox.api
    assert isinstance(api, SuiteCrmApi)
    api.zero_seconds = True
    api.seed_records(40, seed=5)
    crm = connect(sandbox, minute_stamps=True)
    assert crm.capabilities.modified_precision == timedelta(minutes=1)
    everything = [r for p in read_everything(crm, "contacts", CONTACT_FIELDS) for r in p.records]
    assert all(r.modified_at.second == 0 for r in everything)
    touched = everything[5].id
    api.modify("contacts", touched, {"title": "Moved"})
    since = datetime.now(UTC) - timedelta(seconds=2)

    changed = [
        r for p in read_everything(crm, "contacts", CONTACT_FIELDS, since) for r in p.records
    ]

    assert touched in {r.id for r in changed}
    assert all(r.modified_at >= since - timedelta(minutes=1) for r in changed)


def test_zeroed_seconds_without_minute_stamps_still_end_and_lose_nothing(
    sandbox: Sandbox,
) -> None:
    api = sandbox.api
    assert isinstance(api, SuiteCrmApi)
    api.zero_seconds = True  # and the connector is not told: stamps look older than filters
    imported: list[str] = []
    for second in range(3):
        imported += api.bulk_import("contacts", contacts(120, prefix=f"s{second}"))
        api.clock.advance(1)
    crm = connect(sandbox, page_size=100)

    pages = read_everything(crm, "contacts", CONTACT_FIELDS)

    assert {r.id for page in pages for r in page.records} == set(imported)
    # A page showing only whole minutes makes the crowded window the minute, read by id, not
    # walked a second at a time (~60 calls): six calls, eight when the import straddles a
    # minute (two crowded windows).
    assert len(pages) <= 8


def test_without_page_size_or_sort_suitecrm_pages_silently_and_unstably(
    api: SuiteCrmApi, sandbox: Sandbox
) -> None:
    api.seed_records(60, seed=6)
    crm = connect(sandbox)

    bare = raw(sandbox, crm, "GET", "/module/Contacts").json()
    again = raw(sandbox, crm, "GET", "/module/Contacts").json()
    paged = raw(
        sandbox, crm, "GET", "/module/Contacts", params={"page[size]": 25, "page[number]": 2}
    ).json()

    assert len(bare["data"]) == 20
    assert "meta" not in bare
    assert "links" not in bare
    assert [r["id"] for r in bare["data"]] != [r["id"] for r in again["data"]]
    assert bare["data"][0]["type"] == "Contact"
    assert paged["meta"] == {"total-pages": 3, "records-on-this-page": 25}
    assert paged["links"]["next"].startswith("/V8/module/Contacts?")
    assert "page[number]=3" in paged["links"]["next"]
    assert set(paged["links"]) == {"first", "prev", "next", "last"}


def test_every_error_is_a_400_with_an_errors_object(api: SuiteCrmApi, sandbox: Sandbox) -> None:
    crm = connect(sandbox)

    missing = raw(sandbox, crm, "GET", "/module/Contacts/11a71596-83e7-624d-c792-5ab9006dd493")
    bad_filter = raw(sandbox, crm, "GET", "/module/Contacts", params={"filter[nickname][eq]": "x"})
    relate = raw(sandbox, crm, "GET", "/module/Contacts", params={"filter[account_id][eq]": "x"})
    extra = raw(
        sandbox,
        crm,
        "POST",
        "/module",
        json={"data": {"type": "Contacts", "attributes": {}, "relationships": {}}},
    )

    for answer in (missing, bad_filter, relate, extra):
        assert answer.status_code == 400
        assert answer.json()["errors"]["title"] is None
        assert isinstance(answer.json()["errors"], dict)
    assert missing.json()["errors"]["detail"].endswith("is not found")
    assert "Filter field nickname in Contact module is not found" in bad_filter.text
    assert 'The option \\"relationships\\" does not exist' in extra.text


def test_expired_and_missing_tokens_get_leagues_401(api: SuiteCrmApi, sandbox: Sandbox) -> None:
    crm = connect(sandbox)
    token = crm.auth.token()
    api.expire_tokens()

    expired = requests.get(
        f"{sandbox.url}/legacy/Api/V8/module/Contacts",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    missing = requests.get(f"{sandbox.url}/legacy/Api/V8/module/Contacts", timeout=5)

    assert expired.status_code == missing.status_code == 401
    assert expired.json()["error"] == "access_denied"
    assert expired.json()["hint"] == "Access token could not be verified"
    assert missing.json()["hint"] == 'Missing "Authorization" header'


def test_a_client_only_works_with_its_own_grant(api: SuiteCrmApi, sandbox: Sandbox) -> None:
    cc_id, cc_secret = api.client_for("client_credentials")
    pw_id, pw_secret = api.client_for("password")
    url = f"{sandbox.url}/legacy/Api/access_token"

    good = requests.post(
        url,
        json={"grant_type": "client_credentials", "client_id": cc_id, "client_secret": cc_secret},
        timeout=5,
    )
    wrong = requests.post(
        url,
        data={"grant_type": "client_credentials", "client_id": pw_id, "client_secret": pw_secret},
        timeout=5,
    )

    assert good.status_code == 200
    assert "refresh_token" not in good.json()
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    settings = {**sandbox.connector_settings(), "client_id": cc_id, "client_secret": cc_secret}
    for key in ("grant_type", "username", "password", "connector"):
        settings.pop(key)
    SuiteCrmConnector("cc", SuiteCrmSettings.model_validate(settings)).check()


def test_a_7x_site_at_api_is_detected() -> None:
    seven = SuiteCrmApi(SandboxOptions(), api_root="/Api")
    seven.seed_records(10, seed=7)
    with Sandbox(seven, seven.options) as served:
        crm = connect(served)
        page = crm.read_changes("contacts", None, None, CONTACT_FIELDS)
        assert len(page.records) == 10
        assert served.calls.count("POST", "/legacy/Api/access_token") == 1  # the 8.x probe
        assert served.calls.count("GET", "/Api/V8/module/Contacts") == 1


# ---------------------------------------------------------------------------------------------
# Writes


def test_patch_answers_201_ignores_null_keeps_a_sent_date_modified(
    api: SuiteCrmApi, sandbox: Sandbox
) -> None:
    crm = connect(sandbox)
    record_id = api.insert("contacts", {"last_name": "Hopper", "title": "Rear Admiral"})

    patched = raw(
        sandbox,
        crm,
        "PATCH",
        "/module",
        json={
            "data": {
                "type": "Contacts",
                "id": record_id,
                "attributes": {"title": None, "first_name": "Grace"},
            }
        },
    )
    echoed = raw(
        sandbox,
        crm,
        "PATCH",
        "/module",
        json={
            "data": {
                "type": "Contact",
                "id": record_id,
                "attributes": {"date_modified": "2001-02-03 04:05:06"},
            }
        },
    )

    assert patched.status_code == 201
    assert patched.json()["data"]["attributes"]["title"] == "Rear Admiral"  # null ignored
    assert patched.json()["data"]["attributes"]["first_name"] == "Grace"
    # A date_modified sent back is kept: the echo hazard the connector never triggers.
    assert echoed.json()["data"]["attributes"]["date_modified"].startswith("2001-02-03T04:05:06")
    [result] = crm.update("contacts", [(record_id, {"title": None, "last_name": "Hopper"})])
    assert result.ok
    assert result.modified_at is not None
    assert result.modified_at.year == datetime.now(UTC).year  # stamped, not echoed
    assert "title" not in api.snapshot("contacts")[record_id]


def test_account_id_links_and_the_relationships_endpoint_agrees(
    api: SuiteCrmApi, sandbox: Sandbox
) -> None:
    crm = connect(sandbox)
    [company, other] = crm.create("companies", [{"name": "Analytical Engines"}, {"name": "Mill"}])
    assert company.remote_id
    assert other.remote_id
    [person] = crm.create(
        "contacts", [{"last_name": "Lovelace", "account_id": [company.remote_id]}]
    )
    assert person.remote_id
    [deal] = crm.create(
        "deals",
        [
            {
                "name": "Difference engine",
                "amount": "1200",
                "sales_stage": "Id. Decision Makers",
                "account_id": company.remote_id,
            }
        ],
    )
    assert deal.remote_id

    related = raw(
        sandbox, crm, "GET", f"/module/Accounts/{company.remote_id}/relationships/contacts"
    )
    assert [r["id"] for r in related.json()["data"]] == [person.remote_id]
    crm.update("contacts", [(person.remote_id, {"account_id": other.remote_id})])
    moved = raw(sandbox, crm, "GET", f"/module/Accounts/{company.remote_id}/relationships/contacts")
    assert moved.json()["data"] == []
    assert "There is no relationship set in Account module" in moved.json()["meta"]["message"]

    fieldmap = load_default_map("suitecrm")
    [back] = crm.read("deals", [deal.remote_id], fieldmap.vendor_fields("deals"))
    canonical = fieldmap.to_canonical("deals", back.fields)
    assert canonical["stage"] == "needs_analysis"
    assert canonical["amount"] == "1200"  # read back as decimal(26,6) text
    assert back.fields["amount"] == "1200.000000"
    assert back.fields["account_id"] == company.remote_id


def test_the_email1_patch_bug_is_reported_not_believed(sandbox: Sandbox) -> None:
    api = sandbox.api
    assert isinstance(api, SuiteCrmApi)
    api.email1_patch_bug = True
    crm = connect(sandbox)
    record_id = api.insert("contacts", {"last_name": "Byron", "email1": "old@byron.example"})

    [result] = crm.update("contacts", [(record_id, {"email1": "new@byron.example"})])

    assert result.error is not None
    assert result.error.code == "EMAIL1_NOT_UPDATED"
    assert api.snapshot("contacts")[record_id]["email1"] == "old@byron.example"


def test_a_deleted_record_is_gone_from_reads_and_found_by_read_deletes(
    api: SuiteCrmApi, sandbox: Sandbox
) -> None:
    crm = connect(sandbox)
    before = datetime.now(UTC) - timedelta(seconds=2)
    [kept, gone] = crm.create("contacts", [{"last_name": "Kept"}, {"last_name": "Gone"}])
    assert gone.remote_id
    assert kept.remote_id

    [result] = crm.delete("contacts", [gone.remote_id])
    again = crm.delete("contacts", [gone.remote_id])

    assert result.ok
    assert not again[0].ok  # a deleted record is "not found"
    deletes = crm.read_deletes("contacts", before, None)
    assert [r.id for r in deletes.records] == [gone.remote_id]
    assert crm.read("contacts", [gone.remote_id, kept.remote_id], ["last_name"])[0].id == (
        kept.remote_id
    )
    changed = read_everything(crm, "contacts", ["last_name"], before)
    assert [r.id for p in changed for r in p.records] == [kept.remote_id]


def test_find_matches_email_whatever_its_case(api: SuiteCrmApi, sandbox: Sandbox) -> None:
    crm = connect(sandbox)
    record_id = api.insert("contacts", {"last_name": "Case", "email1": "Mixed.Case@Example.com"})

    found = crm.find("contacts", "email1", ["mixed.case@example.com", "nobody@example.com"])

    assert [r.id for r in found] == [record_id]


def test_two_alike_records_created_at_once_are_two_records_with_ids_of_their_own() -> None:
    # Two writer threads (max_concurrency) may send records whose payloads are the same: two
    # companies named alike with nothing else known. Each is its own record in SuiteCRM, not
    # one answered twice as "already exists".
    api = SuiteCrmApi(SandboxOptions(seed=1, latency_ms=100))
    alike = {"name": "Acme"}
    with Sandbox(api, api.options) as served:
        crm = connect(served)
        crm.auth.token()
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda _: crm.create("companies", [alike]), range(2)))
    ids = [result.remote_id for [result] in answers]
    assert all(result.ok for [result] in answers), answers
    assert len(set(ids)) == 2
    assert served.calls.peak_in_flight == 2
    named = [r for r in api.snapshot("companies").values() if r.get("name") == "Acme"]
    assert len(named) == 2


# ---------------------------------------------------------------------------------------------
# Limits and seeded data


def test_over_budget_requests_get_429_with_retry_after() -> None:
    api = SuiteCrmApi(SandboxOptions(rate_limit=3))
    with Sandbox(api, api.options) as served:
        url = f"{served.url}/legacy/Api/V8/current-user"
        answers = [requests.get(url, timeout=5) for _ in range(5)]
    refused = [a for a in answers if a.status_code == 429]
    assert refused
    assert int(refused[0].headers["Retry-After"]) >= 1
    assert refused[0].json()["errors"]["status"] == 429
    assert api.connector_settings("http://x")["rate_limit"] == "3 per 1 second"


def test_seeded_data_looks_like_people_typed_it(api: SuiteCrmApi) -> None:
    api.seed_records(200, seed=8)
    people = api.snapshot("contacts")
    companies = api.snapshot("companies")
    deals = api.snapshot("deals")

    assert len(people) == 200
    assert len(companies) == 20
    assert len(deals) == 40
    phones = [p["phone_work"] for p in people.values()]
    assert any(p.startswith("+") and " " in p for p in phones)
    assert any(not p.startswith("+") for p in phones)  # national format
    assert any(p != p.lower() for p in (c["email1"] for c in people.values()))
    assert all(p["account_id"] in companies for p in people.values())
    assert all(d["amount"].endswith(".000000") for d in deals.values())
    fieldmap = load_default_map("suitecrm")
    for object_type, rows in (("companies", companies), ("contacts", people), ("deals", deals)):
        for fields in list(rows.values())[:20]:
            assert fieldmap.to_canonical(object_type, fields)


def test_revoked_credentials_get_leagues_refusals_and_new_ones_work(
    api: SuiteCrmApi, sandbox: Sandbox
) -> None:
    old = api.connector_settings(sandbox.url)
    token_url = f"{sandbox.url}/legacy/Api/access_token"
    password_grant = {
        "grant_type": "password",
        **{key: old[key] for key in ("client_id", "client_secret", "username", "password")},
    }
    issued = requests.post(token_url, data=password_grant, timeout=5).json()
    api.revoke_credentials()

    wrong_secret = requests.post(token_url, data=password_grant, timeout=5)
    assert wrong_secret.status_code == 401
    assert wrong_secret.json()["error"] == "invalid_client"
    new = api.connector_settings(sandbox.url)
    assert new["client_secret"] != old["client_secret"]
    old_refresh = requests.post(
        token_url,
        data={
            "grant_type": "refresh_token",
            "client_id": new["client_id"],
            "client_secret": new["client_secret"],
            "refresh_token": issued["refresh_token"],
        },
        timeout=5,
    )
    assert old_refresh.status_code == 401
    assert old_refresh.json()["error"] == "invalid_request"
    contacts = f"{sandbox.url}/legacy/Api/V8/module/Contacts"
    revoked = requests.get(
        contacts, headers={"Authorization": f"Bearer {issued['access_token']}"}, timeout=5
    )
    assert revoked.status_code == 401
    assert revoked.json()["hint"] == "Access token has been revoked"

    assert connect(sandbox).read_changes("contacts", None, None, ["email1"]).records == []
