"""The shared connector contract, run by the Bitrix24 connector against its sandbox."""

from __future__ import annotations

from connectors.base import Connector, SweepsIds
from connectors.sandbox import Sandbox
from mappings.fieldmap import FieldMap
from tests.connectors.contract import ConnectorContract


class TestBitrix24Contract(ConnectorContract):
    vendor = "bitrix24"

    # Bitrix24 never reports deletes (lists do not show deleted records, and the connector
    # claims no delete detection): the hub finds them by sweeping ids (SweepsIds.list_ids)
    # against its links. So instead of read_deletes, this checks that the sweep no longer
    # lists removed records, still lists every other one, and that read omits them.
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
