"""stats perf: each delivery carries its item's category, department and checklist item

Revision ID: 0007_stats_perf
Revises: 0006_stats_rollup

publisher.counting.stats counts failures and pending work live; joined to the item table for those fields,
that join was most of a count's time on a million items (docs/benchmarks.md, 7a). The copies are
kept by the database itself (triggers), so no writer — the workflow, an import, the sync, a script
— can let them drift from the item: a delivery takes its item's fields when it is written or moved
to another item, and an item's change of those fields is copied to its deliveries in the same
statement. Two partial indexes hold exactly what those counts read.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_stats_perf"
down_revision = "0006_stats_rollup"
branch_labels = None
depends_on = None

#: the statuses of owed work and of failures, as publisher.counting.stats writes them (literals, so that
#: both planners can tell a query is within a partial index)
OWED = "status IN ('pending', 'claimed', 'waiting')"
FAILED = "status = 'failed'"
COPIES = ("item_category", "item_department", "item_checklist_item")


def upgrade() -> None:
    op.add_column("delivery", sa.Column("item_category", sa.String(length=50), nullable=True))
    op.add_column("delivery", sa.Column("item_department", sa.String(length=100), nullable=True))
    op.add_column("delivery", sa.Column("item_checklist_item", sa.Integer(), nullable=True))
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute(
            "UPDATE delivery SET (item_category, item_department, item_checklist_item) = "
            "(SELECT category, department, checklist_item FROM item WHERE item.id = delivery.item_id)"
        )
    else:
        op.execute(
            "UPDATE delivery SET item_category = item.category, item_department = item.department, "
            "item_checklist_item = item.checklist_item FROM item WHERE item.id = delivery.item_id"
        )
    _triggers(sqlite)
    for name, where, time_col in (("ix_delivery_owed", OWED, "due_at"), ("ix_delivery_failed", FAILED, "updated_at")):
        if sqlite:
            # status leads although the condition fixes it: without it SQLite's planner prefers the older
            # (status, time) indexes, which know nothing of channel and the copies
            op.create_index(name, "delivery", ["status", time_col, "channel", *COPIES], sqlite_where=sa.text(where))
        else:
            op.create_index(
                name, "delivery", [time_col], postgresql_include=["channel", *COPIES], postgresql_where=sa.text(where)
            )
    if not sqlite:
        # 0006's look-up index for the joins the copies replace
        op.drop_index("ix_item_stats_fields", table_name="item")


def _triggers(sqlite: bool) -> None:
    if sqlite:
        # SQLite's triggers can not change NEW: the row is corrected right after it is written
        # (recursive triggers are off, so the correction does not fire its own trigger again)
        take = (
            "UPDATE delivery SET (item_category, item_department, item_checklist_item) = "
            "(SELECT category, department, checklist_item FROM item WHERE item.id = NEW.item_id) "
            "WHERE id = NEW.id;"
        )
        op.execute(f"CREATE TRIGGER delivery_item_fields_insert AFTER INSERT ON delivery BEGIN {take} END")
        op.execute(
            "CREATE TRIGGER delivery_item_fields_update AFTER UPDATE OF item_id, item_category, "
            f"item_department, item_checklist_item ON delivery BEGIN {take} END"
        )
        op.execute(
            "CREATE TRIGGER item_fields_to_deliveries AFTER UPDATE OF category, department, checklist_item ON item "
            "WHEN OLD.category IS NOT NEW.category OR OLD.department IS NOT NEW.department "
            "OR OLD.checklist_item IS NOT NEW.checklist_item "
            "BEGIN UPDATE delivery SET (item_category, item_department, item_checklist_item) = "
            "(NEW.category, NEW.department, NEW.checklist_item) WHERE item_id = NEW.id; END"
        )
        return
    # FOR SHARE: an edit of the item committing meanwhile can not miss a delivery being written
    # (the edit's trigger would not see the uncommitted row): one waits for the other
    op.execute(
        "CREATE FUNCTION delivery_item_fields() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "SELECT category, department, checklist_item INTO NEW.item_category, NEW.item_department, "
        "NEW.item_checklist_item FROM item WHERE id = NEW.item_id FOR SHARE; RETURN NEW; END $$"
    )
    op.execute(
        "CREATE TRIGGER delivery_item_fields BEFORE INSERT OR UPDATE OF item_id, item_category, item_department, "
        "item_checklist_item ON delivery FOR EACH ROW EXECUTE FUNCTION delivery_item_fields()"
    )
    op.execute(
        "CREATE FUNCTION item_fields_to_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "UPDATE delivery SET item_category = NEW.category, item_department = NEW.department, "
        "item_checklist_item = NEW.checklist_item WHERE item_id = NEW.id; RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER item_fields_to_deliveries AFTER UPDATE OF category, department, checklist_item ON item "
        "FOR EACH ROW WHEN (OLD.category IS DISTINCT FROM NEW.category OR OLD.department IS DISTINCT FROM "
        "NEW.department OR OLD.checklist_item IS DISTINCT FROM NEW.checklist_item) "
        "EXECUTE FUNCTION item_fields_to_deliveries()"
    )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        for name in ("delivery_item_fields_insert", "delivery_item_fields_update", "item_fields_to_deliveries"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        op.create_index(
            "ix_item_stats_fields", "item", ["id"], postgresql_include=["category", "department", "checklist_item"]
        )
        op.execute("DROP TRIGGER IF EXISTS item_fields_to_deliveries ON item")
        op.execute("DROP TRIGGER IF EXISTS delivery_item_fields ON delivery")
        op.execute("DROP FUNCTION IF EXISTS item_fields_to_deliveries()")
        op.execute("DROP FUNCTION IF EXISTS delivery_item_fields()")
    op.drop_index("ix_delivery_failed", table_name="delivery")
    op.drop_index("ix_delivery_owed", table_name="delivery")
    with op.batch_alter_table("delivery") as batch:
        for name in reversed(COPIES):
            batch.drop_column(name)
