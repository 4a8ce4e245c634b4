"""The contract every vendor connector passes against its own sandbox.

A vendor's test module subclasses :class:`ConnectorContract` and names its vendor::

    class TestHubSpotContract(ConnectorContract):
        vendor = "hubspot"

The suite finds the connector and the sandbox through their entry points, builds the connector
from the sandbox's own ``connector_settings`` (as ``crmhub demo`` does), and speaks vendor field
names only through the vendor's default field map, so one suite covers every connector: full
read, paging, incremental read, create / update / upsert, batch partial failure, token expiry and
refresh, rate limits, a 5xx and a garbled answer during paging, deletes, lookups by key, and the
failures a user meets first (wrong or revoked credentials, nothing listening).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest

from connectors.base import Connector, RemoteRecord, SweepsIds
from connectors.errors import AuthError, RecordRejected, Unreachable
from connectors.registry import load_connector
from connectors.sandbox import Fault, Sandbox, SandboxOptions, load_sandbox
from mappings.fieldmap import FieldMap, load_default_map


def build_connector(settings: Mapping[str, Any], system: str = "contract") -> Connector:
    """A connector from a config ``systems`` entry, as the hub builds one."""
    factory = load_connector(str(settings["connector"]))
    values = {key: value for key, value in settings.items() if key != "connector"}
    return factory(system, factory.settings_model.model_validate(values))


def is_credential(key: str) -> bool:
    """Whether a ``systems`` setting holds a credential: a secret, a token or a key
    (Apptivo's ``api_key``/``access_key``, Insightly's ``api_key``)."""
    return "secret" in key or "token" in key or key.endswith("key")


def read_all(
    connector: Connector,
    object_type: str,
    fields: Sequence[str],
    since: datetime | None = None,
) -> tuple[list[RemoteRecord], int]:
    """Every record of a read, and how many pages it took."""
    records: list[RemoteRecord] = []
    token: str | None = None
    pages = 0
    while True:
        page = connector.read_changes(object_type, since, token, fields)
        records.extend(page.records)
        pages += 1
        token = page.next_token
        if not token:
            return records, pages


class ConnectorContract:
    """Subclass with ``vendor`` set; ``seeded`` contacts fill more than one page of a full read.

    ``static_credentials``: the vendor authenticates with a key that never expires (Insightly,
    Apptivo), so there is no access token to refresh.
    """

    vendor: ClassVar[str]
    seeded: ClassVar[int] = 450
    static_credentials: ClassVar[bool] = False

    # ------------------------------------------------------------------ fixtures

    @pytest.fixture
    def sandbox(self) -> Iterator[Sandbox]:
        with load_sandbox(self.vendor, SandboxOptions(records=self.seeded, seed=3)) as running:
            yield running

    @pytest.fixture
    def connector(self, sandbox: Sandbox) -> Iterator[Connector]:
        connector = build_connector(sandbox.connector_settings())
        yield connector
        connector.close()

    @pytest.fixture
    def fieldmap(self) -> FieldMap:
        return load_default_map(self.vendor)

    # ------------------------------------------------------------------ helpers

    def contact(self, fieldmap: FieldMap, n: int, **canonical: Any) -> dict[str, Any]:
        flat: dict[str, Any] = {
            "first_name": "Contract",
            "last_name": f"Person {n}",
            "email": f"contract.person.{n}@contract-test.example",
            "job_title": "Tester",
        }
        flat.update(canonical)
        return fieldmap.to_vendor("contacts", flat, fields=list(flat))

    def email_field(self, fieldmap: FieldMap) -> str:
        field = fieldmap.vendor_field("contacts", "email")
        assert field is not None
        return field

    def plain_fields(self, fieldmap: FieldMap, object_type: str) -> list[str]:
        references = set(fieldmap.reference_fields(object_type))
        return [
            fieldmap.vendor_field(object_type, canonical) or canonical
            for canonical in sorted(fieldmap.canonical_fields(object_type) - references)
        ]

    # ------------------------------------------------------------------ reads

    def test_check_passes_with_the_sandbox_credentials(self, connector: Connector) -> None:
        connector.check()

    def test_full_read_returns_every_record_once_across_pages(
        self, sandbox: Sandbox, connector: Connector, fieldmap: FieldMap
    ) -> None:
        records, pages = read_all(connector, "contacts", fieldmap.vendor_fields("contacts"))
        ids = [record.id for record in records]
        assert len(ids) == len(set(ids)) == len(sandbox.api.snapshot("contacts")) == self.seeded
        assert pages > 1
        assert all(record.modified_at.tzinfo is not None for record in records)
        for record in records[:50]:
            canonical = fieldmap.to_canonical("contacts", record.fields)
            assert canonical["email"]
            assert canonical["last_name"]

    def test_every_object_type_reads_and_maps(
        self, connector: Connector, fieldmap: FieldMap
    ) -> None:
        for object_type in ("companies", "contacts", "deals"):
            records, _ = read_all(connector, object_type, fieldmap.vendor_fields(object_type))
            assert records, object_type
            mapped = [fieldmap.to_canonical(object_type, r.fields) for r in records[:20]]
            assert all(mapped), object_type

    def test_incremental_read_returns_what_changed_since(
        self, sandbox: Sandbox, connector: Connector, fieldmap: FieldMap
    ) -> None:
        everything, _ = read_all(connector, "contacts", fieldmap.vendor_fields("contacts"))
        newest = max(record.modified_at for record in everything)
        time.sleep(1.1)  # vendors keep modified times to the second in places
        touched = sorted(record.id for record in everything[:3])
        title = self.plain_fields(fieldmap, "contacts")
        job_title = fieldmap.vendor_field("contacts", "job_title")
        assert job_title in title
        for record_id in touched:
            sandbox.api.modify("contacts", record_id, {job_title: "Changed Title"})
        since = newest + timedelta(milliseconds=500)
        changed, _ = read_all(connector, "contacts", fieldmap.vendor_fields("contacts"), since)
        # A vendor that stamps whole seconds is asked from the second before: what else comes
        # back is no older than that precision allows.
        slack = connector.capabilities.modified_precision
        edited = [record for record in changed if record.modified_at > newest]
        assert sorted(record.id for record in edited) == touched
        assert all(record.fields[job_title] == "Changed Title" for record in edited)
        assert all(record.modified_at >= since - slack for record in changed)
        assert len(changed) - len(edited) <= 3

    def test_incremental_read_with_nothing_new_is_empty(
        self, connector: Connector, fieldmap: FieldMap
    ) -> None:
        future = datetime.now(UTC) + timedelta(hours=1)
        changed, _ = read_all(connector, "contacts", fieldmap.vendor_fields("contacts"), future)
        assert changed == []

    def test_read_by_id_returns_current_state_and_omits_missing(
        self, sandbox: Sandbox, connector: Connector, fieldmap: FieldMap
    ) -> None:
        some = sorted(sandbox.api.snapshot("contacts"))[:2]
        missing = "999999999999999999"
        found = connector.read("contacts", [*some, missing], fieldmap.vendor_fields("contacts"))
        assert sorted(record.id for record in found) == some

    def test_a_5xx_during_paging_is_retried_and_the_read_completes(
        self, sandbox: Sandbox, connector: Connector, fieldmap: FieldMap
    ) -> None:
        fields = fieldmap.vendor_fields("contacts")
        first = connector.read_changes("contacts", None, None, fields)
        assert first.next_token
        # Four failures in a row, each retried: the fifth attempt of the page succeeds.
        for fault in (Fault.SERVER_ERROR, Fault.HTML, Fault.TRUNCATED, Fault.RESET):
            sandbox.inject(fault)
        rest, _ = self._read_from(connector, fields, first.next_token)
        ids = {record.id for record in [*first.records, *rest]}
        assert len(ids) == self.seeded
        assert sum(sandbox.calls.faults.values()) == 4

    def _read_from(
        self, connector: Connector, fields: Sequence[str], token: str
    ) -> tuple[list[RemoteRecord], int]:
        records: list[RemoteRecord] = []
        pages = 0
        next_token: str | None = token
        while next_token:
            page = connector.read_changes("contacts", None, next_token, fields)
            records.extend(page.records)
            pages += 1
            next_token = page.next_token
        return records, pages

    # ------------------------------------------------------------------ writes

    def test_create_update_and_read_back(
        self, sandbox: Sandbox, connector: Connector, fieldmap: FieldMap
    ) -> None:
        created = connector.create("contacts", [self.contact(fieldmap, n) for n in range(3)])
        assert all(result.ok and result.remote_id for result in created)
        ids = [result.remote_id for result in created if result.remote_id]
        stored = sandbox.api.snapshot("contacts")
        assert all(record_id in stored for record_id in ids)

        job_title = fieldmap.vendor_field("contacts", "job_title")
        assert job_title is not None
        updated = connector.update("contacts", [(ids[0], {job_title: "Head of Testing"})])
        assert updated[0].ok
        assert updated[0].remote_id == ids[0]

        back = {
            r.id: r for r in connector.read("contacts", ids, fieldmap.vendor_fields("contacts"))
        }
        first = fieldmap.to_canonical("contacts", back[ids[0]].fields)
        assert first["job_title"] == "Head of Testing"
        assert first["last_name"] == "Person 0"  # untouched by the partial update
        second = fieldmap.to_canonical("contacts", back[ids[1]].fields)
        assert second["email"] == "contract.person.1@contract-test.example"

    def test_update_with_none_clears_the_field(
        self, sandbox: Sandbox, connector: Connector, fieldmap: FieldMap
    ) -> None:
        [created] = connector.create("contacts", [self.contact(fieldmap, 10)])
        assert created.remote_id
        job_title = fieldmap.vendor_field("contacts", "job_title")
        assert job_title is not None
        [cleared] = connector.update("contacts", [(created.remote_id, {job_title: None})])
        assert cleared.ok
        [back] = connector.read("contacts", [created.remote_id], fieldmap.vendor_fields("contacts"))
        cleared_back = fieldmap.to_canonical("contacts", back.fields)
        assert "job_title" not in cleared_back
        assert cleared_back["last_name"] == "Person 10"

    def test_creating_twice_on_the_upsert_key_makes_no_duplicate(
        self, sandbox: Sandbox, connector: Connector, fieldmap: FieldMap
    ) -> None:
        if not connector.capabilities.upsert_keys.get("contacts"):
            pytest.skip(
                "create is not an upsert here: after a crash the hub finds the record by email "
                "before creating it again (test_find_by_email_ignores_case)"
            )
        [first] = connector.create("contacts", [self.contact(fieldmap, 20)])
        before = len(sandbox.api.snapshot("contacts"))
        [again] = connector.create("contacts", [self.contact(fieldmap, 20, job_title="CTO")])
        assert again.ok
        assert again.remote_id == first.remote_id
        assert len(sandbox.api.snapshot("contacts")) == before

    def test_one_bad_record_fails_alone_and_the_batch_stands(
        self, sandbox: Sandbox, connector: Connector, fieldmap: FieldMap
    ) -> None:
        email = self.email_field(fieldmap)
        bad = self.contact(fieldmap, 31)
        bad[email] = "not-an-email"
        batch = [self.contact(fieldmap, 30), bad, self.contact(fieldmap, 32)]
        before = len(sandbox.api.snapshot("contacts"))
        results = connector.create("contacts", batch)
        assert [result.ok for result in results] == [True, False, True]
        error = results[1].error
        assert isinstance(error, RecordRejected)
        assert error.system == "contract"
        assert "not-an-email" in str(error) or (error.field or "").lower() == email.lower()
        assert len(sandbox.api.snapshot("contacts")) == before + 2

    def test_update_of_a_missing_record_is_rejected_alone(
        self, sandbox: Sandbox, connector: Connector, fieldmap: FieldMap
    ) -> None:
        job_title = fieldmap.vendor_field("contacts", "job_title")
        assert job_title is not None
        existing = sorted(sandbox.api.snapshot("contacts"))[0]
        results = connector.update(
            "contacts",
            [(existing, {job_title: "Still Here"}), ("999999999999999999", {job_title: "Gone"})],
        )
        assert results[0].ok
        assert not results[1].ok
        assert sandbox.api.snapshot("contacts")[existing][job_title] == "Still Here"

    def test_find_by_email_ignores_case(
        self, sandbox: Sandbox, connector: Connector, fieldmap: FieldMap
    ) -> None:
        [created] = connector.create("contacts", [self.contact(fieldmap, 40)])
        email = self.email_field(fieldmap)
        found = connector.find(
            "contacts", email, ["CONTRACT.Person.40@contract-test.example", "nobody@x.example"]
        )
        assert [record.id for record in found] == [created.remote_id]

    # ------------------------------------------------------------------ deletes

    def test_deleted_records_are_found(
        self, sandbox: Sandbox, connector: Connector, fieldmap: FieldMap
    ) -> None:
        before = datetime.now(UTC) - timedelta(seconds=5)
        victims = sorted(sandbox.api.snapshot("contacts"))[:2]
        for record_id in victims:
            sandbox.api.remove("contacts", record_id)
        if connector.capabilities.detects_deletes:
            deleted: list[RemoteRecord] = []
            token: str | None = None
            while True:
                page = connector.read_deletes("contacts", before, token)
                deleted.extend(page.records)
                token = page.next_token
                if not token:
                    break
            assert sorted(record.id for record in deleted) == victims
            assert all(record.deleted for record in deleted)
        else:
            # The vendor never reports deletes: the hub sweeps ids against its links. The sweep
            # no longer lists removed records and still lists every other one.
            assert isinstance(connector, SweepsIds)
            listed: list[str] = []
            sweep: str | None = None
            while True:
                ids, sweep = connector.list_ids("contacts", sweep)
                listed.extend(ids)
                if not sweep:
                    break
            assert not set(victims) & set(listed)
            assert sorted(listed) == sorted(sandbox.api.snapshot("contacts"))
        assert connector.read("contacts", victims, [self.email_field(fieldmap)]) == []

    def test_delete_through_the_connector(
        self, sandbox: Sandbox, connector: Connector, fieldmap: FieldMap
    ) -> None:
        [created] = connector.create("contacts", [self.contact(fieldmap, 50)])
        assert created.remote_id
        [result] = connector.delete("contacts", [created.remote_id])
        assert result.ok
        assert created.remote_id not in sandbox.api.snapshot("contacts")

    # ------------------------------------------------------------------ auth and limits

    def test_an_expired_token_is_refreshed_and_the_call_succeeds(
        self, sandbox: Sandbox, connector: Connector, fieldmap: FieldMap
    ) -> None:
        connector.read_changes("contacts", None, None, [self.email_field(fieldmap)])
        calls_before = sandbox.calls.total
        sandbox.api.expire_tokens()
        page = connector.read_changes("contacts", None, None, fieldmap.vendor_fields("contacts"))
        assert page.records
        if self.static_credentials:
            # Nothing to refresh, and expiring "tokens" must not disturb the key: one call.
            assert sandbox.calls.total - calls_before == 1
        else:
            # The expired attempt, the token call and the repeat: a refresh really happened.
            assert sandbox.calls.total - calls_before >= 3

    def test_wrong_credentials_are_an_auth_error_naming_no_secret(self, sandbox: Sandbox) -> None:
        settings = sandbox.connector_settings()
        secret_keys = [k for k in settings if is_credential(k)]
        assert secret_keys
        wrong = {**settings, **{key: "wrong-credential-value" for key in secret_keys}}
        connector = build_connector(wrong)
        with pytest.raises(AuthError) as raised:
            connector.check()
        assert "wrong-credential-value" not in str(raised.value)
        connector.close()

    def test_revoked_credentials_stop_the_connector_saying_which_setting_to_change(
        self, sandbox: Sandbox, fieldmap: FieldMap
    ) -> None:
        # Revoked mid-use: the access token in hand and the credentials behind it are refused.
        settings = sandbox.connector_settings()
        connector = build_connector(settings, system="crm_a")
        fields = [self.email_field(fieldmap)]
        connector.read_changes("contacts", None, None, fields)
        sandbox.api.revoke_credentials()
        with pytest.raises(AuthError) as raised:
            connector.read_changes("contacts", None, None, fields)
        connector.close()
        assert raised.value.exit_code == 3
        assert raised.value.system == "crm_a"
        message = str(raised.value)
        assert message.startswith("crm_a: ")
        assert "systems.crm_a." in message  # the setting to change, as the config spells it
        for key, value in settings.items():
            if is_credential(key) and isinstance(value, str):
                assert value not in message, key
        # What the vendor hands out afterwards works.
        renewed = build_connector(sandbox.connector_settings(), system="crm_a")
        assert renewed.read_changes("contacts", None, None, fields).records
        renewed.close()

    def test_nothing_listening_is_unreachable(self, sandbox: Sandbox) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        settings = sandbox.connector_settings()
        dead = {
            key: value.replace(sandbox.url, f"http://127.0.0.1:{port}")
            if isinstance(value, str)
            else value
            for key, value in settings.items()
        }
        connector = build_connector(dead)
        with pytest.raises(Unreachable):
            connector.check()
        connector.close()

    def test_a_429_is_waited_out(
        self, sandbox: Sandbox, connector: Connector, fieldmap: FieldMap
    ) -> None:
        sandbox.inject(Fault.RATE_LIMIT, times=2)
        page = connector.read_changes("contacts", None, None, fieldmap.vendor_fields("contacts"))
        assert page.records
        assert sandbox.calls.faults[Fault.RATE_LIMIT.value] == 2

    def test_the_client_stays_inside_a_tight_vendor_budget(self, fieldmap: FieldMap) -> None:
        # The sandbox enforces 10 requests a second in its vendor's own window; the settings it
        # hands out carry that budget, and a client that throttles itself is never refused.
        options = SandboxOptions(records=60, seed=5, rate_limit=10)
        with load_sandbox(self.vendor, options) as sandbox:
            connector = build_connector(sandbox.connector_settings())
            for _ in range(25):
                page = connector.read_changes("contacts", None, None, [self.email_field(fieldmap)])
                assert page.records
            connector.close()
        assert sandbox.calls.by_status[429] == 0
        assert sandbox.calls.by_status[200] >= 25
