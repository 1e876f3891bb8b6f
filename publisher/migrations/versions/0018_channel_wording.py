"""channel wording: an item's per-channel title, summary, body and cover (issue 14), on the item and
on each version, so that the wording is part of what the reviewers approve and see in the diff

Revision ID: 0018_channel_wording
Revises: 0017_catalogue
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_channel_wording"
down_revision = "0017_catalogue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ALTER TABLE (no batch): a batch would copy the item table and lose its triggers (0007)
    for table in ("item", "item_version"):
        op.add_column(table, sa.Column("overrides", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))


def downgrade() -> None:
    for table in ("item_version", "item"):
        op.drop_column(table, "overrides")
