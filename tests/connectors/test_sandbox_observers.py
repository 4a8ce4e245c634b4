"""Sandbox observers: what a trace, or a test that stops its client at an exact point, sees."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from connectors.hubspot.connector import HubSpotConnector
from connectors.sandbox import Exchange, Sandbox, load_sandbox


@pytest.fixture
def hubspot() -> Iterator[Sandbox]:
    with load_sandbox("hubspot") as box:
        yield box


def client_of(box: Sandbox) -> HubSpotConnector:
    settings = {k: v for k, v in box.connector_settings().items() if k != "connector"}
    return HubSpotConnector("hs", settings)


def test_an_observer_sees_a_create_applied_before_its_answer_leaves_then_sent(
    hubspot: Sandbox,
) -> None:
    seen: list[tuple[bool, int, int | None]] = []
    numbers: list[int] = []

    def watch(exchange: Exchange) -> None:
        if not exchange.sent:
            numbers.append(exchange.number)
        if exchange.request.path.endswith("/companies/batch/create"):
            status = exchange.response.status if exchange.response else None
            seen.append((exchange.sent, len(hubspot.api.snapshot("companies")), status))

    stop = hubspot.observe(watch)
    client = client_of(hubspot)
    [created] = client.create("companies", [{"name": "Acme", "domain": "acme.example"}])
    # "Sent" is told once the answer has left the server's thread, which may be just after the
    # client has read it.
    deadline = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop()
    client.create("companies", [{"name": "Beta", "domain": "beta.example"}])

    assert created.ok
    # The vendor holds the record while its answer has not left yet: the moment a client
    # killed there never learns the id of.
    assert seen == [(False, 1, 201), (True, 1, 201)]
    assert numbers == list(range(1, len(numbers) + 1))  # the token request, then the create


def test_an_observer_that_fails_changes_nothing_about_the_answer(hubspot: Sandbox) -> None:
    def broken(exchange: Exchange) -> None:
        raise RuntimeError("observer bug")

    hubspot.observe(broken)
    client = client_of(hubspot)

    [created] = client.create("companies", [{"name": "Acme", "domain": "acme.example"}])

    assert created.ok
    assert list(hubspot.api.snapshot("companies")) == [created.remote_id]
