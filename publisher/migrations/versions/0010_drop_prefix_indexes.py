"""drop the delivery indexes that another index already serves

Revision ID: 0010_drop_prefix_indexes
Revises: 0009_channel_rate

Each delivery row is written twice on its way out (the claim, then the record), and every index of
the table is written with it. Three of them only repeat the first column of another index, which
both engines read for the same lookups, and a fourth is served by a partial index:

- ``ix_delivery_item_id`` (item_id) — ``uq_delivery_item_channel`` (item_id, channel)
- ``ix_delivery_channel`` (channel) — ``ix_delivery_channel_remote_id`` (channel, remote_id)
- ``ix_delivery_published_at`` (published_at) — ``ix_delivery_published_channel_item`` (published_at, …)
- ``ix_delivery_status_updated`` (status, updated_at) — its one reader, the dashboard's recent
  failures, reads ``ix_delivery_failed`` (0007); other lookups by status read ``ix_delivery_due``

Dropping them cut the dispatcher's loop-thread CPU a delivery by a tenth (bench/loop_cpu.py,
docs/benchmarks.md).
"""

from __future__ import annotations

from alembic import op

revision = "0010_drop_prefix_indexes"
down_revision = "0009_channel_rate"
branch_labels = None
depends_on = None

DROPPED = {"ix_delivery_item_id": ["item_id"], "ix_delivery_channel": ["channel"],
           "ix_delivery_published_at": ["published_at"], "ix_delivery_status_updated": ["status", "updated_at"]}  # fmt: skip


def upgrade() -> None:
    for name in DROPPED:
        op.drop_index(name, table_name="delivery")


def downgrade() -> None:
    for name, columns in DROPPED.items():
        op.create_index(name, "delivery", columns)
