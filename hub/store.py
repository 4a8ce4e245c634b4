"""Reads and writes of the state store, batched per page.

Public entry points: :class:`Link`, :class:`BaseRecord`, :class:`PageWrites`, and the query
functions below (each takes an open SQLAlchemy ``Connection`` so the caller decides the
transaction). Every function that the sync engine calls once per page answers for the whole
page with one ``IN`` query, never one query per record.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import chain
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from connectors.base import Headroom
from hub import audit
from hub.tables import (
    UTCDateTime,
    audit_entries,
    canonical_records,
    conflicts,
    cursors,
    dead_letters,
    leases,
    links,
    match_keys,
    pending_writes,
    rate_limits,
    runs,
    split_pages,
)

MAX_DEAD_LETTER_ATTEMPTS = 10


@dataclass(frozen=True, slots=True)
class Link:
    canonical_id: str
    system: str
    remote_id: str
    remote_modified_at: datetime | None
    remote_hash: str
    # A detached link marks a system that deliberately holds no copy (deletes: unlink).
    detached: bool = False


@dataclass(frozen=True, slots=True)
class BaseRecord:
    canonical_id: str
    values: dict[str, Any]
    hash: str
    deleted: bool


def _chunks(items: Sequence[Any], size: int = 900) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --------------------------------------------------------------------------- links


_LINK_COLUMNS = (
    links.c.canonical_id,
    links.c.system,
    links.c.remote_id,
    links.c.remote_modified_at,
    links.c.remote_hash,
    links.c.detached,
)


def links_by_remote(
    conn: Connection, sync: str, object_type: str, system: str, remote_ids: Sequence[str]
) -> dict[str, Link]:
    """The links of these remote records of one system, by remote id."""
    if conn.dialect.name == "sqlite":
        return _sqlite_links_by_remote(conn, sync, object_type, system, remote_ids)
    found: dict[str, Link] = {}
    for chunk in _chunks(list(remote_ids)):
        rows = conn.execute(
            select(*_LINK_COLUMNS).where(
                links.c.sync == sync,
                links.c.object_type == object_type,
                links.c.system == system,
                links.c.remote_id.in_(chunk),
            )
        )
        for row in rows:
            found[row.remote_id] = Link(*row)
    return found


_LINKS_BY_REMOTE = (
    "SELECT canonical_id, system, remote_id, remote_modified_at, remote_hash, detached"
    " FROM links WHERE sync = ? AND object_type = ? AND system = ?"
)


def _sqlite_links_by_remote(
    conn: Connection, sync: str, object_type: str, system: str, remote_ids: Sequence[str]
) -> dict[str, Link]:
    """:func:`links_by_remote` on SQLite, straight through the driver: every page an
    incremental run reads asks it for a hundred ids, and SQLAlchemy's statement building and
    per-row type processing were most of what such a run spends (the rows are typed here as
    UTCDateTime and Boolean would type them)."""
    found: dict[str, Link] = {}
    for chunk in _chunks(list(remote_ids)):
        # Only placeholders are formatted in; every value is bound.
        marks = ", ".join(["?"] * len(chunk))
        rows = conn.exec_driver_sql(
            f"{_LINKS_BY_REMOTE} AND remote_id IN ({marks})", (sync, object_type, system, *chunk)
        )
        for canonical_id, linked_system, remote_id, modified, digest, detached in rows:
            found[remote_id] = Link(
                canonical_id,
                linked_system,
                remote_id,
                _from_sqlite_datetime(modified),
                digest,
                bool(detached),
            )
    return found


def _from_sqlite_datetime(value: str | None) -> datetime | None:
    # What UTCDateTime reads back: the naive UTC text SQLAlchemy stores, made aware.
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def follow_merges(
    conn: Connection,
    sync: str,
    object_type: str,
    system: str,
    merges: Mapping[str, Sequence[str]],
    run_id: int | None,
    now: datetime,
) -> int:
    """Move links off records the vendor merged away (``survivor id → absorbed ids``).

    When the survivor has no link yet, the first absorbed record's link moves to it, so the
    survivor is known as that canonical record and no duplicate is created elsewhere. Every
    other absorbed record's link is detached: the vendor holds no copy of it any more, and
    writing it back would undo the merge. Each move is audited. Returns the links touched.
    """
    absorbed = sorted({lost for ids in merges.values() for lost in ids})
    lost_links = links_by_remote(conn, sync, object_type, system, absorbed)
    if not lost_links:
        return 0
    survivors = links_by_remote(conn, sync, object_type, system, sorted(merges))
    moves: list[dict[str, Any]] = []
    for survivor, ids in sorted(merges.items()):
        linked = sorted(
            (lost_links[lost] for lost in ids if lost in lost_links and lost != survivor),
            key=lambda link: link.canonical_id,
        )
        for position, link in enumerate(linked):
            moved = position == 0 and survivor not in survivors
            where = (
                links.c.sync == sync,
                links.c.object_type == object_type,
                links.c.system == system,
                links.c.remote_id == link.remote_id,
            )
            if moved:
                # The stale version makes the next read of the survivor merge it normally.
                values: dict[str, Any] = {
                    "remote_id": survivor,
                    "remote_modified_at": None,
                    "remote_hash": "",
                    "updated_at": now,
                }
                survivors[survivor] = link
            else:
                values = {"detached": True, "updated_at": now}
            conn.execute(update(links).where(*where).values(**values))
            reason = f"{system} merged record {link.remote_id} into {survivor}: " + (
                "the link follows the surviving record" if moved else "link detached"
            )
            moves.append(
                {
                    "at": now,
                    "run_id": run_id,
                    "sync": sync,
                    "system": system,
                    "object_type": object_type,
                    "remote_id": survivor if moved else link.remote_id,
                    "canonical_id": link.canonical_id,
                    "action": "relink" if moved else "detach",
                    "changes": {"remote_id": [link.remote_id, survivor]} if moved else None,
                    "reason": reason,
                }
            )
    append_audit(conn, moves)
    return len(moves)


def links_by_canonical(
    conn: Connection, sync: str, object_type: str, canonical_ids: Iterable[str]
) -> dict[str, dict[str, Link]]:
    """Every link of these canonical records: canonical id → system → link."""
    found: dict[str, dict[str, Link]] = defaultdict(dict)
    for chunk in _chunks(sorted(set(canonical_ids))):
        rows = conn.execute(
            select(*_LINK_COLUMNS).where(
                links.c.sync == sync,
                links.c.object_type == object_type,
                links.c.canonical_id.in_(chunk),
            )
        )
        for row in rows:
            found[row.canonical_id][row.system] = Link(*row)
    return found


def has_links(conn: Connection, sync: str, object_type: str, system: str) -> bool:
    """Whether any record of this system is linked yet (none is before its first sync)."""
    found = conn.execute(
        select(links.c.id)
        .where(links.c.sync == sync, links.c.object_type == object_type, links.c.system == system)
        .limit(1)
    ).first()
    return found is not None


def count_links(conn: Connection, sync: str, object_type: str, system: str) -> int:
    return int(
        conn.execute(
            select(func.count()).where(
                links.c.sync == sync, links.c.object_type == object_type, links.c.system == system
            )
        ).scalar_one()
    )


# --------------------------------------------------------------------------- canonical records


def base_records(
    conn: Connection, sync: str, object_type: str, canonical_ids: Iterable[str]
) -> dict[str, BaseRecord]:
    found: dict[str, BaseRecord] = {}
    for chunk in _chunks(sorted(set(canonical_ids))):
        rows = conn.execute(
            select(
                canonical_records.c.id,
                canonical_records.c.base,
                canonical_records.c.hash,
                canonical_records.c.deleted,
            ).where(canonical_records.c.id.in_(chunk))
        )
        for row in rows:
            found[row.id] = BaseRecord(row.id, dict(row.base), row.hash, bool(row.deleted))
    return found


def has_match_keys(conn: Connection, sync: str, object_type: str) -> bool:
    """Whether any canonical record of this object type holds a match key yet."""
    found = conn.execute(
        select(match_keys.c.key)
        .where(match_keys.c.sync == sync, match_keys.c.object_type == object_type)
        .limit(1)
    ).first()
    return found is not None


def match_candidates(
    conn: Connection, sync: str, object_type: str, keys: Iterable[str]
) -> list[tuple[BaseRecord, dict[str, str]]]:
    """Live canonical records holding any of these match keys, with their links by system."""
    ids: set[str] = set()
    for chunk in _chunks(sorted(set(keys))):
        ids.update(
            conn.execute(
                select(match_keys.c.canonical_id).where(
                    match_keys.c.sync == sync,
                    match_keys.c.object_type == object_type,
                    match_keys.c.key.in_(chunk),
                )
            ).scalars()
        )
    if not ids:
        return []
    bases = base_records(conn, sync, object_type, ids)
    linked = links_by_canonical(conn, sync, object_type, ids)
    return [
        (
            base,
            {
                system: link.remote_id
                for system, link in linked.get(cid, {}).items()
                if not link.detached
            },
        )
        for cid, base in bases.items()
        if not base.deleted
    ]


# --------------------------------------------------------------------------- cursors and runs


def _cursor_row(sync: str, system: str, object_type: str) -> tuple[Any, ...]:
    return (
        cursors.c.sync == sync,
        cursors.c.system == system,
        cursors.c.object_type == object_type,
    )


def _cursor_value(
    conn: Connection, column: Any, sync: str, system: str, object_type: str
) -> datetime | None:
    value: datetime | None = conn.execute(
        select(column).where(*_cursor_row(sync, system, object_type))
    ).scalar_one_or_none()
    return value


def _write_cursor(
    conn: Connection,
    sync: str,
    system: str,
    object_type: str,
    changes: Mapping[str, Any],
    *,
    position: datetime,
    now: datetime,
) -> None:
    """Apply ``changes`` to the cursor row, creating it at ``position`` when there is none."""
    updated = conn.execute(
        update(cursors).where(*_cursor_row(sync, system, object_type)).values(**changes)
    )
    if updated.rowcount == 0:
        row = {"position": position, "updated_at": now, **changes}
        conn.execute(
            insert(cursors).values(sync=sync, system=system, object_type=object_type, **row)
        )


def get_cursor(conn: Connection, sync: str, system: str, object_type: str) -> datetime | None:
    return _cursor_value(conn, cursors.c.position, sync, system, object_type)


def set_cursor(
    conn: Connection, sync: str, system: str, object_type: str, position: datetime, now: datetime
) -> None:
    changes = {"position": position, "updated_at": now}
    _write_cursor(conn, sync, system, object_type, changes, position=position, now=now)


def last_sweep(conn: Connection, sync: str, system: str, object_type: str) -> datetime | None:
    """When this system's ids were last swept for deletes (None: never, or no cursor yet)."""
    return _cursor_value(conn, cursors.c.swept_at, sync, system, object_type)


def mark_swept(
    conn: Connection, sync: str, system: str, object_type: str, position: datetime, now: datetime
) -> None:
    """Record a completed sweep; ``position`` is the cursor to create when there is none."""
    _write_cursor(conn, sync, system, object_type, {"swept_at": now}, position=position, now=now)


def linked_remote_ids(
    conn: Connection, sync: str, object_type: str, system: str, after: str, limit: int
) -> list[str]:
    """One page of the remote ids this system's links hold, in id order, after ``after``."""
    rows = conn.execute(
        select(links.c.remote_id)
        .where(
            links.c.sync == sync,
            links.c.object_type == object_type,
            links.c.system == system,
            links.c.detached.is_(False),
            links.c.remote_id > after,
        )
        .order_by(links.c.remote_id)
        .limit(limit)
    )
    return [row.remote_id for row in rows]


def start_run(conn: Connection, sync: str, now: datetime) -> int:
    """A new run row for a sync whose lease the caller holds.

    Holding the lease means no earlier run of this sync is still going: a row still marked
    running belongs to a run that was killed (SIGKILL, a lost machine), and says so from now on.
    """
    conn.execute(
        update(runs)
        .where(runs.c.sync == sync, runs.c.status == "running")
        .values(
            status="killed",
            finished_at=now,
            error="the process ended without finishing the run; the next run resumed its work",
        )
    )
    result = conn.execute(
        insert(runs).values(sync=sync, started_at=now, status="running", dry_run=False)
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def finish_run(
    conn: Connection,
    run_id: int,
    status: str,
    counts: Mapping[str, Any],
    error: str | None,
    now: datetime,
) -> None:
    conn.execute(
        update(runs)
        .where(runs.c.id == run_id)
        .values(status=status, counts=dict(counts), error=error, finished_at=now)
    )


def add_run_counts(
    conn: Connection, run_id: int, counts: Mapping[str, Mapping[str, Mapping[str, int]]]
) -> None:
    """Add a split run's worker's counts (object type → system → outcome → n) to its run's
    row, which the run itself reads back as it finishes (:func:`run_counts`)."""
    stored = conn.execute(
        select(runs.c.counts).where(runs.c.id == run_id).with_for_update()
    ).scalar()
    merged: dict[str, dict[str, dict[str, int]]] = {
        obj: {system: dict(outcomes) for system, outcomes in systems.items()}
        for obj, systems in (stored or {}).items()
    }
    for obj, systems in counts.items():
        for system, outcomes in systems.items():
            into = merged.setdefault(obj, {}).setdefault(system, {})
            for outcome, n in outcomes.items():
                into[outcome] = into.get(outcome, 0) + n
    conn.execute(update(runs).where(runs.c.id == run_id).values(counts=merged))


def run_counts(conn: Connection, run_id: int) -> dict[str, dict[str, dict[str, int]]]:
    stored = conn.execute(select(runs.c.counts).where(runs.c.id == run_id)).scalar()
    return dict(stored or {})


# --------------------------------------------------------------------------- pending writes

Intent = tuple[str, str, str]  # (canonical id, system, kind)


def load_pending(
    conn: Connection,
    sync: str,
    object_type: str,
    *,
    now: datetime | None = None,
    holder_is_gone: Callable[[str], bool] | None = None,
) -> tuple[dict[tuple[str, str], str], list[int]]:
    """Intents earlier runs left behind: (canonical id, system) → kind, and their row ids.

    Not among them: rows a worker of a split run alive (per ``holder_is_gone``) claimed before
    ``now``, whose writes may be on their way this very moment.
    """
    intents: dict[tuple[str, str], str] = {}
    ids: list[int] = []
    rows = conn.execute(
        select(
            pending_writes.c.id,
            pending_writes.c.intents,
            pending_writes.c.claimed_by,
            pending_writes.c.claimed_until,
        )
        .where(pending_writes.c.sync == sync, pending_writes.c.object_type == object_type)
        .order_by(pending_writes.c.id)
    )
    for row_id, entries, claimed_by, claimed_until in rows:
        if _claim_is_live(claimed_by, claimed_until, now, holder_is_gone):
            continue
        ids.append(row_id)
        for cid, system, kind in entries:
            intents[(cid, system)] = kind
    return intents, ids


def _claim_is_live(
    claimed_by: str | None,
    claimed_until: datetime | None,
    now: datetime | None,
    holder_is_gone: Callable[[str], bool] | None,
) -> bool:
    if claimed_by is None:
        return False
    if now is not None and (claimed_until is None or claimed_until < now):
        return False
    return holder_is_gone is None or not holder_is_gone(claimed_by)


def add_pending(
    conn: Connection,
    sync: str,
    object_type: str,
    intents: Sequence[Intent],
    run_id: int,
    now: datetime,
    *,
    claimed_by: str | None = None,
    claimed_until: datetime | None = None,
) -> int | None:
    """Record one page's intents in one row; its id, or None when there are none.
    ``claimed_by``: the split run's worker about to send them, until ``claimed_until``."""
    if not intents:
        return None
    result = conn.execute(
        insert(pending_writes).values(
            sync=sync,
            object_type=object_type,
            intents=[list(intent) for intent in intents],
            run_id=run_id,
            created_at=now,
            claimed_by=claimed_by,
            claimed_until=claimed_until,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def settle_pending(conn: Connection, row_id: int, still_owed: Sequence[Intent]) -> None:
    """After a page's writes: drop its intents row, or keep only what is still owed (for the
    next run, so no longer claimed by anyone)."""
    if still_owed:
        conn.execute(
            update(pending_writes)
            .where(pending_writes.c.id == row_id)
            .values(
                intents=[list(intent) for intent in still_owed], claimed_by=None, claimed_until=None
            )
        )
    else:
        conn.execute(delete(pending_writes).where(pending_writes.c.id == row_id))


# --------------------------------------------------------------------------- split runs


@dataclass(frozen=True, slots=True)
class SplitPage:
    """One page of a split run, claimed by one worker to decide and send."""

    id: int
    run_id: int
    page: Mapping[str, Any]


def add_split_page(
    conn: Connection,
    sync: str,
    object_type: str,
    run_id: int,
    page: Mapping[str, Any],
    now: datetime,
) -> None:
    conn.execute(
        insert(split_pages).values(
            sync=sync, object_type=object_type, run_id=run_id, page=dict(page), created_at=now
        )
    )


def claim_split_page(
    conn: Connection,
    sync: str,
    object_type: str,
    claimant: str,
    now: datetime,
    ttl: timedelta,
    *,
    holder_is_gone: Callable[[str], bool] | None = None,
) -> SplitPage | None:
    """Claim the oldest page that nobody alive holds, for ``ttl``; None when none is left to
    claim. Two workers racing for one page: the update's guard lets one win."""
    ours = (split_pages.c.sync == sync, split_pages.c.object_type == object_type)
    columns = (split_pages.c.id, split_pages.c.claimed_by, split_pages.c.claimed_until)
    # Pages nobody has claimed yet first, a few at a time: a big run shares out thousands.
    candidates = conn.execute(
        select(*columns)
        .where(*ours, split_pages.c.claimed_by.is_(None))
        .order_by(split_pages.c.id)
        .limit(16)
    ).all()
    if not candidates:  # then any whose claimant died or let its claim lapse
        candidates = conn.execute(select(*columns).where(*ours).order_by(split_pages.c.id)).all()
    for row_id, claimed_by, claimed_until in candidates:
        if _claim_is_live(claimed_by, claimed_until, now, holder_is_gone):
            continue
        held_by = (
            split_pages.c.claimed_by.is_(None)
            if claimed_by is None
            else split_pages.c.claimed_by == claimed_by
        )
        taken = conn.execute(
            update(split_pages)
            .where(split_pages.c.id == row_id, held_by)
            .values(claimed_by=claimant, claimed_until=now + ttl)
        )
        if taken.rowcount:
            row = conn.execute(
                select(split_pages.c.run_id, split_pages.c.page).where(split_pages.c.id == row_id)
            ).one()
            return SplitPage(row_id, row.run_id, row.page)
    return None


def take_split_page(conn: Connection, page_id: int, claimant: str) -> bool:
    """Remove a claimed page as its decisions are committed (in the same transaction); False
    when ``claimant`` no longer holds it, and must commit and send nothing of it."""
    taken = conn.execute(
        delete(split_pages).where(split_pages.c.id == page_id, split_pages.c.claimed_by == claimant)
    )
    return bool(taken.rowcount)


def renew_claims(conn: Connection, sync: str, claimant: str, now: datetime, ttl: timedelta) -> None:
    for table in (split_pages, pending_writes):
        conn.execute(
            update(table)
            .where(table.c.sync == sync, table.c.claimed_by == claimant)
            .values(claimed_until=now + ttl)
        )


def split_outstanding(
    conn: Connection,
    sync: str,
    object_type: str,
    now: datetime,
    *,
    holder_is_gone: Callable[[str], bool] | None = None,
) -> tuple[int, int]:
    """Of a split run's work on an object type: (pages nobody alive holds, pages and intents a
    live worker holds). Both zero: every page was decided and sent, or left for the next run."""
    free = held = 0
    for table in (split_pages, pending_writes):
        rows = conn.execute(
            select(table.c.claimed_by, table.c.claimed_until).where(
                table.c.sync == sync,
                table.c.object_type == object_type,
                *([table.c.claimed_by.is_not(None)] if table is pending_writes else []),
            )
        )
        for claimed_by, claimed_until in rows:
            if _claim_is_live(claimed_by, claimed_until, now, holder_is_gone):
                held += 1
            elif table is split_pages:
                free += 1
    return free, held


def drop_pending(conn: Connection, row_ids: Sequence[int]) -> None:
    for chunk in _chunks(list(row_ids)):
        conn.execute(delete(pending_writes).where(pending_writes.c.id.in_(chunk)))


# --------------------------------------------------------------------------- conflicts


@dataclass(frozen=True, slots=True)
class ConflictRow:
    id: int
    canonical_id: str
    field: str
    status: str
    resolution: Any
    base: Any
    candidates: Mapping[str, Any]  # system -> {"value": ..., "modified_at": ...}


def conflicts_for(
    conn: Connection,
    sync: str,
    object_type: str,
    canonical_ids: Iterable[str],
    statuses: Sequence[str],
) -> dict[tuple[str, str], ConflictRow]:
    """Conflicts in these statuses for these records: (canonical id, field) → row."""
    found: dict[tuple[str, str], ConflictRow] = {}
    for chunk in _chunks(sorted(set(canonical_ids))):
        rows = conn.execute(
            select(
                conflicts.c.id,
                conflicts.c.canonical_id,
                conflicts.c.field,
                conflicts.c.status,
                conflicts.c.resolution,
                conflicts.c.base,
                conflicts.c.candidates,
            ).where(
                conflicts.c.sync == sync,
                conflicts.c.object_type == object_type,
                conflicts.c.status.in_(statuses),
                conflicts.c.canonical_id.in_(chunk),
            )
        )
        for row in rows:
            found[(row.canonical_id, row.field)] = ConflictRow(*row)
    return found


def resolved_conflict_ids(conn: Connection, sync: str, object_type: str) -> list[str]:
    return list(
        conn.execute(
            select(conflicts.c.canonical_id)
            .where(
                conflicts.c.sync == sync,
                conflicts.c.object_type == object_type,
                conflicts.c.status == "resolved",
            )
            .distinct()
        ).scalars()
    )


# --------------------------------------------------------------------------- dead letters


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    system: str
    remote_id: str | None
    canonical_id: str | None
    stage: str
    attempts: int


def due_dead_letters(
    conn: Connection, sync: str, object_type: str, now: datetime
) -> list[DeadLetter]:
    rows = conn.execute(
        select(
            dead_letters.c.id,
            dead_letters.c.system,
            dead_letters.c.remote_id,
            dead_letters.c.canonical_id,
            dead_letters.c.stage,
            dead_letters.c.attempts,
        ).where(
            dead_letters.c.sync == sync,
            dead_letters.c.object_type == object_type,
            dead_letters.c.status == "open",
            or_(dead_letters.c.next_attempt_at.is_(None), dead_letters.c.next_attempt_at <= now),
        )
    )
    return [DeadLetter(*row) for row in rows]


def retry_delay(attempts: int) -> timedelta:
    """Growing delays between automatic retries: 5 min, 10, 20, ... at most a day."""
    delay: timedelta = timedelta(minutes=5) * 2 ** max(attempts - 1, 0)
    return min(delay, timedelta(days=1))


def record_dead_letter(
    conn: Connection,
    *,
    sync: str,
    system: str,
    object_type: str,
    stage: str,
    reason: str,
    remote_id: str | None,
    canonical_id: str | None,
    payload: Any,
    run_id: int | None,
    now: datetime,
) -> None:
    """Add a failed record, or count one more attempt of one already there.

    A record a person discarded stays discarded while it fails the same way with the same
    content; once it changes and still fails, it is a new failure.
    """
    identity = and_(
        dead_letters.c.sync == sync,
        dead_letters.c.system == system,
        dead_letters.c.object_type == object_type,
        dead_letters.c.stage == stage,
        dead_letters.c.remote_id == remote_id
        if remote_id is not None
        else dead_letters.c.canonical_id == canonical_id,
    )
    discarded = conn.execute(
        select(dead_letters.c.id, dead_letters.c.payload, dead_letters.c.reason)
        .where(identity, dead_letters.c.status == "discarded")
        .order_by(dead_letters.c.id.desc())
        .limit(1)
    ).first()
    if discarded is not None and discarded.payload == payload and discarded.reason == reason:
        conn.execute(
            update(dead_letters).where(dead_letters.c.id == discarded.id).values(last_seen=now)
        )
        return
    existing = conn.execute(
        select(
            dead_letters.c.id,
            dead_letters.c.attempts,
            dead_letters.c.payload,
            dead_letters.c.reason,
            dead_letters.c.next_attempt_at,
        ).where(identity, dead_letters.c.status.in_(("open", "parked")))
    ).first()
    if (
        existing is not None
        and existing.payload == payload
        and existing.reason == reason
        and existing.next_attempt_at is not None
        and existing.next_attempt_at > now
    ):
        # The same failure seen again before its retry is due (the overlap window re-reads
        # it): not another attempt, or a record would be parked after a few ordinary runs.
        conn.execute(
            update(dead_letters).where(dead_letters.c.id == existing.id).values(last_seen=now)
        )
        return
    if existing is None:
        conn.execute(
            insert(dead_letters).values(
                sync=sync,
                system=system,
                object_type=object_type,
                stage=stage,
                reason=reason,
                remote_id=remote_id,
                canonical_id=canonical_id,
                payload=payload,
                attempts=1,
                status="open",
                first_seen=now,
                last_seen=now,
                next_attempt_at=now + retry_delay(1),
                run_id=run_id,
            )
        )
        return
    attempts = existing.attempts + 1
    conn.execute(
        update(dead_letters)
        .where(dead_letters.c.id == existing.id)
        .values(
            attempts=attempts,
            reason=reason,
            payload=payload,
            last_seen=now,
            run_id=run_id,
            status="parked" if attempts >= MAX_DEAD_LETTER_ATTEMPTS else "open",
            next_attempt_at=now + retry_delay(attempts),
        )
    )


def close_failures(conn: Connection, ids: Sequence[int]) -> None:
    """Mark dead letters resolved: their records went through."""
    for chunk in _chunks(list(ids)):
        conn.execute(
            update(dead_letters).where(dead_letters.c.id.in_(chunk)).values(status="resolved")
        )


def open_failures(conn: Connection, sync: str, object_type: str) -> dict[tuple[str, str, str], int]:
    """Open or parked dead letters by (system, stage, remote id or canonical id) → id, so a
    record that goes through can close its failure without a query per record."""
    rows = conn.execute(
        select(
            dead_letters.c.id,
            dead_letters.c.system,
            dead_letters.c.stage,
            dead_letters.c.remote_id,
            dead_letters.c.canonical_id,
        ).where(
            dead_letters.c.sync == sync,
            dead_letters.c.object_type == object_type,
            dead_letters.c.status.in_(("open", "parked")),
        )
    )
    found: dict[tuple[str, str, str], int] = {}
    for row_id, system, stage, remote_id, canonical_id in rows:
        found[(system, stage, remote_id if stage != "write" else canonical_id)] = row_id
    return found


def open_failure_reasons(
    conn: Connection, sync: str, object_type: str, system: str
) -> dict[str, str]:
    """Why each record of one system that waits in the failed list waits: remote id → reason
    (write failures are listed by the id of the record they could not reach, when known)."""
    rows = conn.execute(
        select(dead_letters.c.remote_id, dead_letters.c.canonical_id, dead_letters.c.reason)
        .where(
            dead_letters.c.sync == sync,
            dead_letters.c.object_type == object_type,
            dead_letters.c.system == system,
            dead_letters.c.status.in_(("open", "parked")),
        )
        .order_by(dead_letters.c.id)
    )
    return {remote_id or canonical_id: reason for remote_id, canonical_id, reason in rows}


# --------------------------------------------------------------------------- page commit


@dataclass(slots=True)
class PageWrites:
    """Everything one reconciled page changes in the store, written in one transaction."""

    new_records: list[dict[str, Any]] = field(default_factory=list)
    changed_records: list[dict[str, Any]] = field(default_factory=list)
    new_keys: list[dict[str, Any]] = field(default_factory=list)
    dropped_keys: list[str] = field(default_factory=list)  # canonical ids whose keys are rewritten
    new_links: list[dict[str, Any]] = field(default_factory=list)
    changed_links: list[dict[str, Any]] = field(default_factory=list)
    removed_links: list[tuple[str, str]] = field(default_factory=list)  # (canonical id, system)
    audit: list[dict[str, Any]] = field(default_factory=list)
    new_conflicts: list[dict[str, Any]] = field(default_factory=list)
    applied_conflicts: list[int] = field(default_factory=list)
    superseded_conflicts: list[int] = field(default_factory=list)
    resolved_failures: list[int] = field(default_factory=list)  # dead letters that went through
    # Updates the vendor answered under another id (it had merged the record): system →
    # surviving id → ids it absorbed; committed through follow_merges.
    merges: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # Bookkeeping only (not written): (canonical id, system) pairs whose write reached an
    # outcome, so the page's intents row keeps just what is still owed.
    done: set[tuple[str, str]] = field(default_factory=set)


@lru_cache(maxsize=4096)
def _sqlite_datetime(value: datetime | None) -> str | None:
    # A page's rows share a handful of timestamps ("now", the run's times): cache them.
    if value is None:
        return None
    if value.tzinfo is UTC:
        # Vendors' modified times miss the cache, one each: formatted as they are, then the
        # "+00:00" cut, which costs a third less than converting first.
        return value.isoformat(" ", "microseconds")[:-6]
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_value(column_type: Any) -> Any:
    """How SQLAlchemy would store a value of this column type in SQLite, as a plain function."""
    if isinstance(column_type, UTCDateTime):
        return _sqlite_datetime
    if isinstance(column_type, JSON):
        return _sqlite_json
    if isinstance(column_type, Boolean):
        return _sqlite_bool
    return None


def _sqlite_json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _sqlite_bool(value: Any) -> int | None:
    return None if value is None else int(value)


@lru_cache(maxsize=64)
def _row_builder(
    names: tuple[str, ...], defaults: tuple[Any, ...], converters: tuple[Any, ...]
) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """One function per row shape, turning a row dict into the driver's tuple in one call.

    Generated because a call per value was a large part of a first sync's cost; every name in
    the generated source is a column of our own metadata, passed as a constant, never input.
    """
    parts = []
    env: dict[str, Any] = {}
    for index, (name, default, convert) in enumerate(zip(names, defaults, converters, strict=True)):
        env[f"d{index}"] = default
        value = f"row.get({name!r}, d{index})"
        if convert is not None:
            env[f"c{index}"] = convert
            value = f"c{index}({value})"
        parts.append(value)
    source = f"def build(row):\n    return ({', '.join(parts)},)\n"
    exec(source, env)  # noqa: S102
    builder: Callable[[Mapping[str, Any]], tuple[Any, ...]] = env["build"]
    return builder


# Rows per INSERT statement of bulk_insert on SQLite (within its limit on bound variables).
ROWS_PER_INSERT = 250


def _variable_limit(conn: Connection) -> int:
    """How many values one SQLite statement may bind: 32,766 since SQLite 3.32, 999 before."""
    driver = conn.connection.dbapi_connection
    getlimit = getattr(driver, "getlimit", None)  # Python 3.11+
    if getlimit is None:
        return 999
    return int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))


def bulk_insert(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert many rows of the same shape.

    Rows may leave out columns that have a default. On SQLite the rows go straight to the
    driver, converted the way SQLAlchemy's own types store them: a first sync inserts five rows
    per record, and SQLAlchemy's per-row parameter processing was most of its cost. Elsewhere
    this is an ordinary executemany.
    """
    if not rows:
        return
    present = set().union(*rows)
    columns = [
        column
        for column in table.columns
        if column.name in present or isinstance(column.default, ScalarElementColumnDefault)
    ]
    names = [column.name for column in columns]
    defaults = [
        column.default.arg if isinstance(column.default, ScalarElementColumnDefault) else None
        for column in columns
    ]
    if conn.dialect.name != "sqlite":
        # An executemany takes its columns from the first row: every row gets them all, or a
        # column only some rows carry (a detached link among new ones) would be dropped.
        filled = [
            {name: row.get(name, default) for name, default in zip(names, defaults, strict=True)}
            for row in rows
        ]
        conn.execute(insert(table), filled)
        return
    row_tuple = _row_builder(
        tuple(names), tuple(defaults), tuple(_sqlite_value(column.type) for column in columns)
    )
    # Several rows per statement: a sixth cheaper than one execution per row. Table and
    # column names come from our own metadata, never from input.
    per_statement = min(ROWS_PER_INSERT, _variable_limit(conn) // len(names))
    head = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES "  # noqa: S608
    one = f"({', '.join('?' for _ in names)})"
    values = [row_tuple(row) for row in rows]
    for start in range(0, len(values), per_statement):
        chunk = values[start : start + per_statement]
        conn.exec_driver_sql(
            head + ", ".join([one] * len(chunk)), tuple(chain.from_iterable(chunk))
        )


def append_audit(conn: Connection, entries: Sequence[Mapping[str, Any]]) -> None:
    """Append entries to the audit chain in this transaction (which then holds the append
    lock until it ends: see :func:`hub.audit.seal`)."""
    bulk_insert(conn, audit_entries, audit.seal(conn, entries))


def commit_page(conn: Connection, sync: str, object_type: str, page: PageWrites) -> None:
    bulk_insert(conn, canonical_records, page.new_records)
    if page.changed_records:
        conn.execute(
            update(canonical_records)
            .where(canonical_records.c.id == bindparam("b_id"))
            .values(
                base=bindparam("base"),
                hash=bindparam("hash"),
                deleted=bindparam("deleted"),
                updated_at=bindparam("updated_at"),
            ),
            page.changed_records,
        )
    for chunk in _chunks(page.dropped_keys):
        conn.execute(
            delete(match_keys).where(
                match_keys.c.sync == sync,
                match_keys.c.object_type == object_type,
                match_keys.c.canonical_id.in_(chunk),
            )
        )
    bulk_insert(conn, match_keys, page.new_keys)
    for cid, system in page.removed_links:
        conn.execute(
            delete(links).where(
                links.c.sync == sync,
                links.c.object_type == object_type,
                links.c.canonical_id == cid,
                links.c.system == system,
            )
        )
    bulk_insert(conn, links, page.new_links)
    if page.changed_links:
        conn.execute(
            update(links)
            .where(
                links.c.sync == sync,
                links.c.object_type == object_type,
                links.c.canonical_id == bindparam("b_canonical_id"),
                links.c.system == bindparam("b_system"),
            )
            .values(
                remote_modified_at=bindparam("remote_modified_at"),
                remote_hash=bindparam("remote_hash"),
                updated_at=bindparam("updated_at"),
            ),
            page.changed_links,
        )
    append_audit(conn, page.audit)
    if page.superseded_conflicts:
        conn.execute(
            update(conflicts)
            .where(conflicts.c.id.in_(page.superseded_conflicts))
            .values(status="superseded")
        )
    if page.new_conflicts:
        conn.execute(insert(conflicts), page.new_conflicts)
    if page.applied_conflicts:
        conn.execute(
            update(conflicts)
            .where(conflicts.c.id.in_(page.applied_conflicts))
            .values(status="applied")
        )
    close_failures(conn, page.resolved_failures)


def open_counts(conn: Connection, sync: str) -> tuple[int, int]:
    """Conflicts waiting for a person and records that failed (still retried, or parked once
    the retries ran out: either way not synced), for one sync."""
    open_conflicts = conn.execute(
        select(func.count()).where(conflicts.c.sync == sync, conflicts.c.status == "open")
    ).scalar_one()
    open_dead = conn.execute(
        select(func.count()).where(
            dead_letters.c.sync == sync, dead_letters.c.status.in_(("open", "parked"))
        )
    ).scalar_one()
    return int(open_conflicts), int(open_dead)


# --------------------------------------------------------------------------- rate limits


def save_rate_limits(
    conn: Connection, reported: Mapping[str, Mapping[str, Headroom]], observed_at: datetime
) -> None:
    """Store each system's rate-limit figures as its vendor reported them, as of
    ``observed_at``; a system whose vendor reported nothing keeps what was stored before."""
    for system, budgets in reported.items():
        if not budgets:
            continue
        values = {
            "observed_at": observed_at,
            "figures": {name: dict(figures) for name, figures in budgets.items()},
        }
        this_system = rate_limits.c.system == system
        if conn.execute(update(rate_limits).where(this_system).values(**values)).rowcount:
            continue
        try:
            with conn.begin_nested():
                conn.execute(insert(rate_limits).values(system=system, **values))
        except IntegrityError:
            # A run of another sync on this system stored its figures first; ours are as new.
            conn.execute(update(rate_limits).where(this_system).values(**values))


def stored_rate_limits(
    conn: Connection, systems: Sequence[str]
) -> dict[str, tuple[datetime, dict[str, Headroom]]]:
    """The stored figures of these systems, with when they were observed; a system with none
    is left out."""
    rows = conn.execute(select(rate_limits).where(rate_limits.c.system.in_(list(systems))))
    return {row.system: (row.observed_at, dict(row.figures)) for row in rows}


# --------------------------------------------------------------------------- leases


def acquire_lease(
    conn: Connection,
    sync: str,
    owner: str,
    now: datetime,
    ttl: timedelta,
    *,
    holder_is_gone: Callable[[str], bool] | None = None,
) -> bool:
    """Take the sync's lease unless another owner holds an unexpired one, or one whose holder
    ``holder_is_gone`` says has died without releasing it."""
    taken = conn.execute(
        update(leases)
        .where(leases.c.sync == sync, or_(leases.c.expires_at < now, leases.c.owner == owner))
        .values(owner=owner, acquired_at=now, expires_at=now + ttl, deciding=None)
    )
    if taken.rowcount:
        return True
    holder = conn.execute(select(leases.c.owner).where(leases.c.sync == sync)).scalar()
    if holder is not None:
        if holder_is_gone is None or not holder_is_gone(holder):
            return False
        # Only from that very holder: of two runs that saw it die, one takes the lease.
        taken = conn.execute(
            update(leases)
            .where(leases.c.sync == sync, leases.c.owner == holder)
            .values(owner=owner, acquired_at=now, expires_at=now + ttl, deciding=None)
        )
        return bool(taken.rowcount)
    try:
        with conn.begin_nested():
            conn.execute(
                insert(leases).values(sync=sync, owner=owner, acquired_at=now, expires_at=now + ttl)
            )
    except IntegrityError:
        return False
    return True


def renew_lease(conn: Connection, sync: str, owner: str, now: datetime, ttl: timedelta) -> bool:
    renewed = conn.execute(
        update(leases)
        .where(leases.c.sync == sync, leases.c.owner == owner)
        .values(expires_at=now + ttl)
    )
    return bool(renewed.rowcount)


@dataclass(frozen=True, slots=True)
class LeaseRow:
    owner: str
    expires_at: datetime
    deciding: str | None


def lease_of(conn: Connection, sync: str) -> LeaseRow | None:
    row = conn.execute(
        select(leases.c.owner, leases.c.expires_at, leases.c.deciding).where(leases.c.sync == sync)
    ).first()
    return LeaseRow(row.owner, row.expires_at, row.deciding) if row is not None else None


def set_deciding(conn: Connection, sync: str, owner: str, object_type: str | None) -> None:
    """Say, on the lease ``owner`` holds, which object type its split run is deciding (None:
    it has finished deferring pages)."""
    conn.execute(
        update(leases)
        .where(leases.c.sync == sync, leases.c.owner == owner)
        .values(deciding=object_type)
    )


def release_lease(conn: Connection, sync: str, owner: str) -> None:
    conn.execute(delete(leases).where(leases.c.sync == sync, leases.c.owner == owner))
