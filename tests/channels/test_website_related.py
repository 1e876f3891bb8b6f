"""Related items on the website kept both ways as they come and go: the older page gains its link
to a newer related item when that one is published, renames it when its title changes, and drops it
when the newer one is withdrawn or no longer related — rewriting only the older page's section
(channels/website/related.py). End to end through the pipeline: tests/test_catalogue_site.py."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from channels.website import WebsiteChannel, WebsiteConfig
from channels.website.related import END, START
from publisher.channel import Catalogue, RelatedLink
from publisher.testing import make_ctx, make_env, make_post

BASE = "https://xxgk.example.edu.cn/"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def site(tmp_path: Path) -> WebsiteChannel:
    return WebsiteChannel("website", WebsiteConfig(base_url=BASE), make_env(tmp_path))


def post(i: int, title: str, *links: RelatedLink, version: int = 1):
    at = T0 + timedelta(hours=i)
    return make_post(
        i,
        title=title,
        category="规章制度",
        publish_at=at,
        updated_at=at + timedelta(minutes=version),
        version=version,
        catalogue=Catalogue(related=links),
    )


def related(ch: WebsiteChannel, item: int) -> list[tuple[str, int, str]]:
    page = (ch.folder / f"items/{item}.html").read_text("utf-8")
    found = re.search(re.escape(START) + "(.*?)" + re.escape(END), page, re.S)
    assert found, "every item page carries the markers of its related section"
    return [
        (label, int(i), t)
        for label, i, t in re.findall(r'<li>(.*?)：<a href="\.\./items/(\d+)\.html">(.*?)</a>', found[1])
    ]


RULE = "学生管理规定"
READING = "《学生管理规定》政策解读"


def test_the_older_page_links_a_newer_related_item_at_once_and_drops_it_when_withdrawn(tmp_path):
    ch = site(tmp_path)
    ch.publish(post(1, RULE), make_ctx(1))
    ch.publish(post(2, "另一则通知"), make_ctx(2))
    assert related(ch, 1) == []
    other_before = (ch.folder / "items/2.html").read_bytes()

    ch.publish(post(3, READING, RelatedLink("解读的文件", 1, RULE, back_label="政策解读")), make_ctx(3))
    assert related(ch, 3) == [("解读的文件", 1, RULE)]
    assert related(ch, 1) == [("政策解读", 3, READING)]
    assert (ch.folder / "items/2.html").read_bytes() == other_before  # unrelated pages untouched

    # the 解读 renamed: the rule's link follows
    renamed = "《学生管理规定》政策解读（修订）"
    ch.update(post(3, renamed, RelatedLink("解读的文件", 1, RULE, back_label="政策解读"), version=2), make_ctx(3))
    assert related(ch, 1) == [("政策解读", 3, renamed)]

    ch.withdraw(post(3, renamed), make_ctx(3))
    assert related(ch, 1) == []
    # the rule published again (its post no longer names the 解读): nothing comes back
    ch.update(post(1, RULE, version=2), make_ctx(1))
    assert related(ch, 1) == []


def test_a_link_dropped_by_an_update_leaves_the_older_page(tmp_path):
    ch = site(tmp_path)
    ch.publish(post(1, RULE), make_ctx(1))
    ch.publish(post(2, "招标公告"), make_ctx(2))
    ch.publish(post(3, READING, RelatedLink("解读的文件", 1, RULE, back_label="政策解读")), make_ctx(3))
    # the edit now names item 2 instead of item 1
    ch.update(post(3, READING, RelatedLink("招标公告", 2, "招标公告", back_label="中标公告"), version=2), make_ctx(3))
    assert related(ch, 1) == []
    assert related(ch, 2) == [("中标公告", 3, READING)]


def test_the_older_item_withdrawn_leaves_the_newer_page_and_items_not_on_the_site_are_not_linked(tmp_path):
    ch = site(tmp_path)
    ch.publish(post(1, RULE), make_ctx(1))
    links = (
        RelatedLink("解读的文件", 1, RULE, back_label="政策解读"),
        RelatedLink("修订的文件", 9, "不在本网站的文件"),
    )
    ch.publish(post(3, READING, *links), make_ctx(3))
    assert related(ch, 3) == [("解读的文件", 1, RULE)]  # item 9 has no page on this site
    ch.withdraw(post(1, RULE), make_ctx(1))
    assert related(ch, 3) == []
    assert not (ch.folder / "items/1.html").exists()


def test_a_page_written_before_the_markers_gets_its_section(tmp_path):
    ch = site(tmp_path)
    ch.publish(post(1, RULE), make_ctx(1))
    page = ch.folder / "items/1.html"
    # as the previous version wrote it: no markers, an old section with a stale link
    old = page.read_text("utf-8").replace(START + END, "")
    old = old.replace(
        "</main>",
        '<section class="related"><h2>相关文件</h2><ul>\n<li>修订版本：<a href="../items/7.html">旧</a></li>\n'
        "</ul></section>\n</main>",
    )
    page.write_text(old, "utf-8")
    ch.publish(post(3, READING, RelatedLink("解读的文件", 1, RULE, back_label="政策解读")), make_ctx(3))
    text = page.read_text("utf-8")
    assert related(ch, 1) == [("政策解读", 3, READING)]
    assert "items/7.html" not in text and text.count('<section class="related">') == 1
    assert text.index(END) < text.index("</main>")
