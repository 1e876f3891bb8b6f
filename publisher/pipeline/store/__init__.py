"""The store of a worker's deliveries, one implementation per engine: :func:`open_store`."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from publisher.pipeline.store.base import Claimed, DeliveryStore, WhyNot
from publisher.pipeline.workflow import Context

__all__ = ["Claimed", "DeliveryStore", "WhyNot", "open_store"]


def open_store(engine: Engine, ctx: Context, worker_id: str) -> DeliveryStore:
    """The delivery store for ``engine``'s dialect."""
    if engine.dialect.name == "postgresql":
        from publisher.pipeline.store.postgresql import PostgresStore

        return PostgresStore(engine, ctx, worker_id)
    from publisher.pipeline.store.sqlite import SqliteStore

    return SqliteStore(engine, ctx, worker_id)
