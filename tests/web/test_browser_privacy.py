"""The privacy check (隐私/保密检查) walked in Debian's Chromium against a real uvicorn server (issue 12).

The author saves an item with a mobile and an ID number in the body and sees the findings, masked;
the department head approves; the 保密审查 reviewer sees the findings, is refused the approval with
the gate's message, clears one with a reason, masks the item (a new version, the diff shown, the
numbers gone), and the new version goes through both reviews again to approval. No page the browser
shows on the way holds either raw number. Screenshots go to /tmp/web-shots/privacy-*.png.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from publisher import accounts
from publisher.models import ItemStatus
from publisher.pipeline import workflow
from tests.privacy.makers import make_id, make_mobile
from tests.web import test_browser as journey
from tests.web.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)]

# the journey's uvicorn server and Chromium, as fixtures of this module
server = journey.server
browser = journey.browser
SHOTS = journey.SHOTS

RNG = random.Random(20261203)
MOBILE = make_mobile(RNG)
ID = make_id(RNG)
TITLE = "关于2026年国家助学金评审结果的公示"


def _no_raw_number(page: Any, where: str) -> None:
    content = page.content()
    assert MOBILE not in content and ID not in content, f"{where} shows a raw number"


def test_findings_clearing_and_masking_in_chromium(app: Any, server: str, browser: Any) -> None:
    with app.session() as s:
        for name in ("ed", "head", "sec", "sec2"):
            accounts.set_password(s, name=name, password=PASSWORD, actor="test")
    errors: list[str] = []
    page = browser.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda d: d.accept())  # the mask button asks to confirm

    # 1. the author saves an item with a mobile and an ID in the body, and sees the findings, masked
    journey._log_in(page, server, "ed")
    page.goto(f"{server}/items/new")
    page.fill('input[name="title"]', TITLE)
    page.fill(
        'textarea[name="body_markdown"]',
        f"经学生申请、学院评审，拟资助名单公示如下。\n\n联系人：学生处张老师，手机 {MOBILE}\n\n"
        f"一等：李明（身份证号 {ID}）\n\n公示期为5个工作日。\n",
    )
    page.check('input[name="channels"][value="mem"]')
    page.click('button[name="action"][value="submit"]')
    page.wait_for_url("**/items/*")
    item_url = page.url
    item_id = int(item_url.rsplit("/", 1)[1])
    block = page.inner_text("#privacy")
    assert "隐私/保密检查" in block and "2 项未处理" in block
    assert MOBILE[:3] + "****" + MOBILE[-4:] in block and ID[:4] + "*" * 10 + ID[-4:] in block
    assert "手机号" in block and "身份证号" in block and "未处理" in block
    _no_raw_number(page, "the author's item page")
    page.screenshot(path=str(SHOTS / "privacy-1-author.png"), full_page=True)
    journey._log_out(page)

    # 2. the department head approves (first review)
    journey._log_in(page, server, "head")
    page.goto(item_url)
    page.click('button[name="decision"][value="approve"]')
    page.wait_for_load_state()
    assert "待保密审查" in page.inner_text("main")
    journey._log_out(page)

    # 3. the 保密审查 reviewer sees the findings and why the approval is refused, and is refused
    journey._log_in(page, server, "sec")
    page.goto(item_url)
    assert "现在不能通过" in page.inner_text(".review-box")
    _no_raw_number(page, "the reviewer's item page")
    page.screenshot(path=str(SHOTS / "privacy-2-review.png"), full_page=True)
    page.click('button[name="decision"][value="approve"]')
    page.wait_for_load_state()
    assert "尚未处理" in page.inner_text("main")
    page.screenshot(path=str(SHOTS / "privacy-3-refused.png"), full_page=True)

    # 4. clears the mobile with a reason; a reason holding the number would be refused on the page
    page.goto(item_url)
    page.fill("#finding-1 textarea", f"联系人手机 {MOBILE}")
    page.click("#finding-1 button")
    page.wait_for_load_state()
    assert "理由中含有身份证号、手机号或银行卡号" in page.inner_text("#privacy")
    _no_raw_number(page, "the refused clearing")
    page.fill("#finding-1 textarea", "学生处联系人的办公手机，本人同意公开")
    page.click("#finding-1 button")
    page.wait_for_url(f"**/items/{item_id}*")
    row = page.inner_text("#finding-1")
    assert "已清除" in row and "本人同意公开" in row
    assert "1 项未处理" in page.inner_text("#privacy")
    page.screenshot(path=str(SHOTS / "privacy-4-cleared.png"), full_page=True)

    # 5. masks: a new version, the diff shown with the number's kind in place of the number
    page.click("#privacy button.primary")
    page.wait_for_load_state()
    block = page.inner_text("#privacy")
    assert "已脱敏：第 1 版 → 第 2 版" in block and "未发现问题" in block
    diff = page.inner_text("#privacy pre.diff")
    assert "[id_card]" in diff and ID[:4] + "*" * 10 + ID[-4:] in diff
    _no_raw_number(page, "the masking result")
    page.screenshot(path=str(SHOTS / "privacy-5-masked.png"), full_page=True)
    assert "待一审" in page.inner_text("main")
    journey._log_out(page)

    # 6. the new version goes through both reviews again; sec masked it, so sec2 gives the second
    journey._log_in(page, server, "head")
    page.goto(item_url)
    _no_raw_number(page, "the head's item page after masking")
    page.click('button[name="decision"][value="approve"]')
    page.wait_for_load_state()
    journey._log_out(page)
    journey._log_in(page, server, "sec2")
    page.goto(item_url)
    assert page.locator(".approve-refused").count() == 0
    page.click('button[name="decision"][value="approve"]')
    page.wait_for_load_state()
    assert "已通过" in page.inner_text("main")
    page.screenshot(path=str(SHOTS / "privacy-6-approved.png"), full_page=True)
    with app.session() as s:
        item = workflow.get_item(s, item_id)
        assert (item.version, item.status) == (2, ItemStatus.APPROVED)
    assert errors == [], errors
