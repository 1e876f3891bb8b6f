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

On SQLite, ``ix_delivery_owed`` (0007) is made again with its condition written as three equalities
joined by OR instead of ``status IN (...)``: SQLite evaluates an IN list of three in a partial
index's condition by building a temporary b-tree, for the old and the new row of every update of a
delivery (two per claim and two per record); the OR form costs a few comparisons. A query still
uses the index when it fixes the status to one of the three (SQLite proves ``status = 'pending'``
implies the OR), or repeats the condition (publisher.models.owed). PostgreSQL's index is unchanged.

Together these cut the instructions the dispatcher's loop spends per delivery by a fifth
(bench/loop_cpu.py --callgrind, docs/benchmarks.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_drop_prefix_indexes"
down_revision = "0009_channel_rate"
branch_labels = None
depends_on = None

DROPPED = {
    "ix_delivery_item_id": ["item_id"],
    "ix_delivery_channel": ["channel"],
    "ix_delivery_published_at": ["published_at"],
    "ix_delivery_status_updated": ["status", "updated_at"],
}


OWED_IN = "status IN ('pending', 'claimed', 'waiting')"
#: as publisher.models.owed writes it
OWED_OR = "status = 'pending' OR status = 'claimed' OR status = 'waiting'"
OWED_COLUMNS = ["status", "due_at", "channel", "item_category", "item_department", "item_checklist_item"]


def upgrade() -> None:
    for name in DROPPED:
        op.drop_index(name, table_name="delivery")
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index("ix_delivery_owed", table_name="delivery")
        op.create_index("ix_delivery_owed", "delivery", OWED_COLUMNS, sqlite_where=sa.text(OWED_OR))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index("ix_delivery_owed", table_name="delivery")
        op.create_index("ix_delivery_owed", "delivery", OWED_COLUMNS, sqlite_where=sa.text(OWED_IN))
    for name, columns in DROPPED.items():
        op.create_index(name, "delivery", columns)
