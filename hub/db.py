"""Opens the state database and brings its schema up to date.

Public entry points: :func:`open_database`, :func:`upgrade_schema`, :class:`DatabaseError`.

SQLite is the default: a file, in WAL mode so readers (``crmhub status``, the dashboard) never
block a running sync, with a busy timeout so two processes wait for each other instead of
failing. PostgreSQL is used when the URL says so. The schema is always managed by Alembic, on
both, so a database made by an older crmhub is migrated rather than recreated. Processes that
open one database at once (two ``crmhub run`` daemons, workers) migrate it one at a time: an
advisory lock on PostgreSQL, a lock on the database file on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

MIGRATIONS = Path(__file__).parent / "migrations"


class DatabaseError(Exception):
    """The state database could not be opened or migrated; the message names the URL."""


def _alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def safe_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<malformed database URL>"


def open_database(url: str, *, upgrade: bool = True) -> Engine:
    """An engine on ``url`` whose schema is at the newest migration (unless ``upgrade`` is off)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(f"database: {safe_url(url)} is not a SQLAlchemy URL") from exc
    # orjson: JSON columns (base values, audit changes) are on every page's hot path.
    kwargs: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **kwargs)
    except Exception as exc:
        raise DatabaseError(f"database {safe_url(url)}: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _on_sqlite_connect)
    if upgrade:
        upgrade_schema(engine)
    return engine


# pg_advisory_lock key of crmhub's migrations: any constant of our own.
_MIGRATION_LOCK_KEY = 0x63726D687562  # "crmhub"


@contextmanager
def _migrating_alone(engine: Engine) -> Iterator[None]:
    """Hold the database's migration lock, so concurrent openers migrate one after another."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        return
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    import fcntl  # POSIX: crmhub's platforms

    # A file of its own, never the database: closing any handle on the database file drops
    # every POSIX lock this process's SQLite connections hold on it, which lets another
    # process write under them (a "database disk image is malformed" a scheduler met when it
    # opened the database again while its job store's connections were open).
    with open(f"{database}.migrate-lock", "ab") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        revision: str | None = MigrationContext.configure(connection).get_current_revision()
    return revision


def upgrade_schema(engine: Engine) -> None:
    """Run every Alembic migration the database has not had yet."""
    cfg = _alembic_config(engine)
    head = ScriptDirectory.from_config(cfg).get_current_head()
    try:
        # On SQLite even the first connection waits for the lock: it switches a new file to
        # WAL, which fails at once ("database is locked") while another opener is migrating.
        if engine.dialect.name != "sqlite" and _current_revision(engine) == head:
            return
        with _migrating_alone(engine):
            # Another process may have migrated while this one waited for the lock.
            if _current_revision(engine) == head:
                return
            command.upgrade(cfg, "head")
    except OperationalError as exc:
        raise DatabaseError(
            f"database {safe_url(str(engine.url))}: cannot open or migrate: {exc.orig}"
        ) from exc
