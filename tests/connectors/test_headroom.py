"""Rate-limit headroom read from vendors' answers by the shared HTTP client."""

from __future__ import annotations

import pytest
import responses

from connectors.errors import RateLimited
from connectors.http import HeaderBudget, HttpClient, headroom_from_headers, window_text

BASE = "https://api.hubapi.com"
CONTACTS = f"{BASE}/crm/v3/objects/contacts"
HUBSPOT = {
    "10s": HeaderBudget(
        remaining="X-HubSpot-RateLimit-Remaining",
        limit="X-HubSpot-RateLimit-Max",
        window_ms="X-HubSpot-RateLimit-Interval-Milliseconds",
    ),
    "daily": HeaderBudget(
        remaining="X-HubSpot-RateLimit-Daily-Remaining",
        limit="X-HubSpot-RateLimit-Daily",
        window="day",
    ),
}


def ten_seconds(remaining: int) -> dict[str, str]:
    return {
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        "X-HubSpot-RateLimit-Max": "100",
        "X-HubSpot-RateLimit-Remaining": str(remaining),
    }


def daily(remaining: int) -> dict[str, str]:
    return {
        "X-HubSpot-RateLimit-Daily": "250000",
        "X-HubSpot-RateLimit-Daily-Remaining": str(remaining),
    }


def client(max_attempts: int = 5) -> HttpClient:
    return HttpClient(
        "hubspot-main",
        BASE,
        headroom_parser=headroom_from_headers(HUBSPOT),
        sleep=lambda _: None,
        max_attempts=max_attempts,
    )


def test_every_budget_an_answer_reports_is_read(rsps: responses.RequestsMock) -> None:
    rsps.get(CONTACTS, json={}, headers={**ten_seconds(97), **daily(249_990)})
    http = client()

    http.get("/crm/v3/objects/contacts")

    assert http.last_headroom == {
        "10s": {"remaining": 97, "limit": 100, "window": "10s"},
        "daily": {"remaining": 249_990, "limit": 250_000, "window": "day"},
    }


def test_a_budget_an_answer_leaves_out_keeps_its_last_figures(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(CONTACTS, json={}, headers={**ten_seconds(60), **daily(249_990)})
    # A throttled answer counts too: it says the ten-second budget is spent, not the daily one.
    rsps.get(
        CONTACTS, status=429, json={"policyName": "TEN_SECONDLY_ROLLING"}, headers=ten_seconds(0)
    )
    http = client(max_attempts=1)

    http.get("/crm/v3/objects/contacts")
    with pytest.raises(RateLimited):
        http.get("/crm/v3/objects/contacts")

    assert http.last_headroom["10s"]["remaining"] == 0
    assert http.last_headroom["daily"]["remaining"] == 249_990


def test_an_unreadable_figure_is_left_out_and_nothing_is_made_up(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(
        CONTACTS,
        json={},
        headers={
            "X-HubSpot-RateLimit-Remaining": "lots",
            "X-HubSpot-RateLimit-Daily-Remaining": "12",
            "X-HubSpot-RateLimit-Daily": "",
        },
    )
    http = client()

    http.get("/crm/v3/objects/contacts")

    assert http.last_headroom == {"daily": {"remaining": 12, "window": "day"}}


def test_a_client_without_a_parser_reports_nothing(rsps: responses.RequestsMock) -> None:
    rsps.get(CONTACTS, json={}, headers=ten_seconds(97))
    http = HttpClient("zoho-main", BASE)

    http.get("/crm/v3/objects/contacts")

    assert http.last_headroom == {}


@pytest.mark.parametrize(
    ("seconds", "text"), [(10, "10s"), (1.5, "1.5s"), (600, "10min"), (90, "90s"), (7200, "2h")]
)
def test_windows_are_written_as_people_write_them(seconds: float, text: str) -> None:
    assert window_text(seconds) == text
