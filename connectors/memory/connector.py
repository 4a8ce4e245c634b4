"""The in-memory connector: a real :class:`~connectors.base.Connector` over a :class:`MemoryStore`.

Public entry points: :class:`MemoryConnector`, :class:`MemorySettings`.

It is what the engine's tests, the benchmark and the first demo run against. It pages, filters
by modified time, reports deletes and fails per record exactly like an HTTP connector, and it
offers two hooks for fault injection (``before_call`` and ``after_write``) so tests can make a
call fail, or make a write succeed on the "vendor" and then lose its answer — the crash the
hub's write-ahead intents exist for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from connectors.base import Capabilities, Page, RemoteRecord, VendorFields, WriteResult
from connectors.errors import ConnectorConfigError, RecordRejected
from connectors.memory.store import MemoryStore, StoredRecord

CallHook = Callable[[str, str], None]
WriteHook = Callable[[str, str, Sequence[WriteResult]], None]


class MemorySettings(BaseModel):
    """Settings of a ``connector: memory`` system."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = Field(default=None, description="ignored; accepted for symmetry")
    path: Path | None = Field(default=None, description="JSON file that persists the account")
    page_size: int = Field(default=100, ge=1, le=10_000)
    max_batch: int = Field(default=100, ge=1, le=10_000)
    unique_emails: bool = True
    properties: dict[str, list[str]] = Field(
        default_factory=dict, description="extra properties per object type (custom fields)"
    )


class MemoryConnector:
    """A connector whose vendor lives in this process (or in a JSON file between processes)."""

    settings_model: ClassVar[type[BaseModel]] = MemorySettings
    vendor: ClassVar[str] = "memory"

    def __init__(
        self,
        system: str,
        settings: MemorySettings | None = None,
        *,
        store: MemoryStore | None = None,
    ) -> None:
        self.system = system
        self.settings = settings or MemorySettings()
        if store is None:
            try:
                store = MemoryStore(
                    path=self.settings.path,
                    extra_properties=self.settings.properties,
                    unique_emails=self.settings.unique_emails,
                )
            except ValueError as exc:
                raise ConnectorConfigError(str(exc), system=system) from exc
        self.store = store
        self.capabilities = Capabilities(
            object_types=frozenset(("companies", "contacts", "deals")),
            max_batch=self.settings.max_batch,
            detects_deletes=True,
            read_page_size=self.settings.page_size,
        )
        self.before_call: CallHook | None = None
        self.after_write: WriteHook | None = None

    # ----------------------------------------------------------------- reads

    def check(self) -> None:
        self._enter("check", "")

    def read_changes(
        self,
        object_type: str,
        since: datetime | None,
        page_token: str | None,
        fields: Sequence[str],
    ) -> Page:
        self._enter("read_changes", object_type)
        after = _decode_token(page_token) if page_token else None
        page_size = self.settings.page_size
        # One record more than a page tells whether another page follows.
        stored = self.store.changed_since(object_type, since, after, page_size + 1)
        records = [_remote(record, fields) for record in stored[:page_size]]
        next_token = _encode_token(stored[page_size - 1]) if len(stored) > page_size else None
        return Page(records, next_token)

    def read_deletes(
        self, object_type: str, since: datetime | None, page_token: str | None
    ) -> Page:
        self._enter("read_deletes", object_type)
        offset = int(page_token) if page_token else 0
        tombstones = self.store.deleted_since(object_type, since)
        chunk = tombstones[offset : offset + self.settings.page_size]
        records = [RemoteRecord(record_id, at, {}, deleted=True) for at, record_id in chunk]
        more = offset + len(chunk) < len(tombstones)
        return Page(records, str(offset + len(chunk)) if more else None)

    def read(
        self, object_type: str, ids: Sequence[str], fields: Sequence[str]
    ) -> list[RemoteRecord]:
        self._enter("read", object_type)
        found = (self.store.get(object_type, record_id) for record_id in ids)
        return [_remote(stored, fields) for stored in found if stored is not None]

    def find(self, object_type: str, field: str, values: Sequence[str]) -> list[RemoteRecord]:
        self._enter("find", object_type)
        return [_remote(stored, ()) for stored in self.store.find(object_type, field, values)]

    # ----------------------------------------------------------------- writes

    def create(self, object_type: str, records: Sequence[VendorFields]) -> list[WriteResult]:
        return self._write(
            "create", object_type, records, lambda fields: self.store.create(object_type, fields)
        )

    def update(
        self, object_type: str, changes: Sequence[tuple[str, VendorFields]]
    ) -> list[WriteResult]:
        return self._write(
            "update",
            object_type,
            changes,
            lambda change: self.store.update(object_type, change[0], change[1]),
        )

    def delete(self, object_type: str, ids: Sequence[str]) -> list[WriteResult]:
        def delete_one(record_id: str) -> WriteResult:
            return WriteResult(record_id, self.store.delete(object_type, record_id))

        return self._write("delete", object_type, ids, delete_one)

    def close(self) -> None:
        self.store.save()

    # ----------------------------------------------------------------- internals

    def _enter(self, operation: str, object_type: str) -> None:
        self.store.count_call(operation)
        if self.before_call is not None:
            self.before_call(operation, object_type)

    def _write(
        self, operation: str, object_type: str, items: Sequence[Any], apply: Callable[[Any], Any]
    ) -> list[WriteResult]:
        self._enter(operation, object_type)
        if len(items) > self.capabilities.max_batch:
            raise RecordRejected(
                f"a batch takes at most {self.capabilities.max_batch} records, got {len(items)}",
                code="BATCH_TOO_LARGE",
                system=self.system,
            )
        results: list[WriteResult] = []
        for item in items:
            try:
                outcome = apply(item)
            except RecordRejected as exc:
                exc.system = self.system
                results.append(WriteResult(None, None, exc))
                continue
            if isinstance(outcome, WriteResult):
                results.append(outcome)
            else:
                results.append(WriteResult(outcome.id, outcome.modified_at))
        self.store.save()
        if self.after_write is not None:
            self.after_write(operation, object_type, results)
        return results


def _remote(stored: StoredRecord, fields: Sequence[str]) -> RemoteRecord:
    values = stored.fields if not fields else {k: stored.fields.get(k) for k in fields}
    return RemoteRecord(stored.id, stored.modified_at, dict(values), merged_ids=stored.merged_ids)


def _encode_token(record: StoredRecord) -> str:
    return f"{record.modified_at.isoformat()}|{record.id}"


def _decode_token(token: str) -> tuple[datetime, str]:
    try:
        modified, record_id = token.split("|", 1)
        return datetime.fromisoformat(modified), record_id
    except ValueError:
        raise RecordRejected(f"malformed page token {token!r}", code="INVALID_TOKEN") from None
