"""initial state store

Revision ID: 0001
Revises:
Create Date: 2026-11-27 03:25:15.097245
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "audit_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("sync", sa.String(length=64), nullable=False),
        sa.Column("system", sa.String(length=64), nullable=True),
        sa.Column("object_type", sa.String(length=16), nullable=False),
        sa.Column("remote_id", sa.String(length=255), nullable=True),
        sa.Column("canonical_id", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entries")),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_entries_canonical_id"), ["canonical_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_audit_entries_run_id"), ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_entries_sync_at"), ["sync", "at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_audit_entries_system_remote_id"), ["system", "remote_id"], unique=False
        )

    op.create_table(
        "canonical_records",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("sync", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=16), nullable=False),
        sa.Column("base", sa.JSON(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canonical_records")),
    )
    with op.batch_alter_table("canonical_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_canonical_records_sync_object_type"),
            ["sync", "object_type"],
            unique=False,
        )

    op.create_table(
        "conflicts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sync", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=16), nullable=False),
        sa.Column("canonical_id", sa.String(length=64), nullable=False),
        sa.Column("field", sa.String(length=128), nullable=False),
        sa.Column("base", sa.JSON(), nullable=True),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("winner", sa.String(length=64), nullable=True),
        sa.Column("resolution", sa.JSON(), nullable=True),
        sa.Column("policy", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conflicts")),
    )
    with op.batch_alter_table("conflicts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conflicts_canonical_id_field"), ["canonical_id", "field"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_conflicts_sync_status"), ["sync", "status"], unique=False
        )

    op.create_table(
        "cursors",
        sa.Column("sync", sa.String(length=64), nullable=False),
        sa.Column("system", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=16), nullable=False),
        sa.Column("position", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sync", "system", "object_type", name=op.f("pk_cursors")),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sync", sa.String(length=64), nullable=False),
        sa.Column("system", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=16), nullable=False),
        sa.Column("remote_id", sa.String(length=255), nullable=True),
        sa.Column("canonical_id", sa.String(length=64), nullable=True),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
    )
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dead_letters_canonical_id"), ["canonical_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_dead_letters_sync_object_type_status"),
            ["sync", "object_type", "status"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_dead_letters_sync_system_object_type_remote_id"),
            ["sync", "system", "object_type", "remote_id"],
            unique=False,
        )

    op.create_table(
        "leases",
        sa.Column("sync", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sync", name=op.f("pk_leases")),
    )
    op.create_table(
        "links",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sync", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=16), nullable=False),
        sa.Column("canonical_id", sa.String(length=64), nullable=False),
        sa.Column("system", sa.String(length=64), nullable=False),
        sa.Column("remote_id", sa.String(length=255), nullable=False),
        sa.Column("remote_modified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("remote_hash", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.String(length=128), nullable=False),
        sa.Column("detached", sa.Boolean(), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_links")),
        sa.UniqueConstraint(
            "sync",
            "object_type",
            "canonical_id",
            "system",
            name=op.f("uq_links_sync_object_type_canonical_id_system"),
        ),
        sa.UniqueConstraint(
            "sync",
            "object_type",
            "system",
            "remote_id",
            name=op.f("uq_links_sync_object_type_system_remote_id"),
        ),
    )
    op.create_table(
        "match_keys",
        sa.Column("sync", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("canonical_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint(
            "sync", "object_type", "key", "canonical_id", name=op.f("pk_match_keys")
        ),
    )
    with op.batch_alter_table("match_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_match_keys_canonical_id"), ["canonical_id"], unique=False
        )

    op.create_table(
        "pending_writes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sync", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=16), nullable=False),
        sa.Column("intents", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_writes")),
    )
    with op.batch_alter_table("pending_writes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pending_writes_sync_object_type"), ["sync", "object_type"], unique=False
        )

    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sync", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_runs_sync_started_at"), ["sync", "started_at"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_sync_started_at"))

    op.drop_table("runs")
    with op.batch_alter_table("pending_writes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pending_writes_sync_object_type"))

    op.drop_table("pending_writes")
    with op.batch_alter_table("match_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_match_keys_canonical_id"))

    op.drop_table("match_keys")
    op.drop_table("links")
    op.drop_table("leases")
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dead_letters_sync_system_object_type_remote_id"))
        batch_op.drop_index(batch_op.f("ix_dead_letters_sync_object_type_status"))
        batch_op.drop_index(batch_op.f("ix_dead_letters_canonical_id"))

    op.drop_table("dead_letters")
    op.drop_table("cursors")
    with op.batch_alter_table("conflicts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conflicts_sync_status"))
        batch_op.drop_index(batch_op.f("ix_conflicts_canonical_id_field"))

    op.drop_table("conflicts")
    with op.batch_alter_table("canonical_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_canonical_records_sync_object_type"))

    op.drop_table("canonical_records")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_entries_system_remote_id"))
        batch_op.drop_index(batch_op.f("ix_audit_entries_sync_at"))
        batch_op.drop_index(batch_op.f("ix_audit_entries_run_id"))
        batch_op.drop_index(batch_op.f("ix_audit_entries_canonical_id"))

    op.drop_table("audit_entries")
