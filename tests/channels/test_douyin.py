"""Douyin specifics: upload then create, resuming between the two, error shapes, health."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from channels.sandbox.douyin import DouyinSandbox
from publisher.channel import CredentialsRefused, PermanentChannelError, TransientChannelError
from publisher.testing import make_ctx
from tests.channels.contract_douyin import OPEN_ID, TOKEN, image_asset, make_channel, make_post


@pytest.fixture
def dy():
    sandbox = DouyinSandbox(access_token=TOKEN, open_id=OPEN_ID)
    sandbox.start()
    yield sandbox
    sandbox.stop()


def test_upload_then_create(tmp_path, dy):
    ch = make_channel(tmp_path, dy.base_url, topics=["信息公开"])
    post = make_post(tmp_path, 1, summary="学生1月12日放假，教职工1月16日放假")
    ctx = make_ctx(1)
    out = ch.publish(post, ctx)
    assert [e["action"] for e in dy.ledger] == ["upload", "create"]
    item = dy.items[out.remote_id]
    assert item["image_id"] == ctx.state["image_id"]
    assert item["title"] == f"{post.title}\n{post.summary} #信息公开"
    assert ch.check_url(out.url).ok


def test_first_body_image_when_there_is_no_cover(tmp_path, dy):
    ch = make_channel(tmp_path, dy.base_url)
    img = image_asset(tmp_path, role="image", fmt="JPEG")
    post = make_post(tmp_path, 1, assets=(img,), body_html=f'<img src="asset://{img.sha256}">')
    assert ch.validate(post) == []
    ch.publish(post, make_ctx(1))
    assert dy.ledger[0]["size"] == img.path.stat().st_size


def test_a_failed_create_does_not_upload_again(tmp_path, dy):
    ch = make_channel(tmp_path, dy.base_url)
    post, ctx = make_post(tmp_path, 1), make_ctx(1)
    # the upload succeeds, then the create meets a busy gateway
    original = dy.handle

    def busy_on_create(req):
        if req.path == "/image/create/" and not busy_on_create.done:
            busy_on_create.done = True
            dy.fail_next("transient")
        return original(req)

    busy_on_create.done = False
    dy.handle = busy_on_create
    with pytest.raises(TransientChannelError) as info:
        ch.publish(post, ctx)
    assert info.value.code == 2100004
    ch.publish(post, ctx)
    assert [e["action"] for e in dy.ledger] == ["upload", "create"]


def test_no_picture_is_refused_at_review(tmp_path, dy):
    ch = make_channel(tmp_path, dy.base_url)
    post = make_post(tmp_path, 1, assets=())
    assert "needs a picture" in ch.validate(post)[0]
    with pytest.raises(PermanentChannelError):
        ch.publish(post, make_ctx(1))


def test_gif_and_large_pictures_are_refused_at_review(tmp_path, dy):
    from dataclasses import replace

    ch = make_channel(tmp_path, dy.base_url, max_image_bytes=10)
    cover = image_asset(tmp_path)
    assert "at most" in ch.validate(make_post(tmp_path, 1, assets=(cover,)))[0]
    gif = replace(cover, content_type="image/gif")
    assert "JPEG or PNG" in ch.validate(make_post(tmp_path, 1, assets=(gif,)))[0]


def test_expired_token_asks_to_reauthorise(tmp_path, dy):
    ch = make_channel(tmp_path, dy.base_url)
    dy.fail_next("expired")
    with pytest.raises(CredentialsRefused, match="re-authorise") as info:  # the admins are told (docs/notify.md)
        ch.publish(make_post(tmp_path, 1), make_ctx(1))
    assert info.value.code == 2190008 and TOKEN not in str(info.value)
    assert isinstance(info.value, PermanentChannelError)  # failed at once, as any refusal


def test_health(tmp_path, dy):
    ch = make_channel(tmp_path, dy.base_url, token_expires_at=datetime.now(UTC) + timedelta(days=1))
    health = ch.check_health()
    assert health.ok and "示范大学" in health.detail and any("expires" in w for w in health.warnings)
    dy.access_token = "rotated"
    health = ch.check_health()
    assert not health.ok and "2190002" in health.detail
    assert dy.ledger == []


def test_a_network_error_never_carries_the_token(tmp_path, dy):
    ch = make_channel(tmp_path, dy.base_url)
    dy.stop()  # nobody listens any more: the token would be in the URL of urllib3's message
    with pytest.raises(TransientChannelError) as info:
        ch.publish(make_post(tmp_path, 1), make_ctx(1))
    chain, exc = [], info.value
    while exc is not None:
        chain.append(str(exc))
        exc = exc.__cause__
    assert len(chain) == 2 and all(TOKEN not in text for text in chain)
