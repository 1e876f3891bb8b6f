"""The weekly sync against the WeChat sandbox, run twice with an article deleted in between.

Real HTTP to the sandbox, a real store: the pipeline publishes one article, somebody posts a second
one outside the pipeline, then deletes the first on WeChat's console. The sync must find the outside
article once, notice the deletion once, and change nothing when run again.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta

import pytest
import requests
from PIL import Image

from channels.sandbox.wechat import WeChatSandbox
from publisher.counting import periods, stats
from publisher.counting.sync import run_sync
from publisher.models import ChannelStat, Delivery, DeliveryStatus
from publisher.pipeline import content, workflow
from publisher.pipeline.worker import Dispatcher
from publisher.testing import make_ctx, make_env, make_post

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
    f.write_text(
        "---\ntitle: 寒假放假通知\ncategory: 公告公示\nchannels: [wechat]\ncover: cover.jpg\n"
        "cover_alt: 红色背景的封面图\n---\n"
        "学生1月12日起放假。\n",
        encoding="utf-8",
    )
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
    tok = requests.post(
        f"{sandbox.base_url}/cgi-bin/stable_token",
        timeout=5,
        json={"grant_type": "client_credential", "appid": sandbox.appid, "secret": sandbox.secret},
    )
    access = tok.json()["access_token"]
    r = requests.post(
        f"{sandbox.base_url}/cgi-bin/freepublish/delete?access_token={access}",
        json={"article_id": article_id, "index": 0},
        timeout=5,
    )
    assert r.json().get("errcode", 0) == 0, r.text


def test_sync_twice_with_a_deleted_article_in_between(make_app, sandbox, tmp_path):
    app = make_app(
        channels={
            "wechat": {
                "type": "wechat",
                "appid": sandbox.appid,
                "secret_env": SECRET_ENV,
                "api_base": sandbox.base_url,
                "poll_intervals": [0.05, 0.1],
                "token_endpoint": "stable_token",
            }
        }
    )
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

    start, end = periods.period(None, None, app.settings.zone)
    rows = stats.counts(app.engine, stats.StatsQuery(start=start, end=end, by=("channel",)))
    assert rows[0]["published"] == 2  # the pipeline's and the outside one, each once


def _cover_asset(tmp_path):
    import hashlib

    from publisher.channel import Asset

    p = tmp_path / "outside.jpg"
    Image.new("RGB", (900, 500), (20, 90, 160)).save(p)
    return Asset(
        sha256=hashlib.sha256(p.read_bytes()).hexdigest(),
        path=p,
        filename=p.name,
        content_type="image/jpeg",
        role="cover",
        width=900,
        height=500,
    )


def _wechat_app(make_app, sandbox):
    return make_app(
        channels={
            "wechat": {
                "type": "wechat",
                "appid": sandbox.appid,
                "secret_env": SECRET_ENV,
                "api_base": sandbox.base_url,
                "poll_intervals": [0.05, 0.1],
                "token_endpoint": "stable_token",
            }
        }
    )


def _post_outside(app, tmp_path, title: str, item_id: int) -> str:
    """An article posted on WeChat without the pipeline (the MP console: nothing of it in our store)."""
    from channels.wechat import WeChatChannel

    ours = app.channels["wechat"].channel
    channel = WeChatChannel("console", ours.config, make_env(tmp_path))
    post, ctx = make_post(item_id=item_id, title=title, assets=(_cover_asset(tmp_path),)), make_ctx(delivery_id=item_id)
    for _ in range(100):
        out = channel.publish(post, ctx)
        if type(out).__name__ == "Published":
            return out.remote_id
        time.sleep(0.05)
    raise AssertionError("the outside article was not published")


def _api(sandbox: WeChatSandbox, path: str, body: dict) -> dict:
    tok = requests.post(
        f"{sandbox.base_url}/cgi-bin/stable_token",
        timeout=5,
        json={"grant_type": "client_credential", "appid": sandbox.appid, "secret": sandbox.secret},
    )
    r = requests.post(f"{sandbox.base_url}{path}?access_token={tok.json()['access_token']}", json=body, timeout=5)
    return r.json()


def test_a_deleted_article_stays_listed_and_is_not_adopted(make_app, sandbox, tmp_path):
    """WeChat keeps a deleted article in freepublish/batchget with is_deleted true: the sync skips it."""
    app = _wechat_app(make_app, sandbox)
    kept = _post_outside(app, tmp_path, "校园开放日", 9001)
    gone = _post_outside(app, tmp_path, "已删除的推文", 9002)
    _delete_on_console(sandbox, gone)
    listed = _api(sandbox, "/cgi-bin/freepublish/batchget", {"offset": 0, "count": 20, "no_content": 1})
    assert listed["total_count"] == 2
    deleted = {it["article_id"]: it["content"]["news_item"][0]["is_deleted"] for it in listed["item"]}
    assert deleted == {kept: False, gone: True}

    first = run_sync(app).channels["wechat"]
    assert len(first.remote_added) == 1 and first.errors == []
    with app.session() as s:
        (d,) = s.exec(__import__("sqlmodel").select(Delivery)).all()
        assert d.remote_id == kept
    start, end = periods.period(None, None, app.settings.zone)
    assert stats.counts(app.engine, stats.StatsQuery(start=start, end=end))[0]["published"] == 1
    assert not run_sync(app).changed


def test_an_outside_article_deleted_later_is_taken_down_by_the_api(make_app, sandbox, tmp_path):
    """WeChat serves a deleted article's page with 200: the sync asks getarticle (is_deleted) instead."""
    app = _wechat_app(make_app, sandbox)
    rid = _post_outside(app, tmp_path, "校园开放日", 9001)
    first = run_sync(app).channels["wechat"]
    assert len(first.remote_added) == 1 and first.links_checked == 1 and first.errors == []
    _delete_on_console(sandbox, rid)
    with app.session() as s:
        (d,) = s.exec(__import__("sqlmodel").select(Delivery)).all()
    second = run_sync(app).channels["wechat"]
    assert second.taken_down == [d.id] and second.errors == []
    assert not run_sync(app).changed


def test_no_answer_from_wechat_is_not_a_verdict(make_app, sandbox, tmp_path):
    """getarticle failing (busy, HTTP 500, a refused call) leaves the article as it was, and says so."""
    app = _wechat_app(make_app, sandbox)
    delivery_id = _publish_through_pipeline(app, tmp_path)
    assert run_sync(app).channels["wechat"].links_checked == 1
    for kind, params in (("busy", {}), ("http500", {}), ("errcode", {"errcode": 48001})):
        sandbox.inject(kind, path="/cgi-bin/freepublish/getarticle", **params)
        res = run_sync(app).channels["wechat"]
        assert res.taken_down == [] and res.links_checked == 0, kind
        assert len(res.errors) == 1 and "left as they were" in res.errors[0], res.errors
        with app.session() as s:
            assert s.get(Delivery, delivery_id).taken_down_at is None
    # a definite answer: deleted on the console
    with app.session() as s:
        article_id = s.get(Delivery, delivery_id).remote_id
    _delete_on_console(sandbox, article_id)
    assert run_sync(app).channels["wechat"].taken_down == [delivery_id]
    # and WeChat not answering after that does not bring it back either
    sandbox.inject("http500", path="/cgi-bin/freepublish/getarticle")
    res = run_sync(app).channels["wechat"]
    assert res.restored == [] and res.taken_down == []


def _served(sandbox: WeChatSandbox, day) -> dict[str, dict]:
    """What the sandbox's datacube serves for ``day``: msg_data_id -> row."""
    rows = _api(sandbox, "/datacube/getarticlesummary", {"begin_date": str(day), "end_date": str(day)})["list"]
    return {r["msgid"].split("_")[0]: r for r in rows}


def test_two_outside_articles_with_the_same_title_get_their_own_stats(make_app, sandbox, tmp_path):
    """A weekly "本周工作安排" posted by hand twice: each article's rows by its msg_data_id, not its title."""
    app = _wechat_app(make_app, sandbox)
    older = _post_outside(app, tmp_path, "本周工作安排", 9001)
    newer = _post_outside(app, tmp_path, "本周工作安排", 9002)
    sandbox.backdate(older, 10)
    sandbox.backdate(newer, 3)
    first = run_sync(app).channels["wechat"]
    assert len(first.remote_added) == 2
    msg = {a["article_id"]: a["msg_data_id"] for a in sandbox.ledger()["articles"]}
    with app.session() as s:
        stored = [
            (r.remote_id, r.day, r.metric, r.value)
            for r in s.exec(__import__("sqlmodel").select(ChannelStat))
            if r.remote_id
        ]
    assert {rid for rid, *_ in stored} == {older, newer}
    days = {day for _, day, *_ in stored}
    served = {day: _served(sandbox, day) for day in days}
    for rid in (older, newer):
        reads = {day: v for r, day, metric, v in stored if r == rid and metric == "reads"}
        assert reads == {d: served[d][msg[rid]]["int_page_read_count"] for d in days if msg[rid] in served[d]}
        assert reads, rid
    with app.session() as s:
        every_row = len(s.exec(__import__("sqlmodel").select(ChannelStat)).all())
    assert first.stats_changed == every_row  # each value written once, none overwritten by a namesake's
    assert not run_sync(app).changed


def test_the_dashboard_reads_followers_at_the_periods_last_day(make_app, sandbox, tmp_path):
    """getusercumulate is a running total: a week shows the last day's figure, not the sum of seven."""
    from publisher.counting import dashboard

    app = _wechat_app(make_app, sandbox)
    _post_outside(app, tmp_path, "校园开放日", 9001)
    run_sync(app)
    with app.session() as s:
        totals = {
            r.day: r.value
            for r in s.exec(__import__("sqlmodel").select(ChannelStat).where(ChannelStat.metric == "followers"))
        }
        new = {
            r.day: r.value
            for r in s.exec(__import__("sqlmodel").select(ChannelStat).where(ChannelStat.metric == "new_followers"))
        }
    assert len(totals) >= 3
    last = max(totals)
    served = _api(sandbox, "/datacube/getusercumulate", {"begin_date": str(last), "end_date": str(last)})
    assert totals[last] == served["list"][0]["cumulate_user"]
    for first in (min(totals), last - timedelta(days=1)):
        start, end = periods.period(first, last, app.settings.zone)
        figures = {r["metric"]: r["value"] for r in dashboard.engagement(app.engine, start, end, app.settings.zone)}
        assert figures["followers"] == totals[last]
        assert figures["new_followers"] == sum(v for d, v in new.items() if first <= d <= last)  # flows add up
    # a period ending before the last day: the total on its own last day
    start, end = periods.period(min(totals), last - timedelta(days=1), app.settings.zone)
    figures = {r["metric"]: r["value"] for r in dashboard.engagement(app.engine, start, end, app.settings.zone)}
    assert figures["followers"] == totals[last - timedelta(days=1)]


def test_each_day_of_stats_is_fetched_once_whatever_the_time_of_the_sync(make_app, sandbox, tmp_path):
    """Syncs on Mondays at 03:00 (the default cron), mid-week around 08:00 and late on a Saturday: the
    datacube is asked for every day exactly once, Sundays included, and what is stored is what it served."""
    from zoneinfo import ZoneInfo

    beijing = ZoneInfo("Asia/Shanghai")
    app = _wechat_app(make_app, sandbox)
    delivery_id = _publish_through_pipeline(app, tmp_path)
    with app.session() as s:
        ours = s.get(Delivery, delivery_id).remote_id
    outside = _post_outside(app, tmp_path, "校园开放日", 9001)
    for rid in (ours, outside):
        sandbox.backdate(rid, 50)
    today = datetime.now(beijing).date()
    monday = today - timedelta(days=35 + (today - timedelta(days=35)).weekday())

    def at(days: int, hour: int, minute: int = 0) -> datetime:
        d = monday + timedelta(days=days)
        return datetime(d.year, d.month, d.day, hour, minute, tzinfo=beijing)

    runs = [at(0, 3), at(0, 3, 5), at(7, 3), at(9, 7, 59), at(9, 8, 1), at(12, 23, 30), at(14, 3), at(14, 3, 1)]
    summaries = [run_sync(app, now=now) for now in runs]
    assert all(not s.channels["wechat"].errors for s in summaries), [s.channels["wechat"].errors for s in summaries]
    assert not summaries[1].changed and not summaries[-1].changed  # a second sync straight after changes nothing

    first = monday - timedelta(days=2 + 6)  # the first run (Monday 03:00) ends on Saturday, 7 days back
    last = monday + timedelta(days=12)  # the last run (Monday 03:00) ends on Saturday
    every_day = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    asked: dict[str, list] = {}
    for call in sandbox.ledger()["datacube"]:
        b, e = (datetime.strptime(call[k], "%Y-%m-%d").date() for k in ("begin_date", "end_date"))
        asked.setdefault(call["path"], []).extend(b + timedelta(days=i) for i in range((e - b).days + 1))
    for path in ("getarticlesummary", "getusersummary", "getusercumulate"):
        assert sorted(asked[path]) == every_day, path  # each day once: Sundays too, none twice

    msg = {a["article_id"]: a["msg_data_id"] for a in sandbox.ledger()["articles"]}
    with app.session() as s:
        stored = {(r.remote_id, r.day, r.metric): r.value for r in s.exec(__import__("sqlmodel").select(ChannelStat))}
    expected: dict[tuple, int] = {}
    for day in every_day:
        served = _served(sandbox, day)
        for rid in (ours, outside):
            if msg[rid] in served:
                row = served[msg[rid]]
                expected |= {
                    (rid, day, "reads"): row["int_page_read_count"],
                    (rid, day, "readers"): row["int_page_read_user"],
                    (rid, day, "shares"): row["share_count"],
                    (rid, day, "favourites"): row["add_to_fav_count"],
                }
        span = {"begin_date": str(day), "end_date": str(day)}
        expected[("", day, "followers")] = _api(sandbox, "/datacube/getusercumulate", span)["list"][0]["cumulate_user"]
        flows = _api(sandbox, "/datacube/getusersummary", span)["list"]
        expected[("", day, "new_followers")] = sum(r["new_user"] for r in flows)
        expected[("", day, "unfollows")] = sum(r["cancel_user"] for r in flows)
    assert stored == expected
    # both articles, ours and the one posted outside the pipeline, have a row for every day WeChat
    # served them (it leaves out an article's days with fewer than 3 reads, shares and favourites
    # together, so the two sets of days may differ on the old articles' quiet days)
    for rid in (ours, outside):
        served_days = {day for day in every_day if msg[rid] in _served(sandbox, day)}
        assert served_days, rid
        assert {k[1] for k in stored if k[0] == rid} == served_days, rid
