"""operations and scale (issue 7)

Revision ID: 0004_scale
Revises: 0003_web
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0004_scale"
down_revision = "0003_web"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
