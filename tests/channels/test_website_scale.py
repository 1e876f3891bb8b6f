"""The website at scale: paginated listings, the sitemap index, the bounded feed, the state's migration
from the old manifest, crash safety at every step, a resumable rebuild and two worker processes.

Small page sizes and sitemap files (settings) make many pages out of a few dozen items; every check
reads the files the site serves, the way a reader or a crawler would.
"""

from __future__ import annotations

import errno
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from channels.website import WebsiteChannel, WebsiteConfig, category_slug
from channels.website.files import STEPS
from channels.website.pages import day, rfc3339
from publisher.channel import TransientChannelError
from publisher.testing import make_ctx, make_env, make_post
from tests.channels.test_website import ATOM, BASE, SITEMAP, sitemap_locs

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def site(tmp_path: Path, **config) -> WebsiteChannel:
    config = {"base_url": BASE, "page_size": 5, "sitemap_urls": 10, **config}
    return WebsiteChannel("website", WebsiteConfig(**config), make_env(tmp_path))


def post(i: int, **kw):
    at = T0 + timedelta(hours=i)
    kw = {"category": ["基本信息", "招生考试信息"][i % 2], "publish_at": at, "updated_at": at, **kw}
    return make_post(i, **kw)


def hrefs(path: Path) -> list[int]:
    return [int(n) for n in re.findall(r'href="(?:\.\./)*items/(\d+)\.html"', path.read_text("utf-8"))]


def numbered(folder: Path) -> dict[int, Path]:
    return {int(p.stem): p for p in folder.glob("page/*.html")}


def check_site(ch: WebsiteChannel) -> None:
    """Every live item on exactly one numbered page of each of its listings, page k holding only
    items it should, nothing linking to a missing page, the sitemap and feed agreeing with the state."""
    live = {int(k): e for k, e in ch.manifest().items()}
    root = ch.folder
    assert {int(p.stem) for p in (root / "items").glob("*.html")} >= set(live)
    groups: dict[Path, set[int]] = {root: set(live)}
    for i, e in live.items():
        groups.setdefault(root / "categories" / category_slug(e["category"]), set()).add(i)
        if e.get("checklist_item"):
            groups.setdefault(root / "checklist" / str(e["checklist_item"]), set()).add(i)
    for folder, expected in groups.items():
        listed = [i for page in numbered(folder).values() for i in hrefs(page)]
        assert sorted(listed) == sorted(expected), folder
        if folder != root:
            assert set(hrefs(folder.with_suffix(".html"))) <= expected
    # listings of categories that have no live item are gone
    for landing in (root / "categories").glob("*.html"):
        assert landing.with_suffix("") in groups, landing
    check_links(ch)
    items = sorted(int(u.rsplit("/", 1)[1][:-5]) for u in sitemap_locs(root) if "/items/" in u)
    assert items == sorted(live)
    feed = ET.fromstring((root / "feed.xml").read_bytes())
    assert len(feed.findall(f"{ATOM}entry")) == min(50, len(live))
    assert not list(root.rglob(".tmp-*"))


def check_links(ch: WebsiteChannel) -> None:
    """No index page, feed or sitemap links to an item page that is not there (what a crash at any
    point must never leave behind)."""
    root = ch.folder
    for path in [*root.rglob("*.html"), *root.glob("*.xml")]:
        if path.parent.name == "items":
            continue
        for i in re.findall(r"items/(\d+)\.html", path.read_text("utf-8")):
            assert (root / "items" / f"{i}.html").exists(), f"{path} links to missing page {i}"


def mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*.html")}


# ----------------------------------------------------------------------------------------- pagination
def test_pages_are_numbered_from_the_oldest_and_stay_put(tmp_path):
    ch = site(tmp_path)
    for i in range(1, 24):
        ch.publish(post(i), make_ctx(i))
    pages = numbered(ch.folder)
    assert sorted(pages) == [1, 2, 3, 4, 5]
    assert hrefs(pages[1]) == [5, 4, 3, 2, 1]  # the oldest five, newest first
    assert hrefs(pages[5]) == [23, 22, 21]
    assert 'href="../page/4.html"' in pages[5].read_text("utf-8")  # 更早
    assert 'href="../page/2.html"' in pages[1].read_text("utf-8")  # 较新
    # the home page shows the newest page_size items and leads to the numbered pages
    home = (ch.folder / "index.html").read_text("utf-8")
    assert hrefs(ch.folder / "index.html") == [23, 22, 21, 20, 19]
    assert 'href="page/5.html"' in home
    cat = ch.folder / "categories" / category_slug("基本信息")
    assert sorted(numbered(cat)) == [1, 2, 3]  # items 2, 4, … 22: eleven of them
    assert hrefs(numbered(cat)[1]) == [10, 8, 6, 4, 2]
    check_site(ch)

    # one more publish rewrites the newest pages only: the older ones are not touched
    before = mtimes(ch.folder)
    ch.publish(post(24), make_ctx(24))
    changed = {k for k, v in mtimes(ch.folder).items() if before.get(k) != v}
    assert changed == {
        "items/24.html",
        "index.html",
        "page/5.html",
        f"categories/{category_slug('基本信息')}.html",
        f"categories/{category_slug('基本信息')}/page/3.html",
    }
    check_site(ch)


def test_a_new_page_gives_the_previous_one_its_newer_link(tmp_path):
    ch = site(tmp_path)
    for i in range(1, 6):
        ch.publish(post(i, category="基本信息"), make_ctx(i))
    assert "较新" not in (ch.folder / "page/1.html").read_text("utf-8")
    ch.publish(post(6, category="基本信息"), make_ctx(6))
    assert 'href="../page/2.html"' in (ch.folder / "page/1.html").read_text("utf-8")
    assert hrefs(ch.folder / "page/2.html") == [6]
    check_site(ch)


def test_a_withdrawal_rewrites_only_the_pages_that_showed_the_item(tmp_path):
    ch = site(tmp_path)
    for i in range(1, 31):
        ch.publish(post(i, category="基本信息"), make_ctx(i))
    before = mtimes(ch.folder)
    page2 = (ch.folder / "page/2.html").read_text("utf-8")
    ch.withdraw(post(8), make_ctx(8))
    changed = {k for k, v in mtimes(ch.folder).items() if before.get(k) != v}
    slug = category_slug("基本信息")
    # and the home page, whose directory counts the category's items
    assert changed == {"page/2.html", f"categories/{slug}/page/2.html", "index.html"}
    assert not (ch.folder / "items/8.html").exists()
    assert hrefs(ch.folder / "page/2.html") == [10, 9, 7, 6]
    # the page keeps its number and the other items their pages: URLs stay stable
    assert page2.replace('<li><span><a href="../items/8.html">', "") != page2
    assert hrefs(ch.folder / "page/3.html") == [15, 14, 13, 12, 11]
    check_site(ch)


def test_an_update_moves_an_item_between_categories(tmp_path):
    ch = site(tmp_path)
    for i in range(1, 8):
        ch.publish(post(i, category="基本信息"), make_ctx(i))
    ch.update(post(3, category="人事师资信息", version=2), make_ctx(3))
    old = ch.folder / "categories" / category_slug("基本信息")
    new = ch.folder / "categories" / category_slug("人事师资信息")
    assert 3 not in [i for p in numbered(old).values() for i in hrefs(p)]
    assert hrefs(numbered(new)[1]) == [3]
    # the home listing keeps it where it was
    assert hrefs(ch.folder / "page/1.html") == [5, 4, 3, 2, 1]
    ch.update(post(3, category="基本信息", version=3), make_ctx(3))
    assert not new.with_suffix(".html").exists() and not numbered(new)
    check_site(ch)


def test_sitemap_is_an_index_of_small_files(tmp_path):
    ch = site(tmp_path, sitemap_urls=10)
    for i in range(1, 26):
        ch.publish(post(i), make_ctx(i))
    index = ET.fromstring((ch.folder / "sitemap.xml").read_bytes())
    parts = [s.find("{http://www.sitemaps.org/schemas/sitemap/0.9}loc").text for s in index]
    assert parts == [BASE + "sitemap-lists.xml"] + [BASE + f"sitemap-{k}.xml" for k in (1, 2, 3)]
    for k, count in ((1, 10), (2, 10), (3, 5)):
        assert (ch.folder / f"sitemap-{k}.xml").read_text("utf-8").count("<url>") == count
    assert all(s.find(f"{SITEMAP}lastmod") is not None for s in list(index)[1:])
    lists = (ch.folder / "sitemap-lists.xml").read_text("utf-8")
    assert BASE + "index.html" in lists and BASE + f"categories/{category_slug('基本信息')}.html" in lists
    # everything withdrawn: no numbered sitemap is left over
    for i in range(1, 26):
        ch.withdraw(post(i), make_ctx(i))
    assert not list(ch.folder.glob("sitemap-[0-9]*.xml"))
    assert sitemap_locs(ch.folder) == [BASE + "index.html"]
    assert not list(ch.folder.glob("page/*.html")) and not list(ch.folder.glob("categories/**/*.html"))


def test_the_feed_holds_the_newest_fifty(tmp_path):
    ch = site(tmp_path, page_size=20)
    for i in range(1, 61):
        ch.publish(post(i), make_ctx(i))
    feed = ET.fromstring((ch.folder / "feed.xml").read_bytes())
    urls = [e.find(f"{ATOM}id").text for e in feed.findall(f"{ATOM}entry")]
    assert urls == [BASE + f"items/{i}.html" for i in range(60, 10, -1)]
    ch.withdraw(post(60), make_ctx(60))
    feed = ET.fromstring((ch.folder / "feed.xml").read_bytes())
    assert feed.findall(f"{ATOM}entry")[-1].find(f"{ATOM}id").text == BASE + "items/10.html"


# ------------------------------------------------------------------------------------------ migration
def test_a_site_with_the_old_manifest_is_migrated_on_first_use(tmp_path):
    folder = tmp_path / "site"
    (folder / "items").mkdir(parents=True)
    entries = []
    for i in range(1, 13):
        at = (T0 + timedelta(days=i)).isoformat(timespec="seconds")
        entries.append(
            {
                "item_id": i,
                "title": f"旧站的通知{i}",
                "summary": "",
                "category": "基本信息" if i % 3 else "其他",
                "department": "校长办公室",
                "checklist_item": 2 if i % 4 == 0 else None,
                "checklist_name": "学校章程及制定的各项规章制度" if i % 4 == 0 else None,
                "published_at": at,
                "updated_at": at,
                "version": 1,
                "path": f"items/{i}.html",
                "files": [],
            }
        )
        (folder / "items" / f"{i}.html").write_text(f"<h1>旧站的通知{i}</h1>", "utf-8")
    # the old format, listed out of order: placement follows publish time, not the file
    (folder / "_manifest.json").write_text(json.dumps({"version": 1, "entries": entries[::-1]}), "utf-8")
    (folder / "sitemap.xml").write_text("<urlset/>", "utf-8")

    ch = site(tmp_path)
    assert sorted(int(k) for k in ch.manifest()) == list(range(1, 13))
    assert not (folder / "_manifest.json").exists() and (folder / "_manifest.json.migrated").exists()
    assert hrefs(folder / "page/1.html") == [5, 4, 3, 2, 1]
    assert hrefs(folder / "checklist/2/page/1.html") == [12, 8, 4]
    assert "学校章程及制定的各项规章制度" in (folder / "checklist/2.html").read_text("utf-8")
    check_site(ch)
    ch.publish(post(13, category="其他"), make_ctx(13))
    assert hrefs(folder / "page/3.html") == [13, 12, 11]
    check_site(ch)


def test_a_state_from_before_the_sitemap_columns_gets_them_filled(tmp_path):
    """A ``.site.sqlite3`` of an earlier version (one site, tables without ``site``, ``entry`` without
    the ``path``/``updated`` columns) is copied into today's tables on first use, the columns filled
    from each entry's JSON: its sitemap files, which now read the columns, still list every item with
    its lastmod."""
    ch = site(tmp_path)
    for i in range(1, 13):
        ch.publish(post(i, updated_at=T0 + timedelta(days=i)), make_ctx(i))
    conn = ch.store.conn
    old = {  # table: (its columns then, those copied from today's table)
        "entry": (
            "item_id INTEGER PRIMARY KEY, data TEXT, version INTEGER, live INTEGER",
            "item_id, data, version, live",
        ),
        "listing": ("key TEXT PRIMARY KEY, last_pos, count, label, lastmod", "key, last_pos, count, label, lastmod"),
        "placement": ("listing, pos, item_id, PRIMARY KEY (listing, pos)", "listing, pos, item_id"),
        "file_ref": ("file, item_id, PRIMARY KEY (file, item_id)", "file, item_id"),
        "sitemap_part": ("part INTEGER PRIMARY KEY, lastmod", "part, lastmod"),
        "meta": ("key TEXT PRIMARY KEY, value", "key, value"),
    }
    for table, (columns, names) in old.items():
        conn.execute(f"CREATE TABLE {table} ({columns})")
        conn.execute(f"INSERT INTO {table} SELECT {names} FROM site_{table}")
        conn.execute(f"DROP TABLE site_{table}")
    ch.store.close()

    again = site(tmp_path)
    again.withdraw(post(3), make_ctx(3))  # rewrites sitemap-1.xml from the columns
    check_site(again)
    first = (again.folder / "sitemap-1.xml").read_text("utf-8")
    assert f"<loc>{BASE}items/4.html</loc><lastmod>{(T0 + timedelta(days=4)).isoformat()}</lastmod>" in first
    assert "items/3.html" not in first
    filled = again.store.conn.execute("SELECT count(*) FROM site_entry WHERE path IS NOT NULL AND updated IS NOT NULL")
    assert filled.fetchone()[0] == 11
    tables = {r[0] for r in again.store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert not tables & set(old)


# ------------------------------------------------------------------------------------------ crashes
@pytest.mark.parametrize("step", STEPS)
def test_a_publish_stopped_at_any_step_is_repaired_by_its_retry(tmp_path, step):
    ch = site(tmp_path)
    for i in range(1, 7):
        ch.publish(post(i), make_ctx(i))
    ch.inject_os_error(errno.EIO, step=step)
    with pytest.raises(TransientChannelError):
        ch.publish(post(7), make_ctx(7))
    check_links(ch)
    ch.publish(post(7), make_ctx(7, attempt=2))
    assert hrefs(ch.folder / "page/2.html") == [7, 6]
    check_site(ch)


@pytest.mark.parametrize("step", STEPS)
def test_a_withdrawal_stopped_at_any_step_is_finished_by_its_retry(tmp_path, step):
    ch = site(tmp_path)
    for i in range(1, 12):
        ch.publish(post(i), make_ctx(i))
    ch.inject_os_error(errno.EIO, step=step)
    with pytest.raises(TransientChannelError):
        ch.withdraw(post(3), make_ctx(3))
    check_links(ch)
    ch.withdraw(post(3), make_ctx(3, attempt=2))
    assert "3" not in ch.manifest() and not (ch.folder / "items/3.html").exists()
    assert 3 not in [i for p in ch.folder.rglob("page/*.html") for i in hrefs(p)]
    assert ch.store.get(3) is None  # the withdrawal finished: nothing left half done
    check_site(ch)


# ------------------------------------------------------------------------------------------- rebuild
class Killed(Exception):
    """Stands for the process being killed between two steps of a rebuild."""


def test_rebuild_resumes_where_it_was_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr("channels.website.channel.REBUILD_STEP", 4)
    ch = site(tmp_path)
    for i in range(1, 41):
        ch.publish(post(i, checklist_item=i % 3 + 1), make_ctx(i))
    for path in ch.folder.rglob("page/*.html"):
        path.unlink()
    (ch.folder / "categories" / "cstale.html").write_text("left over", "utf-8")
    seen: list[tuple[int, int]] = []

    def stop_after_two_steps(done: int, total: int) -> None:
        seen.append((done, total))
        if len(seen) == 3:
            raise Killed

    with pytest.raises(Killed):
        ch.rebuild(stop_after_two_steps)
    written = len(list(ch.folder.rglob("page/*.html")))
    assert written == 8
    resumed: list[tuple[int, int]] = []
    again = site(tmp_path)  # a new process: only the checkpoint in the state carries over
    assert again.rebuild(lambda d, t: resumed.append((d, t))) == 40
    total = seen[0][1]
    assert resumed[0] == (8, total) and resumed[-1] == (total, total)
    assert not (ch.folder / "categories" / "cstale.html").exists()
    check_site(again)
    # a finished rebuild leaves no checkpoint: the next one starts from the beginning
    fresh: list[tuple[int, int]] = []
    again.rebuild(lambda d, t: fresh.append((d, t)))
    assert fresh[0] == (0, total)


# ------------------------------------------------------------------------------------ two processes
WORKER = """
import sys
from datetime import UTC, datetime, timedelta
from channels.website import WebsiteChannel, WebsiteConfig
from publisher.testing import make_env, make_ctx, make_post
folder, first = sys.argv[1], int(sys.argv[2])
config = WebsiteConfig(base_url="https://xxgk.example.edu.cn/", page_size=5, sitemap_urls=10)
ch = WebsiteChannel("website", config, make_env(folder))
t0 = datetime(2026, 3, 1, tzinfo=UTC)
def p(i):
    at = t0 + timedelta(minutes=i)
    return make_post(i, category=["基本信息", "招生考试信息", "其他"][i % 3], checklist_item=i % 4 + 1,
                     publish_at=at, updated_at=at)
for i in range(first, first + 40):
    ch.publish(p(i), make_ctx(i))
    if i % 3 == 0:
        ch.withdraw(p(i - 2), make_ctx(i - 2))
    ch.publish(p(999), make_ctx(999))
    if i % 7 == 0:
        ch.withdraw(p(999), make_ctx(999))
"""


def test_two_worker_processes_publish_and_withdraw_at_once(tmp_path):
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path), str(first)], stderr=subprocess.PIPE)
        for first in (1, 101)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    ch = site(tmp_path)
    live = {int(k) for k in ch.manifest()}
    withdrawn = {i - 2 for f in (1, 101) for i in range(f, f + 40) if i % 3 == 0}
    mine = {i for f in (1, 101) for i in range(f, f + 40)}
    assert live - {999} == mine - withdrawn
    assert {int(p.stem) for p in (ch.folder / "items").glob("*.html")} == live
    check_site(ch)


# ---------------------------------------------------------------------------------------------- CLI
def test_publisher_site_rebuild(tmp_path):
    from publisher.db import make_engine, migrate
    from tests.clirun import SETTINGS, Cli

    url = f"sqlite:///{tmp_path / 'queue.db'}"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    settings = (
        SETTINGS.format(data_dir=tmp_path) + f'[channels.site]\ntype = "website"\npage_size = 5\nbase_url = "{BASE}"\n'
    )
    cli = Cli(tmp_path, url, settings)
    ch = site(tmp_path, page_size=5)
    for i in range(1, 13):
        ch.publish(post(i), make_ctx(i))
    for path in ch.folder.rglob("page/*.html"):
        path.unlink()
    r = cli.ok("site", "rebuild")
    assert "site: 12 live items, index pages rebuilt" in r.out
    check_site(ch)
    r = cli("site", "rebuild", "--channel", "mem")
    assert r.code == 2 and "'mem' is not a channel that writes a site (those that do: site)" in r.err


def test_the_quick_date_formats_write_what_strftime_wrote(tmp_path):
    """A listing's dates and the sitemap's times are made by ``isoformat`` rather than ``strftime``
    (a tenth of the cost; a withdrawal from the middle of the site shows 150 dates new to its cache):
    the same text, across years, a leap day, month ends and the office's day boundary (16:00 UTC)."""
    shanghai = ZoneInfo("Asia/Shanghai")
    start = datetime(1999, 12, 31, 15, 59, 59, 999999, tzinfo=UTC)
    moments = [start + timedelta(hours=7 * k, minutes=k) for k in range(1500)]  # into 2001
    moments += [datetime(2026, 12, 3, 16, 0, tzinfo=UTC), datetime(9999, 12, 31, 12, 59, 59, tzinfo=UTC)]
    for moment in moments:
        for dt in (moment, moment.astimezone(shanghai), moment.astimezone(timezone(timedelta(hours=-5)))):
            assert day(dt) == dt.strftime("%Y-%m-%d")
            assert rfc3339(dt) == dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # the channel's listing date is the office's day
    ch = site(tmp_path)
    assert ch._localdate("2026-12-03T16:00:00+00:00") == "2026-12-04"
    assert ch._localdate(datetime(2026, 12, 3, 15, 59, 59, tzinfo=UTC)) == "2026-12-03"


def test_only_the_withdrawals_tidying_commit_skips_waiting_for_the_disk(tmp_path):
    """A withdrawal commits "no longer listed" waiting for the disk (synchronous=FULL) before the item's
    page goes; only the commit after it (forgetting the entry: tidying a power cut may undo) does not,
    and the state's connection is back to FULL for every later change."""
    ch = site(tmp_path)
    ch.publish(post(1), make_ctx(1))
    ch.publish(post(2), make_ctx(2))
    seen: list[str] = []
    ch.store.conn.set_trace_callback(seen.append)
    ch.withdraw(post(1), make_ctx(1))
    ch.publish(post(3), make_ctx(3))
    ch.store.conn.set_trace_callback(None)
    marks = [s for s in seen if s.startswith(("BEGIN", "COMMIT", "PRAGMA synchronous"))]
    assert marks == [
        "BEGIN IMMEDIATE",
        "COMMIT",  # the withdrawal's checkpoint: the listings no longer show item 1, durable
        "PRAGMA synchronous=NORMAL",
        "BEGIN IMMEDIATE",
        "COMMIT",  # forget(1)
        "PRAGMA synchronous=FULL",
        "BEGIN IMMEDIATE",  # the publish of item 3
        "COMMIT",
    ]
    assert ch.store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert sorted(int(k) for k in ch.manifest()) == [2, 3]
    assert not (ch.folder / "items/1.html").exists()


def test_a_failed_tidying_transaction_still_leaves_the_state_waiting_for_the_disk(tmp_path):
    ch = site(tmp_path)
    ch.publish(post(1), make_ctx(1))
    ch.inject_os_error(errno.ENOSPC, step="committed")  # right after the checkpoint, inside the tidying
    with pytest.raises(TransientChannelError):
        ch.withdraw(post(1), make_ctx(1))
    assert ch.store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    ch.withdraw(post(1), make_ctx(1))
    assert ch.manifest() == {}
