"""The SuiteCRM connector against recorded SuiteCRM bodies: auth, root detection, keyset paging,
incremental reads, writes, error classification and secrets."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from connectors.errors import (
    AuthError,
    ConnectorConfigError,
    RateLimited,
    RecordRejected,
    TransientError,
    VendorError,
)
from connectors.paging import pack_token
from connectors.suitecrm.connector import SuiteCrmConnector, SuiteCrmSettings
from connectors.suitecrm.errors import classify_suitecrm
from tests.connectors.conftest import sample

SITE = "https://crm.example.org"
ROOT = f"{SITE}/legacy/Api"
TOKEN_URL = f"{ROOT}/access_token"
ACCOUNTS = f"{ROOT}/V8/module/Accounts"
CONTACTS = f"{ROOT}/V8/module/Contacts"
MODULE = f"{ROOT}/V8/module"
CLIENT_ID = "3f4c1a52-8b4e-4c6a-9a37-2f0c2d1f6a10"
SECRET = "suite-client-secret-7c1d0e"
PASSWORD = "admin-password-91fe2a"
ACCESS = sample("suitecrm-v8-token-password")["access_token"]
REFRESH = sample("suitecrm-v8-token-password")["refresh_token"]
ID_A = "e6e0af95-4772-5773-ae70-5ae70f931feb"
ID_B = "7831d361-2f3c-dee4-d36c-5ab900860cfb"


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make(**overrides: Any) -> tuple[SuiteCrmConnector, Sleeps]:
    sleeps = Sleeps()
    config: dict[str, Any] = {
        "base_url": SITE,
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "username": "admin",
        "password": PASSWORD,
        "rate_limit": "1000/second",
        **overrides,
    }
    return SuiteCrmConnector("suite", SuiteCrmSettings.model_validate(config), sleep=sleeps), sleeps


def password_grant(rsps: responses.RequestsMock, url: str = TOKEN_URL) -> None:
    rsps.post(
        url,
        json=sample("suitecrm-v8-token-password"),
        match=[
            matchers.urlencoded_params_matcher(
                {
                    "grant_type": "password",
                    "client_id": CLIENT_ID,
                    "client_secret": SECRET,
                    "username": "admin",
                    "password": PASSWORD,
                }
            )
        ],
    )


def accounts_page(*stamps: str, paged: bool = True) -> dict[str, Any]:
    """The documented list bodies, with the date_modified a read asks for."""
    body = copy.deepcopy(sample("suitecrm-v8-list-paged" if paged else "suitecrm-v8-list-sorted"))
    template = copy.deepcopy(sample("suitecrm-v8-list-sorted")["data"])
    rows = []
    for n, stamp in enumerate(stamps):
        row = copy.deepcopy(template[n % 2])
        row["id"] = f"{n:08d}-0000-4000-8000-000000000000"
        row["attributes"]["date_modified"] = stamp
        rows.append(row)
    body["data"] = rows
    return body


def list_query(**extra: Any) -> dict[str, str]:
    query = {
        "fields[Accounts]": "name,account_type,date_modified",
        "page[size]": "2",
        "page[number]": "1",
        "sort": "date_modified",
    }
    query.update({k: str(v) for k, v in extra.items()})
    return query


def bearer(token: str = ACCESS) -> Any:
    return matchers.header_matcher({"Authorization": f"Bearer {token}"})


def error_400(detail: str) -> dict[str, Any]:
    body = copy.deepcopy(sample("suitecrm-v8-error-400"))
    body["errors"]["detail"] = detail
    return body


def record_body(record_id: str, **attributes: Any) -> dict[str, Any]:
    body = copy.deepcopy(sample("suitecrm-v8-get-record-fields"))
    body["data"]["id"] = record_id
    body["data"]["attributes"].update(attributes)
    return body


# ---------------------------------------------------------------------------------------------
# Auth and the API root


def test_first_read_detects_the_8x_root_and_sends_paging_and_sort_always(
    rsps: responses.RequestsMock,
) -> None:
    password_grant(rsps)
    rsps.get(
        ACCOUNTS,
        json=accounts_page("2024-01-02T03:04:05+00:00", "2024-01-02T03:04:06+00:00"),
        match=[matchers.query_param_matcher(list_query()), bearer()],
    )
    crm, _ = make(page_size=2)

    page = crm.read_changes("companies", None, None, ["name", "account_type"])

    assert [r.fields["name"] for r in page.records] == ["White Cross Co", "Union Bank"]
    assert page.records[0].modified_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert page.next_token is not None  # the sample names a next page


def test_a_7x_site_is_found_at_api_after_8xs_root_answers_404(
    rsps: responses.RequestsMock,
) -> None:
    rsps.post(TOKEN_URL, status=404, body="<html>Not Found</html>", content_type="text/html")
    password_grant(rsps, f"{SITE}/Api/access_token")
    rsps.get(
        f"{SITE}/Api/V8/module/Contacts",
        json=accounts_page("2024-01-02T03:04:05+00:00", paged=False),
        match=[bearer()],
    )
    crm, _ = make()

    crm.check()
    again, _ = make()  # the next run remembers the root: no second probe
    rsps.get(f"{SITE}/Api/V8/module/Contacts", json=accounts_page(paged=False))
    password_grant(rsps, f"{SITE}/Api/access_token")
    again.check()

    assert sum(1 for call in rsps.calls if call.request.url == TOKEN_URL) == 1


def test_client_credentials_renews_with_the_grant_on_401(rsps: responses.RequestsMock) -> None:
    token = sample("suitecrm-v8-token-client-credentials")
    grant = matchers.urlencoded_params_matcher(
        {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET}
    )
    rsps.post(f"{SITE}/Api/access_token", json=token, match=[grant])
    rsps.get(
        f"{SITE}/Api/V8/module/Contacts",
        status=401,
        json={
            "error": "access_denied",
            "error_description": "The resource owner or authorization server denied the request.",
            "hint": "Access token could not be verified",
            "message": "The resource owner or authorization server denied the request.",
        },
    )
    rsps.post(f"{SITE}/Api/access_token", json={**token, "access_token": "second"}, match=[grant])
    rsps.get(f"{SITE}/Api/V8/module/Contacts", json=accounts_page(), match=[bearer("second")])
    crm, sleeps = make(username=None, password=None, api_root="/Api")

    crm.check()

    assert crm.settings.effective_grant == "client_credentials"
    assert sleeps == []


EXPIRED = {
    "error": "access_denied",
    "error_description": "The resource owner or authorization server denied the request.",
    "hint": "Access token could not be verified",
    "message": "The resource owner or authorization server denied the request.",
}
REFRESH_FORM = matchers.urlencoded_params_matcher(
    {
        "grant_type": "refresh_token",
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "refresh_token": REFRESH,
    }
)


def test_an_expired_token_is_renewed_with_the_refresh_token(rsps: responses.RequestsMock) -> None:
    password_grant(rsps)
    rsps.get(CONTACTS, status=401, json=EXPIRED, match=[bearer()])
    renewed = {**sample("suitecrm-v8-token-password"), "access_token": "via-refresh"}
    rsps.post(TOKEN_URL, json=renewed, match=[REFRESH_FORM])
    rsps.get(CONTACTS, json=accounts_page(), match=[bearer("via-refresh")])
    crm, sleeps = make()

    crm.check()

    assert sleeps == []


def test_a_refused_refresh_token_falls_back_to_the_password_grant(
    rsps: responses.RequestsMock,
) -> None:
    password_grant(rsps)
    rsps.get(CONTACTS, status=401, json=EXPIRED, match=[bearer()])
    refused = {
        "error": "invalid_request",
        "error_description": "The refresh token is invalid.",
        "hint": "Token has expired",
        "message": "The refresh token is invalid.",
    }
    rsps.post(TOKEN_URL, status=401, json=refused, match=[REFRESH_FORM])
    password_grant(rsps)  # a month later: the password grant starts a new pair
    rsps.get(CONTACTS, json=accounts_page(), match=[bearer()])
    crm, _ = make()

    crm.check()

    grants = [c.request.body for c in rsps.calls if c.request.url == TOKEN_URL]
    assert [str(g).split("&")[0] for g in grants] == [
        "grant_type=password",
        "grant_type=refresh_token",
        "grant_type=password",
    ]


def test_a_wrong_secret_is_an_auth_error_naming_neither_secret(
    rsps: responses.RequestsMock,
) -> None:
    refusal = {
        "error": "invalid_client",
        "error_description": "Client authentication failed",
        "message": "Client authentication failed",
    }
    rsps.post(TOKEN_URL, status=401, json=refusal)
    crm, _ = make()

    with pytest.raises(AuthError) as raised:
        crm.check()

    text = str(raised.value)
    assert "invalid_client" in text
    assert "grant it was created for" in text
    assert SECRET not in text
    assert PASSWORD not in text
    assert raised.value.system == "suite"


def test_a_site_answering_neither_root_is_reported(rsps: responses.RequestsMock) -> None:
    rsps.post(TOKEN_URL, status=404, body="Not Found")
    rsps.post(f"{SITE}/Api/access_token", status=200, body="<html>login</html>")
    crm, _ = make()

    with pytest.raises(ConnectorConfigError, match="set api_root"):
        crm.check()


def test_a_wrong_api_root_setting_is_a_config_error(rsps: responses.RequestsMock) -> None:
    rsps.post(f"{SITE}/Api/access_token", status=404, body="<html>Not Found</html>")
    crm, _ = make(api_root="/Api/")

    with pytest.raises(ConnectorConfigError, match="api_root"):
        crm.check()


def test_settings_name_the_missing_key() -> None:
    with pytest.raises(ConnectorConfigError, match="password"):
        SuiteCrmConnector(
            "suite",
            {
                "base_url": SITE,
                "client_id": "x",
                "client_secret": "y",
                "grant_type": "password",
                "username": "admin",
            },
        )
    with pytest.raises(ConnectorConfigError, match="base_url"):
        SuiteCrmConnector(
            "suite", {"base_url": "crm.example.org", "client_id": "x", "client_secret": "y"}
        )
    with pytest.raises(ConnectorConfigError, match="page_size"):
        SuiteCrmConnector(
            "suite", {"base_url": SITE, "client_id": "x", "client_secret": "y", "page_size": 0}
        )


# ---------------------------------------------------------------------------------------------
# Reads


def test_incremental_read_filters_in_utc_database_form_and_ignores_lying_offsets(
    rsps: responses.RequestsMock,
) -> None:
    password_grant(rsps)
    # since is 08:04:05.750 at +05:00, i.e. 03:04:05 UTC; SuiteCRM compares whole seconds.
    since = datetime(2024, 1, 2, 8, 4, 5, 750_000, tzinfo=timezone(timedelta(hours=5)))
    rsps.get(
        ACCOUNTS,
        json=accounts_page("2024-01-02T03:04:05-05:00", paged=False),
        match=[
            matchers.query_param_matcher(
                list_query(**{"filter[date_modified][gte]": "2024-01-02 03:04:05"})
            )
        ],
    )
    crm, _ = make(page_size=2)

    page = crm.read_changes("companies", since, None, ["name", "account_type"])

    # The wall clock is UTC whatever the offset says (SuiteCRM#9952).
    assert page.records[0].modified_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert page.next_token is None  # no links.next
    assert crm.capabilities.modified_precision == timedelta(seconds=1)


def test_pages_are_keyset_from_the_newest_second_and_drop_what_was_handed_out(
    rsps: responses.RequestsMock,
) -> None:
    password_grant(rsps)
    first = accounts_page("2024-01-02T03:04:05+00:00", "2024-01-02T03:04:09+00:00")
    rsps.get(ACCOUNTS, json=first, match=[matchers.query_param_matcher(list_query())])
    second = accounts_page("2024-01-02T03:04:09+00:00", "2024-01-02T03:05:00+00:00")
    second["data"][0]["id"] = first["data"][1]["id"]  # handed out already: dropped
    second["data"][1]["id"] = ID_A
    rsps.get(
        ACCOUNTS,
        json=second,
        match=[
            matchers.query_param_matcher(
                list_query(**{"filter[date_modified][gte]": "2024-01-02 03:04:09"})
            )
        ],
    )
    rsps.get(
        ACCOUNTS,
        json={"meta": {"message": "Request was successful, but there is no result"}, "data": []},
        match=[
            matchers.query_param_matcher(
                list_query(**{"filter[date_modified][gte]": "2024-01-02 03:05:00"})
            )
        ],
    )
    crm, _ = make(page_size=2)
    fields = ["name", "account_type"]

    one = crm.read_changes("companies", None, None, fields)
    # The hub stores the token; a new connector (after a restart) goes on from it.
    two = make(page_size=2)[0].read_changes("companies", None, one.next_token, fields)
    three = crm.read_changes("companies", None, two.next_token, fields)

    ids = [r.id for r in [*one.records, *two.records, *three.records]]
    assert ids == [first["data"][0]["id"], first["data"][1]["id"], ID_A]
    assert three.next_token is None


def test_a_page_within_one_second_reads_that_second_by_id(rsps: responses.RequestsMock) -> None:
    password_grant(rsps)
    crowded = accounts_page("2024-01-02T03:04:05+00:00", "2024-01-02T03:04:05+00:00")
    rsps.get(ACCOUNTS, json=crowded, match=[matchers.query_param_matcher(list_query())])
    window = {
        "filter[date_modified][gte]": "2024-01-02 03:04:05",
        "filter[date_modified][lt]": "2024-01-02 03:04:06",
        "sort": "id",
    }
    tie = accounts_page("2024-01-02T03:04:05+00:00", "2024-01-02T03:04:05+00:00")
    tie["data"][0]["id"] = crowded["data"][1]["id"]
    tie["data"][1]["id"] = ID_A
    rsps.get(ACCOUNTS, json=tie, match=[matchers.query_param_matcher(list_query(**window))])
    rest = accounts_page("2024-01-02T03:04:05+00:00", paged=False)
    rest["data"][0]["id"] = "f" * 8 + "-0000-4000-8000-000000000000"
    rsps.get(
        ACCOUNTS,
        json=rest,
        match=[matchers.query_param_matcher(list_query(**window, **{"filter[id][gt]": ID_A}))],
    )
    after = accounts_page("2024-01-02T03:04:07+00:00", paged=False)
    after["data"][0]["id"] = ID_B
    rsps.get(
        ACCOUNTS,
        json=after,
        match=[
            matchers.query_param_matcher(
                list_query(**{"filter[date_modified][gte]": "2024-01-02 03:04:06"})
            )
        ],
    )
    crm, _ = make(page_size=2)
    seen: list[str] = []
    token: str | None = None
    while True:
        page = crm.read_changes("companies", None, token, ["name", "account_type"])
        seen.extend(r.id for r in page.records)
        token = page.next_token
        if token is None:
            break

    assert len(seen) == len(set(seen)) == 5


def test_stamps_from_the_future_ask_for_trust_offsets(rsps: responses.RequestsMock) -> None:
    password_grant(rsps)
    ahead = datetime.now(UTC) + timedelta(hours=5)
    rsps.get(ACCOUNTS, json=accounts_page(ahead.strftime("%Y-%m-%dT%H:%M:%S+05:00"), paged=False))
    crm, _ = make()

    with pytest.raises(ConnectorConfigError, match="trust_offsets"):
        crm.read_changes("companies", None, None, ["name"])


def test_a_token_of_another_read_is_refused() -> None:
    crm, _ = make()
    foreign = pack_token({"o": "Contacts", "d": 0, "m": "n", "i": []}, kind="suitecrm/1")
    with pytest.raises(ConnectorConfigError, match="another SuiteCRM read"):
        crm.read_changes("companies", None, foreign, ["name"])
    with pytest.raises(ConnectorConfigError, match="page token"):
        crm.read_changes("companies", None, "not-a-token", ["name"])


def test_a_429_is_waited_out_as_retry_after_says(rsps: responses.RequestsMock) -> None:
    password_grant(rsps)
    rsps.get(ACCOUNTS, status=429, headers={"Retry-After": "7"}, body="Too Many Requests")
    rsps.get(ACCOUNTS, json=accounts_page(paged=False))
    crm, sleeps = make()

    page = crm.read_changes("companies", None, None, ["name"])

    assert page.records == []
    assert sleeps == [7.0]


def test_a_429_that_does_not_end_is_rate_limited(rsps: responses.RequestsMock) -> None:
    password_grant(rsps)
    for _ in range(5):
        rsps.get(ACCOUNTS, status=429, headers={"Retry-After": "2"})
    crm, sleeps = make()

    with pytest.raises(RateLimited) as raised:
        crm.read_changes("companies", None, None, ["name"])

    assert raised.value.retry_after == 2.0
    assert sleeps == [2.0] * 4


def test_read_by_id_omits_missing_records(rsps: responses.RequestsMock) -> None:
    password_grant(rsps)
    found = record_body(ID_A, date_modified="2024-01-02T03:04:05+00:00")
    rsps.get(
        f"{ACCOUNTS}/{ID_A}",
        json=found,
        match=[
            matchers.query_param_matcher({"fields[Accounts]": "name,account_type,date_modified"})
        ],
    )
    rsps.get(
        f"{ACCOUNTS}/{ID_B}",
        status=400,
        json=error_400(f"Accounts module with id {ID_B} is not found"),
    )
    crm, _ = make()

    records = crm.read("companies", [ID_A, ID_B], ["name", "account_type"])

    assert [(r.id, r.fields["name"]) for r in records] == [(ID_A, "White Cross Co")]


def test_an_unknown_field_in_the_map_is_a_config_error(rsps: responses.RequestsMock) -> None:
    password_grant(rsps)
    rsps.get(
        ACCOUNTS,
        status=400,
        json=error_400("The following field in Account module is not found: nickname"),
    )
    crm, _ = make()

    with pytest.raises(ConnectorConfigError, match="nickname"):
        crm.read_changes("companies", None, None, ["nickname"])


def test_deletes_are_the_soft_deleted_rows(rsps: responses.RequestsMock) -> None:
    password_grant(rsps)
    body = accounts_page("2024-03-01T10:00:00+00:00", paged=False)
    rsps.get(
        ACCOUNTS,
        json=body,
        match=[
            matchers.query_param_matcher(
                {
                    "fields[Accounts]": "date_modified",
                    "page[size]": "200",
                    "page[number]": "1",
                    "sort": "date_modified",
                    "filter[deleted][eq]": "1",
                    "filter[date_modified][gte]": "2024-03-01 09:00:00",
                }
            )
        ],
    )
    crm, _ = make()

    page = crm.read_deletes("companies", datetime(2024, 3, 1, 9, tzinfo=UTC), None)

    assert [(r.id, r.deleted, dict(r.fields)) for r in page.records] == [
        (body["data"][0]["id"], True, {})
    ]
    assert page.records[0].modified_at == datetime(2024, 3, 1, 10, tzinfo=UTC)


def test_find_filters_each_value_and_keeps_exact_matches(rsps: responses.RequestsMock) -> None:
    password_grant(rsps)
    body = {
        "data": [
            {
                "type": "Contact",
                "id": ID_A,
                "attributes": {
                    "email1": "Ada.Lovelace@Example.com",
                    "date_modified": "2024-01-02T03:04:05+00:00",
                },
            }
        ]
    }
    rsps.get(
        CONTACTS,
        json=body,
        match=[
            matchers.query_param_matcher(
                {
                    "fields[Contacts]": "first_name,last_name,email1,phone_work,title,account_id,"
                    "date_modified",
                    "filter[email1][eq]": "ada.lovelace@example.com",
                    "sort": "date_modified",
                    "page[size]": "200",
                    "page[number]": "1",
                }
            )
        ],
    )
    crm, _ = make()

    found = crm.find("contacts", "email1", ["ADA.Lovelace@example.com"])

    assert [r.id for r in found] == [ID_A]


# ---------------------------------------------------------------------------------------------
# Writes


def created(record_id: str, **attributes: Any) -> dict[str, Any]:
    return {
        "data": {
            "type": "Contact",
            "id": record_id,
            "attributes": {"date_modified": "2024-05-06T07:08:09+00:00", **attributes},
        }
    }


def test_create_sends_a_client_id_and_no_blank_attributes(rsps: responses.RequestsMock) -> None:
    password_grant(rsps)
    sent: list[dict[str, Any]] = []

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body or b"{}")
        sent.append(body)
        return 201, {}, json.dumps(created(body["data"]["id"], last_name="Lovelace"))

    rsps.add_callback("POST", MODULE, callback=answer)
    crm, _ = make()

    [result] = crm.create(
        "contacts", [{"last_name": "Lovelace", "title": None, "account_id": [ID_B]}]
    )

    data = sent[0]["data"]
    assert data["type"] == "Contacts"
    assert data["attributes"] == {"last_name": "Lovelace", "account_id": ID_B}
    assert result.ok
    assert result.remote_id == data["id"]
    assert result.modified_at == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def test_a_create_whose_answer_was_lost_is_found_by_its_id(rsps: responses.RequestsMock) -> None:
    password_grant(rsps)
    ids: list[str] = []

    def first_then_exists(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        record_id = json.loads(request.body or b"{}")["data"]["id"]
        ids.append(record_id)
        if len(ids) == 1:
            return 502, {}, "<html>Bad Gateway</html>"  # it was stored all the same
        detail = f"Bean Contacts with id {record_id} is already exist"
        return 400, {}, json.dumps(error_400(detail))

    rsps.add_callback("POST", MODULE, callback=first_then_exists)
    rsps.add_callback(
        "GET",
        re.compile(rf"{CONTACTS}/[0-9a-f-]+"),
        callback=lambda request: (200, {}, json.dumps(created(ids[0]))),
        match=[matchers.query_param_matcher({"fields[Contacts]": "date_modified"})],
    )
    crm, sleeps = make()

    [result] = crm.create("contacts", [{"last_name": "Lovelace"}])

    assert ids[0] == ids[1]
    assert result.ok
    assert result.remote_id == ids[0]
    assert len(sleeps) == 1


def test_a_create_repeated_after_an_unknown_outcome_reuses_its_id(
    rsps: responses.RequestsMock,
) -> None:
    password_grant(rsps)
    ids: list[str] = []

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        record_id = json.loads(request.body or b"{}")["data"]["id"]
        ids.append(record_id)
        if len(ids) <= 5:
            return 503, {}, "busy"
        return 201, {}, json.dumps(created(record_id))

    rsps.add_callback("POST", MODULE, callback=answer)
    crm, _ = make()

    with pytest.raises(TransientError):
        crm.create("contacts", [{"last_name": "Lovelace"}])
    [again] = crm.create("contacts", [{"last_name": "Lovelace"}])  # the hub's retry
    [other] = crm.create("contacts", [{"last_name": "Lovelace"}])  # a new create: a new id

    assert len(set(ids[:6])) == 1
    assert again.remote_id == ids[0]
    assert other.remote_id not in (None, ids[0])


def test_one_rejected_record_does_not_stop_the_others(rsps: responses.RequestsMock) -> None:
    password_grant(rsps)
    calls: list[str] = []

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        data = json.loads(request.body or b"{}")["data"]
        calls.append(data["id"])
        if "nickname" in data["attributes"]:
            return 400, {}, json.dumps(error_400("Property nickname in Contact module is invalid"))
        return 201, {}, json.dumps(created(data["id"]))

    rsps.add_callback("POST", MODULE, callback=answer)
    crm, _ = make()

    results = crm.create(
        "contacts", [{"last_name": "A"}, {"last_name": "B", "nickname": "Bee"}, {"last_name": "C"}]
    )

    assert [r.ok for r in results] == [True, False, True]
    error = results[1].error
    assert isinstance(error, RecordRejected)
    assert error.code == "INVALID_PROPERTY"
    assert error.field == "nickname"
    assert error.system == "suite"
    assert "Property nickname in Contact module is invalid" in str(error)


def test_update_patches_without_date_modified_and_clears_with_empty_text(
    rsps: responses.RequestsMock,
) -> None:
    password_grant(rsps)
    rsps.patch(
        MODULE,
        status=201,  # SuiteCRM answers a PATCH with 201
        json=created(ID_A, title="", last_name="Lovelace"),
        match=[
            matchers.json_params_matcher(
                {
                    "data": {
                        "type": "Contacts",
                        "id": ID_A,
                        "attributes": {"title": "", "last_name": "Lovelace"},
                    }
                }
            )
        ],
    )
    rsps.patch(
        MODULE,
        status=400,
        json=error_400(f"Contacts module with id {ID_B} is not found"),
    )
    crm, _ = make()

    results = crm.update(
        "contacts",
        [
            (ID_A, {"title": None, "last_name": "Lovelace", "date_modified": "2020-01-01"}),
            (ID_B, {"title": "Gone"}),
        ],
    )

    assert results[0].ok
    assert results[0].remote_id == ID_A
    assert not results[1].ok
    assert results[1].error is not None
    assert results[1].error.code == "NOT_FOUND"


def test_an_email1_patch_the_server_ignored_is_reported(rsps: responses.RequestsMock) -> None:
    password_grant(rsps)
    rsps.patch(MODULE, status=201, json=created(ID_A, email1="old@example.com"))
    crm, _ = make()

    [result] = crm.update("contacts", [(ID_A, {"email1": "new@example.com"})])

    assert result.error is not None
    assert result.error.code == "EMAIL1_NOT_UPDATED"
    assert result.error.field == "email1"


def test_delete_is_soft_and_a_missing_record_is_rejected_alone(
    rsps: responses.RequestsMock,
) -> None:
    password_grant(rsps)
    ok = copy.deepcopy(sample("suitecrm-v8-delete-ok"))
    ok["meta"]["message"] = f"Record with id {ID_A} is deleted"
    rsps.delete(f"{CONTACTS}/{ID_A}", json=ok)
    rsps.delete(
        f"{CONTACTS}/{ID_B}",
        status=400,
        json=error_400(f"Contacts module with id {ID_B} is not found"),
    )
    crm, _ = make()

    results = crm.delete("contacts", [ID_A, ID_B])

    assert [r.ok for r in results] == [True, False]
    assert results[0].remote_id == ID_A


def test_the_documented_400_body_is_a_rejection_quoting_its_detail(
    rsps: responses.RequestsMock,
) -> None:
    password_grant(rsps)
    rsps.post(MODULE, status=400, json=sample("suitecrm-v8-error-400"))
    crm, _ = make()

    [result] = crm.create("contacts", [{"last_name": "Lovelace"}])

    assert result.error is not None
    assert result.error.code == "BAD_REQUEST"
    assert "Link field has not found in Lead" in str(result.error)


@pytest.mark.parametrize(
    ("detail", "kind", "code"),
    [
        (f"Accounts module with id {ID_A} is not found", RecordRejected, "NOT_FOUND"),
        (f"Bean Contacts with id {ID_A} is already exist", RecordRejected, "ALREADY_EXISTS"),
        ("Property nickname in Contact module is invalid", RecordRejected, "INVALID_PROPERTY"),
        ("Access Denied for module Contacts", RecordRejected, "ACCESS_DENIED"),
        ("Module Leeds does not exist", ConnectorConfigError, None),
        ("The following fields in Contact module are not found: a, b", ConnectorConfigError, None),
        ("Filter operator between is invalid", VendorError, None),
        ('The option "page" with value array is invalid.', VendorError, None),
    ],
)
def test_400_details_are_told_apart(detail: str, kind: type[Exception], code: str | None) -> None:
    response = requests.Response()
    response.status_code = 400
    response._content = json.dumps(error_400(detail)).encode()

    error = classify_suitecrm(response)

    assert type(error) is kind
    assert getattr(error, "code", None) == code
    assert detail in str(error)


def test_statuses_without_suitecrms_body_are_plain_http() -> None:
    for status, kind in ((500, TransientError), (502, TransientError), (403, AuthError)):
        response = requests.Response()
        response.status_code = status
        response._content = b"<html>proxy</html>"
        assert type(classify_suitecrm(response)) is kind


def test_a_refused_login_names_the_user_settings(rsps: responses.RequestsMock) -> None:
    refusal = {
        "error": "invalid_grant",
        "error_description": "The user credentials were incorrect.",
        "message": "The user credentials were incorrect.",
    }
    rsps.post(TOKEN_URL, status=400, json=refusal)
    crm, _ = make()

    with pytest.raises(AuthError) as raised:
        crm.check()

    assert str(raised.value) == (
        "suite: POST /legacy/Api/access_token: the API user's login was refused (HTTP 400 "
        "invalid_grant: The user credentials were incorrect.): set systems.suite.username and "
        "systems.suite.password to the user's current ones"
    )
    assert PASSWORD not in str(raised.value)


def test_a_refused_client_names_the_client_settings_and_the_grant(
    rsps: responses.RequestsMock,
) -> None:
    refusal = {"error": "invalid_client", "error_description": "Client authentication failed"}
    rsps.post(TOKEN_URL, status=401, json=refusal)
    crm, _ = make()

    with pytest.raises(AuthError) as raised:
        crm.check()

    text = str(raised.value)
    assert "set systems.suite.client_id and systems.suite.client_secret" in text
    assert "made for the password grant" in text
