"""What Zoho's picklists accept, for a migration planner: the fields metadata API.

Unit tests against recorded field metadata (a real org's Deals Stage; Industry options in the
shape of Zoho's field-meta sample), then the connector against its sandbox.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from connectors.base import DescribesPicklists
from connectors.errors import ConnectorConfigError
from connectors.sandbox import Sandbox, SandboxOptions
from connectors.zoho.connector import ZohoConnector, ZohoSettings
from connectors.zoho.sandbox import PICKLISTS, ZohoApi
from tests.connectors.conftest import sample

API = "https://www.zohoapis.eu"
FIELDS_URL = f"{API}/crm/v8/settings/fields"
REAL_STAGES = {
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Id. Decision Makers",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
    "Closed Lost to Competition",
}


def option(display: str, actual: str, n: int, kind: str = "used") -> dict[str, Any]:
    return {
        "display_value": display,
        "sequence_number": n,
        "reference_value": display,
        "colour_code": None,
        "actual_value": actual,
        "id": f"57257670000000034{n:02d}",
        "type": kind,
    }


def accounts_fields() -> dict[str, Any]:
    """Accounts metadata: Industry as Zoho's field-meta sample lists it (``-None-`` first, one
    actual value unlike its display value), an option moved to the unused values, a
    multi-select picklist and a text field."""
    stage = sample("zoho-deals-fields-meta-stage")["fields"][1]
    industry = copy.deepcopy(stage)
    industry.update(api_name="Industry", field_label="Industry", display_label="Industry")
    industry["pick_list_values"] = [
        option("-None-", "-None-", 1),
        option("ASP (Application Service Provider)", "ASP (Application Service Provider)", 2),
        option("Network Equipment Enterprise", "Network Equipment (Enterprise)", 9),
        option("Wireless Industry", "Wireless Industry", 17),
        option("Optical Networking", "Optical Networking", 18, kind="unused"),
    ]
    regions = copy.deepcopy(industry)
    regions.update(api_name="Regions__c", data_type="multiselectpicklist", custom_field=True)
    regions["pick_list_values"] = [option("East", "IN_East", 1), option("West", "IN_West", 2)]
    name = copy.deepcopy(sample("zoho-deals-fields-meta-stage")["fields"][0])
    name.update(api_name="Account_Name", data_type="text", pick_list_values=[])
    return {"fields": [name, industry, regions]}


def connector() -> ZohoConnector:
    refresh = f"1000.{uuid.uuid4().hex}.{uuid.uuid4().hex}"
    settings = {
        "client_id": "1000.CLIENTID",
        "client_secret": "zoho-client-secret-5f2a9c",
        "refresh_token": refresh,
        "data_center": "eu",
    }
    return ZohoConnector("zoho-eu", ZohoSettings.model_validate(settings), sleep=lambda _: None)


@pytest.fixture
def crm(rsps: responses.RequestsMock) -> ZohoConnector:
    rsps.post(
        "https://accounts.zoho.eu/oauth/v2/token",
        json={"access_token": "1000.access", "api_domain": API, "expires_in": 3600},
    )
    return connector()


def test_a_picklist_accepts_its_actual_values_from_one_call_per_module(
    rsps: responses.RequestsMock, crm: ZohoConnector
) -> None:
    described = rsps.get(
        FIELDS_URL,
        json=sample("zoho-deals-fields-meta-stage"),
        match=[
            matchers.query_param_matcher({"module": "Deals"}),
            matchers.header_matcher({"Authorization": "Zoho-oauthtoken 1000.access"}),
        ],
    )

    assert isinstance(crm, DescribesPicklists)
    stages = crm.picklist("deals", "Stage")
    assert stages == REAL_STAGES
    assert "Identify Decision Makers" not in stages  # the display value, not what records hold
    assert crm.picklist("deals", "Owner") is None
    assert crm.picklist("deals", "Deal_Name") is None  # not in this (excerpted) metadata
    assert described.call_count == 1


def test_none_and_unused_options_are_not_values_and_multi_selects_are_picklists(
    rsps: responses.RequestsMock, crm: ZohoConnector
) -> None:
    rsps.get(
        FIELDS_URL,
        json=accounts_fields(),
        match=[matchers.query_param_matcher({"module": "Accounts"})],
    )

    assert crm.picklist("companies", "Industry") == {
        "ASP (Application Service Provider)",
        "Network Equipment (Enterprise)",
        "Wireless Industry",
    }
    assert crm.picklist("companies", "Regions__c") == {"IN_East", "IN_West"}
    assert crm.picklist("companies", "Account_Name") is None


def test_a_module_without_field_metadata_has_no_picklists(
    rsps: responses.RequestsMock, crm: ZohoConnector
) -> None:
    rsps.get(FIELDS_URL, status=204)

    assert crm.picklist("contacts", "Lead_Source") is None


def test_an_object_type_zoho_is_not_mapped_to_is_a_config_error(
    rsps: responses.RequestsMock,
) -> None:
    with pytest.raises(ConnectorConfigError):
        connector().picklist("tickets", "Status")


# ------------------------------------------------------------------------------ the sandbox


@pytest.fixture
def live() -> Iterator[tuple[ZohoApi, Sandbox, ZohoConnector]]:
    api = ZohoApi(SandboxOptions())
    api.seed_records(30, seed=4)
    with Sandbox(api, api.options) as sandbox:
        config = sandbox.connector_settings()
        del config["connector"]
        connector = ZohoConnector("zoho", ZohoSettings.model_validate(config), sleep=lambda _: None)
        yield api, sandbox, connector
        connector.close()


def test_the_sandbox_describes_its_stages_and_zohos_default_industries(live: Any) -> None:
    _, sandbox, crm = live

    stages = crm.picklist("deals", "Stage")
    assert stages == REAL_STAGES | {"Prospecting"}
    seeded = {
        record.fields["Stage"]
        for record in crm.read_changes("deals", None, None, ["Stage"]).records
    }
    assert seeded <= stages
    assert crm.picklist("deals", "Pipeline") == {"Standard (Standard)"}
    industries = crm.picklist("companies", "Industry")
    assert len(industries) == 16
    assert "Network Equipment (Enterprise)" in industries
    assert {"-None-", "Network Equipment Enterprise"}.isdisjoint(industries)
    assert crm.picklist("companies", "Rating") == {
        "Acquired",
        "Active",
        "Market Failed",
        "Project Cancelled",
        "ShutDown",
    }
    for object_type, field in [
        ("companies", "Account_Name"),
        ("companies", "Employees"),
        ("contacts", "Email"),
        ("contacts", "Account_Name"),
        ("deals", "Amount"),
        ("deals", "Closing_Date"),
    ]:
        assert crm.picklist(object_type, field) is None, field
    assert sandbox.calls.count("GET", "/crm/v8/settings/fields") == 3


def test_the_sandbox_field_metadata_gives_every_described_field_its_type(live: Any) -> None:
    _, sandbox, crm = live
    token = crm._account.auth.token()
    url = f"{sandbox.url}/crm/v8/settings/fields"
    auth = {"Authorization": f"Zoho-oauthtoken {token}"}

    deals = requests.get(url, params={"module": "Deals"}, headers=auth, timeout=5).json()
    missing = requests.get(url, headers=auth, timeout=5)
    unknown = requests.get(url, params={"module": "Widgets"}, headers=auth, timeout=5)
    anonymous = requests.get(url, params={"module": "Deals"}, timeout=5)

    types = {field["api_name"]: field["data_type"] for field in deals["fields"]}
    assert types["Stage"] == "picklist"
    assert types["Amount"] == "currency"
    assert types["Closing_Date"] == "date"
    assert types["Account_Name"] == "lookup"
    assert types["Owner"] == "ownerlookup"
    assert types["Deal_Name"] == "text"
    stage = next(field for field in deals["fields"] if field["api_name"] == "Stage")
    shown = [(v["display_value"], v["actual_value"]) for v in stage["pick_list_values"]]
    assert shown == list(PICKLISTS[("Deals", "Stage")])
    assert ("Identify Decision Makers", "Id. Decision Makers") in shown
    assert (missing.status_code, missing.json()["code"]) == (400, "REQUIRED_PARAM_MISSING")
    assert (unknown.status_code, unknown.json()["code"]) == (400, "INVALID_MODULE")
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "AUTHENTICATION_FAILURE")
