"""Celery workers: runs of syncs as tasks on a Redis or RabbitMQ broker.

Public entry points: :func:`create_app`, :func:`app_for`, :func:`run_worker`,
:func:`check_broker`, :func:`enqueue`, :func:`wait_for`, :func:`enqueue_scheduled_sync`,
:class:`Outcome`, :class:`BrokerError` and :data:`RUN_SYNC`.

One task, ``crmhub.run_sync(config_path, sync_name)``, runs one sync through
:func:`hub.runtime.run_sync`, as ``crmhub sync`` does, and returns the run's report as a dict
(:meth:`hub.report.RunReport.as_dict`). The config path must name the same file on every worker
(one mount, one path), since the task carries the path, not the file.

A sync configured with ``split:`` shares out a large initial sync: once its run has read and
matched an object type's records, it enqueues ``split.tasks`` tasks ``crmhub.help_split(
config_path, sync_name, object_type, run_id, owner)`` on its own queue and stores the records
page by page; the tasks, and then the run, decide and send one page at a time
(:meth:`hub.engine.SyncEngine.help`). The run never waits on a task result, only on the state
store: with every worker process busy, it reconciles all pages itself and the tasks find
nothing left when they start, so a small fleet cannot deadlock.

Delivery: tasks are acknowledged late (``task_acks_late``), after the run, and a task whose
worker process died is put back (``task_reject_on_worker_lost``), so a run killed with SIGKILL
or by the OOM killer runs again on some worker and resumes from the cursors it committed. Each
worker process takes one task at a time (``worker_prefetch_multiplier=1``): a long sync never
holds other syncs hostage in a busy worker's prefetch buffer.

- RabbitMQ gives a dead worker's unacknowledged task to another worker as soon as its connection
  drops. Results go back over ``rpc://`` (to the process that enqueued the task).
- Redis has no connections to watch: a task unacknowledged for :data:`VISIBILITY_TIMEOUT` is
  handed out again. That is longer than a run's lease lives (``hub.engine.LEASE_TTL``), so the
  second delivery of a task from a worker that vanished finds the dead run's lease expired. A run
  that outlasts the visibility timeout is delivered a second time while it still runs; that copy
  finds the lease held and ends as "skipped". Results live in the same Redis for a day.

Shutdown: on SIGTERM (or a first Ctrl-C) the worker stops taking tasks, and each sync it runs
stops at its next page boundary, as under ``crmhub run``: the page in hand is sent and
committed, the run is reported ``interrupted`` and its task acknowledged, and the sync's next
run goes on from there. A deploy's restart then waits a page, not the rest of a long first sync,
and never reaches the SIGKILL that would leave the run to be redelivered.

One run per sync at a time across all workers is the engine's lease, not Celery's: a task whose
sync is running elsewhere ends quietly, ``{"sync": name, "status": "skipped"}``. A run killed
on this host leaves a lease whose holder is gone, which the next run takes over at once
(:mod:`hub.lease_owner`); from another host, it waits for the lease to expire.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Event as ProcessEvent
from pathlib import Path
from typing import Any

from celery import Celery, current_task
from celery.result import AsyncResult
from celery.signals import setup_logging, worker_shutting_down
from kombu.exceptions import OperationalError
from sqlalchemy import Engine

from connectors.errors import ConnectorError
from hub.config import Config, ConfigError, load_config, mask_url
from hub.db import DatabaseError, open_database
from hub.engine import LEASE_TTL, LeaseHeldError, MassDeleteError, Splitter
from hub.logs import hide_secrets
from hub.report import RunReport
from hub.runtime import build_engine, run_sync

__all__ = [
    "DEFAULT_QUEUE",
    "HELP_SPLIT",
    "RUN_SYNC",
    "VISIBILITY_TIMEOUT",
    "BrokerError",
    "Outcome",
    "app_for",
    "check_broker",
    "create_app",
    "enqueue",
    "enqueue_scheduled_sync",
    "run_worker",
    "wait_for",
]

log = logging.getLogger("crmhub.workers")

RUN_SYNC = "crmhub.run_sync"
HELP_SPLIT = "crmhub.help_split"
DEFAULT_QUEUE = "crmhub"
VISIBILITY_TIMEOUT = 2 * LEASE_TTL
RESULTS_KEPT = timedelta(days=1)
# How long a command waits for the broker before saying it is unreachable.
CONNECT_TIMEOUT_SECONDS = 5.0

# Exit codes of a run that did not happen (the CLI's: 1 partial, 2 configuration, 3 unreachable).
_EXIT_FAILED, _EXIT_CONFIG = 1, 2


class BrokerError(Exception):
    """The broker (or the result store beside it) cannot be reached; names its masked URL."""

    exit_code = 3


def _keep_crmhub_logging(**_kwargs: Any) -> None:
    """A receiver of ``setup_logging`` stops Celery from configuring logging: crmhub's own
    (``--log-format``, secret masking) already did."""


setup_logging.connect(_keep_crmhub_logging)


# Set by the worker's main process when it starts to shut down; its pool processes, forked
# after run_worker made it, share it. A running sync asks it at every page boundary, so a
# warm shutdown waits one page for it, not the rest of a first sync that may take hours.
_shutting_down: ProcessEvent | None = None


def _stop_requested() -> bool:
    return _shutting_down is not None and _shutting_down.is_set()


def _on_shutdown(sig: str = "", how: str = "", **_kwargs: Any) -> None:
    if _shutting_down is not None:
        _shutting_down.set()
    log.info("worker: %s shutdown (%s): running syncs stop after their current page", how, sig)


worker_shutting_down.connect(_on_shutdown)


def _result_backend(broker: str) -> str:
    # Redis keeps results where the tasks are; RabbitMQ sends each back to its sender.
    return broker if broker.startswith(("redis://", "rediss://")) else "rpc://"


def create_app(broker: str) -> Celery:
    """A Celery app on ``broker`` with the ``crmhub.run_sync`` task."""
    app = Celery("crmhub", broker=broker, backend=_result_backend(broker), set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=DEFAULT_QUEUE,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=RESULTS_KEPT,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT.total_seconds()},
        broker_connection_timeout=CONNECT_TIMEOUT_SECONDS,
        broker_connection_retry_on_startup=True,
        redis_socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )
    app.task(name=RUN_SYNC, ignore_result=False)(run_sync_task)
    app.task(name=HELP_SPLIT, ignore_result=True)(help_split_task)
    return app


_apps: dict[str, Celery] = {}


def app_for(config: Config) -> Celery:
    """The app on ``config``'s broker, one per broker URL in this process."""
    if config.broker is None:
        raise ConfigError(
            config.source,
            "missing: crmhub worker and crmhub run --executor celery need a broker URL, "
            "e.g. broker: redis://127.0.0.1:6379/0",
            key_path="broker",
        )
    app = _apps.get(config.broker)
    if app is None:
        app = _apps[config.broker] = create_app(config.broker)
    return app


def _unreachable(app: Celery, exc: BaseException) -> BrokerError:
    return BrokerError(f"broker {mask_url(str(app.conf.broker_url))}: unreachable ({exc})")


def check_broker(app: Celery) -> None:
    """Raise :class:`BrokerError` unless the broker answers within a few seconds."""
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(
                max_retries=1, interval_start=0.5, timeout=CONNECT_TIMEOUT_SECONDS
            )
    except (OperationalError, OSError) as exc:
        raise _unreachable(app, exc) from None


# --------------------------------------------------------------------------------- the task


def _open(config_path: str, sync_name: str, failure: str) -> tuple[Config, Engine] | dict[str, Any]:
    """A task's config and state database; or, when either is unusable, the task's error
    result, logged with ``failure`` (``%s`` for the sync and the reason)."""
    try:
        config = load_config(Path(config_path))
        hide_secrets(config.secrets)
        if sync_name not in config.syncs:
            return _error(sync_name, f"unknown sync {sync_name!r} in {config_path}", _EXIT_CONFIG)
        return config, open_database(config.database)
    except (ConfigError, DatabaseError) as exc:
        log.error(failure, sync_name, exc, extra={"sync": sync_name})
        return _error(sync_name, str(exc), _EXIT_CONFIG)


def run_sync_task(config_path: str, sync_name: str) -> dict[str, Any]:
    """Run one sync; the report as a dict, or why it did not run (``status`` ``skipped`` or
    ``error`` with an ``exit_code``). Never raises for what a run can meet, so the task is
    acknowledged and not redelivered to fail the same way again."""
    about = {"sync": sync_name}
    opened = _open(config_path, sync_name, "sync %s not run: %s")
    if isinstance(opened, dict):
        return opened
    config, db = opened
    try:
        [report] = run_sync(
            db,
            config,
            [sync_name],
            splitter=lambda name: _splitter(config, name, _own_queue()),
            should_stop=_stop_requested,
        )
    except LeaseHeldError as exc:
        log.info("sync %s is running on another worker; skipped", sync_name, extra=about)
        return {"sync": sync_name, "status": "skipped", "reason": str(exc), "exit_code": 0}
    except MassDeleteError as exc:
        log.error("sync %s failed: %s", sync_name, exc, extra=about)
        return _error(sync_name, str(exc), _EXIT_FAILED)
    except ConnectorError as exc:
        log.error("sync %s failed: %s", sync_name, exc, extra=about)
        return _error(sync_name, str(exc), exc.exit_code)
    finally:
        db.dispose()
    return report.as_dict()


def _own_queue() -> str:
    """The queue the running task came from, where its split's tasks go too."""
    request = current_task.request if current_task else None
    delivery = getattr(request, "delivery_info", None) or {}
    return str(delivery.get("routing_key") or DEFAULT_QUEUE)


def _splitter(config: Config, sync_name: str, queue: str) -> Splitter:
    split = config.syncs[sync_name].split
    assert split is not None

    def start_tasks(object_type: str, run_id: int, owner: str) -> None:
        app = app_for(config)
        try:
            for _ in range(split.tasks):
                app.send_task(
                    HELP_SPLIT,
                    args=[str(config.source), sync_name, object_type, run_id, owner],
                    queue=queue,
                    ignore_result=True,
                )
        except (OperationalError, OSError) as exc:
            # The run sends every page itself, only slower.
            log.warning("split tasks of sync %s not enqueued: %s", sync_name, exc)

    return start_tasks


def help_split_task(
    config_path: str, sync_name: str, object_type: str, run_id: int, owner: str
) -> dict[str, Any]:
    """Reconcile pages of a split run (:meth:`hub.engine.SyncEngine.help`) until none is
    left or the run is over; what it sent, as a report dict. Never raises for what a run can
    meet: the run sends whatever such a task leaves."""
    about = {"sync": sync_name}
    opened = _open(config_path, sync_name, "split of sync %s not helped: %s")
    if isinstance(opened, dict):
        return opened
    config, db = opened
    try:
        engine = build_engine(
            db, config, config.syncs[sync_name], owner=owner, should_stop=_stop_requested
        )
        return engine.help(object_type, run_id).as_dict()
    except LeaseHeldError as exc:
        return {"sync": sync_name, "status": "skipped", "reason": str(exc), "exit_code": 0}
    except ConnectorError as exc:
        log.error("split of sync %s: %s", sync_name, exc, extra=about)
        return _error(sync_name, str(exc), exc.exit_code)
    finally:
        db.dispose()


def _error(sync_name: str, message: str, exit_code: int) -> dict[str, Any]:
    return {"sync": sync_name, "status": "error", "error": message, "exit_code": exit_code}


# ------------------------------------------------------------------------ enqueue and wait


@dataclass(frozen=True)
class Outcome:
    """What became of one enqueued run: its ``report`` when it ran, else ``skipped`` (running
    elsewhere) or an ``error``; ``exit_code`` as ``crmhub sync`` would exit."""

    sync: str
    report: RunReport | None = None
    skipped: bool = False
    error: str | None = None
    exit_code: int = 0

    @classmethod
    def from_result(cls, sync: str, value: Any) -> Outcome:
        if isinstance(value, BaseException):  # the task itself crashed: a bug, not a run
            return cls(sync, error=f"{type(value).__name__}: {value}", exit_code=_EXIT_FAILED)
        if value.get("status") == "skipped":
            return cls(sync, skipped=True)
        if value.get("status") == "error":
            return cls(sync, error=value["error"], exit_code=value["exit_code"])
        report = RunReport.from_dict(value)
        return cls(sync, report=report, exit_code=report.exit_code)


def enqueue(
    app: Celery,
    config_path: Path,
    names: Sequence[str],
    *,
    queue: str = DEFAULT_QUEUE,
    expires: datetime | None = None,
    keep_results: bool = True,
) -> list[AsyncResult]:
    """Send one ``crmhub.run_sync`` task per sync; a task not started by ``expires`` is
    dropped. Without ``keep_results`` nobody can wait for them (nor pays for storing them)."""
    try:
        return [
            app.send_task(
                RUN_SYNC,
                args=[str(config_path), name],
                queue=queue,
                expires=expires,
                ignore_result=not keep_results,
            )
            for name in names
        ]
    except (OperationalError, OSError) as exc:
        raise _unreachable(app, exc) from None


def wait_for(
    names: Sequence[str], results: Sequence[AsyncResult], *, timeout: float | None = None
) -> list[Outcome]:
    """Wait for every run, in order (each for at most ``timeout`` seconds; celery's
    ``TimeoutError`` past it); each run's outcome."""
    outcomes = []
    for name, result in zip(names, results, strict=True):
        try:
            value = result.get(timeout=timeout, propagate=False)
        except (OperationalError, OSError) as exc:
            raise _unreachable(result.app, exc) from None
        outcomes.append(Outcome.from_result(name, value))
    return outcomes


def enqueue_scheduled_sync(config_path: str, name: str, queue: str = DEFAULT_QUEUE) -> None:
    """The scheduler's job with ``--executor celery``: enqueue one run of the sync.

    The task expires at the sync's next scheduled time, when a fresh one is enqueued: a backlog
    (workers down, or busier than the schedules) never piles up more than one run per sync.
    Failures are logged, never raised: the daemon goes on and tries again next turn.
    """
    about = {"sync": name}
    try:
        config = load_config(Path(config_path))
        hide_secrets(config.secrets)
        app = app_for(config)
        schedule = config.syncs[name].schedule
        expires = schedule.next_after(datetime.now(UTC)) if schedule else None
        [result] = enqueue(
            app, config.source, [name], queue=queue, expires=expires, keep_results=False
        )
    except (ConfigError, BrokerError, KeyError) as exc:
        log.error("sync %s not enqueued: %s", name, exc, extra=about)
        return
    log.info("sync %s enqueued on queue %s (task %s)", name, queue, result.id, extra=about)


# ----------------------------------------------------------------------------- the worker


def run_worker(config: Config, *, concurrency: int, queues: Sequence[str]) -> int:
    """Run a Celery worker on the config's broker until SIGTERM or a first Ctrl-C (each running
    sync stops after its current page, reported as interrupted), or SIGQUIT or a second Ctrl-C
    (it stops at once; unacknowledged tasks go to other workers). Returns the worker's exit
    code."""
    global _shutting_down
    app = app_for(config)
    check_broker(app)
    _shutting_down = multiprocessing.Event()
    worker = app.Worker(
        hostname=f"crmhub-{os.getpid()}@{socket.gethostname()}",
        concurrency=concurrency,
        queues=list(queues),
        without_gossip=True,
        without_mingle=True,
        optimization="fair",
        quiet=True,
    )
    log.info(
        "worker %s: %d process(es) on queue(s) %s, broker %s",
        worker.hostname,
        concurrency,
        ", ".join(queues),
        mask_url(config.broker or ""),
    )
    worker.start()
    code: int = worker.exitcode or 0
    return code
