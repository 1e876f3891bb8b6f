"""A store of 1,000,000 items: the stats queries, the /metrics scrape, and a worker's memory.

    python bench/store_1m.py                     # PostgreSQL (a fresh database, dropped afterwards)
    python bench/store_1m.py --sqlite            # the same on a SQLite file
    python bench/store_1m.py --keep              # keep the database for poking at it
    python bench/store_1m.py --stats-only        # skip the worker run at the end
    python bench/store_1m.py --reuse URL         # a store kept by --keep (migrated first, then analysed)

The store is generated inside the database (generate_series / a recursive CTE): 1,000,000 items over
five years (about 550 a day), each on two channels (2,000,000 deliveries: 97 % done, 2 % failed, 1 %
still owed) with one attempt row per done delivery, and 10,000 of the owed items approved and due.

Timed (best of 3): ``publisher.counting.stats.counts`` for the groupings the office uses over this year, the
report period (1 October to 25 November) and all five years, each twice in the same run: ``live``
(``rollup=False``: the deliveries joined to their items) and ``roll-up`` (the default: the daily
roll-up of publisher/counting/rollup.py, including the incremental refresh that precedes each read; its
first build is timed apart). Then ``metrics_text``. Target: stats under 200 ms. Then
``publisher run --once`` works the 20,000 due deliveries (memory channels) and its peak resident
memory is read from the kernel (``wait4``'s ru_maxrss). Target: under 200 MB.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ROOT, drop_pg_database, fresh_store, settings_data, write_settings  # noqa: E402

N = 1_000_000
CATS = ["规章制度", "招聘信息", "公告公示", "招标公告", "中标公告", "新闻", "学报", "其他"]
DEPTS = ["校长办公室", "党委宣传部", "人事处", "教务处", "招生就业处", "财务处", "资产管理处", "学生工作部"]

PG_SQL = [
    """insert into item (id, title, summary, body_markdown, body_html, category, department, author_id,
         checklist_item, channels, status, version, publish_at, created_at, updated_at)
       select g, '公示第' || g || '号', '', '正文', '<p>正文</p>',
         (cast(:cats as text[]))[1 + g % 8], (cast(:depts as text[]))[1 + (g / 7) % 8],
         :author, case when g % 10 = 0 then 1 + g % 50 end, '["site","hook"]'::json,
         case when g % 100 = 1 then 'scheduled' else 'published' end, 1, ts, ts, ts
       from generate_series(1, :n) g, lateral (select cast(:start as timestamp) + g * interval '157 seconds') t(ts)""",
    """insert into delivery (item_id, channel, op, status, due_at, item_version, attempts, state, published_at,
         created_at, updated_at, url, remote_id, item_category, item_department, item_checklist_item)
       select i.id, c.ch, 'publish', s.st, case when s.st = 'pending' then now() - interval '1 minute'
         else i.publish_at end, 1, 1, '{}'::json, case when s.st = 'done' then i.publish_at + interval '1 minute' end,
         i.publish_at, i.publish_at + interval '1 minute', null, null, i.category, i.department, i.checklist_item
       from item i cross join (values ('site'), ('hook')) c(ch),
         lateral (select case when i.id % 100 = 1 then 'pending' when i.id % 50 = 0 then 'failed'
                  else 'done' end) s(st)""",
    """insert into delivery_attempt (delivery_id, number, op, worker, started_at, finished_at, outcome)
       select id, 1, 'publish', 'bench', published_at, published_at, 'done' from delivery where status = 'done'""",
    """insert into review (item_id, item_version, level, reviewer_id, approved, at)
       select i.id, 1, l.lvl, case when l.lvl = 1 then :head else :sec end, true, i.created_at
       from item i cross join (values (1), (2)) l(lvl) where i.id % 100 = 1""",
    "analyze",
]

SQLITE_SQL = [
    """with recursive g(x) as (select 1 union all select x + 1 from g where x < :n)
       insert into item (id, title, summary, body_markdown, body_html, category, department, author_id,
         checklist_item, channels, status, version, publish_at, created_at, updated_at)
       select x, '公示第' || x || '号', '', '正文', '<p>正文</p>', json_extract(:cats, '$[' || (x % 8) || ']'),
         json_extract(:depts, '$[' || ((x / 7) % 8) || ']'), :author, case when x % 10 = 0 then 1 + x % 50 end,
         '["site","hook"]', case when x % 100 = 1 then 'scheduled' else 'published' end, 1,
         datetime(:start, '+' || (x * 157) || ' seconds'), datetime(:start, '+' || (x * 157) || ' seconds'),
         datetime(:start, '+' || (x * 157) || ' seconds')
       from g""",
    """insert into delivery (item_id, channel, op, status, due_at, item_version, attempts, state, published_at,
         created_at, updated_at, item_category, item_department, item_checklist_item)
       select i.id, c.ch, 'publish', s.st, case when s.st = 'pending' then datetime('now', '-1 minute')
         else i.publish_at end, 1, 1, '{}', case when s.st = 'done' then datetime(i.publish_at, '+1 minute') end,
         i.publish_at, datetime(i.publish_at, '+1 minute'), i.category, i.department, i.checklist_item
       from item i cross join (select 'site' as ch union all select 'hook') c
       cross join (select 1) join (select id, case when id % 100 = 1 then 'pending' when id % 50 = 0 then 'failed'
         else 'done' end as st from item) s on s.id = i.id""",
    """insert into delivery_attempt (delivery_id, number, op, worker, started_at, finished_at, outcome)
       select id, 1, 'publish', 'bench', published_at, published_at, 'done' from delivery where status = 'done'""",
    """insert into review (item_id, item_version, level, reviewer_id, approved, at)
       select i.id, 1, l.lvl, case when l.lvl = 1 then :head else :sec end, 1, i.created_at
       from item i cross join (select 1 as lvl union all select 2) l where i.id % 100 = 1""",
    "analyze",
]


def best_of(fn, k: int = 3) -> float:
    best = float("inf")
    for _ in range(k):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sqlite", action="store_true")
    p.add_argument("--db", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    p.add_argument("-n", type=int, default=N)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--stats-only", action="store_true", help="time the stats and /metrics, not the worker")
    p.add_argument("--reuse", metavar="URL", help="time the queries on a store kept by an earlier --keep run")
    args = p.parse_args(argv)
    from publisher.counting import periods, stats
    from publisher.metrics import metrics_text

    tmp = Path(tempfile.mkdtemp(prefix="store-1m-"))
    channels = {"site": {"type": "memory"}, "hook": {"type": "memory"}}
    if args.reuse:
        from publisher.app import open_app
        from publisher.settings import Settings

        t = time.perf_counter()
        app = open_app(Settings(**settings_data(tmp, args.reuse, channels, 4)), run_migrations=True)
        migrated = time.perf_counter() - t
        args.keep = True
    else:
        app = fresh_store(tmp, None if args.sqlite else args.db, channels, threads=4)
    eng = app.engine
    with eng.connect() as c:
        users = dict(c.execute(sa.text('select name, id from "user"')).all())
    # five years (1,000,000 × 157 s) ending a few days before this benchmark's measurement day: a
    # store does not hold deliveries changed in the future (they would be recomputed by every refresh)
    start = datetime(2021, 12, 1, tzinfo=UTC).replace(tzinfo=None)
    params = {"n": args.n, "author": users["ed"], "head": users["head"], "sec": users["sec"]}
    t = time.perf_counter()
    with eng.begin() as c:
        for sql in [] if args.reuse else SQLITE_SQL if args.sqlite else PG_SQL:
            if args.sqlite:
                import json

                q = {
                    **params,
                    "cats": json.dumps(CATS, ensure_ascii=False),
                    "depts": json.dumps(DEPTS, ensure_ascii=False),
                    "start": start.isoformat(sep=" "),
                }
            else:
                q = {**params, "cats": CATS, "depts": DEPTS, "start": start}
            used = {k: v for k, v in q.items() if f":{k}" in sql}
            if sql == "analyze" and not args.sqlite:
                continue
            c.execute(sa.text(sql), used)
        if not args.sqlite and not args.reuse:
            c.execute(sa.text("select setval(pg_get_serial_sequence('item', 'id'), (select max(id) from item))"))
            c.execute(
                sa.text("select setval(pg_get_serial_sequence('delivery', 'id'), (select max(id) from delivery))")
            )
    if args.reuse and args.sqlite:
        # statistics for what a migration since the store was kept added or rewrote, as after generating
        with eng.begin() as c:
            c.execute(sa.text("analyze"))
    if not args.sqlite:
        with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(sa.text("vacuum analyze"))
    with eng.connect() as c:
        n_items, n_del, n_att = (
            c.execute(sa.text(f"select count(*) from {t}")).scalar() for t in ("item", "delivery", "delivery_attempt")
        )
    print(
        f"store: {eng.dialect.name}, {n_items:,} items, {n_del:,} deliveries, {n_att:,} attempts "
        f"(generated in {time.perf_counter() - t:.0f} s)",
        flush=True,
    )
    if args.reuse:
        print(f"opened and migrated in {migrated:.1f} s", flush=True)
    # the deliveries' copies of their item's fields (migration 0007), which the live counts read: the
    # equality checks below compare the roll-up (built through the item table) with them
    with eng.connect() as c:
        drift = c.execute(
            sa.text(
                "select count(*) from delivery d join item i on i.id = d.item_id where "
                + " or ".join(
                    f"d.item_{f} is distinct from i.{f}" if not args.sqlite else f"d.item_{f} is not i.{f}"
                    for f in ("category", "department", "checklist_item")
                )
            )
        ).scalar()
    print(f"deliveries whose copies of the item's fields differ from it: {drift}", flush=True)
    assert drift == 0

    tz = ZoneInfo("Asia/Shanghai")
    this_year = periods.period("2026-01-01", "2026-12-31", tz)
    all_years = periods.period("2022-01-01", "2026-12-31", tz)
    report = periods.period("2026-10-01", "2026-11-25", tz)
    queries = [
        ("this year by channel", this_year, ("channel",)),
        ("this year by category", this_year, ("category",)),
        ("this year by department", this_year, ("department",)),
        ("this year by month", this_year, ("month",)),
        ("this year by checklist item", this_year, ("checklist_item",)),
        ("this year by channel × month", this_year, ("channel", "month")),
        ("this year by channel × category × month", this_year, ("channel", "category", "month")),
        ("this year by category × department", this_year, ("category", "department")),
        ("this year by channel × department", this_year, ("channel", "department")),
        ("report period by category × department", report, ("category", "department")),
        ("report period by channel × checklist item", report, ("channel", "checklist_item")),
        ("five years by channel", all_years, ("channel",)),
        ("five years by channel × year", all_years, ("channel", "year")),
        ("five years by category × month", all_years, ("category", "month")),
    ]
    t = time.perf_counter()
    from publisher.counting import rollup

    rollup.refresh(eng, tz)
    print(f"roll-up first build: {time.perf_counter() - t:.1f} s", flush=True)
    t = time.perf_counter()
    print(
        f"roll-up refresh with nothing changed: {rollup.refresh(eng, tz)} days recomputed in "
        f"{(time.perf_counter() - t) * 1000:.0f} ms",
        flush=True,
    )
    print(f"  {'stats.counts':50} {'live':>8} {'roll-up':>8}")
    worst = 0.0
    for label, (s, e), by in queries:
        q = stats.StatsQuery(start=s, end=e, by=by, tz=tz)
        live = best_of(lambda q=q: stats.counts(eng, q, rollup=False))
        took = best_of(lambda q=q: stats.counts(eng, q))
        assert stats.counts(eng, q) == stats.counts(eng, q, rollup=False), label
        worst = max(worst, took)
        print(f"  {label:50} {live * 1000:5.0f} ms {took * 1000:5.0f} ms", flush=True)
    print(f"stats (roll-up): slowest {worst * 1000:.0f} ms (target < 200 ms); every result equal to the live one")
    took = best_of(lambda: metrics_text(eng))
    print(f"/metrics scrape (database part): {took * 1000:.0f} ms")

    if args.stats_only:
        args.keep = args.keep or bool(args.reuse)
        url = app.settings.database_url
        app.close()
        if not args.sqlite and not args.keep:
            drop_pg_database(url)
        elif args.keep:
            print(f"kept: {url}")
        return 0
    settings = write_settings(tmp / "settings.toml", settings_data(tmp, app.settings.database_url, channels, 4))
    proc = subprocess.Popen(
        [sys.executable, "-m", "publisher.cli", "--settings", str(settings), "run", "--once"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    t = time.perf_counter()
    _pid, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read().decode(errors="replace").strip().splitlines()  # type: ignore[union-attr]
    print(
        f"worker `publisher run --once`: {out[-1] if out else ''} in {time.perf_counter() - t:.1f} s, "
        f"peak RSS {usage.ru_maxrss / 1024:.0f} MB (target < 200 MB), exit {os.waitstatus_to_exitcode(status)}"
    )
    url = app.settings.database_url
    app.close()
    if not args.sqlite and not args.keep:
        drop_pg_database(url)
    elif args.keep:
        print(f"kept: {url}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
