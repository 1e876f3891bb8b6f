"""withdraw request: a withdrawal, edit or re-approval while a delivery is claimed is recorded on it

Revision ID: 0010_withdraw_request
Revises: 0009_channel_rate
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_withdraw_request"
down_revision = "0009_channel_rate"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (nullable, no default) on both engines: no table rebuild of a large delivery table
    op.add_column("delivery", sa.Column("requested", sa.String(length=20), nullable=True))
    op.add_column("delivery", sa.Column("request_lease", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.drop_column("request_lease")
        batch.drop_column("requested")
