"""The same deliveries done the way a user might build it instead: huey on SQLite, RQ on Redis.

    python bench/alternatives.py                 # 10,000 deliveries, 1 worker thread each
    python bench/alternatives.py --threads 4     # 4 threads (huey) / 4 worker processes (RQ)

Each contender posts the very same signed documents to the same sink (run as its own process, so
no contender shares its interpreter with the receiver) and is timed from the start of its worker
until the sink has accepted every delivery. Queueing the jobs is not timed (for the pipeline, the
set-up that writes items and deliveries is not timed either). What each contender does per job:

* **pipeline** — publisher's Dispatcher: claim with a lease, re-check the lease and the approvals,
  webhook channel, record outcome + attempt row + audit row + item roll-up in the database;
* **huey** (SqliteHuey, thread workers) — a task that signs and POSTs; huey keeps the queue and
  the results in its SQLite file; nothing else is recorded;
* **RQ** (``rq worker --burst``, the default forking worker; and ``SimpleWorker`` without a fork
  per job) — a job that signs and POSTs; RQ keeps job state in Redis (127.0.0.1:6379, a queue name
  of its own, deleted afterwards).

So the alternatives do *less* per delivery (no audit trail, no per-item state); the ratio shows what
the pipeline's bookkeeping costs against them, measured in one run on the same machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ROOT, SECRET, fresh_store, seed_deliveries, start_sink  # noqa: E402
from bench.alt_tasks import post_doc  # noqa: E402


def run_pipeline(tmp: Path, hook_url: str, n: int, threads: int) -> tuple[float, list[dict[str, Any]]]:
    from datetime import timedelta

    from publisher.pipeline.worker import Dispatcher

    app = fresh_store(
        tmp, None, {"hook": {"type": "webhook", "url": hook_url, "max_concurrency": threads}}, threads=threads
    )
    docs = seed_deliveries(app, n, ["hook"])
    t0 = time.perf_counter()
    Dispatcher(engine=app.engine, ctx=app.ctx, threads=threads).run(once=True, horizon=timedelta(0))
    took = time.perf_counter() - t0
    app.close()
    return took, docs


def wait_accepted(sink: Any, n: int, timeout: float = 900) -> None:
    """Poll the sink's ledger (a big JSON document: rarely while far from done, often near the end)."""
    deadline = time.monotonic() + timeout
    while (got := sink.ledger()["accepted"]) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"sink accepted {got} of {n}")
        time.sleep(0.5 if got < n * 0.9 else 0.02)


def run_huey(tmp: Path, hook_url: str, docs: list[dict[str, Any]], threads: int, sink: Any) -> float:
    from huey import SqliteHuey
    from huey.consumer import Consumer

    huey = SqliteHuey("bench", filename=str(tmp / "huey.db"))
    task = huey.task()(post_doc)
    for d in docs:
        task(hook_url, d, f"huey-{d['delivery_id']}")
    consumer = Consumer(
        huey, workers=threads, worker_type="thread", periodic=False, initial_delay=0.01, backoff=1.05, max_delay=0.1
    )
    t0 = time.perf_counter()
    consumer.start()
    try:
        while huey.pending_count():
            time.sleep(0.01)
        wait_accepted(sink, len(docs))
    finally:
        took = time.perf_counter() - t0
        consumer.stop(graceful=True)
    return took


def run_rq(hook_url: str, docs: list[dict[str, Any]], workers: int, sink: Any, simple: bool) -> float:
    from redis import Redis
    from rq import Queue

    redis = Redis(host="127.0.0.1", port=6379)
    qname = f"publisher-bench-{uuid.uuid4().hex[:8]}"
    q = Queue(qname, connection=redis)
    with redis.pipeline() as pipe:
        for d in docs:
            q.enqueue("bench.alt_tasks.post_doc", hook_url, d, f"rq-{d['delivery_id']}", pipeline=pipe, result_ttl=600)
        pipe.execute()
    cmd = [sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", "redis://127.0.0.1:6379", "-q"]
    if simple:
        cmd += ["--worker-class", "rq.worker.SimpleWorker"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen([*cmd, qname], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    try:
        for p in procs:  # --burst: a worker exits once the queue is empty
            p.wait(timeout=1800)
        took = time.perf_counter() - t0
        wait_accepted(sink, len(docs), timeout=10)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        q.delete(delete_jobs=True)
    return took


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=10_000)
    p.add_argument("--threads", type=int, default=1, help="worker threads (huey, pipeline) / processes (RQ)")
    p.add_argument("--only", default="pipeline,huey,rq,rq-simple")
    args = p.parse_args(argv)
    os.environ.setdefault("PUBLISHER_WEBHOOK_SECRET", SECRET)
    which = args.only.split(",")
    sink = start_sink("process")
    times: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="alt-bench-") as tmp:
            took, docs = run_pipeline(Path(tmp), sink.hook_url, args.n, args.threads)
            if "pipeline" in which:
                times["pipeline"] = took
                print(f"pipeline (SQLite):   {took:7.2f} s  {args.n / took:6.0f}/s", flush=True)
            for name in which:
                if name == "pipeline":
                    continue
                sink.reset()
                if name == "huey":
                    t = run_huey(Path(tmp), sink.hook_url, docs, args.threads, sink)
                else:
                    t = run_rq(sink.hook_url, docs, args.threads, sink, simple=name == "rq-simple")
                times[name] = t
                print(f"{name + ':':20} {t:7.2f} s  {args.n / t:6.0f}/s", flush=True)
    finally:
        sink.stop()
    if "pipeline" in times:
        for name, t in times.items():
            if name != "pipeline":
                print(f"pipeline / {name} = {times['pipeline'] / t:.2f}  (below 1: the pipeline is ahead)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
