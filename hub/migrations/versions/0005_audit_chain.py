"""audit chain: audit entries hash-chained, the chain's head, and the anchors of prunes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hub.audit import GENESIS, entry_hash
from hub.tables import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BATCH = 5000

_entries = sa.table(
    "audit_entries",
    sa.column("id", sa.Integer()),
    sa.column("at", UTCDateTime()),
    sa.column("run_id", sa.Integer()),
    sa.column("sync", sa.String()),
    sa.column("system", sa.String()),
    sa.column("object_type", sa.String()),
    sa.column("remote_id", sa.String()),
    sa.column("canonical_id", sa.String()),
    sa.column("action", sa.String()),
    sa.column("changes", sa.JSON()),
    sa.column("reason", sa.Text()),
    sa.column("prev_hash", sa.String()),
    sa.column("hash", sa.String()),
)


def _chain_existing_entries(conn: sa.Connection) -> tuple[int, str]:
    """Hash the entries written before the chain existed, oldest first, in batches; the id and
    hash of the newest."""
    last_id, last_hash = 0, GENESIS
    while True:
        rows = conn.execute(
            sa.select(_entries).where(_entries.c.id > last_id).order_by(_entries.c.id).limit(_BATCH)
        ).all()
        if not rows:
            return last_id, last_hash
        sealed = []
        for row in rows:
            entry = dict(row._mapping)
            digest = entry_hash(entry, last_hash)
            sealed.append({"b_id": entry["id"], "prev_hash": last_hash, "hash": digest})
            last_id, last_hash = entry["id"], digest
        conn.execute(
            sa.update(_entries)
            .where(_entries.c.id == sa.bindparam("b_id"))
            .values(prev_hash=sa.bindparam("prev_hash"), hash=sa.bindparam("hash")),
            sealed,
        )


def upgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    head = op.create_table(
        "audit_chain",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain")),
    )
    op.create_table(
        "audit_anchors",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_id", sa.Integer(), nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("first_prev_hash", sa.String(length=64), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("export", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_anchors")),
    )
    last_id, last_hash = _chain_existing_entries(op.get_bind())
    op.bulk_insert(head, [{"id": 1, "last_id": last_id, "last_hash": last_hash}])
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)


def downgrade() -> None:
    op.drop_table("audit_anchors")
    op.drop_table("audit_chain")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
