"""The shared connector contract, run by the SuiteCRM connector against its sandbox."""

from __future__ import annotations

from tests.connectors.contract import ConnectorContract


class TestSuiteCrmContract(ConnectorContract):
    vendor = "suitecrm"
