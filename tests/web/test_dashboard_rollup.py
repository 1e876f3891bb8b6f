"""The dashboard's daily roll-up always agrees with publisher.counting.stats, however the store changes."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import select

from publisher.counting import dashboard, periods, stats
from publisher.models import Delivery, Item, ItemOrigin
from publisher.pipeline import workflow
from publisher.pipeline.worker import Dispatcher
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
    start, end = periods.period("2000-01-01", "2100-01-01", tz)
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
    s2, e2 = periods.period("2020-05-01", "2020-05-01", tz)
    assert sum(int(r["published"]) for r in _same(app, s2, e2).by_category) == 1
    # a change of office zone rebuilds the roll-up
    from zoneinfo import ZoneInfo

    assert dashboard.refresh(app.engine, ZoneInfo("UTC")) == -1
    assert dashboard.refresh(app.engine, tz) == -1
    _same(app, start, end)


GROUPINGS = [
    ("channel",),
    ("category",),
    ("department",),
    ("checklist_item",),
    ("month",),
    ("week",),
    ("day",),
    ("channel", "category", "month"),
    ("category", "department"),
    ("channel", "department"),
    ("department", "month"),
    ("checklist_item", "week"),
    ("category", "year"),
    ("channel", "checklist_item"),
    ("category", "checklist_item"),
]


def _stats_same(app) -> None:
    """stats.counts over the roll-up equals the live query, for every grouping and a few periods."""
    tz = app.settings.zone
    for a, b in (
        ("2000-01-01", "2100-01-01"),
        ("2020-05-01", "2020-05-01"),
        ("2020-04-30", "2020-05-03"),
        ("2020-04-01", "2020-05-31"),
        ("2020-05-02", "2020-06-30"),
    ):
        start, end = periods.period(a, b, tz)
        for by in GROUPINGS:
            q = stats.StatsQuery(start=start, end=end, by=by, tz=tz)
            assert stats.counts(app.engine, q) == stats.counts(app.engine, q, rollup=False), (a, b, by)


def test_stats_counts_from_rollup_equal_live_query(app, monkeypatch):
    from publisher.counting import ledger, rollup

    # no look-back: each refresh must find what changed by itself, not because everything is recent
    monkeypatch.setattr(rollup, "LOOK_BACK", rollup.LOOK_BACK * 0)
    tz = app.settings.zone
    _stats_same(app)  # empty store; builds the roll-up
    assert rollup.refresh(app.engine, tz) == 0
    a = make_item(app, stage="scheduled", channels=("mem", "mem2"))
    make_item(app, author="ed2", stage="scheduled", channels=("mem",), title="人事处通知")
    make_item(app, stage="submitted")
    MemoryChannel.script("mem2", "p")  # a failure for good
    Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True)
    _stats_same(app)
    # a category edit after publication
    with app.session() as s:
        workflow.edit_item(app.ctx, s, item_id=a, actor=workflow.get_user(s, "ed"), changes={"category": "新闻"})
    _stats_same(app)
    # back-dated imports: one item on three days across a month's end (distinct items per period), one
    # on two channels the same day, with checklist items
    imp = ItemOrigin.IMPORT
    with app.session() as s:
        first = datetime(2020, 4, 30, 15, 30, tzinfo=UTC)  # 23:30 on 30 April in Beijing
        i = ledger.new_recorded_item(
            s,
            title="旧公告",
            category="公告公示",
            department="人事处",
            origin=imp,
            checklist_item=3,
            published_at=first,
        )
        for ch, at in (
            ("site", first),
            ("mem", datetime(2020, 5, 1, 1, tzinfo=UTC)),
            ("mem2", datetime(2020, 5, 3, 2, tzinfo=UTC)),
        ):
            ledger.add_recorded_delivery(s, i, channel=ch, published_at=at, url=None, note="test")
        iid = i.id
        j = ledger.new_recorded_item(
            s,
            title="旧通知",
            category="新闻",
            department="校长办公室",
            origin=imp,
            checklist_item=None,
            published_at=datetime(2020, 5, 2, tzinfo=UTC),
        )
        for ch in ("site", "mem"):
            ledger.add_recorded_delivery(
                s, j, channel=ch, published_at=datetime(2020, 5, 2, tzinfo=UTC), url=None, note="test"
            )
    _stats_same(app)
    q = stats.StatsQuery(*periods.period("2020-04-30", "2020-05-03", tz), by=("category",), tz=tz)
    assert {r["category"]: (r["published"], r["items"]) for r in stats.counts(app.engine, q)} == {
        "公告公示": (3, 1),
        "新闻": (2, 1),
    }
    # a publication imported between two the roll-up already holds changes the earlier link
    with app.session() as s:
        at = datetime(2020, 5, 2, 3, tzinfo=UTC)
        ledger.add_recorded_delivery(s, s.get(Item, iid), channel="mem3", published_at=at, url=None, note="test")
    _stats_same(app)
    # another zone rebuilds it and still agrees
    from zoneinfo import ZoneInfo

    assert rollup.refresh(app.engine, ZoneInfo("UTC")) == -1
    assert rollup.refresh(app.engine, tz) == -1
    _stats_same(app)
