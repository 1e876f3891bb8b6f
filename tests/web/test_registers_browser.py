"""In Debian's Chromium, at 1366 px and at 390 px (a phone): a member of the public reads the 公开指南,
applies through /apply and keeps the receipt number; the office admin finds that request in the
register, records another, extends and closes it, and reads the checklist coverage and sets a rule.

One server and one browser for the module's one walk, done at both widths; each page is screenshot
into the test's tmp_path, and at 390 px no page is wider than the screen.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from publisher import accounts
from publisher.counting import ledger
from publisher.models import DisclosureRequest
from tests.web import axe
from tests.web.conftest import PASSWORD
from tests.web.test_browser import _log_in, _log_out, browser, server  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)]

RECEIPT = re.compile(r"YSQ\d{8}-[2-9A-HJKMNP-Z]{6}")


def _fits(page: Any, width: int, what: str, found: list[str]) -> None:
    """No wider than a phone's screen at 390 px; at 1366 px, no serious or critical axe violation."""
    if width > 390:
        if blocking := axe.blocking(page):
            found.append(f"{what}:\n{axe.describe(blocking)}")
        return
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= width, f"{what} is {wide} px wide on a {width} px screen"


def _shot(page: Any, folder: Path, width: int, name: str) -> None:
    page.screenshot(path=str(folder / f"{width}-{name}.png"), full_page=True)


def test_apply_then_keep_the_register_and_read_coverage(app: Any, server: str, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    month_ago = datetime.now(app.settings.zone) - timedelta(days=30)  # current under the default annual rule
    with app.session() as s:
        accounts.set_password(s, name="admin", password=PASSWORD, actor="test")
        csv = (
            "title,category,department,channel,published_at,url,checklist_item\n"
            f"学校章程,规章制度,校长办公室,mem,{month_ago:%Y-%m-%d} 09:00,http://a.example.cn/1,2\n"
        )
        ledger.import_csv(app.ctx, s, data=csv.encode(), source="t.csv", actor="admin")
    shots = tmp_path / "shots"
    shots.mkdir()
    a11y: list[str] = []
    for width in (1366, 390):
        page = browser.new_page()
        page.set_viewport_size({"width": width, "height": 900 if width > 390 else 844})

        # ---- the public: the guide, the form, the receipt
        page.goto(f"{server}/guide")
        assert "15 个工作日内答复" in page.inner_text("main") and "最多 15 个工作日" in page.inner_text("main")
        _shot(page, shots, width, "guide")
        _fits(page, width, "the guide", a11y)
        page.click("#apply-link")
        page.wait_for_url("**/apply")
        _fits(page, width, "the form", a11y)
        page.fill('input[name="applicant"]', "赵六")
        page.fill('input[name="contact"]', "zhao@example.com")
        page.fill('textarea[name="subject"]', f"2023年本科招生计划分专业人数（{width}）")
        _shot(page, shots, width, "apply")
        page.click("#apply-form button[type=submit]")
        page.wait_for_selector("#receipt-no")
        receipt = page.inner_text("#receipt-no")
        assert RECEIPT.fullmatch(receipt), receipt
        _shot(page, shots, width, "receipt")
        _fits(page, width, "the receipt", a11y)

        # ---- the office: the request is in the register
        _log_in(page, server, "admin")
        page.goto(f"{server}/registers/requests")
        with app.session() as s:
            filed = s.exec(select(DisclosureRequest).where(DisclosureRequest.receipt_no == receipt)).one()
        entry = page.locator(f"#r{filed.id}")
        assert receipt in entry.inner_text() and "zhao@example.com" in entry.inner_text()
        _fits(page, width, "the register", a11y)

        # record one received in 2022: long overdue, shown in red
        page.locator("details#add").evaluate("d => d.open = true")
        page.fill('#add input[name="applicant"]', f"张三{width}")
        page.select_option('#add select[name="via"]', "letter")
        page.fill('#add input[name="received"]', "2022-09-28T16:00")
        page.fill('#add textarea[name="subject"]', "2022年招生计划")
        page.click("#add button.primary")
        page.wait_for_load_state()
        with app.session() as s:
            added = s.exec(select(DisclosureRequest).where(DisclosureRequest.applicant == f"张三{width}")).one()
        assert str(added.due_on) == "2022-10-24"
        entry = page.locator(f"#r{added.id}")
        assert "已超期" in entry.inner_text() and "2022年10月24日" in entry.inner_text()
        red = entry.locator(".due.overdue").evaluate("e => getComputedStyle(e).color")
        assert red == "rgb(176, 58, 46)", red  # --red
        _shot(page, shots, width, "register")
        _fits(page, width, "the register with an overdue request", a11y)

        # extend: the reason is required (the service says so on the page), then given
        entry.locator("details.act:has(form.extend) > summary").click()
        entry.locator("form.extend button").click()
        page.wait_for_load_state()
        assert "请填写延期理由" in page.inner_text("#register-error")
        _fits(page, width, "the register with a refusal", a11y)
        entry = page.locator(f"#r{added.id}")
        entry.locator('form.extend textarea[name="reason"]').fill("需要征求第三方意见")
        entry.locator("form.extend button").click()
        page.wait_for_load_state()
        entry = page.locator(f"#r{added.id}")
        assert "2022年11月14日" in entry.inner_text() and "已延期" in entry.inner_text()

        # close with an outcome
        entry.locator("details.act:has(form.close) > summary").click()
        entry.locator('form.close select[name="outcome"]').select_option("disclosed")
        entry.locator("form.close button").click()
        page.wait_for_load_state()
        page.goto(f"{server}/registers/requests?state=closed")
        assert "予以公开" in page.locator(f"#r{added.id}").inner_text()
        _shot(page, shots, width, "register-closed")
        _fits(page, width, "the closed requests", a11y)

        # ---- coverage: the 50 items; the admin sets a rule
        page.goto(f"{server}/coverage")
        assert page.locator("#coverage tbody tr[data-number]").count() == 50
        assert page.locator("#c2").get_attribute("data-status") == "current"
        assert "学校章程" in page.locator("#c2").inner_text()
        assert page.locator("#c1").get_attribute("data-status") == "never"
        _shot(page, shots, width, "coverage")
        _fits(page, width, "the coverage page", a11y)
        page.locator('#c19 select[name="rule"]').select_option("monthly")
        page.locator("#c19 form.rule button").click()
        page.wait_for_load_state()
        assert page.locator('#c19 select[name="rule"]').input_value() == "monthly"
        if width <= 390:  # 大字模式 (large text) on a phone: still no wider than the screen
            page.click("#large-text")
            page.wait_for_function("document.documentElement.classList.contains('large-text')")
            _fits(page, width, "the coverage page in large text", a11y)
            page.goto(f"{server}/registers/requests?state=all")
            _fits(page, width, "the register in large text", a11y)
            page.click("#large-text")
        page.goto(f"{server}/coverage?lang=en")
        assert "Never published" in page.inner_text("#c1")
        _fits(page, width, "the coverage page in English", a11y)
        page.goto(f"{server}/coverage?lang=zh")
        _log_out(page)
        page.close()
    assert {p.name for p in shots.iterdir()} >= {"1366-coverage.png", "390-coverage.png", "390-receipt.png"}
    assert not a11y, "axe found serious or critical violations:\n" + "\n".join(a11y)
