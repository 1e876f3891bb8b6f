"""Throughput of 1, 2 and 4 ``publisher run`` processes sharing one PostgreSQL queue, 20 ms sink.

    python bench/workers_pg.py                          # 4,000 deliveries per step, 4 threads a worker
    python bench/workers_pg.py --processes 1,2,4 --threads 4 -n 6000

The limit a worker set can reach is concurrency ÷ latency (processes × threads ÷ 20 ms); each step
reports its throughput against it (target ≥ 80 %). The workers (`publisher run`, the real CLI) are
started first and the deliveries fall due once all are up; throughput is timed from the first
delivery's start to the last one's end (from the attempt rows) and
checked: every delivery accepted exactly once. The sink runs in its own process. Each step also
prints the CPU a delivery cost the workers, the sink and the PostgreSQL server, which tells whether the
machine's cores or the concurrency set the pace.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (  # noqa: E402
    SECRET,
    counts,
    drop_pg_database,
    fresh_store,
    seed_deliveries,
    settings_data,
    start_sink,
    start_worker,
    write_settings,
)


def _cpu_of(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


class _PostgresCpu:
    """CPU used by the PostgreSQL server's processes while sampled (a backend that ends between two
    samples loses its last quarter second: a lower bound)."""

    def __init__(self) -> None:
        self.start: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.sample(first=True)

    def sample(self, first: bool = False) -> None:
        for proc in psutil.process_iter(["name", "cpu_times"]):
            if proc.info["name"] != "postgres" or proc.info["cpu_times"] is None:
                continue
            t = proc.info["cpu_times"].user + proc.info["cpu_times"].system
            if first:
                self.start[proc.pid] = t
            self.start.setdefault(proc.pid, 0.0)
            self.last[proc.pid] = t

    def spent(self) -> float:
        self.sample()
        return sum(t - self.start[pid] for pid, t in self.last.items())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=4000)
    p.add_argument("--processes", default="1,2,4")
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--latency-ms", type=float, default=20)
    p.add_argument("--db", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    p.add_argument(
        "--start-seconds",
        type=float,
        default=4.0,
        help="how long the workers get to start before the deliveries fall due (plus 1 s a process)",
    )
    args = p.parse_args(argv)
    os.environ.setdefault("PUBLISHER_WEBHOOK_SECRET", SECRET)
    ok = True
    for procs in (int(x) for x in args.processes.split(",")):
        sink = start_sink("process", latency_ms=args.latency_ms)
        with tempfile.TemporaryDirectory(prefix="workers-pg-") as tmp_s:
            tmp = Path(tmp_s)
            channels = {"hook": {"type": "webhook", "url": sink.hook_url, "max_concurrency": args.threads}}
            app = fresh_store(tmp, args.db, channels, threads=args.threads)
            # The workers start first and idle, as long-running services do; the deliveries fall due
            # once every worker is up, so the interpreter start-up (~1.4 s of CPU a process) is neither
            # timed nor counted, and does not compete with the first deliveries for the two cores.
            due = datetime.now(UTC) + timedelta(seconds=args.start_seconds + procs)
            seed_deliveries(app, args.n, ["hook"], due_at=due)
            settings = write_settings(
                tmp / "settings.toml", settings_data(tmp, app.settings.database_url, channels, args.threads)
            )
            workers = [start_worker(settings, log=tmp / f"w{i}.log") for i in range(procs)]
            while datetime.now(UTC) < due - timedelta(seconds=0.2):
                time.sleep(0.05)
            if any(w.poll() is not None for w in workers):
                print("a worker stopped before the deliveries fell due; see its log", file=sys.stderr)
                return 1
            worker_cpu = sum(_cpu_of(w.pid) for w in workers)
            sink_cpu = _cpu_of(sink.proc.pid)
            pg = _PostgresCpu()
            give_up = time.monotonic() + 1800
            while counts(app.engine).get("done", 0) < args.n and time.monotonic() < give_up:
                pg.sample()
                time.sleep(0.25)
            cpu = {
                "workers": sum(_cpu_of(w.pid) for w in workers) - worker_cpu,
                "sink": _cpu_of(sink.proc.pid) - sink_cpu,
                "PostgreSQL": pg.spent(),
            }
            for w in workers:
                w.send_signal(signal.SIGTERM)
            for w in workers:
                w.wait(timeout=60)
            with app.engine.connect() as c:
                first, last = c.execute(sa.text("select min(started_at), max(finished_at) from delivery_attempt")).one()
            took = (last - first).total_seconds()
            led = sink.ledger()
            limit = procs * args.threads / (args.latency_ms / 1000)
            rate = args.n / took
            good = (
                led["accepted"] == args.n
                and all(v == 1 for v in led["by_key"].values())
                and counts(app.engine) == {"done": args.n}
            )
            ok &= good
            print(
                f"{procs} process(es) × {args.threads} threads: {args.n} in {took:.2f} s = {rate:,.0f}/s; "
                f"limit {limit:,.0f}/s → {rate / limit:.0%} (target ≥ 80%)"
                + ("" if good else f"  CHECK FAILED {led['accepted']} accepted"),
                flush=True,
            )
            print(
                "    CPU per delivery: "
                + ", ".join(f"{k} {v / args.n * 1000:.2f} ms" for k, v in cpu.items())
                + f"; all {sum(cpu.values()) / args.n * 1000:.2f} ms (the machine has {os.cpu_count()} cores: "
                f"{os.cpu_count() / (sum(cpu.values()) / args.n):,.0f}/s if nothing else ran)",
                flush=True,
            )
            url = app.settings.database_url
            app.close()
            drop_pg_database(url)
        sink.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
