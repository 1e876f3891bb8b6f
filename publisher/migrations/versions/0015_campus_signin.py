"""campus sign-in: user.role_source, web_session.sso, and the sign_in, sso_ticket and sso_request tables

Revision ID: 0015_campus_signin
Revises: 0014_display_period
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_campus_signin"
down_revision = "0014_display_period"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # every existing user was added by hand: the campus directory must not change their role
    op.add_column("user", sa.Column("role_source", sa.String(length=10), nullable=False, server_default="admin"))
    op.add_column("web_session", sa.Column("sso", sa.String(length=80), nullable=True))
    op.create_index("ix_web_session_sso", "web_session", ["sso"])
    op.create_table(
        "sign_in",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("address", sa.String(length=100), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sign_in_at", "sign_in", ["at"])
    op.create_index("ix_sign_in_name", "sign_in", ["name"])
    op.create_table(
        "sso_ticket",
        sa.Column("ticket_hash", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("ticket_hash"),
    )
    op.create_table(
        "sso_request",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=100), nullable=False),
        sa.Column("verifier", sa.String(length=200), nullable=False),
        sa.Column("next", sa.String(length=500), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("state_hash"),
    )


def downgrade() -> None:
    op.drop_table("sso_request")
    op.drop_table("sso_ticket")
    op.drop_index("ix_sign_in_name", table_name="sign_in")
    op.drop_index("ix_sign_in_at", table_name="sign_in")
    op.drop_table("sign_in")
    # sessions begun through CAS/OIDC would outlive the single logout that can no longer find them
    op.execute("DELETE FROM web_session WHERE sso IS NOT NULL")
    op.drop_index("ix_web_session_sso", table_name="web_session")
    with op.batch_alter_table("web_session") as batch:
        batch.drop_column("sso")
    with op.batch_alter_table("user") as batch:
        batch.drop_column("role_source")
