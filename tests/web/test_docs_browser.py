"""/api/docs in Chromium with the network cut off from everything but this server: Swagger UI renders
the API from the package's own copy, under the page's CSP, with no console error."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.test_browser import SHOTS, browser, server  # noqa: F401 - the fixtures

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)]


def test_swagger_ui_renders_offline(server: str, browser: Any) -> None:  # noqa: F811
    asked: list[str] = []
    errors: list[str] = []
    page = browser.new_page()

    def only_here(route: Any) -> None:  # as on a machine where no CDN answers
        asked.append(route.request.url)
        if route.request.url.startswith(server):
            route.continue_()
        else:
            route.abort()

    page.route("**/*", only_here)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{server}/api/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=15_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/api/items" in p for p in paths), paths
    page.screenshot(path=str(SHOTS / "12-api-docs.png"), full_page=False)
    assert all(u.startswith(server) for u in asked), [u for u in asked if not u.startswith(server)]
    assert not errors, errors
