"""The shared connector contract, run by the Zoho CRM connector against its sandbox."""

from __future__ import annotations

from tests.connectors.contract import ConnectorContract


class TestZohoContract(ConnectorContract):
    vendor = "zoho"
