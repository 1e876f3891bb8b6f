"""The manual channel: waiting, recording a URL or a reason, the copy kit, URL validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from channels.manual import (
    PRESETS,
    ManualChannel,
    is_overdue,
    recorded_state,
    render_copy_kit,
    validate_recorded_url,
)
from publisher.channel import Asset, InProgress, Published, validate_channel_config
from publisher.errors import ConfigError, InvalidInput
from publisher.testing import make_ctx, make_env, make_post


def channel(tmp_path, clock=None, **cfg):
    cfg.setdefault("place", "city_portal")
    env = make_env(tmp_path, **({"clock": clock} if clock else {}))
    return ManualChannel("city", validate_channel_config(ManualChannel, "city", cfg), env)


def test_waits_with_the_place_and_the_remind_interval(tmp_path):
    ch = channel(tmp_path, remind_after_hours=2)
    ctx = make_ctx(1)
    out = ch.publish(make_post(), ctx)
    assert isinstance(out, InProgress)
    assert out.check_again_in == timedelta(hours=2)
    assert out.note == "waiting to be posted by hand at 齐齐哈尔市人民政府网站"
    assert "waiting_since" in ctx.state
    assert ManualChannel.manual is True


def test_default_remind_interval_is_one_hour_and_label_overrides(tmp_path):
    ch = channel(tmp_path, place="某区教育局网站")
    assert ch.publish(make_post(), make_ctx(1)).check_again_in == timedelta(hours=1)
    assert ch.place_label == "某区教育局网站"
    assert channel(tmp_path, place="tv", label="齐齐哈尔电视台").place_label == "齐齐哈尔电视台"


def test_recorded_url_publishes(tmp_path):
    ch = channel(tmp_path)
    ctx = make_ctx(1)
    ch.publish(make_post(), ctx)
    ctx.save_state(**recorded_state(url=" https://www.qqhr.gov.cn/news/123.html ", by="王老师", at=datetime.now(UTC)))
    out = ch.publish(make_post(), ctx)
    assert out == Published(url="https://www.qqhr.gov.cn/news/123.html", remote_id=None)


def test_not_applicable_publishes_without_url_and_keeps_the_reason(tmp_path):
    ch = channel(tmp_path, place="newspaper")
    ctx = make_ctx(1, state=recorded_state(not_applicable="见报：齐齐哈尔日报 2026-11-20 第3版"))
    out = ch.publish(make_post(), ctx)
    assert out == Published(url=None, remote_id=None)
    assert ctx.state["not_applicable"] == ctx.state["note"] == "见报：齐齐哈尔日报 2026-11-20 第3版"


def test_recorded_state_needs_exactly_one_outcome():
    with pytest.raises(InvalidInput):
        recorded_state()
    with pytest.raises(InvalidInput):
        recorded_state(url="https://a.example/", not_applicable="x")
    with pytest.raises(InvalidInput):
        recorded_state(not_applicable="   ")


def test_overdue_is_flagged(tmp_path):
    now = [datetime(2026, 11, 1, tzinfo=UTC)]
    ch = channel(tmp_path, clock=lambda: now[0], overdue_after_hours=24)
    ctx = make_ctx(1)
    assert not ch.publish(make_post(), ctx).note.startswith("OVERDUE")
    now[0] += timedelta(hours=25)
    note = ch.publish(make_post(), ctx).note
    # shown in the office's zone like every other time, not in UTC
    assert note.startswith("OVERDUE") and note.endswith("since 2026-11-01 08:00 (Asia/Shanghai)"), note
    assert is_overdue(ctx.state, now[0], 24)
    assert not is_overdue({**ctx.state, "url": "https://a.example/"}, now[0], 24)


@pytest.mark.parametrize("url", ["https://www.qqhr.gov.cn/a.html", "http://10.0.0.1:8080/x?id=1"])
def test_valid_urls(url):
    assert validate_recorded_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "www.qqhr.gov.cn/a.html",
        "ftp://a.example/x",
        "https://",
        "javascript:alert(1)",
        "http://exa mple.com/",
        "已发布",
    ],
)
def test_invalid_urls(url):
    with pytest.raises(InvalidInput):
        validate_recorded_url(url)


def test_presets_cover_the_named_places():
    assert {
        "city_portal",
        "hr_site",
        "procurement",
        "newspaper",
        "tv",
        "journal",
        "toutiao",
        "moe_platform",
        "douyin",
    } <= set(PRESETS)
    assert PRESETS["procurement"].label == "黑龙江省政府采购网"
    assert all(p.label and p.hint for p in PRESETS.values())


def test_config_refuses_unknown_keys():
    with pytest.raises(ConfigError):
        validate_channel_config(ManualChannel, "x", {"place": "tv", "remind_hours": 3})


def test_copy_kit(tmp_path):
    img = tmp_path / "a.png"
    img.write_bytes(b"\x89PNG fake")
    sha = "a" * 64
    asset = Asset(sha256=sha, path=img, filename="校园.png", content_type="image/png")
    post = make_post(
        7,
        body_html=f'<p>第一段。</p><p><img src="asset://{sha}" alt="校园"></p>' + "<ul><li>甲</li><li>乙</li></ul>",
        assets=(asset,),
        publish_at=datetime(2026, 11, 20, 17, 0, tzinfo=UTC),
    )
    kit = render_copy_kit(post)
    assert kit.startswith(f"标题：\n{post.title}")
    assert "摘要：\n寒假放假安排" in kit
    assert "第一段。" in kit and "• 甲" in kit and "[图片：校园.png]" in kit
    assert "<p>" not in kit
    assert f"图片：校园.png  ({img})" in kit
    assert "发布日期：2026-11-21" in kit  # shown in Beijing time
    assert post.site_url in kit


def test_health_never_fails(tmp_path):
    assert channel(tmp_path).check_health().ok
