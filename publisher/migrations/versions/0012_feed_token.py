"""feed token: api_token.kind, 'api' (bearer tokens for /api) or 'feed' (read-only calendar feeds)

Revision ID: 0012_feed_token
Revises: 0011_withdraw_request
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_feed_token"
down_revision = "0011_withdraw_request"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # every existing token was made for scripts (and served the feeds too): they stay API tokens
    op.add_column("api_token", sa.Column("kind", sa.String(length=10), nullable=False, server_default="api"))


def downgrade() -> None:
    # a feed token must not become a read-write API token under the old schema
    op.execute("DELETE FROM api_token WHERE kind = 'feed'")
    with op.batch_alter_table("api_token") as batch:
        batch.drop_column("kind")
