"""The weekly sync against a channel that can report stats, check links and list what it shows."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from publisher.channel import (
    Channel,
    ChannelConfig,
    DeliveryContext,
    LinkStatus,
    Post,
    Published,
    RemotePublication,
    StatRow,
)
from publisher.counting.sync import run_sync
from publisher.models import AuditLog, ChannelStat, Delivery, Item, LinkCheck, SyncRun
from publisher.pipeline import content, registry, workflow
from publisher.pipeline.worker import Dispatcher
from publisher.scheduler import periodic_jobs


class SiteConfig(ChannelConfig):
    pass


class ListingChannel(Channel):
    """Like an Official Account: articles with ids and URLs, read counts, and a list of what is out."""

    type_name = "listing"
    Config = SiteConfig
    supports_stats = True
    supports_listing = True
    lock = threading.Lock()
    #: remote id -> article; "deleted" marks one taken down on the platform
    articles: dict[str, dict[str, Any]] = {}
    calls: dict[str, int] = {}
    #: figures for every day asked for (True), or only for the last (False)
    per_day = False

    @classmethod
    def reset(cls) -> None:
        cls.articles.clear()
        cls.calls.clear()
        cls.per_day = False

    @classmethod
    def post_by_hand(cls, rid: str, title: str, at: datetime) -> None:
        cls.articles[rid] = {
            "title": title,
            "url": f"https://mp.example.test/s/{rid}",
            "at": at,
            "deleted": False,
            "reads": 5,
        }

    def _count(self, what: str) -> None:
        self.calls[what] = self.calls.get(what, 0) + 1

    def publish(self, post: Post, ctx: DeliveryContext) -> Published:
        rid = f"a{ctx.delivery_id}"
        with self.lock:
            self.post_by_hand(rid, post.title, datetime.now(UTC))
            self.articles[rid]["reads"] = 100
        return Published(url=self.articles[rid]["url"], remote_id=rid)

    def fetch_stats(self, remote_ids: Iterable[str], since: date, until: date) -> list[StatRow]:
        self._count("stats")
        ids = set(remote_ids)
        days = [since + timedelta(days=i) for i in range((until - since).days + 1)] if self.per_day else [until]
        return [
            row
            for day in days
            for row in [
                StatRow(day=day, metric="reads", value=a["reads"], remote_id=rid)
                for rid, a in self.articles.items()
                if rid in ids and not a["deleted"]
            ]
            + [StatRow(day=day, metric="followers", value=1234)]
        ]

    def check_url(self, url: str) -> LinkStatus:
        self._count("check")
        for a in self.articles.values():
            if a["url"] == url:
                if a.get("busy"):  # the platform's API did not answer: no verdict
                    return LinkStatus(ok=False, reason="platform busy")
                if a["deleted"]:  # the platform's API says so: as definite as a 410
                    return LinkStatus(ok=False, status=410, reason="deleted by the author")
                return LinkStatus(ok=True)
        return LinkStatus(ok=False, status=404, reason="Not Found")

    def list_publications(self, since: datetime | None = None) -> list[RemotePublication]:
        self._count("list")
        return [
            RemotePublication(remote_id=rid, title=a["title"], url=a["url"], published_at=a["at"])
            for rid, a in self.articles.items()
            if not a["deleted"] and (since is None or a["at"] >= since)
        ]


@pytest.fixture
def sync_app(make_app, monkeypatch):
    real = registry.available_channel_types
    monkeypatch.setattr(registry, "available_channel_types", lambda: {**real(), "listing": ListingChannel})
    ListingChannel.reset()
    yield make_app(channels={"wx": {"type": "listing"}, "mem": {"type": "memory"}}, sync={"check_links": True})
    ListingChannel.reset()


def _publish(app, tmp_path, title: str) -> int:
    f = tmp_path / f"{title}.md"
    f.write_text(f"---\ntitle: {title}\ncategory: 新闻\nchannels: [wx]\n---\n正文\n", encoding="utf-8")
    with app.session() as s:
        draft = content.read_item_file(f, media_dir=app.settings.media_dir, max_body_bytes=10**6, max_asset_bytes=10**6)
        item = workflow.create_item(app.ctx, s, author=workflow.get_user(s, "ed"), draft=draft)
        workflow.submit(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, "ed"))
        workflow.review(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, "head"), approve=True)
        workflow.review(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, "sec"), approve=True)
        workflow.schedule(app.ctx, s, item_id=item.id, at=datetime.now(UTC))
    assert Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True).outcomes["done"] == 1
    return item.id


def _snapshot(app) -> dict[str, list]:
    """Everything the sync may change, except its own sync_run rows."""
    out = {}
    with app.engine.connect() as c:
        for t in (Item, Delivery, ChannelStat, LinkCheck):
            cols = [col for col in t.__table__.c if col.name not in ("updated_at",)]
            out[t.__tablename__] = [tuple(r) for r in c.execute(sa.select(*cols).order_by(cols[0]))]
        out["audit"] = c.execute(
            sa.select(sa.func.count()).select_from(AuditLog.__table__).where(AuditLog.__table__.c.entity != "sync")
        ).scalar_one()
        c.rollback()
    return out


def test_sync_twice_with_an_article_deleted_in_between(sync_app, tmp_path):
    app = sync_app
    kept = _publish(app, tmp_path, "开学典礼")
    gone = _publish(app, tmp_path, "招生宣传")
    ListingChannel.post_by_hand("hand1", "编辑在后台直接发布的推文", datetime(2022, 5, 4, 1, 0, tzinfo=UTC))

    first = run_sync(app)
    wx = first.channels["wx"]
    assert wx.errors == [] and wx.links_checked == 3 and wx.taken_down == []
    assert wx.stats_changed == 4  # reads of the three articles + the account's followers
    assert len(wx.remote_added) == 1  # the hand-made post, once; the pipeline's own two are matched by remote id
    with app.session() as s:
        found = s.get(Item, wx.remote_added[0])
        assert found.origin == "remote" and found.title == "编辑在后台直接发布的推文"
        (d,) = s.exec(select(Delivery).where(Delivery.item_id == found.id)).all()
        assert d.remote_id == "hand1" and d.status == "done" and d.published_at == datetime(2022, 5, 4, 1, tzinfo=UTC)

    # running again changes nothing
    before = _snapshot(app)
    second = run_sync(app)
    assert not second.changed and _snapshot(app) == before

    # the editors delete one article on the platform; the next sync notices, once
    with app.session() as s:
        gone_delivery = s.exec(select(Delivery).where(Delivery.item_id == gone)).one()
    ListingChannel.articles[gone_delivery.remote_id]["deleted"] = True
    ListingChannel.articles[f"a{gone_delivery.id - 1}"]["reads"] = 150  # the kept one was read more
    third = run_sync(app, now=datetime.now(UTC) + timedelta(days=1))  # a day later: one more day of figures
    assert third.channels["wx"].taken_down == [gone_delivery.id]
    # the new day's reads of the two articles still up, and the followers
    assert third.channels["wx"].stats_changed == 3 and third.channels["wx"].remote_added == []
    with app.session() as s:
        d = s.get(Delivery, gone_delivery.id)
        assert d.taken_down_at is not None
        (check,) = s.exec(select(LinkCheck)).all()
        assert check.delivery_id == d.id and not check.ok and check.reason == "deleted by the author"
        assert s.exec(select(AuditLog).where(AuditLog.action == "taken_down", AuditLog.entity_id == d.id)).one()
        kept_d = s.exec(select(Delivery).where(Delivery.item_id == kept)).one()
        reads = s.exec(
            select(ChannelStat).where(ChannelStat.remote_id == kept_d.remote_id).order_by(ChannelStat.day)
        ).all()
        assert [r.value for r in reads] == [100, 150] and reads[1].day - reads[0].day == timedelta(days=1)
        runs = list(s.exec(select(SyncRun).order_by(SyncRun.id)))
        assert [r.taken_down for r in runs] == [0, 0, 1] and all(r.finished_at for r in runs)
        assert runs[0].remote_added == 1 and runs[0].detail["wx"]["remote_added"] == [found.id]
    before = _snapshot(app)
    assert not run_sync(app).changed and _snapshot(app) == before

    # it comes back (restored from the recycle bin): recorded as restored
    ListingChannel.articles[gone_delivery.remote_id]["deleted"] = False
    assert run_sync(app).channels["wx"].restored == [gone_delivery.id]
    with app.session() as s:
        assert s.get(Delivery, gone_delivery.id).taken_down_at is None


def test_a_failing_channel_is_recorded_not_fatal(sync_app, tmp_path, monkeypatch):
    from publisher.channel import TransientChannelError

    def broken(self, since=None):
        raise TransientChannelError("platform busy")

    _publish(sync_app, tmp_path, "通知")
    # monkeypatch puts the method back (a `del` would leave the class without its own listing)
    monkeypatch.setattr(ListingChannel, "list_publications", broken)
    summary = run_sync(sync_app)
    assert summary.channels["wx"].errors == ["listing: platform busy"]
    assert summary.channels["wx"].links_checked == 1 and summary.channels["wx"].stats_changed == 2
    with sync_app.session() as s:
        assert s.exec(select(SyncRun)).one().errors == 1


def test_the_scheduler_finds_the_weekly_job_and_the_display_end(sync_app):
    from publisher.scheduler import end_due_displays

    job, display, registers = periodic_jobs(sync_app)
    assert registers.name == "register-deadlines"  # tests/test_notify_events.py
    assert job.name == "weekly-sync" and job.run is run_sync
    nxt = job.trigger.get_next_fire_time(None, datetime(2026, 11, 26, tzinfo=UTC))
    assert nxt.astimezone(sync_app.settings.zone).strftime("%a %H:%M") == "Mon 03:00"
    assert nxt - datetime(2026, 11, 26, tzinfo=UTC) < timedelta(days=7)
    # the 公示期 take-downs: every minute, on the minute (one period key per minute across workers)
    assert display.name == "display-end" and display.run is end_due_displays
    nxt = display.trigger.get_next_fire_time(None, datetime(2026, 11, 26, 0, 0, 30, tzinfo=UTC))
    assert nxt == datetime(2026, 11, 26, 0, 1, tzinfo=UTC)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_cli_sync(sync_app, store_url, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from publisher.cli import app as cli

    settings = tmp_path / "settings.toml"
    settings.write_text(
        f'database_url = "{store_url}"\ndata_dir = "{tmp_path}"\n[channels.wx]\ntype = "listing"\n', encoding="utf-8"
    )
    ListingChannel.post_by_hand("h9", "手工推文", datetime(2022, 1, 1, tzinfo=UTC))
    r = CliRunner().invoke(cli, ["--settings", str(settings), "sync"])
    assert r.exit_code == 0, r.output
    assert "changed: yes" in r.output
    r = CliRunner().invoke(cli, ["--settings", str(settings), "sync"])
    assert "changed: nothing" in r.output, r.output


def test_default_link_check_over_http(make_app):
    """Channels without their own check: an HTTP GET; a 404 is taken down, no answer is not."""
    import http.server

    from publisher.counting import ledger

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            codes = {"/ok.htm": 200, "/busy.htm": 503, "/gone.htm": 410, "/flaky.htm": Handler.flaky}
            self.send_response(codes.get(self.path, 404))
            self.end_headers()

        flaky = 404

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        app = make_app(channels={"city_portal": {"type": "memory"}})
        csv_text = (
            "title,category,department,channel,published_at,url\n"
            f"在,公告公示,校长办公室,city_portal,2022-03-01,{base}/ok.htm\n"
            f"删了,公告公示,校长办公室,city_portal,2022-03-01,{base}/gone.htm\n"
            f"没了,公告公示,校长办公室,city_portal,2022-03-01,{base}/missing.htm\n"
            f"忙,公告公示,校长办公室,city_portal,2022-03-01,{base}/busy.htm\n"
            f"时好时坏,公告公示,校长办公室,city_portal,2022-03-01,{base}/flaky.htm\n"
            "没网,公告公示,校长办公室,city_portal,2022-03-01,http://127.0.0.1:1/x.htm\n"
        )
        with app.session() as s:
            ledger.import_csv(app.ctx, s, data=csv_text.encode(), source="t.csv", actor="admin")
        first = run_sync(app).channels["city_portal"]
        assert first.links_checked == 4 and len(first.taken_down) == 3
        assert len(first.errors) == 1 and first.errors[0].startswith("2 URL(s) could not be checked, left as")
        with app.session() as s:
            down = s.exec(select(Delivery).where(col(Delivery.taken_down_at).is_not(None))).all()
            assert sorted(d.url.rsplit("/", 1)[1] for d in down) == ["flaky.htm", "gone.htm", "missing.htm"]
        assert not run_sync(app).changed
        # a page taken down that now answers 500 is not back, nor gone any more surely than before
        Handler.flaky = 500
        again = run_sync(app).channels["city_portal"]
        assert again.restored == [] and again.taken_down == [] and again.errors[0].startswith("3 URL(s)")
        Handler.flaky = 200
        assert len(run_sync(app).channels["city_portal"].restored) == 1
    finally:
        server.shutdown()
        server.server_close()


def test_no_answer_from_the_channels_own_check_is_not_a_verdict(sync_app, tmp_path):
    """The channel's own check failing (its API busy) leaves the article as it was, and says so."""
    app = sync_app
    _publish(app, tmp_path, "通知")
    with app.session() as s:
        d = s.exec(select(Delivery)).one()
    assert run_sync(app).channels["wx"].links_checked == 1
    ListingChannel.articles[d.remote_id]["busy"] = True
    res = run_sync(app).channels["wx"]
    assert res.taken_down == [] and res.links_checked == 0
    assert res.errors == [
        f"1 URL(s) could not be checked, left as they were; first: {d.url} (no answer: platform busy)"
    ]
    ListingChannel.articles[d.remote_id].update(busy=False, deleted=True)
    assert run_sync(app).channels["wx"].taken_down == [d.id]
    ListingChannel.articles[d.remote_id].update(busy=True, deleted=False)
    res = run_sync(app).channels["wx"]
    assert res.restored == [] and res.taken_down == [] and len(res.errors) == 1
    with app.session() as s:
        assert s.get(Delivery, d.id).taken_down_at is not None


def test_an_article_found_late_gets_its_earlier_days_once(sync_app):
    """Posted by hand five days ago, listed only now: the days before the window are fetched for it, once."""
    app = sync_app
    ListingChannel.per_day = True
    now = datetime.now(UTC)
    day = now.astimezone(app.settings.zone).date()
    assert run_sync(app, now=now).channels["wx"].stats_through == str(day - timedelta(days=1))
    ListingChannel.post_by_hand("late1", "迟到的推文", now - timedelta(days=5))
    second = run_sync(app, now=now + timedelta(days=2)).channels["wx"]
    assert len(second.remote_added) == 1
    assert (second.stats_from, second.stats_through) == (str(day), str(day + timedelta(days=1)))
    with app.session() as s:
        days = [r.day for r in s.exec(select(ChannelStat).where(ChannelStat.remote_id == "late1"))]
    assert sorted(days) == [day + timedelta(days=i) for i in range(-5, 2)]
    assert second.stats_changed == 7 + 2  # its seven days, and the followers of the two new ones
    third = run_sync(app, now=now + timedelta(days=3)).channels["wx"]
    assert third.stats_changed == 2 and ListingChannel.calls["stats"] == 4  # one new day; no second backfill
