"""The dashboard's daily roll-up always agrees with publisher.stats, however the store changes."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import select

from publisher import dashboard, stats, workflow
from publisher.dispatch import Dispatcher
from publisher.models import Delivery
from publisher.testing import MemoryChannel
from tests.web.conftest import make_item


def _same(app, start, end):
    tz = app.settings.zone
    dash = dashboard.build(app.engine, start, end, tz)
    for dim, rows in (("category", dash.by_category), ("department", dash.by_department), ("month", dash.by_month)):
        expected = stats.counts(app.engine, stats.StatsQuery(start=start, end=end, by=("channel", dim), tz=tz))
        assert rows == expected, dim
    return dash


def test_rollup_matches_stats_through_publish_fail_edit_and_backdating(app):
    tz = app.settings.zone
    start, end = stats.period("2000-01-01", "2100-01-01", tz)
    assert dashboard.refresh(app.engine, tz) == -1  # first use builds it
    a = make_item(app, stage="scheduled", channels=("mem", "mem2"))
    make_item(app, author="ed2", stage="scheduled", channels=("mem",), title="人事处通知")
    make_item(app, stage="submitted")
    MemoryChannel.script("mem2", "p")
    Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True)
    dash = _same(app, start, end)
    assert sum(int(r["published"]) for r in dash.by_category) == 2
    # an edit after publication that moves the item to another category moves its counts too
    with app.session() as s:
        workflow.edit_item(app.ctx, s, item_id=a, actor=workflow.get_user(s, "ed"), changes={"category": "新闻"})
    dash = _same(app, start, end)
    assert {r["category"] for r in dash.by_category if r["published"]} == {"新闻", "公告公示"}
    # a delivery recorded as published long ago (an import) lands on its own day, not today
    with app.session() as s:
        d = s.exec(select(Delivery).where(Delivery.item_id == a, Delivery.channel == "mem")).one()
        d.published_at = datetime(2020, 5, 1, 3, 0, tzinfo=UTC)
        d.updated_at = datetime.now(UTC)
    dash = _same(app, start, end)
    assert any(r["month"] == "2020-05" for r in dash.by_month)
    # a period that cuts between days, in the office zone
    s2, e2 = stats.period("2020-05-01", "2020-05-01", tz)
    assert sum(int(r["published"]) for r in _same(app, s2, e2).by_category) == 1
    # a change of office zone rebuilds the roll-up
    from zoneinfo import ZoneInfo

    assert dashboard.refresh(app.engine, ZoneInfo("UTC")) == -1
    assert dashboard.refresh(app.engine, tz) == -1
    _same(app, start, end)
