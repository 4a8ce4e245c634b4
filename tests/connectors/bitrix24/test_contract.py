"""The shared connector contract, run by the Bitrix24 connector against its sandbox.

Bitrix24 never reports deletes (lists do not show deleted records): the contract checks its id
sweep instead.
"""

from __future__ import annotations

from tests.connectors.contract import ConnectorContract


class TestBitrix24Contract(ConnectorContract):
    vendor = "bitrix24"
