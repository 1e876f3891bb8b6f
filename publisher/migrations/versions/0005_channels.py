"""channels (wechat/cms/...)

Revision ID: 0005_channels
Revises: 0004_scale
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0005_channels"
down_revision = "0004_scale"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
