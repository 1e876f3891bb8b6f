"""Dispatch throughput: the whole pipeline against a bare ``requests.Session`` loop, in one run.

    python bench/dispatch_bench.py                               # 3 rounds of 10,000 deliveries, 1 thread
    python bench/dispatch_bench.py --threads 8 --latency-ms 20   # scaling against concurrency ÷ latency
    python bench/dispatch_bench.py --db postgresql+psycopg://postgres@127.0.0.1/bench_x

Both sides post the same signed JSON documents to the same local sink (channels.sandbox.sink, in
its own process unless ``--sink thread``), back to back in each round and in alternating order
from round to round, so each round's ratio is measured on the same machine state; the median
ratio is the figure quoted. CPU per delivery (this process plus the sink's) is printed beside it:
on a shared machine it moves less than the times. The
pipeline side goes store → claim → webhook channel → record through :class:`Dispatcher`; only the
set-up (items, both approvals, deliveries) is written straight into the tables, for speed.

Targets (docs/benchmarks.md): pipeline ≤ 1.3 × the bare loop with one thread; with a 20 ms sink,
throughput ≥ 80 % of threads ÷ latency.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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


def bare_loop(hook_url: str, docs: list[dict[str, Any]], threads: int, env_once: bool = False) -> float:
    """What a user would write instead: a pooled session per thread, JSON, HMAC, POST, check.

    ``env_once``: the session does not read the environment's proxy settings on every request
    (``trust_env = False``), as the webhook channel does; by default it is plain ``requests``.
    """
    from channels.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

    secret = SECRET.encode()
    local = threading.local()

    def session() -> requests.Session:
        s = getattr(local, "s", None)
        if s is None:
            s = requests.Session()
            s.mount("http://", HTTPAdapter(pool_maxsize=4, max_retries=0))
            s.trust_env = not env_once
            local.s = s
        return s

    def post(doc: dict[str, Any]) -> None:
        body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
        ts = str(int(time.time()))
        r = session().post(
            hook_url,
            data=body,
            timeout=(10, 10),
            headers={
                "Content-Type": "application/json; charset=utf-8",
                TIMESTAMP_HEADER: ts,
                SIGNATURE_HEADER: sign(secret, ts, body),
                "Idempotency-Key": f"bare-{doc['delivery_id']}",
                "X-Publisher-Event": "publish",
            },
        )
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
    from publisher.pipeline.worker import Dispatcher

    d = Dispatcher(engine=app.engine, ctx=app.ctx, threads=threads)
    t0 = time.perf_counter()
    summary = d.run(once=True, horizon=timedelta(seconds=0))
    return time.perf_counter() - t0, dict(summary.outcomes)


def _cpu(sink: Any) -> float:
    """CPU seconds used so far by this process and, when it runs apart, the sink's process."""
    spent = time.process_time()
    proc = getattr(sink, "proc", None)
    if proc is not None:
        import psutil

        t = psutil.Process(proc.pid).cpu_times()
        spent += t.user + t.system
    return spent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=10_000, help="deliveries per side and round (default 10,000)")
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds, each timing both sides back to back, in alternating order (default 3)",
    )
    p.add_argument("--threads", type=int, default=1, help="worker threads (and bare-loop threads)")
    p.add_argument("--latency-ms", type=float, default=0.0, help="sink latency per delivery")
    p.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    p.add_argument(
        "--sink",
        choices=["process", "thread"],
        default="process",
        help="run the sink as its own process, as a receiving system is (default), or as a "
        "thread of this process, where it competes with both sides for the interpreter lock",
    )
    p.add_argument(
        "--bare-env-once",
        action="store_true",
        help="the bare loop skips requests' per-request reading of proxy settings from the "
        "environment, as the webhook channel does (default: plain requests)",
    )
    p.add_argument("--skip-bare", action="store_true", help="only the pipeline (e.g. when profiling)")
    p.add_argument("--profile", metavar="FILE", help="write a cProfile of the pipeline run to FILE")
    args = p.parse_args(argv)

    ok = True
    rows: list[tuple[float | None, float, float | None, float]] = []
    with tempfile.TemporaryDirectory(prefix="dispatch-bench-") as tmp:
        sink = start_sink(args.sink, latency_ms=args.latency_ms)
        try:
            app = fresh_store(
                Path(tmp),
                args.db,
                {"hook": {"type": "webhook", "url": sink.hook_url, "max_concurrency": args.threads}},
                threads=args.threads,
            )
            print(
                f"{app.engine.dialect.name}, sink as a {args.sink}, latency {args.latency_ms:g} ms, "
                f"{args.threads} thread(s), {args.n:,} deliveries per side, {args.rounds} round(s)"
            )
            for rnd in range(args.rounds):
                docs = seed_deliveries(app, args.n, ["hook"], start=rnd * args.n)
                bare = bare_cpu = None
                took = pipe_cpu = 0.0

                def run_bare(docs: list = docs) -> None:
                    nonlocal bare, bare_cpu
                    sink.reset()
                    c = _cpu(sink)
                    bare = bare_loop(sink.hook_url, docs, args.threads, env_once=args.bare_env_once)
                    bare_cpu = _cpu(sink) - c

                def run_pipeline(rnd: int = rnd) -> None:
                    nonlocal took, pipe_cpu, ok
                    sink.reset()
                    c = _cpu(sink)
                    if args.profile:
                        import cProfile

                        prof = cProfile.Profile()
                        prof.enable()
                    took, outcomes = pipeline(app, args.threads)
                    if args.profile:
                        prof.disable()
                        prof.dump_stats(args.profile)
                    pipe_cpu = _cpu(sink) - c
                    led = sink.ledger()
                    with app.engine.connect() as conn:
                        done = conn.execute(sa.text("select count(*) from delivery where status='done'")).scalar()
                        attempts = conn.execute(sa.text("select count(*) from delivery_attempt")).scalar()
                    want = args.n * (rnd + 1)
                    good = led["accepted"] == args.n and led["duplicates"] == 0 and done == want and attempts == want
                    ok = ok and good
                    print(
                        f"  check: sink accepted {led['accepted']} (duplicates {led['duplicates']}), "
                        f"{done} done, {attempts} attempt rows, outcomes {outcomes}{'' if good else '  FAILED'}"
                    )

                sides = [run_pipeline] if args.skip_bare else [run_bare, run_pipeline]
                for side in sides if rnd % 2 == 0 else sides[::-1]:
                    side()
                rows.append((bare, took, bare_cpu, pipe_cpu))
                line = f"round {rnd + 1}: pipeline {took:6.2f} s {args.n / took:6,.0f}/s"
                if bare is not None:
                    line += f"   bare loop {bare:6.2f} s {args.n / bare:6,.0f}/s   ratio {took / bare:.2f}"
                print(line, flush=True)
            url = app.settings.database_url
            app.close()
            if url.startswith("postgresql"):
                drop_pg_database(url)
        finally:
            sink.stop()

    pipe_total = sum(r[1] for r in rows)
    n_all = args.n * len(rows)
    print(
        f"pipeline: {n_all / pipe_total:,.0f}/s over {len(rows)} round(s); "
        f"CPU {sum(r[3] for r in rows) / n_all * 1000:.3f} ms "
        f"per delivery (this process{' + the sink' if args.sink == 'process' else ', sink included'})"
    )
    if not args.skip_bare:
        ratios = sorted(r[1] / r[0] for r in rows if r[0])
        bare_total = sum(r[0] for r in rows if r[0])
        print(
            f"bare loop: {n_all / bare_total:,.0f}/s; CPU {sum(r[2] for r in rows if r[2]) / n_all * 1000:.3f} ms "
            f"per delivery"
        )
        print(
            f"ratio pipeline / bare = {statistics.median(ratios):.2f} (median of {len(ratios)} rounds; "
            f"{', '.join(f'{r:.2f}' for r in ratios)}; all rounds together {pipe_total / bare_total:.2f})  "
            f"target ≤ 1.3"
        )
    if args.latency_ms:
        limit = args.threads / (args.latency_ms / 1000)
        print(
            f"throughput {n_all / pipe_total:,.0f}/s = {n_all / pipe_total / limit:.0%} of the "
            f"concurrency ÷ latency limit {limit:,.0f}/s (target ≥ 80%)"
        )
    if not ok:
        print("FAILED: not every delivery was done exactly once", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PUBLISHER_WEBHOOK_SECRET", SECRET)
    raise SystemExit(main())
