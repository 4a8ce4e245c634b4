"""What connectors tell a migration planner: page sizes, write request sizes and rate windows.

A planner estimates a migration's API calls as records / ``read_page_size`` (reads) and
records / ``write_request_size`` (writes), and its least duration from ``rate_windows``, the
connector's own rate limiter's windows; all come from the connector's own settings.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.apptivo.connector import ApptivoConnector
from connectors.base import Capabilities
from connectors.bitrix24.connector import Bitrix24Connector
from connectors.hubspot.connector import HubSpotConnector
from connectors.insightly.connector import InsightlyConnector
from connectors.memory.connector import MemoryConnector, MemorySettings
from connectors.ratelimit import RateLimiter
from connectors.sandbox import SandboxOptions, load_sandbox
from connectors.suitecrm.connector import SuiteCrmConnector
from connectors.zoho.auth import clear_shared_accounts
from connectors.zoho.connector import ZohoConnector
from mappings.fieldmap import load_default_map
from tests.connectors.contract import build_connector, read_all

DAY = 86_400


@pytest.fixture(autouse=True)
def _no_shared_zoho_token() -> Iterator[None]:
    # Zoho connectors share a token per set of credentials per process (zoho/auth.py).
    clear_shared_accounts()
    yield
    clear_shared_accounts()


def limiter(rates: str | list[str]) -> RateLimiter:
    return RateLimiter(rates, key=f"test-{uuid.uuid4().hex}")


@pytest.mark.parametrize(
    ("rates", "sustained"),
    [
        ("10/second", 10.0),
        ("100/10 seconds", 10.0),
        # HubSpot's lowest tier: the day, not the burst, is what a long run can sustain.
        (["100/10 seconds", "250000/day"], 250_000 / DAY),
        (["50/10 seconds", "1000000/day"], 5.0),
        ("10/second;40000/day", 40_000 / DAY),
        ("50 per 25 second", 2.0),
    ],
)
def test_sustained_rate_is_the_tightest_window(rates: str | list[str], sustained: float) -> None:
    found = Capabilities(frozenset(), rate_windows=limiter(rates).windows)
    assert found.requests_per_second == pytest.approx(sustained)


def test_reading_the_windows_takes_nothing_from_the_budget() -> None:
    rates = limiter("2/minute")
    assert rates.windows == ((2, 60.0),)
    assert rates.try_acquire(2)


@pytest.mark.parametrize(
    ("rates", "requests", "seconds"),
    [
        # The first window's budget is spent at once; each further one waits a window.
        ("100/10 seconds", 100, 0.0),
        ("100/10 seconds", 101, 10.0),
        ("100/10 seconds", 1000, 90.0),
        # HubSpot's lowest tier: a long run is held by the day, a short one by the burst.
        (["100/10 seconds", "250000/day"], 1000, 90.0),
        (["100/10 seconds", "250000/day"], 300_000, DAY),
        ("2/second", 0, 0.0),
    ],
)
def test_least_seconds_spends_each_windows_budget_then_waits_for_it(
    rates: str | list[str], requests: int, seconds: float
) -> None:
    found = Capabilities(frozenset(), rate_windows=limiter(rates).windows)
    assert found.least_seconds(requests) == pytest.approx(seconds)


def test_an_unthrottled_connector_has_no_least_time() -> None:
    assert Capabilities(frozenset()).least_seconds(10_000) is None


def capabilities(vendor: str, settings: dict[str, Any]) -> Capabilities:
    secret = uuid.uuid4().hex
    if vendor == "memory":
        return MemoryConnector("m", MemorySettings(**settings)).capabilities
    if vendor == "hubspot":
        return HubSpotConnector("hs", {"token": f"pat-{secret}", **settings}).capabilities
    if vendor == "zoho":
        config = {"client_id": "1000.ID", "client_secret": secret, "refresh_token": secret}
        return ZohoConnector("zo", {**config, **settings}).capabilities
    if vendor == "suitecrm":
        config = {"base_url": "https://crm.example", "client_id": "cid", "client_secret": secret}
        return SuiteCrmConnector("sc", {**config, **settings}).capabilities
    if vendor == "bitrix24":
        hook = f"https://{secret[:8]}.bitrix24.com/rest/1/{secret}/"
        return Bitrix24Connector("b24", {"webhook_url": hook, **settings}).capabilities
    if vendor == "insightly":
        config = {"base_url": "https://api.na1.insightly.com/v3.1", "api_key": secret}
        return InsightlyConnector("ins", {**config, **settings}).capabilities
    assert vendor == "apptivo"
    config = {"api_key": secret, "access_key": secret, "timezone": "UTC"}
    return ApptivoConnector("ap", {**config, **settings}).capabilities


@pytest.mark.parametrize(
    ("vendor", "settings", "page", "rate"),
    [
        ("memory", {"page_size": 37}, 37, None),
        ("hubspot", {}, 100, 250_000 / DAY),
        ("hubspot", {"requests_per_10s": 50, "daily_limit": 1_000_000}, 100, 5.0),
        (
            "hubspot",
            {"page_size": 40, "requests_per_10s": 190, "daily_limit": 625_000},
            40,
            625_000 / DAY,
        ),
        ("zoho", {}, 200, 50_000 / DAY),
        ("zoho", {"page_size": 150, "rate_limit": "3/second;100000/day"}, 150, 100_000 / DAY),
        ("suitecrm", {"page_size": 300, "rate_limit": "10/second"}, 300, 10.0),
        # A page of a Bitrix24 read is one batch of 50 list commands of 50 rows each.
        ("bitrix24", {}, 2500, 2.0),
        ("bitrix24", {"requests_per_second": 5, "burst": 250}, 2500, 5.0),
        # Every Insightly page after the first repeats the row the one before ended with.
        ("insightly", {"rate_limit": "10/second;40000/day"}, 499, 40_000 / DAY),
        # The default budget keeps one request a second spare under Insightly's 10.
        ("insightly", {"page_size": 100}, 99, 9.0),
        ("apptivo", {}, 250, 2.0),
        ("apptivo", {"page_size": 100, "rate_limit": "1/second"}, 100, 1.0),
    ],
)
def test_capabilities_carry_the_figures_the_settings_imply(
    vendor: str, settings: dict[str, Any], page: int, rate: float | None
) -> None:
    found = capabilities(vendor, settings)

    assert found.read_page_size == page
    one_by_one = vendor in ("suitecrm", "insightly", "apptivo")
    assert found.write_request_size == (1 if one_by_one else found.max_batch)
    if rate is None:
        assert found.requests_per_second is None
    else:
        assert found.requests_per_second == pytest.approx(rate)


@pytest.mark.parametrize(
    ("vendor", "seeded"),
    [
        ("hubspot", 250),
        ("zoho", 450),
        ("suitecrm", 450),
        ("insightly", 1100),
        ("apptivo", 600),
        ("bitrix24", 3000),
    ],
)
def test_a_full_read_takes_the_pages_read_page_size_predicts(vendor: str, seeded: int) -> None:
    fields = load_default_map(vendor).vendor_fields("contacts")
    with load_sandbox(vendor, SandboxOptions(records=seeded, seed=3)) as sandbox:
        connector = build_connector(sandbox.connector_settings())
        try:
            records, pages = read_all(connector, "contacts", fields)
        finally:
            connector.close()

    predicted = math.ceil(len(records) / connector.capabilities.read_page_size)
    assert len(records) == seeded
    # A page short of a full one (records read twice at a page's edge are dropped), or an
    # empty last page, costs at most one page more than the estimate.
    assert predicted <= pages <= predicted + 1


@pytest.mark.parametrize(("vendor", "seeded"), [("hubspot", 1500), ("bitrix24", 1500)])
def test_a_full_read_of_deals_costs_the_calls_the_capabilities_predict(
    vendor: str, seeded: int
) -> None:
    # Deals carry references each vendor reads apart from the list: HubSpot's associations a
    # page, Bitrix24's contacts a deal.
    fields = load_default_map(vendor).vendor_fields("deals")
    with load_sandbox(vendor, SandboxOptions(records=seeded, seed=3)) as sandbox:
        connector = build_connector(sandbox.connector_settings())
        try:
            connector.check()  # tokens and the like, before counting
            sandbox.calls.reset()
            records, _ = read_all(connector, "deals", fields)
            spent = sandbox.calls.total
        finally:
            connector.close()

    capabilities = connector.capabilities
    pages = math.ceil(len(records) / capabilities.read_page_size)
    predicted = pages + math.ceil(len(records) * capabilities.read_calls_per_record["deals"])
    assert len(records) == seeded // 5
    assert predicted <= spent <= predicted + 2
