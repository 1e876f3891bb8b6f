"""The to-post-by-hand queue end to end: queued, waiting, recorded, counted."""

from __future__ import annotations

import pytest

from publisher.counting import periods, stats
from publisher.errors import InvalidInput, NotAllowed
from publisher.models import Delivery, DeliveryStatus, ItemStatus
from publisher.pipeline import content, workflow
from publisher.pipeline.worker import Dispatcher


def _approved_item(app, tmp_path, channels):
    f = tmp_path / "n.md"
    f.write_text(f"---\ntitle: 招聘公告\ncategory: 招聘信息\nchannels: {channels}\n---\n正文\n", encoding="utf-8")
    with app.session() as s:
        d = content.read_item_file(f, media_dir=app.settings.media_dir, max_body_bytes=10**6, max_asset_bytes=10**6)
        item = workflow.create_item(app.ctx, s, author=workflow.get_user(s, "ed"), draft=d)
        workflow.submit(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, "ed"))
        workflow.review(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, "head"), approve=True)
        workflow.review(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, "sec"), approve=True)
        workflow.schedule(app.ctx, s, item_id=item.id, at=__import__("datetime").datetime.now().astimezone())
    return item.id


def test_manual_delivery_waits_then_counts_once_recorded(make_app, tmp_path):
    app = make_app(channels={"mem": {"type": "memory"}, "city_portal": {"type": "manual", "place": "city_portal"}})
    item_id = _approved_item(app, tmp_path, "[mem, city_portal]")
    Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True)
    with app.session() as s:
        d = s.exec(__import__("sqlmodel").select(Delivery).where(Delivery.channel == "city_portal")).one()
        assert d.status == DeliveryStatus.WAITING
        assert "by hand" in (d.note or "")
        assert workflow.get_item(s, item_id).status == ItemStatus.SCHEDULED
        kit = app.channels["city_portal"].channel.copy_kit(
            workflow.build_post(app.ctx, s, workflow.get_item(s, item_id))
        )
        assert "招聘公告" in kit
    with pytest.raises(InvalidInput), app.session() as s:
        workflow.record_manual(app.ctx, s, delivery_id=d.id, actor="ed", url="www.example.com/no-scheme")
    with app.session() as s:
        workflow.record_manual(app.ctx, s, delivery_id=d.id, actor="ed", url="https://www.qqhr.gov.cn/a/1.html")
    with app.session() as s:
        assert workflow.get_item(s, item_id).status == ItemStatus.PUBLISHED
    start, end = periods.period(None, None, app.settings.zone)
    rows = stats.counts(app.engine, stats.StatsQuery(start=start, end=end, by=("channel",)))
    assert {r["channel"]: r["published"] for r in rows} == {"mem": 1, "city_portal": 1}


def test_not_applicable_is_done_but_not_counted_and_needs_a_reason(make_app, tmp_path):
    app = make_app(channels={"paper": {"type": "manual", "place": "newspaper"}})
    _approved_item(app, tmp_path, "[paper]")
    Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True)
    with app.session() as s:
        d = s.exec(__import__("sqlmodel").select(Delivery)).one()
    with pytest.raises(InvalidInput), app.session() as s:
        workflow.record_manual(app.ctx, s, delivery_id=d.id, actor="ed", not_applicable="  ")
    with app.session() as s:
        workflow.record_manual(app.ctx, s, delivery_id=d.id, actor="ed", not_applicable="报社未采用")
    with app.session() as s:
        d = s.get(Delivery, d.id)
        assert d.status == DeliveryStatus.DONE and d.published_at is None and "报社未采用" in d.note
    start, end = periods.period(None, None, app.settings.zone)
    assert all(r["published"] == 0 for r in stats.counts(app.engine, stats.StatsQuery(start=start, end=end)))


def test_recording_is_refused_for_an_item_without_its_two_approvals(make_app, tmp_path):
    app = make_app(channels={"paper": {"type": "manual", "place": "newspaper"}})
    f = tmp_path / "n.md"
    f.write_text("---\ntitle: t\ncategory: 新闻\nchannels: [paper]\n---\nx\n", encoding="utf-8")
    with app.session() as s:
        d = content.read_item_file(f, media_dir=app.settings.media_dir, max_body_bytes=10**6, max_asset_bytes=10**6)
        item = workflow.create_item(app.ctx, s, author=workflow.get_user(s, "ed"), draft=d)
        # a delivery row forged straight into the store, bypassing the workflow
        s.add(Delivery(item_id=item.id, channel="paper"))
    with app.session() as s:
        did = s.exec(__import__("sqlmodel").select(Delivery)).one().id
    with pytest.raises(NotAllowed), app.session() as s:
        workflow.record_manual(app.ctx, s, delivery_id=did, actor="ed", url="https://example.com/x")


def test_scheduling_an_item_whose_channel_was_removed_says_so(make_app, tmp_path):
    app = make_app(channels={"mem": {"type": "memory"}, "old": {"type": "memory"}})
    f = tmp_path / "n.md"
    f.write_text("---\ntitle: t\ncategory: 新闻\nchannels: [mem, old]\n---\nx\n", encoding="utf-8")
    with app.session() as s:
        d = content.read_item_file(f, media_dir=app.settings.media_dir, max_body_bytes=10**6, max_asset_bytes=10**6)
        item = workflow.create_item(app.ctx, s, author=workflow.get_user(s, "ed"), draft=d)
        workflow.submit(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, "ed"))
        workflow.review(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, "head"), approve=True)
        workflow.review(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, "sec"), approve=True)
    del app.channels["old"]  # settings.toml edited, the worker restarted without it
    with pytest.raises(InvalidInput, match="old, no longer configured"), app.session() as s:
        workflow.schedule(app.ctx, s, item_id=item.id, at="2099-01-01T09:00+08:00")
    with app.session() as s:
        assert workflow.get_item(s, item.id).status == ItemStatus.APPROVED


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_configured_label_names_the_place_everywhere(make_app):
    """docs/channels/manual.md: `label` is shown instead of the preset's; the core strips `label` as
    one of its own keys, so the channel never saw it and the copy kit said 报纸, not the paper's name."""
    app = make_app(
        channels={
            "qiqihar_daily": {"type": "manual", "place": "newspaper", "label": "齐齐哈尔日报"},
            "city_portal": {"type": "manual", "place": "city_portal"},
        }
    )
    assert app.channels["qiqihar_daily"].channel.place_label == "齐齐哈尔日报"
    assert app.channels["qiqihar_daily"].label == "齐齐哈尔日报"
    assert app.channels["city_portal"].label == "齐齐哈尔市人民政府网站"


def test_a_command_in_a_folder_never_set_up_leaves_nothing_behind(tmp_path, monkeypatch):
    from publisher.app import open_app
    from publisher.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PUBLISHER_DATABASE_URL", raising=False)
    with pytest.raises(ConfigError, match="run `publisher init`"):
        open_app()
    assert list(tmp_path.iterdir()) == []
