"""Prometheus metrics read from the state store at each scrape.

Public entry points: :class:`StateStoreCollector`, :func:`metrics_registry`.

The figures are the database's, not this process's: whichever daemon or worker ran a sync,
the dashboard reports it, and a restart changes no counter. Metrics (labels in braces):

- ``crmhub_runs_total{sync,status}``: runs by outcome (running, succeeded, partial, ...);
- ``crmhub_records_total{sync,outcome}``: records per outcome (read, created, updated,
  deleted, failed, conflicts, ...) summed over finished runs;
- ``crmhub_open_conflicts{sync}``, ``crmhub_failed_records{sync}`` (open and parked),
  ``crmhub_canonical_records{sync}``;
- ``crmhub_last_run_timestamp_seconds{sync}`` (when the last finished run ended) and
  ``crmhub_last_success_timestamp_seconds{sync}`` (the last that succeeded).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import Engine

from hub import admin
from hub.config import SyncConfig

# A run still "running" after this long was killed; it will never add counts.
_ABANDONED_AFTER = timedelta(days=1)


class _OutcomeTotals:
    """Records per (sync, outcome) over finished runs, summed once per run: each scrape reads
    only the runs after the last one all of whose predecessors had finished."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settled_through = 0
        self._settled: dict[tuple[str, str], int] = defaultdict(int)

    def read(self, db: Engine, now: datetime) -> dict[tuple[str, str], int]:
        with self._lock:
            newer = admin.list_runs(db, limit=None, after_id=self._settled_through)
            totals = dict(self._settled)
            settled = True
            for run in reversed(newer):  # oldest first
                finished = run["finished_at"] is not None
                abandoned = datetime.fromisoformat(run["started_at"]) < now - _ABANDONED_AFTER
                if not finished and not abandoned:
                    settled = False
                    continue
                for outcome, n in run["counts"].items():
                    key = (run["sync"], outcome)
                    totals[key] = totals.get(key, 0) + n
                    if settled:
                        self._settled[key] += n
                if settled:
                    self._settled_through = run["id"]
            return totals


class StateStoreCollector(Collector):
    """Collects every crmhub metric from the state store."""

    def __init__(
        self, db: Engine, syncs: Mapping[str, SyncConfig], clock: Callable[[], datetime]
    ) -> None:
        self.db = db
        self.syncs = syncs
        self.clock = clock
        self._outcomes = _OutcomeTotals()

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        runs = CounterMetricFamily(
            "crmhub_runs", "Runs of each sync by outcome.", labels=["sync", "status"]
        )
        last_run = GaugeMetricFamily(
            "crmhub_last_run_timestamp_seconds",
            "When the sync's last finished run ended (Unix time).",
            labels=["sync"],
        )
        last_success = GaugeMetricFamily(
            "crmhub_last_success_timestamp_seconds",
            "When the sync's last successful run ended (Unix time).",
            labels=["sync"],
        )
        ended: dict[str, datetime] = {}
        succeeded: dict[str, datetime] = {}
        for row in admin.run_statistics(self.db):
            runs.add_metric([row["sync"], row["status"]], row["runs"])
            finished = row["last_finished_at"]
            if finished is None:
                continue
            if row["sync"] not in ended or finished > ended[row["sync"]]:
                ended[row["sync"]] = finished
            if row["status"] == "succeeded":
                succeeded[row["sync"]] = finished
        for sync, moment in sorted(ended.items()):
            last_run.add_metric([sync], moment.timestamp())
        for sync, moment in sorted(succeeded.items()):
            last_success.add_metric([sync], moment.timestamp())
        yield runs
        yield last_run
        yield last_success

        records = CounterMetricFamily(
            "crmhub_records",
            "Records per outcome (read, created, updated, failed, ...) over finished runs.",
            labels=["sync", "outcome"],
        )
        for (sync, outcome), n in sorted(self._outcomes.read(self.db, now).items()):
            records.add_metric([sync, outcome], n)
        yield records

        conflicts = GaugeMetricFamily(
            "crmhub_open_conflicts", "Conflicts waiting for a person.", labels=["sync"]
        )
        failed = GaugeMetricFamily(
            "crmhub_failed_records",
            "Records that failed and are not yet resolved (open or parked).",
            labels=["sync"],
        )
        canonical = GaugeMetricFamily(
            "crmhub_canonical_records", "Canonical records the sync keeps.", labels=["sync"]
        )
        for row in admin.sync_overview(self.db, self.syncs, now):
            conflicts.add_metric([row["sync"]], row["open_conflicts"])
            failed.add_metric([row["sync"]], row["records"]["failing"])
            canonical.add_metric([row["sync"]], row["records"]["total"])
        yield conflicts
        yield failed
        yield canonical


def metrics_registry(
    db: Engine, syncs: Mapping[str, SyncConfig], clock: Callable[[], datetime]
) -> CollectorRegistry:
    """A registry of its own per dashboard: the process-wide default one would collect
    Python's process metrics too and could be shared by two apps in one test."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateStoreCollector(db, syncs, clock))
    return registry
