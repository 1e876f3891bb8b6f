"""Validation messages from the core and the channels reach the Chinese pages in Chinese, with the
English beside them; English pages, the API and the CLI keep the English."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from publisher.errors import ContentNotAccepted
from publisher.web.i18n import ERRORS, Translator
from tests.web.conftest import csrf_of, make_item

sqlite_only = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
SITE_TITLE = "the title is empty; every page of the website needs one"
COVER = "a cover image is required for WeChat (it becomes the article's thumbnail) — add one"


def _text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


@pytest.fixture
def app(make_app, monkeypatch):
    """A website, a memory and a WeChat channel (validate() never calls out: no sandbox needed)."""
    monkeypatch.setenv("PUBLISHER_WECHAT_SECRET", "not-used")
    return make_app(
        channels={
            "site": {"type": "website"},
            "mem": {"type": "memory"},
            "wx": {"type": "wechat", "appid": "wx0123456789", "api_base": "http://127.0.0.1:9"},
        }
    )


@sqlite_only
def test_preview_shows_channel_problems_in_chinese_with_the_english(app, client, login):
    csrf = login(client, "ed")
    form = {
        "csrf_token": csrf,
        "title": "",
        "body_markdown": "正文",
        "category": "公告公示",
        "channels": ["site", "wx"],
        "when": "none",
    }
    zh = _text(client.post("/preview", data=form).text)
    assert f"标题为空：网站的每个页面都需要标题（{SITE_TITLE}）" in zh
    assert f"微信公众号文章需要封面图（用作缩略图），请添加（{COVER}）" in zh
    en = _text(client.post("/preview?lang=en", data=form).text)
    assert SITE_TITLE in en and "标题为空" not in en


@sqlite_only
def test_save_submit_review_and_schedule_refusals_in_chinese(app, client, login):
    csrf = login(client, "ed")
    form = {
        "csrf_token": csrf,
        "title": "   ",
        "body_markdown": "正文",
        "category": "公告公示",
        "department": "校长办公室",
        "channels": "wx",
        "when": "none",
        "action": "draft",
    }
    r = client.post("/items/new", data=form)
    assert r.status_code == 422 and "标题为空（the title is empty）" in _text(r.text)
    r = client.post("/items/new?lang=en", data=form)
    assert r.status_code == 422 and "the title is empty" in _text(r.text) and "标题为空" not in r.text
    # submitting to WeChat without a cover: the channel's own reason, per channel
    r = client.post("/items/new?lang=zh", data={**form, "title": "寒假通知", "action": "submit"})
    assert r.status_code == 422
    assert f"wx：微信公众号文章需要封面图（用作缩略图），请添加（wx: {COVER}）" in _text(r.text)
    # the same from the item page's submit button
    item_id = make_item(app, channels=("wx",))
    page = client.get(f"/items/{item_id}")
    r = client.post(f"/items/{item_id}/submit", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 422 and "微信公众号文章需要封面图" in _text(r.text) and COVER in _text(r.text)
    # scheduling in the past
    past = (datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    r = client.post(f"/items/{item_id}/schedule", data={"csrf_token": csrf_of(page.text), "at": past, "when": "at"})
    assert r.status_code == 422 and "已经过去，请填写将来的时间" in _text(r.text) and "is in the past" in r.text
    # a rejection without a reason
    ok = make_item(app, channels=("mem",), stage="submitted")
    client.cookies.clear()
    login(client, "head")
    page = client.get(f"/items/{ok}")
    r = client.post(f"/items/{ok}/review", data={"csrf_token": csrf_of(page.text), "decision": "reject"})
    assert r.status_code == 422 and "退回需填写理由" in _text(r.text) and "a rejection needs a reason" in r.text
    # the API keeps the English
    api = client.post(f"/api/items/{ok}/review", json={"approve": False}, headers={"X-CSRF-Token": csrf_of(page.text)})
    assert api.status_code == 422 and "退回" not in api.text and "a rejection needs a reason" in api.text


def test_the_catalogue():
    zh, en = Translator("zh", ZoneInfo("UTC")), Translator("en", ZoneInfo("UTC"))
    for pattern, chinese in ERRORS:
        groups = set(re.compile(pattern).groupindex)
        assert re.search(r"[\u4e00-\u9fff]", chinese), pattern
        assert set(re.findall(r"\{(\w+)\}", chinese)) <= groups, pattern  # every placeholder is filled
    assert zh.error("item 5 is scheduled; it cannot be rescheduled") == (
        "稿件 5 的状态是“已排期”，不能改期（item 5 is scheduled; it cannot be rescheduled）"
    )
    assert zh.error("unknown department ''; known: 人事处 (add it with `publisher department add NAME`)").startswith(
        "请选择部门（"
    )
    assert zh.error(
        "the link x is not a valid URL; WeChat readers outside the campus network cannot open it — "
        "link to a public page or remove it"
    ).startswith("the link x")  # only intranet links say so
    assert zh.error("something nobody catalogued") == "something nobody catalogued"
    assert en.error("the title is empty") == "the title is empty"
    exc = ContentNotAccepted(problems=[f"site: {SITE_TITLE}", "mem: title is 99 characters; mem takes at most 10"])
    assert zh.error(exc) == (
        f"site：标题为空：网站的每个页面都需要标题（site: {SITE_TITLE}）；"
        "mem: title is 99 characters; mem takes at most 10"
    )
    assert str(exc).endswith(f"site: {SITE_TITLE}; mem: title is 99 characters; mem takes at most 10")  # the CLI's
