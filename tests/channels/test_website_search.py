"""The site's search index (channels/website/search.py), read from the files a reader's browser loads:
what a build puts in the bundle, what an update or a withdrawal takes out at once, a change during a
build, the exact 索引号/发文字号 lookup, and ``publisher site search-index``. The browser side is in
tests/web/test_site_search_browser.py.

The bundles are read back file by file as search.js reads them (dictionary shard, postings, doc/).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from channels.website import WebsiteChannel, WebsiteConfig
from channels.website import search as site_search
from channels.website import searchindex as index
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


def bundle(ch: WebsiteChannel) -> tuple[Path, list[int]]:
    current = json.loads((ch.folder / site_search.POINTER).read_text("utf-8"))
    return ch.folder / "search" / current["bundle"], current["gone"]


def docs(folder: Path) -> dict[int, dict]:
    """Page number → doc/<n>.json of a bundle."""
    return {int(f.stem): json.loads(f.read_text("utf-8")) for f in (folder / "doc").glob("*.json")}


def urls(ch: WebsiteChannel) -> dict[int, str]:
    """Page number → URL of the pages a reader can find (present and not listed as gone)."""
    folder, gone = bundle(ch)
    return {n: d["url"] for n, d in docs(folder).items() if n not in gone}


def postings(folder: Path, term: str) -> list[tuple[int, int]]:
    """(page number, impact) of ``term``, read as search.js reads them."""
    shards = json.loads((folder.parent / "current.json").read_text("utf-8"))["shards"]["dict"]
    table = json.loads((folder / "dict" / f"{index.dict_shard(term, shards)}.json").read_text("utf-8"))
    if term not in table:
        return []
    df, data = table[term]
    raw = (folder / "post" / f"{data}.bin").read_bytes() if isinstance(data, int) else base64.b64decode(data)
    found = index.decode(raw)
    assert len(found) == df
    return found


def search(ch: WebsiteChannel, query: str) -> list[str]:
    """What search.js finds for ``query`` (the AND of its terms, best first, gone dropped), as URLs."""
    folder, gone = bundle(ch)
    scores: dict[int, int] | None = None
    for term in set(index.terms(query)):
        found = dict(postings(folder, term))
        scores = found if scores is None else {n: s + found[n] for n, s in scores.items() if n in found}
    pages = docs(folder)
    ranked = sorted((n for n in scores or {} if n not in gone), key=lambda n: (-(scores or {})[n], n))
    return [pages[n]["url"] for n in ranked]


def test_terms_are_cjk_bigrams_and_ascii_runs() -> None:
    assert index.terms("临时生活补助") == ["临时", "时生", "生活", "活补", "补助"]
    # a lone character is a term; letters and digits are lower-cased runs; full-width forms folded
    assert index.terms("李 Web前端2026年") == ["李", "web", "前端", "2026", "年"]
    assert index.terms("ＡＢＣ１２３，〔2026〕12号") == ["abc123", "2026", "12", "号"]
    assert index.terms("……") == []
    # a title adds each character alone: a one-character query finds titles
    assert index.title_terms("招生章程") == ["招生", "生章", "章程", "招", "生", "章", "程"]


def test_the_marked_part_of_a_page_is_read_by_role() -> None:
    html = """<html><body><h1>not this</h1><div data-search-body><h1>关于<em>寒假</em>安排的通知</h1>
<table class="catalogue"><caption>信息公开目录</caption><tr><th>索引号</th><td data-search-meta="index_no">
123/2026-1</td><th>发布机构</th><td>教务处</td></tr></table><dl class="meta"><dt>发布机构：</dt><dd>教务处</dd></dl>
<article class="body"><p>学校<strong>决定</strong>放假。</p><p>请留意。</p><script>var x = "脚本";</script></article>
<section class="attachments"><ul><li><a>日程表.xlsx</a></li></ul></section></div><footer>页脚</footer></body></html>"""
    page = index.page_text(html.encode())
    assert page is not None
    assert page.title == "关于寒假安排的通知"
    assert page.fields == "123/2026-1 教务处"
    # inline elements stay in their sentence (学校决定 pairs 校决), blocks are apart (放假。 请留意)
    assert page.text == "学校决定放假。 请留意。 日程表.xlsx"
    assert page.meta == {"index_no": "123/2026-1"}
    # a page written before (Pagefind's attributes) reads the same; a notice page has no marked part
    assert index.page_text(html.replace("data-search-", "data-pagefind-").encode()) == page
    assert index.page_text("<html><body><h1>x</h1><p class=ended>公示期已结束</p></body></html>".encode()) is None


def test_a_build_indexes_the_live_item_pages_only(tmp_path: Path) -> None:
    ch = channel(tmp_path)
    for i in (1, 2, 3):
        ch.publish(post(i), make_ctx())
    # a 公示 whose period ended: its page becomes a notice, which the index must not take up
    ch.publish(post(4), make_ctx())
    ch.withdraw(post(4, display_ended=True), make_ctx())
    assert (ch.folder / "items/4.html").exists(), "the notice page stays"

    build = ch.search_index()

    # numbered newest first (3 was published last)
    assert urls(ch) == {0: "items/3.html", 1: "items/2.html", 2: "items/1.html"}
    assert build.indexed == 3 and build.dropped == 0
    folder, gone = bundle(ch)
    assert gone == []
    assert docs(folder)[2] == {
        "url": "items/1.html",
        "title": "通知1",
        "date": "2026-03-01",
        "index_no": "12370000MB0001/2026-00001",
        "doc_number": "齐高师专发〔2026〕1号",
        "text": BODIES[1],
    }
    assert postings(folder, "张三") == [], "the ended 公示 is in no posting"
    assert search(ch, "生活补助") == ["items/1.html"]
    assert search(ch, "闭馆安排") == ["items/2.html"]
    assert search(ch, "请各") == ["items/3.html", "items/1.html"], "equal scores: newest first"
    assert search(ch, "通知") == ["items/3.html", "items/2.html", "items/1.html"]
    assert sorted(search(ch, "通")) == ["items/1.html", "items/2.html", "items/3.html"], "one character: titles"
    assert search(ch, "隐") == [], "in a body, a character counts only in its pairs"
    assert search(ch, "安全 隐患") == ["items/3.html"] and search(ch, "安全图书") == []
    # search.html and search.js are written with the site's common pages
    assert "search.js" in (ch.folder / "search.html").read_text("utf-8")
    assert 'role="search"' in (ch.folder / "index.html").read_text("utf-8")
    assert "wasm" not in (ch.folder / "search.html").read_text("utf-8")


def test_the_ranking_puts_title_words_and_rare_words_first(tmp_path: Path) -> None:
    ch = channel(tmp_path)
    ch.publish(post(1, title="关于奖学金评审的通知", body_html="<p>各学院做好评审工作。</p>"), make_ctx())
    ch.publish(post(2, body_html="<p>奖学金评审工作另行通知。</p>"), make_ctx())
    ch.publish(post(3, body_html="<p>做好工作。</p>"), make_ctx())
    ch.search_index()
    folder, _ = bundle(ch)
    # the title's words outrank the same words in a newer page's body
    assert search(ch, "奖学金") == ["items/1.html", "items/2.html"]
    impacts = {term: dict(postings(folder, term)) for term in ("奖学", "工作")}
    assert impacts["奖学"][2] > impacts["奖学"][1], "in the title (page 2, the oldest) beats in the body"
    assert min(impacts["奖学"].values()) > max(impacts["工作"].values()), "a word on fewer pages weighs more"
    assert all(1 <= v <= 255 for v in impacts["工作"].values())


def test_postings_round_trip_through_long_lists_and_big_gaps() -> None:
    builder = index.IndexBuilder()
    for n in range(700):
        builder.add(index.PageText("标题", "", "共同词语" if n % 3 == 0 else "其他", {}))
    encoded = {t: (df, data) for t, df, data in builder.encoded()}
    df, data = encoded["共同"]
    assert df == 234 and len(data) > index.INLINE_BYTES
    assert [n for n, _ in index.decode(data)] == list(range(0, 700, 3))
    assert isinstance(index.dict_entry(df, data, 7)[1], int) and index.dict_entry(1, b"\x05\x09", 7) == [1, "BQk="]
    gaps = bytearray()
    index._varint(300, gaps)
    gaps.append(9)
    assert index.decode(bytes(gaps)) == [(300, 9)]


def test_an_update_or_withdrawal_drops_the_item_from_the_bundle_at_once(tmp_path: Path) -> None:
    ch = channel(tmp_path)
    for i in (1, 2, 3):
        ch.publish(post(i), make_ctx())
    ch.search_index()
    folder, _ = bundle(ch)
    by_url = {u: n for n, u in urls(ch).items()}

    ch.withdraw(post(2), make_ctx())
    assert "items/2.html" not in urls(ch).values()
    assert not (folder / "doc" / f"{by_url['items/2.html']}.json").exists(), "its text is gone"
    assert bundle(ch)[1] == [by_url["items/2.html"]]
    assert search(ch, "闭馆") == []

    # an update: the indexed text is the old one, so it leaves too (found again after the next build)
    ch.update(post(3, title="通知3（更正）", version=2), make_ctx())
    assert sorted(urls(ch).values()) == ["items/1.html"]
    # a retried publish of the same version changes nothing
    ch.publish(post(1), make_ctx())
    assert sorted(urls(ch).values()) == ["items/1.html"]

    ch.search_index()
    assert sorted(urls(ch).values()) == ["items/1.html", "items/3.html"]
    assert search(ch, "更正") == ["items/3.html"]
    assert bundle(ch)[1] == []
    assert [p.name for p in (ch.folder / "search").iterdir() if p.is_dir()] == [bundle(ch)[0].name]


def test_a_change_while_the_index_is_built_keeps_the_item_out(tmp_path: Path, monkeypatch) -> None:
    """The pages are read outside the lock; a withdrawal or an update that lands meanwhile must
    not come back with the new bundle."""
    ch = channel(tmp_path)
    for i in (1, 2, 3):
        ch.publish(post(i), make_ctx())
    real = site_search.SiteSearch._write_bundle

    def write_then_change(self, *args, **kw):
        written = real(self, *args, **kw)  # the pages are read: now the workers change two of them
        ch.withdraw(post(1), make_ctx())
        ch.update(post(2, body_html="<p>更正后的正文。</p>", version=2), make_ctx())
        return written

    monkeypatch.setattr(site_search.SiteSearch, "_write_bundle", write_then_change)
    build = ch.search_index()
    assert build.indexed == 1 and build.dropped == 2
    assert list(urls(ch).values()) == ["items/3.html"]
    folder, gone = bundle(ch)
    assert len(gone) == 2 and not any((folder / "doc" / f"{n}.json").exists() for n in gone)
    assert search(ch, "生活补助") == [] and search(ch, "闭馆") == []
    ids = [json.loads(f.read_text("utf-8")) for f in (folder / "ids").glob("*.json")]
    assert sorted(n for table in ids for n in table.values()) == [0, 0], "only 3's 索引号 and 发文字号"


def test_a_killed_builds_bundle_is_swept_a_day_later(tmp_path: Path) -> None:
    ch = channel(tmp_path)
    ch.publish(post(1), make_ctx())
    now = datetime.now(UTC)
    stale = ch.folder / "search" / ("b" + (now - timedelta(days=1, minutes=5)).strftime("%Y%m%dT%H%M%S") + "aa")
    running = ch.folder / "search" / ("b" + (now - timedelta(hours=23)).strftime("%Y%m%dT%H%M%S") + "bb")
    for folder in (stale, running):
        (folder / "doc").mkdir(parents=True)
        (folder / "doc" / "0.json").write_text('{"text": "text of a page"}')
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
    number = {u: n for n, u in urls(ch).items()}
    for value, item in (("齐高师专发〔2026〕12号", 12), ("12370000MB0001/2026-00002", 2)):
        key = index.id_key(value)
        shards = json.loads((ch.folder / site_search.POINTER).read_text("utf-8"))["shards"]["ids"]
        table = json.loads((folder / "ids" / f"{index.id_shard(key, shards)}.json").read_text("utf-8"))
        assert table[key] == number[f"items/{item}.html"]
    # what readers type: other brackets, spaces, lower case
    assert index.id_key(" 齐高师专发[2026]12号 ") == index.id_key("齐高师专发（2026）12号")
    assert index.id_key("12370000mb0001/2026-00002") == index.id_key("12370000MB0001/2026-00002")


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
    assert sorted(urls(ch).values()) == ["items/1.html", "items/2.html"]
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
    assert list(urls(ch).values()) == ["items/1.html"]

    off = make_app(channels={"site": {"type": "website", "base_url": BASE, "search_cron": ""}}, users=False)
    assert not [j for j in periodic_jobs(off) if j.name.startswith("site-search-index")]


def test_a_wrong_search_cron_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match=r"search_cron '\*/30 \* \*' is not a crontab line .*e\.g\."):
        WebsiteConfig(search_cron="*/30 * *")
