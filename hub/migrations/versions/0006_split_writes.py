"""split runs: the pages a worker fleet shares out, who holds each, and whether the run is
still deciding more

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hub.tables import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "split_pages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sync", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(16), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("page", sa.JSON(), nullable=False),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_split_pages")),
    )
    op.create_index(
        op.f("ix_split_pages_sync_object_type"),
        "split_pages",
        ["sync", "object_type"],
        unique=False,
    )
    with op.batch_alter_table("pending_writes") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(128), nullable=True))
        batch.add_column(sa.Column("claimed_until", UTCDateTime(), nullable=True))
    with op.batch_alter_table("leases") as batch:
        batch.add_column(sa.Column("deciding", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("leases") as batch:
        batch.drop_column("deciding")
    with op.batch_alter_table("pending_writes") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
    op.drop_index(op.f("ix_split_pages_sync_object_type"), table_name="split_pages")
    op.drop_table("split_pages")
