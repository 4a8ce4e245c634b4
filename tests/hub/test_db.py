"""Opening the state database: a database from an earlier release is migrated in place."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from hub import db as hub_db
from hub import store
from hub.db import open_database
from hub.tables import metadata


def test_a_database_at_the_first_revision_is_upgraded_and_keeps_its_cursors(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/state.db"
    old = open_database(url, upgrade=False)
    command.upgrade(hub_db._alembic_config(old), "0001")
    with old.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO cursors (sync, system, object_type, position, updated_at) "
                "VALUES ('main', 'hs', 'contacts', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
    old.dispose()

    engine = open_database(url)
    columns = {c["name"] for c in sa.inspect(engine).get_columns("cursors")}
    assert "swept_at" in columns
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT system, swept_at FROM cursors")).all()
    assert [tuple(row) for row in rows] == [("hs", None)]


def test_processes_opening_a_new_database_at_once_migrate_it_one_at_a_time(tmp_path: Path):
    # Two daemons started together on a new database: without the migration lock, one of them
    # failed with "table ... already exists".
    url = f"sqlite:///{tmp_path}/state.db"
    script = (
        "import sys; from hub.db import open_database; "
        f"open_database({url!r}).dispose(); print('ok')"
    )
    openers = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outputs = [opener.communicate(timeout=60)[0].strip() for opener in openers]
    assert outputs == ["ok"] * 4
    assert [opener.returncode for opener in openers] == [0] * 4
    tables = set(sa.inspect(open_database(url)).get_table_names())
    assert {"links", "cursors", "scheduler_jobs", "alembic_version"} <= tables


def test_the_migrations_build_the_schema_the_code_declares(tmp_path: Path):
    engine = open_database(f"sqlite:///{tmp_path}/state.db")
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_a_database_at_revision_0003_gains_the_rate_limits_table(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/state.db"
    old = open_database(url, upgrade=False)
    command.upgrade(hub_db._alembic_config(old), "0003")
    assert "rate_limits" not in sa.inspect(old).get_table_names()
    old.dispose()

    engine = open_database(url)
    seen = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    with engine.begin() as conn:
        store.save_rate_limits(conn, {"hs": {"daily": {"remaining": 7, "limit": 10}}}, seen)
    with engine.connect() as conn:
        assert store.stored_rate_limits(conn, ["hs"]) == {
            "hs": (seen, {"daily": {"remaining": 7, "limit": 10}})
        }
