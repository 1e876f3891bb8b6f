"""The 公示期 in Debian's Chromium: the editor sets it on the compose form, the item page says when it
ends, the calendar marks the end on its day (and it cannot be dragged: an end is not a publish time)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from publisher import accounts
from publisher.pipeline import workflow
from tests.web.conftest import PASSWORD
from tests.web.test_browser import SHOTS, _log_in, browser, server  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)]


def test_compose_a_gongshi_then_see_its_end_on_the_item_page_and_the_calendar(
    app: Any,
    server: str,  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    with app.session() as s:
        accounts.set_password(s, name="ed", password=PASSWORD, actor="test")
    errors: list[str] = []
    page = browser.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    _log_in(page, server, "ed")
    page.goto(f"{server}/items/new")
    page.fill('input[name="title"]', "2026年国家助学金评审结果公示")
    page.fill('textarea[name="body_markdown"]', "经评审，拟资助以下同学，现予公示。\n")
    page.check('input[name="channels"][value="mem"]')
    page.check('input[name="when"][value="at"]')
    page.fill('input[name="publish_at"]', "2099-03-02T09:00")
    page.fill('input[name="display_until"]', "2099-03-10T17:00")
    page.screenshot(path=str(SHOTS / "30-compose-display-period.png"), full_page=True)
    page.click('button[name="action"][value="draft"]')
    page.wait_for_url("**/items/*")
    block = page.inner_text("p.display-period")
    assert "公示期" in block and "2099年3月10日 17:00" in block, block
    item_id = int(page.url.rstrip("/").rsplit("/", 1)[-1])
    with app.session() as s:
        item = workflow.get_item(s, item_id)
        assert item.display_until == datetime(2099, 3, 10, 9, 0, tzinfo=UTC)
    page.goto(f"{server}/calendar?view=week&day=2099-03-10")
    end = page.locator(f'td[data-day="2099-03-10"] .ev[data-item="{item_id}"]')
    assert end.count() == 1 and "公示期截止" in end.inner_text() and "17:00" in end.inner_text()
    assert end.get_attribute("draggable") is None
    page.screenshot(path=str(SHOTS / "31-calendar-display-end.png"), full_page=True)
    assert errors == []
