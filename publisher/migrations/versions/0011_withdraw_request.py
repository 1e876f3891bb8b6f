"""withdraw request: a withdrawal, edit or re-approval while a delivery is claimed is recorded on it

Revision ID: 0011_withdraw_request
Revises: 0010_drop_prefix_indexes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_withdraw_request"
down_revision = "0010_drop_prefix_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (nullable, no default) on both engines: no table rebuild of a large delivery table
    op.add_column("delivery", sa.Column("requested", sa.String(length=20), nullable=True))
    op.add_column("delivery", sa.Column("request_lease", sa.String(), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite's own DROP COLUMN (3.35+): a batch rebuild would rename a copy of delivery over it,
        # which the triggers of 0007_stats_perf (naming delivery) refuse
        op.execute("ALTER TABLE delivery DROP COLUMN request_lease")
        op.execute("ALTER TABLE delivery DROP COLUMN requested")
    else:
        op.drop_column("delivery", "request_lease")
        op.drop_column("delivery", "requested")
