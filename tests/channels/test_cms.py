"""CMS channel specifics against the WordPress sandbox: categories, withdraw modes, media, auth."""

from __future__ import annotations

import pytest

from channels.sandbox.wordpress import WordPressSandbox
from publisher.channel import PermanentChannelError, Published
from publisher.testing import make_ctx, make_post
from tests.channels.contract_cms import APP_PASSWORD, PASSWORD_ENV, make_channel
from tests.channels.contract_douyin import image_asset


@pytest.fixture
def wp():
    sandbox = WordPressSandbox(users={"editor": APP_PASSWORD})
    sandbox.start()
    sandbox.categories[5] = {"id": 5, "name": "通知公告", "slug": "notices"}
    yield sandbox
    sandbox.stop()


def test_category_is_mapped_to_the_wordpress_id(tmp_path, wp):
    ch = make_channel(tmp_path, wp.base_url)
    ch.config = ch.config.model_copy(update={"categories": {"公告公示": 5}})
    out = ch.publish(make_post(1), make_ctx(1))
    assert wp.posts[int(out.remote_id)]["categories"] == [5]


def test_unmapped_category_is_refused_at_review_and_delivery(tmp_path, wp):
    ch = make_channel(tmp_path, wp.base_url)
    post = make_post(1, category="规章制度")
    assert any("规章制度" in p for p in ch.validate(post))
    with pytest.raises(PermanentChannelError, match="规章制度"):
        ch.publish(post, make_ctx(1))
    assert wp.live_count() == 0


def test_unmapped_category_is_created_once_when_allowed(tmp_path, wp):
    ch = make_channel(tmp_path, wp.base_url, create_categories=True)
    post = make_post(1, category="规章制度")
    assert ch.validate(post) == []
    a = ch.publish(post, make_ctx(1))
    b = ch.publish(make_post(2, category="规章制度"), make_ctx(2))
    created = [e for e in wp.ledger if e["action"] == "category"]
    assert len(created) == 1
    assert wp.posts[int(a.remote_id)]["categories"] == wp.posts[int(b.remote_id)]["categories"] == [created[0]["id"]]


@pytest.mark.parametrize(("mode", "expected"), [("draft", "draft"), ("trash", "trash"), ("delete", None)])
def test_withdraw_modes(tmp_path, wp, mode, expected):
    ch = make_channel(tmp_path, wp.base_url, withdraw_to=mode)
    post, ctx = make_post(1), make_ctx(1)
    out = ch.publish(post, ctx)
    assert ch.check_url(out.url).ok
    ch.withdraw(post, make_ctx(1, state=ctx.state, remote_id=out.remote_id))
    pid = int(out.remote_id)
    assert (wp.posts[pid]["status"] if pid in wp.posts else None) == expected
    assert not ch.check_url(out.url).ok
    ch.withdraw(post, make_ctx(1, state=ctx.state, remote_id=out.remote_id))  # twice is harmless


def test_images_are_uploaded_once_and_substituted(tmp_path, wp):
    ch = make_channel(tmp_path, wp.base_url)
    img = image_asset(tmp_path, role="image")
    cover = image_asset(tmp_path, role="cover", color=(0, 90, 200))
    body = f'<p>见下图。</p><p><img src="asset://{img.sha256}" alt="图"></p>'
    out = ch.publish(make_post(1, body_html=body, assets=(img, cover)), make_ctx(1))
    ch.publish(make_post(2, body_html=body, assets=(img,)), make_ctx(2))
    uploads = [e for e in wp.ledger if e["action"] == "media"]
    assert len(uploads) == 2  # the body image once for both items, and the cover
    post = wp.posts[int(out.remote_id)]
    image_url = next(m["source_url"] for m in wp.media.values() if m["id"] == uploads[0]["id"])
    assert f'src="{image_url}"' in post["content"] and "asset://" not in post["content"]
    assert post["featured_media"] == uploads[1]["id"]
    assert ch.check_url(image_url).ok


def test_wrong_password_is_permanent_and_never_shown(tmp_path, wp, monkeypatch):
    ch = make_channel(tmp_path, wp.base_url)
    monkeypatch.setenv(PASSWORD_ENV, "wxyz wxyz wxyz wxyz wxyz wxyz")
    from channels.cms import CmsChannel

    ch = CmsChannel("cms", ch.config, ch.env)
    with pytest.raises(PermanentChannelError) as info:
        ch.publish(make_post(1), make_ctx(1))
    assert info.value.code == "incorrect_password"
    assert PASSWORD_ENV in str(info.value) and "wxyz" not in str(info.value)
    health = ch.check_health()
    assert not health.ok and "incorrect_password" in health.detail


def test_health_reports_the_user_and_missing_rights(tmp_path, wp):
    ch = make_channel(tmp_path, wp.base_url)
    health = ch.check_health()
    assert health.ok and "editor" in health.detail and health.warnings == ()
    wp.capabilities["upload_files"] = False
    assert any("upload_files" in w for w in ch.check_health().warnings)
    assert wp.ledger == []  # the health check published nothing


def test_validate_refuses_images_the_cms_cannot_take(tmp_path, wp):
    ch = make_channel(tmp_path, wp.base_url, max_upload_bytes=10)
    img = image_asset(tmp_path, role="image")
    post = make_post(1, body_html=f'<img src="asset://{img.sha256}">', assets=(img,))
    assert any("at most" in p for p in ch.validate(post))


def test_update_restores_a_post_withdrawn_to_draft(tmp_path, wp):
    ch = make_channel(tmp_path, wp.base_url)
    post, ctx = make_post(1), make_ctx(1)
    out = ch.publish(post, ctx)
    ch.withdraw(post, ctx)
    again = ch.update(make_post(1, title="新标题"), make_ctx(1, state=ctx.state, remote_id=out.remote_id))
    assert again == Published(url=out.url, remote_id=out.remote_id)
    assert wp.posts[int(out.remote_id)]["status"] == "publish" and wp.live_count() == 1


def test_list_publications(tmp_path, wp):
    ch = make_channel(tmp_path, wp.base_url)
    out = ch.publish(make_post(1), make_ctx(1))
    found = ch.list_publications()
    assert [p.remote_id for p in found] == [out.remote_id]
    assert found[0].published_at.tzinfo is not None


def test_sandbox_quota_http500_and_timeout_faults(tmp_path, wp):
    """The faults a chaos run draws, as the channel meets them: deferred, retried, reconciled."""
    from publisher.channel import AmbiguousOutcome, QuotaExceeded, TransientChannelError

    ch = make_channel(tmp_path, wp.base_url, timeout=0.5)
    post, ctx = make_post(1), make_ctx(1)
    wp.fail_next("quota")
    with pytest.raises(QuotaExceeded) as quota:
        ch.publish(post, ctx)
    assert (quota.value.until - ch.env.clock()).total_seconds() <= wp.retry_after
    wp.fail_next("http500")
    with pytest.raises(TransientChannelError, match="500"):
        ch.publish(post, ctx)
    assert wp.posts == {}, "a 500 did nothing"
    wp.hang_seconds = 1.0
    wp.fail_next("timeout")
    with pytest.raises(AmbiguousOutcome):
        ch.publish(post, ctx)
    assert wp.live_count() == 1, "the late answer came after the post was made"
    out = ch.publish(post, ctx)
    assert isinstance(out, Published) and list(wp.posts) == [int(out.remote_id)]
    assert wp.fault_stats()["served"] == {"quota": 1, "http500": 1, "timeout": 1}


def test_sandbox_draws_faults_at_a_rate_and_is_steered_over_http(tmp_path):
    import re
    import subprocess
    import sys

    import requests

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "channels.sandbox.wordpress",
            "--port",
            "0",
            "--app-password",
            APP_PASSWORD,
            "--fault-rate",
            "0.5",
            "--fault-mix",
            "transient,http500",
            "--seed",
            "3",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base = re.search(r"(http://\S+)", proc.stdout.readline()).group(1)
        auth = ("editor", APP_PASSWORD)
        codes = [
            requests.post(f"{base}/wp-json/wp/v2/posts", json={"title": f"t{i}"}, auth=auth, timeout=10).status_code
            for i in range(100)
        ]
        snap = requests.get(f"{base}/__sandbox__/ledger", timeout=10).json()
        assert 25 <= codes.count(201) <= 75, codes
        assert snap["faults"] == {
            "checked": 100,
            "served": {"transient": codes.count(503), "http500": codes.count(500)},
        }
        assert len(snap["posts"]) == codes.count(201) == len(snap["ledger"])
        r = requests.post(f"{base}/__sandbox__/config", json={"fault_rate": 0}, timeout=10)
        assert r.json() == {"ok": True}
        assert requests.post(f"{base}/__sandbox__/faults", json={"kind": "nonsense"}, timeout=10).status_code == 400
        assert requests.post(f"{base}/__sandbox__/faults", json={"kind": "quota"}, timeout=10).json() == {"ok": True}
        r = requests.post(f"{base}/wp-json/wp/v2/posts", json={"title": "x"}, auth=auth, timeout=10)
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        r = requests.post(f"{base}/wp-json/wp/v2/posts", json={"title": "y"}, auth=auth, timeout=10)
        assert r.status_code == 201
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        proc.stdout.close()


def test_put_back_after_a_take_down_publishes_a_new_post_even_when_its_answer_is_lost(make_app, wp, monkeypatch):
    """Taken down to a draft, put back with a new title, and the create's answer is lost: the retry
    looks its post up by slug, and must find the put-back's, not the old copy's draft (which it
    would publish again, old title and all, beside the new post)."""
    from tests.test_dispatch import approved_item, deliveries, run_once
    from tests.test_withdraw_in_flight import _approve, _edit

    monkeypatch.setenv(PASSWORD_ENV, APP_PASSWORD)
    wp.hang_seconds = 1.0
    cms = {
        "type": "cms",
        "base_url": wp.base_url,
        "username": "editor",
        "password_env": PASSWORD_ENV,
        "categories": {"公告公示": 1},
        "timeout": 0.5,
    }
    app = make_app(channels={"mem": {"type": "memory"}, "cms": cms})
    item = approved_item(app, channels=["mem", "cms"])
    assert run_once(app) == {"done": 2}
    did = deliveries(app, item)["cms"].id
    _edit(app, item, channels=["mem"])
    _approve(app, item)
    assert run_once(app) == {"done": 2}
    assert wp.live_count() == 0
    _edit(app, item, channels=["mem", "cms"], title="更正：关于寒假放假安排的通知")
    _approve(app, item)
    wp.fail_next("timeout")  # the put-back's create is made; its answer comes too late
    assert run_once(app).get("done") == 2
    live = [p for p in wp.posts.values() if p["status"] == "publish"]
    assert [p["title"] for p in live] == ["更正：关于寒假放假安排的通知"], wp.posts
    d = deliveries(app, item)["cms"]
    assert int(d.remote_id) == live[0]["id"] and live[0]["slug"] == f"publisher-d{did}-g1"


def test_the_cover_goes_up_with_its_alt_text(tmp_path, wp):
    import dataclasses

    ch = make_channel(tmp_path, wp.base_url)
    cover = dataclasses.replace(image_asset(tmp_path, role="cover", color=(10, 120, 60)), alt="开放日当天的校门口")
    out = ch.publish(make_post(1, assets=(cover,)), make_ctx(1))
    media = wp.media[wp.posts[int(out.remote_id)]["featured_media"]]
    assert media["alt_text"] == "开放日当天的校门口"
    # the same picture, described anew by a later item: the media item is updated, not uploaded again
    again = dataclasses.replace(cover, alt="校门口（东门）")
    ch.publish(make_post(2, assets=(again,)), make_ctx(2))
    assert media["alt_text"] == "校门口（东门）"
    assert [e["action"] for e in wp.ledger if e["action"].startswith("media")] == [
        "media",
        "media_update",
        "media_update",
    ]


def test_a_channels_own_cover_goes_up_with_its_own_alt_text(tmp_path, wp):
    import dataclasses

    from publisher.pipeline.workflow.wording import CHANNEL_COVER, for_channel

    own = dataclasses.replace(image_asset(tmp_path, role="cover", color=(10, 120, 60)), alt="开放日当天的校门口")
    mine = image_asset(tmp_path, role=CHANNEL_COVER, color=(120, 10, 60))
    post = for_channel(make_post(1, assets=(own, mine)), {"cover": mine.sha256, "cover_alt": "礼堂里的开放日讲座"})
    ch = make_channel(tmp_path, wp.base_url)
    out = ch.publish(post, make_ctx(1))
    media = wp.media[wp.posts[int(out.remote_id)]["featured_media"]]
    assert media["alt_text"] == "礼堂里的开放日讲座"
    # the featured image is the channel's own picture, not the item's cover
    assert wp.files[media["source_url"].removeprefix(wp.base_url)][1] == mine.path.read_bytes()
