"""Fixtures shared by every test: state databases on SQLite and, where it runs, PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from hub.db import open_database

POSTGRES_URL = os.environ.get(
    "CRMHUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_reason() -> str | None:
    try:
        engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:  # any failure to connect means: skip, and say why
        return (
            f"PostgreSQL not reachable at {POSTGRES_URL} ({type(exc).__name__}); "
            "set CRMHUB_TEST_POSTGRES_URL to run these tests"
        )
    return None


_POSTGRES_SKIP = _postgres_reason()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Iterator[Engine]:
    """A fresh, migrated state database: a SQLite file, or a private PostgreSQL schema."""
    if request.param == "sqlite":
        engine = open_database(f"sqlite:///{tmp_path}/state.db")
        yield engine
        engine.dispose()
        return
    if _POSTGRES_SKIP:
        pytest.skip(_POSTGRES_SKIP)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.engine.make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    engine = open_database(url.render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_db(tmp_path: os.PathLike[str]) -> Iterator[Engine]:
    """A SQLite state database, for tests whose subject is not the database."""
    engine = open_database(f"sqlite:///{tmp_path}/state.db")
    yield engine
    engine.dispose()
