"""The Apptivo sandbox's own behaviour: the dao/v6 dispatch, paging and its 5,000-row window,
HTTP 200 failures, keys, rate limits, envelopes and partial updates."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from connectors.apptivo.sandbox import ROOT, ApptivoApi
from connectors.sandbox import Sandbox, SandboxOptions


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    api = ApptivoApi()
    api.seed_records(30, seed=1)
    with Sandbox(api, SandboxOptions()) as running:
        yield running


def call(
    sandbox: Sandbox, app: str, action: str, post: dict[str, Any] | None = None, **params: Any
) -> requests.Response:
    api: ApptivoApi = sandbox.api  # type: ignore[assignment]
    query = {"a": action, "apiKey": api.api_key, "accessKey": api.access_key, **params}
    url = f"{sandbox.url}{ROOT}/{app}"
    if post is None:
        return requests.get(url, params=query, timeout=5)
    return requests.post(
        url, params=query, data={k: json.dumps(v) for k, v in post.items()}, timeout=5
    )


def test_get_all_pages_by_start_index_and_counts_every_record(sandbox: Sandbox) -> None:
    first = call(
        sandbox, "contacts", "getAll", startIndex=0, numRecords=20, sortColumn="lastUpdateDate"
    ).json()
    rest = call(
        sandbox, "contacts", "getAll", startIndex=20, numRecords=20, sortColumn="lastUpdateDate"
    ).json()
    assert first["countOfRecords"] == 30
    ids = [row["contactId"] for row in first["data"] + rest["data"]]
    assert len(ids) == len(set(ids)) == 30
    default = call(sandbox, "contacts", "getAll").json()
    assert len(default["data"]) == 30  # 50 a page without numRecords


def test_no_query_serves_rows_past_the_5000th(sandbox: Sandbox) -> None:
    answer = call(sandbox, "contacts", "getAll", startIndex=4990, numRecords=20)
    assert answer.status_code == 200
    assert answer.json()["status"] == "FAILURE"
    assert "Result window" in answer.json()["message"]


def test_wrong_or_revoked_keys_fail_with_http_200(sandbox: Sandbox) -> None:
    api: ApptivoApi = sandbox.api  # type: ignore[assignment]
    old = api.api_key
    api.revoke_credentials()
    answer = requests.get(
        f"{sandbox.url}{ROOT}/contacts",
        params={"a": "getAll", "apiKey": old, "accessKey": api.access_key},
        timeout=5,
    )
    assert answer.status_code == 200
    assert answer.json() == {"status": "FAILURE", "message": "Invalid apiKey or accessKey"}


def test_search_from_a_stamp_returns_what_changed_at_or_after_its_second(sandbox: Sandbox) -> None:
    api: ApptivoApi = sandbox.api  # type: ignore[assignment]
    record_id = sorted(api.snapshot("contacts"))[0]
    api.clock.advance(60)
    api.modify("contacts", record_id, {"jobTitle": "Changed"})
    stamp = call(sandbox, "contacts", "getById", contactId=record_id).json()["lastUpdateDate"]
    found = call(
        sandbox,
        "contacts",
        "getAllByAdvancedSearch",
        searchData=json.dumps({"lastUpdateDateFrom": stamp}),
        sortColumn="lastUpdateDate",
    ).json()
    assert [row["id"] for row in found["data"]] == [record_id]


def test_update_applies_only_the_named_attributes_and_customers_name_them_singularly(
    sandbox: Sandbox,
) -> None:
    api: ApptivoApi = sandbox.api  # type: ignore[assignment]
    customer_id = sorted(api.snapshot("companies"))[0]
    data = {"customerName": "Renamed", "website": "https://ignored.example"}
    plural = call(
        sandbox,
        "customers",
        "update",
        {"customerData": data},
        customerId=customer_id,
        attributeNames='["customerName"]',
    )
    assert plural.json()["status"] == "FAILURE"
    answer = call(
        sandbox,
        "customers",
        "update",
        {"customerData": data},
        customerId=customer_id,
        attributeName='["customerName"]',
    )
    stored = answer.json()["customer"]  # the customers envelope
    assert stored["customerName"] == "Renamed"
    assert stored["website"] != "https://ignored.example"


def test_save_validates_and_answers_in_the_app_s_envelope(sandbox: Sandbox) -> None:
    bad = call(
        sandbox,
        "contacts",
        "save",
        {"contactData": {"lastName": "X", "emailAddresses": [{"emailAddress": "nope"}]}},
    )
    assert bad.json() == {"status": "FAILURE", "message": "Invalid email address: nope"}
    good = call(
        sandbox,
        "opportunities",
        "save",
        {
            "opportunityData": {
                "opportunityName": "Pilot",
                "salesStageName": "Proposal",
                "closeDate": "03/31/2026",
            }
        },
    )
    record = good.json()["data"]
    assert record["salesStageId"] == 1004
    assert record["closeDate"] == "03/31/2026"


def test_delete_removes_and_a_missing_record_fails(sandbox: Sandbox) -> None:
    api: ApptivoApi = sandbox.api  # type: ignore[assignment]
    record_id = sorted(api.snapshot("contacts"))[0]
    assert (
        call(sandbox, "contacts", "delete", {}, contactId=record_id).json()["status"] == "SUCCESS"
    )
    again = call(sandbox, "contacts", "getById", contactId=record_id).json()
    assert again["status"] == "FAILURE"
    assert "not found" in again["message"]


def test_the_rate_limit_answers_429_with_retry_after() -> None:
    options = SandboxOptions(rate_limit=2)
    with Sandbox(ApptivoApi(options), options) as running:
        answers = [call(running, "contacts", "getAll") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[2].headers["Retry-After"]) >= 1
    assert answers[2].json()["status"] == "FAILURE"
