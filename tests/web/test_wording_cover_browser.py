"""In Chromium: an editor picks each channel's cover in its fold of the compose form — uploads one
there, or picks one of the item's images — and the live preview beside it shows the picture on that
channel alone, asks for its alt text until it is written, and the save keeps both. At 1366 and 390 px
the form with its pickers open is no wider than the screen and axe finds nothing serious."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from publisher import accounts
from publisher.pipeline import workflow
from tests.web import axe
from tests.web.conftest import PASSWORD
from tests.web.test_browser import SHOTS, _log_in, browser, server  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)]


@pytest.fixture
def app(make_app: Any) -> Any:
    return make_app(channels={"mem": {"type": "memory"}, "mem2": {"type": "memory"}})


def _png(path: Path, colour: tuple[int, int, int]) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (160, 100), colour).save(buf, "PNG")
    path.write_bytes(buf.getvalue())
    return hashlib.sha256(buf.getvalue()).hexdigest()


def _overflow(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def test_picking_and_uploading_a_channels_cover_beside_its_preview(
    app: Any,
    server: str,  # noqa: F811
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    with app.session() as s:
        accounts.set_password(s, name="ed", password=PASSWORD, actor="test")
    gate, hall = _png(tmp_path / "校门.png", (30, 90, 160)), _png(tmp_path / "礼堂.png", (160, 40, 40))
    errors: list[str] = []
    page = browser.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_viewport_size({"width": 1366, "height": 900})
    _log_in(page, server, "ed")
    page.goto(f"{server}/items/new")
    page.fill('input[name="title"]', "校园开放日通知")
    page.fill('textarea[name="body_markdown"]', "开放日安排如下。\n")
    page.check('input[name="channels"][value="mem"]')
    page.check('input[name="channels"][value="mem2"]')
    mem, mem2 = page.locator('article[data-channel="mem"]'), page.locator('article[data-channel="mem2"]')
    mem.wait_for()
    # an image put into the body is offered as a cover in every channel's fold
    page.set_input_files("#image", str(tmp_path / "校门.png"))
    page.locator("#upload-status", has_text="校门.png").wait_for()
    for name in ("mem", "mem2"):
        page.locator(f'details[data-wording="{name}"] summary').click()
        assert page.locator(f'input[name="wording.{name}.cover"][value="asset://{gate}"]').count() == 1
    # mem: a cover uploaded in its own fold is picked at once and shown in mem's preview alone
    page.set_input_files('input[data-cover-for="mem"]', str(tmp_path / "礼堂.png"))
    page.locator('[data-cover-status="mem"]', has_text="礼堂.png").wait_for()
    assert page.is_checked(f'input[name="wording.mem.cover"][value="asset://{hall}"]')
    assert page.is_checked('input[name="wording.mem2.cover"][value=""]')  # the other channel: none of its own
    mem.locator(f'.pv-cover img[src="/media/{hall}"]').wait_for()
    assert mem2.locator(".pv-cover").count() == 0
    mem.locator(".problems", has_text="mem.cover_alt").wait_for()  # the submit would refuse it: said now
    page.fill('input[name="wording.mem.cover_alt"]', "红色幕布前的礼堂讲台")
    mem.locator('.pv-cover img[alt="红色幕布前的礼堂讲台"]').wait_for()
    assert mem.locator(".problems").count() == 0
    # mem2: one of the item's images, picked with the mouse on its picture
    page.click(f'details[data-wording="mem2"] label.cover-choice:has(input[value="asset://{gate}"]) img')
    mem2.locator(f'.pv-cover img[src="/media/{gate}"]').wait_for()
    page.fill('input[name="wording.mem2.cover_alt"]', "蓝色的校门")
    mem2.locator('.pv-cover img[alt="蓝色的校门"]').wait_for()
    page.screenshot(path=str(SHOTS / "wording-cover-1366.png"), full_page=True)
    assert _overflow(page) == 0
    assert not (found := axe.blocking(page)), axe.describe(found)
    page.click('button[value="draft"]')
    page.wait_for_url("**/items/*")
    item_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    with app.session() as s:
        item = workflow.get_item(s, item_id)
        assert item.overrides == {
            "mem": {"cover": hall, "cover_alt": "红色幕布前的礼堂讲台"},
            "mem2": {"cover": gate, "cover_alt": "蓝色的校门"},
        }
        assert workflow.build_post(app.ctx, s, item, "mem").cover.sha256 == hall

    # the edit page offers the item's own pictures, each channel's pick checked; on a phone too
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{server}/items/{item_id}/edit")
    for name, sha in (("mem", hall), ("mem2", gate)):
        assert page.is_checked(f'input[name="wording.{name}.cover"][value="asset://{sha}"]')
        assert page.locator(f'details[data-wording="{name}"] label.cover-choice img').count() == 2
    mem.locator(f'.pv-cover img[src="/media/{hall}"]').wait_for()
    page.screenshot(path=str(SHOTS / "wording-cover-390.png"), full_page=True)
    assert _overflow(page) == 0
    small = page.evaluate(
        """() => [...document.querySelectorAll('details[open] label.cover-choice, details[open] input[type=file]')]
            .map(e => e.getBoundingClientRect().height).filter(h => h < 44)"""
    )
    assert small == []
    assert not (found := axe.blocking(page)), axe.describe(found)
    # a choice made by keyboard: the arrow keys move within the channel's own choices
    page.focus(f'input[name="wording.mem.cover"][value="asset://{hall}"]')
    page.keyboard.press("ArrowLeft")
    assert page.is_checked(f'input[name="wording.mem.cover"][value="asset://{gate}"]')
    mem.locator(f'.pv-cover img[src="/media/{gate}"]').wait_for()
    assert errors == []
