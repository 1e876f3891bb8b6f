"""Counting on both engines: the same deliveries give the same buckets on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from publisher.counting import periods, stats
from publisher.pipeline import content, workflow
from publisher.pipeline.worker import Dispatcher

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _published_at(app: Any, when: list[datetime]) -> None:
    """Publish one item per time through the real pipeline, then date each publication (test setup)."""
    ids = []
    with app.session() as s:
        for n, _ in enumerate(when):
            draft = content.ItemDraft(
                title=f"通知 {n}", body_markdown="正文", fields={"category": "公告公示", "channels": ["mem"]}
            )
            item = workflow.create_item(app.ctx, s, author=workflow.get_user(s, "ed"), draft=draft)
            workflow.submit(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, "ed"))
            workflow.review(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, "head"), approve=True)
            workflow.review(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, "sec"), approve=True)
            workflow.schedule(app.ctx, s, item_id=item.id, at=datetime.now(UTC))
            ids.append(item.id)
    Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True)
    with app.engine.begin() as conn:
        for item_id, t in zip(ids, when, strict=True):
            conn.execute(
                sa.text("UPDATE delivery SET published_at = :t WHERE item_id = :i"),
                {"t": t.astimezone(UTC).replace(tzinfo=None), "i": item_id},
            )


@pytest.mark.parametrize(
    ("local", "week"),
    [
        # ISO weeks: 1 January 2026 is a Thursday, so it is in week 1 of 2026
        (datetime(2026, 1, 1, 0, 30, tzinfo=SHANGHAI), "2026-W01"),
        # 1 January 2027 is a Friday: it still belongs to week 53 of 2026
        (datetime(2027, 1, 1, 12, 0, tzinfo=SHANGHAI), "2026-W53"),
        # Monday 28 December 2026 00:10 Beijing (Sunday 16:10 UTC): week 53, not 52
        (datetime(2026, 12, 28, 0, 10, tzinfo=SHANGHAI), "2026-W53"),
        (datetime(2026, 10, 1, 0, 30, tzinfo=SHANGHAI), "2026-W40"),
    ],
)
def test_week_buckets_are_iso_weeks_in_beijing_time_on_both_engines(app: Any, local: datetime, week: str) -> None:
    _published_at(app, [local])
    start, end = periods.period("2025-12-01", "2027-01-31", SHANGHAI)
    rows = stats.counts(app.engine, stats.StatsQuery(start=start, end=end, by=("week",), tz=SHANGHAI))
    assert [(r["week"], r["published"]) for r in rows] == [(week, 1)]


def test_day_month_year_buckets_in_beijing_time(app: Any) -> None:
    _published_at(
        app,
        [datetime(2026, 9, 30, 23, 59, tzinfo=SHANGHAI), datetime(2026, 10, 1, 0, 30, tzinfo=SHANGHAI)],
    )
    start, end = periods.period("2026-09-01", "2026-10-31", SHANGHAI)
    q = stats.StatsQuery(start=start, end=end, by=("year", "month", "day"), tz=SHANGHAI)
    got = [(r["year"], r["month"], r["day"], r["published"]) for r in stats.counts(app.engine, q)]
    assert got == [("2026", "2026-09", "2026-09-30", 1), ("2026", "2026-10", "2026-10-01", 1)]
