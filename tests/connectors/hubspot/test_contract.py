"""The shared connector contract, run by the HubSpot connector against its sandbox."""

from __future__ import annotations

from tests.connectors.contract import ConnectorContract


class TestHubSpotContract(ConnectorContract):
    vendor = "hubspot"
