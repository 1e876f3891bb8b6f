"""The weekly sync against the WeChat sandbox, run twice with an article deleted in between.

Real HTTP to the sandbox, a real store: the pipeline publishes one article, somebody posts a second
one outside the pipeline, then deletes the first on WeChat's console. The sync must find the outside
article once, notice the deletion once, and change nothing when run again.
"""

from __future__ import annotations

import os
import time
from datetime import datetime

import pytest
import requests
from PIL import Image

from channels.sandbox.wechat import WeChatSandbox
from publisher import content, stats, workflow
from publisher.dispatch import Dispatcher
from publisher.models import Delivery, DeliveryStatus
from publisher.sync import run_sync
from publisher.testing import make_ctx, make_post

SECRET_ENV = "PUBLISHER_TEST_SYNC_WECHAT_SECRET"


@pytest.fixture
def sandbox():
    sb = WeChatSandbox(publish_delay=0.05)
    sb.start()
    os.environ[SECRET_ENV] = sb.secret
    yield sb
    sb.stop()


def _publish_through_pipeline(app, tmp_path) -> int:
    Image.new("RGB", (900, 500), (163, 31, 36)).save(tmp_path / "cover.jpg")
    f = tmp_path / "a.md"
    f.write_text("---\ntitle: 寒假放假通知\ncategory: 公告公示\nchannels: [wechat]\ncover: cover.jpg\n---\n"
                 "学生1月12日起放假。\n", encoding="utf-8")  # fmt: skip
    with app.session() as s:
        d = content.read_item_file(f, media_dir=app.settings.media_dir, max_body_bytes=10**6, max_asset_bytes=10**7)
        item = workflow.create_item(app.ctx, s, author=workflow.get_user(s, "ed"), draft=d)
        workflow.submit(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, "ed"))
        workflow.review(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, "head"), approve=True)
        workflow.review(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, "sec"), approve=True)
        workflow.schedule(app.ctx, s, item_id=item.id, at=datetime.now().astimezone())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True)
        with app.session() as s:
            dl = s.exec(__import__("sqlmodel").select(Delivery)).one()
            if dl.status == DeliveryStatus.DONE:
                return dl.id
        time.sleep(0.1)
    raise AssertionError("the pipeline did not publish to the WeChat sandbox")


def _delete_on_console(sandbox: WeChatSandbox, article_id: str) -> None:
    """What a person does in the MP console: delete the article (through the API, as the console does)."""
    tok = requests.post(f"{sandbox.base_url}/cgi-bin/stable_token", timeout=5, json={
        "grant_type": "client_credential", "appid": sandbox.appid, "secret": sandbox.secret})  # fmt: skip
    access = tok.json()["access_token"]
    r = requests.post(f"{sandbox.base_url}/cgi-bin/freepublish/delete?access_token={access}",
                      json={"article_id": article_id, "index": 0}, timeout=5)  # fmt: skip
    assert r.json().get("errcode", 0) == 0, r.text


def test_sync_twice_with_a_deleted_article_in_between(make_app, sandbox, tmp_path):
    app = make_app(channels={"wechat": {
        "type": "wechat", "appid": sandbox.appid, "secret_env": SECRET_ENV, "api_base": sandbox.base_url,
        "poll_intervals": [0.05, 0.1], "token_endpoint": "stable_token",
    }})  # fmt: skip
    delivery_id = _publish_through_pipeline(app, tmp_path)
    with app.session() as s:
        article_id = s.get(Delivery, delivery_id).remote_id
    assert [a["article_id"] for a in sandbox.live_articles()] == [article_id]

    # somebody posts an article on WeChat without the pipeline
    channel = app.channels["wechat"].channel
    outside = make_post(item_id=9001, title="校园开放日", assets=(_cover_asset(tmp_path),))
    ctx = make_ctx(delivery_id=9001)
    for _ in range(100):
        out = channel.publish(outside, ctx)
        if type(out).__name__ == "Published":
            break
        time.sleep(0.05)
    assert len(sandbox.live_articles()) == 2

    first = run_sync(app)
    assert first.channels["wechat"].remote_added and not first.channels["wechat"].taken_down
    second = run_sync(app)
    assert not second.changed, second

    _delete_on_console(sandbox, article_id)
    third = run_sync(app)
    assert third.channels["wechat"].taken_down == [delivery_id]
    fourth = run_sync(app)
    assert not fourth.changed, fourth

    start, end = stats.period(None, None, app.settings.zone)
    rows = stats.counts(app.engine, stats.StatsQuery(start=start, end=end, by=("channel",)))
    assert rows[0]["published"] == 2  # the pipeline's and the outside one, each once


def _cover_asset(tmp_path):
    import hashlib

    from publisher.channel import Asset

    p = tmp_path / "outside.jpg"
    Image.new("RGB", (900, 500), (20, 90, 160)).save(p)
    return Asset(sha256=hashlib.sha256(p.read_bytes()).hexdigest(), path=p, filename=p.name,
                 content_type="image/jpeg", role="cover", width=900, height=500)  # fmt: skip
