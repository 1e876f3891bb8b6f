"""channel_rate: per-channel rate limits shared by every worker (publisher.pipeline.store.rate)

Revision ID: 0009_channel_rate
Revises: 0007_stats_perf
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_channel_rate"
down_revision = "0007_stats_perf"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_rate",
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("next_slot_us", sa.BigInteger(), nullable=False),
        sa.Column("granted", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("channel"),
    )


def downgrade() -> None:
    op.drop_table("channel_rate")
