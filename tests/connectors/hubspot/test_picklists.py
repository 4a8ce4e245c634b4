"""What HubSpot's picklists accept, for a migration planner: the properties and pipelines APIs.

Unit tests against recorded bodies (properties of a live portal, its deal pipelines), then the
connector against its sandbox.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from connectors.base import DescribesPicklists
from connectors.errors import AuthError
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.sandbox import DEAL_STAGES, INDUSTRIES, HubSpotApi
from connectors.sandbox import RollingWindow, Sandbox, SandboxOptions
from tests.connectors.conftest import sample

BASE = "https://api.hubapi.com"
TOKEN = "pat-test-private-app-0123456789"
AUTHORIZED = [matchers.header_matcher({"Authorization": f"Bearer {TOKEN}"})]
DEFAULT_STAGES = {
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
    "closedwon",
    "closedlost",
}


def connector() -> HubSpotConnector:
    return HubSpotConnector("hs", {"token": TOKEN, "requests_per_10s": 100_000})


def test_an_enumeration_accepts_its_option_values_from_one_call_per_object_type(
    rsps: responses.RequestsMock,
) -> None:
    body = copy.deepcopy(sample("hubspot-contacts-properties-sampled"))
    status = next(p for p in body["results"] if p["name"] == "hs_content_membership_status")
    # HubSpot hides an option from its forms only; the API still takes it.
    status["options"].append(
        {"label": "Lapsed", "value": "lapsed", "displayOrder": 2, "hidden": True}
    )
    described = rsps.get(f"{BASE}/crm/v3/properties/contacts", json=body, match=AUTHORIZED)
    hs = connector()

    assert isinstance(hs, DescribesPicklists)
    assert hs.picklist("contacts", "hs_predictivecontactscorebucket") == {
        "bucket_1",
        "bucket_2",
        "bucket_3",
        "bucket_4",
    }
    assert hs.picklist("contacts", "hs_content_membership_status") == {
        "active",
        "inactive",
        "lapsed",
    }
    assert described.call_count == 1


@pytest.mark.parametrize(
    "field",
    [
        "address",  # free text
        "hs_contact_enrichment_opt_out",  # a bool, though it lists true/false options
        "hs_all_assigned_business_unit_ids",  # options kept elsewhere, not looked up
        "hs_pipeline",  # contact pipelines: not looked up
        "company_id",  # the connector's association pseudo-field
        "no_such_property",
    ],
)
def test_a_property_that_is_not_a_known_picklist_is_none(
    rsps: responses.RequestsMock, field: str
) -> None:
    rsps.get(
        f"{BASE}/crm/v3/properties/contacts", json=sample("hubspot-contacts-properties-sampled")
    )

    assert connector().picklist("contacts", field) is None


def test_deal_stages_and_pipelines_come_from_the_pipelines_api_once(
    rsps: responses.RequestsMock,
) -> None:
    pipelines = copy.deepcopy(sample("hubspot-deal-pipelines"))
    custom = copy.deepcopy(pipelines["results"][0])
    custom.update(id="75e28846-ad0d-4be2-a027-5e1da6590b98", label="Renewals")
    custom["stages"] = [
        {**custom["stages"][0], "id": "1029384756", "label": "Renewal due"},
        {**custom["stages"][1], "id": "1029384757", "label": "Old stage", "archived": True},
    ]
    pipelines["results"].append(custom)
    described = rsps.get(
        f"{BASE}/crm/v3/properties/deals", json=sample("hubspot-deals-properties-sampled")
    )
    listed = rsps.get(f"{BASE}/crm/v3/pipelines/deals", json=pipelines, match=AUTHORIZED)
    hs = connector()

    stages = hs.picklist("deals", "dealstage")
    assert stages == DEFAULT_STAGES | {"1029384756"}
    assert hs.picklist("deals", "pipeline") == {
        "default",
        "75e28846-ad0d-4be2-a027-5e1da6590b98",
    }
    assert hs.picklist("deals", "dealstage") == stages
    assert (described.call_count, listed.call_count) == (1, 1)


def test_a_missing_scope_on_the_properties_api_is_an_auth_error(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(
        f"{BASE}/crm/v3/properties/companies",
        status=403,
        json={
            "status": "error",
            "message": "This app hasn't been granted all required scopes to make this call.",
            "correlationId": "0f5e5b3a-0c1e-4a63-9a4b-3f2b0c1d2e3f",
            "category": "MISSING_SCOPES",
        },
    )

    with pytest.raises(AuthError):
        connector().picklist("companies", "industry")


# ------------------------------------------------------------------------------ the sandbox


@pytest.fixture
def live() -> Iterator[tuple[HubSpotApi, Sandbox, HubSpotConnector]]:
    options = SandboxOptions(rate_limit=200, seed=5)
    api = HubSpotApi(options)
    api.seed_records(40, 5)
    with Sandbox(api, options) as sandbox:
        settings = api.connector_settings(sandbox.url)
        settings.pop("connector")
        hs = HubSpotConnector("hs", settings)
        yield api, sandbox, hs
        hs.close()


def values_read(hs: HubSpotConnector, object_type: str, field: str) -> set[str]:
    found: set[str] = set()
    token: str | None = None
    while True:
        page = hs.read_changes(object_type, None, token, [field])
        found.update(str(r.fields[field]) for r in page.records if r.fields.get(field))
        token = page.next_token
        if token is None:
            return found


def test_the_sandbox_picklists_hold_every_value_its_records_carry(live: Any) -> None:
    _, sandbox, hs = live

    stages = hs.picklist("deals", "dealstage")
    assert stages == {stage for stage, _, _ in DEAL_STAGES}
    assert values_read(hs, "deals", "dealstage") <= stages
    assert hs.picklist("deals", "pipeline") == {"default"}
    industries = hs.picklist("companies", "industry")
    assert industries == {value for value, _ in INDUSTRIES}
    assert {"COMPUTER_SOFTWARE", "RETAIL"} <= industries
    assert values_read(hs, "companies", "industry") <= industries
    assert values_read(hs, "contacts", "lifecyclestage") <= (
        hs.picklist("contacts", "lifecyclestage") or set()
    )
    assert hs.picklist("contacts", "hs_lead_status") == {
        "NEW",
        "OPEN",
        "IN_PROGRESS",
        "OPEN_DEAL",
        "UNQUALIFIED",
        "ATTEMPTED_TO_CONTACT",
        "CONNECTED",
        "BAD_TIMING",
    }
    assert hs.picklist("deals", "dealtype") == {"newbusiness", "existingbusiness"}
    for object_type, field in [
        ("companies", "name"),
        ("deals", "amount"),
        ("deals", "closedate"),
        ("deals", "hubspot_owner_id"),
        ("deals", "company_id"),
    ]:
        assert hs.picklist(object_type, field) is None, field
    assert hs.picklist("companies", "lifecyclestage") == hs.picklist("contacts", "lifecyclestage")
    assert sandbox.calls.count("GET", "/crm/v3/properties/deals") == 1
    assert sandbox.calls.count("GET", "/crm/v3/properties/companies") == 1
    assert sandbox.calls.count("GET", "/crm/v3/pipelines/deals") == 1


def test_the_sandbox_properties_api_authenticates_and_spends_the_ten_second_budget(
    live: Any,
) -> None:
    api, sandbox, _ = live
    url = f"{sandbox.url}/crm/v3/properties/deals"
    bearer = {"Authorization": f"Bearer {api.private_app_token}"}

    assert requests.get(url, timeout=5).status_code == 401
    api.burst = RollingWindow(1, 10.0)
    described = requests.get(url, headers=bearer, timeout=5)
    refused = requests.get(url, headers=bearer, timeout=5)

    assert described.status_code == 200
    assert described.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    stage = next(p for p in described.json()["results"] if p["name"] == "dealstage")
    assert (stage["type"], stage["options"], stage["externalOptions"]) == ("enumeration", [], True)
    assert refused.status_code == 429
    assert refused.json()["policyName"] == "TEN_SECONDLY_ROLLING"


def test_the_sandbox_refuses_properties_of_an_unknown_object_type(live: Any) -> None:
    api, sandbox, _ = live
    answer = requests.get(
        f"{sandbox.url}/crm/v3/properties/widgets",
        headers={"Authorization": f"Bearer {api.private_app_token}"},
        timeout=5,
    )

    assert answer.status_code == 400
    assert answer.json()["message"] == "Unable to infer object type from: widgets"
