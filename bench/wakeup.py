"""Wake-up latency: an idle worker, a delivery queued "for now" by another connection; how soon it starts.

    python bench/wakeup.py            # PostgreSQL (LISTEN/NOTIFY) and SQLite (polling), 30 trials each

The worker runs with the default ``worker.poll_seconds`` (1 s) and the Clock's listener; each trial
writes one approved item with its delivery due now, commits with ``workflow.wake_workers`` (NOTIFY on
PostgreSQL, nothing on SQLite), and measures until the channel call starts (the Dispatcher's
``on_start`` hook). Trials are spaced 0.2-1.2 s apart at random so they land anywhere in a poll.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import drop_pg_database, fresh_store, seed_deliveries  # noqa: E402


def trial_run(db: str | None, trials: int) -> list[float]:
    from publisher.pipeline import workflow
    from publisher.pipeline.worker import Dispatcher
    from publisher.scheduler import QueueListener

    with tempfile.TemporaryDirectory(prefix="wakeup-") as tmp:
        app = fresh_store(Path(tmp), db, {"mem": {"type": "memory"}}, threads=1, poll_seconds=1.0)
        started = threading.Event()
        d = Dispatcher(engine=app.engine, ctx=app.ctx, threads=1, on_start=lambda *_: started.set())
        listener = QueueListener(app.engine, d.wake).start() if app.engine.dialect.name == "postgresql" else None
        t = threading.Thread(target=d.run, daemon=True)
        t.start()
        rnd = random.Random(3)
        out: list[float] = []
        time.sleep(1.5)
        for _ in range(trials):
            time.sleep(rnd.uniform(0.2, 1.2))
            started.clear()
            t0 = time.perf_counter()
            seed_deliveries(app, 1, ["mem"])
            with app.session() as s:
                workflow.wake_workers(s)
            started.wait(timeout=10)
            out.append(time.perf_counter() - t0)
        d.stop.set()
        t.join(timeout=10)
        if listener:
            listener.stop()
        url = app.settings.database_url
        app.close()
        if url.startswith("postgresql"):
            drop_pg_database(url)
    return sorted(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--db", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = p.parse_args(argv)
    os.environ.setdefault("PUBLISHER_WEBHOOK_SECRET", "unused")
    for label, db in (("PostgreSQL, LISTEN/NOTIFY", args.db), ("SQLite, polling every 1 s", None)):
        w = trial_run(db, args.trials)

        def pct(q: float, w: list[float] = w) -> float:
            return w[min(len(w) - 1, int(q * len(w)))]

        print(
            f"{label:28} queued → call started: p50 {pct(0.5) * 1000:.0f} ms, p95 {pct(0.95) * 1000:.0f} ms, "
            f"max {w[-1] * 1000:.0f} ms ({len(w)} trials)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
