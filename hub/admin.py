"""What an admin asks of the state store: runs, the audit log, conflicts, failed records.

Public entry points: :class:`AuditFilter`, :func:`audit_entries`, :func:`sync_status`,
:func:`list_conflicts`, :func:`resolve_conflict`, :func:`list_failed`, :func:`retry_failed`,
:func:`discard_failed`, :class:`AdminError`.

The CLI prints these; the dashboard will serve them. Nothing here talks to a vendor.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, or_, select, update

from hub import store
from hub.tables import audit_entries as audit_table
from hub.tables import conflicts, dead_letters, links, row_dict, runs, utcnow


class AdminError(Exception):
    """A request that names something that does not exist or cannot be done."""


@dataclass(frozen=True)
class AuditFilter:
    sync: str | None = None
    system: str | None = None
    object_type: str | None = None
    record: str | None = None  # a remote id or a canonical id
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    run_id: int | None = None
    limit: int | None = None


def audit_entries(db: Engine, wanted: AuditFilter) -> Iterator[dict[str, Any]]:
    """Audit entries matching the filter, oldest first, streamed."""
    t = audit_table
    query = select(t).order_by(t.c.id)
    if wanted.sync:
        query = query.where(t.c.sync == wanted.sync)
    if wanted.system:
        query = query.where(t.c.system == wanted.system)
    if wanted.object_type:
        query = query.where(t.c.object_type == wanted.object_type)
    if wanted.action:
        query = query.where(t.c.action == wanted.action)
    if wanted.run_id is not None:
        query = query.where(t.c.run_id == wanted.run_id)
    if wanted.since:
        query = query.where(t.c.at >= wanted.since)
    if wanted.until:
        query = query.where(t.c.at < wanted.until)
    if wanted.record:
        # A remote id names the canonical record it is linked to, so the log shows what
        # happened to that entity on every system, not only on the one named.
        linked_query = select(links.c.canonical_id).where(links.c.remote_id == wanted.record)
        if wanted.system:
            linked_query = linked_query.where(links.c.system == wanted.system)
        if wanted.object_type:
            linked_query = linked_query.where(links.c.object_type == wanted.object_type)
        with db.connect() as conn:
            linked = list(conn.execute(linked_query).scalars())
        query = query.where(
            or_(
                t.c.canonical_id == wanted.record,
                t.c.remote_id == wanted.record,
                t.c.canonical_id.in_(linked),
            )
        )
    if wanted.limit:
        # The newest N, still printed oldest first.
        newest = query.order_by(None).order_by(t.c.id.desc()).limit(wanted.limit).subquery()
        query = select(newest).order_by(newest.c.id)
    with db.connect() as conn:
        for row in conn.execute(query):
            entry = row_dict(row)
            entry["at"] = entry["at"].isoformat()
            yield entry


def sync_status(db: Engine, sync_names: list[str]) -> list[dict[str, Any]]:
    """Per sync: the last run, open conflicts and failed records."""
    result = []
    with db.connect() as conn:
        for name in sync_names:
            last = conn.execute(
                select(runs).where(runs.c.sync == name).order_by(runs.c.id.desc()).limit(1)
            ).first()
            open_conflicts, failed = store.open_counts(conn, name)
            entry: dict[str, Any] = {
                "sync": name,
                "open_conflicts": open_conflicts,
                "failed_records": failed,
                "last_run": None,
            }
            if last is not None:
                run = row_dict(last)
                duration = (
                    (run["finished_at"] - run["started_at"]).total_seconds()
                    if run["finished_at"]
                    else None
                )
                entry["last_run"] = {
                    "id": run["id"],
                    "started_at": run["started_at"].isoformat(),
                    "finished_at": run["finished_at"].isoformat() if run["finished_at"] else None,
                    "seconds": duration,
                    "status": run["status"],
                    "counts": _totals(run["counts"] or {}),
                    "error": run["error"],
                }
            result.append(entry)
    return result


def _totals(counts: dict[str, dict[str, dict[str, int]]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for systems in counts.values():
        for counter in systems.values():
            for what, n in counter.items():
                totals[what] = totals.get(what, 0) + n
    return totals


def list_conflicts(
    db: Engine, sync: str | None = None, *, include_settled: bool = False
) -> list[dict[str, Any]]:
    query = select(conflicts).order_by(conflicts.c.id)
    if sync:
        query = query.where(conflicts.c.sync == sync)
    if not include_settled:
        query = query.where(conflicts.c.status == "open")
    with db.connect() as conn:
        return [_iso(row_dict(row)) for row in conn.execute(query)]


def resolve_conflict(
    db: Engine, conflict_id: int, *, system: str | None = None, value: Any = None
) -> dict[str, Any]:
    """Settle an open conflict with one side's value or a typed value; the next run writes it
    to every system and audits it."""
    with db.begin() as conn:
        row = _conflict(conn, conflict_id)
        if row["status"] != "open":
            raise AdminError(f"conflict {conflict_id} is {row['status']}, not open")
        if system is not None:
            candidates = row["candidates"]
            if system not in candidates:
                raise AdminError(
                    f"conflict {conflict_id} has no value from {system!r} "
                    f"(it has: {', '.join(sorted(candidates))})"
                )
            value = candidates[system]["value"]
        conn.execute(
            update(conflicts)
            .where(conflicts.c.id == conflict_id)
            .values(status="resolved", resolution=value, winner=system, resolved_at=utcnow())
        )
        return _iso({**row, "status": "resolved", "resolution": value, "winner": system})


def _conflict(conn: Connection, conflict_id: int) -> dict[str, Any]:
    row = conn.execute(select(conflicts).where(conflicts.c.id == conflict_id)).first()
    if row is None:
        raise AdminError(f"no conflict with id {conflict_id}")
    return row_dict(row)


def list_failed(
    db: Engine, sync: str | None = None, *, include_closed: bool = False
) -> list[dict[str, Any]]:
    query = select(dead_letters).order_by(dead_letters.c.id)
    if sync:
        query = query.where(dead_letters.c.sync == sync)
    if not include_closed:
        query = query.where(dead_letters.c.status.in_(("open", "parked")))
    with db.connect() as conn:
        return [_iso(row_dict(row)) for row in conn.execute(query)]


def retry_failed(db: Engine, ids: list[int] | None) -> int:
    """Make failed records due for retry on the next run (all open or parked when ids is None)."""
    query = update(dead_letters).where(dead_letters.c.status.in_(("open", "parked")))
    if ids is not None:
        _require_ids(db, ids)
        query = query.where(dead_letters.c.id.in_(ids))
    with db.begin() as conn:
        return int(conn.execute(query.values(status="open", next_attempt_at=None)).rowcount)


def discard_failed(db: Engine, ids: list[int]) -> int:
    """Stop retrying these records; they stay in the table for the record."""
    _require_ids(db, ids)
    with db.begin() as conn:
        return int(
            conn.execute(
                update(dead_letters)
                .where(dead_letters.c.id.in_(ids), dead_letters.c.status.in_(("open", "parked")))
                .values(status="discarded")
            ).rowcount
        )


def _require_ids(db: Engine, ids: list[int]) -> None:
    with db.connect() as conn:
        found = set(
            conn.execute(select(dead_letters.c.id).where(dead_letters.c.id.in_(ids))).scalars()
        )
    missing = sorted(set(ids) - found)
    if missing:
        raise AdminError(f"no failed record with id {', '.join(map(str, missing))}")


def _iso(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in entry.items()}
