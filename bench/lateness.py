"""Scheduling lateness: 10,000 items fall due within the same minute; how late does each start?

    python bench/lateness.py                       # SQLite, one worker, 4 threads
    python bench/lateness.py --db postgresql+psycopg://postgres@127.0.0.1/postgres

Due times are spread uniformly over one minute starting a few seconds after set-up (an office
scheduling a batch of notices "for 09:00" spreads over the minute as the reviews finish). Lateness is
the time from a delivery's due time to the start of its channel call, as the worker's ``on_start``
hook reports it (the same figure /metrics exports as publisher_schedule_lateness_seconds). Target:
p99 under 1 s.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import SECRET, drop_pg_database, fresh_store, seed_deliveries, start_sink  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=10_000)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--window", type=float, default=60.0, help="seconds over which they fall due")
    p.add_argument("--db", default=None)
    p.add_argument("--sink", choices=["thread", "process"], default="process")
    args = p.parse_args(argv)
    os.environ.setdefault("PUBLISHER_WEBHOOK_SECRET", SECRET)
    from publisher.models import Delivery
    from publisher.pipeline.worker import Dispatcher

    sink = start_sink(args.sink)
    with tempfile.TemporaryDirectory(prefix="lateness-") as tmp:
        app = fresh_store(
            Path(tmp),
            args.db,
            {"hook": {"type": "webhook", "url": sink.hook_url, "max_concurrency": args.threads}},
            threads=args.threads,
            poll_seconds=1.0,
        )  # the default poll, not a tuned one
        seed_deliveries(app, args.n, ["hook"])
        base = datetime.now(UTC) + timedelta(seconds=5)
        rnd = random.Random(1)
        dl = Delivery.__table__  # type: ignore[attr-defined]
        with app.engine.begin() as conn:
            ids = conn.execute(sa.select(dl.c.id)).scalars().all()
            conn.execute(
                sa.update(dl).where(dl.c.id == sa.bindparam("b_id")),
                [{"b_id": i, "due_at": base + timedelta(seconds=rnd.uniform(0, args.window))} for i in ids],
            )
        late: list[float] = []
        d = Dispatcher(engine=app.engine, ctx=app.ctx, threads=args.threads, on_start=lambda _ch, s: late.append(s))
        t0 = time.perf_counter()
        summary = d.run(once=True, horizon=timedelta(seconds=args.window + 30))
        took = time.perf_counter() - t0
        late.sort()
        pct = lambda q: late[min(len(late) - 1, int(q * len(late)))]  # noqa: E731
        print(
            f"{args.n} deliveries due within {args.window:g} s ({app.engine.dialect.name}, 1 worker × "
            f"{args.threads} threads, poll_seconds {app.settings.worker.poll_seconds:g}): "
            f"outcomes {dict(summary.outcomes)} in {took:.1f} s"
        )
        print(
            f"lateness p50 {pct(0.5) * 1000:.0f} ms, p99 {pct(0.99) * 1000:.0f} ms, max {late[-1] * 1000:.0f} ms "
            f"(target p99 < 1000 ms)"
        )
        url = app.settings.database_url
        app.close()
        if url.startswith("postgresql"):
            drop_pg_database(url)
    sink.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
