"""The whole journey in Debian's Chromium, against a real uvicorn server on a free port.

Editor composes with an image and submits; the department head approves; the confidentiality
reviewer approves; the item shows on the calendar; the dispatcher publishes it; the dashboard counts
it. Screenshots of each page go to /tmp/web-shots/. Skipped, with the reason, where Chromium or the
playwright package is missing.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from publisher import accounts
from publisher.pipeline.worker import Dispatcher
from publisher.testing import MemoryChannel
from tests.web.conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path("/tmp/web-shots")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)]


@pytest.fixture
def server(app: Any) -> Iterator[str]:
    import uvicorn

    from publisher.web import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(app), log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert srv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium and chromium-driver packages")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.skip(f"the playwright package is not installed ({exc})")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            args=ARGS,
            headless=True,
            viewport={"width": 1360, "height": 900},
            locale="zh-CN",
        )
        ctx.set_default_timeout(15_000)
        yield ctx
        ctx.close()


def _png() -> bytes:
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (320, 120), (31, 95, 168))
    ImageDraw.Draw(im).rectangle((20, 20, 300, 100), outline=(255, 255, 255), width=6)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def _log_in(page: Any, base: str, name: str) -> None:
    page.goto(f"{base}/login")
    page.fill('input[name="username"]', name)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_load_state()
    assert "/login" not in page.url, f"{name} could not log in"


def _log_out(page: Any) -> None:
    page.click("header form button")
    page.wait_for_url("**/login")


def test_editor_to_dashboard_journey(app: Any, server: str, browser: Any, tmp_path: Path) -> None:
    with app.session() as s:
        for name in ("ed", "head", "sec"):
            accounts.set_password(s, name=name, password=PASSWORD, actor="test")
    errors: list[str] = []
    page = browser.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    # 1. the editor composes with an image and submits
    page.goto(f"{server}/login")
    page.screenshot(path=str(SHOTS / "01-login.png"))
    _log_in(page, server, "ed")
    page.goto(f"{server}/items/new")
    page.fill('input[name="title"]', "关于2026年寒假放假安排的通知")
    page.fill(
        'textarea[name="body_markdown"]',
        "根据学校校历，现将寒假放假安排通知如下。\n\n- 学生放假：1月12日\n- 教职工放假：1月19日\n",
    )
    img = tmp_path / "校徽.png"
    img.write_bytes(_png())
    page.set_input_files("#image", str(img))
    page.wait_for_selector("#upload-status[data-sha]")
    page.fill('input[name="checklist_item"]', "3")
    page.check('input[name="channels"][value="mem"]')
    page.check('input[name="when"][value="slot"]')
    page.wait_for_selector('#preview article[data-channel="mem"] img')
    preview = page.inner_text("#preview")
    assert "根据学校校历" in preview and "符合渠道要求" in preview
    page.screenshot(path=str(SHOTS / "02-compose.png"), full_page=True)
    page.click('button[name="action"][value="submit"]')
    page.wait_for_url("**/items/*")
    assert "待一审" in page.inner_text("main")
    item_url = page.url
    page.screenshot(path=str(SHOTS / "03-item-submitted.png"), full_page=True)
    _log_out(page)

    # 2. the department head mistypes the password: the form comes back with the name, so only the
    #    password is typed again; then approves (first review)
    page.goto(f"{server}/login")
    page.fill('input[name="username"]', "head")
    page.fill('input[name="password"]', "not the password")
    seen = len(errors)
    page.click('button[type="submit"]')
    page.wait_for_load_state()
    del errors[seen:]  # Chromium logs the refused log-in's 401 as a console error
    assert "用户名或密码错误" in page.inner_text("main")
    assert page.input_value('input[name="username"]') == "head" and page.input_value('input[name="password"]') == ""
    assert page.evaluate("document.activeElement.name") == "password"
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_load_state()
    assert page.url.endswith("/review")
    page.screenshot(path=str(SHOTS / "04-review-queue.png"))
    page.click("text=关于2026年寒假放假安排的通知")
    page.click('button[name="decision"][value="approve"]')
    page.wait_for_load_state()
    assert "待保密审查" in page.inner_text("main")
    _log_out(page)

    # 3. the confidentiality reviewer approves (second review): it is queued for the next slot
    _log_in(page, server, "sec")
    page.goto(item_url)
    page.screenshot(path=str(SHOTS / "05-item-second-review.png"), full_page=True)
    page.click('button[name="decision"][value="approve"]')
    page.wait_for_load_state()
    assert "已排期" in page.inner_text("main")

    # 4. on the calendar
    page.goto(f"{server}/calendar")
    assert "关于2026年寒假放假安排的通知" in page.inner_text("table.cal")
    page.screenshot(path=str(SHOTS / "06-calendar-week.png"), full_page=True)
    page.goto(f"{server}/calendar?view=month")
    page.screenshot(path=str(SHOTS / "07-calendar-month.png"), full_page=True)

    # 5. published by the dispatcher, run in-process
    summary = Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True)
    assert summary.outcomes["done"] == 1
    assert [t for _, _, t in MemoryChannel.ledger["mem"]] == ["关于2026年寒假放假安排的通知"]
    page.goto(item_url)
    main = page.inner_text("main")
    assert "已发布" in main and "memory://mem/" in main
    page.screenshot(path=str(SHOTS / "08-item-published.png"), full_page=True)

    # 6. counted on the dashboard
    page.goto(f"{server}/dashboard?period=week")
    tile = page.inner_text(".tiles")
    assert "1" in tile and "已发布" in tile
    assert page.locator("svg.chart").count() == 1
    page.screenshot(path=str(SHOTS / "09-dashboard.png"), full_page=True)
    page.goto(f"{server}/dashboard?period=week&lang=en")
    assert "Published" in page.inner_text("main")
    page.screenshot(path=str(SHOTS / "10-dashboard-en.png"), full_page=True)
    assert errors == [], errors


def test_hostile_item_never_runs_in_the_browser(app: Any, server: str, browser: Any) -> None:
    with app.session() as s:
        accounts.set_password(s, name="ed", password=PASSWORD, actor="test")
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    _log_in(page, server, "ed")
    page.goto(f"{server}/items/new")
    page.fill('input[name="title"]', "<img src=x onerror=alert('title')>")
    page.fill(
        'textarea[name="body_markdown"]',
        "<script>alert(1)</script>\n\n[x](javascript:alert(2))\n\n<img src=x onerror=alert(3)>\n\n"
        "![s](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoNCk+)",
    )
    page.check('input[name="channels"][value="mem"]')
    page.wait_for_timeout(800)  # the live preview renders
    page.click('button[name="action"][value="draft"]')
    page.wait_for_url("**/items/*")
    page.screenshot(path=str(SHOTS / "11-hostile-item.png"), full_page=True)
    assert dialogs == []


def test_drag_an_event_to_another_day_reschedules_it(app: Any, server: str, browser: Any) -> None:
    from datetime import UTC, datetime

    from sqlmodel import select

    from publisher.models import Delivery
    from tests.web.conftest import make_item

    with app.session() as s:
        accounts.set_password(s, name="sec", password=PASSWORD, actor="test")
    item_id = make_item(app, stage="scheduled", publish_at=datetime(2099, 3, 4, 1, 30, tzinfo=UTC))
    page = browser.new_page()
    _log_in(page, server, "sec")
    page.goto(f"{server}/calendar?view=week&day=2099-03-04")
    with page.expect_navigation():
        page.drag_and_drop(f'td[data-day="2099-03-04"] .ev[data-item="{item_id}"]', 'td[data-day="2099-03-06"]')
    assert page.locator(f'td[data-day="2099-03-06"] .ev[data-item="{item_id}"]').count() == 1
    page.screenshot(path=str(SHOTS / "12-calendar-dragged.png"), full_page=True)
    with app.session() as s:
        due = s.exec(select(Delivery.due_at).where(Delivery.item_id == item_id)).one()
    assert due == datetime(2099, 3, 6, 1, 30, tzinfo=UTC)  # same time of day, two days later
