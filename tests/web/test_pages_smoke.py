from __future__ import annotations

import re

import pytest

from tests.web.conftest import make_item


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_pages_render_for_an_editor(app, client, login):
    login(client, "ed")
    item = make_item(app, stage="scheduled")
    for path in (
        "/items",
        "/items/new",
        f"/items/{item}",
        "/calendar",
        "/calendar?view=month",
        "/dashboard",
        "/tokens",
    ):
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[:2000])
        assert "信息公开发布平台" in r.text


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_item_list_shows_channel_labels_with_the_key_as_title(make_app):
    from fastapi.testclient import TestClient

    from publisher import accounts
    from publisher.pipeline import workflow
    from publisher.web import create_app
    from publisher.web.security import SESSION_COOKIE

    app = make_app(channels={"wechat": {"type": "memory", "label": "微信公众号"}, "mem2": {"type": "memory"}})
    make_item(app, channels=("wechat", "mem2"))
    with TestClient(create_app(app), follow_redirects=False) as client:
        with app.session() as s:
            client.cookies.set(SESSION_COOKIE, accounts.start_session(s, workflow.get_user(s, "ed"), app.settings.web))
        page = client.get("/items")
    assert page.status_code == 200
    row = re.search(r"<tr><td>\d+</td>.*?</tr>", page.text, re.S).group(0)
    assert '<span title="wechat">微信公众号</span>' in row
    assert '<span title="mem2">In-memory (tests)</span>' in row  # no label configured: the channel type's own
    assert ">wechat<" not in row


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_reviews_show_reviewers_display_names(app, client, login):
    from sqlmodel import select

    from publisher.models import User

    with app.session() as s:
        for u in s.exec(select(User)):
            u.display_name = {"head": "王主任", "sec": ""}.get(u.name, u.display_name)
    item = make_item(app, stage="scheduled")
    login(client, "ed")
    page = client.get(f"/items/{item}")
    assert page.status_code == 200
    reviews = re.search(r"<h2>审核记录</h2>(.*?)</ul>", page.text, re.S).group(1)
    assert "· 王主任 ·" in reviews and "· head ·" not in reviews
    assert "· sec ·" in reviews  # no display name: the user name


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_versions_show_editors_display_names(app, client, login):
    from sqlmodel import select

    from publisher.models import User
    from publisher.pipeline import workflow

    with app.session() as s:
        for u in s.exec(select(User)):
            u.display_name = {"ed": "李老师", "head": "王主任"}.get(u.name, u.display_name)
    item = make_item(app, stage="draft")
    with app.session() as s:
        workflow.edit_item(
            app.ctx,
            s,
            item_id=item,
            actor=workflow.get_user(s, "head"),
            changes={},
            body_markdown="主任改过的正文",
            new_assets=[],
        )
    login(client, "ed")
    page = client.get(f"/items/{item}")
    assert page.status_code == 200
    versions = re.search(r"<h2>版本记录</h2>(.*?)</ul>", page.text, re.S).group(1)
    assert "· 李老师 ·" in versions and "· 王主任 ·" in versions
    assert "· ed ·" not in versions and "· head ·" not in versions


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_missing_or_hidden_item_is_explained_in_the_readers_language(app, client, login):
    """The 404 page says, in Chinese first, that the item does not exist or is not the reader's to see
    (the very same page for both), not only the core's English "no item N"."""
    hidden = make_item(app)  # 校长办公室's
    login(client, "ed2")  # 人事处
    for path in (f"/items/{hidden}", "/items/999999", "/no-such-page"):
        r = client.get(path)
        assert r.status_code == 404, path
        main = re.search(r"<main[^>]*>(.*?)</main>", r.text, re.S).group(1)
        assert "<h1>未找到</h1>" in main and "不在您可以查看的范围内" in main, path
    r = client.get("/items/999999?lang=en")
    assert "<h1>Not found</h1>" in r.text and "not yours to see" in r.text


@pytest.mark.parametrize("store_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_item_list_search_reaches_items_beyond_the_listed_ones(app, client, login):
    """The list shows the 200 most recently updated and says so; an older item is found by its title
    or number. The search is literal (% and _ are characters) and stays within the caller's department."""
    from datetime import timedelta

    import sqlalchemy as sa

    from publisher.models import Item, utcnow

    shown = 200  # publisher.web.pages.items.ITEMS_SHOWN

    oldest = make_item(app, title="2019年度预算公开说明")
    odd = make_item(app, title="完成率100%_统计")
    other = make_item(app, author="ed2", title="人事处2019年度预算")  # 人事处's
    with app.session() as s:
        row = s.get(Item, oldest).model_dump(exclude={"id", "idempotency_key"})
    later = utcnow() + timedelta(minutes=1)
    with app.engine.begin() as c:
        c.execute(
            sa.insert(Item.__table__), [{**row, "title": f"通知第{n}号", "updated_at": later} for n in range(shown)]
        )
    login(client, "ed")

    def titles(path):
        r = client.get(path)
        assert r.status_code == 200, r.text[:500]
        return re.findall(r'<a href="/items/\d+">([^<]*)</a>', r.text), r.text

    listed, page = titles("/items")
    assert len(listed) == shown and "2019年度预算公开说明" not in listed
    assert f"只列出最近更新的 {shown} 篇" in page
    found, page = titles("/items?q=" + "2019年度预算")
    assert found == ["2019年度预算公开说明"] and "只列出" not in page  # not 人事处's
    assert titles(f"/items?q=%23{oldest}")[0] == ["2019年度预算公开说明"]
    assert titles("/items?q=100%25_")[0] == ["完成率100%_统计"]
    assert titles("/items?q=%25")[0] == ["完成率100%_统计"]  # a literal %, not "anything"
    assert titles("/items?q=2019&status=submitted")[0] == []
    assert odd and other
