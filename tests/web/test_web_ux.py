"""What the web pages say and show: the 403 page names who may, the compose form speaks of its own
fields, the item page has the audit trail; in Chromium, the calendar is a list on a phone and
Markdown tables have borders."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import PASSWORD, make_item
from tests.web.test_browser import SHOTS, _log_in, browser, server  # noqa: F401  (fixtures)


def test_the_403_page_says_in_chinese_who_may_with_correct_english(app, client, login):
    login(client, "viewer")
    r = client.get("/items")
    assert r.status_code == 403
    assert "此页面仅供编辑、部门负责人、保密审查员和办公室管理员使用；您的角色是查看者" in r.text
    assert (
        "this page is for editors, department heads, confidentiality reviewers and office admins; "
        "you are a viewer" in r.text
    )
    client.cookies.clear()
    login(client, "ed")
    en = client.get("/admin/users?lang=en")
    assert en.status_code == 403 and "this page is for office admins; you are an editor" in en.text
    assert "a editor" not in en.text and "此页面" not in en.text


def test_the_compose_form_names_its_fields_not_front_matter(app, client, login):
    csrf = login(client, "ed")
    form = {
        "csrf_token": csrf,
        "title": "没有类别",
        "body_markdown": "正文",
        "category": "",
        "department": "校长办公室",
        "channels": "mem",
        "when": "none",
        "action": "draft",
    }
    for lang, said in (("zh", "请选择类别"), ("en", "choose one in the form's Category field")):
        r = client.post(f"/items/new?lang={lang}", data=form)
        assert r.status_code == 422
        assert said in html.unescape(r.text) and "front matter" not in r.text, lang
    r = client.post("/items/new?lang=en", data={**form, "category": "公告公示", "channels": []})
    assert r.status_code == 422
    assert "Target channels" in r.text and "front matter" not in r.text


def test_the_item_page_shows_the_audit_trail_to_those_who_may_see_the_item(app, client, login):
    item_id = make_item(app, stage="dept_approved")
    login(client, "sec")
    page = client.get(f"/items/{item_id}").text
    assert "操作记录" in page
    trail = page[page.index("操作记录") :]
    for said in ("create", "submit", "approve level 1", "待一审", "待保密审查", "head"):
        assert said in trail, said
    client.cookies.clear()
    login(client, "ed2")
    assert client.get(f"/items/{item_id}").status_code == 404


@pytest.mark.browser
@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_phone_calendar_is_a_list_and_tables_have_borders(app: Any, server: str, browser: Any) -> None:  # noqa: F811
    from publisher import accounts

    with app.session() as s:
        accounts.set_password(s, name="ed", password=PASSWORD, actor="test")
    body = "| 岗位 | 人数 |\n|---|---|\n| 专任教师 | 12 |\n| 辅导员 | 3 |\n"
    item_id = make_item(app, stage="scheduled", body=body)
    page = browser.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    _log_in(page, server, "ed")
    page.goto(f"{server}/calendar")
    page.screenshot(path=str(SHOTS / "12-calendar-phone.png"), full_page=True)
    cells = page.eval_on_selector_all(
        "table.cal td[data-day]",
        "tds => tds.filter(td => td.offsetParent !== null).map(td => td.getBoundingClientRect().width)",
    )
    assert cells, "no day is shown on a phone"
    assert min(cells) > 300, f"days are squeezed into columns on a 390 px screen: {cells}"
    assert page.is_visible(f'table.cal a[href="/items/{item_id}"]')
    page.goto(f"{server}/items/{item_id}")
    border = page.eval_on_selector(".pv-page td", "td => getComputedStyle(td).borderTopWidth")
    assert border not in ("0px", ""), border
    page.screenshot(path=str(SHOTS / "13-item-phone.png"), full_page=True)
    page.close()


def test_shots_folder_is_the_browser_tests() -> None:
    assert Path(SHOTS).name == "web-shots"
