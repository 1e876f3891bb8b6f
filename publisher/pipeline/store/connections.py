"""The connections a worker's threads keep while it runs.

While a worker runs, each of its threads keeps its own connections between transactions: a checkout
from the pool costs a round trip on PostgreSQL (pool_pre_ping's ping) and more Python than a batched
claim's own statements. Outside a run (tests, tools) each step checks one out.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from publisher.db import read_only


class Connections:
    """A write engine and its read-only twin (publisher.db.read_only), per thread kept or not."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.read_engine = read_only(engine)
        self._local = threading.local()

    def hold(self) -> None:
        """From now on the calling thread keeps its connections (until :meth:`release`)."""
        self._local.hold = True

    def release(self) -> None:
        """Close the connections the calling thread kept (back to the pool)."""
        self._local.hold = False
        self._drop("conn")
        self._drop("wconn")

    @contextmanager
    def writing(self) -> Iterator[sa.Connection]:
        """One transaction, on the calling thread's kept write connection while it holds one."""
        if not getattr(self._local, "hold", False):
            with self.engine.begin() as conn:
                yield conn
            return
        conn = self._kept("wconn", self.engine)
        try:
            with conn.begin():
                yield conn
        except BaseException:
            self._drop("wconn")
            raise

    @contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        """Reads that need no snapshot across statements (see publisher.db.read_only), on the calling
        thread's kept read connection while it holds one."""
        if not getattr(self._local, "hold", False):
            with self.read_engine.connect() as conn:
                yield conn
            return
        conn = self._kept("conn", self.read_engine)
        try:
            yield conn
            conn.rollback()  # ends the read (PostgreSQL: nothing is sent in autocommit); conn stays
        except BaseException:
            self._drop("conn")
            raise

    @contextmanager
    def driver(self, *, write: bool, what: str) -> Iterator[Any]:
        """The calling thread's write (else read-only) connection as the driver's own, outside any
        transaction of SQLAlchemy's. A driver error comes out as SQLAlchemy's (what the callers
        handle) and the connection is thrown away."""
        attr, engine = ("wconn", self.engine) if write else ("conn", self.read_engine)
        kept = getattr(self._local, "hold", False)
        conn = self._kept(attr, engine) if kept else engine.connect()
        try:
            yield conn.connection.driver_connection
        except self.engine.dialect.loaded_dbapi.Error as exc:
            conn.invalidate(exc)  # SQLAlchemy did not see the error: the pool must not reuse (or reset) it
            if kept:
                self._drop(attr)
            raise sa.exc.OperationalError(what, None, exc) from exc
        finally:
            if not kept:
                conn.close()

    def _kept(self, attr: str, engine: Engine) -> sa.Connection:
        """The calling thread's kept connection ``attr``, checked out of ``engine`` the first time."""
        conn = getattr(self._local, attr, None)
        if conn is None:
            conn = engine.connect()
            setattr(self._local, attr, conn)
        return conn

    def _drop(self, attr: str) -> None:
        """Close the calling thread's kept connection ``attr``, if any: it may be broken (a cut, a
        restarted server), and the next step takes another."""
        conn = getattr(self._local, attr, None)
        if conn is not None:
            setattr(self._local, attr, None)
            conn.close()
