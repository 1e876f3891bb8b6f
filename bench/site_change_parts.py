"""What one change of a full site spends outside its fsyncs, before and after the withdrawal work of
issue 14, side by side in one run (the same state, the calls alternated).

    python bench/site_change_parts.py              # a site of 100,000 items, 41 rounds
    python bench/site_change_parts.py -n 10000 --rounds 21

A withdrawal from the middle of a full site rewrites one sitemap file (``sitemap_urls`` = 1,000 URLs)
and three full listing pages (50 items each); the empty site's withdrawal deletes its listings
instead. Profiling ``bench/site_scale.py``'s setup showed, beside the fsyncs, two parts that a full
page pays and an empty one does not:

* **the sitemap file's URLs**: built by SQLite from each entry's JSON (``json_extract`` of ``path``
  and ``updated_at`` for 1,000 entries) — now read from two columns of the state;
* **the listing rows**: 50 ``<li>`` rendered by a Jinja2 loop per page — now built in Python, each
  row cached (a page of items seen before, such as the home page, costs a join).

Each is timed both ways on random pages of the same state; "cold" rows are a fresh cache per page
(a withdrawal from a random page meets rows it has not rendered), "warm" the same page again.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import jinja2  # noqa: E402
from site_scale import channel, entries  # noqa: E402

from channels.website.indexes import SHOWN  # noqa: E402
from channels.website.pages import item_rows  # noqa: E402
from channels.website.store import ALL  # noqa: E402

#: the sitemap query before issue 14's withdrawal work: two fields parsed from each entry's JSON
OLD_SITEMAP = (
    "SELECT group_concat(u, char(10)), max(m) FROM (SELECT "
    "'<url><loc>' || ? || json_extract(e.data, '$.path') || '</loc><lastmod>' || "
    "json_extract(e.data, '$.updated_at') || '</lastmod></url>' AS u, "
    "json_extract(e.data, '$.updated_at') AS m "
    "FROM placement p JOIN entry e ON e.item_id = p.item_id "
    "WHERE p.listing = ? AND p.pos BETWEEN ? AND ? AND e.live = 1 ORDER BY p.pos)"
)
#: the listing rows before: the template loop of list.html
OLD_ROWS = """\
{% for e in entries %}<li><span><a href="{{ root }}{{ e.path }}">{{ e.title }}</a>\
{% if e.get("validity") == "已废止" %}<span class="repealed">（已废止）</span>{% endif %}\
<span class="dept">{{ e.department }}</span></span>\
<time class="when" datetime="{{ e.published_at }}">{{ e.published_at | localdate }}</time></li>
{% endfor %}"""


def ms(fn, *args) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - t) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=41)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="site-parts-"))
    try:
        ch = channel(tmp / "site")
        with ch._locked():
            ch.store.import_entries(entries(args.n))
        store, prefix = ch.store, "https://xxgk.example.edu.cn/"
        localdate = ch._localdate
        env = jinja2.Environment(autoescape=True)
        env.filters["localdate"] = localdate
        old_rows = env.from_string(OLD_ROWS)
        rng = random.Random(14)
        parts = args.n // 1000
        times: dict[str, list[float]] = {}

        def sitemap_before(first: int) -> None:
            store.conn.execute(OLD_SITEMAP, (prefix, ALL, first, first + 999)).fetchone()

        def sitemap_now(first: int) -> None:
            store.sitemap_urls(first, first + 999, prefix)

        def rows_before(rows: list[dict]) -> None:
            old_rows.render(entries=rows, root="../")

        for r in range(args.rounds):
            part = rng.randrange(parts // 4, 3 * parts // 4) if parts > 3 else 1
            first = (part - 1) * 1000 + 1
            page = rng.randrange(args.n // 200, 3 * args.n // 200) if args.n >= 400 else 1
            rows = store.between(ALL, (page - 1) * 50 + 1, page * 50, fields=SHOWN)
            fresh = item_rows(localdate)  # a new cache: this page's rows not rendered yet
            # each group in turn, the order flipped every round; "warm" right after "cold" (same cache)
            groups = [
                [("sitemap file, before (JSON)", sitemap_before, (first,))],
                [("sitemap file, now (columns)", sitemap_now, (first,))],
                [("listing rows, before (Jinja2 loop)", rows_before, (rows,))],
                [("listing rows, now, cold", fresh, (rows, "../")), ("listing rows, now, warm", fresh, (rows, "../"))],
            ]
            for group in groups if r % 2 else groups[::-1]:
                for name, fn, call in group:
                    times.setdefault(name, []).append(ms(fn, *call))
        print(f"{args.n:,} items, {args.rounds} rounds (medians, best):")
        for name, xs in times.items():
            print(f"  {name:36} {statistics.median(xs):7.3f} ms  {min(xs):7.3f} ms")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
