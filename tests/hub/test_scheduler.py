"""``crmhub run``: syncs on their schedules, once or as a daemon that stops cleanly."""

from __future__ import annotations

import itertools
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.config import Schedule
from hub.scheduler import StandardCron
from hub.tables import runs as runs_table
from tests.conftest import _POSTGRES_SKIP, POSTGRES_URL
from tests.hub.test_cli import cli, seed, write_config

pytestmark = pytest.mark.slow

CRMHUB = Path(sys.executable).parent / "crmhub"


def runs(folder: Path) -> list[tuple[str, str, str | None, str]]:
    """The runs recorded so far; none while the daemon has not yet made the database."""
    with sqlite3.connect(folder / "state.db") as db:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'runs'").fetchone():
            return []
        return db.execute("SELECT sync, started_at, finished_at, status FROM runs").fetchall()


def test_standard_cron_counts_weekdays_as_crontab_does() -> None:
    # "1" is Monday in crontab (APScheduler's from_crontab would read it as Tuesday).
    trigger = StandardCron("30 6 * * 1")
    friday = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    fire = trigger.get_next_fire_time(None, friday)
    assert fire == datetime(2026, 11, 30, 6, 30, tzinfo=UTC)
    assert fire.strftime("%A") == "Monday"
    assert fire == Schedule.parse("30 6 * * 1").next_after(friday)


def test_once_runs_what_is_due_and_then_nothing_until_the_schedule_says(tmp_path: Path) -> None:
    config = write_config(tmp_path, sync_extra="    schedule: 1h\n")
    seed(tmp_path)
    first = cli(config, "run", "--once", "--json")
    assert first.exit_code == 0, first.output
    [report] = json.loads(first.stdout)
    assert report["sync"] == "main"
    assert report["counts"]["contacts"]["b"]["created"] == 2
    again = cli(config, "run", "--once", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == []  # an hour has not passed
    assert len(runs(tmp_path)) == 1


def test_run_without_any_schedule_says_what_to_do(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = cli(config, "run", "--once")
    assert result.exit_code == 2
    assert "no sync has a schedule" in result.stderr
    assert "crmhub sync" in result.stderr


def test_the_daemon_runs_on_schedule_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    config = write_config(tmp_path, sync_extra="    schedule: 1s\n")
    seed(tmp_path)
    daemon = subprocess.Popen(
        [str(CRMHUB), "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while len(runs(tmp_path)) < 3:
            assert daemon.poll() is None, daemon.stderr.read() if daemon.stderr else ""
            if time.monotonic() > deadline:
                daemon.kill()
                _, said = daemon.communicate()
                raise AssertionError(f"the daemon did not run three times in 30 s:\n{said}")
            time.sleep(0.2)
    finally:
        daemon.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        code = daemon.wait(timeout=15)
    assert code == 0
    assert time.monotonic() - stopped < 10
    done = runs(tmp_path)
    assert all(status != "running" for _, _, _, status in done)
    _, stderr = daemon.communicate()
    assert "sync main scheduled every 1s" in stderr
    assert "SIGTERM" in stderr
    with sqlite3.connect(tmp_path / "state.db") as db:
        [(job_id,)] = db.execute("SELECT id FROM scheduler_jobs").fetchall()
    assert job_id == "main"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new state database's URL: a SQLite file, or a private PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/state.db"
        return
    if _POSTGRES_SKIP:
        pytest.skip(_POSTGRES_SKIP)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.engine.make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_two_daemons_on_one_database_never_run_a_sync_at_once(
    tmp_path: Path, database_url: str
) -> None:
    config = write_config(tmp_path, sync_extra="    schedule: 1s\n")
    text = config.read_text(encoding="utf-8").replace("sqlite:///state.db", database_url)
    config.write_text(text, encoding="utf-8")
    seed(tmp_path)
    daemons = [
        subprocess.Popen(
            [str(CRMHUB), "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    # Both daemons read their stderr on threads, so a full pipe never blocks them.
    said: list[list[str]] = [[], []]
    readers = [
        threading.Thread(target=lambda d=d, lines=lines: lines.extend(d.stderr), daemon=True)
        for d, lines in zip(daemons, said, strict=True)
    ]
    for reader in readers:
        reader.start()
    engine = sa.create_engine(database_url)

    def finished_runs() -> list[tuple[datetime, datetime]]:
        query = sa.select(runs_table.c.started_at, runs_table.c.finished_at)
        try:
            with engine.connect() as conn:
                rows = conn.execute(query.where(runs_table.c.finished_at.is_not(None))).all()
        except sa.exc.DBAPIError:  # the daemons have not made the tables yet
            return []
        return [(started, finished) for started, finished in rows]

    try:
        # Both daemons scheduled the sync (so both contend for it) and it ran a few times.
        deadline = time.monotonic() + 60
        while not (
            all(any("scheduled" in x for x in lines) for lines in said)
            and len(finished_runs()) >= 4
        ):
            assert all(d.poll() is None for d in daemons), said
            assert time.monotonic() < deadline, f"no four runs by two daemons in 60 s: {said}"
            time.sleep(0.2)
    finally:
        for daemon in daemons:
            daemon.send_signal(signal.SIGTERM)
        codes = [daemon.wait(timeout=15) for daemon in daemons]
    for reader in readers:
        reader.join(timeout=5)
    assert codes == [0, 0], said
    rows = finished_runs()
    engine.dispose()
    spans = sorted(rows)
    assert len(spans) >= 4
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end - timedelta(milliseconds=1), "two runs of one sync overlapped"
