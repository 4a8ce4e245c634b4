"""The Insightly sandbox's own behaviour, spoken to over HTTP as Insightly's clients do: auth,
bare-array paging, Search, partial PUT, read-only opportunity fields, errors and limits."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from connectors.insightly.sandbox import DAILY_LIMIT, PIPELINE_STAGES, InsightlyApi
from connectors.sandbox import Sandbox, SandboxOptions


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    api = InsightlyApi(SandboxOptions(rate_limit=1000))
    api.seed_records(30, seed=1)
    with Sandbox(api) as running:
        yield running


def api_of(sandbox: Sandbox) -> InsightlyApi:
    assert isinstance(sandbox.api, InsightlyApi)
    return sandbox.api


def call(
    sandbox: Sandbox, method: str, path: str, *, key: str | None = None, **options: Any
) -> requests.Response:
    secret = api_of(sandbox).api_key if key is None else key
    token = base64.b64encode(f"{secret}:".encode()).decode()
    return requests.request(
        method,
        f"{sandbox.url}/v3.1{path}",
        headers={"Authorization": f"Basic {token}", "Accept": "application/json"},
        timeout=10,
        **options,
    )


def test_a_wrong_key_gets_401_and_a_revoked_key_stops_working(sandbox: Sandbox) -> None:
    refused = call(sandbox, "GET", "/Instance", key="not-the-key")
    assert refused.status_code == 401
    assert refused.json() == {"Message": "Authorization has been denied for this request."}
    old = api_of(sandbox).api_key
    assert call(sandbox, "GET", "/Instance").status_code == 200
    api_of(sandbox).revoke_credentials()
    assert call(sandbox, "GET", "/Instance", key=old).status_code == 401
    assert call(sandbox, "GET", "/Instance").status_code == 200


def test_the_bare_key_without_a_colon_is_accepted_too(sandbox: Sandbox) -> None:
    token = base64.b64encode(api_of(sandbox).api_key.encode()).decode()
    answer = requests.get(
        f"{sandbox.url}/v3.1/Instance", headers={"Authorization": f"Basic {token}"}, timeout=10
    )
    assert answer.status_code == 200


def test_lists_are_bare_arrays_in_id_order_paged_by_skip_and_top(sandbox: Sandbox) -> None:
    everything = call(sandbox, "GET", "/Contacts", params={"top": 500, "count_total": "true"})
    rows = everything.json()
    assert isinstance(rows, list)
    assert len(rows) == 30
    assert everything.headers["X-Total-Count"] == "30"
    ids = [row["CONTACT_ID"] for row in rows]
    assert ids == sorted(ids)
    page = call(sandbox, "GET", "/Contacts", params={"skip": 10, "top": 5}).json()
    assert [row["CONTACT_ID"] for row in page] == ids[10:15]
    default = call(sandbox, "GET", "/Contacts").json()
    assert len(default) == 30  # under the default top of 100
    too_many = call(sandbox, "GET", "/Contacts", params={"top": 501})
    assert too_many.status_code == 400
    assert "Message" in too_many.json()


def test_brief_leaves_out_the_sub_collections(sandbox: Sandbox) -> None:
    full = call(sandbox, "GET", "/Opportunities").json()
    brief = call(sandbox, "GET", "/Opportunities", params={"brief": "true"}).json()
    assert full[0]["LINKS"][0]["LINK_OBJECT_NAME"] == "Contact"
    assert "LINKS" not in brief[0]
    assert "CUSTOMFIELDS" not in brief[0]
    assert brief[0]["OPPORTUNITY_ID"] == full[0]["OPPORTUNITY_ID"]


def test_search_by_update_time_is_exclusive_to_the_second(sandbox: Sandbox) -> None:
    rows = call(sandbox, "GET", "/Contacts", params={"top": 500}).json()
    newest = max(row["DATE_UPDATED_UTC"] for row in rows)
    at_newest = call(
        sandbox, "GET", "/Contacts/Search", params={"updated_after_utc": newest}
    ).json()
    assert at_newest == []
    stamp = newest.replace(" ", "T") + "Z"
    before = call(sandbox, "GET", "/Contacts/Search", params={"updated_after_utc": stamp})
    assert before.json() == []
    first = rows[0]
    api_of(sandbox).clock.advance(2)
    api_of(sandbox).modify("contacts", str(first["CONTACT_ID"]), {"TITLE": "Changed"})
    changed = call(sandbox, "GET", "/Contacts/Search", params={"updated_after_utc": stamp}).json()
    assert [row["CONTACT_ID"] for row in changed] == [first["CONTACT_ID"]]


def test_search_by_field_matches_whole_values_ignoring_case(sandbox: Sandbox) -> None:
    person = call(sandbox, "GET", "/Contacts").json()[3]
    found = call(
        sandbox,
        "GET",
        "/Contacts/Search",
        params={"field_name": "EMAIL_ADDRESS", "field_value": person["EMAIL_ADDRESS"].upper()},
    ).json()
    assert [row["CONTACT_ID"] for row in found] == [person["CONTACT_ID"]]


def test_put_is_partial_and_null_clears(sandbox: Sandbox) -> None:
    created = call(
        sandbox,
        "POST",
        "/Contacts",
        json={"FIRST_NAME": "Grace", "LAST_NAME": "Hopper", "TITLE": "Admiral"},
    )
    assert created.status_code == 200
    contact_id = created.json()["CONTACT_ID"]
    updated = call(sandbox, "PUT", "/Contacts", json={"CONTACT_ID": contact_id, "TITLE": None})
    assert updated.status_code == 200
    stored = api_of(sandbox).snapshot("contacts")[str(contact_id)]
    assert stored["TITLE"] is None
    assert stored["LAST_NAME"] == "Hopper"


def test_invalid_records_get_400_with_a_message(sandbox: Sandbox) -> None:
    bad_email = call(
        sandbox, "POST", "/Contacts", json={"LAST_NAME": "X", "EMAIL_ADDRESS": "not-an-email"}
    )
    assert bad_email.status_code == 400
    assert "not-an-email" in bad_email.json()["Message"]
    no_org = call(sandbox, "POST", "/Contacts", json={"LAST_NAME": "X", "ORGANISATION_ID": 1})
    assert no_org.status_code == 400
    missing = call(sandbox, "PUT", "/Contacts", json={"CONTACT_ID": 1, "TITLE": "A"})
    assert missing.status_code == 404
    assert call(sandbox, "GET", "/Contacts/1").status_code == 404


def test_opportunity_value_and_pipeline_fields_are_read_only_in_put(sandbox: Sandbox) -> None:
    stage_ids = list(PIPELINE_STAGES)
    created = call(
        sandbox,
        "POST",
        "/Opportunities",
        json={
            "OPPORTUNITY_NAME": "Pilot",
            "BID_AMOUNT": 100,
            "BID_TYPE": "Per Month",
            "BID_DURATION": 6,
            "PIPELINE_ID": 500001,
            "STAGE_ID": stage_ids[0],
        },
    ).json()
    assert created["OPPORTUNITY_VALUE"] == 600
    assert created["OPPORTUNITY_STATE"] == "OPEN"
    deal_id = created["OPPORTUNITY_ID"]
    put = call(
        sandbox,
        "PUT",
        "/Opportunities",
        json={"OPPORTUNITY_ID": deal_id, "STAGE_ID": stage_ids[2], "OPPORTUNITY_VALUE": 1},
    ).json()
    assert put["STAGE_ID"] == stage_ids[0]
    assert put["OPPORTUNITY_VALUE"] == 600
    moved = call(
        sandbox, "PUT", f"/Opportunities/{deal_id}/PipelineStage", json={"STAGE_ID": stage_ids[2]}
    ).json()
    assert moved["STAGE_ID"] == stage_ids[2]
    stages = call(sandbox, "GET", "/PipelineStages").json()
    assert [stage["STAGE_NAME"] for stage in stages] == list(PIPELINE_STAGES.values())


def test_delete_answers_202_then_404(sandbox: Sandbox) -> None:
    company_id = call(sandbox, "GET", "/Organisations").json()[0]["ORGANISATION_ID"]
    first = call(sandbox, "DELETE", f"/Organisations/{company_id}")
    assert first.status_code == 202
    assert first.content == b""
    assert call(sandbox, "DELETE", f"/Organisations/{company_id}").status_code == 404


def test_every_answer_reports_the_daily_budget(sandbox: Sandbox) -> None:
    first = call(sandbox, "GET", "/Instance")
    second = call(sandbox, "GET", "/Instance")
    assert first.headers["X-RateLimit-Limit"] == str(DAILY_LIMIT)
    spent = int(first.headers["X-RateLimit-Remaining"]) - int(
        second.headers["X-RateLimit-Remaining"]
    )
    assert spent == 1


def test_over_the_per_second_limit_is_429_with_retry_after() -> None:
    with Sandbox(InsightlyApi(SandboxOptions(rate_limit=3))) as sandbox:
        answers = [call(sandbox, "GET", "/Instance") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert int(answers[3].headers["Retry-After"]) >= 1
    assert "X-RateLimit-Remaining" in answers[3].headers


def test_the_daily_cap_is_429_until_midnight(sandbox: Sandbox) -> None:
    api_of(sandbox).daily_limit = 2
    assert call(sandbox, "GET", "/Instance").status_code == 200
    assert call(sandbox, "GET", "/Instance").status_code == 200
    refused = call(sandbox, "GET", "/Instance")
    assert refused.status_code == 429
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert 0 < int(refused.headers["Retry-After"]) <= 86_400
