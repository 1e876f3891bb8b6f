"""Weibo specifics: the 140-character rule, the safe domain, token expiry, error codes, the picture."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from channels.sandbox.weibo import WeiboSandbox
from channels.sandbox.weibo import weibo_length as sandbox_length
from channels.weibo import compose_status, weibo_length
from publisher.channel import PermanentChannelError, Published, QuotaExceeded
from publisher.testing import make_ctx, make_post
from tests.channels.contract_douyin import image_asset
from tests.channels.contract_weibo import TOKEN, make_channel

URL = "http://127.0.0.1:8000/site/items/1.html"


@pytest.fixture
def wb():
    sandbox = WeiboSandbox(access_token=TOKEN, safe_domain="127.0.0.1")
    sandbox.start()
    yield sandbox
    sandbox.stop()


def test_length_rule():
    assert weibo_length("通知") == 2
    assert weibo_length("abcd") == 2
    assert weibo_length("abc") == 2  # halves round up
    assert weibo_length(f"通知 {URL}") == 2 + 1 + 12  # "通知" + half a space (rounded up) + the link
    assert weibo_length("x" * 400 + " " + URL, url_weight=10) == (401 + 20 + 1) // 2
    assert weibo_length(f"通知 {URL}") == sandbox_length(f"通知 {URL}")


def test_short_title_is_kept_whole():
    assert compose_status("关于寒假放假安排的通知", URL) == f"关于寒假放假安排的通知 {URL}"


def test_long_title_is_cut_with_an_ellipsis_and_the_link_kept():
    title = "关于" + "学校各单位做好二〇二六年寒假期间安全稳定与值班值守工作" * 10 + "的通知"
    text = compose_status(title, URL)
    assert weibo_length(text) <= 140
    assert text.endswith(f"… {URL}")
    assert weibo_length(compose_status(title + "！", URL)) == weibo_length(text)  # cut at the limit, not before
    assert text.startswith(title[:100])


def test_long_title_is_published_shortened(tmp_path, wb):
    ch = make_channel(tmp_path, wb.base_url)
    post = make_post(1, title="超长标题" * 60)
    out = ch.publish(post, make_ctx(1))
    sent = wb.statuses[int(out.remote_id)]["sent"]
    assert "…" in sent and sent.endswith(post.site_url)


def test_safe_domain_is_checked_at_review(tmp_path, wb):
    ch = make_channel(tmp_path, wb.base_url, safe_domain="xxgk.example.edu.cn")
    problems = ch.validate(make_post(1))
    assert len(problems) == 1 and "safe domain" in problems[0]
    ok = make_post(1, site_url="https://www.xxgk.example.edu.cn/items/1.html")
    assert ch.validate(ok) == []


def test_link_off_the_safe_domain_is_refused_by_weibo(tmp_path, wb):
    wb.safe_domain = "xxgk.example.edu.cn"
    ch = make_channel(tmp_path, wb.base_url)
    with pytest.raises(PermanentChannelError) as info:
        ch.publish(make_post(1), make_ctx(1))
    assert info.value.code == 10017


def test_cover_is_sent_as_pic_and_checked(tmp_path, wb):
    ch = make_channel(tmp_path, wb.base_url)
    cover = image_asset(tmp_path, fmt="JPEG")
    out = ch.publish(make_post(1, assets=(cover,)), make_ctx(1))
    assert wb.statuses[int(out.remote_id)]["pic"] is True
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + b"0" * (5 * 1024 * 1024))
    from dataclasses import replace

    problems = ch.validate(make_post(2, assets=(replace(cover, path=big, content_type="image/png"),)))
    assert any("under 5 MB" in p for p in problems)
    webp = replace(cover, content_type="image/webp")
    assert any("JPEG, GIF or PNG" in p for p in ch.validate(make_post(3, assets=(webp,))))


def test_published_url_answers(tmp_path, wb):
    ch = make_channel(tmp_path, wb.base_url)
    out = ch.publish(make_post(1), make_ctx(1))
    assert out.url == f"{wb.base_url}/{wb.uid}/{out.remote_id}"
    assert ch.check_url(out.url).ok


def test_rate_limit_is_a_quota_until_the_next_hour(tmp_path, wb):
    ch = make_channel(tmp_path, wb.base_url)
    wb.fail_next("quota")
    with pytest.raises(QuotaExceeded) as info:
        ch.publish(make_post(1), make_ctx(1))
    assert info.value.code == 10023
    assert timedelta(0) < info.value.until - datetime.now(UTC) <= timedelta(hours=1, minutes=1)


def test_expired_token_asks_to_reauthorise(tmp_path, wb):
    ch = make_channel(tmp_path, wb.base_url)
    wb.fail_next("expired")
    with pytest.raises(PermanentChannelError, match="re-authorise") as info:
        ch.publish(make_post(1), make_ctx(1))
    assert info.value.code == 21327 and TOKEN not in str(info.value)


def test_repeat_content_finds_the_earlier_post(tmp_path, wb):
    ch = make_channel(tmp_path, wb.base_url)
    first = ch.publish(make_post(1), make_ctx(1))
    # the same item again under a new delivery (e.g. a state lost): Weibo says 20019, we find ours
    again = ch.publish(make_post(1), make_ctx(2))
    assert again == Published(url=first.url, remote_id=first.remote_id)
    assert wb.live_count() == 1


def test_repeat_content_not_found_is_permanent(tmp_path, wb):
    ch = make_channel(tmp_path, wb.base_url)
    wb.fail_next("repeat")
    with pytest.raises(PermanentChannelError, match="repeated content"):
        ch.publish(make_post(1), make_ctx(1))


def test_health_reads_token_expiry_and_quota(tmp_path, wb):
    ch = make_channel(tmp_path, wb.base_url)
    health = ch.check_health()
    assert health.ok and "calls left this hour" in health.detail and health.warnings == ()
    wb.token_expires = datetime.now(UTC) + timedelta(days=3)
    health = ch.check_health()
    assert health.ok and any("re-authorise" in w for w in health.warnings)
    wb.token_expires = datetime.now(UTC) - timedelta(seconds=1)
    assert not ch.check_health().ok
    assert wb.ledger == []


def test_health_uses_the_configured_expiry(tmp_path, wb):
    soon = datetime.now(UTC) + timedelta(days=2)
    ch = make_channel(tmp_path, wb.base_url, token_expires_at=soon)
    assert any("expires on" in w for w in ch.check_health().warnings)
    late = make_channel(tmp_path, wb.base_url, token_expires_at=datetime.now(UTC) + timedelta(days=60))
    assert late.check_health().warnings == ()


def test_health_fails_on_a_revoked_token_even_with_a_configured_expiry(tmp_path, wb):
    late = datetime.now(UTC) + timedelta(days=60)
    ch = make_channel(tmp_path, wb.base_url, token_expires_at=late)
    wb.access_token = "another-token"
    health = ch.check_health()
    assert not health.ok and "re-authorise" in health.detail
