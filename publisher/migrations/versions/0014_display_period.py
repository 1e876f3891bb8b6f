"""display period (公示期): what an item asks for (display_until or display_working_days), when it ends
once known (display_ends_at), when its take-down was queued (display_ended_at), and why the end could
not be computed (display_problem); a partial index over the items whose period has not ended

Revision ID: 0014_display_period
Revises: 0013_privacy_finding
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_display_period"
down_revision = "0013_privacy_finding"
branch_labels = None
depends_on = None

#: as publisher.models.DISPLAY_OPEN (a migration does not import the models: they move on)
_OPEN = "display_ended_at IS NULL AND (display_until IS NOT NULL OR display_working_days IS NOT NULL)"


def upgrade() -> None:
    op.add_column("item", sa.Column("display_until", sa.DateTime(), nullable=True))
    op.add_column("item", sa.Column("display_working_days", sa.Integer(), nullable=True))
    op.add_column("item", sa.Column("display_ends_at", sa.DateTime(), nullable=True))
    op.add_column("item", sa.Column("display_ended_at", sa.DateTime(), nullable=True))
    op.add_column("item", sa.Column("display_problem", sa.Text(), nullable=True))
    # the ending job reads only the few items with a period still running, every minute: a partial
    # index keeps that read off the whole item table (a million rows in bench/store_1m.py)
    op.create_index(
        "ix_item_display_open",
        "item",
        ["display_ends_at"],
        sqlite_where=sa.text(_OPEN),
        postgresql_where=sa.text(_OPEN),
    )


def downgrade() -> None:
    op.drop_index("ix_item_display_open", table_name="item")
    # plain ALTER TABLE … DROP COLUMN (SQLite 3.35+): a batch would copy the item table and lose its
    # triggers (migration 0007)
    for name in ("display_problem", "display_ended_at", "display_ends_at", "display_working_days", "display_until"):
        op.drop_column("item", name)
