"""A sync between in-memory CRMs, driven step by step: what the engine tests stand on."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from connectors.errors import ConnectorError
from connectors.memory.connector import MemoryConnector, MemorySettings
from connectors.memory.store import MemoryStore, shifted_clock
from hub.engine import DeletePolicy, Mode, SyncEngine, SyncSpec, SystemRuntime
from hub.merge import Policy
from hub.report import RunReport
from mappings.fieldmap import FieldMap, load_default_map

DEFAULT_MATCH = {
    "companies": (("domain",), ("name",)),
    "contacts": (("email",),),
    "deals": (("name", "company"),),
}

WRITES = ("create", "update", "delete")


class WritesForbidden(AssertionError):
    pass


class Harness:
    """N memory systems, one state database, one clock that every write advances."""

    def __init__(
        self,
        db: Engine,
        systems: Sequence[str] | Mapping[str, Mode] = ("a", "b"),
        *,
        policy: str = "newest",
        prefer: Sequence[str] = (),
        owners: Mapping[str, str] | None = None,
        fallback: str = "newest",
        deletes: DeletePolicy = "ignore",
        objects: Sequence[str] = ("companies", "contacts", "deals"),
        max_delete_fraction: float = 0.5,
        unique_emails: bool = True,
        fieldmaps: Mapping[str, FieldMap] | None = None,
        page_size: int = 500,
        store_page_size: int = 100,
    ) -> None:
        self.db = db
        modes = dict(systems) if isinstance(systems, Mapping) else dict.fromkeys(systems, "both")
        self.modes: dict[str, Mode] = modes  # type: ignore[assignment]
        self.clock = shifted_clock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC), timedelta(seconds=1))
        self.stores = {
            name: MemoryStore(clock=self.clock, unique_emails=unique_emails) for name in modes
        }
        settings = MemorySettings(page_size=store_page_size)
        self.connectors = {
            name: MemoryConnector(name, settings, store=store)
            for name, store in self.stores.items()
        }
        default = load_default_map("memory")
        self.fieldmaps = {name: (fieldmaps or {}).get(name, default) for name in modes}
        self.spec = SyncSpec(
            name="test",
            objects=tuple(objects),
            match=DEFAULT_MATCH,
            policy=Policy(
                kind=policy,  # type: ignore[arg-type]
                system_order=tuple(modes),
                prefer=tuple(prefer),
                owners=dict(owners or {}),
                fallback=fallback,  # type: ignore[arg-type]
            ),
            deletes=deletes,
            max_delete_fraction=max_delete_fraction,
        )
        self.page_size = page_size

    def engine(self, **options: Any) -> SyncEngine:
        runtimes = [
            SystemRuntime(name, mode, self.connectors[name], self.fieldmaps[name])
            for name, mode in self.modes.items()
        ]
        return SyncEngine(
            self.db, self.spec, runtimes, clock=self.clock, page_size=self.page_size, **options
        )

    def run(self, **options: Any) -> RunReport:
        dry_run = options.pop("dry_run", False)
        allow = options.pop("allow_mass_delete", False)
        return self.engine(**options).run(dry_run=dry_run, allow_mass_delete=allow)

    def run_without_writes(self) -> RunReport:
        """A run in which any vendor write fails the test: proves a run is a no-op."""
        self.forbid_writes()
        try:
            return self.run()
        finally:
            self.allow_writes()

    def forbid_writes(self) -> None:
        def refuse(operation: str, object_type: str) -> None:
            if operation in WRITES:
                raise WritesForbidden(f"unexpected {operation} of {object_type}")

        for connector in self.connectors.values():
            connector.before_call = refuse

    def allow_writes(self) -> None:
        for connector in self.connectors.values():
            connector.before_call = None

    def fail_calls(self, system: str, error: Callable[[str, str], ConnectorError | None]) -> None:
        def hook(operation: str, object_type: str) -> None:
            exc = error(operation, object_type)
            if exc is not None:
                raise exc

        self.connectors[system].before_call = hook

    # ------------------------------------------------------------------ vendor data

    def add(self, system: str, object_type: str, **fields: Any) -> str:
        return self.stores[system].create(object_type, fields).id

    def edit(self, system: str, object_type: str, record_id: str, **fields: Any) -> None:
        self.stores[system].update(object_type, record_id, fields)

    def records(self, system: str, object_type: str) -> list[dict[str, Any]]:
        return [dict(r.fields) for r in self.stores[system].all(object_type)]

    def by(self, system: str, object_type: str, field: str, value: Any) -> dict[str, Any]:
        found = [
            {"id": r.id, **r.fields}
            for r in self.stores[system].all(object_type)
            if r.fields.get(field) == value
        ]
        assert len(found) == 1, f"{system}: {len(found)} {object_type} with {field}={value!r}"
        return found[0]

    def canonical(self, system: str, object_type: str) -> list[dict[str, Any]]:
        """The system's records in canonical form, references as the vendor's ids."""
        fieldmap = self.fieldmaps[system]
        return [
            fieldmap.to_canonical(object_type, r.fields)
            for r in self.stores[system].all(object_type)
        ]
