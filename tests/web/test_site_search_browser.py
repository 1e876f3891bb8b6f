"""The site search (搜索) in Debian's Chromium, over HTTP under the pages' own CSP: a reader types in
the header's box, gets the items whose text holds a Chinese word written inside a sentence (no
spaces; found by its character pairs), gets the one document of an exact 索引号 or 发文字号 first
(among ones that differ by a digit), never sees a withdrawn item or one whose 公示期 ended, and can do
it all by keyboard, on a 390 px screen, with no serious axe violation (docs/channels/website.md, "Search").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from channels.website import WebsiteChannel, WebsiteConfig
from channels.website.searchindex import SHARDS_JS, TERMS_JS, dict_shard_number, fnv1a, id_key, terms
from publisher.channel import Catalogue
from publisher.testing import make_ctx, make_env, make_post
from tests.web import axe
from tests.web.static_site import console_errors, served
from tests.web.test_browser import SHOTS, browser  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser]

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
BODIES = {
    1: "学校决定对家庭经济困难学生发放临时生活补助，请各学院于本周内完成名单报送。",
    2: "图书馆将于寒假期间调整开放时间，读者请留意闭馆安排。",
    3: "关于开展实验室安全隐患排查整治工作的通知，请各单位认真落实。",
    4: "拟推荐张三同学为国家奖学金获得者，公示期内如有异议请向学生工作处反映。",
    5: "经研究决定，李四同志的处分决定予以撤销，特此通知。",
}
# 发文字号 and 索引号 that share everything but digits: a word search alone ranks them alike
NUMBERS = [1, 12, 121, 112, 21, 2]


def _post(i: int, **kw: Any) -> Any:
    at = T0 + timedelta(hours=i)
    return make_post(
        i,
        title=kw.pop("title", f"学校通知第{i}号"),
        body_html=kw.pop("body_html", f"<p>{BODIES.get(i, '学校其他事项的通知。')}</p>"),
        publish_at=at,
        updated_at=at,
        catalogue=Catalogue(index_no=f"12370000MB0001/2026-{i:05d}", doc_number=f"齐高师专发〔2026〕{i}号"),
        **kw,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WebsiteChannel, str]]:
    ch = WebsiteChannel(
        "website",
        WebsiteConfig(base_url="http://site.invalid/", title="信息公开网"),
        make_env(tmp_path_factory.mktemp("s")),
    )
    for i in sorted({*BODIES, *NUMBERS}):
        ch.publish(_post(i), make_ctx())
    ch.search_index()
    with served(ch.folder) as base:
        yield ch, base


def _search(page: Any, base: str, q: str) -> list[int]:
    """Open search.html?q=… and return the item ids listed, in order."""
    page.goto(f"{base}search.html?q={q}")
    return _results(page, q)


def _results(page: Any, q: str) -> list[int]:
    page.wait_for_selector(f"#search-hits[data-done-for={json.dumps(q, ensure_ascii=False)}]", state="attached")
    hrefs = page.eval_on_selector_all("#search-hits li > a", "els => els.map(e => e.getAttribute('href'))")
    return [int(h.rsplit("/", 1)[1].removesuffix(".html")) for h in hrefs]


def test_a_reader_finds_items_in_chinese_and_never_a_withdrawn_one(site: Any, browser: Any) -> None:  # noqa: F811
    ch, base = site
    page = browser.new_page()
    errors = console_errors(page)

    # by keyboard from the home page: Tab to the header's box, type, Enter
    page.goto(base + "index.html")
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "site-q":
            break
    assert page.evaluate("document.activeElement.id") == "site-q", "the search box is reachable by Tab"
    page.keyboard.type("生活补助")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search.html?q=*")
    assert _results(page, "生活补助") == [1]
    assert "找到 1 条结果" in page.inner_text("#search-status")
    assert page.locator("#search-hits mark").count() >= 1, "the words found are marked in the excerpt"
    page.screenshot(path=str(SHOTS / "60-site-search.png"), full_page=True)
    # … and on to the result by keyboard
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('#search-hits') !== null"):
            break
    assert page.evaluate("document.activeElement.closest('#search-hits') !== null"), "results reachable by Tab"
    page.keyboard.press("Enter")
    page.wait_for_url("**/items/1.html")

    # words inside sentences (no spaces anywhere), found by their character pairs
    assert _search(page, base, "困难学生") == [1]
    assert _search(page, base, "隐患排查") == [3]
    assert _search(page, base, "闭馆") == [2]

    # exact 索引号 and 发文字号: the one document first, whatever brackets the reader types
    assert _search(page, base, "齐高师专发〔2026〕12号")[0] == 12
    assert _search(page, base, "齐高师专发[2026]121号")[0] == 121
    assert _search(page, base, "12370000MB0001/2026-00002")[0] == 2
    assert "索引号：12370000MB0001/2026-00002" in page.inner_text("#search-hits li:first-child")

    # a withdrawal (4 withdrawn; 5's 公示期 ended, its notice page stays) is out of the results at
    # once, before any new build: a privacy promise
    assert _search(page, base, "李四") == [5]
    assert _search(page, base, "张三") == [4]  # this page stays open across the withdrawals
    ch.withdraw(_post(4), make_ctx())
    ch.withdraw(_post(5, display_ended=True), make_ctx())
    page.fill("#search-q", "奖学金")
    page.keyboard.press("Enter")
    assert _results(page, "奖学金") == [], "the open page re-reads what was withdrawn"
    assert "没有找到" in page.inner_text("#search-status")
    assert _search(page, base, "张三") == []
    assert _search(page, base, "李四") == []
    assert 4 not in _search(page, base, "齐高师专发〔2026〕4号")
    assert 5 not in _search(page, base, "12370000MB0001/2026-00005")
    # a new build keeps them out and finds the rest as before
    ch.search_index()
    assert _search(page, base, "张三") == [] and _search(page, base, "困难学生") == [1]
    assert errors == []


def test_the_search_page_is_accessible_and_fits_a_phone(site: Any, browser: Any) -> None:  # noqa: F811
    _, base = site
    page = browser.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    errors = console_errors(page)
    for q in ("学校", "无此内容的词"):
        _search(page, base, q)
        found = axe.blocking(page)
        assert not found, axe.describe(found)
        width = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert width[0] <= width[1], f"the page scrolls sideways at 390 px: {width}"
    page.goto(base + "index.html")
    assert page.locator("form[role=search] #site-q").is_visible()
    found = axe.blocking(page)
    assert not found, axe.describe(found)
    page.screenshot(path=str(SHOTS / "61-site-search-390.png"), full_page=True)
    assert errors == []


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_search_works_under_the_web_apps_headers(make_app: Any, browser: Any) -> None:  # noqa: F811
    """``publisher serve`` serves the site at /site/ with its own CSP header (no WebAssembly, no
    inline script, the search page included), and result links keep the /site/ prefix."""
    import socket
    import threading
    import time

    import uvicorn

    from publisher.web import create_app

    app = make_app(channels={"site": {"type": "website", "base_url": "http://127.0.0.1/site/", "search_cron": ""}})
    ch = app.channels["site"].channel
    for i in (1, 2, 3):
        ch.publish(_post(i), make_ctx())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    srv = uvicorn.Server(uvicorn.Config(create_app(app), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not srv.started and time.monotonic() < deadline:
            time.sleep(0.02)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}/site/"
        page = browser.new_page()
        errors = console_errors(page)
        answer = page.goto(base + "index.html")
        assert "wasm-unsafe-eval" not in answer.headers["content-security-policy"]
        answer = page.goto(base + "search.html")
        assert "script-src 'self';" in answer.headers["content-security-policy"]
        assert _search(page, base, "闭馆") == []
        assert "搜索索引尚未建立" in page.inner_text("#search-status"), "before the first build, it says so"
        errors.clear()  # that query's 404 for search/current.json, the one error expected
        ch.search_index()
        assert _search(page, base, "闭馆") == [2]
        assert page.eval_on_selector("#search-hits a", "a => a.getAttribute('href')") == "/site/items/2.html"
        assert errors == []
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_the_browser_cuts_text_into_the_same_terms_as_the_build(browser: Any) -> None:  # noqa: F811
    """search.js's ``terms``, ``idKey`` and shard hashes (run here in Chromium) and searchindex's agree,
    or a query would ask for terms the index does not hold, or in the wrong file (the sites of the
    other tests are small enough for one dictionary file, where a wrong hash would go unnoticed)."""
    texts = [
        "学校决定对家庭经济困难学生发放临时生活补助",
        "关于2026年招生章程的通知（第3号）",
        "齐高师专发〔2026〕12号 12370000MB0001/2026-00002",
        "ＡＢＣ１２３ Web前端　李 ·张三· e-mail: Office@Example.EDU.cn",
        "㐀㐁 丽\uf900 𠀀𠀁 emoji😀中文 İstanbul Ǆ ß",
        "",
        "，。、；：？！",
    ]
    page = browser.new_page()
    got = page.evaluate(
        f"""(texts) => {{ {TERMS_JS}; {SHARDS_JS};
          return texts.map((t) => [terms(t), terms(t).map(termHash), idKey(t), idHash(idKey(t))]); }}""",
        texts,
    )
    assert got == [
        [terms(t), [dict_shard_number(w, 2**32) for w in terms(t)], id_key(t), fnv1a(id_key(t))] for t in texts
    ]
    assert got[0][0][:3] == ["学校", "校决", "决定"]
    assert len({h for row in got for h in row[1]}) > 40, "the hashes spread"


def test_a_site_in_a_bucket_is_searched_from_the_bucket(tmp_path: Any, browser: Any, monkeypatch: Any) -> None:  # noqa: F811
    """A site in an S3-compatible bucket (moto, served straight from the bucket as a reader's
    browser would get it): the index is built from the pages in the bucket into it, and a withdrawal
    is out of the results at once there too."""
    from publisher.db import make_engine, migrate
    from publisher.pipeline.sharedsql import EngineSql
    from tests.s3server import S3Server, set_keys

    set_keys(monkeypatch)
    engine = make_engine(f"sqlite:///{tmp_path / 'queue.db'}")
    migrate(engine)
    with S3Server() as s3:
        table = s3.bucket()
        public = {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{table['bucket']}/*",
        }
        s3.client().put_bucket_policy(
            Bucket=table["bucket"], Policy=json.dumps({"Version": "2012-10-17", "Statement": [public]})
        )
        base = f"{s3.endpoint}/{table['bucket']}/xxgk/"
        config = WebsiteConfig(base_url=base, title="信息公开网", storage="s3", s3=table)
        ch = WebsiteChannel("website", config, make_env(tmp_path, sql=EngineSql(engine)))
        for i in (1, 2, 3, 12):
            ch.publish(_post(i), make_ctx())
        ch.search_index()
        page = browser.new_page()
        errors = console_errors(page)
        assert _search(page, base, "闭馆") == [2]
        assert _search(page, base, "齐高师专发[2026]12号")[0] == 12
        ch.withdraw(_post(2), make_ctx())
        page.fill("#search-q", "闭馆")
        page.keyboard.press("Enter")
        assert _results(page, "闭馆") == [], "the open page re-reads what was withdrawn"
        assert errors == []
    engine.dispose()


def test_a_word_on_hundreds_of_pages_is_counted_ranked_and_paged(tmp_path: Any, browser: Any) -> None:  # noqa: F811
    """A word on 200 pages has its postings in a file of its own (post/<n>.bin, not inline): all are
    counted, the page whose title holds it comes first, the rest newest first, 10 at a time."""
    ch = WebsiteChannel("website", WebsiteConfig(base_url="http://site.invalid/"), make_env(tmp_path))
    for i in range(1, 201):
        title = "校园开放日安排" if i == 7 else f"学校通知第{i}号"
        ch.publish(_post(i, title=title, body_html="<p>校园开放日的安排另行通知。</p>"), make_ctx())
    build = ch.search_index()
    assert list((ch.folder / "search" / build.bundle / "post").glob("*.bin")), "long postings go to post/"
    with served(ch.folder) as base:
        page = browser.new_page()
        errors = console_errors(page)
        found = _search(page, base, "开放日")
        assert "找到 200 条结果" in page.inner_text("#search-status")
        assert found == [7, *[i for i in range(200, 190, -1) if i != 7]][:10]
        page.click("#search-more")
        page.wait_for_selector("#search-hits li:nth-child(20)")
        assert _results(page, "开放日")[10:] == list(range(191, 181, -1))
        assert errors == []
