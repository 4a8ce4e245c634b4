"""Rows a page commits through the store's fast insert are stored exactly as SQLAlchemy would
store them: times compare and sort in SQL, and read back as the same instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from hub.store import Link, bulk_insert, links_by_remote
from hub.tables import links

EAST = timezone(timedelta(hours=2))


def _link(remote_id: str, modified_at: datetime, linked_at: datetime) -> dict[str, Any]:
    return {
        "sync": "s",
        "object_type": "contacts",
        "canonical_id": f"c-{remote_id}",
        "system": "a",
        "remote_id": remote_id,
        "remote_modified_at": modified_at,
        "remote_hash": "h",
        "rule": "new record from a",
        "linked_at": linked_at,
        "updated_at": linked_at,
    }


@pytest.mark.parametrize(
    "modified_at",
    [
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 60, tzinfo=UTC),
        datetime(2026, 1, 2, 5, 4, 5, 123456, tzinfo=EAST),
    ],
    ids=["whole second", "microseconds", "another offset"],
)
def test_fast_inserts_store_what_sqlalchemy_stores(db: Engine, modified_at: datetime) -> None:
    linked_at = datetime(2026, 1, 2, 9, 0, tzinfo=UTC)
    with db.begin() as conn:
        bulk_insert(conn, links, [_link("fast", modified_at, linked_at)])
        conn.execute(insert(links), [_link("plain", modified_at, linked_at)])
    columns = [c for c in links.columns if c.name not in ("id", "remote_id", "canonical_id")]
    with db.connect() as conn:
        fast, plain = (
            conn.execute(select(*columns).where(links.c.remote_id == remote_id)).one()
            for remote_id in ("fast", "plain")
        )
        if db.dialect.name == "sqlite":
            raw = conn.exec_driver_sql(
                "SELECT remote_modified_at, linked_at, detached FROM links ORDER BY remote_id"
            ).all()
            assert raw[0] == raw[1]
    assert fast == plain
    assert fast.remote_modified_at == modified_at
    assert fast.detached is False


def test_links_read_back_by_remote_id_as_they_were_written(db: Engine) -> None:
    linked_at = datetime(2026, 1, 2, 9, 0, tzinfo=UTC)
    rows = [
        _link("1", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), linked_at),
        _link("2", datetime(2026, 1, 2, 3, 4, 5, 60, tzinfo=UTC), linked_at),
        {**_link("3", linked_at, linked_at), "remote_modified_at": None, "detached": True},
    ]
    with db.begin() as conn:
        bulk_insert(conn, links, rows)
    with db.connect() as conn:
        found = links_by_remote(conn, "s", "contacts", "a", ["1", "2", "3", "4"])
    assert sorted(found) == ["1", "2", "3"]
    for row in rows:
        link = found[row["remote_id"]]
        assert link == Link(
            row["canonical_id"],
            "a",
            row["remote_id"],
            row["remote_modified_at"],
            "h",
            row.get("detached", False),
        )
    assert found["2"].remote_modified_at is not None
    assert found["2"].remote_modified_at.tzinfo is not None
