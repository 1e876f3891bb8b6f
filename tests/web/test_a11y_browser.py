"""Accessibility (无障碍) and 适老化 in Debian's Chromium, against a real uvicorn server (issue 14).

axe-core (tests/web/axe.py) runs on every page of the workspace and on the generated website; no
serious or critical violation is allowed. The large-text mode (大字模式) enlarges the computed font size
and survives a reload; the keyboard alone reaches and presses the review page's approve button.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import pytest

from channels.website import WebsiteChannel, WebsiteConfig, category_slug
from publisher import accounts
from publisher.channel import Asset, Office
from publisher.models import ItemStatus
from publisher.pipeline import workflow
from publisher.testing import make_ctx, make_env, make_post
from tests.privacy.makers import make_mobile
from tests.web import axe
from tests.web import test_browser as journey
from tests.web.conftest import PASSWORD, make_item

pytestmark = pytest.mark.browser
on_sqlite = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)

server = journey.server
browser = journey.browser
SHOTS = journey.SHOTS
CATEGORY = "规章制度"


OFFICE = Office(
    organisation="示例大学",
    address="某省某市大学路1号行政楼203室",
    phone="0452-0000000",
    email="xxgk@example.edu.cn",
    hours="工作日 8:00-11:30，13:30-17:00",
    apply_url="https://xxgk.example.edu.cn/app/apply",
    regulation="《高等学校信息公开办法》",
)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    """A site written by the website channel (an item with a picture and an attachment), over HTTP."""
    folder = tmp_path / "site"
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(folder)))
    Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/"
    ch = WebsiteChannel(
        "website",
        WebsiteConfig(title="示例大学信息公开网", folder=str(folder), base_url=base),
        make_env(tmp_path, office=OFFICE),
    )
    png = tmp_path / "gate.png"
    png.write_bytes(journey._png())
    pdf = tmp_path / "rules.pdf"
    pdf.write_bytes(b"%PDF-1.4 rules\n" * 50)
    img = Asset(
        sha256=hashlib.sha256(png.read_bytes()).hexdigest(),
        path=png,
        filename="gate.png",
        content_type="image/png",
        role="image",
    )
    att = Asset(
        sha256=hashlib.sha256(pdf.read_bytes()).hexdigest(),
        path=pdf,
        filename="学生管理规定.pdf",
        content_type="application/pdf",
        role="attachment",
    )
    body = f'<p>经校长办公会审议通过，现予发布。</p><p><img src="{img.ref}" alt="校门口合影"></p>'
    ch.publish(
        make_post(
            1,
            title="学生管理规定",
            category=CATEGORY,
            checklist_item=2,
            checklist_name="学校章程及制定的各项规章制度",
            body_html=body,
            assets=(img, att),
        ),
        make_ctx(1),
    )
    ch.publish(make_post(2, title="关于寒假放假安排的通知"), make_ctx(2))
    ch.publish(make_post(3, title="示例大学2025-2026学年信息公开工作年度报告", category="年度报告"), make_ctx(3))
    try:
        yield base
    finally:
        httpd.shutdown()
        httpd.server_close()


class Axe:
    """Runs axe on each page visited and gathers what it finds, so one run reports every page."""

    def __init__(self) -> None:
        self.found: list[str] = []
        self.pages = 0

    def __call__(self, page: Any, where: str) -> None:
        self.pages += 1
        if found := axe.blocking(page):
            self.found.append(f"{where}:\n{axe.describe(found)}")

    def check(self, pages: int) -> None:
        assert self.pages == pages
        assert not self.found, "serious or critical axe violations on\n" + "\n".join(self.found)


@on_sqlite
def test_workspace_pages_pass_axe(app: Any, server: str, browser: Any) -> None:
    with app.session() as s:
        for name in ("ed", "head", "sec", "admin"):
            accounts.set_password(s, name=name, password=PASSWORD, actor="test")
    mobile = make_mobile(random.Random(14))
    findings = make_item(app, title="关于国家助学金评审结果的公示", body=f"联系人手机 {mobile}", stage="submitted")
    scheduled = make_item(
        app, title="关于寒假放假安排的通知", stage="scheduled", publish_at=datetime.now(UTC) + timedelta(days=1)
    )
    page = browser.new_page()
    _clean = Axe()

    page.goto(f"{server}/login")
    _clean(page, "login")
    journey._log_in(page, server, "ed")
    for path in (
        "/dashboard",
        "/items",
        f"/items/{findings}",
        f"/items/{scheduled}",
        f"/items/{findings}/edit",
        "/items/new",
        "/calendar",
        "/calendar?view=month",
        "/tokens",
        "/notify",
        "/items/999999",
    ):
        page.goto(server + path)
        if path == f"/items/{findings}":
            assert "隐私/保密检查" in page.inner_text("#privacy")
        if path.endswith(("/new", "/edit")):
            page.wait_for_selector("#preview article")
        _clean(page, path)
    page.goto(f"{server}/items?lang=en")
    _clean(page, "items (English)")
    page.goto(f"{server}/items?lang=zh")
    journey._log_out(page)

    journey._log_in(page, server, "head")
    assert page.url.endswith("/review")
    _clean(page, "review queue")
    page.goto(f"{server}/items/{findings}")
    _clean(page, "item page with the review box")
    journey._log_out(page)

    journey._log_in(page, server, "admin")
    for path in ("/admin/users", "/admin/channels"):
        page.goto(server + path)
        _clean(page, path)
    _clean.check(pages=17)


def test_website_pages_pass_axe(site: str, browser: Any) -> None:
    page = browser.new_page()
    _clean = Axe()
    for path in (
        "index.html",
        f"categories/{category_slug(CATEGORY)}.html",
        "checklist/2.html",
        "guide.html",
        "reports.html",
        "items/1.html",
    ):
        page.goto(site + path)
        _clean(page, path)
    assert page.locator("article.body img[alt='校门口合影']").count() == 1
    assert page.locator(".attachments a[download]").count() == 1
    _clean.check(pages=6)


def test_axe_helper_reports_what_it_should(site: str, browser: Any) -> None:
    """The checks above could pass by running nothing: a picture without alt text must be caught."""
    page = browser.new_page()
    page.goto(site + "items/1.html")
    page.evaluate("document.querySelector('article.body img').removeAttribute('alt')")
    found = {v["id"]: v["impact"] for v in axe.blocking(page)}
    assert found == {"image-alt": "critical"}


def _font_px(page: Any, selector: str) -> float:
    return page.evaluate(f"parseFloat(getComputedStyle(document.querySelector({selector!r})).fontSize)")


def _fits(page: Any) -> bool:
    """Nothing sticks out sideways: the page scrolls only down."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def _large_text_round_trip(page: Any, urls: list[str], where: str) -> None:
    page.goto(urls[0])
    small = {s: _font_px(page, s) for s in ("main", "main h1", "#large-text")}
    assert page.get_attribute("#large-text", "aria-pressed") == "false"
    page.click("#large-text")
    assert page.get_attribute("#large-text", "aria-pressed") == "true"
    large = {s: _font_px(page, s) for s in small}
    assert all(large[s] >= small[s] * 1.2 for s in small), (where, small, large)
    page.reload()
    assert page.evaluate("document.documentElement.classList.contains('large-text')"), f"{where}: not kept"
    assert _font_px(page, "main") == large["main"] and page.get_attribute("#large-text", "aria-pressed") == "true"
    # 适老化 on a phone: 390 px wide, large text, every page still fits the width
    page.set_viewport_size({"width": 390, "height": 844})
    for url in urls:
        page.goto(url)
        assert _font_px(page, "main") == large["main"], url
        assert _fits(page), f"{url} is wider than 390 px in the large-text mode"
        page.screenshot(path=str(SHOTS / f"a11y-large-{where}-{urls.index(url)}.png"), full_page=True)
    page.click("#large-text")
    page.reload()
    assert _font_px(page, "main") == small["main"], f"{where}: switching it off is not kept"
    page.set_viewport_size({"width": 1360, "height": 900})


@on_sqlite
def test_large_text_mode_in_the_workspace(app: Any, server: str, browser: Any) -> None:
    with app.session() as s:
        accounts.set_password(s, name="ed", password=PASSWORD, actor="test")
    item = make_item(app, title="关于国家助学金评审结果的公示", body="| 姓名 | 学院 |\n|---|---|\n| 李明 | 文学院 |\n")
    page = browser.new_page()
    journey._log_in(page, server, "ed")
    urls = [
        f"{server}/items/{item}",
        f"{server}/items",
        f"{server}/items/new",
        f"{server}/dashboard",
        f"{server}/calendar",
    ]
    _large_text_round_trip(page, urls, "workspace")


def test_large_text_mode_on_the_website(site: str, browser: Any) -> None:
    page = browser.new_page()
    refused: list[str] = []
    page.on("console", lambda msg: refused.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.on("response", lambda r: refused.append(r.url) if r.status >= 400 and "favicon" not in r.url else None)
    urls = [site + "items/1.html", site + "index.html", site + f"categories/{category_slug(CATEGORY)}.html"]
    _large_text_round_trip(page, urls, "site")
    assert refused == []  # the page's CSP lets the site's own script run, and every file it asks for is there


def _tab_to(page: Any, selector: str, limit: int = 80) -> int:
    """Press Tab until ``selector`` has the focus; how many presses it took."""
    for n in range(1, limit + 1):
        page.keyboard.press("Tab")
        if page.evaluate(f"document.activeElement.matches({selector!r})"):
            return n
    raise AssertionError(f"{selector} never took the focus in {limit} presses of Tab")


def _outline(page: Any) -> tuple[str, float]:
    return page.evaluate(
        "(s => [s.outlineStyle, parseFloat(s.outlineWidth)])(getComputedStyle(document.activeElement))"
    )


@on_sqlite
def test_keyboard_alone_reviews_an_item(app: Any, server: str, browser: Any) -> None:
    with app.session() as s:
        accounts.set_password(s, name="head", password=PASSWORD, actor="test")
    item = make_item(app, title="关于寒假放假安排的通知", stage="submitted")
    page = browser.new_page()
    page.goto(f"{server}/login")
    page.keyboard.type("head")  # the name field has the focus
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/review")

    # the skip link is the first stop, shows itself, and takes the focus past the header
    assert _tab_to(page, "a.skip", limit=1) == 1
    assert page.evaluate("document.activeElement.getBoundingClientRect().left >= 0")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    _tab_to(page, f'main a[href$="/items/{item}"]')
    style, width = _outline(page)
    assert style != "none" and width >= 2, "the focused link has no visible outline"
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/items/{item}")
    _tab_to(page, 'button[name="decision"][value="approve"]')
    style, width = _outline(page)
    assert style != "none" and width >= 2, "the focused button has no visible outline"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "待保密审查" in page.inner_text("main")
    with app.session() as s:
        assert workflow.get_item(s, item).status == ItemStatus.DEPT_APPROVED
