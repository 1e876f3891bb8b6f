"""catalogue: the 政府信息公开目录 fields of an item (索引号 unique), the 索引号 counter per
organisation code and year, and the related-items table (docs/catalogue.md)

Revision ID: 0017_catalogue
Revises: 0016_notification
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_catalogue"
down_revision = "0016_notification"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("index_no", sa.String(length=100)),
    ("doc_number", sa.String(length=100)),
    ("written_on", sa.Date()),
    ("topic", sa.String(length=50)),
    ("disclosure_mode", sa.String(length=20)),
    ("disclosure_scope", sa.String(length=200)),
    ("validity", sa.String(length=20)),
    ("replaced_by", sa.Integer()),
)


def upgrade() -> None:
    # plain ALTER TABLE (no batch): a batch would copy the item table and lose its triggers (0007)
    for name, type_ in _COLUMNS:
        op.add_column("item", sa.Column(name, type_, nullable=True))
    # a unique index rather than a constraint: SQLite adds it without rebuilding the table
    op.create_index("ix_item_index_no", "item", ["index_no"], unique=True)
    op.create_index("ix_item_doc_number", "item", ["doc_number"])
    op.create_index("ix_item_topic", "item", ["topic"])
    op.create_index("ix_item_validity", "item", ["validity"])
    op.create_table(
        "catalogue_counter",
        sa.Column("org_code", sa.String(length=100), nullable=False),
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("org_code", "year"),
    )
    op.create_table(
        "item_relation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("related_id", sa.Integer(), nullable=False),
        sa.Column("relation", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["item.id"]),
        sa.ForeignKeyConstraint(["related_id"], ["item.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("item_id", "related_id", "relation", name="uq_item_relation"),
    )
    op.create_index("ix_item_relation_item_id", "item_relation", ["item_id"])
    op.create_index("ix_item_relation_related_id", "item_relation", ["related_id"])


def downgrade() -> None:
    op.drop_index("ix_item_relation_related_id", table_name="item_relation")
    op.drop_index("ix_item_relation_item_id", table_name="item_relation")
    op.drop_table("item_relation")
    op.drop_table("catalogue_counter")
    for name in ("ix_item_validity", "ix_item_topic", "ix_item_doc_number", "ix_item_index_no"):
        op.drop_index(name, table_name="item")
    for name, _ in reversed(_COLUMNS):
        op.drop_column("item", name)
