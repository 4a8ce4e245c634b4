"""The shared connector contract, run by the Insightly connector against its sandbox.

Insightly reports no deletes (the contract checks its id sweep) and authenticates with a static
API key: there is no access token to expire.
"""

from __future__ import annotations

from tests.connectors.contract import ConnectorContract


class TestInsightlyContract(ConnectorContract):
    vendor = "insightly"
    # Insightly pages hold up to 500 rows: more contacts than that make a full read page.
    seeded = 1100
    static_credentials = True
