"""The shared connector contract, run by the Apptivo connector against its sandbox."""

from __future__ import annotations

from connectors.base import Connector, SweepsIds
from connectors.sandbox import Sandbox
from mappings.fieldmap import FieldMap
from tests.connectors.contract import ConnectorContract


class TestApptivoContract(ConnectorContract):
    vendor = "apptivo"

    # Apptivo never reports deletes: the hub sweeps ids (SweepsIds.list_ids) against its
    # links. So instead of read_deletes, this checks that the sweep no longer lists removed
    # records, still lists every other one, and that read omits them.
    def test_deleted_records_are_reported_since_a_time(
        self, sandbox: Sandbox, connector: Connector, fieldmap: FieldMap
    ) -> None:
        assert not connector.capabilities.detects_deletes
        assert isinstance(connector, SweepsIds)
        victims = sorted(sandbox.api.snapshot("contacts"))[:2]
        for record_id in victims:
            sandbox.api.remove("contacts", record_id)
        listed: list[str] = []
        token: str | None = None
        while True:
            ids, token = connector.list_ids("contacts", token)
            listed.extend(ids)
            if not token:
                break
        assert not set(victims) & set(listed)
        assert sorted(listed) == sorted(sandbox.api.snapshot("contacts"))
        assert connector.read("contacts", victims, [self.email_field(fieldmap)]) == []

    # Apptivo's key pair is the credential itself and never expires (it is only regenerated,
    # which test_revoked_credentials_... covers): no token to refresh, so a read after the
    # sandbox "expires tokens" is one call that succeeds.
    def test_an_expired_token_is_refreshed_and_the_call_succeeds(
        self, sandbox: Sandbox, connector: Connector, fieldmap: FieldMap
    ) -> None:
        connector.read_changes("contacts", None, None, [self.email_field(fieldmap)])
        calls_before = sandbox.calls.total
        sandbox.api.expire_tokens()
        page = connector.read_changes("contacts", None, None, fieldmap.vendor_fields("contacts"))
        assert page.records
        assert sandbox.calls.total - calls_before == 1
