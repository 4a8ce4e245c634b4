"""The Insightly connector against Insightly-shaped bodies: auth, paging with its anchor row,
incremental reads, writes (partial PUT, opportunity stages), deletes, errors and limits."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import responses
from responses import matchers

from connectors.errors import AuthError, ConnectorConfigError, RecordRejected, VendorError
from connectors.insightly.connector import InsightlyConnector

API = "https://api.na1.insightly.com/v3.1"
KEY = "b1e4c2d0-7f3a-4c55-9e21-0a6b3c9d8e7f"


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make(**overrides: Any) -> tuple[InsightlyConnector, Sleeps]:
    sleeps = Sleeps()
    settings = {"base_url": API, "api_key": KEY, "rate_limit": "1000/second", **overrides}
    return InsightlyConnector("ins", settings, sleep=sleeps), sleeps


def contact(contact_id: int, **fields: Any) -> dict[str, Any]:
    """A contact as GET /Contacts?brief=true shows one (fields of the v3.1 Contact model)."""
    return {
        "CONTACT_ID": contact_id,
        "SALUTATION": None,
        "FIRST_NAME": "Ada",
        "LAST_NAME": "Lovelace",
        "TITLE": "Analyst",
        "EMAIL_ADDRESS": f"ada.{contact_id}@example.com",
        "PHONE": "+44 20 7946 0000",
        "ORGANISATION_ID": 70001,
        "OWNER_USER_ID": 1700001,
        "DATE_CREATED_UTC": "2018-04-12 18:01:13",
        "DATE_UPDATED_UTC": "2018-04-12 18:01:13",
        "VISIBLE_TO": "EVERYONE",
        **fields,
    }


def opportunity(opportunity_id: int, **fields: Any) -> dict[str, Any]:
    return {
        "OPPORTUNITY_ID": opportunity_id,
        "OPPORTUNITY_NAME": "Acme — Pilot",
        "OPPORTUNITY_STATE": "OPEN",
        "BID_CURRENCY": "USD",
        "BID_AMOUNT": 1200,
        "BID_TYPE": "Fixed Bid",
        "OPPORTUNITY_VALUE": 1200,
        "FORECAST_CLOSE_DATE": "2016-03-31 00:00:00",
        "PIPELINE_ID": 11,
        "STAGE_ID": 21,
        "ORGANISATION_ID": 70001,
        "DATE_CREATED_UTC": "2018-04-12 18:01:13",
        "DATE_UPDATED_UTC": "2018-04-12 18:05:00",
        **fields,
    }


STAGES = [
    {"STAGE_ID": 21, "PIPELINE_ID": 11, "STAGE_NAME": "Prospecting", "STAGE_ORDER": 1},
    {"STAGE_ID": 22, "PIPELINE_ID": 11, "STAGE_NAME": "Proposal", "STAGE_ORDER": 2},
    {"STAGE_ID": 31, "PIPELINE_ID": 12, "STAGE_NAME": "Onboarding", "STAGE_ORDER": 1},
]


def sent_json(rsps: responses.RequestsMock, n: int) -> Any:
    body = rsps.calls[n].request.body
    assert body is not None
    return json.loads(body)


# ------------------------------------------------------------------------------------ auth


def test_the_api_key_is_the_basic_user_name_with_an_empty_password(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(f"{API}/Instance", json={"INSTANCE_NAME": "Acme"})
    connector, _ = make()
    connector.check()
    header = rsps.calls[0].request.headers["Authorization"]
    assert header == "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()
    assert rsps.calls[0].request.headers["Accept"] == "application/json"


def test_a_refused_key_names_the_settings_and_never_the_key(rsps: responses.RequestsMock) -> None:
    rsps.get(
        f"{API}/Instance",
        status=401,
        json={"Message": "Authorization has been denied for this request."},
    )
    connector, _ = make()
    with pytest.raises(AuthError) as raised:
        connector.check()
    message = str(raised.value)
    assert message.startswith("ins: ")
    assert "systems.ins.api_key" in message
    assert "systems.ins.base_url" in message  # a wrong pod answers 401 too
    assert KEY not in message
    assert len(rsps.calls) == 1  # a key cannot be renewed: no second try


def test_403_is_an_auth_error_about_the_users_permissions(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/Opportunities", status=403, json={"Message": "Forbidden"})
    connector, _ = make()
    with pytest.raises(AuthError, match="permission"):
        connector.read_changes("deals", None, None, ["OPPORTUNITY_NAME"])


def test_settings_refuse_a_page_larger_than_insightly_serves() -> None:
    with pytest.raises(ConnectorConfigError, match="page_size"):
        make(page_size=501)


# ------------------------------------------------------------------------------------ reads


def test_a_full_read_pages_with_the_last_row_as_anchor(rsps: responses.RequestsMock) -> None:
    rsps.get(
        f"{API}/Contacts",
        json=[contact(1), contact(2), contact(3)],
        match=[matchers.query_param_matcher({"brief": "true", "skip": "0", "top": "3"})],
    )
    rsps.get(
        f"{API}/Contacts",
        json=[contact(3), contact(4)],
        match=[matchers.query_param_matcher({"brief": "true", "skip": "2", "top": "3"})],
    )
    connector, _ = make(page_size=3)
    first = connector.read_changes("contacts", None, None, ["EMAIL_ADDRESS", "ORGANISATION_ID"])
    assert [r.id for r in first.records] == ["1", "2", "3"]
    assert first.records[0].modified_at == datetime(2018, 4, 12, 18, 1, 13, tzinfo=UTC)
    assert first.records[0].fields == {
        "EMAIL_ADDRESS": "ada.1@example.com",
        "ORGANISATION_ID": "70001",  # ids are shown as text, as the hub's references are
    }
    assert first.next_token
    second = connector.read_changes("contacts", None, first.next_token, ["EMAIL_ADDRESS"])
    assert [r.id for r in second.records] == ["4"]
    assert second.next_token is None


def test_a_page_that_lost_its_anchor_is_asked_again_from_a_page_earlier(
    rsps: responses.RequestsMock,
) -> None:
    # Contacts 1 and 2 were deleted between the pages: offset 2 now holds contact 5, and
    # contact 4 would be skipped without stepping back.
    rsps.get(
        f"{API}/Contacts",
        json=[contact(1), contact(2), contact(3)],
        match=[matchers.query_param_matcher({"brief": "true", "skip": "0", "top": "3"})],
    )
    rsps.get(
        f"{API}/Contacts",
        json=[contact(5)],
        match=[matchers.query_param_matcher({"brief": "true", "skip": "2", "top": "3"})],
    )
    rsps.get(
        f"{API}/Contacts",
        json=[contact(3), contact(4), contact(5)],
        match=[matchers.query_param_matcher({"brief": "true", "skip": "0", "top": "3"})],
    )
    rsps.get(
        f"{API}/Contacts",
        json=[contact(5)],
        match=[matchers.query_param_matcher({"brief": "true", "skip": "2", "top": "3"})],
    )
    connector, _ = make(page_size=3)
    first = connector.list_ids("contacts", None)
    assert first[0] == ["1", "2", "3"]
    second = connector.list_ids("contacts", first[1])
    assert second[0] == ["4", "5"]
    assert second[1]
    assert connector.list_ids("contacts", second[1]) == ([], None)


def test_an_empty_page_past_the_anchor_is_asked_again_too(rsps: responses.RequestsMock) -> None:
    # Contacts 1 to 3 were deleted between the pages: offset 2 is now past the end, and
    # contact 4 sits before it.
    rsps.get(
        f"{API}/Contacts",
        json=[contact(1), contact(2), contact(3)],
        match=[matchers.query_param_matcher({"brief": "true", "skip": "0", "top": "3"})],
    )
    rsps.get(
        f"{API}/Contacts",
        json=[],
        match=[matchers.query_param_matcher({"brief": "true", "skip": "2", "top": "3"})],
    )
    rsps.get(
        f"{API}/Contacts",
        json=[contact(4)],
        match=[matchers.query_param_matcher({"brief": "true", "skip": "0", "top": "3"})],
    )
    connector, _ = make(page_size=3)
    first = connector.read_changes("contacts", None, None, ["TITLE"])
    assert first.next_token
    second = connector.read_changes("contacts", None, first.next_token, ["TITLE"])
    assert [r.id for r in second.records] == ["4"]
    assert second.next_token is None


def test_an_incremental_read_searches_from_the_second_before(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(
        f"{API}/Contacts/Search",
        json=[contact(7, DATE_UPDATED_UTC="2024-01-02 03:04:05")],
        match=[
            matchers.query_param_matcher(
                {
                    "brief": "true",
                    "updated_after_utc": "2024-01-02T03:04:04Z",
                    "skip": "0",
                    "top": "500",
                }
            )
        ],
    )
    connector, _ = make()
    since = datetime(2024, 1, 2, 3, 4, 5, 600_000, tzinfo=UTC)
    page = connector.read_changes("contacts", since, None, ["TITLE"])
    assert [r.id for r in page.records] == ["7"]
    assert page.next_token is None


def test_a_bare_array_is_required(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/Contacts", json={"Message": "An error has occurred."})
    connector, _ = make()
    with pytest.raises(VendorError, match="not a list"):
        connector.read_changes("contacts", None, None, ["TITLE"])


def test_opportunities_show_their_stage_or_closed_state(rsps: responses.RequestsMock) -> None:
    rsps.get(
        f"{API}/Opportunities",
        json=[
            opportunity(1),
            opportunity(2, OPPORTUNITY_STATE="Won"),
            opportunity(3, STAGE_ID=None, PIPELINE_ID=None),
        ],
    )
    rsps.get(f"{API}/PipelineStages", json=STAGES)
    connector, _ = make()
    page = connector.read_changes("deals", None, None, ["STAGE", "FORECAST_CLOSE_DATE"])
    assert [r.fields["STAGE"] for r in page.records] == ["Prospecting", "WON", None]
    assert page.records[0].fields["FORECAST_CLOSE_DATE"] == "2016-03-31 00:00:00"


def test_read_by_id_omits_what_insightly_does_not_find(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/Contacts/5", json=contact(5))
    rsps.get(f"{API}/Contacts/6", status=404, json={"Message": "Contact not found."})
    connector, _ = make()
    found = connector.read("contacts", ["5", "6"], ["EMAIL_ADDRESS"])
    assert [r.id for r in found] == ["5"]


def test_find_keeps_only_equal_values_ignoring_case(rsps: responses.RequestsMock) -> None:
    rsps.get(
        f"{API}/Contacts/Search",
        json=[contact(5, EMAIL_ADDRESS="Ada@Example.com"), contact(6, EMAIL_ADDRESS="ada@x.org")],
        match=[
            matchers.query_param_matcher(
                {
                    "field_name": "EMAIL_ADDRESS",
                    "field_value": "ada@example.com",
                    "brief": "true",
                    "top": "500",
                }
            )
        ],
    )
    connector, _ = make()
    found = connector.find("contacts", "EMAIL_ADDRESS", ["ada@example.com"])
    assert [r.id for r in found] == ["5"]


# ------------------------------------------------------------------------------------ limits


def test_a_429_is_waited_out_and_the_daily_budget_reported(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(
        f"{API}/Contacts",
        status=429,
        json={"Message": "API user limit reached."},
        headers={"Retry-After": "7", "X-RateLimit-Limit": "40000", "X-RateLimit-Remaining": "0"},
    )
    rsps.get(
        f"{API}/Contacts",
        json=[contact(1)],
        headers={"X-RateLimit-Limit": "40000", "X-RateLimit-Remaining": "39990"},
    )
    connector, sleeps = make()
    page = connector.read_changes("contacts", None, None, ["TITLE"])
    assert [r.id for r in page.records] == ["1"]
    assert sleeps == [7.0]
    assert connector.headroom() == {"daily": {"remaining": 39990, "limit": 40000, "window": "day"}}


# ------------------------------------------------------------------------------------ writes


def test_one_refused_create_fails_alone_naming_the_field(rsps: responses.RequestsMock) -> None:
    rsps.post(f"{API}/Contacts", json=contact(8))
    rsps.post(
        f"{API}/Contacts",
        status=400,
        json={"Message": "EMAIL_ADDRESS 'nope' is not a valid email address."},
    )
    connector, _ = make()
    results = connector.create(
        "contacts",
        [
            {"LAST_NAME": "Ok", "EMAIL_ADDRESS": "ok@example.com"},
            {"LAST_NAME": "Bad", "EMAIL_ADDRESS": "nope"},
        ],
    )
    assert results[0].ok
    assert results[0].remote_id == "8"
    assert results[0].modified_at == datetime(2018, 4, 12, 18, 1, 13, tzinfo=UTC)
    error = results[1].error
    assert isinstance(error, RecordRejected)
    assert error.field == "EMAIL_ADDRESS"
    assert error.system == "ins"
    assert "not a valid email" in str(error)


def test_a_deal_is_created_with_a_numeric_bid_and_its_stage_ids(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(f"{API}/PipelineStages", json=STAGES)
    rsps.post(f"{API}/Opportunities", json=opportunity(9, STAGE_ID=22))
    connector, _ = make()
    [result] = connector.create(
        "deals",
        [
            {
                "OPPORTUNITY_NAME": "Acme — Pilot",
                "BID_AMOUNT": "1200.50",
                "STAGE": "proposal",
                "FORECAST_CLOSE_DATE": "2026-05-01",
                "ORGANISATION_ID": "70001",
            }
        ],
    )
    assert result.remote_id == "9"
    assert sent_json(rsps, 1) == {
        "OPPORTUNITY_NAME": "Acme — Pilot",
        "BID_AMOUNT": 1200.5,
        "BID_TYPE": "Fixed Bid",
        "FORECAST_CLOSE_DATE": "2026-05-01 00:00:00",
        "ORGANISATION_ID": 70001,
        "OPPORTUNITY_STATE": "OPEN",
        "PIPELINE_ID": 11,
        "STAGE_ID": 22,
    }


def test_an_unknown_stage_rejects_the_deal_naming_the_stages(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(f"{API}/PipelineStages", json=STAGES)
    connector, _ = make()
    [result] = connector.create("deals", [{"OPPORTUNITY_NAME": "X", "STAGE": "Dreaming"}])
    assert result.error is not None
    assert result.error.field == "STAGE"
    assert "Proposal" in str(result.error)


def test_an_update_sends_only_the_changes_and_null_to_clear(
    rsps: responses.RequestsMock,
) -> None:
    rsps.put(f"{API}/Contacts", json=contact(5, TITLE=None))
    connector, _ = make()
    [result] = connector.update("contacts", [("5", {"TITLE": None, "DATE_UPDATED_UTC": "x"})])
    assert result.ok
    assert sent_json(rsps, 0) == {"CONTACT_ID": 5, "TITLE": None}


def test_a_stage_change_moves_the_deal_through_the_pipeline_endpoints(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(f"{API}/PipelineStages", json=STAGES)
    rsps.put(f"{API}/Opportunities", json=opportunity(9))
    rsps.put(f"{API}/Opportunities/9/PipelineStage", json=opportunity(9, STAGE_ID=22))
    rsps.put(f"{API}/Opportunities", json=opportunity(9))
    rsps.put(f"{API}/Opportunities/9/Pipeline", json=opportunity(9, PIPELINE_ID=12, STAGE_ID=31))
    rsps.put(f"{API}/Opportunities", json=opportunity(9, OPPORTUNITY_STATE="LOST"))
    connector, _ = make()
    results = connector.update(
        "deals",
        [("9", {"STAGE": "Proposal"}), ("9", {"STAGE": "Onboarding"}), ("9", {"STAGE": "Lost"})],
    )
    assert all(result.ok for result in results)
    assert sent_json(rsps, 1) == {"OPPORTUNITY_ID": 9, "OPPORTUNITY_STATE": "OPEN"}
    assert sent_json(rsps, 2) == {"STAGE_ID": 22}
    assert sent_json(rsps, 4) == {"PIPELINE_ID": 12, "PIPELINE_STAGE_CHANGE": {"STAGE_ID": 31}}
    assert sent_json(rsps, 5) == {"OPPORTUNITY_ID": 9, "OPPORTUNITY_STATE": "LOST"}


def test_an_update_of_a_missing_record_is_rejected_alone(rsps: responses.RequestsMock) -> None:
    rsps.put(f"{API}/Contacts", status=404, json={"Message": "Contact not found."})
    rsps.put(f"{API}/Contacts", json=contact(5))
    connector, _ = make()
    results = connector.update("contacts", [("4", {"TITLE": "A"}), ("5", {"TITLE": "B"})])
    assert [r.ok for r in results] == [False, True]
    assert results[0].error is not None
    assert results[0].error.code == "NOT_FOUND"


def test_deletes_accept_202_and_already_gone_and_reject_417(
    rsps: responses.RequestsMock,
) -> None:
    rsps.delete(f"{API}/Contacts/1", status=202)
    rsps.delete(f"{API}/Contacts/2", status=404, json={"Message": "Contact not found."})
    rsps.delete(f"{API}/Contacts/3", status=417, json={"Message": "Delete failed."})
    connector, _ = make()
    results = connector.delete("contacts", ["1", "2", "3"])
    assert [r.ok for r in results] == [True, True, False]
    assert results[2].error is not None
    assert "Delete failed" in str(results[2].error)
