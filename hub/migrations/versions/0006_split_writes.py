"""split writes: write intents a worker fleet shares out, and who holds each

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
    with op.batch_alter_table("pending_writes") as batch:
        batch.add_column(
            sa.Column("deferred", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("claimed_by", sa.String(128), nullable=True))
        batch.add_column(sa.Column("claimed_until", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pending_writes") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
        batch.drop_column("deferred")
