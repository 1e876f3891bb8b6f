"""web workspace (issue 4): item versions, browser sessions, API tokens, log-in throttling

Revision ID: 0003_web
Revises: 0002_ledger
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_web"
down_revision = "0002_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "item_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("body_markdown", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["item.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("item_id", "version", name="uq_item_version"),
    )
    op.create_index("ix_item_version_item_id", "item_version", ["item_id"])
    op.create_table(
        "web_session",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_web_session_user_id", "web_session", ["user_id"])
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_api_token_user_id", "api_token", ["user_id"])
    op.create_table(
        "login_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_login_failure_key_at", "login_failure", ["key", "at"])
    # the dashboard: a daily roll-up of published deliveries, brought up to date from what changed
    op.create_table(
        "stats_day",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("dim", sa.String(length=20), nullable=False),
        sa.Column("value", sa.String(length=100), nullable=False),
        sa.Column("published", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("day", "channel", "dim", "value", name="uq_stats_day"),
    )
    op.create_index("ix_stats_day_read", "stats_day", ["dim", "day", "channel", "value", "published"])
    op.create_table(
        "rollup_state",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("zone", sa.String(), nullable=False),
        sa.Column("watermark", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    # what changed since the roll-up's watermark; failures by last change; engagement by channel and day
    op.create_index("ix_delivery_updated_at", "delivery", ["updated_at"])
    op.create_index("ix_item_updated_at", "item", ["updated_at"])
    op.create_index("ix_delivery_status_updated", "delivery", ["status", "updated_at"])
    op.create_index("ix_channel_stat_channel_day", "channel_stat", ["channel", "day"])


def downgrade() -> None:
    op.drop_index("ix_channel_stat_channel_day", table_name="channel_stat")
    op.drop_index("ix_delivery_status_updated", table_name="delivery")
    op.drop_index("ix_item_updated_at", table_name="item")
    op.drop_index("ix_delivery_updated_at", table_name="delivery")
    op.drop_table("rollup_state")
    op.drop_table("stats_day")
    op.drop_table("login_failure")
    op.drop_table("api_token")
    op.drop_table("web_session")
    op.drop_table("item_version")
