"""site_state: the website's state in the publisher's store, for a site in an S3-compatible bucket
(one row set per site, keyed by the channel's name; channels/website/store.py owns the SQL), and the
row each change of a site locks

Revision ID: 0019_site_state
Revises: 0018_channel_wording
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_site_state"
down_revision = "0018_channel_wording"
branch_labels = None
depends_on = None


def _site() -> sa.Column:
    return sa.Column("site", sa.String(length=100), nullable=False)


def upgrade() -> None:
    op.create_table("site_lock", sa.Column("site", sa.String(length=100), primary_key=True))
    op.create_table(
        "site_entry",
        _site(),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("live", sa.Integer(), nullable=False),
        sa.Column("validity", sa.String(length=20), nullable=True),
        # the sitemap reads these two by the thousand: columns, not the JSON
        sa.Column("path", sa.String(length=200), nullable=True),
        sa.Column("updated", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("site", "item_id"),
    )
    op.create_table(
        "site_listing",
        _site(),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("last_pos", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("lastmod", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("site", "key"),
    )
    op.create_table(
        "site_placement",
        _site(),
        sa.Column("listing", sa.String(length=300), nullable=False),
        sa.Column("pos", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("site", "listing", "pos"),
    )
    op.create_index("site_placement_item", "site_placement", ["site", "item_id"])
    op.create_table(
        "site_file_ref",
        _site(),
        sa.Column("file", sa.String(length=300), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("site", "file", "item_id"),
    )
    op.create_index("site_file_ref_item", "site_file_ref", ["site", "item_id"])
    op.create_table(
        "site_sitemap_part",
        _site(),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("lastmod", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("site", "part"),
    )
    op.create_table(
        "site_meta",
        _site(),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("site", "key"),
    )
    # the 现行有效 rules library reads live entries by 有效性
    op.create_index(
        "site_entry_validity",
        "site_entry",
        ["site", "validity"],
        postgresql_where=sa.text("live = 1"),
        sqlite_where=sa.text("live = 1"),
    )


def downgrade() -> None:
    op.drop_index("site_entry_validity", table_name="site_entry")
    for table in ("site_meta", "site_sitemap_part", "site_file_ref", "site_placement", "site_listing", "site_entry"):
        op.drop_table(table)
    op.drop_table("site_lock")
