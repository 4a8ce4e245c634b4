"""Turns a validated configuration into what a run needs: connectors, field maps, a spec.

Public entry points: :func:`build_engine`, :func:`build_runtimes`, :func:`sync_spec`,
:func:`field_map_for`, :func:`run_sync`.

This is the one place where configuration meets code: the CLI and the demo start every run
through :func:`run_sync`, and the scheduler and workers to come should too, so all behave alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from connectors.base import Connector
from connectors.errors import ConnectorConfigError
from connectors.registry import load_connector
from hub.config import Config, SyncConfig, SystemConfig
from hub.engine import Progress, Splitter, SyncEngine, SyncSpec, SystemRuntime
from hub.merge import Policy
from hub.report import RunReport
from hub.tables import utcnow
from mappings.fieldmap import FieldMap, load_default_map

ConnectorOverride = Callable[[SystemConfig], Connector | None]


def field_map_for(config: Config, sync: SyncConfig, system: SystemConfig) -> FieldMap:
    """The vendor's default map, extended by the system's ``map`` and the sync's ``fields``."""
    factory = system.connector_class or load_connector(system.connector)
    fieldmap = load_default_map(factory.vendor)
    if system.map:
        fieldmap = fieldmap.extend(system.map, source=f"systems.{system.name}.map")
    for object_type, by_field in sync.fields.items():
        extra = {
            canonical: by_system[system.name]
            for canonical, by_system in by_field.items()
            if system.name in by_system
        }
        if extra:
            fieldmap = fieldmap.with_fields(object_type, extra)
    return fieldmap


def build_connector(system: SystemConfig) -> Connector:
    factory = system.connector_class or load_connector(system.connector)
    try:
        return factory(system.name, system.settings)
    except ConnectorConfigError:
        raise
    except (OSError, ValueError) as exc:
        raise ConnectorConfigError(str(exc), system=system.name) from exc


def build_runtimes(
    config: Config, sync: SyncConfig, connectors: ConnectorOverride | None = None
) -> list[SystemRuntime]:
    """One runtime per system of the sync, in the sync's order (the tie-break order)."""
    runtimes = []
    for name, mode in sync.systems.items():
        system = config.systems[name]
        connector = (connectors(system) if connectors else None) or build_connector(system)
        runtimes.append(
            SystemRuntime(
                name=name,
                mode=mode,
                connector=connector,
                fieldmap=field_map_for(config, sync, system),
                phone_region=system.phone_region or config.phone_region or "US",
            )
        )
    return runtimes


def sync_spec(sync: SyncConfig) -> SyncSpec:
    policy = sync.conflicts
    return SyncSpec(
        name=sync.name,
        objects=tuple(sync.objects),
        match={obj: tuple(tuple(rule) for rule in rules) for obj, rules in sync.match.items()},
        policy=Policy(
            kind=policy.kind,
            system_order=tuple(sync.systems),
            prefer=tuple(policy.prefer),
            owners=dict(policy.owners),
            fallback=policy.fallback,
        ),
        deletes=sync.deletes,
        max_delete_fraction=sync.max_delete_fraction,
        overlap=timedelta(seconds=sync.overlap_seconds),
        delete_sweep=timedelta(seconds=sync.delete_sweep_seconds),
    )


def build_engine(
    db: Engine,
    config: Config,
    sync: SyncConfig,
    *,
    connectors: ConnectorOverride | None = None,
    progress: Progress | None = None,
    clock: Callable[[], datetime] = utcnow,
    should_stop: Callable[[], bool] | None = None,
    **options: Any,
) -> SyncEngine:
    return SyncEngine(
        db,
        sync_spec(sync),
        build_runtimes(config, sync, connectors),
        progress=progress,
        clock=clock,
        should_stop=should_stop,
        **options,
    )


def run_sync(
    db: Engine,
    config: Config,
    names: Sequence[str] | None = None,
    *,
    dry_run: bool = False,
    allow_mass_delete: bool = False,
    progress: Progress | None = None,
    connectors: ConnectorOverride | None = None,
    should_stop: Callable[[], bool] | None = None,
    splitter: Callable[[str], Splitter] | None = None,
) -> list[RunReport]:
    """Run the named syncs (all when none are named) one after the other. ``splitter`` gives
    the worker-task starter of a sync whose config asks for ``split:`` (Celery workers only)."""
    reports = []
    for name in names or list(config.syncs):
        sync = config.syncs[name]
        split: dict[str, Any] = {}
        if splitter is not None and sync.split is not None:
            split = {"splitter": splitter(name), "split_min_records": sync.split.min_records}
        engine = build_engine(
            db,
            config,
            sync,
            connectors=connectors,
            progress=progress,
            should_stop=should_stop,
            **split,
        )
        reports.append(engine.run(dry_run=dry_run, allow_mass_delete=allow_mass_delete))
    return reports
