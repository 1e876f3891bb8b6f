"""A channel's way into the publisher's store (``ChannelEnv.sql``): connections lent from the engine's pool.

The website keeps its state here when the site is in a bucket, so workers on several hosts share it
(channels/website/store.py, migration 0019). The channel gets a DB-API connection in autocommit mode
and sends ``BEGIN``/``COMMIT`` itself, because it holds one lock over several statements and commits
mid-way; the connection goes back to the pool as it came.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy.engine import Engine


class EngineSql:
    """:class:`publisher.channel.SharedSql` over a SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.errors: tuple[type[BaseException], ...] = (engine.dialect.dbapi.Error,)  # type: ignore[union-attr]

    @contextlib.contextmanager
    def connect(self) -> Iterator[Any]:
        pooled = self.engine.raw_connection()
        conn = pooled.driver_connection
        try:
            if self.dialect == "postgresql":
                conn.autocommit = True  # the channel sends BEGIN/COMMIT; see the module docstring
            # SQLite: make_engine's connections have isolation_level None already (no implicit BEGIN)
            yield conn
        finally:
            try:
                if self.dialect == "postgresql" and not conn.closed:
                    conn.autocommit = False
            finally:
                pooled.close()
