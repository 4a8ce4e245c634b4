"""The shared connector contract, run by the Apptivo connector against its sandbox.

Apptivo never reports deletes (the contract checks its id sweep), and its key pair is the
credential itself: it never expires, it is only regenerated (which the revoked-credentials test
covers).
"""

from __future__ import annotations

from tests.connectors.contract import ConnectorContract


class TestApptivoContract(ConnectorContract):
    vendor = "apptivo"
    static_credentials = True
