"""``crmhub run``: every sync on its schedule, until told to stop.

Public entry points: :func:`run_daemon`, :func:`run_due_once`, :func:`enqueue_due_once`,
:func:`run_scheduled_sync`, :class:`StandardCron`, :data:`EXECUTORS` and :data:`STOP`.

APScheduler runs one job per scheduled sync. Jobs live in the state database (table
``scheduler_jobs``), so a restarted daemon keeps their next run times; a sync never runs twice at
once in one process (``max_instances=1``) and runs missed while the daemon was down collapse into
one (``coalesce``). Across processes, the engine's lease row keeps two daemons on one database
from running the same sync at once: the second skips that turn.

SIGTERM or Ctrl-C sets :data:`STOP`: a running sync finishes and commits its current page, then
the daemon exits 0; the next start resumes from the cursors. ``--once`` runs every sync that is
due (never run, or its schedule's next time after its last run has passed) and exits, for cron
and containers.

The executor says where runs happen: ``inprocess`` (the default) runs them in this process;
``celery`` enqueues each run for ``crmhub worker`` processes (:mod:`hub.workers`), and with
``--once`` waits for them.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, func, select

from connectors.errors import ConnectorError
from hub.config import Config, ConfigError, Schedule, load_config
from hub.db import DatabaseError, open_database
from hub.engine import LeaseHeldError, MassDeleteError
from hub.logs import hide_secrets
from hub.report import RunReport
from hub.runtime import run_sync
from hub.tables import runs

if TYPE_CHECKING:
    from hub.workers import Outcome

__all__ = [
    "EXECUTORS",
    "STOP",
    "Executor",
    "StandardCron",
    "enqueue_due_once",
    "run_daemon",
    "run_due_once",
    "run_scheduled_sync",
]

log = logging.getLogger("crmhub.scheduler")

# Set when the process is asked to stop: every running sync finishes its page and returns.
STOP = threading.Event()

JOBS_TABLE = "scheduler_jobs"

Executor: TypeAlias = Literal["inprocess", "celery"]
EXECUTORS: tuple[Executor, ...] = ("inprocess", "celery")


class StandardCron(BaseTrigger):  # type: ignore[misc]
    """A 5-field cron line with standard crontab meaning (0 and 7 are Sunday).

    APScheduler's own ``CronTrigger.from_crontab`` counts weekdays from Monday; this trigger
    asks :meth:`hub.config.Schedule.next_after` instead. Picklable, for the job store.
    """

    def __init__(self, expression: str) -> None:
        self.expression = expression

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        schedule = Schedule(kind="cron", cron=self.expression)
        return schedule.next_after(max(now, previous_fire_time or now))

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 1, "expression": self.expression}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.expression = state["expression"]

    def __str__(self) -> str:
        return f"cron[{self.expression}]"


def _trigger(schedule: Schedule) -> BaseTrigger:
    if schedule.kind == "interval":
        assert schedule.seconds is not None
        return IntervalTrigger(seconds=schedule.seconds, timezone=UTC)
    assert schedule.cron is not None
    return StandardCron(schedule.cron)


def run_scheduled_sync(config_path: str, name: str) -> RunReport | None:
    """One run of one sync, as the scheduler starts it; failures are logged, never raised
    (the daemon goes on with its other syncs and the next turn). The engine logs the run's
    outcome."""
    about = {"sync": name}
    try:
        config = load_config(Path(config_path))
        hide_secrets(config.secrets)
        db = open_database(config.database)
    except (ConfigError, DatabaseError) as exc:
        log.error("sync %s not run: %s", name, exc, extra=about)
        return None
    try:
        [report] = run_sync(db, config, [name], should_stop=STOP.is_set)
    except LeaseHeldError:
        log.info("sync %s is running in another process; this turn is skipped", name, extra=about)
        return None
    except (MassDeleteError, ConnectorError) as exc:
        log.error("sync %s failed: %s", name, exc, extra=about)
        return None
    finally:
        db.dispose()
    return report


def _scheduled(config: Config, names: Sequence[str] | None) -> dict[str, Schedule]:
    chosen = {
        name: sync.schedule
        for name, sync in config.syncs.items()
        if sync.schedule is not None and (not names or name in names)
    }
    if not chosen:
        raise ConfigError(
            config.source,
            "no sync has a schedule: give one a 'schedule:' (5m, or a cron line), or run it "
            "with crmhub sync",
            key_path="syncs",
        )
    return chosen


def _last_starts(db: Engine) -> dict[str, datetime]:
    with db.connect() as conn:
        rows = conn.execute(select(runs.c.sync, func.max(runs.c.started_at)).group_by(runs.c.sync))
        return {sync: started for sync, started in rows if started is not None}


def _scheduled_syncs(
    config_path: Path, names: Sequence[str] | None
) -> tuple[Config, dict[str, Schedule], dict[str, datetime]]:
    """The config, its scheduled syncs (those named, when names are given) and when each
    last started."""
    config = load_config(config_path)
    scheduled = _scheduled(config, names)
    db = open_database(config.database)
    try:
        return config, scheduled, _last_starts(db)
    finally:
        db.dispose()


def _due(schedule: Schedule, last_start: datetime | None, now: datetime) -> bool:
    return last_start is None or schedule.next_after(last_start) <= now


def _due_now(
    scheduled: dict[str, Schedule], last: dict[str, datetime], now: datetime | None
) -> list[str]:
    moment = now or datetime.now(UTC)
    due = []
    for name, schedule in scheduled.items():
        if _due(schedule, last.get(name), moment):
            due.append(name)
        else:
            log.info(
                "sync %s is not due until %s",
                name,
                schedule.next_after(last[name]),
                extra={"sync": name},
            )
    return due


def run_due_once(
    config_path: Path, names: Sequence[str] | None = None, *, now: datetime | None = None
) -> list[RunReport]:
    """Run every scheduled sync that is due, one after the other; the reports of those run."""
    config, scheduled, last = _scheduled_syncs(config_path, names)
    reports: list[RunReport] = []
    for name in _due_now(scheduled, last, now):
        if STOP.is_set():
            break
        report = run_scheduled_sync(str(config.source), name)
        if report is not None:
            reports.append(report)
    return reports


def enqueue_due_once(
    config_path: Path,
    names: Sequence[str] | None = None,
    *,
    queue: str | None = None,
    now: datetime | None = None,
) -> list[Outcome]:
    """Enqueue every scheduled sync that is due for the Celery workers and wait for them all;
    each run's outcome, in the config's order."""
    from hub.workers import DEFAULT_QUEUE, app_for, check_broker, enqueue, wait_for

    config, scheduled, last = _scheduled_syncs(config_path, names)
    app = app_for(config)
    check_broker(app)
    due = _due_now(scheduled, last, now)
    results = enqueue(app, config.source, due, queue=queue or DEFAULT_QUEUE)
    if due:
        log.info("enqueued %s; waiting for the workers", ", ".join(due))
    return wait_for(due, results)


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("%s: finishing the current page, then stopping", signal.Signals(signum).name)
        STOP.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_daemon(
    config_path: Path,
    names: Sequence[str] | None = None,
    *,
    executor: Executor = "inprocess",
    queue: str | None = None,
) -> int:
    """Run the scheduled syncs until SIGTERM or Ctrl-C (:data:`STOP`); 0 after a clean stop.

    With the ``celery`` executor each turn enqueues the run for the workers instead."""
    config, scheduled, last = _scheduled_syncs(config_path, names)
    job_function: Callable[..., Any] = run_scheduled_sync
    job_args: list[str] = []
    if executor == "celery":
        from hub.workers import DEFAULT_QUEUE, app_for, check_broker, enqueue_scheduled_sync

        check_broker(app_for(config))
        job_function, job_args = enqueue_scheduled_sync, [queue or DEFAULT_QUEUE]
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=config.database, tablename=JOBS_TABLE)},
        executors={"default": ThreadPoolExecutor(max_workers=len(scheduled))},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone=UTC,
    )
    with _stop_on_signals():
        scheduler.start()
        # Jobs of syncs no longer scheduled (renamed, unscheduled) would otherwise run on.
        for job in scheduler.get_jobs():
            if job.id not in scheduled:
                scheduler.remove_job(job.id)
        now = datetime.now(UTC)
        for name, schedule in scheduled.items():
            # Due (or never run): at once; otherwise at the schedule's next time.
            due = _due(schedule, last.get(name), now)
            first = now if due else schedule.next_after(last[name])
            scheduler.add_job(
                job_function,
                _trigger(schedule),
                args=[str(config.source), name, *job_args],
                id=name,
                name=f"sync {name} ({schedule})",
                replace_existing=True,
                next_run_time=first,
            )
            log.info(
                "sync %s scheduled %s; next run %s",
                name,
                schedule,
                first.isoformat(),
                extra={"sync": name, "next_run": first.isoformat()},
            )
        while not STOP.wait(0.5):
            pass
        # Running syncs see STOP, finish their page and return; then the process exits.
        scheduler.shutdown(wait=True)
    log.info("stopped")
    return 0
