"""Opening the state database: a database from an earlier release is migrated in place."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command

from hub import db as hub_db
from hub.db import open_database


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
