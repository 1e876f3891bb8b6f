"""Engines and sessions. Nothing is built at import time: every face (CLI, web, worker, tests)
makes its own engine from its own settings.

SQLite is the embedded default (``queue.db``): WAL mode so readers never block the writer, a busy
timeout so concurrent writers wait instead of failing, and ``BEGIN IMMEDIATE`` for every transaction
so two workers never deadlock upgrading a read lock to a write lock (the claim is a read-then-write).
Pure reads go through :func:`read_only` and emit no ``BEGIN`` at all: each statement reads its own
WAL snapshot and neither waits for nor blocks the writer (the dispatcher's lease check runs beside its
batched records). Readers that need one snapshot over several statements use the normal engine.
"""

from __future__ import annotations

import functools
import json
import logging
import operator
import threading
from collections import namedtuple
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine
from sqlmodel import Session

from publisher.errors import ConfigError, InvalidInput, PublisherError, StorageFull

log = logging.getLogger("publisher.db")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


#: execution option marking a connection that only reads (SQLite: deferred BEGIN, no write lock)
READ_ONLY_OPTION = "publisher_read_only"


def read_only(engine: Engine) -> Engine:
    """The same engine and pool, for reads that need no snapshot across statements.

    SQLite: no BEGIN (see the module docstring). PostgreSQL: autocommit, so a one-statement check is
    one round trip instead of three (BEGIN, the query, ROLLBACK); that is most of a lease check's cost.
    """
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT", **{READ_ONLY_OPTION: True})
    return engine.execution_options(**{READ_ONLY_OPTION: True})


def make_engine(url: str, *, immediate: bool = True, **kw: Any) -> Engine:
    """An engine for ``url``; for SQLite, WAL + busy timeout + BEGIN IMMEDIATE (unless read-only use)."""
    if url.startswith("sqlite"):
        if ":memory:" in url:
            raise ConfigError("an in-memory SQLite database cannot be shared by the worker threads; use a file")
        path = url.split("///", 1)[-1]
        if path and not Path(path).parent.exists():
            raise ConfigError(f"database folder {Path(path).parent} does not exist")
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 60}, pool_size=32, max_overflow=32, **kw
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (pysqlite's own is broken)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            # the queue's hot rows stay in memory; temporary b-trees (ORDER BY, IN lists) too
            cur.execute("PRAGMA cache_size=-32000")
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            if conn.get_execution_options().get(READ_ONLY_OPTION, False):
                return  # autocommit reads: see the module docstring
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    if url.startswith("postgresql"):
        return sa.create_engine(url, pool_size=16, max_overflow=16, pool_pre_ping=True, **kw)
    raise ConfigError(f"unsupported database URL {url.split(':', 1)[0]!r}: use sqlite:/// or postgresql+psycopg://")


class WalCheckpointer:
    """Runs SQLite's WAL checkpoints on a thread of their own while a worker writes.

    By default the commit that takes the write-ahead log past 1,000 pages copies it into the database
    file and syncs it, inside that commit: the dispatcher's record then stalls for as long as the disk
    takes (up to 0.4 s seen on a busy machine, a tenth of all commit time in the dispatch benchmark).
    A passive checkpoint every ``every`` seconds from this thread keeps the log short, so the commits
    seldom meet that threshold; it waits for no lock and blocks neither readers nor writers, and the
    interpreter lock is released while SQLite works. What stays with the writer is one sync of the
    log's header when it starts reusing the log after a checkpoint (``synchronous=NORMAL``). Nothing
    changes for durability: the same pages are synced, by another thread. On PostgreSQL there is
    nothing to do.
    """

    def __init__(self, engine: Engine, every: float = 0.25) -> None:
        self.engine = engine
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> WalCheckpointer:
        if self.engine.dialect.name == "sqlite":
            self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        conn = None
        while not self._stop.wait(self.every):
            try:
                if conn is None:
                    conn = self.engine.raw_connection()
                conn.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except Exception as exc:  # never fatal: the commits' own checkpoint still works
                log.debug("WAL checkpoint skipped: %s", exc)
                if conn is not None:
                    conn.invalidate()
                    conn = None
        if conn is not None:
            conn.close()


# ------------------------------------------------------------------------------ errors at the edge
NUL_MESSAGE = "text cannot contain the NUL character (\\0, 0x00): remove it and try again; nothing was changed"


def _store_name(url: str | sa.URL | None) -> str:
    text = str(url or "")
    if text.startswith("sqlite"):
        return text.split("///", 1)[-1] or "the database"
    return f"the database at {sa.make_url(text).render_as_string()}" if text else "the database"


def _user() -> str:
    import os
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def explain_store_error(exc: BaseException, url: str | sa.URL | None = None) -> PublisherError | None:
    """The one line for a database or disk failure a person can act on (None for any other failure).

    Never quotes the statement or its parameters: SQLAlchemy's own message shows both, and they hold
    the item's text (a read-only store printed a confidential draft into a cron mail).
    """
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" holding {exc.filename}" if exc.filename else ""
        return StorageFull(f"the disk{where} is full: free space there, then try again; nothing was changed")
    if not isinstance(exc, sa.exc.DBAPIError):
        return None
    orig = exc.orig
    message = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    state = getattr(getattr(orig, "diag", None), "sqlstate", None) or getattr(orig, "sqlstate", None)
    name = _store_name(url)
    if "cannot contain NUL" in message:
        return InvalidInput(NUL_MESSAGE)
    if "database or disk is full" in message or state == "53100":
        where = name if name.startswith("the database") else f"the disk holding {name}"
        return StorageFull(f"{where} is full: free space there, then try again; nothing was changed")
    if "readonly database" in message or state == "25006":
        return ConfigError(
            f"{name} is read-only for the user {_user()}: make it and its folder writable for that user, "
            "or run publisher as the user who owns it; nothing was changed"
        )
    if "file is not a database" in message:
        return ConfigError(
            f"{name} is not a SQLite database (it holds something else): move it aside and run `publisher init`, "
            "or set database_url to the store's file; the file was left as it was"
        )
    if "unable to open database file" in message:
        return ConfigError(
            f"cannot open {name} as the user {_user()}: check that it and its folder exist and "
            "may be written by that user"
        )
    return None


def _refuse_nul(session: Session, _context: Any, _instances: Any) -> None:
    """PostgreSQL refuses NUL in text and SQLite keeps it: refuse it on every engine, naming the field."""
    for obj in (*session.new, *session.dirty):
        state = sa.inspect(obj)
        for attr in state.mapper.column_attrs:
            value = state.dict.get(attr.key)
            values = value if isinstance(value, list | tuple) else (value,)
            if any(isinstance(v, str) and "\0" in v for v in values):
                what = f"{state.mapper.class_.__name__.lower()} {attr.key.replace('_', ' ')}"
                raise InvalidInput(f"the {what}: {NUL_MESSAGE}")


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One user action = one transaction: committed on success, rolled back on any error.

    A database failure a person can fix (disk full, read-only file, NUL in text on PostgreSQL) leaves
    as a PublisherError with one line that quotes no item text; any other failure as it came.
    """
    with Session(engine, expire_on_commit=False) as session:
        event.listen(session, "before_flush", _refuse_nul)
        try:
            yield session
            session.commit()
        except sa.exc.DBAPIError as exc:
            session.rollback()
            explained = explain_store_error(exc, engine.url)
            if explained is None:
                raise
            raise explained from exc
        except BaseException:
            session.rollback()
            raise


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    try:
        with engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
    except sa.exc.DBAPIError as exc:
        explained = explain_store_error(exc, engine.url)
        if explained is None:
            raise
        raise explained from exc


def schema_is_current(engine: Engine) -> bool:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(str(engine.url)))
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
        conn.rollback()
    return current == set(script.get_heads())


class _JsonList(sa.types.TypeDecorator[list[Any]]):
    """A list bound as one JSON text parameter (SQLite's side of :func:`one_of`)."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        return None if value is None else json.dumps(list(value), ensure_ascii=False)


def one_of(dialect: str, column: Any, name: str) -> Any:
    """``column IN (the list bound as name)``, one SQL text whatever the number of values.

    An ``in_`` with an expanding parameter is rewritten by SQLAlchemy on every execution (one
    placeholder per value, then their parameters processed one by one): on the dispatcher's batched
    claim, post snapshot and record that cost more than running the statements. This binds the whole
    list as one value — ``col IN (SELECT value FROM json_each(?))`` on SQLite, ``col = ANY(?)`` with
    an array on PostgreSQL — and both engines answer it from the column's index.
    """
    if dialect == "postgresql":
        return column == sa.any_(sa.bindparam(name, type_=postgresql.ARRAY(column.type)))
    values = sa.select(sa.literal_column("value")).select_from(sa.func.json_each(sa.bindparam(name, type_=_JsonList())))
    return column.in_(values.scalar_subquery())


def records(result: Any) -> list[Any]:
    """The rows of ``result`` as plain named tuples, for code that reads many rows by column name.

    SQLAlchemy's ``Row`` answers ``row.name`` only after an ordinary attribute lookup has failed, and
    that failure builds an ``AttributeError`` message each time: about 2,000 instructions per access,
    a seventh of the dispatcher's loop (bench/loop_cpu.py under callgrind, docs/benchmarks.md). A
    named tuple's fields are read in C.
    """
    return list(map(_record_type(tuple(result.keys()))._make, result))


@functools.lru_cache(maxsize=256)
def _record_type(keys: tuple[str, ...]) -> Any:
    return namedtuple("Record", keys, rename=True)  # type: ignore[misc]  # noqa: PYI024


class DriverMany:
    """An INSERT or UPDATE run many times through the driver's own ``executemany``.

    SQLAlchemy's executemany builds, row by row, a dictionary of every parameter and runs each value's
    type processor through several layers; on the dispatcher's batched record that was a fifth of the
    loop thread's time. This compiles ``statement`` once for ``keys``, keeps the dialect's own bind
    processors (so values are stored exactly as SQLAlchemy stores them: UTC datetimes, JSON text) and
    hands the driver plain tuples. It still runs on a SQLAlchemy connection, inside its transaction.

    On PostgreSQL an INSERT goes as one ``COPY … FROM STDIN`` instead: psycopg's executemany sends and
    answers each row as its own statement, which cost the client four times, and the server three
    times, what COPY's rows do (the appends of the record: attempts and audit rows).
    """

    def __init__(self, dialect: sa.Dialect, statement: Any, keys: Any) -> None:
        insert = isinstance(statement, sa.Insert)
        if insert:
            statement = statement.inline()  # no RETURNING of the new ids: nobody reads them
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        if compiled.insert_prefetch or compiled.update_prefetch or "POSTCOMPILE" in compiled.string:
            raise ValueError("DriverMany needs every value given: no Python-side defaults, no expanding IN")
        self.sql = compiled.string
        self.positional = bool(compiled.positional)
        names = list(compiled.positiontup or []) if self.positional else list(compiled.binds)
        # each value's type processor as SQLAlchemy's own execution would run it
        procs = {n: compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names}
        keys = [compiled.binds[name].key for name in names]
        self._names = names
        self._get = operator.itemgetter(*keys) if len(keys) > 1 else (lambda d, k=keys[0]: (d[k],))
        self._procs = [(i, _same_datetime_once(procs[n])) for i, n in enumerate(names) if procs.get(n)]
        self._copy: str | None = None
        if insert and dialect.name == "postgresql":
            prep = dialect.identifier_preparer
            table = statement.table
            columns = ", ".join(prep.quote(table.c[k].name) for k in keys)
            self._copy = f"COPY {prep.format_table(table)} ({columns}) FROM STDIN"

    def execute(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        get, procs = self._get, self._procs
        if self._copy is not None:
            with conn.connection.driver_connection.cursor() as cur, cur.copy(self._copy) as copy:
                for d in rows:
                    values = list(get(d))
                    for i, p in procs:
                        values[i] = p(values[i])
                    copy.write_row(values)
            return
        params: list[Any] = []
        for d in rows:
            values = list(get(d))
            for i, p in procs:
                values[i] = p(values[i])
            params.append(tuple(values) if self.positional else dict(zip(self._names, values, strict=True)))
        conn.exec_driver_sql(self.sql, params)


def _same_datetime_once(process: Any) -> Any:
    """``process`` that converts a datetime it has just converted only once: a batch shares its ``now``
    across every row and column, and the conversion was most of a row's cost."""
    last: list[Any] = [None, None]

    def run(value: Any) -> Any:
        if type(value) is datetime and value is last[0]:  # immutable, and kept alive by ``last``
            return last[1]
        out = process(value)
        if type(value) is datetime:
            last[0], last[1] = value, out
        return out

    return run
