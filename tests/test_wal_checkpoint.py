"""The worker's WAL checkpointer copies committed pages into the database file off the writer's thread."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import sqlalchemy as sa

from publisher.db import WalCheckpointer, make_engine


def _rows_in_main_file(db: Path, tmp: Path) -> int:
    """Rows of ``t`` in the database file alone, as if the write-ahead log were lost."""
    copy = tmp / "main-only.db"
    shutil.copyfile(db, copy)
    for suffix in ("-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    with sqlite3.connect(copy) as conn:
        try:
            return conn.execute("select count(*) from t").fetchone()[0]
        except sqlite3.OperationalError:  # the table itself is still only in the log
            return 0


def test_committed_pages_reach_the_database_file_while_the_checkpointer_runs(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    engine = make_engine(f"sqlite:///{db}")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("create table t (id integer primary key, body text)")
            conn.execute(sa.text("insert into t (body) values (:b)"), [{"b": "x" * 200} for _ in range(200)])
        # 200 rows are a few dozen pages: far below the 1,000 pages at which a commit checkpoints itself
        assert _rows_in_main_file(db, tmp_path) == 0
        with WalCheckpointer(engine, every=0.05):
            deadline = time.monotonic() + 10
            while _rows_in_main_file(db, tmp_path) != 200 and time.monotonic() < deadline:
                time.sleep(0.05)
        assert _rows_in_main_file(db, tmp_path) == 200
    finally:
        engine.dispose()


def test_the_checkpointer_does_nothing_on_postgresql_and_stops_cleanly(tmp_path: Path) -> None:
    engine = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1/postgres")
    with WalCheckpointer(engine, every=0.01) as ck:
        assert ck._thread is None
    engine.dispose()
