"""The catalogue in Debian's Chromium: the editor fills the 信息公开目录 fieldset of the compose form
and the item page shows the table; on the static website, a 政策解读's page links to the rule it
explains and the 现行有效规章制度库 lists the rule, served over HTTP under the site's CSP."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from publisher import accounts
from publisher.pipeline import content, workflow
from publisher.pipeline.worker import Dispatcher
from tests.web.conftest import PASSWORD
from tests.web.static_site import console_errors, served
from tests.web.test_browser import SHOTS, _log_in, browser, server  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)]


def test_compose_with_the_catalogue_fields_then_see_the_table(
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
    page.fill('input[name="title"]', "关于印发《学生管理规定》的通知")
    page.fill('textarea[name="body_markdown"]', "全文如下。\n")
    page.select_option('select[name="category"]', "规章制度")
    page.check('input[name="channels"][value="mem"]')
    page.fill('input[name="doc_number"]', "齐高师专发【2022】12号")
    page.fill('input[name="written_on"]', "2022-03-01")
    page.select_option('select[name="topic"]', "学生管理")
    page.select_option('select[name="validity"]', "现行有效")
    page.screenshot(path=str(SHOTS / "40-compose-catalogue.png"), full_page=True)
    page.click('button[name="action"][value="draft"]')
    page.wait_for_url("**/items/*")
    table = page.inner_text("table.catalogue")
    for shown in ("齐高师专发〔2022〕12号", "2022-03-01", "学生管理", "主动公开", "现行有效", "排期发布时生成"):
        assert shown in table, table
    page.screenshot(path=str(SHOTS / "41-item-catalogue.png"), full_page=True)
    assert errors == []


def test_the_website_links_a_reading_to_its_rule_and_lists_rules_in_force(
    make_app: Any,
    tmp_path: Path,
    browser: Any,  # noqa: F811
) -> None:
    app = make_app(channels={"website": {"type": "website", "folder": "site", "title": "信息公开网"}})

    def publish(title: str, **fields: Any) -> int:
        with app.session() as s:
            ed = workflow.get_user(s, "ed")
            draft = content.ItemDraft(
                title=title,
                body_markdown="全文如下。",
                fields={"category": "规章制度", "channels": ["website"], **fields},
            )
            item = workflow.create_item(app.ctx, s, author=ed, draft=draft).id
            workflow.submit(app.ctx, s, item_id=item, actor=ed)
            workflow.review(app.ctx, s, item_id=item, actor=workflow.get_user(s, "head"), approve=True)
            workflow.review(app.ctx, s, item_id=item, actor=workflow.get_user(s, "sec"), approve=True)
            workflow.schedule(app.ctx, s, item_id=item, at=datetime.now(UTC))
        Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True)
        return item  # type: ignore[return-value]

    rule = publish("学生管理规定", validity="现行有效", doc_number="齐高师专发〔2022〕12号")
    reading = publish("《学生管理规定》政策解读", interprets=rule)
    with served(tmp_path / "site") as base:
        page = browser.new_page()
        errors = console_errors(page)
        page.goto(f"{base}items/{reading}.html")
        page.click("section.related a")
        page.wait_for_url(f"**/items/{rule}.html")
        table = page.inner_text("table.catalogue")
        assert "齐高师专发〔2022〕12号" in table and "现行有效" in table and "/20" in table  # the 索引号
        page.screenshot(path=str(SHOTS / "42-site-rule.png"), full_page=True)
        page.click("text=现行有效规章制度库")
        page.wait_for_url("**/rules.html")
        assert page.locator(f'a[href="items/{rule}.html"]').count() == 1
        assert page.locator(f'a[href="items/{reading}.html"]').count() == 0
        assert errors == []
