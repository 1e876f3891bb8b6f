"""CPU the dispatcher's loop thread spends per delivery: the steady figure behind dispatch_bench's ratio.

    python bench/loop_cpu.py [-n 5000]

The ratio of dispatch_bench.py moves by ±0.25 between runs on a shared machine; this one does not
move much, so it is the figure to compare changes to the claim / snapshot / record path by. The
webhook channel's publish is replaced by a 0.8 ms sleep (the HTTP call, lock released), so there is
no sink and no client competing for the interpreter lock; ``time.thread_time()`` around
``Dispatcher._loop`` counts the loop thread's own CPU (Python and SQLite). With one thread (the
default here) the loop thread also makes the channel calls, so the figure includes the dispatcher's
own work around each call (lease check, delivery context, hand-back), not the HTTP call itself.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    os.environ.setdefault("PUBLISHER_WEBHOOK_SECRET", "bench-secret-not-a-real-one")
    import channels.webhook as webhook
    from bench import dispatch_bench
    from publisher import dispatch
    from publisher.channel import Published

    def publish(self: Any, post: Any, ctx: Any) -> Published:
        time.sleep(0.0008)
        return Published(url=None, remote_id=str(ctx.delivery_id))

    webhook.WebhookChannel.publish = publish  # type: ignore[method-assign]
    spent: dict[str, float] = {}
    loop = dispatch.Dispatcher._loop

    def timed_loop(self: Any, *args: Any, **kw: Any) -> None:
        t = time.thread_time()
        try:
            loop(self, *args, **kw)
        finally:
            spent["cpu"] = time.thread_time() - t

    dispatch.Dispatcher._loop = timed_loop  # type: ignore[method-assign]
    argv = ["--skip-bare", "--rounds", "1", *sys.argv[1:]]
    n = int(argv[argv.index("-n") + 1]) if "-n" in argv else 10_000
    dispatch_bench.main(argv)  # its end check fails by design: the sink received nothing
    print("(the FAILED line above is expected: the sink is bypassed)")
    print(f"loop thread CPU: {spent['cpu']:.2f} s = {spent['cpu'] / n * 1000:.3f} ms per delivery")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
