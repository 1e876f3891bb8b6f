"""The website's paginated listings in Debian's Chromium, served over HTTP under the site's CSP: a
reader walks a category from its landing page to its oldest page by the "更早" links and back by
"较新", meets every live item exactly once, newest first; a page's URL keeps meaning the same items
after later publications (docs/channels/website.md, "Pagination")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from channels.website import WebsiteChannel, WebsiteConfig, category_slug
from publisher.testing import make_ctx, make_env, make_post
from tests.web.static_site import console_errors, served
from tests.web.test_browser import SHOTS, browser  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser]

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
CATEGORY = "招生考试信息"


def _publish(ch: WebsiteChannel, i: int) -> None:
    at = T0 + timedelta(hours=i)
    ch.publish(make_post(i, title=f"招生公告第{i}号", category=CATEGORY, publish_at=at, updated_at=at), make_ctx())


def _items_on(page: Any) -> list[int]:
    hrefs = page.eval_on_selector_all("main a[href*='items/']", "els => els.map(e => e.getAttribute('href'))")
    return [int(h.rsplit("/", 1)[1].removesuffix(".html")) for h in hrefs]


def test_a_reader_pages_through_a_category_and_its_urls_stay_put(tmp_path: Path, browser: Any) -> None:  # noqa: F811
    ch = WebsiteChannel(
        "website",
        WebsiteConfig(base_url="http://site.invalid/", page_size=5, sitemap_urls=10, title="信息公开网"),
        make_env(tmp_path),
    )
    for i in range(1, 24):  # 23 items: pages 1-4 full, page 5 (the landing) holds 3
        _publish(ch, i)
    ch.withdraw(make_post(7, category=CATEGORY), make_ctx())  # page 2 keeps its number, with a gap
    live = set(range(1, 24)) - {7}

    with served(ch.folder) as base:
        page = browser.new_page()
        errors = console_errors(page)
        landing = f"{base}categories/{category_slug(CATEGORY)}.html"
        page.goto(landing)
        seen: list[int] = []
        visited: list[str] = [page.url]
        seen += _items_on(page)
        while page.locator("nav.pager a[rel=next]").count():
            page.click("nav.pager a[rel=next]")
            page.wait_for_load_state()
            visited.append(page.url)
            seen += _items_on(page)
        page.screenshot(path=str(SHOTS / "50-site-oldest-page.png"), full_page=True)
        assert sorted(seen) == sorted(live) and len(seen) == len(set(seen)), "every live item exactly once"
        assert seen == sorted(seen, reverse=True), "newest first, across pages"
        assert visited[-1].endswith(f"categories/{category_slug(CATEGORY)}/page/1.html")
        assert len(visited) == 5  # the landing (page 5's items) and pages 4, 3, 2, 1

        # back to the newest by 较新 from the oldest page
        hops = 0
        while page.locator("nav.pager a[rel=prev]").count():
            page.click("nav.pager a[rel=prev]")
            page.wait_for_load_state()
            hops += 1
        # pages 2, 3, 4 and the newest (page 5, which the landing also shows)
        assert hops == 4 and _items_on(page) == [23, 22, 21]

        # a later publication: page 2's URL still shows the same items; the landing gains the new one
        page.goto(f"{base}categories/{category_slug(CATEGORY)}/page/2.html")
        before = _items_on(page)
        _publish(ch, 24)
        page.reload()
        assert _items_on(page) == before == [10, 9, 8, 6]
        page.goto(landing)
        assert _items_on(page)[0] == 24
        assert errors == []
