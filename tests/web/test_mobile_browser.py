"""The workspace on a phone (390 px) and a laptop (1366 px), in Debian's Chromium: no page is wider than
the screen; the calendar is a list of days on the phone and a seven-column grid on the laptop; a list of
records (the item list, the review queue) is one block per record on the phone; and there every control
(button, field, the header's and the filters' links) is a tap target at least 44 px high (WCAG 2.5.5).
Screenshots of each page at each width go under the test's tmp_path. Then the notification page
(通知设置) walked with the mouse, at phone width."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from publisher import accounts
from publisher.pipeline.workflow import outbox
from tests.web import test_browser as journey
from tests.web.conftest import PASSWORD, make_item

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)]
server = journey.server
browser = journey.browser

WIDTHS = {"phone": (390, 844), "laptop": (1366, 900)}
#: what a thumb must hit: controls, and the links that act as controls (links inside text are exempt)
TARGETS = (
    "main button, main .button, main select, main textarea, "
    "main input:not([type=hidden]):not([type=checkbox]):not([type=radio]), main label.check, "
    "header.top nav a, header.top .who a, header.top .who button, main .filters a"
)
TRANSPORTS = {"email": {"host": "127.0.0.1", "port": 2525, "security": "none", "sender": "xxgk@example.edu.cn"}}


@pytest.fixture
def app(make_app: Any) -> Any:
    return make_app(notify={"transports": TRANSPORTS})


def _overflow(page: Any) -> int:
    """How many CSS px the page is wider than the screen (0: it scrolls only down)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def _small_targets(page: Any) -> list[str]:
    return page.evaluate(
        """sel => [...document.querySelectorAll(sel)]
            .filter(e => e.offsetParent !== null && !e.closest('details:not([open])'))
            .map(e => [e, e.getBoundingClientRect()])
            .filter(([e, r]) => r.height < 44)
            .map(([e, r]) => `${e.tagName.toLowerCase()}${e.name ? '[' + e.name + ']' : ''} `
                 + `"${(e.innerText || e.value || '').trim().slice(0, 20)}" ${Math.round(r.height)}px`)""",
        TARGETS,
    )


def _calendar_layout(page: Any) -> dict[str, Any]:
    return page.evaluate(
        """() => {
            const tds = [...document.querySelectorAll('table.cal td[data-day]')].filter(t => t.offsetParent !== null);
            const row = tds.length ? tds[0].getBoundingClientRect().top : 0;
            return {
                display: tds.length ? getComputedStyle(tds[0]).display : '',
                head: document.querySelector('table.cal thead').offsetParent !== null,
                first_row: tds.filter(t => Math.abs(t.getBoundingClientRect().top - row) < 2).length,
                narrowest: Math.min(...tds.map(t => t.getBoundingClientRect().width)),
            };
        }"""
    )


def test_the_workspace_fits_a_phone_and_a_laptop(app: Any, server: str, browser: Any, tmp_path: Path) -> None:
    with app.session() as s:
        for name in ("ed", "head", "admin"):
            accounts.set_password(s, name=name, password=PASSWORD, actor="test")
    body = "| 岗位 | 人数 | 说明 |\n|---|---|---|\n| 专任教师 | 12 | " + "很长的说明文字" * 20 + " |\n"
    long_title = "关于" + "二〇二六年度学校各学院专业技术职务评审结果" * 4 + "的公示"
    item = make_item(
        app, stage="scheduled", title=long_title, body=body, publish_at=datetime.now(UTC) + timedelta(hours=2)
    )
    make_item(app, stage="submitted", title="待审核：" + long_title)
    pages = {
        "ed": [
            ("calendar-week", "/calendar"),
            ("calendar-month", "/calendar?view=month"),
            ("items", "/items"),
            ("item", f"/items/{item}"),
            ("compose", "/items/new"),
            ("dashboard", "/dashboard"),
            ("tokens", "/tokens"),
            ("notify", "/notify"),
            ("coverage", "/coverage"),
            ("report", "/report"),
        ],
        "head": [("review", "/review"), ("dashboard-en", "/dashboard?lang=en")],
        "admin": [
            ("admin-users", "/admin/users?lang=zh"),
            ("admin-channels", "/admin/channels"),
            ("notify-of-ed", "/notify?user=ed"),
            ("requests", "/registers/requests"),
            ("complaints", "/registers/complaints"),
            ("import", "/import"),
            ("audit", "/audit"),
            ("report-template", "/report/template"),
        ],
    }
    wide: dict[str, int] = {}
    small: dict[str, list[str]] = {}
    page = browser.new_page()
    for who, paths in pages.items():
        page.context.clear_cookies()
        page.set_viewport_size({"width": 1366, "height": 900})
        journey._log_in(page, server, who)
        for width_name, (width, height) in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": height})
            for name, path in paths:
                page.goto(server + path)
                shot = tmp_path / f"{name}-{width}.png"
                page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 1000
                if (over := _overflow(page)) > 0:
                    wide[f"{name}@{width}"] = over
                if width_name == "phone" and (tiny := _small_targets(page)):
                    small[name] = tiny
                if name in ("items", "review"):  # a list of records: one block per row on the phone
                    cells = page.eval_on_selector_all(
                        "table.stack td", "tds => tds.map(td => td.getBoundingClientRect().width)"
                    )
                    head = page.is_visible("table.stack thead")
                    if width_name == "phone":
                        assert cells and min(cells) > 300 and not head, (name, cells)
                    else:
                        assert head and max(cells) < 1000, (name, cells)
                if name.startswith("calendar"):
                    layout = _calendar_layout(page)
                    if width_name == "phone":  # a list of days, each the screen's width
                        assert layout["display"] == "block" and not layout["head"], (name, layout)
                        assert layout["first_row"] == 1 and layout["narrowest"] > 300, (name, layout)
                    else:  # the grid: seven days a row under the weekdays' heads
                        assert layout["display"] == "table-cell" and layout["head"], (name, layout)
                        assert layout["first_row"] == 7 and layout["narrowest"] > 120, (name, layout)
    assert not wide, f"pages wider than the screen (by px): {wide}; screenshots in {tmp_path}"
    assert not small, f"tap targets under 44 px on a phone: {small}"
    page.close()


def test_the_notification_page_walked_on_a_phone(app: Any, server: str, browser: Any, tmp_path: Path) -> None:
    with app.session() as s:
        accounts.set_password(s, name="ed", password=PASSWORD, actor="test")
    page = browser.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    journey._log_in(page, server, "ed")
    page.click('header.top nav a[href="/notify"]')
    page.wait_for_url(f"{server}/notify")
    assert "尚未设置" in page.inner_text("main")
    page.check('input[name="transport"][value="email"]')
    page.fill('input[name="address"]', "liming@example.edu.cn")
    page.check('input[name="mode"][value="digest"]')
    page.fill('input[name="quiet_start"]', "22:00")
    page.click("#notify-form button.primary")  # the end of the quiet hours forgotten: refused, as typed
    assert "开始和结束都要填" in page.inner_text("#notify-error")
    assert page.input_value('input[name="address"]') == "liming@example.edu.cn"
    with app.session() as s:
        assert outbox.pref_of(s, user="ed") is None
    page.screenshot(path=str(tmp_path / "notify-refused.png"), full_page=True)
    page.fill('input[name="quiet_end"]', "07:30")
    page.click("#notify-form button.primary")
    page.wait_for_url(f"{server}/notify?saved=1")
    assert page.inner_text("#notify-saved") == "已保存。"
    with app.session() as s:
        p = outbox.pref_of(s, user="ed")
        assert p is not None
        assert (p.transport, p.address, p.mode, p.quiet_start, p.quiet_end) == (
            "email",
            "liming@example.edu.cn",
            "digest",
            "22:00",
            "07:30",
        )
    page.reload()
    assert page.is_checked('input[name="mode"][value="digest"]')
    assert page.input_value('input[name="quiet_end"]') == "07:30"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(tmp_path / "notify-saved.png"), full_page=True)
    page.close()
