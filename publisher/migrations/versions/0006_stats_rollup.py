"""stats roll-up: publisher.stats.counts reads published deliveries per day from stats_rollup

Revision ID: 0006_stats_rollup
Revises: 0005_channels
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_stats_rollup"
down_revision = "0005_channels"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stats_rollup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("dims", sa.String(length=60), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("category", sa.String(length=50), nullable=True),
        sa.Column("department", sa.String(length=100), nullable=True),
        sa.Column("checklist_item", sa.Integer(), nullable=True),
        sa.Column("since", sa.Date(), nullable=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_stats_rollup_read", "stats_rollup",
                    ["dims", "day", "channel", "category", "department", "checklist_item", "since", "n"])  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_stats_rollup_read", table_name="stats_rollup")
    op.drop_table("stats_rollup")
