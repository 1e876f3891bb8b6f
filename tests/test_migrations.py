"""Migrations on both engines: down to the first revision and up again, the schema the same after.

The dispatcher's speed depends on which indexes the delivery table has (every index is written twice
per delivery), so the round trip also pins that set.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import command

from publisher.db import alembic_config, migrate

#: the delivery table's indexes at head (0010 dropped the three that only repeated another's first column)
DELIVERY_INDEXES = {
    "ix_delivery_channel_remote_id", "ix_delivery_due", "ix_delivery_failed", "ix_delivery_owed",
    "ix_delivery_published_channel_item", "ix_delivery_status_updated", "ix_delivery_updated_at",
}  # fmt: skip


def _schema(engine: sa.Engine) -> dict[str, Any]:
    insp = sa.inspect(engine)
    return {
        t: (sorted(c["name"] for c in insp.get_columns(t)), sorted(i["name"] for i in insp.get_indexes(t)))
        for t in sorted(insp.get_table_names())
    }


def _run(engine: sa.Engine, step: str, target: str) -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, step)(cfg, target)
        conn.commit()


def test_delivery_indexes_at_head(app: Any) -> None:
    # (PostgreSQL also lists the unique constraint uq_delivery_item_channel as an index)
    names = {i["name"] for i in sa.inspect(app.engine).get_indexes("delivery")} - {"uq_delivery_item_channel"}
    assert names == DELIVERY_INDEXES


def test_every_migration_goes_down_and_up_again(app: Any) -> None:
    engine = app.engine
    app.engine.dispose()
    head = _schema(engine)
    _run(engine, "downgrade", "base")
    left = set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    assert left == set(), left
    migrate(engine)
    assert _schema(engine) == head
