"""The WeChat channel against its sandbox, over real HTTP on loopback."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from PIL import Image

from channels.sandbox.wechat import WeChatSandbox
from channels.wechat import WeChatChannel
from channels.wechat import media as wechat_media
from publisher.channel import (
    AmbiguousOutcome,
    CredentialsRefused,
    InProgress,
    PermanentChannelError,
    Published,
    QuotaExceeded,
    TransientChannelError,
)
from publisher.errors import ConfigError
from publisher.testing import MemoryKV, make_ctx, make_env, make_post
from tests.channels.contract_wechat import (
    AES_KEY,
    CALLBACK_TOKEN,
    CallbackServer,
    image_asset,
    make_channel,
    make_harness,
)

BEIJING = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def sandbox():
    sb = WeChatSandbox(publish_delay=0.15)
    sb.start()
    yield sb
    sb.stop()


@pytest.fixture
def assets(tmp_path):
    cover = image_asset(tmp_path, "cover.jpg", size=(1600, 900), color=(163, 31, 36), role="cover")
    pic = image_asset(tmp_path, "chart.png", size=(800, 600), fmt="PNG")
    return cover, pic


def rich_post(assets, item_id=1, **kw):
    cover, pic = assets
    body = (
        "<h2>一、放假时间</h2><p>学生 1 月 12 日放假，详见"
        '<a href="https://www.example.edu.cn/xl.html">校历</a>。</p>'
        f'<p><img src="{pic.ref}" alt="校历"></p>'
        "<blockquote><p>请各单位做好安全检查。</p></blockquote>"
        "<ul><li>教职工：1 月 19 日</li><li>返校：2 月 23 日</li></ul>"
        "<table><thead><tr><th>类别</th><th>日期</th></tr></thead><tbody><tr><td>学生</td><td>1/12</td></tr>"
        "</tbody></table><script>alert(1)</script>"
    )
    return make_post(item_id, body_html=body, assets=(cover, pic), **kw)


def run(channel, post, ctx, *, limit=8.0):
    """Call publish the way the core does: again after check_again_in, until an outcome."""
    deadline = time.monotonic() + limit
    while True:
        out = channel.publish(post, ctx)
        if isinstance(out, Published):
            return out
        assert isinstance(out, InProgress)
        assert time.monotonic() < deadline, "publish never finished"
        time.sleep(min(out.check_again_in.total_seconds(), 0.3))


# ---------------------------------------------------------------------------------------- publish
def test_publishes_once_with_rehosted_images_and_cropped_thumb(sandbox, tmp_path, assets):
    ch = make_channel(sandbox, tmp_path)
    post = rich_post(assets)
    assert ch.validate(post) == []
    ctx = make_ctx()
    out = run(ch, post, ctx)

    led = sandbox.ledger()
    assert len(led["articles"]) == 1
    art = led["articles"][0]
    assert out.remote_id == art["article_id"] and out.url == art["url"]
    assert art["url"].startswith("https://mp.weixin.qq.com/s/")
    srcs = re.findall(r'<img [^>]*src="([^"]+)"', art["content"])
    assert srcs and all(s in led["uploads"] for s in srcs), "every content image is a re-hosted one"
    assert "<script" not in art["content"] and "alert" not in art["content"]
    assert 'style="' in art["content"] and "<table" in art["content"] and "<blockquote" in art["content"]
    # the external link became a numbered note (WeChat would leave it dead)
    assert "https://www.example.edu.cn/xl.html" in art["content"] and "<a " not in art["content"]
    thumb = led["materials"][art["thumb_media_id"]]
    assert thumb["type"] == "thumb" and thumb["format"] == "jpg" and thumb["size"] <= 64 * 1024
    job = led["jobs"][0]
    assert job["publish_status"] == 0 and not led["drafts"], "the draft leaves the box when published"
    assert ctx.state["step"] == "published" and ctx.state["article_id"] == art["article_id"]
    # once published, calling again changes nothing
    assert ch.publish(post, ctx) == out
    assert len(sandbox.ledger()["articles"]) == 1


def test_thumb_is_small_jpg_with_crop_fields(sandbox, tmp_path):
    cover = image_asset(tmp_path, "noisy.png", size=(1000, 1000), fmt="PNG", role="cover", noise=True)
    assert cover.path.stat().st_size > 1024 * 1024
    ch = make_channel(sandbox, tmp_path)
    run(ch, make_post(1, assets=(cover,)), make_ctx())
    art = sandbox.ledger()["articles"][0]
    draft = sandbox.ledger()["jobs"][0]
    assert draft["publish_status"] == 0
    mat = sandbox.ledger()["materials"][art["thumb_media_id"]]
    assert mat["format"] == "jpg" and mat["size"] <= 64 * 1024
    # square source: the 2.35:1 box is a centred band over the full width, the 1:1 box is everything
    news = requests.post(
        f"{sandbox.base_url}/cgi-bin/freepublish/getarticle",
        params={"access_token": ch.client.access_token},
        data=json.dumps({"article_id": art["article_id"]}),
    ).json()["news_item"][0]
    x1, y1, x2, y2 = map(float, news["pic_crop_235_1"].split("_"))
    assert (x1, x2) == (0.0, 1.0) and abs((y2 - y1) - 1 / 2.35) < 1e-4 and abs(y1 - (1 - y2)) < 1e-4
    assert news["pic_crop_1_1"] == "0_0_1_1"


def test_uploads_are_cached_by_content_hash(sandbox, tmp_path, assets):
    ch = make_channel(sandbox, tmp_path)
    run(ch, rich_post(assets, 1), make_ctx(1))
    run(ch, rich_post(assets, 2, title="关于2026年寒假放假安排的补充通知"), make_ctx(2))
    calls = sandbox.ledger()["calls"]
    assert calls["/cgi-bin/media/uploadimg"] == 1
    assert calls["/cgi-bin/material/add_material"] == 1
    assert len(sandbox.ledger()["articles"]) == 2


def test_images_are_converted_and_stripped_of_metadata(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    exif[0x010F] = "Canon"
    exif[0x8825] = {2: (39.0, 54.0, 0.0)}  # GPS latitude
    photo = image_asset(tmp_path, "photo.jpg", size=(400, 200), exif=exif.tobytes())
    out = wechat_media.prepare_content_image(photo.path, "p")
    im = Image.open(__import__("io").BytesIO(out.data))
    assert im.size == (200, 400), "EXIF orientation applied"
    assert not im.getexif() and "exif" not in im.info
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    tagged = image_asset(tmp_path, "tagged.jpg", size=(60, 40), color=(200, 10, 10), icc_profile=srgb)
    out = wechat_media.prepare_content_image(tagged.path, "t")
    im = Image.open(__import__("io").BytesIO(out.data))
    assert "icc_profile" not in im.info and abs(im.getpixel((5, 5))[0] - 200) < 12
    cmyk = image_asset(tmp_path, "scan.tif", size=(300, 200), mode="CMYK", color=(0, 50, 100, 0), fmt="TIFF")
    out = wechat_media.prepare_content_image(cmyk.path, "c")
    assert out.filename.endswith(".jpg") and out.data[:3] == b"\xff\xd8\xff"
    big = image_asset(tmp_path, "big.png", size=(1100, 1100), fmt="PNG", noise=True)
    out = wechat_media.prepare_content_image(big.path, "b")
    assert len(out.data) < 1024 * 1024 and out.data[:3] == b"\xff\xd8\xff"


# --------------------------------------------------------------------------------------- bad input
def test_bad_input_is_refused_at_review_time_and_nothing_is_sent(sandbox, tmp_path, assets):
    cover, pic = assets
    ch = make_channel(sandbox, tmp_path)
    not_image = tmp_path / "report.jpg"
    not_image.write_bytes(b"%PDF-1.7 this is a PDF renamed to .jpg")
    huge = tmp_path / "huge.jpg"
    huge.write_bytes(Image.new("RGB", (10, 10)).tobytes() + b"\0" * (30 * 1024 * 1024))
    gif = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (40, 40), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    cmyk = image_asset(tmp_path, "scan.tif", size=(300, 200), mode="CMYK", color=(0, 50, 100, 0), fmt="TIFF")

    def asset(path):
        import hashlib

        from publisher.channel import Asset

        return Asset(
            sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
            path=path,
            filename=path.name,
            content_type="image/jpeg",
        )

    bad = {a.sha256: a for a in (asset(not_image), asset(huge), asset(gif))}
    body = "".join(f'<p><img src="asset://{s}"></p>' for s in bad)
    problems = ch.validate(make_post(1, body_html=body, assets=(cover, *bad.values())))
    text = " | ".join(problems)
    assert "report.jpg is not an image" in text
    assert "huge.jpg is 30 MB" in text
    assert "anim.gif is animated" in text

    assert ch.validate(make_post(1, body_html=f'<p><img src="{cmyk.ref}"></p>', assets=(cover, cmyk))) == [], (
        "a CMYK TIFF is converted, not refused"
    )
    assert any("cover image is required" in p for p in ch.validate(make_post(1)))
    assert any("100 characters" in p for p in ch.validate(make_post(1, title="标" * 100, assets=(cover,))))
    long_body = "<p>" + "字" * 50_000 + "</p>"
    assert any("20,000" in p for p in ch.validate(make_post(1, body_html=long_body, assets=(cover,))))
    assert any("at most 16" in p for p in ch.validate(make_post(1, author="信" * 20, assets=(cover,))))

    for href in (
        "http://10.0.0.5/oa",
        "http://192.168.1.20/",
        "https://oa.local/x",
        "http://intranet/wiki",
        "http://localhost:8080/",
        "http://[fd00::1]/",
        "https://portal.corp/",
    ):
        problems = ch.validate(make_post(1, body_html=f'<p><a href="{href}">内网</a></p>', assets=(cover,)))
        assert len(problems) == 1 and href in problems[0] and "campus network" in problems[0], href
    assert ch.validate(make_post(1, body_html='<p><a href="https://www.gov.cn/">政府网</a></p>', assets=(cover,))) == []
    school = make_channel(sandbox, tmp_path, intranet_domains=["oa.example.edu.cn"])
    bad = school.validate(make_post(1, body_html='<p><a href="//oa.example.edu.cn/n/1">OA</a></p>', assets=(cover,)))
    assert len(bad) == 1 and "intranet host oa.example.edu.cn" in bad[0]
    ext = ch.validate(make_post(1, body_html='<p><img src="https://img.example.com/a.jpg"></p>', assets=(cover,)))
    assert any("hosted elsewhere" in p for p in ext)

    with pytest.raises(PermanentChannelError, match="title is 100 characters"):
        ch.publish(make_post(1, title="标" * 100, assets=(cover, pic)), make_ctx())
    assert sandbox.ledger()["calls"] == {}, "nothing is sent half-way"


def test_missing_secret_names_the_variable(sandbox, tmp_path):
    from channels.wechat import WeChatConfig

    cfg = WeChatConfig(appid=sandbox.appid, secret_env="PUBLISHER_TEST_UNSET_SECRET", api_base=sandbox.base_url)
    with pytest.raises(ConfigError, match="PUBLISHER_TEST_UNSET_SECRET"):
        WeChatChannel("wechat", cfg, make_env(tmp_path))


# ---------------------------------------------------------------------------------------- tokens
def test_two_instances_share_one_token(sandbox, tmp_path):
    env = make_env(tmp_path)
    a = make_channel(sandbox, tmp_path, env=env, name="a")
    b = make_channel(sandbox, tmp_path, env=make_env(tmp_path, kv=env.kv), name="b")
    assert a.check_health().ok and b.check_health().ok
    assert a.check_health().ok
    assert sandbox.ledger()["tokens_issued"] == 1
    assert a.client.access_token == b.client.access_token


def test_token_expiry_mid_run_refreshes_once(sandbox, tmp_path, assets):
    ch = make_channel(sandbox, tmp_path)
    run(ch, rich_post(assets, 1), make_ctx(1))
    sandbox.inject("expire_token")
    run(ch, rich_post(assets, 2, title="第二篇通知"), make_ctx(2))
    assert sandbox.ledger()["tokens_issued"] == 2
    assert len(sandbox.ledger()["articles"]) == 2


def test_token_rejected_during_an_upload_sends_the_whole_file_again(sandbox, tmp_path, assets):
    ch = make_channel(sandbox, tmp_path)
    sandbox.inject("errcode", errcode=42001, path="/cgi-bin/material/add_material")
    sandbox.inject("errcode", errcode=40001, path="/cgi-bin/media/uploadimg")
    out = run(ch, rich_post(assets), make_ctx())
    led = sandbox.ledger()
    assert led["calls"]["/cgi-bin/material/add_material"] == 2 and led["calls"]["/cgi-bin/media/uploadimg"] == 2
    assert len(led["articles"]) == 1 and out.remote_id == led["articles"][0]["article_id"]


def test_faults_drawn_at_a_rate(tmp_path):
    with WeChatSandbox(fault_rate=0.5, seed=5, hang_seconds=0.01) as sb:
        tok = requests.get(
            f"{sb.base_url}/cgi-bin/token",
            params={"grant_type": "client_credential", "appid": sb.appid, "secret": sb.secret},
        ).json()["access_token"]
        answers = []
        for _ in range(200):
            try:
                r = requests.get(f"{sb.base_url}/cgi-bin/draft/count", params={"access_token": tok})
            except requests.ConnectionError:
                answers.append("dropped")  # lost_answer: the connection closed with no answer
                continue
            answers.append(r.json().get("errcode", 0) if r.status_code == 200 else r.status_code)
            if answers[-1] in (40001, 42001):  # the drawn expiry: fetch a new token as a client would
                tok = requests.get(
                    f"{sb.base_url}/cgi-bin/token",
                    params={"grant_type": "client_credential", "appid": sb.appid, "secret": sb.secret},
                ).json()["access_token"]
        served = sb.ledger()["faults_served"]
    assert set(served) == {"busy", "quota_minute", "http500", "timeout", "lost_answer", "expire_token"}
    assert 60 <= sum(served.values()) <= 140
    assert answers.count(-1) == served["busy"] and answers.count(45011) == served["quota_minute"]
    assert answers.count(500) == served["http500"] and answers.count("dropped") == served["lost_answer"]
    assert answers.count(42001) == served["expire_token"], "every drawn expiry met the caller's next call"
    with pytest.raises(ValueError, match="nonsense"):
        WeChatSandbox(fault_rate=0.1, fault_mix=("nonsense",))


def test_token_refresh_is_bounded(sandbox, tmp_path):
    ch = make_channel(sandbox, tmp_path)
    sandbox.inject("errcode", errcode=40001, path="/cgi-bin/draft/count", times=50)
    report = ch.check_health()
    assert not report.ok and "40001" in report.detail
    led = sandbox.ledger()
    assert led["calls"]["/cgi-bin/draft/count"] == 2, "one refresh, one retry, then give up"
    assert led["tokens_issued"] == 2


def test_token_fetched_by_another_worker_is_picked_up(sandbox, tmp_path):
    env = make_env(tmp_path)
    a = make_channel(sandbox, tmp_path, env=env, name="a")
    assert a.check_health().ok
    old = a.client.access_token
    # another worker fetched a new token; ours (still in a's view) is stale for the sandbox
    sandbox.configure(token_overlap=0)
    b = make_channel(sandbox, tmp_path, env=make_env(tmp_path, kv=env.kv), name="b")
    b._refresh_token(rejected=old)
    b.client.fetch_access_token()
    assert a.check_health().ok
    assert sandbox.ledger()["tokens_issued"] == 2


# ---------------------------------------------------------------------------------------- errors
def fixed_env(tmp_path, when):
    return make_env(tmp_path, kv=MemoryKV(clock=lambda: when), clock=lambda: when)


def test_daily_quota_defers_to_beijing_midnight_then_succeeds(sandbox, tmp_path, assets):
    now = datetime.now(UTC)
    ch = make_channel(sandbox, tmp_path, env=fixed_env(tmp_path, now))
    sandbox.inject("quota_daily", path="/cgi-bin/draft/add")
    ctx = make_ctx()
    with pytest.raises(QuotaExceeded) as ei:
        ch.publish(rich_post(assets), ctx)
    until = ei.value.until.astimezone(BEIJING)
    assert ei.value.code == 45009
    assert (until.hour, until.minute, until.second) == (0, 0, 0)
    assert until.date() == now.astimezone(BEIJING).date() + timedelta(days=1)
    run(ch, rich_post(assets), ctx)
    assert len(sandbox.ledger()["articles"]) == 1


def test_quota_until_examples(sandbox, tmp_path):
    late = datetime(2026, 3, 1, 23, 59, 30, tzinfo=BEIJING)
    ch = make_channel(sandbox, tmp_path, env=fixed_env(tmp_path, late))
    sandbox.inject("quota_daily", path="/cgi-bin/draft/count")
    sandbox.inject("quota_minute", path="/cgi-bin/draft/count")
    with pytest.raises(QuotaExceeded) as daily:
        ch._call("x", ch.client.draft.count)
    assert daily.value.until == datetime(2026, 3, 2, 0, 0, tzinfo=BEIJING)
    with pytest.raises(QuotaExceeded) as minute:
        ch._call("x", ch.client.draft.count)
    assert minute.value.until == datetime(2026, 3, 2, 0, 0, tzinfo=BEIJING) and minute.value.code == 45011


def test_busy_and_http500_are_transient(sandbox, tmp_path, assets):
    ch = make_channel(sandbox, tmp_path)
    sandbox.inject("busy", path="/cgi-bin/draft/add")
    ctx = make_ctx()
    with pytest.raises(TransientChannelError):
        ch.publish(rich_post(assets), ctx)
    sandbox.inject("http500", path="/cgi-bin/draft/count")
    with pytest.raises(TransientChannelError, match="HTTP 500"):
        ch._call("x", ch.client.draft.count)
    run(ch, rich_post(assets), ctx)
    assert len(sandbox.ledger()["articles"]) == 1


def test_unverified_account_is_permanent_with_errcode(sandbox, tmp_path, assets):
    sandbox.configure(verified=False)
    ch = make_channel(sandbox, tmp_path)
    with pytest.raises(PermanentChannelError, match="verified") as ei:
        ch.publish(rich_post(assets), make_ctx())
    assert ei.value.code == 48001


def test_a_refused_ip_is_credentials_refused_and_an_unverified_account_is_not(sandbox, tmp_path):
    # the admins are told of the first (docs/notify.md): this server's IP is not on the whitelist
    ch = make_channel(sandbox, tmp_path)
    sandbox.inject("errcode", errcode=40164, path="/cgi-bin/draft/count")
    with pytest.raises(CredentialsRefused, match="whitelist") as ei:
        ch._call("count the drafts", ch.client.draft.count)
    assert ei.value.code == 40164
    sandbox.inject("errcode", errcode=48001, path="/cgi-bin/draft/count")
    with pytest.raises(PermanentChannelError) as ei:
        ch._call("count the drafts", ch.client.draft.count)
    assert not isinstance(ei.value, CredentialsRefused)


def test_audit_rejection_is_permanent_with_reason(sandbox, tmp_path, assets):
    ch = make_channel(sandbox, tmp_path, callback_token_env=None, encoding_aes_key_env=None)
    sandbox.inject("audit", status=4)
    with pytest.raises(PermanentChannelError, match="audit rejected") as ei:
        run(ch, rich_post(assets), make_ctx())
    assert ei.value.code == "publish_status=4"
    assert sandbox.ledger()["articles"] == []


# ------------------------------------------------------------------------------ effectively once
def test_crash_between_submit_and_recording_publish_id_reconciles(sandbox, tmp_path, assets):
    ch = make_channel(sandbox, tmp_path)
    post = rich_post(assets)
    ctx = make_ctx()
    out = ch.publish(post, ctx)
    assert isinstance(out, InProgress) and ctx.state["publish_id"]
    time.sleep(0.4)  # the job finishes on WeChat's side while the worker is dead
    # what the database held when the worker died: 'submitting' saved, publish_id not yet
    crashed = {k: v for k, v in ctx.state.items() if k not in ("publish_id", "msg_data_id", "polls")}
    crashed["step"] = "submitting"
    restarted = make_channel(sandbox, tmp_path, env=ch.env)
    ctx2 = make_ctx(state=crashed)
    result = run(restarted, post, ctx2)
    led = sandbox.ledger()
    assert len(led["articles"]) == 1 and led["calls"]["/cgi-bin/freepublish/submit"] == 1
    assert result.remote_id == led["articles"][0]["article_id"]
    assert led["calls"]["/cgi-bin/freepublish/batchget"] >= 1


def test_a_failed_page_of_the_search_is_read_again_within_the_attempt(sandbox, tmp_path, assets):
    ch = make_channel(sandbox, tmp_path)
    post = rich_post(assets)
    ctx = make_ctx()
    assert isinstance(ch.publish(post, ctx), InProgress)
    time.sleep(0.4)
    crashed = {k: v for k, v in ctx.state.items() if k not in ("publish_id", "msg_data_id", "polls")}
    crashed["step"] = "submitting"
    sandbox.inject("busy", path="/cgi-bin/freepublish/batchget")
    out = ch.publish(post, make_ctx(state=crashed))
    led = sandbox.ledger()
    assert isinstance(out, Published) and out.remote_id == led["articles"][0]["article_id"]
    assert led["calls"]["/cgi-bin/freepublish/batchget"] == 2


def test_submit_timeout_is_ambiguous_and_never_yields_a_second_article(sandbox, tmp_path, assets):
    ch = make_channel(sandbox, tmp_path, timeout=1.0)
    sandbox.inject("timeout", path="/cgi-bin/freepublish/submit", seconds=2.0)
    post = rich_post(assets)
    ctx = make_ctx()
    with pytest.raises(AmbiguousOutcome):
        ch.publish(post, ctx)
    assert ctx.state["step"] == "submitting" and "publish_id" not in ctx.state
    out = run(ch, post, ctx)
    led = sandbox.ledger()
    assert len(led["articles"]) == 1 and out.remote_id == led["articles"][0]["article_id"]
    assert led["calls"]["/cgi-bin/freepublish/submit"] == 1


def test_submit_that_never_reached_wechat_is_resubmitted_after_grace(sandbox, tmp_path, assets):
    ch = make_channel(sandbox, tmp_path, reconcile_grace=0.0)
    post = rich_post(assets)
    ctx = make_ctx()
    sandbox.inject("http500", path="/cgi-bin/freepublish/submit")
    with pytest.raises(AmbiguousOutcome):
        ch.publish(post, ctx)
    out = run(ch, post, ctx)
    led = sandbox.ledger()
    assert len(led["articles"]) == 1 and out.remote_id == led["articles"][0]["article_id"]
    assert led["calls"]["/cgi-bin/freepublish/submit"] == 2


def test_unconfirmed_submit_waits_on_the_draft_and_searches_once_before_resubmitting(sandbox, tmp_path, assets):
    ch = make_channel(sandbox, tmp_path, reconcile_grace=0.6)
    post = rich_post(assets)
    ctx = make_ctx()
    sandbox.inject("http500", path="/cgi-bin/freepublish/submit")
    with pytest.raises(AmbiguousOutcome):
        ch.publish(post, ctx)
    assert isinstance(ch.publish(post, ctx), InProgress)
    assert sandbox.ledger()["calls"].get("/cgi-bin/freepublish/batchget", 0) == 0, "the draft is there: no search"
    time.sleep(0.7)
    out = run(ch, post, ctx)
    led = sandbox.ledger()
    assert len(led["articles"]) == 1 and out.remote_id == led["articles"][0]["article_id"]
    assert led["calls"]["/cgi-bin/freepublish/submit"] == 2
    assert led["calls"]["/cgi-bin/freepublish/batchget"] == 1, "one search, then the re-submit"


def test_crash_after_draft_add_reuses_the_draft(sandbox, tmp_path, assets):
    ch = make_channel(sandbox, tmp_path)
    post = rich_post(assets)
    ctx = make_ctx()
    sandbox.inject("timeout", path="/cgi-bin/draft/add", seconds=2.0)
    ch2 = make_channel(sandbox, tmp_path, env=ch.env, timeout=1.0)
    with pytest.raises(AmbiguousOutcome):  # the draft may have been made: the next attempt looks first
        ch2.publish(post, ctx)
    assert ctx.state["step"] == "drafting"
    time.sleep(1.5)
    run(ch, post, ctx)
    led = sandbox.ledger()
    assert led["calls"]["/cgi-bin/draft/add"] == 1 and len(led["articles"]) == 1


# ------------------------------------------------------------------------------------- callbacks
@pytest.mark.parametrize("mode", ["plain", "aes"])
def test_publish_outcome_from_signed_callback(sandbox, tmp_path, assets, mode):
    ch = make_channel(sandbox, tmp_path)
    cb = CallbackServer(ch)
    try:
        sandbox.configure(
            callback_url=cb.url, callback_token=CALLBACK_TOKEN, encoding_aes_key=AES_KEY, callback_mode=mode
        )
        post = rich_post(assets)
        ctx = make_ctx()
        assert isinstance(ch.publish(post, ctx), InProgress)
        deadline = time.monotonic() + 5
        while not cb.replies and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cb.replies == [200]
        out = ch.publish(post, ctx)
        assert isinstance(out, Published)
        assert sandbox.ledger()["calls"].get("/cgi-bin/freepublish/get", 0) == 0, "the callback spared the poll"
        assert out.url == sandbox.ledger()["articles"][0]["url"]
    finally:
        cb.stop()


def test_callback_signature_checks(sandbox, tmp_path):
    import hashlib

    ch = make_channel(sandbox, tmp_path)
    ts, nonce = str(int(time.time())), "12345"
    sig = hashlib.sha1("".join(sorted([CALLBACK_TOKEN, ts, nonce])).encode()).hexdigest()
    ok = ch.handle_callback("GET", {"signature": sig, "timestamp": ts, "nonce": nonce, "echostr": "e42"}, {}, b"")
    assert ok.status == 200 and ok.body == b"e42"
    bad = ch.handle_callback("GET", {"signature": "0" * 40, "timestamp": ts, "nonce": nonce, "echostr": "e"}, {}, b"")
    assert bad.status == 403
    xml = (
        b"<xml><MsgType>event</MsgType><Event>PUBLISHJOBFINISH</Event><PublishEventInfo>"
        b"<publish_id>99</publish_id><publish_status>0</publish_status><article_id>A1</article_id>"
        b"<article_detail><count>1</count><item><idx>1</idx><article_url>https://mp.weixin.qq.com/s/x"
        b"</article_url></item></article_detail></PublishEventInfo></xml>"
    )
    forged = ch.handle_callback("POST", {"signature": "f" * 40, "timestamp": ts, "nonce": nonce}, {}, xml)
    assert forged.status == 403 and ch._event("99") is None
    good = ch.handle_callback("POST", {"signature": sig, "timestamp": ts, "nonce": nonce}, {}, xml)
    assert good.status == 200 and ch._event("99")["article_id"] == "A1"
    # the same signed query replayed with another body is not processed again
    evil = xml.replace(b"<article_id>A1</article_id>", b"<article_id>EVIL</article_id>")
    assert ch.handle_callback("POST", {"signature": sig, "timestamp": ts, "nonce": nonce}, {}, evil).status == 200
    assert ch._event("99")["article_id"] == "A1"
    # an old timestamp is refused even with a right signature
    old_ts = str(int(time.time()) - 3600)
    old_sig = hashlib.sha1("".join(sorted([CALLBACK_TOKEN, old_ts, "9"])).encode()).hexdigest()
    stale = ch.handle_callback("POST", {"signature": old_sig, "timestamp": old_ts, "nonce": "9"}, {}, evil)
    assert stale.status == 403 and ch._event("99")["article_id"] == "A1"
    nonce = "12346"
    sig = hashlib.sha1("".join(sorted([CALLBACK_TOKEN, ts, nonce])).encode()).hexdigest()
    # safe mode: a right plain signature but a wrong msg_signature is refused too
    from channels.sandbox.wechat import aes_encrypt

    enc = aes_encrypt(AES_KEY, sandbox.appid, xml.decode())
    body = f"<xml><Encrypt><![CDATA[{enc}]]></Encrypt></xml>".encode()
    q = {"signature": sig, "timestamp": ts, "nonce": nonce, "encrypt_type": "aes", "msg_signature": "0" * 40}
    assert ch.handle_callback("POST", q, {}, body).status == 403
    q["msg_signature"] = hashlib.sha1("".join(sorted([CALLBACK_TOKEN, ts, nonce, enc])).encode()).hexdigest()
    assert ch.handle_callback("POST", q, {}, body).status == 200


# --------------------------------------------------------------------------------- after publishing
def test_stats_rows(sandbox, tmp_path, assets):
    ch = make_channel(sandbox, tmp_path)
    out = run(ch, rich_post(assets), make_ctx())
    sandbox.backdate(out.remote_id, 4)
    now = datetime.now(BEIJING)
    today = now.date() if now.hour >= 8 else now.date() - timedelta(days=1)  # yesterday is ready after 08:00
    rows = ch.fetch_stats([out.remote_id], today - timedelta(days=3), today)
    art_rows = [r for r in rows if r.remote_id == out.remote_id]
    assert {r.metric for r in art_rows} == {"reads", "readers", "shares", "favourites"}
    assert {r.day for r in art_rows} == {today - timedelta(days=d) for d in (1, 2, 3)}, "end_date ≤ yesterday"
    reads = {r.day: r.value for r in art_rows if r.metric == "reads"}
    assert all(v > 0 for v in reads.values())
    followers = [r for r in rows if r.metric == "followers"]
    assert len(followers) == 3 and all(r.remote_id is None and r.value > 0 for r in followers)
    assert {r.metric for r in rows if r.remote_id is None} == {"followers", "new_followers", "unfollows"}
    # the same call again gives the same numbers (deterministic)
    assert ch.fetch_stats([out.remote_id], today - timedelta(days=3), today) == rows
    # an article this channel did not publish (no msg_data_id on record) is matched by its title
    fresh = make_channel(sandbox, tmp_path)
    again = fresh.fetch_stats([out.remote_id], today - timedelta(days=3), today)
    assert [r for r in again if r.remote_id] == art_rows


def test_withdraw_check_url_and_listing(sandbox, tmp_path, assets):
    ch = make_channel(sandbox, tmp_path)
    post = rich_post(assets)
    ctx = make_ctx()
    out = run(ch, post, ctx)
    assert ch.check_url(out.url).ok
    pubs = ch.list_publications(since=datetime.now(UTC) - timedelta(hours=1))
    assert [p.remote_id for p in pubs] == [out.remote_id] and pubs[0].title == post.title
    ch.withdraw(post, make_ctx(state=dict(ctx.state), remote_id=out.remote_id))
    assert sandbox.live_articles() == []
    status = ch.check_url(out.url)
    assert not status.ok and "deleted" in status.reason
    assert ch.list_publications() == []
    ch.withdraw(post, make_ctx(state=dict(ctx.state), remote_id=out.remote_id))  # twice is fine


def test_mass_send_uses_clientmsgid(sandbox, tmp_path, assets):
    ch = make_channel(sandbox, tmp_path, mass_send=True)
    ctx = make_ctx(7)
    out = ch.publish(rich_post(assets), ctx)
    assert isinstance(out, Published) and out.remote_id.startswith("mass-")
    mass = sandbox.ledger()["mass"]
    assert len(mass) == 1 and mass[0]["clientmsgid"].endswith("delivery-7")
    # a retry after a crash right after the send: same clientmsgid, no second message
    crashed = dict(ctx.state, step="sending")
    crashed.pop("mass_msg_id")
    ch.publish(rich_post(assets), make_ctx(7, state=crashed))
    assert len(sandbox.ledger()["mass"]) == 1


# ---------------------------------------------------------------------------------------- sandbox
def test_sandbox_follows_the_documentation(sandbox):
    base = sandbox.base_url
    tok = requests.get(
        f"{base}/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": sandbox.appid, "secret": sandbox.secret},
    ).json()
    t = tok["access_token"]

    def post(path, data):
        # wechatpy sends JSON bytes with no Content-Type: the sandbox must still read it
        r = requests.post(f"{base}{path}", params={"access_token": t}, data=json.dumps(data).encode())
        assert "Content-Type" not in r.request.headers
        return r.json()

    yesterday = (datetime.now(BEIJING).date() - timedelta(days=1)).isoformat()
    today = datetime.now(BEIJING).date().isoformat()
    two_days = (datetime.now(BEIJING).date() - timedelta(days=2)).isoformat()
    assert post("/datacube/getarticlesummary", {"begin_date": two_days, "end_date": yesterday})["errcode"] == 61501
    assert post("/datacube/getarticlesummary", {"begin_date": today, "end_date": today})["errcode"] == 61501
    assert "list" in post("/datacube/getusersummary", {"begin_date": two_days, "end_date": yesterday})
    assert (
        post("/cgi-bin/draft/add", {"articles": [{"title": "t" * 33, "content": "x", "thumb_media_id": "m"}]})[
            "errcode"
        ]
        == 45003
    )
    r = requests.post(
        f"{base}/cgi-bin/media/uploadimg",
        params={"access_token": t},
        files={"media": ("a.gif", b"GIF89a....")},
    ).json()
    assert r["errcode"] == 40005
    # a new /token fetch leaves the old token working only for the overlap
    sandbox.configure(token_overlap=0)
    requests.get(
        f"{base}/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": sandbox.appid, "secret": sandbox.secret},
    )
    assert post("/cgi-bin/draft/count", {})["errcode"] == 40001
    assert requests.get(f"{base}/cgi-bin/draft/count").json()["errcode"] == 41001
    # a daily quota answers 45009 once used up
    t = requests.get(
        f"{base}/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": sandbox.appid, "secret": sandbox.secret},
    ).json()
    t = t["access_token"]
    sandbox.configure(daily_quotas={"/cgi-bin/openapi/quota/get": 1})
    assert post("/cgi-bin/openapi/quota/get", {"cgi_path": "/cgi-bin/draft/add"})["errcode"] == 0
    assert post("/cgi-bin/openapi/quota/get", {"cgi_path": "/cgi-bin/draft/add"})["errcode"] == 45009


def test_sandbox_runs_as_a_process_and_is_steered_over_http(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "channels.sandbox.wechat", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline()
        base = re.search(r"on (http://\S+)", line).group(1)
        assert requests.post(f"{base}/__sandbox__/faults", json={"kind": "quota_daily"}).json() == {"ok": True}
        tok = requests.get(
            f"{base}/cgi-bin/token",
            params={
                "grant_type": "client_credential",
                "appid": "wx5a9d0c0e0c0ffee0",
                "secret": "sandbox-app-secret-0123456789abcd",
            },
        ).json()
        r = requests.get(f"{base}/cgi-bin/draft/count", params={"access_token": tok["access_token"]}).json()
        assert r["errcode"] == 45009
        led = requests.get(f"{base}/__sandbox__/ledger").json()
        assert led["articles"] == [] and led["calls"]["/cgi-bin/draft/count"] == 1
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        proc.stdout.close()


def test_contract_harness(tmp_path):
    h = make_harness(tmp_path)
    try:
        out = run(h.channel, make_post(3), make_ctx(3))
        assert h.live_count() == 1 and "寒假" in h.remote_text(out.remote_id)
        h.inject("permanent")
        with pytest.raises(PermanentChannelError):
            h.channel.publish(make_post(4, title="另一则通知"), make_ctx(4))
        h.inject("transient")
        with pytest.raises(TransientChannelError):
            h.channel.publish(make_post(4, title="另一则通知"), make_ctx(4))
    finally:
        h.close()


def test_stable_token_endpoint_and_forced_refresh(sandbox, tmp_path):
    ch = make_channel(sandbox, tmp_path, token_endpoint="stable_token")
    assert ch.check_health().ok
    first = ch.client.access_token
    sandbox.inject("expire_token")
    assert ch.check_health().ok, "the rejected token is replaced (force_refresh), not handed out again"
    assert ch.client.access_token != first
    assert sandbox.ledger()["calls"]["/cgi-bin/stable_token"] == 2


def test_secret_and_token_never_appear_in_errors(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    sb = WeChatSandbox()  # never started: only its credentials are used
    sb.port = dead_port
    ch = make_channel(sb, tmp_path)
    with pytest.raises(TransientChannelError) as ei:
        ch._call("x", ch.client.draft.count)
    chain, exc = [], ei.value
    while exc is not None:
        chain.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    assert len(chain) >= 2 and not any(sb.secret in text for text in chain)
    assert sb.secret not in ch.check_health().detail


def test_media_deleted_on_wechat_side_is_uploaded_again(sandbox, tmp_path, assets):
    ch = make_channel(sandbox, tmp_path)
    run(ch, rich_post(assets, 1), make_ctx(1))
    sandbox.reset()  # WeChat forgot everything: tokens and permanent material
    run(ch, rich_post(assets, 2, title="第二篇通知"), make_ctx(2))
    led = sandbox.ledger()
    assert len(led["articles"]) == 1 and len(led["materials"]) == 1
    assert led["articles"][0]["thumb_media_id"] in led["materials"]


def test_digest_is_made_from_the_body_when_there_is_no_summary(sandbox, tmp_path, assets):
    ch = make_channel(sandbox, tmp_path)
    body = "<p>" + "根据学校校历，现将寒假放假安排通知如下。" * 20 + "</p><script>alert(1)</script>"
    out = run(ch, make_post(1, summary="", body_html=body, assets=(assets[0],)), make_ctx())
    news = requests.post(
        f"{sandbox.base_url}/cgi-bin/freepublish/getarticle",
        params={"access_token": ch.client.access_token},
        data=json.dumps({"article_id": out.remote_id}),
    ).json()["news_item"][0]
    assert 0 < len(news["digest"]) <= 128 and news["digest"].endswith("。")
    assert "<" not in news["digest"] and "alert" not in news["digest"]


def test_failing_to_get_a_token_is_never_ambiguous(sandbox, tmp_path):
    ch = make_channel(sandbox, tmp_path, timeout=1.0)
    sandbox.inject("timeout", path="/cgi-bin/token", seconds=2.0)
    with pytest.raises(TransientChannelError) as ei:
        ch._call("submitting", ch.client.draft.count, ambiguous=True)
    assert not isinstance(ei.value, AmbiguousOutcome) and "access token" in str(ei.value)
    assert sandbox.ledger()["calls"].get("/cgi-bin/draft/count") is None


def test_unreadable_callback_is_refused_not_crashing(sandbox, tmp_path):
    import hashlib

    ch = make_channel(sandbox, tmp_path)
    ts = str(int(time.time()))

    def q(nonce):
        sig = hashlib.sha1("".join(sorted([CALLBACK_TOKEN, ts, nonce])).encode()).hexdigest()
        return {"signature": sig, "timestamp": ts, "nonce": nonce}

    assert ch.handle_callback("POST", q("1"), {}, b"<xml><unclosed>").status == 400
    assert ch.handle_callback("POST", q("2"), {}, b"\xff\xfe").status == 400
    assert ch.handle_callback("POST", q("3"), {}, b"<xml>text only</xml>").status == 400
    bad_status = (
        b"<xml><MsgType>event</MsgType><Event>PUBLISHJOBFINISH</Event><PublishEventInfo>"
        b"<publish_id>1</publish_id><publish_status>x</publish_status></PublishEventInfo></xml>"
    )
    assert ch.handle_callback("POST", q("4"), {}, bad_status).status == 400
    q_aes = dict(q("5"), encrypt_type="aes", msg_signature="0" * 40)
    assert ch.handle_callback("POST", q_aes, {}, b"not xml").status == 400
    other = b"<xml><MsgType>event</MsgType><Event>subscribe</Event></xml>"
    assert ch.handle_callback("POST", q("6"), {}, other).status == 200


def test_short_lived_tokens_are_reused_until_they_lapse(tmp_path):
    with WeChatSandbox(token_ttl=30) as sb:
        ch = make_channel(sb, tmp_path)
        for _ in range(3):
            assert ch.check_health().ok
        assert sb.ledger()["tokens_issued"] == 1


WORKER = r"""
import json, sys
from pathlib import Path
from channels.wechat import WeChatChannel, WeChatConfig
from publisher.channel import Asset, DeliveryContext
from publisher.testing import make_env, make_post
from tests.channels.contract_wechat import FileKV

tmp, base, appid, cover_json = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
state_file = tmp / "state.json"
cover = Asset(**{**json.loads(cover_json), "path": Path(json.loads(cover_json)["path"])})
cfg = WeChatConfig(appid=appid, secret_env="PUBLISHER_TEST_WECHAT_SECRET", api_base=base, timeout=30)
ch = WeChatChannel("wechat", cfg, make_env(tmp, kv=FileKV(tmp / "kv.json")))
ctx = DeliveryContext(delivery_id=5, attempt=1, state={},
                      _saver=lambda st: state_file.write_text(json.dumps(st)))
ch.publish(make_post(5, assets=(cover,)), ctx)
"""


def test_worker_killed_between_submit_and_its_answer_never_publishes_twice(sandbox, tmp_path, assets):
    import dataclasses
    import os
    import signal

    from publisher.channel import DeliveryContext
    from tests.channels.contract_wechat import SECRET_ENV, FileKV

    cover = assets[0]
    os.environ[SECRET_ENV] = sandbox.secret
    sandbox.inject("timeout", path="/cgi-bin/freepublish/submit", seconds=30)
    cover_json = json.dumps({**dataclasses.asdict(cover), "path": str(cover.path)})
    repo = Path(__file__).resolve().parents[2]  # the worker imports tests.channels.contract_wechat
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(tmp_path), sandbox.base_url, sandbox.appid, cover_json], cwd=repo
    )
    state_file = tmp_path / "state.json"
    deadline = time.monotonic() + 20
    try:
        while not (sandbox.ledger()["jobs"] and json.loads(state_file.read_text()).get("step") == "submitting"):
            assert proc.poll() is None and time.monotonic() < deadline, "the worker never reached submit"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # the worker dies waiting for submit's answer
        proc.wait(timeout=5)
    state = json.loads(state_file.read_text())
    assert "publish_id" not in state

    ch = make_channel(sandbox, tmp_path, env=make_env(tmp_path, kv=FileKV(tmp_path / "kv.json")))
    ctx = DeliveryContext(delivery_id=5, attempt=2, state=state)
    out = run(ch, make_post(5, assets=(cover,)), ctx)
    led = sandbox.ledger()
    assert len(led["articles"]) == 1 and out.remote_id == led["articles"][0]["article_id"]
    assert led["calls"]["/cgi-bin/freepublish/submit"] == 1
    assert led["calls"]["/cgi-bin/material/add_material"] == 1, "the restarted worker reused the cache"


def test_publish_check_failure_is_permanent_and_nothing_is_submitted(sandbox, tmp_path, assets):
    ch = make_channel(sandbox, tmp_path)
    sandbox.inject("errcode", errcode=53503, path="/cgi-bin/freepublish/submit")
    ctx = make_ctx()
    with pytest.raises(PermanentChannelError, match="publish check") as ei:
        ch.publish(rich_post(assets), ctx)
    assert ei.value.code == 53503 and ctx.state["step"] == "drafted"
    assert sandbox.ledger()["jobs"] == []


# ------------------------------------------------------------------------------------- put-back
def test_put_back_after_a_take_down_publishes_a_new_article(make_app, sandbox, tmp_path, assets):
    """Taken off the item's channels (the article deleted), put back and approved again: a new
    article goes up (the delivery's state still names the deleted article: answering with it would
    publish nothing); a mass send's clientmsgid follows the generation."""
    from publisher.channel import DeliveryContext
    from tests.channels.contract_wechat import SECRET_ENV
    from tests.test_dispatch import approved_item, deliveries, run_once
    from tests.test_withdraw_in_flight import _approve, _edit

    wx = {
        "type": "wechat",
        "appid": sandbox.appid,
        "secret_env": SECRET_ENV,
        "api_base": sandbox.base_url,
        "poll_intervals": [0.2, 0.3],
        "default_cover": str(assets[0].path),
    }
    make_channel(sandbox, tmp_path)  # sets the secret's environment variable
    app = make_app(channels={"mem": {"type": "memory"}, "wechat": wx})
    item = approved_item(app, channels=["mem", "wechat"])
    assert run_once(app).get("done") == 2
    first = deliveries(app, item)["wechat"]
    _edit(app, item, channels=["mem"])
    _approve(app, item)
    assert run_once(app).get("done") == 2
    assert sandbox.live_articles() == []
    _edit(app, item, channels=["mem", "wechat"])
    _approve(app, item)
    assert run_once(app).get("done") == 2
    d = deliveries(app, item)["wechat"]
    live = sandbox.live_articles()
    assert [a["article_id"] for a in live] == [d.remote_id] and d.remote_id != first.remote_id
    assert d.state["generation"] == 1 and d.withdrawn_at is None
    ctx = DeliveryContext(delivery_id=d.id, attempt=1, state={"generation": 1})
    client_msg_id = f"publisher-{sandbox.appid}-{ctx.idempotency_key}"
    assert client_msg_id.endswith(f"delivery-{d.id}-g1")
