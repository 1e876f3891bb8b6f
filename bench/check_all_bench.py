"""How ``publisher check --all`` scales with the ledger: time and peak memory for N live publications.

    python bench/check_all_bench.py [--sizes 2000,20000,60000]

For each size, a fresh SQLite store in a temporary folder gets N published items (bulk-inserted rows:
item, its version, a done delivery on a memory channel and the attempt that published it; a ~700-
character notice body, one in 50 with a mobile number), then ``publisher check --all --format json``
runs as a subprocess. Reports the wall time, the child's peak resident memory (getrusage) and how many
exposures it found. Flat memory across sizes is the point: the scan reads 200 publications at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from publisher.db import make_engine, migrate  # noqa: E402
from publisher.models import Delivery, DeliveryAttempt, Item, ItemVersion, User  # noqa: E402

BODY = "根据工作需要，学校面向社会公开招聘专任教师 12 名。联系电话 0452-2712345。\n\n" * 8
SETTINGS = 'data_dir = "{folder}"\n[channels.mem]\ntype = "memory"\n'


def make_store(folder: Path, n: int) -> str:
    url = f"sqlite:///{folder / 'queue.db'}"
    eng = make_engine(url)
    migrate(eng)
    rng = random.Random(n)
    at = datetime(2025, 1, 1, tzinfo=UTC)
    sent = at + timedelta(minutes=1)
    with eng.begin() as c:
        c.execute(sa.insert(User.__table__).values(id=1, name="ed", display_name="ed", role="editor", created_at=at))
        for start in range(1, n + 1, 1000):
            ids = range(start, min(n, start + 999) + 1)
            bodies = {i: BODY + (f"\n手机 139{rng.randrange(10**8):08d}\n" if i % 50 == 0 else "") for i in ids}
            common = dict(category="公告公示", department="人事处", author_id=1, status="published", version=1)
            c.execute(
                sa.insert(Item.__table__),
                [
                    dict(id=i, title=f"公告{i}", summary="", body_markdown=bodies[i], body_html="", channels=["mem"])
                    | common
                    | dict(created_at=at, updated_at=at, origin="pipeline")
                    for i in ids
                ],
            )
            c.execute(
                sa.insert(ItemVersion.__table__),
                [dict(item_id=i, version=1, title=f"公告{i}", body_markdown=bodies[i], actor="ed", at=at) for i in ids],
            )
            c.execute(
                sa.insert(Delivery.__table__),
                [
                    dict(id=i, item_id=i, channel="mem", op="publish", status="done", due_at=at, item_version=1)
                    | dict(
                        attempts=1, state={}, published_at=sent, url=f"memory://mem/{i}", created_at=at, updated_at=at
                    )
                    for i in ids
                ],
            )
            c.execute(
                sa.insert(DeliveryAttempt.__table__),
                [
                    dict(delivery_id=i, number=1, op="publish", worker="bench", started_at=sent, finished_at=sent)
                    | dict(outcome="done")
                    for i in ids
                ],
            )
    eng.dispose()
    return url


def run(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = make_store(folder, n)
        (folder / "settings.toml").write_text(SETTINGS.format(folder=folder), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
        env.update(PUBLISHER_DATABASE_URL=url, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests" / "plugins")]))
        cmd = [sys.executable, "-m", "publisher.cli", "--settings", str(folder / "settings.toml")]
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        p = subprocess.run([*cmd, "check", "--all", "--format", "json"], env=env, capture_output=True, text=True)
        took = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if p.returncode not in (0, 3):
            raise SystemExit(f"check --all failed ({p.returncode}): {p.stderr}")
        doc = json.loads(p.stdout)
        rss = f"{peak / 1024:.0f} MB" if peak > before else "≤ earlier run"
        print(
            f"{n:>7} publications: {took:6.1f} s ({took / n * 1000:.2f} ms each), peak RSS {rss}, "
            f"{len(doc['exposures'])} exposed of {doc['checked']} checked"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="2000,20000,60000")
    args = ap.parse_args()
    for n in (int(s) for s in args.sizes.split(",")):
        run(n)


if __name__ == "__main__":
    main()
