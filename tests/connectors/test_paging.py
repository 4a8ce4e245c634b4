"""Paginators over recorded vendor bodies, and iterate_pages against ``responses``."""

from __future__ import annotations

from typing import Any

import pytest
import responses
from responses import matchers

from connectors.errors import VendorError
from connectors.http import HttpClient
from connectors.paging import (
    CursorPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    default_items,
    dig,
    iterate_pages,
)
from tests.connectors.conftest import sample


def test_hubspot_cursor_over_recorded_pages() -> None:
    paginator = CursorPaginator()
    assert paginator.first_params() == {"limit": 100}

    page = sample("hubspot-contacts-list-page")
    assert [r["id"] for r in paginator.items(page)] == ["1", "51", "101"]
    assert paginator.next_params(page) == {"limit": 100, "after": "394"}
    assert paginator.next_params(sample("hubspot-contacts-search-lastpage")) is None


def test_zoho_page_token_cursor() -> None:
    paginator = CursorPaginator("page_token", ("info", "next_page_token"), "per_page", 200)
    page = sample("zoho-get-records-page1-with-page-token")

    paginator.first_params()
    assert paginator.next_params(page) == {"per_page": 200, "page_token": "c8582xx9e7c7"}
    assert paginator.next_params(sample("zoho-contacts-list")) is None  # next_page_token: null


def test_cursor_repeated_by_the_vendor_is_an_error_not_a_loop() -> None:
    paginator = CursorPaginator()
    page = sample("hubspot-contacts-list-page")
    paginator.first_params()
    paginator.next_params(page)
    with pytest.raises(VendorError, match="twice"):
        paginator.next_params(page)
    paginator.first_params()  # a new listing starts clean
    assert paginator.next_params(page) is not None


def test_suitecrm_page_numbers_follow_links_next() -> None:
    paginator = PageNumberPaginator(
        "page[number]", "page[size]", 1, has_more=lambda body: bool(dig(body, ("links", "next")))
    )
    assert paginator.first_params() == {"page[number]": 1, "page[size]": 1}

    assert paginator.next_params(sample("suitecrm-v8-list-paged")) == {
        "page[number]": 2,
        "page[size]": 1,
    }
    # A page without links (the last, or an unpaged answer) ends the listing.
    assert paginator.next_params(sample("suitecrm-v8-list-sorted")) is None


def test_page_numbers_without_has_more_stop_on_a_short_page() -> None:
    paginator = PageNumberPaginator(size=2)
    paginator.first_params()
    assert paginator.next_params({"data": [1, 2]}) == {"page": 2, "per_page": 2}
    assert paginator.next_params({"data": [3]}) is None


def test_zoho_more_records_wins_over_counting() -> None:
    # Zoho caps per_page at 200; asking for 250 makes every page "short", yet more remain.
    paginator = PageNumberPaginator(
        size=250, has_more=lambda b: bool(dig(b, ("info", "more_records")))
    )
    paginator.first_params()
    page = sample("zoho-get-records-page1-with-page-token")  # 5 records, more_records: true
    assert paginator.next_params(page) == {"page": 2, "per_page": 250}
    assert paginator.next_params(sample("zoho-contacts-list")) is None  # more_records: false


def test_bitrix24_start_and_next() -> None:
    paginator = OffsetPaginator()
    assert paginator.first_params() == {"start": 0}

    page = sample("bitrix24-list-real-page-with-next")  # trimmed to 3 rows, next: 50
    assert len(paginator.items(page)) == 3
    assert paginator.next_params(page) == {"start": 50}
    assert paginator.next_params(sample("bitrix24-crm-contact-list")) is None  # no next


def test_offset_that_does_not_advance_is_an_error() -> None:
    paginator = OffsetPaginator()
    paginator.first_params()
    with pytest.raises(VendorError, match="does not advance"):
        paginator.next_params({"result": [{"ID": "1"}], "next": 0})


def test_insightly_skip_top_counts_rows() -> None:
    paginator = OffsetPaginator("skip", "top", 3, next_path=None)
    assert paginator.first_params() == {"skip": 0, "top": 3}
    assert paginator.next_params([{"CONTACT_ID": i} for i in range(3)]) == {"skip": 3, "top": 3}
    assert paginator.next_params([{"CONTACT_ID": 9}]) is None


def test_apptivo_total_ends_the_listing() -> None:
    paginator = OffsetPaginator(
        "startIndex", "numRecords", 2, next_path=None, total_path=("countOfRecords",)
    )
    paginator.first_params()
    assert paginator.next_params({"data": [1, 2], "countOfRecords": 5}) == {
        "startIndex": 2,
        "numRecords": 2,
    }
    assert paginator.next_params({"data": [3, 4], "countOfRecords": 4}) is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (None, []),
        ([1, 2], [1, 2]),
        ({"results": [1]}, [1]),
        ({"data": [2]}, [2]),
        ({"result": [3], "next": 50}, [3]),
        ({"result": {"items": [4]}, "total": 1}, [4]),
    ],
)
def test_default_items(body: Any, expected: list[Any]) -> None:
    assert default_items(body) == expected


def test_default_items_refuses_an_unknown_shape() -> None:
    with pytest.raises(ValueError, match="items="):
        default_items({"records": []})


def test_iterate_pages_hubspot_list(rsps: responses.RequestsMock) -> None:
    url = "https://api.hubapi.com/crm/v3/objects/contacts"
    rsps.get(
        url,
        json=sample("hubspot-contacts-list-page"),
        match=[matchers.query_param_matcher({"properties": "email", "limit": "100"})],
    )
    rsps.get(
        url,
        json=sample("hubspot-contacts-search-lastpage"),
        match=[
            matchers.query_param_matcher({"properties": "email", "limit": "100", "after": "394"})
        ],
    )
    http = HttpClient("hubspot", "https://api.hubapi.com")

    pages = list(
        iterate_pages(
            http,
            "GET",
            "/crm/v3/objects/contacts",
            CursorPaginator(),
            params={"properties": "email"},
        )
    )

    assert [len(records) for records, _ in pages] == [3, 1]
    assert http.stats.requests == 2


def test_iterate_pages_hubspot_search_pages_in_the_body(rsps: responses.RequestsMock) -> None:
    url = "https://api.hubapi.com/crm/v3/objects/contacts/search"
    query = {"filterGroups": [], "sorts": ["lastmodifieddate"]}
    rsps.post(
        url,
        json=sample("hubspot-contacts-search-page1"),
        match=[matchers.json_params_matcher({**query, "limit": 200})],
    )
    rsps.post(
        url,
        json=sample("hubspot-contacts-search-lastpage"),
        match=[matchers.json_params_matcher({**query, "limit": 200, "after": "54"})],
    )
    http = HttpClient("hubspot", "https://api.hubapi.com")
    paginator = CursorPaginator(limit=200)

    pages = list(
        iterate_pages(
            http,
            "POST",
            "/crm/v3/objects/contacts/search",
            paginator,
            json_body=query,
            idempotent=True,
        )
    )

    assert len(pages) == 2


def test_iterate_pages_bitrix24_post_with_custom_items(rsps: responses.RequestsMock) -> None:
    url = "https://portal.example.com/rest/crm.contact.list"
    body = {"order": {"ID": "ASC"}, "select": ["ID"]}
    rsps.post(
        url,
        json=sample("bitrix24-list-real-page-with-next"),
        match=[matchers.json_params_matcher({**body, "start": 0})],
    )
    rsps.post(
        url,
        json=sample("bitrix24-crm-contact-list"),
        match=[matchers.json_params_matcher({**body, "start": 50})],
    )
    http = HttpClient("b24", "https://portal.example.com/rest")

    ids = [
        record_ids
        for record_ids, _ in iterate_pages(
            http,
            "POST",
            "crm.contact.list",
            OffsetPaginator(),
            json_body=body,
            items=lambda page: [row["ID"] for row in page["result"]],
            idempotent=True,
        )
    ]

    assert ids[0] == ["161", "171", "175"]
    assert len(ids) == 2


def test_iterate_pages_error_from_paginator_carries_system(rsps: responses.RequestsMock) -> None:
    url = "https://api.hubapi.com/crm/v3/objects/contacts"
    rsps.get(url, json={"results": [], "paging": {"next": {"after": "7"}}})
    http = HttpClient("hubspot", "https://api.hubapi.com")

    with pytest.raises(VendorError) as raised:
        list(iterate_pages(http, "GET", "/crm/v3/objects/contacts", CursorPaginator()))

    assert raised.value.system == "hubspot"
    assert len(rsps.calls) == 2
