"""The state store's schema: every table the hub keeps, as SQLAlchemy Core metadata.

Public entry points: :data:`metadata` and the table objects below; :class:`UTCDateTime`.

Alembic migrations in ``hub/migrations`` create and evolve these tables; the metadata here is
what the code queries and what ``alembic revision --autogenerate`` compares against. Indexes are
chosen so that one page of records costs a handful of queries: every lookup the engine does per
page is an ``IN`` over one of them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    Unicode,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite (naive storage) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} reached the state store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAME = String(64)
OBJECT = String(16)
ID = String(64)
REMOTE_ID = String(255)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

canonical_records = Table(
    "canonical_records",
    metadata,
    Column("id", ID, primary_key=True),
    Column("sync", NAME, nullable=False),
    Column("object_type", OBJECT, nullable=False),
    # The base: the last field values every linked system agreed on (flat canonical dict).
    Column("base", JSON, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "sync", "object_type"),
)

match_keys = Table(
    "match_keys",
    metadata,
    Column("sync", NAME, primary_key=True),
    Column("object_type", OBJECT, primary_key=True),
    Column("key", String(512), primary_key=True),
    Column("canonical_id", ID, primary_key=True),
    Index(None, "canonical_id"),
)

links = Table(
    "links",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sync", NAME, nullable=False),
    Column("object_type", OBJECT, nullable=False),
    Column("canonical_id", ID, nullable=False),
    Column("system", NAME, nullable=False),
    Column("remote_id", REMOTE_ID, nullable=False),
    # The remote version: the vendor's modified time and the hash of the mapped record as last
    # seen or written. A read whose hash equals remote_hash is our own write coming back.
    Column("remote_modified_at", UTCDateTime, nullable=True),
    Column("remote_hash", String(64), nullable=False),
    Column("rule", String(128), nullable=False),
    # A detached link: this system deliberately holds no copy (deletes: unlink); never write it.
    Column("detached", Boolean, nullable=False, default=False),
    Column("linked_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("sync", "object_type", "system", "remote_id"),
    UniqueConstraint("sync", "object_type", "canonical_id", "system"),
)

pending_writes = Table(
    "pending_writes",
    metadata,
    # Write-ahead intents, one row per page: committed before the page's vendor writes, removed
    # (or narrowed to what is still owed) with the commit after them. A row left behind means a
    # run stopped in between; the next run revisits those records, and for a create looks the
    # record up on the vendor before creating it again.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sync", NAME, nullable=False),
    Column("object_type", OBJECT, nullable=False),
    # [[canonical id, system, kind], ...] with kind create | update | delete | revisit
    Column("intents", JSON, nullable=False),
    Column("run_id", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # The worker of a split run sending this row's writes right now (a lease owner id), and
    # until when its claim holds unless renewed: no other run revisits them meanwhile.
    Column("claimed_by", String(128), nullable=True),
    Column("claimed_until", UTCDateTime, nullable=True),
    Index(None, "sync", "object_type"),
)

split_pages = Table(
    "split_pages",
    metadata,
    # A split run's pages, read and matched but not yet decided: its worker tasks claim one at a
    # time, decide it and send its writes (hub.engine, "split runs"). The row goes in the
    # transaction that commits the page's decisions and intents.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sync", NAME, nullable=False),
    Column("object_type", OBJECT, nullable=False),
    Column("run_id", Integer, nullable=False),
    # {"records": [[canonical id, [staged version, ...]], ...], "stale": [[canonical id,
    # system, kind], ...], "stampless": [[system, remote id], ...]}: hub.engine._page_row
    Column("page", JSON, nullable=False),
    # Who is deciding it (a lease owner id), and until when the claim holds unless renewed.
    Column("claimed_by", String(128), nullable=True),
    Column("claimed_until", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "sync", "object_type"),
)

cursors = Table(
    "cursors",
    metadata,
    Column("sync", NAME, primary_key=True),
    Column("system", NAME, primary_key=True),
    Column("object_type", OBJECT, primary_key=True),
    Column("position", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # When this system's live ids were last compared with its links to find deletes, for a
    # vendor that never reports them (Bitrix24); None: never.
    Column("swept_at", UTCDateTime, nullable=True),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sync", NAME, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("status", String(16), nullable=False),
    Column("dry_run", Boolean, nullable=False, default=False),
    Column("counts", JSON, nullable=True),
    Column("error", Text, nullable=True),
    Index(None, "sync", "started_at"),
)

HASH = String(64)

audit_entries = Table(
    "audit_entries",
    metadata,
    # Append-only and hash-chained (hub.audit): ids are given by hub.audit.seal, one after
    # another in the order appended; insert through it (store.append_audit), never directly.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("run_id", Integer, nullable=True),
    Column("sync", NAME, nullable=False),
    Column("system", NAME, nullable=True),
    Column("object_type", OBJECT, nullable=False),
    Column("remote_id", REMOTE_ID, nullable=True),
    Column("canonical_id", ID, nullable=True),
    Column("action", String(16), nullable=False),
    Column("changes", JSON, nullable=True),
    Column("reason", Text, nullable=True),
    # SHA-256 of the entry before this one, and of this entry's content with prev_hash.
    Column("prev_hash", HASH, nullable=False),
    Column("hash", HASH, nullable=False),
    Index(None, "sync", "at"),
    Index(None, "canonical_id"),
    Index(None, "system", "remote_id"),
    Index(None, "run_id"),
)

audit_chain = Table(
    "audit_chain",
    metadata,
    # One row: the newest audit entry's id and hash. Appends move it under a lock; a walk of
    # the chain that ends before it found the newest entries removed.
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_id", Integer, nullable=False),
    Column("last_hash", HASH, nullable=False),
)

audit_anchors = Table(
    "audit_anchors",
    metadata,
    # One row per crmhub audit prune: the entries it archived and deleted, and last_hash, the
    # hash the oldest remaining entry follows.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pruned_at", UTCDateTime, nullable=False),
    Column("before", UTCDateTime, nullable=False),
    Column("first_id", Integer, nullable=False),
    Column("last_id", Integer, nullable=False),
    Column("entries", Integer, nullable=False),
    Column("first_prev_hash", HASH, nullable=False),
    Column("last_hash", HASH, nullable=False),
    Column("export", Text, nullable=False),
)

conflicts = Table(
    "conflicts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sync", NAME, nullable=False),
    Column("object_type", OBJECT, nullable=False),
    Column("canonical_id", ID, nullable=False),
    Column("field", String(128), nullable=False),
    Column("base", JSON, nullable=True),
    # {system: {"value": ..., "modified_at": iso}} — every side's contender.
    Column("candidates", JSON, nullable=False),
    # open (manual, waiting) | settled (a policy chose) | resolved (a person chose) | applied
    Column("status", String(16), nullable=False),
    Column("winner", NAME, nullable=True),
    Column("resolution", JSON, nullable=True),
    Column("policy", String(64), nullable=False),
    Column("run_id", Integer, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
    Index(None, "sync", "status"),
    Index(None, "canonical_id", "field"),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sync", NAME, nullable=False),
    Column("system", NAME, nullable=False),
    Column("object_type", OBJECT, nullable=False),
    Column("remote_id", REMOTE_ID, nullable=True),
    Column("canonical_id", ID, nullable=True),
    # map (could not be mapped) | write (the vendor refused it) | duplicate (same key twice in
    # one system) — each retried differently.
    Column("stage", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("payload", JSON, nullable=True),
    Column("attempts", Integer, nullable=False, default=1),
    # open | parked (retries used up) | resolved | discarded
    Column("status", String(16), nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("run_id", Integer, nullable=True),
    Index(None, "sync", "object_type", "status"),
    Index(None, "sync", "system", "object_type", "remote_id"),
    Index(None, "canonical_id"),
)

rate_limits = Table(
    "rate_limits",
    metadata,
    # Per system, what its vendor last said of its rate limits: one row however many syncs
    # share the system, replaced by each run that heard from the vendor.
    Column("system", NAME, primary_key=True),
    # The end of the run that collected the figures.
    Column("observed_at", UTCDateTime, nullable=False),
    # {budget: {remaining, used, limit, unit, window, resets_at, scope}}: connectors.base.Headroom
    Column("figures", JSON, nullable=False),
)

leases = Table(
    "leases",
    metadata,
    Column("sync", NAME, primary_key=True),
    Column("owner", String(128), nullable=False),
    Column("acquired_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    # The object type a split run is deciding right now: its worker tasks wait for more pages
    # while it is set, and leave when it is not (hub.engine, "split runs").
    Column("deciding", OBJECT, nullable=True),
)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def row_dict(row: Any) -> dict[str, Any]:
    """A result row as a plain dict."""
    return dict(row._mapping)


# crmhub run's job store: APScheduler's SQLAlchemyJobStore table, created by migration 0003 so
# that two daemons starting on a new database never race to create it.
scheduler_jobs = Table(
    "scheduler_jobs",
    metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)
