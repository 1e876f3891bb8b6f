"""The delivery store on PostgreSQL."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import sqlalchemy as sa

from publisher.models import DeliveryStatus
from publisher.pipeline.store.base import ACTIVE, D, DeliveryStore, WhyNot


class PostgresStore(DeliveryStore):
    MARK = "%s"

    def _claim_query(self, cols: tuple[Any, ...], channel_in: Any) -> Any:
        now = sa.bindparam("now")
        return (
            sa.select(*cols)
            .where(
                sa.or_(
                    sa.and_(D.c.status.in_([s.value for s in ACTIVE]), D.c.due_at <= now),
                    sa.and_(D.c.status == DeliveryStatus.CLAIMED.value, D.c.lease_expires_at < now),
                ),
                channel_in,
            )
            .order_by(D.c.due_at, D.c.id)
            .limit(sa.bindparam("lim", type_=sa.Integer))
            .with_for_update(skip_locked=True)
        )

    def begin_call(self, delivery_id: int, attempt: int, version: int | None) -> tuple[bool, WhyNot | None]:
        # The UPDATE alone, in autocommit, straight to the driver: one round trip, and its row lock
        # orders it against a person's request as a transaction would.
        with self.connections.driver(write=False, what="start of a delivery's call") as raw:
            started, why = self._begin_call(raw, delivery_id, attempt, version)
        return started, None if why is None else WhyNot(*why)

    def checkpointer(self) -> nullcontext[None]:
        return nullcontext()
