"""asset alt: the alt text (替代文本) of an item's cover, set with the item (``cover_alt``), required
at submit, given to the channels (docs/accessibility in docs/web.md, docs/channels/website.md)

Revision ID: 0022_asset_alt
Revises: 0021_session_id_token
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022_asset_alt"
down_revision = "0021_session_id_token"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ALTER TABLE: a nullable column needs no table rebuild on SQLite
    op.add_column("asset", sa.Column("alt", sa.String(length=500), nullable=True))


def downgrade() -> None:
    op.drop_column("asset", "alt")
