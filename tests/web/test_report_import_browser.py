"""In Chromium, as the office's admin: the annual report (a figure opened onto its rows, the DOCX
downloaded and opened with python-docx), a CSV import (a preview naming the Excel row of an error,
the fixed file previewed and imported) and the audit export, at 1366 px in Chinese and at 390 px in
English, with no page wider than a phone's screen. Screenshots go under tmp_path."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from publisher import accounts
from publisher.counting import ledger
from publisher.models import AuditLog, Delivery, Item
from tests.web import axe
from tests.web.conftest import PASSWORD
from tests.web.test_browser import _log_in, browser, server  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)]

YESTERDAY = (datetime.now().astimezone() - timedelta(days=1)).date().isoformat()
HEADER = "title,category,department,channel,published_at,url,checklist_item\r\n"
SEED = HEADER + f"学校章程,规章制度,校长办公室,mem,{YESTERDAY} 08:00,https://www.example.edu.cn/zc.html,2\r\n"


def _ledger(title: str, *, bad: bool) -> str:
    second = "2026/01/05" if bad else f"{YESTERDAY} 10:00"  # row 3: a date as Excel writes it, refused
    return (
        HEADER
        + f"{title},公告公示,校长办公室,mem,{YESTERDAY} 09:00,https://www.example.edu.cn/{len(title)}.html,\r\n"
        + f"{title},公告公示,校长办公室,mem2,{second},,\r\n"
    )


def _fits(page: Any, width: int) -> None:
    """No page wider than a phone's screen at 390 px; at 1366 px, no serious or critical axe violation."""
    if width > 390:
        found = axe.blocking(page)
        assert not found, f"{page.url}:\n{axe.describe(found)}"
    else:
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width, f"{page.url} is {scroll} px wide on a {width} px screen"


def test_report_import_and_audit_in_the_browser(app: Any, server: str, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    from docx import Document

    with app.session() as s:
        accounts.set_password(s, name="admin", password=PASSWORD, actor="test")
        ledger.import_csv(app.ctx, s, data=SEED.encode(), source="seed.csv", actor="test")
    shots = tmp_path / "shots"
    shots.mkdir()
    page = browser.new_page()
    _log_in(page, server, "admin")
    for width, lang in ((1366, "zh"), (390, "en")):
        page.set_viewport_size({"width": width, "height": 900})

        def shot(name: str, width: int = width) -> None:
            page.screenshot(path=str(shots / f"{width}-{name}.png"), full_page=True)

        # the report: a figure opens onto the rows it was counted from
        page.goto(f"{server}/report?lang={lang}")
        figure = page.locator('details[data-figure="site_rules"]')
        assert figure.locator(".fig-value").inner_text() == "0"  # "mem" is no site channel in the tests
        figure = page.locator('details[data-figure="channel:mem"]')
        assert not figure.locator("text=学校章程").is_visible()
        figure.locator("summary").click()
        assert figure.locator("td >> text=学校章程").is_visible()
        _fits(page, width)
        shot("report")
        with page.expect_download() as dl:
            page.click("#download-docx")
        path = tmp_path / f"report-{width}.docx"
        dl.value.save_as(str(path))
        doc = Document(str(path))
        assert any("信息公开" in p.text for p in doc.paragraphs) and len(doc.tables) == 1
        assert doc.tables[0].rows[0].cells[0].text == "序号"

        page.click('a[href="/report/template"]')  # the template editor, as the office's admin sees it
        assert page.locator("#template-form textarea").input_value().startswith("{#-")
        _fits(page, width)
        shot("template")

        # the import: the preview names the Excel row of the error; the fixed file is imported
        title = f"寒假放假通知（{width}）"
        page.goto(f"{server}/import")
        _fits(page, width)
        bad, good = tmp_path / f"bad-{width}.csv", tmp_path / f"good-{width}.csv"
        bad.write_text(_ledger(title, bad=True), encoding="utf-8-sig")
        good.write_text(_ledger(title, bad=False), encoding="utf-8-sig")
        page.set_input_files('input[type="file"]', str(bad))
        page.click("#import-form button.primary")
        errors = page.locator("#import-errors")
        assert "row 3: published_at '2026/01/05' is not YYYY-MM-DD" in errors.inner_text()
        if lang == "zh":  # said in Chinese, the English beside it
            assert "第 3 行：发布时间“2026/01/05”格式不对" in errors.inner_text()
        assert page.locator("#import-confirm").count() == 0
        _fits(page, width)
        shot("import-error")
        with app.session() as s:
            assert s.exec(select(Item).where(Item.title == title)).first() is None
        page.click("#import-errors a.button")
        page.set_input_files('input[type="file"]', str(good))
        page.click("#import-form button.primary")
        assert page.locator("#rows-added tbody tr").count() == 2
        _fits(page, width)
        shot("import-preview")
        page.click("#import-confirm button")
        page.wait_for_selector("#import-done")
        _fits(page, width)
        shot("import-done")
        with app.session() as s:
            item = s.exec(select(Item).where(Item.title == title)).one()
            chans = sorted(d.channel for d in s.exec(select(Delivery).where(Delivery.item_id == item.id)))
            assert chans == ["mem", "mem2"]
            assert s.exec(select(AuditLog).where(AuditLog.entity_id == item.id, AuditLog.action == "import")).first()

        # the audit export: the period form, then the download
        page.goto(f"{server}/audit")
        page.fill('input[name="from"]', YESTERDAY)
        page.click("#audit-form button")
        assert page.locator("#audit-rows tbody tr").count() > 0
        _fits(page, width)
        shot("audit")
        with page.expect_download() as dl:
            page.click("#audit-download")
        data = Path(dl.value.path()).read_bytes()
        assert data.startswith("\ufeff".encode())
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
        assert any(r["action"] == "import_csv" and good.name in r["detail"] for r in rows)
        assert any(r["item_id"] == str(item.id) for r in rows)
    # the English walk really was in English
    page.goto(f"{server}/import")
    assert "Import publications (CSV)" in page.content()
    page.close()
    assert len(list(shots.glob("*.png"))) == 12
