"""site_purge: the CDN purges a website change owes (``[channels.X.cdn]``), queued in the change's own
transaction and removed once the CDN accepted them, so a crash or a refusing CDN loses none
(channels/website/store.py owns the SQL; docs/channels/website.md, "CDN purge")

Revision ID: 0023_site_purge
Revises: 0022_asset_alt
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023_site_purge"
down_revision = "0022_asset_alt"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "site_purge",
        sa.Column("site", sa.String(length=100), nullable=False),
        sa.Column("url", sa.String(length=1000), nullable=False),
        # ISO 8601 UTC, as the rest of the site's state: when it was (last) queued, when it is next due
        sa.Column("queued", sa.String(length=40), nullable=False),
        sa.Column("due", sa.String(length=40), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        # the last failure: the error's class (CredentialsRefused…), the service's code, the message
        sa.Column("kind", sa.String(length=40), nullable=True),
        sa.Column("code", sa.String(length=100), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("site", "url"),
    )
    op.create_index("site_purge_due", "site_purge", ["site", "due"])


def downgrade() -> None:
    op.drop_index("site_purge_due", table_name="site_purge")
    op.drop_table("site_purge")
