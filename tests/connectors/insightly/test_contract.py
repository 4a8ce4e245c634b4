"""The shared connector contract, run by the Insightly connector against its sandbox."""

from __future__ import annotations

from connectors.base import Connector, SweepsIds
from connectors.sandbox import Sandbox
from mappings.fieldmap import FieldMap
from tests.connectors.contract import ConnectorContract


class TestInsightlyContract(ConnectorContract):
    vendor = "insightly"
    # Insightly pages hold up to 500 rows: more contacts than that make a full read page.
    seeded = 1100

    # Insightly reports no deletes: the hub sweeps ids (SweepsIds.list_ids) against its links.
    # So instead of read_deletes, this checks that the sweep no longer lists removed records,
    # still lists every other one, and that read omits them.
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

    # Insightly authenticates with a static API key: there is no access token to expire, and
    # expiring "tokens" must not disturb the key. The read goes through in one request a page.
    def test_an_expired_token_is_refreshed_and_the_call_succeeds(
        self, sandbox: Sandbox, connector: Connector, fieldmap: FieldMap
    ) -> None:
        connector.read_changes("contacts", None, None, [self.email_field(fieldmap)])
        calls_before = sandbox.calls.total
        sandbox.api.expire_tokens()
        page = connector.read_changes("contacts", None, None, fieldmap.vendor_fields("contacts"))
        assert page.records
        assert sandbox.calls.total - calls_before == 1
