"""The Zoho connector against recorded Zoho bodies: auth, paging, reads, writes, errors."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import responses
from responses import matchers

from connectors.errors import (
    AuthError,
    ConnectorConfigError,
    ConnectorError,
    RateLimited,
    RecordRejected,
)
from connectors.zoho.connector import ZohoConnector, ZohoSettings
from mappings.errors import MappingError
from tests.connectors.conftest import sample

ACCOUNTS = "https://accounts.zoho.eu"
TOKEN_URL = f"{ACCOUNTS}/oauth/v2/token"
API = "https://www.zohoapis.eu"
CONTACTS = f"{API}/crm/v8/Contacts"
DEALS = f"{API}/crm/v8/Deals"
SECRET = "zoho-client-secret-5f2a9c"
LIST_FIELDS = ["First_Name", "Last_Name", "Email", "Account_Name"]


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def refresh_token() -> str:
    # Unique per test: the 10-per-10-minutes guard counts per refresh token for the process.
    return f"1000.{uuid.uuid4().hex}.{uuid.uuid4().hex}"


def make(refresh_token: str, **overrides: Any) -> tuple[ZohoConnector, Sleeps]:
    sleeps = Sleeps()
    config: dict[str, Any] = {
        "client_id": "1000.CLIENTID",
        "client_secret": SECRET,
        "refresh_token": refresh_token,
        "data_center": "eu",
        **overrides,
    }
    return ZohoConnector("zoho-eu", ZohoSettings.model_validate(config), sleep=sleeps), sleeps


def token_call(
    rsps: responses.RequestsMock, refresh_token: str, access: str = "1000.access-one"
) -> None:
    rsps.post(
        TOKEN_URL,
        json={
            "access_token": access,
            "scope": "ZohoCRM.modules.ALL",
            "api_domain": API,
            "token_type": "Bearer",
            "expires_in": 3600,
        },
        match=[
            matchers.urlencoded_params_matcher(
                {
                    "grant_type": "refresh_token",
                    "client_id": "1000.CLIENTID",
                    "client_secret": SECRET,
                    "refresh_token": refresh_token,
                }
            )
        ],
    )


def contacts_page(**info: Any) -> dict[str, Any]:
    """The real list body, with the Modified_Time a read asks for (Created_Time's value)."""
    body = copy.deepcopy(sample("zoho-contacts-list"))
    body["data"][0]["Modified_Time"] = body["data"][0]["Created_Time"]  # +03:00
    body["data"][1]["Modified_Time"] = "2024-12-20T12:40:00+05:30"
    body["info"].update(info)
    return body


def list_query(**extra: Any) -> dict[str, str]:
    query = {
        "fields": ",".join([*LIST_FIELDS, "Modified_Time"]),
        "per_page": "200",
        "sort_by": "Modified_Time",
        "sort_order": "asc",
    }
    query.update({k: str(v) for k, v in extra.items()})
    return query


# ---------------------------------------------------------------------------------------------
# Auth


def test_first_read_gets_a_token_and_follows_the_api_domain(
    rsps: responses.RequestsMock, refresh_token: str
) -> None:
    token_call(rsps, refresh_token)
    rsps.get(
        CONTACTS,
        json=contacts_page(),
        match=[
            matchers.query_param_matcher(list_query(page=1)),
            matchers.header_matcher({"Authorization": "Zoho-oauthtoken 1000.access-one"}),
        ],
    )
    crm, _ = make(refresh_token)

    page = crm.read_changes("contacts", None, None, LIST_FIELDS)

    assert [r.id for r in page.records] == ["6493490000001291001", "6493490000001291002"]
    assert page.next_token is None
    # Zoho's offsets (+03:00, +05:30) become UTC.
    assert page.records[0].modified_at == datetime(2024, 12, 20, 7, 9, 52, tzinfo=UTC)
    assert page.records[1].modified_at == datetime(2024, 12, 20, 7, 10, tzinfo=UTC)
    assert set(page.records[0].fields) == set(LIST_FIELDS)


def test_token_is_cached_across_connectors_of_one_login(
    rsps: responses.RequestsMock, refresh_token: str
) -> None:
    token_call(rsps, refresh_token)
    rsps.get(CONTACTS, json=contacts_page())
    rsps.get(CONTACTS, json=contacts_page())
    first, _ = make(refresh_token)
    second, _ = make(refresh_token)  # the hub builds a connector per run

    first.read_changes("contacts", None, None, LIST_FIELDS)
    second.read_changes("contacts", None, None, LIST_FIELDS)

    assert sum(1 for call in rsps.calls if call.request.url.startswith(TOKEN_URL)) == 1


def test_invalid_token_refreshes_once_and_repeats(
    rsps: responses.RequestsMock, refresh_token: str
) -> None:
    token_call(rsps, refresh_token, "1000.access-one")
    rsps.get(
        CONTACTS,
        status=401,
        json={
            "code": "INVALID_TOKEN",
            "details": {},
            "message": "invalid oauth token",
            "status": "error",
        },
        match=[matchers.header_matcher({"Authorization": "Zoho-oauthtoken 1000.access-one"})],
    )
    token_call(rsps, refresh_token, "1000.access-two")
    rsps.get(
        CONTACTS,
        json=contacts_page(),
        match=[matchers.header_matcher({"Authorization": "Zoho-oauthtoken 1000.access-two"})],
    )
    crm, sleeps = make(refresh_token)

    page = crm.read_changes("contacts", None, None, LIST_FIELDS)

    assert len(page.records) == 2
    assert sleeps == []


def test_refused_refresh_token_is_auth_error_without_secrets(
    rsps: responses.RequestsMock, refresh_token: str
) -> None:
    rsps.post(TOKEN_URL, json={"error": "invalid_code"})
    crm, _ = make(refresh_token)

    with pytest.raises(AuthError) as raised:
        crm.check()

    text = str(raised.value)
    assert "invalid_code" in text
    assert raised.value.system == "zoho-eu"
    assert refresh_token not in text
    assert SECRET not in text


def test_scope_mismatch_is_auth_error(rsps: responses.RequestsMock, refresh_token: str) -> None:
    token_call(rsps, refresh_token)
    rsps.get(
        CONTACTS,
        status=401,
        json={
            "code": "OAUTH_SCOPE_MISMATCH",
            "details": {},
            "message": "invalid oauth scope to access this URL",
            "status": "error",
        },
    )
    crm, _ = make(refresh_token)

    with pytest.raises(AuthError, match="OAUTH_SCOPE_MISMATCH"):
        crm.check()


def test_eleventh_token_in_ten_minutes_is_not_requested(
    rsps: responses.RequestsMock, refresh_token: str
) -> None:
    for n in range(10):
        token_call(rsps, refresh_token, f"1000.access-{n}")
    crm, _ = make(refresh_token, api_url=API)
    auth = crm._account.auth
    for _ in range(10):
        auth.invalidate()
        auth.token()

    auth.invalidate()
    with pytest.raises(RateLimited) as raised:
        auth.token()

    assert raised.value.retry_after is not None
    assert raised.value.retry_after > 500
    assert len(rsps.calls) == 10  # the 11th never reached Zoho


# ---------------------------------------------------------------------------------------------
# Reads


def test_incremental_read_sends_if_modified_since_and_304_is_the_last_page(
    rsps: responses.RequestsMock, refresh_token: str
) -> None:
    token_call(rsps, refresh_token)
    rsps.get(
        CONTACTS,
        status=304,
        match=[
            matchers.query_param_matcher(list_query(page=1)),
            # One second before the floor of `since`, in UTC: Zoho compares whole seconds.
            matchers.header_matcher({"If-Modified-Since": "2025-01-10T09:54:09+00:00"}),
        ],
    )
    crm, _ = make(refresh_token)
    since = datetime(2025, 1, 10, 15, 24, 10, 500_000, tzinfo=UTC).replace(hour=9, minute=54)

    page = crm.read_changes("contacts", since, None, LIST_FIELDS)

    assert page.records == []
    assert page.next_token is None


def listed(
    rows: list[tuple[int, str]], *, more: bool, page: int = 1, next_page_token: str | None = None
) -> dict[str, Any]:
    """A list body in Zoho's shape (``info`` as in the recorded sample) for (id, Modified_Time)
    rows; shorter than Zoho's 200-record pages, which the paging does not depend on."""
    data = [
        {
            "First_Name": None,
            "Last_Name": f"Person {n}",
            "Email": None,
            "Account_Name": None,
            "Modified_Time": stamp,
            "id": _id(n),
        }
        for n, stamp in rows
    ]
    info = {
        "per_page": 200,
        "next_page_token": next_page_token,
        "count": len(data),
        "sort_by": "Modified_Time",
        "page": page,
        "previous_page_token": None,
        "page_token_expiry": "2024-12-21T12:40:00+05:30" if next_page_token else None,
        "sort_order": "asc",
        "more_records": more,
    }
    return {"data": data, "info": info}


def _id(n: int) -> str:
    return str(6493490000001291000 + n)


def read_through(crm: ZohoConnector, since: datetime | None, token: str | None = None) -> list[str]:
    ids: list[str] = []
    while True:
        page = crm.read_changes("contacts", since, token, LIST_FIELDS)
        ids.extend(record.id for record in page.records)
        token = page.next_token
        if token is None:
            return ids


def test_keyset_paging_asks_again_from_the_newest_second_and_drops_repeats(
    rsps: responses.RequestsMock, refresh_token: str
) -> None:
    token_call(rsps, refresh_token)
    # A full read: page 1 with no If-Modified-Since.
    rsps.get(
        CONTACTS,
        json=listed(
            [
                (1, "2024-12-20T12:40:00+05:30"),
                (2, "2024-12-20T12:40:05+05:30"),
                (3, "2024-12-20T12:40:10+05:30"),
            ],
            more=True,
            next_page_token="c8582xx9e7c7",
        ),
        match=[matchers.query_param_matcher(list_query(page=1))],
    )
    # Then page 1 again, from the second before the newest handed out (12:40:10 = 07:10:10Z).
    # Record 1 was edited in between: it comes again at the end with its new stamp; record 3
    # comes again unchanged and is dropped; record 4 shares 3's second and is new.
    rsps.get(
        CONTACTS,
        json=listed(
            [
                (3, "2024-12-20T12:40:10+05:30"),
                (4, "2024-12-20T12:40:10+05:30"),
                (1, "2024-12-20T12:40:20+05:30"),
                (5, "2024-12-20T12:40:30+05:30"),
            ],
            more=True,
            next_page_token="aa11",
        ),
        match=[
            matchers.query_param_matcher(list_query(page=1)),
            matchers.header_matcher({"If-Modified-Since": "2024-12-20T07:10:09+00:00"}),
        ],
    )
    rsps.get(
        CONTACTS,
        json=listed([(5, "2024-12-20T12:40:30+05:30")], more=False),
        match=[
            matchers.query_param_matcher(list_query(page=1)),
            matchers.header_matcher({"If-Modified-Since": "2024-12-20T07:10:29+00:00"}),
        ],
    )
    crm, _ = make(refresh_token)

    first = crm.read_changes("contacts", None, None, LIST_FIELDS)
    assert first.next_token is not None
    key = int(datetime(2024, 12, 20, 7, 10, 10, tzinfo=UTC).timestamp())
    assert _state(first.next_token) == {"k": key, "i": [_id(3)]}
    rest = read_through(crm, None, first.next_token)

    assert [r.id for r in first.records] == [_id(1), _id(2), _id(3)]
    assert rest == [_id(4), _id(1), _id(5)]
    assert "If-Modified-Since" not in rsps.calls[1].request.headers


def test_incremental_read_starts_at_the_second_of_since(
    rsps: responses.RequestsMock, refresh_token: str
) -> None:
    token_call(rsps, refresh_token)
    rsps.get(
        CONTACTS,
        json=listed(
            [(1, "2024-12-20T12:40:09+05:30"), (2, "2024-12-20T12:40:10+05:30")], more=False
        ),
        match=[
            matchers.query_param_matcher(list_query(page=1)),
            matchers.header_matcher({"If-Modified-Since": "2024-12-20T07:10:09+00:00"}),
        ],
    )
    crm, _ = make(refresh_token)
    since = datetime(2024, 12, 20, 7, 10, 10, 400_000, tzinfo=UTC)

    # The second before since's own is asked for (Zoho's "after"), and not handed out.
    assert read_through(crm, since) == [_id(2)]


def test_a_crowded_second_pages_by_number_then_page_token_then_keyset_again(
    rsps: responses.RequestsMock, refresh_token: str
) -> None:
    token_call(rsps, refresh_token)
    header = matchers.header_matcher({"If-Modified-Since": "2024-12-20T07:10:09+00:00"})
    crowded = "2024-12-20T12:40:10+05:30"
    # Page 1 lies in since's second and the one before: asking again from there cannot get
    # further, so the same request goes on by page number, with the same header.
    rsps.get(
        CONTACTS,
        json=listed(
            [(1, "2024-12-20T12:40:09+05:30"), (2, crowded), (3, crowded)],
            more=True,
            next_page_token="t1",
        ),
        match=[matchers.query_param_matcher(list_query(page=1)), header],
    )
    for page in range(2, 11):
        rsps.get(
            CONTACTS,
            json=listed([(10 + page, crowded)], more=True, page=page, next_page_token=f"t{page}"),
            match=[matchers.query_param_matcher(list_query(page=page)), header],
        )
    # Page 11 would pass Zoho's 2,000-record wall: Zoho's own page token, alone.
    rsps.get(
        CONTACTS,
        json=listed(
            [(30, crowded), (31, "2024-12-20T12:40:17+05:30")],
            more=True,
            page=11,
            next_page_token="t11",
        ),
        match=[matchers.query_param_matcher(list_query(page_token="t10")), header],
    )
    # That page reached a later second: keyset paging again, from 12:40:17 (07:10:17Z).
    rsps.get(
        CONTACTS,
        json=listed(
            [(31, "2024-12-20T12:40:17+05:30"), (32, "2024-12-20T12:40:18+05:30")], more=False
        ),
        match=[
            matchers.query_param_matcher(list_query(page=1)),
            matchers.header_matcher({"If-Modified-Since": "2024-12-20T07:10:16+00:00"}),
        ],
    )
    crm, _ = make(refresh_token)
    since = datetime(2024, 12, 20, 7, 10, 10, tzinfo=UTC)

    ids = read_through(crm, since)

    assert ids == [_id(n) for n in (2, 3, *range(12, 21), 30, 31, 32)]
    assert len(rsps.calls) == 1 + 12


def test_refused_zoho_page_token_pages_the_crowded_window_again(
    rsps: responses.RequestsMock, refresh_token: str
) -> None:
    token_call(rsps, refresh_token)
    rsps.get(
        CONTACTS,
        status=400,
        json={
            "code": "EXPIRED_VALUE",
            "details": {"param_name": "page_token"},
            "message": "the page token has expired",
            "status": "error",
        },
        match=[matchers.query_param_matcher(list_query(page_token="old"))],
    )
    rsps.get(
        CONTACTS,
        json=listed(
            [(1, "2024-12-20T12:40:10+05:30"), (2, "2024-12-20T12:40:10+05:30")], more=False
        ),
        match=[
            matchers.query_param_matcher(list_query(page=1)),
            matchers.header_matcher({"If-Modified-Since": "2024-12-20T07:10:09+00:00"}),
        ],
    )
    crm, _ = make(refresh_token)
    key = int(datetime(2024, 12, 20, 7, 10, 10, tzinfo=UTC).timestamp())
    token = _token({"t": "old", "k": key, "i": [_id(1)]})

    page = crm.read_changes("contacts", None, token, LIST_FIELDS)

    # The window from its start: record 2 again (an overlap), record 1 named in the token.
    assert [r.id for r in page.records] == [_id(2)]
    assert page.next_token is None


def test_a_foreign_page_token_is_a_config_error(refresh_token: str) -> None:
    crm, _ = make(refresh_token)

    with pytest.raises(ConnectorConfigError, match="not a page token"):
        crm.read_changes("contacts", None, "eyJ2IjoxfQ", LIST_FIELDS)


def test_more_than_50_fields_names_the_extras(refresh_token: str) -> None:
    crm, _ = make(refresh_token)
    fields = [f"Custom_{n}__c" for n in range(52)]

    with pytest.raises(ConnectorConfigError) as raised:
        crm.read_changes("contacts", None, None, fields)

    assert "Custom_49__c" in raised.value.message
    assert "Custom_50__c" in raised.value.message
    assert "Custom_48__c" not in raised.value.message


def test_discrete_pagination_error_is_not_retried(
    rsps: responses.RequestsMock, refresh_token: str
) -> None:
    token_call(rsps, refresh_token)
    rsps.get(CONTACTS, status=400, json=sample("zoho-error-400-discrete-pagination-limit"))
    crm, sleeps = make(refresh_token)

    with pytest.raises(ConnectorError, match="DISCRETE_PAGINATION_LIMIT_EXCEEDED"):
        crm.read_changes("contacts", None, None, LIST_FIELDS)
    assert sleeps == []


def test_unknown_module_is_a_config_error(rsps: responses.RequestsMock, refresh_token: str) -> None:
    token_call(rsps, refresh_token)
    rsps.get(CONTACTS, status=400, json=sample("zoho-error-invalid-module"))
    crm, _ = make(refresh_token)

    with pytest.raises(ConnectorConfigError, match="INVALID_MODULE"):
        crm.read_changes("contacts", None, None, LIST_FIELDS)


def test_deleted_records_come_oldest_first_in_utc(
    rsps: responses.RequestsMock, refresh_token: str
) -> None:
    token_call(rsps, refresh_token)
    rsps.get(
        f"{CONTACTS}/deleted",
        json=sample("zoho-deleted-records"),
        match=[matchers.query_param_matcher({"type": "all", "page": "1", "per_page": "200"})],
    )
    crm, _ = make(refresh_token)

    page = crm.read_deletes("contacts", None, None)

    assert [r.id for r in page.records] == [
        "410888000000094004",
        "410888000000099071",
        "410888000000680009",
        "410888000000680013",
    ]
    assert all(r.deleted and r.fields == {} for r in page.records)
    assert page.records[0].modified_at == datetime(2015, 4, 7, 12, 13, 33, tzinfo=UTC)
    assert page.next_token is None


def test_lookups_read_as_ids_and_deal_contact_as_a_list(
    rsps: responses.RequestsMock, refresh_token: str
) -> None:
    token_call(rsps, refresh_token)
    deal = {
        "id": "6493490000001500001",
        "Deal_Name": "Acme renewal",
        "Account_Name": {"name": "Acme", "id": "6493490000001400001"},
        "Contact_Name": {"name": "Ryan Dahl2", "id": "6493490000001291001"},
        "Modified_Time": "2025-01-10T13:09:14+03:00",
    }
    fields = ["Deal_Name", "Account_Name", "Contact_Name"]
    rsps.get(
        DEALS,
        json={"data": [deal, {**deal, "id": "6493490000001500003", "Contact_Name": None}]},
        match=[
            matchers.query_param_matcher(
                {
                    "ids": "6493490000001500001,6493490000001500003,6493490000001500005",
                    "fields": "Deal_Name,Account_Name,Contact_Name,Modified_Time",
                }
            )
        ],
    )
    crm, _ = make(refresh_token)

    records = crm.read(
        "deals", ["6493490000001500001", "6493490000001500003", "6493490000001500005"], fields
    )

    assert [r.fields for r in records] == [
        {
            "Deal_Name": "Acme renewal",
            "Account_Name": "6493490000001400001",
            "Contact_Name": ["6493490000001291001"],
        },
        {"Deal_Name": "Acme renewal", "Account_Name": "6493490000001400001", "Contact_Name": []},
    ]


def test_find_searches_with_escaped_criteria_and_keeps_exact_matches(
    rsps: responses.RequestsMock, refresh_token: str
) -> None:
    token_call(rsps, refresh_token)
    found = contacts_page()
    found["data"][0]["Email"] = "Ann@Example.com"
    found["data"][1]["Email"] = "joann@example.com"  # Zoho's equals matched it as "contains"
    rsps.get(
        f"{CONTACTS}/search",
        json=found,
        match=[
            matchers.query_param_matcher(
                {
                    "criteria": r"((Email:equals:ann@example.com)or(Email:equals:o\(brien\)@x.io))",
                    "fields": (
                        "First_Name,Last_Name,Email,Phone,Mobile,Title,Account_Name,"
                        "Mailing_Street,Mailing_City,Mailing_State,Mailing_Zip,"
                        "Mailing_Country,Modified_Time"
                    ),
                    "page": "1",
                    "per_page": "200",
                }
            )
        ],
    )
    crm, _ = make(refresh_token)

    records = crm.find("contacts", "Email", ["ann@example.com", "O(Brien)@x.io"])

    assert [r.id for r in records] == ["6493490000001291001"]


# ---------------------------------------------------------------------------------------------
# Writes


def test_contacts_are_created_by_upsert_on_email_without_workflows(
    rsps: responses.RequestsMock, refresh_token: str
) -> None:
    token_call(rsps, refresh_token)
    rsps.post(
        f"{CONTACTS}/upsert",
        json=sample("zoho-upsert-response"),
        match=[
            matchers.json_params_matcher(
                {
                    "data": [
                        {
                            "Last_Name": "Boyle",
                            "Email": "p@zylker.example",
                            "Account_Name": {"id": "41"},
                        },
                        {"Last_Name": "New", "Email": "n@zylker.example", "Account_Name": None},
                    ],
                    "duplicate_check_fields": ["Email"],
                    "trigger": [],
                }
            )
        ],
    )
    crm, _ = make(refresh_token)

    results = crm.create(
        "contacts",
        [
            {"Last_Name": "Boyle", "Email": "p@zylker.example", "Account_Name": "41"},
            {"Last_Name": "New", "Email": "n@zylker.example", "Account_Name": None},
        ],
    )

    assert [r.remote_id for r in results] == ["4150868000000376008", "4150868000003194003"]
    assert results[0].modified_at == datetime(2020, 10, 14, 5, 1, 43, tzinfo=UTC)
    assert all(r.ok for r in results)
    assert crm.capabilities.upsert_keys == {"contacts": "Email"}


def test_207_gives_one_result_per_record_with_the_field(
    rsps: responses.RequestsMock, refresh_token: str
) -> None:
    token_call(rsps, refresh_token)
    added = sample("zoho-insert-response")["data"][0]
    refused = {
        "code": "MANDATORY_NOT_FOUND",
        "details": {"api_name": "Stage", "json_path": "$.data[1].Stage"},
        "message": "required field not found",
        "status": "error",
    }
    rsps.post(
        DEALS,
        status=207,
        json={"data": [added, refused]},
        match=[
            matchers.json_params_matcher(
                {
                    "data": [
                        {"Deal_Name": "A", "Stage": "Qualification", "Contact_Name": {"id": "7"}},
                        {"Deal_Name": "B", "Contact_Name": None},
                    ],
                    "trigger": [],
                }
            )
        ],
    )
    crm, _ = make(refresh_token)

    results = crm.create(
        "deals",
        [
            {"Deal_Name": "A", "Stage": "Qualification", "Contact_Name": ["7", "9"]},
            {"Deal_Name": "B", "Contact_Name": []},
        ],
    )

    assert results[0].remote_id == "6493490000001504003"
    assert results[0].ok
    assert results[1].remote_id is None
    error = results[1].error
    assert error is not None
    assert (error.code, error.field, error.system) == ("MANDATORY_NOT_FOUND", "Stage", "zoho-eu")


def test_a_batch_refused_whole_is_split_so_the_good_records_are_written(
    rsps: responses.RequestsMock, refresh_token: str
) -> None:
    token_call(rsps, refresh_token)
    bare = {
        "code": "INVALID_DATA",
        "details": {"api_name": "Email", "json_path": "$.data[1].Email"},
        "message": "invalid data",
        "status": "error",
    }
    updated = sample("zoho-update-response")
    rsps.put(CONTACTS, status=400, json=bare)
    rsps.put(
        CONTACTS,
        json=updated,
        match=[
            matchers.json_params_matcher({"data": [{"Title": "CEO", "id": "1"}], "trigger": []})
        ],
    )
    rsps.put(
        CONTACTS,
        status=400,
        json=bare,
        match=[
            matchers.json_params_matcher({"data": [{"Email": "bad", "id": "2"}], "trigger": []})
        ],
    )
    crm, _ = make(refresh_token)

    results = crm.update("contacts", [("1", {"Title": "CEO"}), ("2", {"Email": "bad"})])

    assert results[0].remote_id == "6493490000001291001"
    assert results[1].error is not None
    assert results[1].error.field == "Email"


def test_duplicate_data_names_the_existing_record(
    rsps: responses.RequestsMock, refresh_token: str
) -> None:
    token_call(rsps, refresh_token)
    rsps.post(
        f"{API}/crm/v8/Accounts",
        status=400,
        json={
            "data": [
                {
                    "code": "DUPLICATE_DATA",
                    "details": {
                        "api_name": "Account_Name",
                        "json_path": "$.data[0].Account_Name",
                        "duplicate_record": {"id": "6493490000001400001"},
                    },
                    "message": "duplicate data",
                    "status": "error",
                }
            ]
        },
    )
    crm, _ = make(refresh_token)

    [result] = crm.create("companies", [{"Account_Name": "Zylker"}])

    assert result.error is not None
    assert result.error.code == "DUPLICATE_DATA"
    assert "6493490000001400001" in result.error.message


def test_delete_sends_ids_and_reads_per_record_results(
    rsps: responses.RequestsMock, refresh_token: str
) -> None:
    token_call(rsps, refresh_token)
    rsps.delete(
        CONTACTS,
        json={
            "data": [
                {
                    "code": "SUCCESS",
                    "details": {"id": "1"},
                    "message": "record deleted",
                    "status": "success",
                },
                {
                    "code": "INVALID_DATA",
                    "details": {"id": "2"},
                    "message": "the id given seems to be invalid",
                    "status": "error",
                },
            ]
        },
        match=[matchers.query_param_matcher({"ids": "1,2", "wf_trigger": "false"})],
    )
    crm, _ = make(refresh_token)

    results = crm.delete("contacts", ["1", "2"])

    assert results[0].remote_id == "1"
    assert results[0].ok
    assert results[1].error is not None
    assert results[1].error.code == "INVALID_DATA"


# ---------------------------------------------------------------------------------------------
# Limits and failures


def test_429_backs_off_as_retry_after_says(
    rsps: responses.RequestsMock, refresh_token: str
) -> None:
    token_call(rsps, refresh_token)
    too_many = {
        "code": "TOO_MANY_REQUESTS",
        "details": {},
        "message": "concurrency limit exceeded",
        "status": "error",
    }
    rsps.get(CONTACTS, status=429, json=too_many, headers={"Retry-After": "3"})
    rsps.get(CONTACTS, status=429, json=too_many)
    rsps.get(CONTACTS, json=contacts_page())
    crm, sleeps = make(refresh_token)

    crm.read_changes("contacts", None, None, LIST_FIELDS)

    assert sleeps[0] == 3.0
    assert 1.0 <= sleeps[1] <= 1.5  # no hint: exponential backoff, second step


def test_500_during_paging_is_retried(rsps: responses.RequestsMock, refresh_token: str) -> None:
    token_call(rsps, refresh_token)
    rsps.get(
        CONTACTS,
        status=500,
        json={
            "code": "INTERNAL_ERROR",
            "details": {},
            "message": "Internal Server Error",
            "status": "error",
        },
    )
    rsps.get(CONTACTS, json=contacts_page())
    crm, sleeps = make(refresh_token)

    page = crm.read_changes("contacts", None, _token({"p": 3}), LIST_FIELDS)

    assert len(page.records) == 2
    assert len(sleeps) == 1


# ---------------------------------------------------------------------------------------------
# Settings


def test_settings_pick_the_data_centre_and_refuse_conflicts() -> None:
    base = {"client_id": "c", "client_secret": "s3cret-value", "refresh_token": "r3fresh-value"}
    assert ZohoSettings.model_validate({**base, "data_center": "ca"}).token_server() == (
        "https://accounts.zohocloud.ca"
    )
    assert ZohoSettings.model_validate(base).token_server() == "https://accounts.zoho.com"
    local = ZohoSettings.model_validate({**base, "base_url": "http://127.0.0.1:9000/"})
    assert local.token_server() == "http://127.0.0.1:9000"
    clash = {**base, "base_url": "http://a.example", "accounts_url": "http://b.example"}
    with pytest.raises(ConnectorConfigError, match="accounts_url and base_url"):
        ZohoConnector("z", clash)


def test_invalid_settings_name_the_key_and_hide_the_secret() -> None:
    with pytest.raises(ConnectorConfigError) as raised:
        ZohoConnector(
            "z",
            {
                "client_id": "c",
                "client_secret": "s3cret-value",
                "refresh_token": "",
                "api_url": "ftp://x",
            },
        )
    message = raised.value.message
    assert "refresh_token" in message
    assert "api_url" in message
    assert "s3cret-value" not in message


def test_unknown_object_type_is_a_config_error(refresh_token: str) -> None:
    crm, _ = make(refresh_token)
    with pytest.raises(ConnectorConfigError, match="notes"):
        crm.read_changes("notes", None, None, [])


def test_record_rejected_is_raised_only_inside_results(
    rsps: responses.RequestsMock, refresh_token: str
) -> None:
    # A write never raises RecordRejected: the hub dead-letters per record.
    token_call(rsps, refresh_token)
    rsps.post(
        f"{API}/crm/v8/Accounts",
        status=400,
        json={
            "code": "INVALID_DATA",
            "details": {"api_name": "Phone"},
            "message": "invalid data",
            "status": "error",
        },
    )
    crm, _ = make(refresh_token)

    [result] = crm.create("companies", [{"Account_Name": "Zylker", "Phone": object.__name__}])

    assert isinstance(result.error, RecordRejected)
    assert result.error.field == "Phone"


# ---------------------------------------------------------------------------------------------
# helpers


def _token(state: dict[str, Any]) -> str:
    from connectors.zoho.connector import _encode

    return _encode(state)


def _state(token: str) -> dict[str, Any]:
    from connectors.zoho.connector import _decode

    return _decode(token)


# ---------------------------------------------------------------------------------------------
# The default map


def test_default_map_uses_stage_actual_values_both_ways() -> None:
    from mappings.fieldmap import load_default_map

    zoho = load_default_map("zoho")
    read = zoho.to_canonical(
        "deals",
        {"Deal_Name": "A", "Stage": "Id. Decision Makers", "Amount": 1200.5, "Contact_Name": ["7"]},
    )
    assert read["stage"] == "needs_analysis"
    assert read["amount"] == "1200.5"
    assert read["contacts"] == ["7"]
    for canonical, actual in [
        ("needs_analysis", "Needs Analysis"),
        ("closed_lost", "Closed Lost"),
        ("proposal", "Proposal/Price Quote"),
    ]:
        assert zoho.to_vendor("deals", {"name": "A", "stage": canonical})["Stage"] == actual
    # A stage the org added itself is not guessed at: it names the stage and where to map it.
    with pytest.raises(MappingError) as refused:
        zoho.to_canonical("deals", {"Deal_Name": "A", "Stage": "Perception Analysis"})
    assert refused.value.value == "Perception Analysis"
    assert refused.value.vendor_field == "Stage"
    assert refused.value.map_key == "deals.fields.stage.values"
    company = zoho.to_canonical("companies", {"Account_Name": "Z", "Website": "https://www.z.io"})
    assert company["domain"] == "z.io"


def test_a_revoked_refresh_token_names_the_setting_to_replace(
    rsps: responses.RequestsMock, refresh_token: str
) -> None:
    rsps.post(TOKEN_URL, json={"error": "invalid_code"})
    crm, _ = make(refresh_token)

    with pytest.raises(AuthError) as raised:
        crm.check()

    text = str(raised.value)
    assert text.startswith("zoho-eu: POST /oauth/v2/token: the refresh token was refused")
    assert text.endswith("set systems.zoho-eu.refresh_token")
    assert raised.value.exit_code == 3


def test_a_refused_client_names_the_client_settings_only(
    rsps: responses.RequestsMock, refresh_token: str
) -> None:
    rsps.post(TOKEN_URL, json={"error": "invalid_client"})
    crm, _ = make(refresh_token)

    with pytest.raises(AuthError) as raised:
        crm.check()

    text = str(raised.value)
    assert "systems.zoho-eu.client_id and systems.zoho-eu.client_secret" in text
    assert "refresh_token" not in text
