"""What an admin asks of the state store: runs, the audit log, conflicts, failed records.

Public entry points: :class:`AuditFilter`, :func:`audit_entries`, :func:`sync_status`,
:func:`rate_limit_headroom`, :func:`list_conflicts`, :func:`resolve_conflict`,
:func:`list_failed`, :func:`retry_failed`, :func:`discard_failed`, :func:`record_links`,
:class:`AdminError`, :class:`NotFoundError`; for the dashboard also :func:`sync_overview`,
:func:`list_runs`, :func:`get_run`, :func:`run_statistics`, :func:`get_audit_entry`,
:func:`waiting_counts`, :func:`record_view`, :func:`find_records`; and for both,
:func:`parse_moment` (a log filter's time) and :func:`next_run_at`.

The CLI prints these and the dashboard serves them. Nothing here talks to a vendor.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from textwrap import shorten
from typing import Any

from sqlalchemy import Connection, Engine, and_, distinct, func, or_, select, union, update

from hub import audit, store
from hub.config import Schedule, SyncConfig
from hub.tables import audit_entries as audit_table
from hub.tables import (
    canonical_records,
    conflicts,
    dead_letters,
    links,
    row_dict,
    runs,
    utcnow,
)


class AdminError(Exception):
    """A request that names something that does not exist or cannot be done."""


class NotFoundError(AdminError):
    """A request that names a run, audit entry, conflict, failed record or canonical record
    that does not exist."""


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
                entry["last_run"] = _run_summary(row_dict(last))
            result.append(entry)
    return result


def migration_names(db: Engine, configured: Sequence[str]) -> list[str]:
    """The syncs ``crmhub migrate`` ran (``migrate-A-to-B``), which no config names."""
    with db.connect() as conn:
        names = conn.execute(
            select(runs.c.sync).where(runs.c.sync.like("migrate-%-to-%")).distinct()
        ).scalars()
        return sorted(name for name in names if name not in configured)


def rate_limit_headroom(db: Engine, systems: Sequence[str]) -> dict[str, dict[str, Any] | None]:
    """Per system, its rate-limit headroom as its vendor last reported it:
    ``{"observed_at": iso, "budgets": {name: figures}}`` (figures as
    :class:`connectors.base.Headroom`), or None when no run has heard any from its vendor."""
    with db.connect() as conn:
        stored = store.stored_rate_limits(conn, systems)
    return {
        system: (
            {"observed_at": stored[system][0].isoformat(), "budgets": stored[system][1]}
            if system in stored
            else None
        )
        for system in systems
    }


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
        now = utcnow()
        chosen = f"{system}'s value" if system is not None else "a value they typed"
        # The audit append first: it takes the chain's lock, which a sync's page commit takes
        # before it touches conflicts, so the two never wait for each other in a cycle.
        store.append_audit(
            conn,
            [
                {
                    "at": now,
                    "run_id": None,
                    "sync": row["sync"],
                    "system": system,
                    "object_type": row["object_type"],
                    "remote_id": None,
                    "canonical_id": row["canonical_id"],
                    "action": "choose",
                    "changes": {row["field"]: [row["base"], value]},
                    "reason": f"conflict {conflict_id}: a person chose {chosen}; "
                    "the next run writes it",
                }
            ],
        )
        chose = conn.execute(
            update(conflicts)
            .where(conflicts.c.id == conflict_id, conflicts.c.status == "open")
            .values(status="resolved", resolution=value, winner=system, resolved_at=now)
        )
        if not chose.rowcount:
            raise AdminError(f"conflict {conflict_id} was settled meanwhile; nothing changed")
        return _iso({**row, "status": "resolved", "resolution": value, "winner": system})


def _conflict(conn: Connection, conflict_id: int) -> dict[str, Any]:
    row = conn.execute(select(conflicts).where(conflicts.c.id == conflict_id)).first()
    if row is None:
        raise NotFoundError(f"no conflict with id {conflict_id}")
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
    """Make failed records due for retry on the next run (all open or parked when ids is
    None); each one is audited as ``retry``."""
    if ids is not None:
        _require_ids(db, ids)
    return _act_on_failed(
        db,
        ids,
        action="retry",
        what="a person asked for failed record {id} ({stage}) to be tried again on the next run",
        status="open",
        next_attempt_at=None,
    )


def discard_failed(db: Engine, ids: list[int]) -> int:
    """Stop retrying these records; they stay in the table for the record, and each one is
    audited as ``discard``."""
    _require_ids(db, ids)
    return _act_on_failed(
        db,
        ids,
        action="discard",
        what="a person discarded failed record {id} ({stage}): it is no longer retried",
        status="discarded",
    )


# How much of a failed record's own reason its audit entry repeats.
_FAILED_REASON_CHARS = 200


def _act_on_failed(
    db: Engine, ids: list[int] | None, *, action: str, what: str, **values: Any
) -> int:
    """Set ``values`` on the open or parked failed records (those of ``ids``, or all), and audit
    each one that changed, in one transaction, saying ``what`` (with ``{id}`` and ``{stage}``)
    and why it had failed."""
    query = update(dead_letters).where(dead_letters.c.status.in_(("open", "parked")))
    if ids is not None:
        query = query.where(dead_letters.c.id.in_(ids))
    with db.begin() as conn:
        # The chain's lock first, as a sync's page commit takes it before it closes failures.
        audit.take_append_lock(conn)
        changed = conn.execute(
            query.values(**values).returning(
                dead_letters.c.id,
                dead_letters.c.sync,
                dead_letters.c.system,
                dead_letters.c.object_type,
                dead_letters.c.remote_id,
                dead_letters.c.canonical_id,
                dead_letters.c.stage,
                dead_letters.c.reason,
            )
        ).all()
        now = utcnow()
        store.append_audit(
            conn,
            [
                {
                    "at": now,
                    "run_id": None,
                    "sync": row.sync,
                    "system": row.system,
                    "object_type": row.object_type,
                    "remote_id": row.remote_id,
                    "canonical_id": row.canonical_id,
                    "action": action,
                    "changes": None,
                    "reason": what.format(id=row.id, stage=row.stage)
                    + f". It failed: {shorten(row.reason, _FAILED_REASON_CHARS, placeholder=' …')}",
                }
                for row in sorted(changed, key=lambda row: row.id)
            ],
        )
        return len(changed)


def _require_ids(db: Engine, ids: list[int]) -> None:
    with db.connect() as conn:
        found = set(
            conn.execute(select(dead_letters.c.id).where(dead_letters.c.id.in_(ids))).scalars()
        )
    missing = sorted(set(ids) - found)
    if missing:
        raise NotFoundError(f"no failed record with id {', '.join(map(str, missing))}")


def _iso(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in entry.items()}


def _run_summary(run: dict[str, Any]) -> dict[str, Any]:
    """A run row as the CLI and the dashboard show it: times, outcome and total counts."""
    finished = run["finished_at"]
    return {
        "id": run["id"],
        "started_at": run["started_at"].isoformat(),
        "finished_at": finished.isoformat() if finished else None,
        "seconds": (finished - run["started_at"]).total_seconds() if finished else None,
        "status": run["status"],
        "counts": _totals(run["counts"] or {}),
        "error": run["error"],
    }


# --------------------------------------------------------------------------- dashboard reads

# Failed records that still need something: retried by the engine (open) or by a person (parked).
STILL_FAILING = ("open", "parked")
# A scheduled sync whose run is later than this behind its time has no daemon running it.
OVERDUE_AFTER = timedelta(minutes=5)

_AGE = re.compile(r"^(\d+)([mhdw])$")
_AGE_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_moment(text: str, now: datetime | None = None) -> datetime:
    """A moment as a person types it into a log filter: an ISO date or date/time (UTC unless
    it names a zone) or an age before ``now`` such as ``30m``, ``2h``, ``7d``, ``1w``.

    Raises ValueError naming what was typed."""
    age = _AGE.match(text)
    if age:
        span = {_AGE_UNITS[age.group(2)]: int(age.group(1))}
        return (now or utcnow()) - timedelta(**span)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a date/time (2026-01-31T12:00) nor an age like 2h"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def next_run_at(
    schedule: Schedule | None, last_started: datetime | None, now: datetime
) -> datetime | None:
    """When ``crmhub run`` runs a sync next: None for a sync without a schedule; ``now`` when
    it is due (never run, or its time has passed); else its schedule's next time after the
    last run began."""
    if schedule is None:
        return None
    if last_started is None:
        return now
    upcoming = schedule.next_after(last_started)
    return upcoming if upcoming > now else now


def sync_overview(
    db: Engine, syncs: Mapping[str, SyncConfig], now: datetime | None = None
) -> list[dict[str, Any]]:
    """Per configured sync, :func:`sync_status` plus its ``schedule`` (text or None),
    ``next_run`` (iso or None, as :func:`next_run_at`), ``records`` (canonical records
    ``total``, ``in_sync``, ``in_conflict``; failed records ``failing``, parked ones included)
    and ``health``: ``never run``, ``running``, ``failing`` (the last run failed or reached
    only some systems), ``overdue`` (scheduled, and more than :data:`OVERDUE_AFTER` late),
    ``attention`` (conflicts or failed records wait, or the last run was interrupted) or
    ``healthy``."""
    now = now or utcnow()
    rows = sync_status(db, list(syncs))
    with db.connect() as conn:
        for row in rows:
            schedule = syncs[row["sync"]].schedule
            last = row["last_run"]
            started = datetime.fromisoformat(last["started_at"]) if last else None
            upcoming = next_run_at(schedule, started, now)
            late = (
                schedule is not None
                and started is not None
                and schedule.next_after(started) < now - OVERDUE_AFTER
            )
            row["schedule"] = str(schedule) if schedule else None
            row["next_run"] = upcoming.isoformat() if upcoming else None
            row["records"] = _record_counts(conn, row["sync"])
            row["health"] = _health(last, row["records"], late)
    return rows


def _health(last_run: dict[str, Any] | None, records: dict[str, int], late: bool) -> str:
    if last_run is None:
        return "never run"
    if last_run["status"] == "running":
        return "running"
    if last_run["status"] in ("failed", "partial"):
        return "failing"
    if late:
        return "overdue"
    if records["in_conflict"] or records["failing"] or last_run["status"] != "succeeded":
        return "attention"
    return "healthy"


def _record_counts(conn: Connection, sync: str) -> dict[str, int]:
    live = and_(canonical_records.c.sync == sync, canonical_records.c.deleted.is_(False))
    open_conflict = and_(conflicts.c.sync == sync, conflicts.c.status == "open")
    failing = and_(dead_letters.c.sync == sync, dead_letters.c.status.in_(STILL_FAILING))
    # A record with a conflict and a failure is out of sync once, not twice.
    troubled = union(
        select(conflicts.c.canonical_id).where(open_conflict),
        select(dead_letters.c.canonical_id).where(
            failing, dead_letters.c.canonical_id.is_not(None)
        ),
    ).subquery()

    def count(query: Any) -> int:
        return int(conn.execute(query).scalar_one())

    total = count(select(func.count()).select_from(canonical_records).where(live))
    out_of_sync = count(
        select(func.count())
        .select_from(troubled)
        .join(canonical_records, canonical_records.c.id == troubled.c.canonical_id)
        .where(live)
    )
    return {
        "total": total,
        "in_sync": total - out_of_sync,
        "in_conflict": count(
            select(func.count(distinct(conflicts.c.canonical_id))).where(open_conflict)
        ),
        "failing": count(select(func.count()).select_from(dead_letters).where(failing)),
    }


def list_runs(
    db: Engine, sync: str | None = None, *, limit: int | None = 50, after_id: int | None = None
) -> list[dict[str, Any]]:
    """Runs, newest first: at most ``limit`` (None: all), only of ``sync`` and only those
    after run ``after_id`` when given. Each is as ``last_run`` in :func:`sync_status`, with
    its ``sync``."""
    query = select(runs).order_by(runs.c.id.desc())
    if sync:
        query = query.where(runs.c.sync == sync)
    if after_id is not None:
        query = query.where(runs.c.id > after_id)
    if limit is not None:
        query = query.limit(limit)
    with db.connect() as conn:
        return [{"sync": row.sync, **_run_summary(row_dict(row))} for row in conn.execute(query)]


def get_run(db: Engine, run_id: int) -> dict[str, Any]:
    """One run as in :func:`list_runs`, plus ``by_object``: its counts per object type and
    system (``{object: {system: {what: n}}}``)."""
    with db.connect() as conn:
        row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
    if row is None:
        raise NotFoundError(f"no run with id {run_id}")
    run = row_dict(row)
    return {"sync": run["sync"], **_run_summary(run), "by_object": run["counts"] or {}}


def run_statistics(db: Engine) -> list[dict[str, Any]]:
    """Per sync and run status: how many runs ended so (``runs``) and when the last of them
    finished (``last_finished_at``, a datetime or None while it runs)."""
    query = select(
        runs.c.sync,
        runs.c.status,
        func.count().label("runs"),
        func.max(runs.c.finished_at).label("last_finished_at"),
    ).group_by(runs.c.sync, runs.c.status)
    with db.connect() as conn:
        return [row_dict(row) for row in conn.execute(query)]


def get_audit_entry(db: Engine, entry_id: int) -> dict[str, Any]:
    """One audit entry, as :func:`audit_entries` yields it."""
    with db.connect() as conn:
        row = conn.execute(select(audit_table).where(audit_table.c.id == entry_id)).first()
    if row is None:
        raise NotFoundError(f"no audit entry with id {entry_id}")
    return _iso(row_dict(row))


def waiting_counts(db: Engine) -> dict[str, int]:
    """Across every sync: ``conflicts`` waiting for a person and records ``failing`` (open
    or parked)."""
    with db.connect() as conn:
        waiting = conn.execute(
            select(func.count()).select_from(conflicts).where(conflicts.c.status == "open")
        ).scalar_one()
        failing = conn.execute(
            select(func.count())
            .select_from(dead_letters)
            .where(dead_letters.c.status.in_(STILL_FAILING))
        ).scalar_one()
    return {"conflicts": int(waiting), "failing": int(failing)}


# --------------------------------------------------------------------------- links

# The audit actions that make a link: found by a match rule, created by crmhub, or moved to the
# record a vendor merged it into.
LINKING_ACTIONS = ("link", "create", "relink")


def record_links(
    db: Engine, system: str, remote_id: str, object_type: str | None = None
) -> list[dict[str, Any]]:
    """The canonical record a system's record is linked to, with every record linked to it.

    One dict per canonical record the remote id names (one per sync and object type it is
    linked in; ``object_type`` narrows): ``sync``, ``object_type``, ``canonical_id``,
    ``deleted``, ``created_at``, ``updated_at``, ``base`` (the field values every system last
    agreed on) and ``links``, one per system: ``system``, ``remote_id``, ``rule`` (why it was
    linked), ``linked_at``, ``updated_at``, ``remote_modified_at``, ``detached`` (that system
    deliberately holds no copy), ``named`` (the record asked about) and ``audit``, the entry
    that linked it (``id``, ``at``, ``run_id``, ``action``, ``reason``; None once pruned).
    Times are ISO strings. Raises :class:`NotFoundError` when nothing is linked under that id.
    """
    named = select(links.c.sync, links.c.object_type, links.c.canonical_id).where(
        links.c.system == system, links.c.remote_id == remote_id
    )
    if object_type:
        named = named.where(links.c.object_type == object_type)
    with db.connect() as conn:
        owners = conn.execute(named.order_by(links.c.sync, links.c.object_type)).all()
        if not owners:
            raise NotFoundError(
                f"no {object_type or 'record'} {remote_id!r} of system {system!r} is linked"
            )
        found = []
        for sync, kind, canonical_id in owners:
            record = conn.execute(
                select(canonical_records).where(canonical_records.c.id == canonical_id)
            ).first()
            linked = conn.execute(
                select(links)
                .where(
                    links.c.sync == sync,
                    links.c.object_type == kind,
                    links.c.canonical_id == canonical_id,
                )
                .order_by(links.c.linked_at, links.c.system)
            ).all()
            linked_by = _linking_entries(conn, canonical_id)
            found.append(
                {
                    "sync": sync,
                    "object_type": kind,
                    "canonical_id": canonical_id,
                    "deleted": bool(record.deleted) if record else None,
                    "created_at": record.created_at.isoformat() if record else None,
                    "updated_at": record.updated_at.isoformat() if record else None,
                    "base": dict(record.base) if record else None,
                    "links": [
                        {
                            "system": link.system,
                            "remote_id": link.remote_id,
                            "rule": link.rule,
                            "linked_at": link.linked_at.isoformat(),
                            "updated_at": link.updated_at.isoformat(),
                            "remote_modified_at": (
                                link.remote_modified_at.isoformat()
                                if link.remote_modified_at
                                else None
                            ),
                            "detached": bool(link.detached),
                            "named": link.system == system and link.remote_id == remote_id,
                            "audit": linked_by.get((link.system, link.remote_id)),
                        }
                        for link in linked
                    ],
                }
            )
    return found


def _linking_entries(conn: Connection, canonical_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The newest audit entry that linked each (system, remote id) to this canonical record."""
    rows = conn.execute(
        select(
            audit_table.c.id,
            audit_table.c.at,
            audit_table.c.run_id,
            audit_table.c.system,
            audit_table.c.remote_id,
            audit_table.c.action,
            audit_table.c.reason,
        )
        .where(
            audit_table.c.canonical_id == canonical_id,
            audit_table.c.action.in_(LINKING_ACTIONS),
        )
        .order_by(audit_table.c.id)
    )
    return {
        (row.system, row.remote_id): {
            "id": row.id,
            "at": row.at.isoformat(),
            "run_id": row.run_id,
            "action": row.action,
            "reason": row.reason,
        }
        for row in rows
    }


# --------------------------------------------------------------------------- record lookup


def record_view(db: Engine, canonical_id: str) -> dict[str, Any]:
    """A canonical record with every vendor record linked to it, shaped as one entry of
    :func:`record_links` (no link is ``named``). Raises :class:`NotFoundError` when no
    record is linked to that canonical id."""
    with db.connect() as conn:
        some_link = conn.execute(
            select(links.c.system, links.c.remote_id, links.c.object_type)
            .where(links.c.canonical_id == canonical_id)
            .limit(1)
        ).first()
    if some_link is None:
        raise NotFoundError(f"no record is linked to canonical record {canonical_id!r}")
    for view in record_links(db, some_link.system, some_link.remote_id, some_link.object_type):
        if view["canonical_id"] == canonical_id:
            view["links"] = [{**link, "named": False} for link in view["links"]]
            return view
    raise NotFoundError(f"no record is linked to canonical record {canonical_id!r}")


def find_records(db: Engine, record_id: str, system: str | None = None) -> list[dict[str, Any]]:
    """The canonical records ``record_id`` names, as a canonical id or as a remote id (of
    ``system`` only, when given): ``canonical_id``, ``sync``, ``object_type``, and the
    ``system`` and ``remote_id`` it was found under (None for a canonical id)."""
    by_remote = select(
        links.c.canonical_id, links.c.sync, links.c.object_type, links.c.system, links.c.remote_id
    ).where(links.c.remote_id == record_id)
    if system:
        by_remote = by_remote.where(links.c.system == system)
    by_canonical = select(
        canonical_records.c.id, canonical_records.c.sync, canonical_records.c.object_type
    ).where(canonical_records.c.id == record_id)
    with db.connect() as conn:
        found = [
            {"canonical_id": row.id, "sync": row.sync, "object_type": row.object_type}
            | {"system": None, "remote_id": None}
            for row in conn.execute(by_canonical)
        ]
        found += [
            row_dict(row)
            for row in conn.execute(by_remote.order_by(links.c.sync, links.c.object_type))
        ]
    return found
