"""Dispatch throughput: the whole pipeline against a bare ``requests.Session`` loop, in one run.

    python bench/dispatch_bench.py                               # 10,000 deliveries, 1 thread
    python bench/dispatch_bench.py --threads 8 --latency-ms 20   # scaling against concurrency ÷ latency
    python bench/dispatch_bench.py --db postgresql+psycopg://postgres@127.0.0.1/bench_x

Both sides post the same signed JSON documents to the same local sink (channels.sandbox.sink),
one after the other in the same process, so the ratio is measured on the same machine state. The
pipeline side goes store → claim → webhook channel → record through :class:`Dispatcher`; only the
set-up (items, both approvals, deliveries) is written straight into the tables, for speed.

Targets (docs/benchmarks.md): pipeline ≤ 1.3 × the bare loop with one thread; with a 20 ms sink,
throughput ≥ 80 % of threads ÷ latency.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa
from requests.adapters import HTTPAdapter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import SECRET, drop_pg_database, fresh_store, seed_deliveries, start_sink  # noqa: E402


def bare_loop(hook_url: str, docs: list[dict[str, Any]], threads: int) -> float:
    """What a user would write instead: a pooled session per thread, JSON, HMAC, POST, check."""
    from channels.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

    secret = SECRET.encode()
    local = threading.local()

    def session() -> requests.Session:
        s = getattr(local, "s", None)
        if s is None:
            s = requests.Session()
            s.mount("http://", HTTPAdapter(pool_maxsize=4, max_retries=0))
            local.s = s
        return s

    def post(doc: dict[str, Any]) -> None:
        body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
        ts = str(int(time.time()))
        r = session().post(hook_url, data=body, timeout=(10, 10), headers={
            "Content-Type": "application/json; charset=utf-8", TIMESTAMP_HEADER: ts,
            SIGNATURE_HEADER: sign(secret, ts, body), "Idempotency-Key": f"bare-{doc['delivery_id']}",
            "X-Publisher-Event": "publish"})
        r.raise_for_status()
        r.json()

    t0 = time.perf_counter()
    if threads == 1:
        for doc in docs:
            post(doc)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(post, docs))
    return time.perf_counter() - t0


def pipeline(app: Any, threads: int) -> tuple[float, dict[str, int]]:
    from publisher.dispatch import Dispatcher

    d = Dispatcher(engine=app.engine, ctx=app.ctx, threads=threads)
    t0 = time.perf_counter()
    summary = d.run(once=True, horizon=timedelta(seconds=0))
    return time.perf_counter() - t0, dict(summary.outcomes)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=10_000, help="deliveries (default 10,000)")
    p.add_argument("--threads", type=int, default=1, help="worker threads (and bare-loop threads)")
    p.add_argument("--latency-ms", type=float, default=0.0, help="sink latency per delivery")
    p.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    p.add_argument("--sink", choices=["thread", "process"], default="thread",
                   help="run the sink in this process (Sink().start()) or as its own process")
    p.add_argument("--skip-bare", action="store_true", help="only the pipeline (e.g. when profiling)")
    p.add_argument("--profile", metavar="FILE", help="write a cProfile of the pipeline run to FILE")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="dispatch-bench-") as tmp:
        sink = start_sink(args.sink, latency_ms=args.latency_ms)
        try:
            app = fresh_store(Path(tmp), args.db, {"hook": {"type": "webhook", "url": sink.hook_url,
                                                             "max_concurrency": args.threads}},
                              threads=args.threads)
            t = time.perf_counter()
            docs = seed_deliveries(app, args.n, ["hook"])
            print(f"set-up: {args.n} deliveries in {time.perf_counter() - t:.1f} s "
                  f"({app.engine.dialect.name}, sink {args.sink}, latency {args.latency_ms:g} ms, "
                  f"{args.threads} thread(s))")
            bare = None
            if not args.skip_bare:
                bare = bare_loop(sink.hook_url, docs, args.threads)
                print(f"bare requests loop: {bare:.2f} s  {args.n / bare:,.0f}/s")
                sink.reset()
            if args.profile:
                import cProfile

                prof = cProfile.Profile()
                prof.enable()
            took, outcomes = pipeline(app, args.threads)
            if args.profile:
                prof.disable()
                prof.dump_stats(args.profile)
            print(f"pipeline:           {took:.2f} s  {args.n / took:,.0f}/s  outcomes {outcomes}")
            led = sink.ledger()
            with app.engine.connect() as conn:
                done = conn.execute(sa.text("select count(*) from delivery where status='done'")).scalar()
                attempts = conn.execute(sa.text("select count(*) from delivery_attempt")).scalar()
            print(f"check: sink accepted {led['accepted']} (duplicates {led['duplicates']}), "
                  f"{done} done, {attempts} attempt rows")
            ok = led["accepted"] == args.n and done == args.n and attempts == args.n
            if bare is not None:
                print(f"ratio pipeline / bare = {took / bare:.2f}  (target ≤ 1.3)")
            if args.latency_ms:
                limit = args.threads / (args.latency_ms / 1000)
                print(f"throughput {args.n / took:,.0f}/s = {args.n / took / limit:.0%} of the "
                      f"concurrency ÷ latency limit {limit:,.0f}/s (target ≥ 80%)")
            url = app.settings.database_url
            app.close()
            if url.startswith("postgresql"):
                drop_pg_database(url)
        finally:
            sink.stop()
    if not ok:
        print("FAILED: not every delivery was done exactly once", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PUBLISHER_WEBHOOK_SECRET", SECRET)
    raise SystemExit(main())
