"""In Chromium: an editor writes a channel's own title in the compose form and the live per-channel
preview shows it at once on that channel alone, says when it does not fit, and the save keeps it."""

from __future__ import annotations

from typing import Any

import pytest

from publisher import accounts
from publisher.pipeline import workflow
from tests.web.conftest import PASSWORD
from tests.web.test_browser import SHOTS, _log_in, browser, server  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)]


@pytest.fixture
def app(make_app: Any) -> Any:
    return make_app(channels={"mem": {"type": "memory", "title_max": 20}, "mem2": {"type": "memory"}})


def test_a_channels_title_beside_its_live_preview(app: Any, server: str, browser: Any) -> None:  # noqa: F811
    with app.session() as s:
        accounts.set_password(s, name="ed", password=PASSWORD, actor="test")
    errors: list[str] = []
    page = browser.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    _log_in(page, server, "ed")
    page.goto(f"{server}/items/new")
    page.fill('input[name="title"]', "关于2026年寒假放假及2027年春季学期开学时间安排的通知")
    page.fill('textarea[name="body_markdown"]', "各学院、各部门：现将安排通知如下。")
    page.check('input[name="channels"][value="mem"]')
    page.check('input[name="channels"][value="mem2"]')
    mem, mem2 = page.locator('article[data-channel="mem"]'), page.locator('article[data-channel="mem2"]')
    mem.locator(".problems").wait_for()  # the item's own title is too long for mem
    page.locator('details[data-wording="mem"] summary').click()
    page.fill('input[name="wording.mem.title"]', "寒假及开学时间通知")
    mem.locator("h1", has_text="寒假及开学时间通知").wait_for()
    assert mem.locator(".problems").count() == 0 and "符合渠道要求" in mem.inner_text()
    assert "关于2026年寒假放假" in mem2.locator("h1").inner_text()  # the other channel: the item's own
    page.fill('input[name="wording.mem.title"]', "寒" * 21)
    mem.locator(".problems", has_text="21").wait_for()
    page.screenshot(path=str(SHOTS / "wording-preview.png"), full_page=True)
    page.fill('input[name="wording.mem.title"]', "寒假及开学时间通知")
    mem.locator("h1", has_text="寒假及开学时间通知").wait_for()
    page.click('button[value="draft"]')
    page.wait_for_url("**/items/*")
    item_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    with app.session() as s:
        assert workflow.get_item(s, item_id).overrides == {"mem": {"title": "寒假及开学时间通知"}}
    assert "[mem] title: 寒假及开学时间通知" in page.inner_text("section.wording")
    assert errors == []
