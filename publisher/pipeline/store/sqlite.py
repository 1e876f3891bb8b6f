"""The delivery store on SQLite."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from publisher.db import WalCheckpointer
from publisher.models import DeliveryStatus, status_literal
from publisher.pipeline.store.base import ACTIVE, D, DeliveryStore, WhyNot


class SqliteStore(DeliveryStore):
    MARK = "?"

    def _claim_query(self, cols: tuple[Any, ...], channel_in: Any) -> Any:
        # SQLite answered PostgreSQL's OR by reading every delivery of the channel and sorting them
        # (4 ms for 10,000); one ordered range of (status, due_at) per status, each stopping at the
        # limit, costs a few rows each. Literal statuses: SQLite may then read ix_delivery_owed
        now, limit = sa.bindparam("now"), sa.bindparam("lim", type_=sa.Integer)
        parts = [
            sa.select(*cols).where(D.c.status == status_literal(st), D.c.due_at <= now, channel_in) for st in ACTIVE
        ]
        parts.append(
            sa.select(*cols).where(
                D.c.status == status_literal(DeliveryStatus.CLAIMED), D.c.lease_expires_at < now, channel_in
            )
        )
        subs = [p.order_by(D.c.due_at, D.c.id).limit(limit).subquery() for p in parts]
        union = sa.union_all(*(sa.select(q) for q in subs)).subquery()
        return sa.select(union).order_by(union.c.due_at, union.c.id).limit(limit)

    def _raw_json(self, column: Any) -> Any:
        # SQLite's text is parsed later, only when needed
        return sa.type_coerce(column, sa.Text).label(column.name)

    def begin_call(self, delivery_id: int, attempt: int, version: int | None) -> tuple[bool, WhyNot | None]:
        # Sent straight to the driver: through SQLAlchemy the start cost the loop more than the rest of
        # a delivery's bookkeeping (docs/benchmarks.md, "the start of a call"). A lone statement would
        # read an older snapshot than the write lock it then takes (SQLITE_BUSY_SNAPSHOT, no waiting),
        # so it runs inside BEGIN IMMEDIATE, on the write connection.
        with self.connections.driver(write=True, what="start of a delivery's call") as raw:
            raw.execute("BEGIN IMMEDIATE")
            try:
                started, why = self._begin_call(raw, delivery_id, attempt, version)
            except BaseException:
                raw.execute("ROLLBACK")
                raise
            raw.execute("COMMIT")
        return started, None if why is None else WhyNot(*why)

    def checkpointer(self) -> WalCheckpointer:
        return WalCheckpointer(self.engine)
