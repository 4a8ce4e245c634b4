"""The Zoho connector against the live Zoho sandbox: what the shared contract suite leaves out.

Zoho specifics: the 2,000-record wall and page tokens, If-Modified-Since and 304, keyset paging
that survives edits made between pages (and crowded seconds that fall back to offsets), lookups
shown as ids, upsert on Email, per-record validation errors, the token throttle, search semantics.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests

from connectors.base import Page
from connectors.errors import RecordRejected
from connectors.sandbox import Fault, Sandbox, SandboxOptions
from connectors.zoho.connector import ZohoConnector, ZohoSettings, _decode
from connectors.zoho.sandbox import ZohoApi

CONTACT_FIELDS = ["First_Name", "Last_Name", "Email", "Account_Name"]


@pytest.fixture
def api() -> ZohoApi:
    return ZohoApi(SandboxOptions())


@pytest.fixture
def sandbox(api: ZohoApi) -> Iterator[Sandbox]:
    with Sandbox(api, api.options) as served:
        yield served


def connect(sandbox: Sandbox, **overrides: Any) -> ZohoConnector:
    config = {**sandbox.connector_settings(), **overrides}
    del config["connector"]
    return ZohoConnector("zoho", ZohoSettings.model_validate(config), sleep=lambda _: None)


def read_everything(
    crm: ZohoConnector, object_type: str, fields: list[str], since: Any = None
) -> list[Page]:
    pages: list[Page] = []
    token: str | None = None
    while True:
        page = crm.read_changes(object_type, since, token, fields)
        pages.append(page)
        token = page.next_token
        if token is None:
            return pages


def raw_get(sandbox: Sandbox, crm: ZohoConnector, path: str, **params: Any) -> requests.Response:
    token = crm._account.auth.token()
    return requests.get(
        f"{sandbox.url}/crm/v8{path}",
        params=params,
        headers={"Authorization": f"Zoho-oauthtoken {token}"},
        timeout=5,
    )


def test_full_read_of_2300_records_keyset_pages_past_the_2000_wall(
    api: ZohoApi, sandbox: Sandbox
) -> None:
    api.seed_records(2300, seed=3)
    crm = connect(sandbox)

    pages = read_everything(crm, "contacts", CONTACT_FIELDS)

    records = [r for page in pages for r in page.records]
    assert len(records) == 2300
    assert len({r.id for r in records}) == 2300
    assert len(pages) == 12  # one call per 200 records (less the second re-read at each edge)
    assert [r.modified_at for r in records] == sorted(r.modified_at for r in records)
    assert all(len(r.id) == 19 and r.id.isdigit() for r in records)
    # Every page is page 1 of a request from the newest second handed out: Zoho's 2,000-record
    # wall and its page tokens only come up inside a crowded second.
    states = [_decode(page.next_token) for page in pages if page.next_token]
    assert all(set(state) == {"k", "i"} for state in states)
    assert sandbox.calls.count("GET", "/crm/v8/Contacts") == 12


def test_discrete_pages_stop_at_2000_and_tokens_are_bound(api: ZohoApi, sandbox: Sandbox) -> None:
    api.seed_records(50, seed=1)
    crm = connect(sandbox)

    wall = raw_get(sandbox, crm, "/Contacts", fields="Last_Name", page=11, per_page=200)
    assert wall.status_code == 400
    assert wall.json()["code"] == "DISCRETE_PAGINATION_LIMIT_EXCEEDED"

    first = raw_get(sandbox, crm, "/Contacts", fields="Last_Name", per_page=10)
    token = first.json()["info"]["next_page_token"]
    other = raw_get(sandbox, crm, "/Contacts", fields="Email", per_page=10, page_token=token)
    assert other.json()["code"] == "TOKEN_BOUND_DATA_MISMATCH"
    missing = raw_get(sandbox, crm, "/Contacts", per_page=10)
    assert missing.json()["code"] == "REQUIRED_PARAM_MISSING"


def test_incremental_read_returns_changes_and_304_when_none(api: ZohoApi, sandbox: Sandbox) -> None:
    api.seed_records(30, seed=2)
    crm = connect(sandbox)
    [full] = read_everything(crm, "contacts", CONTACT_FIELDS)
    cursor = max(r.modified_at for r in full.records)
    api.clock.advance(5)
    target = full.records[3].id
    api.modify("contacts", target, {"Last_Name": "Renamed"})

    [changed] = read_everything(
        crm, "contacts", CONTACT_FIELDS, since=cursor + timedelta(seconds=2)
    )

    assert [r.id for r in changed.records] == [target]
    assert changed.records[0].fields["Last_Name"] == "Renamed"
    later = changed.records[0].modified_at + timedelta(seconds=3)
    api.clock.advance(10)
    assert crm.read_changes("contacts", later, None, CONTACT_FIELDS).records == []
    assert (
        raw_get(sandbox, crm, "/Contacts", fields="Last_Name").status_code == 200
    )  # sanity: the 304 above came from If-Modified-Since


@pytest.mark.parametrize("incremental", [False, True], ids=["full", "incremental"])
def test_a_record_edited_between_pages_is_not_lost(
    api: ZohoApi, sandbox: Sandbox, incremental: bool
) -> None:
    api.seed_records(450, seed=5)
    crm = connect(sandbox)
    before = [r for page in read_everything(crm, "contacts", CONTACT_FIELDS) for r in page.records]
    # Incremental: from the 31st contact on (one contact a second), 420 records, three pages.
    since = sorted(r.modified_at for r in before)[30] if incremental else None
    existing = {r.id for r in before if since is None or r.modified_at >= since}
    first = crm.read_changes("contacts", since, None, CONTACT_FIELDS)
    assert first.next_token is not None
    # Someone edits a record the hub has already been handed: with offset paging every record
    # behind it moved up a place and the one at the next page boundary was never returned.
    edited = first.records[5].id
    api.modify("contacts", edited, {"Last_Name": "Edited Mid-Read"})

    rest: list[Page] = []
    token: str | None = first.next_token
    while token is not None:
        page = crm.read_changes("contacts", since, token, CONTACT_FIELDS)
        rest.append(page)
        token = page.next_token

    records = [*first.records, *(r for page in rest for r in page.records)]
    assert existing <= {r.id for r in records}
    newest_seen = max(r.modified_at for r in records)
    last_edited = [r for r in records if r.id == edited][-1]
    assert last_edited.fields["Last_Name"] == "Edited Mid-Read"
    assert last_edited.modified_at == newest_seen  # came back at the end, with its new stamp
    # The edit is handed out twice (old and new version); nothing else repeats.
    assert len(records) == len(existing) + 1
    if since is not None:
        assert all(r.modified_at >= since.replace(microsecond=0) for r in records)


@pytest.mark.parametrize(
    "crowds",
    [[450], [2100, 250, 1, 199]],
    ids=["one-crowded-second", "past-2000-and-adjacent-seconds"],
)
def test_crowded_seconds_return_every_record_once(
    api: ZohoApi, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, crowds: list[int]
) -> None:
    # A bulk import stamps hundreds of records with one Modified_Time (here even one
    # millisecond): more than a page, so asking again from that second cannot advance.
    instant = [api.clock.now() - timedelta(hours=1)]
    monkeypatch.setattr(api.clock, "now", lambda: instant[0])
    for n in range(3):
        api.insert("contacts", {"Last_Name": f"Before {n}"})
        instant[0] += timedelta(seconds=3)
    for size in crowds:
        for n in range(size):
            api.insert("contacts", {"Last_Name": f"Crowd {size} {n}"})
        instant[0] += timedelta(seconds=1)
    for n in range(3):
        instant[0] += timedelta(seconds=2, milliseconds=250)
        api.insert("contacts", {"Last_Name": f"After {n}"})
    monkeypatch.undo()
    crm = connect(sandbox)

    pages = read_everything(crm, "contacts", CONTACT_FIELDS)

    records = [r for page in pages for r in page.records]
    ids = [r.id for r in records]
    assert len(ids) == len(set(ids)) == len(api.snapshot("contacts")) == 6 + sum(crowds)
    assert [r.modified_at for r in records] == sorted(r.modified_at for r in records)
    # Offsets inside the crowded window cost one call a page; leaving it costs at most one
    # more call per crowd (a page that repeats the crowd's tail).
    assert len(pages) <= -(-len(ids) // 200) + len(crowds) + 1
    assert sandbox.calls.count("GET", "/crm/v8/Contacts") == len(pages)


def test_create_upserts_contacts_and_links_accounts(api: ZohoApi, sandbox: Sandbox) -> None:
    crm = connect(sandbox)
    [company] = crm.create(
        "companies", [{"Account_Name": "Zylker Corp", "Website": "zylker.example"}]
    )
    assert company.remote_id is not None
    contact = {
        "Last_Name": "Boyle",
        "Email": "Patricia@Zylker.example",
        "Account_Name": company.remote_id,
    }

    [first] = crm.create("contacts", [contact])
    [again] = crm.create("contacts", [{**contact, "Email": "patricia@zylker.example"}])

    assert first.remote_id == again.remote_id  # upsert on Email: a retried create is no duplicate
    assert len(api.snapshot("contacts")) == 1
    [read] = crm.read("contacts", [str(first.remote_id)], CONTACT_FIELDS)
    assert read.fields["Account_Name"] == company.remote_id
    assert read.modified_at == again.modified_at  # what the write said is what a read says
    raw = raw_get(sandbox, crm, f"/Contacts/{first.remote_id}").json()["data"][0]
    assert raw["Account_Name"] == {"name": "Zylker Corp", "id": company.remote_id}


def test_deal_contact_is_a_list_of_one_and_bad_records_do_not_stop_the_batch(
    api: ZohoApi, sandbox: Sandbox
) -> None:
    account = api.insert("companies", {"Account_Name": "Acme"})
    person = api.insert("contacts", {"Last_Name": "Dahl", "Account_Name": account})
    crm = connect(sandbox)

    results = crm.create(
        "deals",
        [
            {
                "Deal_Name": "Good",
                "Stage": "Qualification",
                "Account_Name": account,
                "Contact_Name": [person],
            },
            {"Deal_Name": "No stage", "Account_Name": account},
            {"Deal_Name": "Ghost", "Stage": "Closed Won", "Account_Name": "6493490000009999999"},
            {"Deal_Name": "Typo", "Stage": "Closed Won", "Amout": 5},
        ],
    )

    assert results[0].ok
    assert [(r.error.code, r.error.field) for r in results[1:] if r.error] == [
        ("MANDATORY_NOT_FOUND", "Stage"),
        ("INVALID_DATA", "Account_Name"),
        ("INVALID_DATA", "Amout"),
    ]
    deals = api.snapshot("deals")
    assert list(deals.values()) == [
        {
            "Deal_Name": "Good",
            "Stage": "Qualification",
            "Account_Name": account,
            "Contact_Name": [person],
            "Pipeline": "Standard (Standard)",
        }
    ]


def test_malformed_email_and_unknown_id_are_rejected_per_record(
    api: ZohoApi, sandbox: Sandbox
) -> None:
    person = api.insert("contacts", {"Last_Name": "Dahl", "Email": "ryan@example.com"})
    crm = connect(sandbox)

    results = crm.update(
        "contacts",
        [
            (person, {"Email": "not-an-email"}),
            ("6493490000009999999", {"Title": "CTO"}),
            (person, {"Title": "CTO"}),
        ],
    )

    assert isinstance(results[0].error, RecordRejected)
    assert (results[0].error.code, results[0].error.field) == ("INVALID_DATA", "Email")
    assert results[1].error is not None
    assert results[1].error.field == "id"
    assert results[2].ok
    assert api.snapshot("contacts")[person]["Title"] == "CTO"


def test_text_longer_than_its_field_is_refused_per_record_with_the_maximum_length(
    api: ZohoApi, sandbox: Sandbox
) -> None:
    account = api.insert("companies", {"Account_Name": "Acme"})
    crm = connect(sandbox)

    results = crm.create(
        "contacts",
        [
            {"First_Name": "A" * 40, "Last_Name": "Fits", "Account_Name": account},
            {"First_Name": "A" * 41, "Last_Name": "Over"},
            {"Last_Name": "L" * 81},
            {"Last_Name": "Title", "Title": "T" * 256},
        ],
    )
    companies = crm.create("companies", [{"Account_Name": "C" * 201}, {"Account_Name": "C" * 200}])

    assert results[0].ok
    refused = [(r.error.code, r.error.field) for r in results[1:] if r.error]
    assert refused == [
        ("INVALID_DATA", "First_Name"),
        ("INVALID_DATA", "Last_Name"),
        ("INVALID_DATA", "Title"),
    ]
    assert results[1].error is not None
    assert "maximum_length=40" in results[1].error.message
    assert [c.ok for c in companies] == [False, True]
    assert sorted(p["Last_Name"] for p in api.snapshot("contacts").values()) == ["Fits"]


def test_length_refusal_has_zohos_documented_shape(api: ZohoApi, sandbox: Sandbox) -> None:
    crm = connect(sandbox)
    token = crm._account.auth.token()
    answer = requests.post(
        f"{sandbox.url}/crm/v8/Contacts",
        json={"data": [{"Last_Name": "Dahl", "First_Name": "F" * 41}]},
        headers={"Authorization": f"Zoho-oauthtoken {token}"},
        timeout=5,
    )

    assert answer.status_code == 400
    assert answer.json() == {
        "data": [
            {
                "code": "INVALID_DATA",
                "details": {
                    "maximum_length": 40,
                    "api_name": "First_Name",
                    "json_path": "$.data[0].First_Name",
                },
                "message": "invalid data",
                "status": "error",
            }
        ]
    }


def test_deletes_are_read_back_from_the_deleted_list(api: ZohoApi, sandbox: Sandbox) -> None:
    api.seed_records(20, seed=4)
    crm = connect(sandbox)
    ids = sorted(api.snapshot("contacts"))
    before = api.clock.now()
    api.clock.advance(2)

    api.remove("contacts", ids[0])
    [by_connector, missing] = crm.delete("contacts", [ids[1], "6493490000009999999"])

    assert by_connector.ok
    assert missing.error is not None
    page = crm.read_deletes("contacts", before, None)
    assert sorted(r.id for r in page.records) == ids[:2]
    assert all(r.deleted for r in page.records)
    assert crm.read("contacts", ids[:3], CONTACT_FIELDS)[0].id == ids[2]


def test_expired_tokens_are_refreshed_and_the_throttle_is_zohos(
    api: ZohoApi, sandbox: Sandbox
) -> None:
    api.seed_records(10, seed=5)
    crm = connect(sandbox)
    crm.check()
    api.expire_tokens()

    assert len(crm.read_changes("contacts", None, None, CONTACT_FIELDS).records) == 10
    assert sandbox.calls.count("POST", "/oauth/v2/token") == 2

    form = {
        "grant_type": "refresh_token",
        "client_id": api.client_id,
        "client_secret": api.client_secret,
        "refresh_token": api.refresh_token,
    }
    answers = [
        requests.post(f"{sandbox.url}/oauth/v2/token", data=form, timeout=5) for _ in range(9)
    ]
    assert [a.status_code for a in answers].count(200) == 8
    assert answers[-1].status_code == 400
    assert answers[-1].json()["error"] == "Access Denied"
    bad = requests.post(
        f"{sandbox.url}/oauth/v2/token", data={**form, "refresh_token": "x"}, timeout=5
    )
    assert bad.json() == {"error": "invalid_code"}


def test_rate_limit_is_kept_by_the_connector_settings() -> None:
    api = ZohoApi(SandboxOptions(rate_limit=20))
    api.seed_records(10, seed=6)
    with Sandbox(api, api.options) as sandbox:
        crm = connect(sandbox)
        for _ in range(30):
            crm.read_changes("contacts", None, None, CONTACT_FIELDS)
        assert crm.http.stats.by_status.get(429, 0) == 0
        assert sandbox.calls.peak_in(1) <= 21  # the token call is not counted by Zoho


def test_sandbox_429_body_and_a_5xx_during_paging(api: ZohoApi, sandbox: Sandbox) -> None:
    api.seed_records(450, seed=7)
    crm = connect(sandbox)
    crm.check()
    sandbox.inject(Fault.SERVER_ERROR, 1, "/crm/v8/Contacts")
    sandbox.inject(Fault.RATE_LIMIT, 1, "/crm/v8/Contacts")

    pages = read_everything(crm, "contacts", CONTACT_FIELDS)

    assert sum(len(p.records) for p in pages) == 450
    assert crm.http.stats.by_status[500] == 1
    assert crm.http.stats.by_status[429] == 1
    body = api.fault_response(Fault.RATE_LIMIT, None).body  # type: ignore[arg-type]
    assert b'"code":"TOO_MANY_REQUESTS"' in body


def test_find_matches_exactly_although_zoho_equals_is_contains(
    api: ZohoApi, sandbox: Sandbox
) -> None:
    ann = api.insert("contacts", {"Last_Name": "A", "Email": "Ann@Example.com"})
    api.insert("contacts", {"Last_Name": "J", "Email": "joann@example.com"})
    crm = connect(sandbox)

    raw = raw_get(sandbox, crm, "/Contacts/search", criteria="(Email:equals:ann@example.com)")
    assert len(raw.json()["data"]) == 2  # Zoho's loose equals

    assert [r.id for r in crm.find("contacts", "Email", ["ANN@example.com"])] == [ann]
    assert crm.find("contacts", "Email", ["nobody@example.com"]) == []


def test_seeded_data_looks_like_people_typed_it(api: ZohoApi) -> None:
    api.seed_records(200, seed=8)
    contacts = api.snapshot("contacts").values()
    phones = [c["Phone"] for c in contacts]
    assert any(" " in p for p in phones)
    assert any("-" in p for p in phones)
    assert any(p.startswith("(") for p in phones)  # US national format
    assert any(c["Email"] != c["Email"].lower() for c in contacts)
    assert len(api.snapshot("companies")) == 20
    assert len(api.snapshot("deals")) == 40
    deal = next(iter(api.snapshot("deals").values()))
    assert len(deal["Contact_Name"]) == 1
    assert deal["Account_Name"]


def test_revoked_credentials_get_zohos_own_refusals_and_new_ones_work(
    api: ZohoApi, sandbox: Sandbox
) -> None:
    def refresh(refresh_token: str) -> requests.Response:
        form = {
            "grant_type": "refresh_token",
            "client_id": api.client_id,
            "client_secret": api.client_secret,
            "refresh_token": refresh_token,
        }
        return requests.post(f"{sandbox.url}/oauth/v2/token", data=form, timeout=5)

    def contacts(access_token: str) -> requests.Response:
        return requests.get(
            f"{sandbox.url}/crm/v8/Contacts",
            params={"fields": "Email"},
            headers={"Authorization": f"Zoho-oauthtoken {access_token}"},
            timeout=5,
        )

    old_refresh = api.refresh_token
    access = refresh(old_refresh).json()["access_token"]
    api.revoke_credentials()

    refused = refresh(old_refresh)
    assert refused.status_code == 200  # Zoho refuses with HTTP 200 and an "error" key
    assert refused.json() == {"error": "invalid_code"}
    answer = contacts(access)
    assert answer.status_code == 401
    assert answer.json()["code"] == "INVALID_TOKEN"

    assert api.connector_settings(sandbox.url)["refresh_token"] != old_refresh
    assert contacts(refresh(api.refresh_token).json()["access_token"]).status_code == 204
