"""The Apptivo connector against Apptivo-shaped bodies (built from the documented samples):
display-format dates, windowed paging, FAILURE answers, envelopes, writes and limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from connectors.apptivo.connector import ApptivoConnector
from connectors.errors import AuthError, ConnectorConfigError, RecordRejected, VendorError

BASE = "https://api.apptivo.com/app/dao/v6"
CONTACTS = f"{BASE}/contacts"
CUSTOMERS = f"{BASE}/customers"
OPPORTUNITIES = f"{BASE}/opportunities"
API_KEY = "3b1f0c9e-apikey-77d1a0"
ACCESS_KEY = "c2a9e1f4-accesskey-0b3e"


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make(**overrides: Any) -> tuple[ApptivoConnector, Sleeps]:
    sleeps = Sleeps()
    settings = {
        "api_key": API_KEY,
        "access_key": ACCESS_KEY,
        "timezone": "America/Chicago",
        "rate_limit": "1000/second",
        "page_size": 2,
        **overrides,
    }
    return ApptivoConnector("crm_b", settings, sleep=sleeps), sleeps


def contact(contact_id: int, updated: str, **extra: Any) -> dict[str, Any]:
    """A contact as the createcontacts/updatecontact samples show one."""
    return {
        "contactId": contact_id,
        "id": str(contact_id),
        "title": "Mr.",
        "firstName": "Jon",
        "lastName": "Smith",
        "jobTitle": "Buyer",
        "accountId": 35111204,
        "accountName": "Acme Foods",
        "phoneNumbers": [
            {
                "phoneNumber": "617-555-0101",
                "phoneType": "Business",
                "phoneTypeCode": "PHONE_BUSINESS",
            },
            {"phoneNumber": "617-555-0199", "phoneType": "Mobile", "phoneTypeCode": "PHONE_MOBILE"},
        ],
        "emailAddresses": [
            {
                "emailAddress": "jon.smith@acme.example",
                "emailTypeCode": "BUSINESS",
                "emailType": "Business",
                "id": "cont_email_input",
            }
        ],
        "addresses": [
            {
                "addressTypeCode": "1",
                "addressType": "Billing Address",
                "addressLine1": "1 Main St",
                "city": "Boston",
                "countryName": "United States",
            }
        ],
        "customAttributes": [],
        "labels": [],
        "creationDate": "Oct 07, 2017 05:44:26 PM",
        "lastUpdateDate": updated,
        **extra,
    }


def query(call: Any) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(call.request.url).query).items()}


def form(call: Any) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(call.request.body or "").items()}


@responses.activate
def test_a_page_is_read_in_the_account_formats_and_the_next_window_starts_at_its_newest() -> None:
    connector, _ = make()
    responses.get(
        CONTACTS,
        json={
            "data": [
                contact(1, "Jan 15, 2024 09:30:05 AM"),
                contact(2, "Jan 15, 2024 09:30:07 PM", phoneNumbers=[]),
            ],
            "countOfRecords": 3,
        },
    )
    page = connector.read_changes("contacts", None, None, [])
    first, second = page.records
    # 09:30:05 AM in Chicago (UTC-6 in January) is 15:30:05 UTC.
    assert first.modified_at == datetime(2024, 1, 15, 15, 30, 5, tzinfo=UTC)
    assert second.modified_at == datetime(2024, 1, 16, 3, 30, 7, tzinfo=UTC)
    assert first.fields["emailAddress"] == "jon.smith@acme.example"
    assert first.fields["phoneNumber"] == "617-555-0101"
    assert first.fields["mobileNumber"] == "617-555-0199"
    assert first.fields["city"] == "Boston"
    assert first.fields["accountId"] == 35111204
    assert "phoneNumber" not in second.fields
    sent = query(responses.calls[0])
    assert sent["a"] == "getAll"
    assert (sent["sortColumn"], sent["sortDir"], sent["startIndex"]) == (
        "lastUpdateDate",
        "asc",
        "0",
    )
    assert sent["apiKey"] == API_KEY
    assert sent["accessKey"] == ACCESS_KEY
    assert page.next_token

    responses.get(
        CONTACTS,
        json={
            "data": [
                contact(2, "Jan 15, 2024 09:30:07 PM"),
                contact(3, "Jan 15, 2024 09:31:00 PM"),
            ],
            "countOfRecords": 2,
        },
    )
    rest = connector.read_changes("contacts", None, page.next_token, [])
    # Record 2 was handed out in that second already; the window moved, the offset did not.
    assert [record.id for record in rest.records] == ["3"]
    assert rest.next_token is None
    sent = query(responses.calls[1])
    assert sent["a"] == "getAllByAdvancedSearch"
    assert sent["startIndex"] == "0"
    assert json.loads(sent["searchData"]) == {"lastUpdateDateFrom": "Jan 15, 2024 09:30:07 PM"}


@responses.activate
def test_an_incremental_read_asks_from_the_second_of_since_in_the_account_s_zone() -> None:
    connector, _ = make()
    responses.get(CONTACTS, json={"data": [], "countOfRecords": 0})
    since = datetime(2024, 7, 1, 12, 0, 0, 750_000, tzinfo=UTC)
    page = connector.read_changes("contacts", since, None, ["lastName"])
    assert page.records == []
    assert page.next_token is None
    search = json.loads(query(responses.calls[0])["searchData"])
    assert search == {"lastUpdateDateFrom": "Jul 01, 2024 07:00:00 AM"}  # CDT, UTC-5


@responses.activate
def test_a_full_page_inside_one_second_pages_by_offset_within_that_second() -> None:
    connector, _ = make()
    same = "Mar 03, 2024 10:00:00 AM"
    responses.get(
        CONTACTS, json={"data": [contact(1, same), contact(2, same)], "countOfRecords": 9}
    )
    page = connector.read_changes("contacts", None, None, [])
    responses.get(
        CONTACTS, json={"data": [contact(1, same), contact(2, same)], "countOfRecords": 9}
    )
    connector.read_changes("contacts", None, page.next_token, [])
    again = query(responses.calls[1])
    assert json.loads(again["searchData"]) == {"lastUpdateDateFrom": same}
    assert again["startIndex"] == "2"


@responses.activate
def test_refused_keys_are_an_auth_error_naming_the_settings_and_no_key() -> None:
    connector, _ = make()
    responses.get(CONTACTS, json={"status": "FAILURE", "message": "Invalid apiKey or accessKey"})
    with pytest.raises(AuthError) as raised:
        connector.check()
    message = str(raised.value)
    assert message.startswith("crm_b: ")
    assert "systems.crm_b.api_key" in message
    assert "systems.crm_b.access_key" in message
    assert API_KEY not in message
    assert ACCESS_KEY not in message
    assert len(responses.calls) == 1  # not retried


@responses.activate
def test_a_failure_on_create_rejects_that_record_alone_and_envelopes_are_unwrapped() -> None:
    connector, _ = make()
    responses.post(CONTACTS, json=contact(7, "Feb 01, 2024 08:00:00 AM"))
    responses.post(CONTACTS, json={"status": "FAILURE", "message": "Invalid email address: nope"})
    results = connector.create(
        "contacts",
        [
            {"lastName": "Smith", "emailAddress": "jon@acme.example"},
            {"lastName": "X", "emailAddress": "nope"},
        ],
    )
    assert results[0].ok
    assert results[0].remote_id == "7"
    assert results[0].modified_at == datetime(2024, 2, 1, 14, 0, tzinfo=UTC)
    assert isinstance(results[1].error, RecordRejected)
    assert "nope" in str(results[1].error)
    sent = json.loads(form(responses.calls[0])["contactData"])
    assert sent["emailAddresses"] == [
        {"emailAddress": "jon@acme.example", "emailTypeCode": "BUSINESS", "emailType": "Business"}
    ]
    assert query(responses.calls[0])["a"] == "save"

    responses.post(
        OPPORTUNITIES,
        json={
            "data": {"opportunityId": 9, "id": "9", "lastUpdateDate": "Feb 01, 2024 08:00:01 AM"}
        },
    )
    [deal] = connector.create("deals", [{"opportunityName": "Pilot", "closeDate": "2026-03-31"}])
    assert deal.remote_id == "9"
    assert json.loads(form(responses.calls[2])["opportunityData"])["closeDate"] == "03/31/2026"


@responses.activate
def test_a_customer_update_names_its_attributes_singularly_and_keeps_other_entries() -> None:
    connector, _ = make()
    stored = {
        "customerId": 5,
        "id": "5",
        "customerName": "Acme",
        "lastUpdateDate": "Feb 01, 2024 08:00:00 AM",
        "phoneNumbers": [
            {
                "phoneNumber": "1",
                "phoneTypeCode": "PHONE_BUSINESS",
                "phoneType": "Business",
                "id": "a",
            },
            {"phoneNumber": "2", "phoneTypeCode": "PHONE_FAX", "phoneType": "Fax", "id": "b"},
        ],
    }
    responses.get(CUSTOMERS, json=stored)
    responses.post(
        CUSTOMERS, json={"customer": {**stored, "lastUpdateDate": "Feb 02, 2024 08:00:00 AM"}}
    )
    [result] = connector.update(
        "companies", [("5", {"phoneNumber": "617-555-0100", "website": None})]
    )
    assert result.ok
    assert result.remote_id == "5"
    sent = query(responses.calls[1])
    assert sent["a"] == "update"
    assert sent["customerId"] == "5"
    assert json.loads(sent["attributeName"]) == ["phoneNumbers", "website"]
    data = json.loads(form(responses.calls[1])["customerData"])
    assert data["website"] == ""
    assert [p["phoneNumber"] for p in data["phoneNumbers"]] == ["617-555-0100", "2"]


@responses.activate
def test_a_missing_record_is_omitted_from_read_and_a_429_is_waited_out() -> None:
    connector, sleeps = make()
    responses.get(CONTACTS, status=429, headers={"Retry-After": "3"}, json={"status": "FAILURE"})
    responses.get(CONTACTS, json={"status": "FAILURE", "message": "Contact not found: 404"})
    assert connector.read("contacts", ["404"], ["lastName"]) == []
    assert sleeps == [3.0]


@responses.activate
def test_a_page_without_data_is_a_vendor_error() -> None:
    connector, _ = make()
    responses.get(CONTACTS, json={"countOfRecords": 3})
    with pytest.raises(VendorError):
        connector.read_changes("contacts", None, None, [])


def test_formats_that_do_not_read_back_are_refused_naming_the_setting() -> None:
    with pytest.raises(ConnectorConfigError, match="datetime_format"):
        make(datetime_format="%b %d, %Y")
    with pytest.raises(ConnectorConfigError, match="timezone"):
        make(timezone="Mars/Olympus")
