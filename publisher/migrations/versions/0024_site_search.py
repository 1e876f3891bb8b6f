"""site search: which page number of a site's current search bundle is which item, and the numbers
dropped since the bundle was built — for a site in a bucket, whose state lives in the publisher's
store (a folder keeps the same tables in its own file; channels/website/store.py owns the SQL)

Revision ID: 0024_site_search
Revises: 0023_site_purge
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024_site_search"
down_revision = "0023_site_purge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "site_search_doc",
        sa.Column("site", sa.String(length=100), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("fragment", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("site", "item_id"),
    )
    op.create_table(
        "site_search_gone",
        sa.Column("site", sa.String(length=100), nullable=False),
        sa.Column("fragment", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("site", "fragment"),
    )


def downgrade() -> None:
    op.drop_table("site_search_gone")
    op.drop_table("site_search_doc")
