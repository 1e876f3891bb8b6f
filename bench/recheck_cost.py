"""What the worker's privacy re-check costs one post, alone: ``unresolved_in_post`` on dispatch_bench's post.

    python bench/recheck_cost.py                 # microseconds a re-check (best of 5 batches)
    python bench/recheck_cost.py --callgrind     # instructions a re-check, under valgrind

Two posts: the benchmark's notice as it is (its only digit runs are years, counts and three
``0000-00000000`` phone-like runs: no finding), and the same with a mobile number on its last line,
cleared by the 保密审查 reviewer (one finding, matched against its decision: the scanners' full path).
The callgrind mode runs each case twice (1,000 and 3,000 re-checks) and prints the difference per
re-check, so start-up cancels out; the count repeats to a few tenths of a percent on a busy machine.
bench/loop_cpu.py measures the same inside the whole worker loop (``--no-recheck`` without it).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BODY_HTML, BODY_MD  # noqa: E402
from publisher.channel import Post  # noqa: E402

CASES = {"notice": BODY_MD, "notice with a cleared mobile": BODY_MD + "联系人手机：13812345678\n"}


def _post(body: str) -> Post:
    now = datetime.now(UTC)
    return Post(
        item_id=1,
        title="拟聘用人员公示（第12号）",
        body_markdown=body,
        body_html=BODY_HTML,
        summary="公示期为5个工作日",
        category="公告公示",
        department="人事处",
        author="ed",
        publish_at=now,
        updated_at=now,
        checklist_item=None,
        checklist_name=None,
        assets=(),
        channels=("hook",),
        site_url="http://127.0.0.1:9/site/1",
        version=1,
    )


def run(case: str, n: int) -> float:
    """Re-check the case's post ``n`` times (after one to warm up); seconds a re-check."""
    from publisher.pipeline.privacy import WordList
    from publisher.pipeline.workflow.privacy import unresolved_in_post

    post, words = _post(CASES[case]), WordList.empty()
    cleared = frozenset((f.kind, f.where, f.masked) for f in unresolved_in_post(post, frozenset(), words))
    started = time.perf_counter()
    for _ in range(n):
        if unresolved_in_post(post, cleared, words):
            raise SystemExit("the re-check refused a cleared post")
    return (time.perf_counter() - started) / n


def callgrind() -> int:
    for case in CASES:
        counts = []
        for n in (1000, 3000):
            out = subprocess.run(
                ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__]
                + ["--inside", case, str(n)],
                capture_output=True,
                text=True,
                check=False,
            )
            found = re.search(r"Collected : (\d+)", out.stderr)
            if out.returncode != 0 or not found:
                print(out.stderr[-2000:])
                print("callgrind run failed (is valgrind installed?)")
                return 1
            counts.append(int(found.group(1)))
        print(f"{case}: {(counts[1] - counts[0]) / 2000:,.0f} instructions a re-check")
    return 0


def main() -> int:
    if "--inside" in sys.argv:
        i = sys.argv.index("--inside")
        run(sys.argv[i + 1], int(sys.argv[i + 2]))
        return 0
    if "--callgrind" in sys.argv:
        return callgrind()
    for case in CASES:
        best = min(run(case, 5000) for _ in range(5))
        print(f"{case}: {best * 1e6:.1f} µs a re-check (best of 5 × 5,000)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
