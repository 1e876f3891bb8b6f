from __future__ import annotations

from publisher.models import ItemStatus
from publisher.pipeline import content, workflow
from publisher.pipeline.worker import Dispatcher
from publisher.testing import MemoryChannel


def test_item_reaches_channels_only_after_two_approvals(app, tmp_path):
    f = tmp_path / "a.md"
    f.write_text("---\ntitle: 通知\ncategory: 公告公示\nchannels: [mem, mem2]\n---\n正文\n", encoding="utf-8")
    with app.session() as s:
        draft = content.read_item_file(f, media_dir=app.settings.media_dir, max_body_bytes=10**6, max_asset_bytes=10**6)
        item = workflow.create_item(app.ctx, s, author=workflow.get_user(s, "ed"), draft=draft)
        workflow.schedule(app.ctx, s, item_id=item.id, at="2099-01-01T09:00+08:00")
        workflow.submit(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, "ed"))
        workflow.review(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, "head"), approve=True)
    Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True)
    assert MemoryChannel.ledger["mem"] == []
    with app.session() as s:
        workflow.review(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, "sec"), approve=True)
        workflow.schedule(app.ctx, s, item_id=item.id, at="now" and __import__("datetime").datetime.now().astimezone())
    summary = Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True)
    assert summary.outcomes["done"] == 2
    assert [t for _, _, t in MemoryChannel.ledger["mem"]] == ["通知"]
    with app.session() as s:
        assert workflow.get_item(s, item.id).status == ItemStatus.PUBLISHED
