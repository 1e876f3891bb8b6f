"""Instructions one website change costs on an empty site and on a full one, counted by valgrind's
callgrind: figures that do not move with the machine's load, unlike bench/site_scale.py's times.

    python bench/site_instructions.py                      # 100,000 items, 6 rounds, every operation
    python bench/site_instructions.py -n 10000 --rounds 4

The full site is built once as bench/site_scale.py builds it (the entries imported into the state,
then a rebuild), outside valgrind. Then each site runs the rounds of bench/site_scale.py (publish a
new item, update it, withdraw an item from the middle — on the empty site the item just published —
and, on the full site, withdraw the item just published too) under callgrind, counting only while
one operation runs (``callgrind_control -i on/off``; each operation in its own run), and prints the
instructions per call and full ÷ empty. The first round is not counted (first-use work: templates,
caches). What is counted is user space: Python, SQLite, the C library; the kernel's work for the
writes and the fsyncs is not (bench/site_scale.py's CPU time includes it). Needs valgrind.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from site_scale import channel, entries, round_calls  # noqa: E402

OPS = ("publish", "update", "withdraw", "withdraw newest")


def inside(folder: Path, n: int, rounds: int, counted: str) -> None:
    """One site's rounds, counting only ``counted`` (run by callgrind)."""
    ch = channel(folder)
    rng = random.Random(14)
    victims = rng.sample(range(n // 4, 3 * n // 4), rounds + 1) if n else []

    def switch(state: str) -> None:
        subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], capture_output=True, check=False)

    for r in range(rounds + 1):
        for op, fn, call in round_calls(ch, r, victims[r] if n else None):
            count = r > 0 and (op == counted or (counted == "withdraw newest" and op == "withdraw" and not n))
            if count:
                switch("on")
            fn(*call)
            if count:
                switch("off")


def counted(folder: Path, n: int, rounds: int, op: str, scratch: Path) -> int:
    """Instructions of ``op`` per call on a copy of the site in ``folder`` (an empty one if n is 0)."""
    work = scratch / "work"
    shutil.rmtree(work, ignore_errors=True)
    if n:
        shutil.copytree(folder, work)
    out = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={scratch}/cg.%p",
            sys.executable,
            __file__,
            "--inside",
            str(work),
            "-n",
            str(n),
            "--rounds",
            str(rounds),
            "--op",
            op,
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    found = re.search(r"Collected : (\d+)", out.stderr)
    if out.returncode != 0 or not found:
        print(out.stdout[-2000:], out.stderr[-2000:], sep="\n")
        raise SystemExit("callgrind run failed (is valgrind installed?)")
    shutil.rmtree(work, ignore_errors=True)
    return int(found.group(1)) // rounds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=100_000, help="items on the full site")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--op", choices=OPS, help="one operation only (default: each in turn)")
    ap.add_argument("--inside", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inside:
        inside(args.inside, args.n, args.rounds, args.op)
        return
    scratch = Path(tempfile.mkdtemp(prefix="site-instr-"))
    try:
        full = channel(scratch / "full")
        with full._locked():
            full.store.import_entries(entries(args.n))
        full.rebuild()
        full.store.close()
        print(f"instructions per call ({args.rounds} rounds each, the first not counted; user space only):")
        print(f"{'operation':16} {'empty':>12} {f'{args.n:,} items':>14}  full÷empty")
        for op in [args.op] if args.op else OPS:
            empty = counted(scratch / "full", 0, args.rounds, op, scratch)
            big = counted(scratch / "full", args.n, args.rounds, op, scratch)
            print(f"{op:16} {empty:12,} {big:14,}  {big / empty:8.2f}×")
    finally:
        shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
