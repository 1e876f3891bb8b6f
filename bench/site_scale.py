"""The website channel at scale: one publish, update and withdrawal on an empty site vs a site of N items.

    python bench/site_scale.py                  # N = 100,000, 21 rounds
    python bench/site_scale.py -n 10000 --rounds 5
    python bench/site_scale.py --keep           # keep the two site folders (printed) for a look

The big site is built through the channel's own bulk path, not by N publishes: the entries go into
the site state in one transaction (``SiteStore.import_entries``, as a migration or an archive import
does) and ``WebsiteChannel.rebuild`` writes every listing page, sitemap file and the feed — that
rebuild is timed too (the "100,000 items in minutes" of ``publisher site rebuild``). Item pages are
not written for the bulk items (no change reads them).

Then, side by side in the same rounds (empty then big, big then empty, …), each timed on its own:

* **publish** a new item (it lands on the newest page of the home, category and checklist listings);
* **update** it (version 2, same listings);
* **withdraw** — on the empty site the item just published (the site is empty again: its listings
  are deleted, not rewritten), on the others an item from the middle (a full page of each of its
  listings and a full sitemap file to rewrite, the dearest case).

On the big and middle-sized sites a fourth call then withdraws the item just published (**withdraw
newest**): the same item the empty site withdraws, so the same call on the same item, its listings
rewritten rather than deleted (on the empty site that is its withdrawal, one timing for both rows).

The headline withdrawal (empty site: its only item; big site: an item from the middle) is not like
for like: the empty site's deletes five listing files and rewrites four small ones, the big site's
renders three full listing pages, the home page with 50 items and a sitemap file of 1,000 URLs (and
its victim, imported in bulk, has no item page to delete, which the empty site's has). The "withdraw
newest" row and the middle-sized site (``--small``, 1,000 items) are the like-for-like comparisons;
all are printed (docs/benchmarks.md §12). Prints best and median per operation and site, and big ÷
empty of the medians. Target ≤ 1.5×.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from channels.website import WebsiteChannel, WebsiteConfig  # noqa: E402
from publisher.channel import site_page_path  # noqa: E402
from publisher.testing import make_ctx, make_env, make_post  # noqa: E402

CATEGORIES = ["基本信息", "招生考试信息", "财务、资产及收费信息", "人事师资信息", "教学质量信息", "学生管理服务信息"]
BASE = "https://xxgk.example.edu.cn/"


def channel(folder: Path) -> WebsiteChannel:
    return WebsiteChannel("website", WebsiteConfig(title="信息公开网", base_url=BASE), make_env(folder))


def round_calls(ch: WebsiteChannel, r: int, victim_id: int | None) -> list[tuple[str, Any, tuple]]:
    """Round ``r``'s calls on one site: publish a new item, update it, withdraw ``victim_id`` (None on the
    empty site: the item just published), and on a full site withdraw the new item too (like for like)."""
    item = 10_000_000 + r
    cat = CATEGORIES[r % len(CATEGORIES)]
    post = make_post(item, category=cat, checklist_item=r % 50 + 1, checklist_name=f"事项{r % 50 + 1}")
    newer = make_post(item, category=cat, title="更新后的标题", version=2, checklist_item=r % 50 + 1)
    victim = make_post(victim_id) if victim_id is not None else newer
    calls = [
        ("publish", ch.publish, (post, make_ctx(item))),
        ("update", ch.update, (newer, make_ctx(item))),
        ("withdraw", ch.withdraw, (victim, make_ctx(victim.item_id))),
    ]
    if victim_id is not None:
        calls.append(("withdraw newest", ch.withdraw, (newer, make_ctx(item))))
    return calls


def entries(n: int) -> list[dict]:
    start = datetime(2016, 1, 1, tzinfo=UTC)
    found = []
    for i in range(1, n + 1):
        at = (start + timedelta(minutes=50 * i)).isoformat(timespec="seconds")
        found.append(
            {
                "item_id": i,
                "title": f"关于2026年寒假放假安排的通知 {i}",
                "summary": "寒假放假安排",
                "category": CATEGORIES[i % len(CATEGORIES)],
                "department": "校长办公室",
                "checklist_item": i % 50 + 1,
                "checklist_name": f"事项{i % 50 + 1}",
                "published_at": at,
                "updated_at": at,
                "version": 1,
                "path": site_page_path(i),
                "files": [],
            }
        )
    return found


def timed(fn, *args) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Wall-clock and CPU milliseconds of one call. CPU time (user and system: the kernel's work for
    the writes counts) leaves out the waits for the disk and for other processes, which on a shared
    machine swamp the wall clock."""
    t, c = time.perf_counter(), time.process_time()
    fn(*args)
    return (time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=100_000, help="items on the big site")
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--small", type=int, default=1000, help="items on the middle-sized site (0: none)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="site-scale-"))
    sites = {"empty": (channel(tmp / "empty"), 0)}
    if args.small:
        sites["small"] = (channel(tmp / "small"), args.small)
    sites["big"] = (channel(tmp / "big"), args.n)
    for name, (ch, n) in sites.items():
        if not n:
            continue
        t = time.perf_counter()
        with ch._locked():
            ch.store.import_entries(entries(n))
        imported = time.perf_counter() - t
        t = time.perf_counter()
        live = ch.rebuild()
        rebuilt = time.perf_counter() - t
        files = sum(1 for p in ch.folder.rglob("*.html")) + sum(1 for p in ch.folder.glob("*.xml"))
        print(
            f"{name} site: {live:,} items imported in {imported:.1f} s, "
            f"rebuilt ({files:,} index files) in {rebuilt:.1f} s"
        )

    rng = random.Random(14)
    # each site withdraws a different item every round, from its middle half
    victims = {name: rng.sample(range(n // 4, 3 * n // 4), args.rounds) if n else [] for name, (_, n) in sites.items()}
    times: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    for r in range(args.rounds):
        # alternate which goes first, so a burst of load from elsewhere falls on both alike
        for name, (ch, n) in list(sites.items())[:: 1 if r % 2 else -1]:
            for op, fn, call in round_calls(ch, r, victims[name][r] if n else None):
                wall, used = timed(fn, *call)
                for key in [op, "withdraw newest"] if op == "withdraw" and not n else [op]:
                    times.setdefault((name, key), []).append(wall)
                    cpu.setdefault((name, key), []).append(used)

    ops = ("publish", "update", "withdraw", "withdraw newest")
    print(f"\n{'operation':15}" + "".join(f" {name + ' best':>12} {'median':>8}" for name in sites) + "   big÷empty")
    worst = 0.0
    for op in ops[:3]:
        cells = "".join(
            f" {min(times[(name, op)]):10.2f}ms {statistics.median(times[(name, op)]):6.2f}ms" for name in sites
        )
        ratio = statistics.median(times[("big", op)]) / statistics.median(times[("empty", op)])
        worst = max(worst, ratio)
        print(f"{op:15}{cells} {ratio:8.2f}×")
    cells = "".join(
        f" {min(times[(name, ops[3])]):10.2f}ms {statistics.median(times[(name, ops[3])]):6.2f}ms" for name in sites
    )
    ratio = statistics.median(times[("big", ops[3])]) / statistics.median(times[("empty", ops[3])])
    print(f"{ops[3]:15}{cells} {ratio:8.2f}×   (like for like: the item just published, on every site)")
    print(f"\nworst ratio (medians, {args.n:,} items vs empty, {args.rounds} rounds): {worst:.2f}× (target ≤ 1.5×)")
    print("\nCPU time (user + system) of the same calls (medians; no waits for the disk or the scheduler):")
    for op in ops:
        cells = "".join(f" {name:>6} {statistics.median(cpu[(name, op)]):6.2f}ms" for name in sites)
        ratio = statistics.median(cpu[("big", op)]) / statistics.median(cpu[("empty", op)])
        print(f"{op:15}{cells} {ratio:8.2f}×")
    if args.keep:
        print(f"kept: {tmp}")
    else:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
