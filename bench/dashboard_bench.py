"""Time the dashboard's queries on a 1,000,000-item SQLite store.

    python bench/dashboard_bench.py [--items 1000000] [--db /tmp/dash.db] [--keep]

The store is built in a few seconds with INSERT ... SELECT over a recursive CTE (no Python loop):
items spread over five years, departments and categories in proportion, one delivery per item
plus a second channel for every third item, a few failures and pending ones, and a year of WeChat
read counts. The dashboard's daily roll-up is built once (timed apart), then every dashboard query,
including the incremental refresh that precedes each read, is timed for the report period, this
week and the whole five years; each must answer in under 200 ms.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from publisher.counting import dashboard
from publisher.db import make_engine, migrate
from publisher.settings import DEFAULT_CATEGORIES, DEFAULT_DEPARTMENTS

LIMIT_MS = 200.0
TZ = ZoneInfo("Asia/Shanghai")


def build_store(path: Path, n_items: int, today: date) -> None:
    if path.exists():
        path.unlink()
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    cats = ",".join(f"('{c}')" for c in DEFAULT_CATEGORIES)
    depts = ",".join(f"('{d}')" for d in DEFAULT_DEPARTMENTS)
    span = 5 * 365 * 86400
    end = datetime(today.year, today.month, today.day).strftime("%Y-%m-%d %H:%M:%S")
    t0 = time.perf_counter()
    with con:
        con.execute("INSERT INTO department(name) SELECT column1 FROM (VALUES " + depts + ")")
        con.execute(
            "INSERT INTO user(id, name, display_name, role, department, active, created_at) "
            "VALUES (1, 'ed', 'ed', 'editor', '校长办公室', 1, '2020-01-01 00:00:00.000000')"
        )
        con.execute("CREATE TEMP TABLE cats(i INTEGER PRIMARY KEY, name TEXT)")
        con.execute("INSERT INTO cats(name) SELECT column1 FROM (VALUES " + cats + ")")
        con.execute("CREATE TEMP TABLE depts(i INTEGER PRIMARY KEY, name TEXT)")
        con.execute("INSERT INTO depts(name) SELECT column1 FROM (VALUES " + depts + ")")
        con.execute(
            f"""
            WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < {n_items})
            INSERT INTO item(id, title, summary, body_markdown, body_html, category, department, author_id,
                             checklist_item, channels, status, version, publish_at, created_at, updated_at)
            SELECT n, '通知 ' || n, '', '正文', '<p>正文</p>',
                   (SELECT name FROM cats WHERE i = 1 + (n * 7) % {len(DEFAULT_CATEGORIES)}),
                   (SELECT name FROM depts WHERE i = 1 + (n / 8) % {len(DEFAULT_DEPARTMENTS)}),
                   1, 1 + n % 50, '["website"]', 'published', 1,
                   strftime('%Y-%m-%d %H:%M:%S.000000', '{end}', '-' || ((n * 7919) % {span}) || ' seconds'),
                   strftime('%Y-%m-%d %H:%M:%S.000000', '{end}', '-' || ((n * 7919) % {span}) || ' seconds'),
                   strftime('%Y-%m-%d %H:%M:%S.000000', '{end}', '-' || ((n * 7919) % {span}) || ' seconds')
            FROM seq
            """
        )
        con.execute(
            """
            INSERT INTO delivery(item_id, channel, op, status, due_at, item_version, attempts, state, url,
                                 remote_id, published_at, created_at, updated_at)
            SELECT id, 'website', 'publish', 'done', publish_at, 1, 1, '{}', 'https://example/' || id, id,
                   publish_at, publish_at, publish_at FROM item
            """
        )
        con.execute(
            """
            INSERT INTO delivery(item_id, channel, op, status, due_at, item_version, attempts, state,
                                 remote_id, published_at, last_error, last_error_kind, created_at, updated_at)
            SELECT id, 'wechat', 'publish',
                   CASE WHEN id % 97 = 0 THEN 'failed' WHEN id % 89 = 0 THEN 'pending' ELSE 'done' END,
                   publish_at, 1, 1, '{}', 'w' || id,
                   CASE WHEN id % 97 = 0 OR id % 89 = 0 THEN NULL ELSE publish_at END,
                   CASE WHEN id % 97 = 0 THEN 'errcode 45009: reach max api daily quota limit' END,
                   CASE WHEN id % 97 = 0 THEN 'permanent' END,
                   publish_at, publish_at
            FROM item WHERE id % 3 = 0
            """
        )
        con.execute(
            f"""
            WITH RECURSIVE d(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM d WHERE k < 364)
            INSERT INTO channel_stat(channel, remote_id, day, metric, value)
            SELECT 'wechat', 'w' || (k * 3 + 3), date('{today.isoformat()}', '-' || k || ' days'), m.metric,
                   (k * 37) % 500
            FROM d, (SELECT 'reads' AS metric UNION ALL SELECT 'shares') AS m
            """
        )
    con.execute("ANALYZE")
    con.close()
    print(f"built {n_items:,} items in {time.perf_counter() - t0:.1f} s → {path} ({path.stat().st_size / 1e6:.0f} MB)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--db", type=Path, default=Path("/tmp/publisher-dashboard-bench.db"))
    ap.add_argument("--keep", action="store_true", help="reuse an existing store at --db")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    today = datetime.now(TZ).date()
    if not (args.keep and args.db.exists()):
        build_store(args.db, args.items, today)
    engine = make_engine(f"sqlite:///{args.db}")
    t0 = time.perf_counter()
    dashboard.refresh(engine, TZ)
    print(f"roll-up built once in {time.perf_counter() - t0:.1f} s (later refreshes recompute only changed days)")
    worst = 0.0
    for kind, s, e in (
        ("report", None, None),
        ("week", None, None),
        ("custom", (today - timedelta(days=5 * 365)).isoformat(), today.isoformat()),
    ):
        _, start, end = dashboard.resolve_period(kind, s, e, TZ, today)
        runs = [dashboard.build(engine, start, end, TZ) for _ in range(args.runs)]
        names = list(runs[0].timings_ms)
        med = {n: statistics.median(r.timings_ms[n] for r in runs) for n in names}
        total = sum(med.values())
        published = sum(int(r["published"]) for r in runs[0].by_category)  # type: ignore[call-overload]
        print(
            f"{kind:7} {start.date()}..{(end - timedelta(days=1)).date()}  published={published:>9,}  "
            + "  ".join(f"{n}={v:6.1f}ms" for n, v in med.items())
            + f"  total={total:6.1f}ms"
        )
        worst = max(worst, *med.values())
    engine.dispose()
    print(f"slowest query: {worst:.1f} ms (limit {LIMIT_MS:.0f} ms) → {'OK' if worst < LIMIT_MS else 'TOO SLOW'}")
    return 0 if worst < LIMIT_MS else 1


if __name__ == "__main__":
    sys.exit(main())
