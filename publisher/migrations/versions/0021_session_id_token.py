"""sso_id_token: an OIDC session keeps its ID token, sent back as ``id_token_hint`` when it logs out
(RP-Initiated Logout 1.0; docs/auth.md); the row goes with its session (ON DELETE CASCADE)

Revision ID: 0021_session_id_token
Revises: 0020_public_apply
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021_session_id_token"
down_revision = "0020_public_apply"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sso_id_token",
        sa.Column("session_hash", sa.String(length=64), nullable=False),
        sa.Column("id_token", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["session_hash"], ["web_session.token_hash"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("session_hash"),
    )


def downgrade() -> None:
    op.drop_table("sso_id_token")
