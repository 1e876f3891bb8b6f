"""CPU the dispatcher's loop thread spends per delivery: the steady figure behind dispatch_bench's ratio.

    python bench/loop_cpu.py [-n 5000]

The ratio of dispatch_bench.py moves by ±0.25 between runs on a shared machine; this one does not
move much, so it is the figure to compare changes to the claim / snapshot / record path by. The
webhook channel's publish is replaced by a 0.8 ms sleep (the HTTP call, lock released), so there is
no sink and no client competing for the interpreter lock; ``time.thread_time()`` around
``Dispatcher._loop`` counts the loop thread's own CPU (Python and SQLite). With one thread (the
default here) the loop thread also makes the channel calls, so the figure includes the dispatcher's
own work around each call (lease check, delivery context, hand-back), not the HTTP call itself.

    python bench/loop_cpu.py --callgrind [-n 4000]

counts instructions instead of seconds: the same run under valgrind's callgrind, counting only while
``Dispatcher._loop`` runs (every thread of the process, SQLite included), and prints instructions per
delivery as the difference between a run of n and one of n/2 (start-up work cancels out). The count
repeats to within a few tenths of a percent whatever else the machine does, so a change to the
loop's work shows even on a busy machine. Under valgrind everything runs ~50× slower, so batches are
cut by count, not time (records of RECORD_BATCH): the mix of fixed and
per-delivery work is that of a fast channel. Needs valgrind (Debian: ``apt-get install valgrind``).

    python bench/loop_cpu.py --callgrind --no-recheck [-n 4000]

the same without the worker's privacy re-check (``PostSnapshot.unresolved`` answers "nothing" without
scanning): the difference to a run with it is what the re-check costs a delivery.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def callgrind(n: int, extra: list[str]) -> int:
    """Instructions per delivery, as the difference of two runs under callgrind."""
    import re
    import subprocess
    import tempfile

    counts = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (n // 2, n):
            out = subprocess.run(
                [
                    "valgrind",
                    "--tool=callgrind",
                    "--instr-atstart=no",
                    f"--callgrind-out-file={tmp}/cg.%p",
                    sys.executable,
                    __file__,
                    "--inside-callgrind",
                    "-n",
                    str(size),
                    *extra,
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            found = re.search(r"Collected : (\d+)", out.stderr)
            if out.returncode != 0 or not found:
                print(out.stdout[-2000:], out.stderr[-2000:], sep="\n")
                print("callgrind run failed (is valgrind installed?)")
                return 1
            counts.append(int(found.group(1)))
            print(f"{size:>6,} deliveries: {counts[-1]:>14,} instructions in the loop")
    per = (counts[1] - counts[0]) / (n - n // 2)
    print(f"loop instructions per delivery: {per:,.0f} (fixed part {counts[0] - per * (n // 2):,.0f})")
    return 0


def main() -> int:
    if "--callgrind" in sys.argv:
        args = [a for a in sys.argv[1:] if a != "--callgrind"]
        n = 4000
        if "-n" in args:
            i = args.index("-n")
            n = int(args[i + 1])
            del args[i : i + 2]
        return callgrind(n, args)  # the other options (e.g. --db) go to each run
    inside = "--inside-callgrind" in sys.argv
    if inside:
        sys.argv.remove("--inside-callgrind")
    os.environ.setdefault("PUBLISHER_WEBHOOK_SECRET", "bench-secret-not-a-real-one")
    import channels.webhook as webhook
    from bench import dispatch_bench
    from publisher.channel import Published
    from publisher.pipeline.worker import Dispatcher

    def publish(self: Any, post: Any, ctx: Any) -> Published:
        time.sleep(0.0008)
        return Published(url=None, remote_id=str(ctx.delivery_id))

    webhook.WebhookChannel.publish = publish  # type: ignore[method-assign]
    if "--no-recheck" in sys.argv:  # passed on to the runs under callgrind, like the other options
        from publisher.pipeline.workflow.posts import PostSnapshot

        sys.argv.remove("--no-recheck")
        PostSnapshot.unresolved = functools.cached_property(lambda self: ())  # type: ignore[method-assign,assignment]
        PostSnapshot.unresolved.__set_name__(PostSnapshot, "unresolved")
    spent: dict[str, float] = {}
    loop = Dispatcher._loop

    def timed_loop(self: Any, *args: Any, **kw: Any) -> None:
        if inside:  # count instructions from here (callgrind_control talks to this process's valgrind)
            subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], capture_output=True, check=False)
        t = time.thread_time()
        try:
            loop(self, *args, **kw)
        finally:
            spent["cpu"] = time.thread_time() - t
            if inside:
                subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], capture_output=True, check=False)

    Dispatcher._loop = timed_loop  # type: ignore[method-assign]
    if inside:  # ~50x slower under valgrind: batches by count, not by time
        Dispatcher.RECORD_EVERY = 1000.0
    argv = ["--skip-bare", "--rounds", "1", *sys.argv[1:]]
    n = int(argv[argv.index("-n") + 1]) if "-n" in argv else 10_000
    dispatch_bench.main(argv)  # its end check fails by design: the sink received nothing
    print("(the FAILED line above is expected: the sink is bypassed)")
    print(f"loop thread CPU: {spent['cpu']:.2f} s = {spent['cpu'] / n * 1000:.3f} ms per delivery")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
