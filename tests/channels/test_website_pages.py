"""The website's 信息公开指南 (from the office's settings) and 年度报告 (the published reports) pages,
read from the generated files (docs/channels/website.md, "The guide and the reports"). The axe check
of both is in tests/web/test_a11y_browser.py."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from channels.website import WebsiteChannel, WebsiteConfig
from publisher.channel import Office
from publisher.errors import ConfigError
from publisher.pipeline.registry import office_of
from publisher.settings import load_settings
from publisher.testing import make_ctx, make_env, make_post

BASE = "https://xxgk.example.edu.cn/"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
UNIVERSITY = Office(
    organisation="齐齐哈尔高等师范专科学校",
    name="党政办公室（信息公开办公室）",
    address="黑龙江省齐齐哈尔市建华区信息公开办公室",
    phone="0452-0000000",
    email="xxgk@example.edu.cn",
    hours="工作日 8:00-11:30，13:30-17:00",
    apply_url="https://xxgk.example.edu.cn/app/apply",
    regulation="《高等学校信息公开办法》",
    request_working_days=15,
    extension_working_days=15,
)


def site(tmp_path: Path, office: Office | None = UNIVERSITY, **config) -> WebsiteChannel:
    return WebsiteChannel("website", WebsiteConfig(base_url=BASE, **config), make_env(tmp_path, office=office))


def text(path: Path) -> str:
    """The page's visible text, tags dropped (the guide's sentences span inline tags)."""
    return re.sub(r"<[^>]+>", "", path.read_text("utf-8"))


def report(i: int, year: int, **kw):
    at = T0 + timedelta(days=i)
    return make_post(
        i, title=f"{year}-{year + 1}学年信息公开工作年度报告", category="年度报告", publish_at=at, updated_at=at, **kw
    )


def test_the_guide_says_how_to_apply_and_whom_to_reach(tmp_path):
    ch = site(tmp_path)
    ch.publish(make_post(1), make_ctx(1))
    page = ch.folder / "guide.html"
    html = page.read_text("utf-8")
    words = text(page)
    assert "齐齐哈尔高等师范专科学校信息公开指南" in words
    assert '<a href="https://xxgk.example.edu.cn/app/apply">依申请公开申请表</a>' in html
    assert "自收到申请之日起15个工作日内予以答复" in words
    assert "延长的期限最长不超过15个工作日" in words
    assert "根据《高等学校信息公开办法》" in words
    for line in (
        "受理机构：党政办公室（信息公开办公室）",
        "办公地址：黑龙江省齐齐哈尔市建华区信息公开办公室",
        "联系电话：0452-0000000",
        "办公时间：工作日",
    ):
        assert line in words
    assert 'href="mailto:xxgk@example.edu.cn"' in html
    # every page's navigation links the guide and the reports page
    for path in ("index.html", "items/1.html", "guide.html"):
        nav = (ch.folder / path).read_text("utf-8")
        assert 'guide.html">信息公开指南</a>' in nav and 'reports.html">年度报告</a>' in nav


def test_a_government_office_gets_its_own_rules_and_deadlines(tmp_path):
    office = Office(
        organisation="某市人民政府办公室",
        apply_url="https://gov.example.cn/apply",
        regulation="《中华人民共和国政府信息公开条例》",
        request_working_days=20,
        extension_working_days=20,
    )
    ch = site(tmp_path, office=office)
    ch.publish(make_post(1), make_ctx(1))
    words = text(ch.folder / "guide.html")
    assert "根据《中华人民共和国政府信息公开条例》" in words
    assert "20个工作日内予以答复" in words and "最长不超过20个工作日" in words
    # details the office has not set are left out, not shown empty
    assert "办公地址" not in words and "联系电话" not in words and "书面申请" not in words


def test_the_guide_is_made_from_the_settings(tmp_path):
    (tmp_path / "settings.toml").write_text(
        'organisation = "示例大学"\n'
        "[registers]\nrequest_working_days = 20\nextension_working_days = 20\n"
        '[office]\naddress = "大学路1号"\nphone = "0452-1"\n'
        'public_base_url = "https://xxgk.example.edu.cn/app"\n'
        'regulation = "《中华人民共和国政府信息公开条例》"\n',
        "utf-8",
    )
    office = office_of(load_settings(tmp_path / "settings.toml"))
    assert office == Office(
        organisation="示例大学",
        name="示例大学信息公开办公室",
        address="大学路1号",
        phone="0452-1",
        apply_url="https://xxgk.example.edu.cn/app/apply",
        regulation="《中华人民共和国政府信息公开条例》",
        request_working_days=20,
        extension_working_days=20,
    )
    # no public address set: the form is on the web app where staff reach it
    (tmp_path / "settings.toml").write_text('[notify]\nweb_base_url = "https://app.example.edu.cn"\n', "utf-8")
    assert office_of(load_settings(tmp_path / "settings.toml")).apply_url == "https://app.example.edu.cn/apply"
    (tmp_path / "settings.toml").write_text('[office]\npublic_base_url = "xxgk.example.edu.cn"\n', "utf-8")
    with pytest.raises(ConfigError, match="public_base_url"):
        load_settings(tmp_path / "settings.toml")


def test_the_reports_page_lists_the_published_reports_newest_first(tmp_path):
    ch = site(tmp_path)
    ch.publish(make_post(1, title="关于寒假放假安排的通知"), make_ctx(1))
    assert "暂无公开信息" in text(ch.folder / "reports.html")
    ch.publish(report(2, 2023), make_ctx(2))
    ch.publish(report(3, 2024), make_ctx(3))
    ch.publish(make_post(4, title="另一则通知"), make_ctx(4))
    page = ch.folder / "reports.html"
    assert re.findall(r'href="items/(\d+)\.html"', page.read_text("utf-8")) == ["3", "2"]
    assert "2024-2025学年信息公开工作年度报告" in text(page)
    # a report withdrawn leaves the page; a report moved to another category too
    ch.withdraw(report(3, 2024), make_ctx(3))
    assert re.findall(r'href="items/(\d+)\.html"', page.read_text("utf-8")) == ["2"]
    ch.update(make_post(2, category="其他", version=2), make_ctx(2))
    assert "暂无公开信息" in text(page)


def test_a_new_process_and_a_rebuild_write_both_pages(tmp_path):
    site(tmp_path).publish(report(1, 2024), make_ctx(1))
    (tmp_path / "site" / "guide.html").unlink()
    (tmp_path / "site" / "reports.html").unlink()
    again = site(tmp_path)  # a worker started later: its first change writes them
    again.rebuild()
    assert (again.folder / "guide.html").exists()
    assert 'href="items/1.html"' in (again.folder / "reports.html").read_text("utf-8")


def test_a_custom_report_category(tmp_path):
    ch = site(tmp_path, report_category="工作报告")
    ch.publish(make_post(1, category="工作报告", title="年度工作报告"), make_ctx(1))
    ch.publish(report(2, 2024), make_ctx(2))
    assert re.findall(r'href="items/(\d+)\.html"', (ch.folder / "reports.html").read_text("utf-8")) == ["1"]


def test_the_cover_heads_the_item_page_with_its_alt_text(tmp_path):
    import dataclasses

    from tests.channels.contract_douyin import image_asset

    cover = dataclasses.replace(image_asset(tmp_path, role="cover"), alt="开放日当天的校门口")
    ch = site(tmp_path)
    ch.publish(make_post(1, assets=(cover,)), make_ctx(1))
    html = (ch.folder / "items/1.html").read_text("utf-8")
    found = re.search(r'<figure class="cover"><img src="\.\./(media/[^"]+)" alt="([^"]*)"></figure>', html)
    assert found and found[2] == "开放日当天的校门口"
    assert (ch.folder / found[1]).is_file()


def test_a_channels_own_cover_heads_the_page_with_its_own_alt_text(tmp_path):
    import dataclasses

    from publisher.pipeline.workflow.wording import CHANNEL_COVER, for_channel
    from tests.channels.contract_douyin import image_asset

    own = dataclasses.replace(image_asset(tmp_path, role="cover"), alt="开放日当天的校门口")
    mine = image_asset(tmp_path, role=CHANNEL_COVER, color=(20, 30, 200))
    ch = site(tmp_path)
    ch.publish(
        for_channel(make_post(1, assets=(own, mine)), {"cover": mine.sha256, "cover_alt": "蓝色的校旗"}), make_ctx(1)
    )
    html = (ch.folder / "items/1.html").read_text("utf-8")
    found = re.search(r'<figure class="cover"><img src="\.\./(media/[^"]+)" alt="([^"]*)"></figure>', html)
    assert found and found[2] == "蓝色的校旗"
    from PIL import Image

    with Image.open(ch.folder / found[1]) as shown:  # the channel's own picture (the site writes its own copy)
        assert shown.convert("RGB").getpixel((0, 0)) == (20, 30, 200)
