"""HubSpotConnector against recorded HubSpot bodies: reads, paging, auth, limits, batch writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import pytest
import responses
from responses import matchers

from connectors.base import ReportsHeadroom
from connectors.errors import (
    AuthError,
    ConnectorConfigError,
    RateLimited,
    RecordRejected,
    VendorError,
)
from connectors.hubspot.connector import HubSpotConnector, HubSpotSettings
from connectors.hubspot.errors import DailyLimitReached
from connectors.hubspot.search import LIMIT, SearchCursor, decode_token
from tests.connectors.conftest import sample

BASE = "https://api.hubapi.com"
CONTACTS = f"{BASE}/crm/v3/objects/contacts"
TOKEN_URL = f"{BASE}/oauth/v1/token"
PRIVATE = "pat-test-private-app-0123456789"
SECRET = "client-secret-do-not-leak-42"
REFRESH = "refresh-token-do-not-leak-43"
CONTACT_FIELDS = ["email", "firstname", "lastname"]
FAST = {"requests_per_10s": 100_000, "search_per_second": 100}


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def private_app(**extra: Any) -> tuple[HubSpotConnector, Sleeps]:
    sleeps = Sleeps()
    settings = {"token": PRIVATE, **FAST, **extra}
    return HubSpotConnector("hs", settings, sleep=sleeps), sleeps


def oauth_app() -> tuple[HubSpotConnector, Sleeps]:
    sleeps = Sleeps()
    settings = {"client_id": "app-1", "client_secret": SECRET, "refresh_token": REFRESH, **FAST}
    return HubSpotConnector("hs", settings, sleep=sleeps), sleeps


def token_answer(access: str) -> dict[str, Any]:
    return {
        "token_type": "bearer",
        "refresh_token": REFRESH,
        "access_token": access,
        "expires_in": 1800,
        "token_use": "access_token",
    }


# ---------------------------------------------------------------------------------- settings


def test_settings_need_one_complete_way_to_authenticate() -> None:
    with pytest.raises(ConnectorConfigError, match="refresh_token"):
        HubSpotConnector("hs", {"client_id": "a", "client_secret": "b"})
    with pytest.raises(ConnectorConfigError, match="not both"):
        HubSpotConnector("hs", {"token": PRIVATE, "client_id": "a"})
    with pytest.raises(ConnectorConfigError, match="page_size"):
        HubSpotConnector("hs", {"token": PRIVATE, "page_size": 500})
    settings = HubSpotSettings.model_validate({"token": PRIVATE})
    assert settings.base_url == BASE
    assert PRIVATE not in repr(settings)


# ---------------------------------------------------------------------------------- full read


def test_full_read_lists_100_with_mapped_properties_and_pages_with_after(
    rsps: responses.RequestsMock,
) -> None:
    wanted = "email,firstname,lastname,lastmodifieddate,hs_merged_object_ids"
    rsps.get(
        CONTACTS,
        json=sample("hubspot-contacts-list-page"),
        match=[
            matchers.query_param_matcher(
                {"limit": "100", "properties": wanted, "archived": "false"}
            )
        ],
    )
    last_page = {"results": sample("hubspot-contacts-list-page")["results"][:1]}
    rsps.get(
        CONTACTS,
        json=last_page,
        match=[
            matchers.query_param_matcher(
                {"limit": "100", "properties": wanted, "archived": "false", "after": "394"}
            )
        ],
    )
    hs, _ = private_app()

    first = hs.read_changes("contacts", None, None, CONTACT_FIELDS)
    assert first.next_token is not None
    second = hs.read_changes("contacts", None, first.next_token, CONTACT_FIELDS)

    assert [r.id for r in first.records] == ["1", "51", "101"]
    assert first.records[1].fields == {
        "email": "b@example.com",
        "firstname": None,
        "lastname": None,
    }
    assert first.records[1].modified_at == datetime(2023, 12, 13, 22, 45, 30, 353000, tzinfo=UTC)
    assert second.next_token is None
    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {PRIVATE}"


def test_a_garbage_modified_time_is_a_vendor_error_naming_record_and_value(
    rsps: responses.RequestsMock,
) -> None:
    page = sample("hubspot-contacts-list-page")
    page["results"][1]["properties"]["lastmodifieddate"] = "yesterday-ish"
    page["results"][1]["updatedAt"] = "yesterday-ish"
    rsps.get(CONTACTS, json=page)
    hs, _ = private_app()

    # Not a ValueError escaping the connector (that stopped the whole run): HubSpot's answer
    # cannot be used, the system is dropped from this run, and the message names the culprit.
    with pytest.raises(VendorError) as info:
        hs.read_changes("contacts", None, None, CONTACT_FIELDS)

    assert info.value.message == (
        "HubSpot contacts 51 came without a readable modified time ('yesterday-ish')"
    )


def test_references_come_from_one_v4_batch_read_per_page(rsps: responses.RequestsMock) -> None:
    page = {"results": sample("hubspot-contacts-search-page1")["results"]}
    page["results"].append(sample("hubspot-contacts-search-lastpage")["results"][0])
    rsps.get(CONTACTS, json=page)
    rsps.post(
        f"{BASE}/crm/v4/associations/contacts/companies/batch/read",
        status=207,
        json=sample("hubspot-assoc-v4-batch-read-207"),
        match=[matchers.json_params_matcher({"inputs": [{"id": "501"}, {"id": "103107104018"}]})],
    )
    hs, _ = private_app()

    records = hs.read_changes("contacts", None, None, [*CONTACT_FIELDS, "company_id"]).records

    # toObjectId is a JSON number in v4 answers; a 207 NO_ASSOCIATIONS_FOUND means no company.
    assert [r.fields["company_id"] for r in records] == ["29022297485", None]


# ---------------------------------------------------------------------------------- incremental


def search_body(*filters: dict[str, str], sort: str = "lastmodifieddate") -> dict[str, Any]:
    """The body of one page of the incremental search: never an ``after`` offset."""
    return {
        "filterGroups": [{"filters": list(filters)}],
        "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
        "properties": [*CONTACT_FIELDS, "lastmodifieddate", "hs_merged_object_ids"],
        "limit": 200,
    }


def since_ms(ms: int) -> dict[str, str]:
    return {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(ms)}


def after_handed_out(ms: int, *ids: str) -> dict[str, Any]:
    """A later page's body: what is left at the newest instant handed out, or anything later."""
    return {
        "filterGroups": [
            {
                "filters": [
                    {"propertyName": "lastmodifieddate", "operator": "EQ", "value": str(ms)},
                    {"propertyName": "hs_object_id", "operator": "NOT_IN", "values": list(ids)},
                ]
            },
            {"filters": [{"propertyName": "lastmodifieddate", "operator": "GT", "value": str(ms)}]},
        ],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": [*CONTACT_FIELDS, "lastmodifieddate", "hs_merged_object_ids"],
        "limit": 200,
    }


def hits(*records: tuple[str, int], more: bool) -> dict[str, Any]:
    """A search answer holding ``(id, modified ms)`` records, with ``paging`` when ``more``."""
    answer: dict[str, Any] = {
        "total": len(records) + (1 if more else 0),
        "results": [
            {
                "id": rid,
                "properties": {
                    "hs_object_id": rid,
                    "email": f"c{rid}@example.com",
                    "lastmodifieddate": datetime.fromtimestamp(ms / 1000, UTC)
                    .isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z"),
                },
            }
            for rid, ms in records
        ],
    }
    if more:
        # HubSpot's offset; the connector must not send it back.
        answer["paging"] = {"next": {"after": str(len(records))}}
    return answer


def read_pages(hs: HubSpotConnector, since: datetime) -> list[list[str]]:
    pages: list[list[str]] = []
    token: str | None = None
    while True:
        page = hs.read_changes("contacts", since, token, CONTACT_FIELDS)
        pages.append([r.id for r in page.records])
        token = page.next_token
        if token is None:
            return pages


def test_incremental_read_searches_on_lastmodifieddate_ascending(
    rsps: responses.RequestsMock,
) -> None:
    since = datetime(2025, 1, 1, tzinfo=UTC)
    body = search_body(since_ms(1735689600000))
    rsps.post(
        f"{CONTACTS}/search",
        json=sample("hubspot-contacts-search-page1"),
        match=[matchers.json_params_matcher(body)],
    )
    # The second page is a fresh query from the newest modified time handed out (501's), not
    # the offset HubSpot offered ("after": "54").
    rsps.post(
        f"{CONTACTS}/search",
        json=sample("hubspot-contacts-search-lastpage"),
        match=[matchers.json_params_matcher(after_handed_out(1738007595581, "501"))],
    )
    hs, _ = private_app()

    first = hs.read_changes("contacts", since, None, CONTACT_FIELDS)
    assert first.next_token is not None
    assert decode_token(first.next_token) == {"m": "s", "f": 1738007595581, "s": ["501"]}
    second = hs.read_changes("contacts", since, first.next_token, CONTACT_FIELDS)

    assert [r.id for r in first.records] == ["501"]
    assert [r.id for r in second.records] == ["103107104018"]
    assert second.next_token is None
    # Search calls carry no rate headers and go through the search budget, not the burst one.
    assert "X-HubSpot-RateLimit-Remaining" not in rsps.calls[0].response.headers


def test_every_page_is_a_fresh_search_from_the_newest_time_handed_out(
    rsps: responses.RequestsMock,
) -> None:
    """The request sequence of a read during which record 1 is edited (it moves to 1700)."""
    search = f"{CONTACTS}/search"
    rsps.post(
        search,
        json=hits(("1", 1000), ("2", 1500), ("3", 1500), more=True),
        match=[matchers.json_params_matcher(search_body(since_ms(1000)))],
    )
    # 2 and 3 share the newest instant: the next query leaves them out; 1 was edited.
    rsps.post(
        search,
        json=hits(("4", 1600), ("1", 1700), more=True),
        match=[matchers.json_params_matcher(after_handed_out(1500, "2", "3"))],
    )
    rsps.post(
        search,
        json=hits(("5", 1800), more=False),
        match=[matchers.json_params_matcher(after_handed_out(1700, "1"))],
    )
    hs, _ = private_app()

    pages = read_pages(hs, datetime.fromtimestamp(1, UTC))

    assert pages == [["1", "2", "3"], ["4", "1"], ["5"]]
    assert len(rsps.calls) == 3  # one search call a page, as before
    assert all("after" not in json.loads(call.request.body) for call in rsps.calls)


def test_a_crowded_instant_is_paged_by_object_id_then_time_resumes_a_millisecond_later(
    rsps: responses.RequestsMock,
) -> None:
    search = f"{CONTACTS}/search"
    crowd = [(str(n), 5000) for n in range(1, LIMIT + 11)]
    rsps.post(
        search,
        json=hits(*crowd[:LIMIT], more=True),
        match=[matchers.json_params_matcher(search_body(since_ms(5000)))],
    )
    at_5000 = {"propertyName": "lastmodifieddate", "operator": "EQ", "value": "5000"}
    rsps.post(
        search,
        json=hits(*crowd[:LIMIT], more=True),
        match=[
            matchers.json_params_matcher(
                search_body(
                    at_5000,
                    {"propertyName": "hs_object_id", "operator": "GT", "value": "0"},
                    sort="hs_object_id",
                )
            )
        ],
    )
    rsps.post(
        search,
        json=hits(*crowd[LIMIT:], more=False),
        match=[
            matchers.json_params_matcher(
                search_body(
                    at_5000,
                    {"propertyName": "hs_object_id", "operator": "GT", "value": str(LIMIT)},
                    sort="hs_object_id",
                )
            )
        ],
    )
    rsps.post(
        search,
        json=hits(("999", 5002), more=False),
        match=[matchers.json_params_matcher(search_body(since_ms(5001)))],
    )
    hs, _ = private_app()

    pages = read_pages(hs, datetime.fromtimestamp(5, UTC))

    ids = [rid for page in pages for rid in page]
    assert ids == [rid for rid, _ in crowd] + ["999"]
    assert [len(page) for page in pages] == [LIMIT, 0, 10, 1]


def test_companies_search_on_hs_lastmodifieddate(rsps: responses.RequestsMock) -> None:
    rsps.post(f"{BASE}/crm/v3/objects/companies/search", json={"total": 0, "results": []})
    hs, _ = private_app()

    page = hs.read_changes("companies", datetime(2025, 1, 1, tzinfo=UTC), None, ["name"])

    sent = json.loads(rsps.calls[0].request.body)
    assert sent["filterGroups"][0]["filters"][0]["propertyName"] == "hs_lastmodifieddate"
    assert page.records == []
    assert page.next_token is None


def test_search_cursor_restarts_at_the_newest_instant_and_drops_what_it_handed_out() -> None:
    cursor = SearchCursor.start(1000)
    # The page ends with two records stamped 5000; more follow.
    drop, following = cursor.advance([("7", 4000), ("8", 5000), ("9", 5000)], True)
    assert drop == set()
    assert following == SearchCursor(floor=5000, seen=("8", "9"))
    body = following.request("lastmodifieddate", ["email"])
    assert body["filterGroups"] == [
        {
            "filters": [
                {"propertyName": "lastmodifieddate", "operator": "EQ", "value": "5000"},
                {"propertyName": "hs_object_id", "operator": "NOT_IN", "values": ["8", "9"]},
            ]
        },
        {"filters": [{"propertyName": "lastmodifieddate", "operator": "GT", "value": "5000"}]},
    ]
    assert "after" not in body
    # 8 and 9 come back first and are dropped; 8, edited meanwhile, comes back later, kept.
    drop, again = following.advance([("9", 5000), ("10", 5000), ("8", 7000)], True)
    assert drop == {"9"}
    assert again == SearchCursor(floor=7000, seen=("8",))
    # At the same instant the ids handed out add up.
    drop, same = following.advance([("8", 5000), ("9", 5000), ("10", 5000)], True)
    assert drop == {"8", "9"}
    assert same == SearchCursor(floor=5000, seen=("8", "9", "10"))
    # The last page ends the read.
    assert following.advance([("9", 5000), ("11", 6000)], False) == ({"9"}, None)


def test_search_cursor_pages_a_crowded_instant_by_object_id_instead_of_looping() -> None:
    crowded = [(str(n), 5000) for n in range(1, LIMIT + 1)]
    cursor = SearchCursor.start(5000)
    _, tie = cursor.advance(crowded, True)
    assert tie is not None
    assert tie.tie_after == "0"
    body = tie.request("lastmodifieddate", [])
    assert body["sorts"] == [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]
    assert body["filterGroups"][0]["filters"][1] == {
        "propertyName": "hs_object_id",
        "operator": "GT",
        "value": "0",
    }
    assert "after" not in body
    drop, tie2 = tie.advance([("150", 5000), ("1000", 5000)], True)
    assert drop == {"150"}
    assert tie2 is not None
    assert tie2.tie_after == "1000"
    assert tie2.seen == ()  # ids below the keyset never come back: the token forgets them
    _, done = tie2.advance([("1001", 5000)], False)
    assert done == SearchCursor(floor=5001)


def test_search_cursor_pages_by_id_when_a_page_brings_nothing_new() -> None:
    # A short page that claims more yet holds only ids already handed out: time alone would ask
    # for the same page forever.
    cursor = SearchCursor(floor=5000, seen=("1", "2"))
    drop, following = cursor.advance([("1", 5000), ("2", 5000)], True)
    assert drop == {"1", "2"}
    assert following == SearchCursor(floor=5000, seen=("1", "2"), tie_after="0")


# ---------------------------------------------------------------------------------- auth


def test_expired_oauth_token_is_refreshed_once_and_the_call_repeated(
    rsps: responses.RequestsMock,
) -> None:
    form = {
        "grant_type": "refresh_token",
        "client_id": "app-1",
        "client_secret": SECRET,
        "refresh_token": REFRESH,
    }
    rsps.post(
        TOKEN_URL,
        json=token_answer("access-one-0001"),
        match=[matchers.urlencoded_params_matcher(form)],
    )
    rsps.get(
        CONTACTS,
        status=401,
        json=sample("hubspot-error-401-expired-token"),
        match=[matchers.header_matcher({"Authorization": "Bearer access-one-0001"})],
    )
    rsps.post(TOKEN_URL, json=token_answer("access-two-0002"))
    rsps.get(
        CONTACTS,
        json={"results": []},
        match=[matchers.header_matcher({"Authorization": "Bearer access-two-0002"})],
    )
    hs, _ = oauth_app()

    page = hs.read_changes("contacts", None, None, CONTACT_FIELDS)

    assert page.records == []
    assert len(rsps.calls) == 4


def test_refused_refresh_is_an_auth_error_without_the_secrets(
    rsps: responses.RequestsMock,
) -> None:
    rsps.post(
        TOKEN_URL,
        status=400,
        json={
            "status": "BAD_REFRESH_TOKEN",
            "message": f"missing or unknown refresh token {REFRESH} for secret {SECRET}",
        },
    )
    hs, _ = oauth_app()

    with pytest.raises(AuthError) as raised:
        hs.check()

    text = str(raised.value)
    assert "refresh" in text
    assert REFRESH not in text
    assert SECRET not in text


def test_private_app_token_refused_is_auth_error_without_the_token(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(
        CONTACTS,
        status=401,
        json={"status": "error", "message": f"Authentication credentials not found: {PRIVATE}"},
    )
    hs, _ = private_app()

    with pytest.raises(AuthError) as raised:
        hs.check()

    assert PRIVATE not in str(raised.value)
    assert "create a new one" in str(raised.value)


# ---------------------------------------------------------------------------------- limits


def test_ten_secondly_429_without_retry_after_waits_one_window(
    rsps: responses.RequestsMock,
) -> None:
    burst = {**sample("hubspot-error-429-daily"), "policyName": "TEN_SECONDLY_ROLLING"}
    burst["message"] = "You have reached your ten_secondly_rolling limit."
    rsps.get(CONTACTS, status=429, json=burst)
    rsps.get(CONTACTS, status=429, json=burst, headers={"Retry-After": "3"})
    rsps.get(CONTACTS, json={"results": []})
    hs, sleeps = private_app()

    hs.read_changes("contacts", None, None, CONTACT_FIELDS)

    assert sleeps == [10.0, 3.0]


def test_search_secondly_429_waits_a_second(rsps: responses.RequestsMock) -> None:
    secondly = {
        "status": "error",
        "message": "You have reached your secondly limit.",
        "errorType": "RATE_LIMIT",
    }
    rsps.post(f"{CONTACTS}/search", status=429, json=secondly)
    rsps.post(f"{CONTACTS}/search", json={"total": 0, "results": []})
    hs, sleeps = private_app()

    hs.read_changes("contacts", datetime(2025, 1, 1, tzinfo=UTC), None, CONTACT_FIELDS)

    assert sleeps == [1.0]


def test_daily_limit_is_not_retried(rsps: responses.RequestsMock) -> None:
    rsps.get(CONTACTS, status=429, json=sample("hubspot-error-429-daily"))
    hs, sleeps = private_app()

    with pytest.raises(DailyLimitReached, match="daily"):
        hs.read_changes("contacts", None, None, CONTACT_FIELDS)

    assert sleeps == []
    assert not isinstance(DailyLimitReached("x"), RateLimited)


def rate_headers(remaining: int, daily_remaining: int | None = None) -> dict[str, str]:
    """HubSpot's rate-limit headers; the daily ones only where HubSpot sends them."""
    headers = {
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        "X-HubSpot-RateLimit-Max": "100",
        "X-HubSpot-RateLimit-Remaining": str(remaining),
    }
    if daily_remaining is not None:
        headers["X-HubSpot-RateLimit-Daily"] = "250000"
        headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(daily_remaining)
    return headers


def test_headroom_is_the_ten_second_and_daily_budgets_of_the_latest_answers(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(CONTACTS, json={"results": []}, headers=rate_headers(99, 249_001))
    rsps.get(CONTACTS, json={"results": []}, headers=rate_headers(98, 249_000))
    # Search answers carry no rate-limit headers: they change nothing.
    rsps.post(f"{CONTACTS}/search", json={"total": 0, "results": []})
    hs, _ = private_app()
    assert isinstance(hs, ReportsHeadroom)
    assert hs.headroom() == {}

    hs.check()
    hs.read_changes("contacts", None, None, CONTACT_FIELDS)
    hs.read_changes("contacts", datetime(2025, 1, 1, tzinfo=UTC), None, CONTACT_FIELDS)

    assert hs.headroom() == {
        "10s": {"remaining": 98, "limit": 100, "window": "10s"},
        "daily": {"remaining": 249_000, "limit": 250_000, "window": "day"},
    }


def test_an_oauth_app_is_told_no_daily_budget_so_reports_none(
    rsps: responses.RequestsMock,
) -> None:
    rsps.post(TOKEN_URL, json=token_answer("access-one-0001"))
    rsps.get(CONTACTS, json={"results": []}, headers=rate_headers(95))
    hs, _ = oauth_app()

    hs.check()

    assert hs.headroom() == {"10s": {"remaining": 95, "limit": 100, "window": "10s"}}


# ---------------------------------------------------------------------------------- writes


def test_contacts_with_email_are_upserted_by_email(rsps: responses.RequestsMock) -> None:
    created = sample("hubspot-contacts-batch-create-201")["results"]
    # HubSpot does not promise input order: answer in reverse.
    answer = {"status": "COMPLETE", "results": [{**r, "new": True} for r in reversed(created)]}
    rsps.post(
        f"{CONTACTS}/batch/upsert",
        json=answer,
        match=[
            matchers.json_params_matcher(
                {
                    "inputs": [
                        {
                            "id": "lilyskinner@hubspot.com",
                            "idProperty": "email",
                            "properties": {"email": "lilyskinner@hubspot.com", "firstname": "Lily"},
                            "objectWriteTraceId": "0",
                        },
                        {
                            "id": "marleyfleming@hubspot.com",
                            "idProperty": "email",
                            "properties": {
                                "email": "marleyfleming@hubspot.com",
                                "firstname": "Marley",
                            },
                            "objectWriteTraceId": "1",
                        },
                    ]
                }
            )
        ],
    )
    hs, _ = private_app()

    results = hs.create(
        "contacts",
        [
            {"email": "lilyskinner@hubspot.com", "firstname": "Lily"},
            {"email": "marleyfleming@hubspot.com", "firstname": "Marley"},
        ],
    )

    assert [r.remote_id for r in results] == ["171596044869", "171596044870"]
    assert all(r.ok for r in results)


def test_207_conflict_on_create_links_to_the_existing_contact(
    rsps: responses.RequestsMock,
) -> None:
    rsps.post(
        f"{CONTACTS}/batch/create",
        status=207,
        json=sample("hubspot-contacts-batch-create-207-conflict"),
    )
    updated = sample("hubspot-contacts-batch-update-200")["results"][0]
    rsps.post(
        f"{CONTACTS}/batch/update",
        json={"status": "COMPLETE", "results": [updated]},
        match=[
            matchers.json_params_matcher(
                {"inputs": [{"id": "171591000198", "properties": {"firstname": "Markus"}}]}
            )
        ],
    )
    hs, _ = private_app()

    # No email in the fields, so the plain create path runs; HubSpot still finds the duplicate.
    results = hs.create("contacts", [{"firstname": "Markus"}, {"firstname": "Siena"}])

    assert [r.remote_id for r in results] == ["171591000198", "171596044870"]
    sent = json.loads(rsps.calls[0].request.body)
    assert [i["objectWriteTraceId"] for i in sent["inputs"]] == ["0", "1"]


def test_batch_refused_whole_for_one_record_is_split_until_it_stands_alone(
    rsps: responses.RequestsMock,
) -> None:
    invalid = sample("hubspot-error-400-invalid-properties")
    companies = f"{BASE}/crm/v3/objects/companies/batch/create"

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        inputs = json.loads(request.body)["inputs"]
        if any("first000name" in i["properties"] for i in inputs):
            return 400, {}, json.dumps(invalid)
        results = [
            {
                "id": f"9{i['objectWriteTraceId']}",
                "properties": i["properties"],
                "updatedAt": "2026-03-01T10:00:00.000Z",
                "objectWriteTraceId": i["objectWriteTraceId"],
            }
            for i in inputs
        ]
        return 201, {}, json.dumps({"status": "COMPLETE", "results": results})

    rsps.add_callback(responses.POST, companies, callback=answer)
    hs, _ = private_app()

    results = hs.create(
        "companies",
        [{"name": "A"}, {"name": "B", "first000name": "x"}, {"name": "C"}, {"name": "D"}],
    )

    assert [r.remote_id for r in results] == ["90", None, "92", "93"]
    error = results[1].error
    assert error is not None
    assert error.code == "PROPERTY_DOESNT_EXIST"
    assert error.field == "first000name"
    assert len(rsps.calls) == 5  # [ABCD] → [AB] → [A], [B]; [CD]


def test_a_plain_create_sends_the_records_associations_with_it(
    rsps: responses.RequestsMock,
) -> None:
    # Record and associations in one call: a run killed between a create and a later
    # association call would leave a deal without its company, so without the key (name within
    # company) by which the next run knows the deal as its own, and it would be created again.
    primary_company = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}
    contact = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}
    rsps.post(
        f"{BASE}/crm/v3/objects/deals/batch/create",
        status=201,
        json={
            "status": "COMPLETE",
            "results": [
                {
                    "id": "501",
                    "properties": {"dealname": "Pilot"},
                    "updatedAt": "2026-03-01T10:00:00.000Z",
                    "objectWriteTraceId": "0",
                }
            ],
        },
        match=[
            matchers.json_params_matcher(
                {
                    "inputs": [
                        {
                            "properties": {"dealname": "Pilot"},
                            "objectWriteTraceId": "0",
                            "associations": [
                                {"to": {"id": "77"}, "types": [primary_company]},
                                {"to": {"id": "8"}, "types": [contact]},
                                {"to": {"id": "9"}, "types": [contact]},
                            ],
                        }
                    ]
                }
            )
        ],
    )
    hs, _ = private_app()

    [result] = hs.create(
        "deals", [{"dealname": "Pilot", "company_id": "77", "contact_ids": ["9", "8"]}]
    )

    assert result.ok
    assert result.remote_id == "501"
    assert len(rsps.calls) == 1  # no v4 association call after it


def test_batch_update_207_reports_the_missing_record_only(rsps: responses.RequestsMock) -> None:
    rsps.post(
        f"{CONTACTS}/batch/update",
        status=207,
        json=sample("hubspot-contacts-batch-update-207-notfound"),
    )
    hs, _ = private_app()

    results = hs.update(
        "contacts",
        [("unknownIdentifier888", {"firstname": "Ghost"}), ("171591000199", {"firstname": "S"})],
    )

    assert results[0].error is not None
    assert results[0].error.code == "OBJECT_NOT_FOUND"
    assert results[1].remote_id == "171591000199"
    assert results[1].modified_at == datetime(2025, 11, 4, 12, 10, 35, 352000, tzinfo=UTC)


def test_association_failure_fails_only_that_record_and_says_properties_were_written(
    rsps: responses.RequestsMock,
) -> None:
    rsps.post(
        f"{CONTACTS}/batch/update",
        json={
            "status": "COMPLETE",
            "results": [
                {"id": "1", "properties": {}, "updatedAt": "2026-03-01T10:00:00.000Z"},
                {"id": "2", "properties": {}, "updatedAt": "2026-03-01T10:00:00.000Z"},
            ],
        },
    )
    rsps.post(
        f"{BASE}/crm/v4/associations/contacts/companies/batch/read",
        json={"status": "COMPLETE", "results": []},
    )
    rsps.post(
        f"{BASE}/crm/v4/associations/contacts/companies/batch/create",
        status=207,
        json={
            "status": "COMPLETE",
            "results": [
                {
                    "fromObjectTypeId": "0-1",
                    "fromObjectId": 1,
                    "toObjectTypeId": "0-2",
                    "toObjectId": 77,
                    "labels": ["Primary"],
                }
            ],
            "errors": [sample("hubspot-assoc-batch-create-errors")["errors"][0]],
        },
        match=[
            matchers.json_params_matcher(
                {
                    "inputs": [
                        {
                            "from": {"id": "1"},
                            "to": {"id": "77"},
                            "types": [
                                {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}
                            ],
                        },
                        {
                            "from": {"id": "2"},
                            "to": {"id": "unknown_id_123456798"},
                            "types": [
                                {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}
                            ],
                        },
                    ]
                }
            )
        ],
    )
    hs, _ = private_app()

    results = hs.update(
        "contacts",
        [
            ("1", {"firstname": "A", "company_id": "77"}),
            ("2", {"firstname": "B", "company_id": "unknown_id_123456798"}),
        ],
    )

    assert results[0].ok
    assert results[1].error is not None
    assert "properties written" in results[1].error.message
    assert results[1].error.field == "company_id"


def test_read_returns_a_merged_away_id_under_its_survivor(rsps: responses.RequestsMock) -> None:
    survivor = {
        "id": "900",
        "properties": {
            "email": "a@x.example",
            "lastmodifieddate": "2026-03-01T10:00:00.000Z",
            "hs_merged_object_ids": "12;34",
        },
        "updatedAt": "2026-03-01T10:00:00.000Z",
    }
    rsps.post(
        f"{CONTACTS}/batch/read",
        json={"status": "COMPLETE", "results": [survivor]},
        match=[
            matchers.query_param_matcher({"archived": "false"}),
            matchers.json_params_matcher(
                {
                    "properties": ["email", "lastmodifieddate", "hs_merged_object_ids"],
                    "inputs": [{"id": "12"}, {"id": "404"}],
                }
            ),
        ],
    )
    hs, _ = private_app()

    records = hs.read("contacts", ["12", "404"], ["email"])

    assert [(r.id, r.merged_ids) for r in records] == [("900", ("12", "34"))]


def test_deletes_are_archived_records_since_the_cursor(rsps: responses.RequestsMock) -> None:
    rsps.get(
        CONTACTS,
        json={
            "results": [
                {
                    "id": "5",
                    "properties": {},
                    "archived": True,
                    "archivedAt": "2026-01-01T00:00:00.000Z",
                },
                {
                    "id": "6",
                    "properties": {},
                    "archived": True,
                    "archivedAt": "2026-03-02T00:00:00.000Z",
                },
            ]
        },
        match=[
            matchers.query_param_matcher(
                {"limit": "100", "archived": "true", "properties": "hs_object_id"}
            )
        ],
    )
    hs, _ = private_app()

    page = hs.read_deletes("contacts", datetime(2026, 3, 1, tzinfo=UTC), None)

    assert [(r.id, r.deleted) for r in page.records] == [("6", True)]
    assert page.next_token is None


def test_page_tokens_are_opaque_text_that_survives_a_restart(rsps: responses.RequestsMock) -> None:
    rsps.get(CONTACTS, json=sample("hubspot-contacts-list-page"))
    hs, _ = private_app()
    token = hs.read_changes("contacts", None, None, CONTACT_FIELDS).next_token
    assert token is not None
    assert decode_token(token) == {"m": "l", "a": "394"}
    assert parse_qs(f"t={token}")["t"] == [token]  # URL- and database-safe
    with pytest.raises(RecordRejected):
        hs.read_changes("tickets", None, None, [])


def test_a_revoked_refresh_token_names_the_setting_to_replace(
    rsps: responses.RequestsMock,
) -> None:
    rsps.post(
        TOKEN_URL,
        status=400,
        json={"status": "BAD_REFRESH_TOKEN", "message": "missing or unknown refresh token"},
    )
    hs, _ = oauth_app()

    with pytest.raises(AuthError) as raised:
        hs.check()

    assert str(raised.value) == (
        "hs: POST /oauth/v1/token: the OAuth refresh token was refused (HTTP 400 "
        "BAD_REFRESH_TOKEN: missing or unknown refresh token): it was revoked or the app "
        "uninstalled; install the app again and set systems.hs.refresh_token to the refresh "
        "token it gives"
    )
    assert raised.value.exit_code == 3


def test_a_refused_client_names_the_client_settings_only(rsps: responses.RequestsMock) -> None:
    rsps.post(
        TOKEN_URL,
        status=400,
        json={"status": "BAD_CLIENT_ID", "message": "missing or unknown client id"},
    )
    hs, _ = oauth_app()

    with pytest.raises(AuthError) as raised:
        hs.check()

    text = str(raised.value)
    assert "systems.hs.client_id and systems.hs.client_secret" in text
    assert "refresh_token" not in text


def test_a_refused_private_app_token_names_the_setting_to_replace(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(CONTACTS, status=401, json={"status": "error", "category": "INVALID_AUTHENTICATION"})
    hs, _ = private_app()

    with pytest.raises(AuthError) as raised:
        hs.check()

    assert "private-app token" in str(raised.value)
    assert str(raised.value).endswith("set systems.hs.token")
