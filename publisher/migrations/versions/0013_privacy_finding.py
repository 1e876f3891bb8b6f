"""privacy finding: the privacy check's findings on each item version (masked only) and their decisions;
item_version.privacy_checked_at: when the check ran on the version

Revision ID: 0013_privacy_finding
Revises: 0012_feed_token
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_privacy_finding"
down_revision = "0012_feed_token"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "privacy_finding",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("item_version", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("where", sa.Text(), nullable=False),
        sa.Column("masked", sa.Text(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["item_id"], ["item.id"]),
        sa.PrimaryKeyConstraint("id"),
        # the gate reads one version's findings of one item: this constraint's index serves it
        sa.UniqueConstraint("item_id", "item_version", "number", name="uq_privacy_finding"),
    )
    # nullable, no default: existing versions were never checked, and the gate says so
    op.add_column("item_version", sa.Column("privacy_checked_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("item_version") as batch:
        batch.drop_column("privacy_checked_at")
    op.drop_table("privacy_finding")
