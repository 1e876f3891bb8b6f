"""Migrations on both engines: down to the first revision and up again, the schema the same after.

The dispatcher's speed depends on which indexes the delivery table has (every index is written twice
per delivery), so the round trip also pins that set.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from publisher.db import alembic_config, migrate

#: the delivery table's indexes at head (0010 dropped four that other indexes serve)
DELIVERY_INDEXES = {
    "ix_delivery_channel_remote_id",
    "ix_delivery_due",
    "ix_delivery_failed",
    "ix_delivery_owed",
    "ix_delivery_published_channel_item",
    "ix_delivery_updated_at",
}


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


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_recent_failures_read_the_failed_partial_index(app: Any) -> None:
    """The dashboard's recent failures lost their own index (ix_delivery_status_updated) in 0010; they
    must read ix_delivery_failed instead of walking deliveries (SQLite: PostgreSQL's plan for a small
    table is a sequential scan whatever the query)."""
    from publisher.counting import dashboard

    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, stmt: str, params: Any, context: Any, many: bool) -> None:
        seen.append((stmt, params))

    now = datetime.now(UTC)
    sa.event.listen(app.engine, "before_cursor_execute", record)
    try:
        assert dashboard.failures(app.engine, now - timedelta(days=30), now) == []
    finally:
        sa.event.remove(app.engine, "before_cursor_execute", record)
    ((stmt, params),) = [(s, p) for s, p in seen if "FROM delivery" in s]
    with app.engine.connect() as c:
        plan = " / ".join(r[-1] for r in c.exec_driver_sql("EXPLAIN QUERY PLAN " + stmt, params).all())
    assert "ix_delivery_failed" in plan and "SCAN delivery" not in plan, plan
