"""operations and scale (issue 7)

Revision ID: 0004_scale
Revises: 0003_web
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op

revision = "0004_scale"
down_revision = "0003_web"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # publisher.counting.stats counts published deliveries by period and channel: with this index the count
    # reads the index alone (no table rows) on both engines
    op.create_index("ix_delivery_published_channel_item", "delivery", ["published_at", "channel", "item_id"])


def downgrade() -> None:
    op.drop_index("ix_delivery_published_channel_item", table_name="delivery")
