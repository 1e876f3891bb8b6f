"""The site's search index (channels/website/search.py), read from the files a reader's browser loads:
what a build puts in the bundle, what an update or a withdrawal takes out at once, a change during a
build, the exact 索引号/发文字号 lookup, and ``publisher site search-index``. The browser side is in
tests/web/test_site_search_browser.py.

Pagefind really runs (the binary from PyPI ``pagefind[extended]``); the bundles are read back with
the same gzip/JSON format the browser reads.
"""

from __future__ import annotations

import gzip
import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from channels.website import WebsiteChannel, WebsiteConfig
from channels.website import search as site_search
from publisher.channel import Catalogue
from publisher.testing import make_ctx, make_env, make_post

BASE = "https://xxgk.example.edu.cn/"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
BODIES = {
    1: "学校决定对家庭经济困难学生发放临时生活补助，请各学院于本周内完成名单报送。",
    2: "图书馆将于寒假期间调整开放时间，读者请留意闭馆安排。",
    3: "关于开展实验室安全隐患排查整治工作的通知，请各单位认真落实。",
    4: "拟推荐张三同学为国家奖学金获得者，公示期内如有异议请向学生工作处反映。",
}


def channel(tmp_path: Path) -> WebsiteChannel:
    return WebsiteChannel("website", WebsiteConfig(base_url=BASE), make_env(tmp_path))


def post(i: int, **kw):
    at = T0 + timedelta(hours=i)
    kw = {
        "title": f"通知{i}",
        "body_html": f"<p>{BODIES.get(i, '其他事项。')}</p>",
        "publish_at": at,
        "updated_at": at,
        "catalogue": Catalogue(index_no=f"12370000MB0001/2026-{i:05d}", doc_number=f"齐高师专发〔2026〕{i}号"),
        **kw,
    }
    return make_post(i, **kw)


def bundle(ch: WebsiteChannel) -> tuple[Path, list[str]]:
    current = json.loads((ch.folder / site_search.POINTER).read_text("utf-8"))
    return ch.folder / "search" / current["bundle"], current["gone"]


def urls(ch: WebsiteChannel) -> dict[str, str]:
    """Fragment id → URL of the pages a reader can find (present and not listed as gone)."""
    folder, gone = bundle(ch)
    return {f: d["url"] for f, d in site_search.fragments(folder).items() if f not in gone}


def contents(folder: Path) -> list[str]:
    """The text of every fragment file of a bundle, as the browser decodes it."""
    return [
        json.loads(gzip.decompress(f.read_bytes()).removeprefix(b"pagefind_dcd"))["content"]
        for f in (folder / "fragment").glob("*.pf_fragment")
    ]


def test_a_build_indexes_the_live_item_pages_only(tmp_path: Path) -> None:
    ch = channel(tmp_path)
    for i in (1, 2, 3):
        ch.publish(post(i), make_ctx())
    # a 公示 whose period ended: its page becomes a notice, which the index must not take up
    ch.publish(post(4), make_ctx())
    ch.withdraw(post(4, display_ended=True), make_ctx())
    assert (ch.folder / "items/4.html").exists(), "the notice page stays"

    build = ch.search_index()

    assert sorted(urls(ch).values()) == ["/items/1.html", "/items/2.html", "/items/3.html"]
    assert build.indexed == 3 and build.dropped == 0
    folder, gone = bundle(ch)
    assert gone == []
    assert (folder / "pagefind.js").is_file() and not list(folder.glob("pagefind-ui*"))
    texts = contents(folder)
    assert not any("张三" in t for t in texts), "the ended 公示 is in no fragment"
    # Chinese was segmented at indexing: Pagefind marks the word breaks it found with U+200B
    assert any("临时\u200b生活\u200b补助" in t for t in texts), texts
    # search.html and search.js are written with the site's common pages
    assert "search.js" in (ch.folder / "search.html").read_text("utf-8")
    assert 'role="search"' in (ch.folder / "index.html").read_text("utf-8")


def test_an_update_or_withdrawal_drops_the_item_from_the_bundle_at_once(tmp_path: Path) -> None:
    ch = channel(tmp_path)
    for i in (1, 2, 3):
        ch.publish(post(i), make_ctx())
    ch.search_index()
    folder, _ = bundle(ch)
    by_url = {u: f for f, u in urls(ch).items()}

    ch.withdraw(post(2), make_ctx())
    assert "/items/2.html" not in urls(ch).values()
    assert not (folder / "fragment" / f"{by_url['/items/2.html']}.pf_fragment").exists(), "its text is gone"
    assert bundle(ch)[1] == [by_url["/items/2.html"]]

    # an update: the indexed text is the old one, so it leaves too (found again after the next build)
    ch.update(post(3, title="通知3（更正）", version=2), make_ctx())
    assert sorted(urls(ch).values()) == ["/items/1.html"]
    # a retried publish of the same version changes nothing
    ch.publish(post(1), make_ctx())
    assert sorted(urls(ch).values()) == ["/items/1.html"]

    ch.search_index()
    assert sorted(urls(ch).values()) == ["/items/1.html", "/items/3.html"]
    assert bundle(ch)[1] == []
    assert [p.name for p in (ch.folder / "search").iterdir() if p.is_dir()] == [bundle(ch)[0].name]


def test_a_change_while_the_index_is_built_keeps_the_item_out(tmp_path: Path, monkeypatch) -> None:
    """Pagefind reads the pages outside the lock; a withdrawal or an update that lands meanwhile must
    not come back with the new bundle."""
    ch = channel(tmp_path)
    for i in (1, 2, 3):
        ch.publish(post(i), make_ctx())
    real = site_search._index

    async def index_then_change(site: Path, output: Path) -> None:
        await real(site, output)  # the pages are read: now the workers change two of them
        ch.withdraw(post(1), make_ctx())
        ch.update(post(2, body_html="<p>更正后的正文。</p>", version=2), make_ctx())

    monkeypatch.setattr(site_search, "_index", index_then_change)
    build = ch.search_index()
    assert build.indexed == 1 and build.dropped == 2
    assert list(urls(ch).values()) == ["/items/3.html"]
    folder, gone = bundle(ch)
    assert len(gone) == 2 and not any((folder / "fragment" / f"{f}.pf_fragment").exists() for f in gone)


def test_a_killed_builds_bundle_is_swept_a_day_later(tmp_path: Path) -> None:
    ch = channel(tmp_path)
    ch.publish(post(1), make_ctx())
    stale, running = ch.folder / "search" / "b20261101T000000aa", ch.folder / "search" / "b20261203T000000bb"
    for folder in (stale, running):
        (folder / "fragment").mkdir(parents=True)
        (folder / "fragment" / "zh-cn_1.pf_fragment").write_bytes(b"text of a page")
    day_ago = time.time() - 86400 - 60
    os.utime(stale, (day_ago, day_ago))
    ch.search_index()
    assert not stale.exists(), "a killed build's texts do not stay online"
    assert running.exists(), "a build younger than a day may still be running elsewhere"
    assert len(bundle(ch)[0].name) == len("b20261203T000000") + 12  # a random part in every name


def test_exact_ids_are_in_their_shard(tmp_path: Path) -> None:
    ch = channel(tmp_path)
    for i in (1, 2, 12):
        ch.publish(post(i), make_ctx())
    ch.search_index()
    folder, _ = bundle(ch)
    frag = {u: f for f, u in urls(ch).items()}
    for value, item in (("齐高师专发〔2026〕12号", 12), ("12370000MB0001/2026-00002", 2)):
        key = site_search.id_key(value)
        table = json.loads((folder / "ids" / f"{site_search.id_shard(key)}.json").read_text("utf-8"))
        assert table[key] == frag[f"/items/{item}.html"]
    # what readers type: other brackets, spaces, lower case
    assert site_search.id_key(" 齐高师专发[2026]12号 ") == site_search.id_key("齐高师专发（2026）12号")
    assert site_search.id_key("12370000mb0001/2026-00002") == site_search.id_key("12370000MB0001/2026-00002")


def test_publisher_site_search_index(tmp_path: Path) -> None:
    from publisher.db import make_engine, migrate
    from tests.clirun import SETTINGS, Cli

    url = f"sqlite:///{tmp_path / 'queue.db'}"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    settings = SETTINGS.format(data_dir=tmp_path) + f'[channels.site]\ntype = "website"\nbase_url = "{BASE}"\n'
    cli = Cli(tmp_path, url, settings)
    ch = channel(tmp_path)
    for i in (1, 2):
        ch.publish(post(i), make_ctx(i))
    r = cli.ok("site", "search-index")
    assert "site: 2 pages indexed" in r.out
    assert sorted(urls(ch).values()) == ["/items/1.html", "/items/2.html"]
    r = cli("site", "search-index", "--channel", "mem")
    assert r.code == 2 and "'mem' is not a channel that writes a site" in r.err


def test_the_scheduler_builds_the_index_once_per_period(make_app) -> None:
    """``search_cron`` gives the site a ``site-search-index:<channel>`` job; like every periodic job it
    runs on one worker per period."""
    from publisher.scheduler import periodic_jobs, run_once_per_period

    app = make_app(channels={"site": {"type": "website", "base_url": BASE, "search_cron": "15 * * * *"}})
    ch = app.channels["site"].channel
    ch.publish(post(1), make_ctx())
    (job,) = [j for j in periodic_jobs(app) if j.name.startswith("site-search-index")]
    assert job.name == "site-search-index:site"
    hour = datetime.now(UTC).replace(minute=15, second=0, microsecond=0)
    assert run_once_per_period(app, job, "hostA", hour) is True
    assert run_once_per_period(app, job, "hostB", hour) is False
    assert list(urls(ch).values()) == ["/items/1.html"]

    off = make_app(channels={"site": {"type": "website", "base_url": BASE, "search_cron": ""}}, users=False)
    assert not [j for j in periodic_jobs(off) if j.name.startswith("site-search-index")]


def test_a_wrong_search_cron_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match=r"search_cron '\*/30 \* \*' is not a crontab line .*e\.g\."):
        WebsiteConfig(search_cron="*/30 * *")
