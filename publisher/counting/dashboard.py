"""The per-channel dashboard: counts, engagement, failures and pending work for one period.

The counts mean exactly what :mod:`publisher.counting.stats` counts (published in the period, failed for
good, still owed) because they are :func:`publisher.counting.stats.counts`, which reads "published" from
the daily roll-up of :mod:`publisher.counting.rollup` (joining every published delivery of a year to its
item is too slow on a store of a million items).
``bench/dashboard_bench.py`` times it all on 1,000,000 items.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from publisher.counting import csvcells, periods, rollup, stats
from publisher.errors import InvalidInput
from publisher.models import ChannelStat, Delivery, DeliveryStatus, Item, status_literal

D = Delivery.__table__  # type: ignore[attr-defined]
I = Item.__table__  # type: ignore[attr-defined]  # noqa: E741

TABLES = ("category", "department", "month", "engagement", "failures", "pending")


def resolve_period(
    kind: str, start: str | None, end: str | None, tz: ZoneInfo, today: date | None = None
) -> tuple[str, datetime, datetime]:
    """``report`` (from the last 1 October, the provincial notice's usual start, to today),
    ``week`` (Monday to today) or ``custom`` (whole days ``start``..``end``)."""
    today = today or datetime.now(tz).date()
    if kind == "week":
        s, e = periods.period(today - timedelta(days=today.weekday()), today, tz)
    elif kind == "custom":
        if not start or not end:
            raise InvalidInput("a custom period needs both dates (YYYY-MM-DD)")
        s, e = periods.period(start, end, tz)
    elif kind == "report":
        oct1 = date(today.year if today >= date(today.year, 10, 1) else today.year - 1, 10, 1)
        s, e = periods.period(oct1, today, tz)
    else:
        raise InvalidInput(f"unknown period {kind!r}; use report, week or custom")
    return kind, s, e


@dataclass
class Dashboard:
    start: datetime
    end: datetime
    by_category: list[dict[str, object]] = field(default_factory=list)
    by_department: list[dict[str, object]] = field(default_factory=list)
    by_month: list[dict[str, object]] = field(default_factory=list)
    engagement: list[dict[str, object]] = field(default_factory=list)
    failures: list[dict[str, object]] = field(default_factory=list)
    #: failures in the period of items the reader may not see: counted, never listed
    failures_hidden: int = 0
    pending: list[dict[str, object]] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)

    def table(self, name: str) -> list[dict[str, object]]:
        if name not in TABLES:
            raise InvalidInput(f"unknown table {name!r}; one of {', '.join(TABLES)}")
        return getattr(
            self, {"category": "by_category", "department": "by_department", "month": "by_month"}.get(name, name)
        )


#: metrics that are running totals (the account's followers on a day, from WeChat's getusercumulate):
#: a period shows the figure of its last day that has one, never the sum of its days
CUMULATIVE_METRICS = ("followers",)


def engagement(engine: Engine, start: datetime, end: datetime, tz: ZoneInfo) -> list[dict[str, object]]:
    """What channels report (WeChat reads, shares...) per channel and metric: daily figures summed
    over the period, running totals (:data:`CUMULATIVE_METRICS`) read at its last day."""
    t = ChannelStat.__table__  # type: ignore[attr-defined]
    first, last = start.astimezone(tz).date(), (end - timedelta(microseconds=1)).astimezone(tz).date()
    in_period = sa.and_(t.c.day >= first, t.c.day <= last)
    cumulative = t.c.metric.in_(CUMULATIVE_METRICS)
    latest = (
        sa.select(t.c.channel, t.c.metric, t.c.remote_id, sa.func.max(t.c.day).label("day"))
        .where(in_period, cumulative)
        .group_by(t.c.channel, t.c.metric, t.c.remote_id)
        .subquery()
    )
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.c.channel, t.c.metric, sa.func.sum(t.c.value))
            .where(in_period, sa.not_(cumulative))
            .group_by(t.c.channel, t.c.metric)
        ).all()
        rows += conn.execute(
            sa.select(t.c.channel, t.c.metric, sa.func.sum(t.c.value))
            .select_from(
                t.join(
                    latest,
                    sa.and_(
                        t.c.channel == latest.c.channel,
                        t.c.metric == latest.c.metric,
                        t.c.remote_id == latest.c.remote_id,
                        t.c.day == latest.c.day,
                    ),
                )
            )
            .group_by(t.c.channel, t.c.metric)
        ).all()
        conn.rollback()
    return sorted(
        ({"channel": r[0], "metric": r[1], "value": int(r[2] or 0)} for r in rows),
        key=lambda r: (str(r["channel"]), str(r["metric"])),
    )


def _failed_in(start: datetime, end: datetime) -> sa.ColumnElement[bool]:
    # the literal status lets both planners read the partial index ix_delivery_failed
    return sa.and_(D.c.status == status_literal(DeliveryStatus.FAILED), D.c.updated_at >= start, D.c.updated_at < end)


def failures(
    engine: Engine, start: datetime, end: datetime, limit: int = 50, visible: sa.ColumnElement[bool] | None = None
) -> list[dict[str, object]]:
    """The latest failed deliveries of the period, of items matching ``visible`` (a condition on the
    item table, e.g. :func:`publisher.web.common.view_filter`; ``None``: every item)."""
    cond = _failed_in(start, end) if visible is None else sa.and_(_failed_in(start, end), visible)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                D.c.id, D.c.item_id, I.c.title, D.c.channel, D.c.op, D.c.last_error_kind, D.c.last_error, D.c.updated_at
            )
            .select_from(D.join(I, I.c.id == D.c.item_id))
            .where(cond)
            .order_by(D.c.updated_at.desc())
            .limit(limit)
        ).all()
        conn.rollback()
    return [
        {
            "delivery": r[0],
            "item": r[1],
            "title": r[2],
            "channel": r[3],
            "op": r[4],
            "kind": r[5] or "",
            "error": r[6] or "",
            "at": r[7],
        }
        for r in rows
    ]


def failures_hidden(engine: Engine, start: datetime, end: datetime, visible: sa.ColumnElement[bool] | None) -> int:
    """How many failed deliveries of the period belong to items not matching ``visible``."""
    if visible is None:
        return 0
    with engine.connect() as conn:
        n = conn.execute(
            sa.select(sa.func.count())
            .select_from(D.join(I, I.c.id == D.c.item_id))
            .where(_failed_in(start, end), sa.not_(visible))
        ).scalar_one()
        conn.rollback()
    return int(n)


def refresh(engine: Engine, tz: ZoneInfo) -> int:
    """Bring the roll-up that the stats count from up to date (:func:`publisher.counting.rollup.refresh`)."""
    return rollup.refresh(engine, tz)


def counts(engine: Engine, start: datetime, end: datetime, tz: ZoneInfo, dim: str) -> list[dict[str, object]]:
    """:func:`publisher.counting.stats.counts` with ``by=("channel", dim)``."""
    if dim not in ("category", "department", "month"):
        raise InvalidInput(f"the dashboard counts by category, department or month, not {dim!r}")
    return stats.counts(engine, stats.StatsQuery(start=start, end=end, by=("channel", dim), tz=tz))


def build(
    engine: Engine, start: datetime, end: datetime, tz: ZoneInfo, visible: sa.ColumnElement[bool] | None = None
) -> Dashboard:
    """Everything the dashboard shows for [start, end), with how long each query took.

    The counts are the office's (every item, as ``publisher stats`` and the annual report count);
    the failures listed are only those of items matching ``visible`` (the reader's
    :func:`~publisher.web.common.view_filter`), and ``failures_hidden`` says how many others there are.
    """
    import time as _time

    dash = Dashboard(start=start, end=end)

    def timed(name: str, fn):  # type: ignore[no-untyped-def]
        t0 = _time.perf_counter()
        out = fn()
        dash.timings_ms[name] = (_time.perf_counter() - t0) * 1000
        return out

    t0 = _time.perf_counter()
    with rollup.refreshed(engine, tz):  # once for the page: each count below would refresh again
        dash.timings_ms["refresh"] = (_time.perf_counter() - t0) * 1000
        dash.by_category = timed("category", lambda: counts(engine, start, end, tz, "category"))
        dash.by_department = timed("department", lambda: counts(engine, start, end, tz, "department"))
        dash.by_month = timed("month", lambda: counts(engine, start, end, tz, "month"))
    dash.engagement = timed("engagement", lambda: engagement(engine, start, end, tz))
    dash.failures = timed("failures", lambda: failures(engine, start, end, visible=visible))
    dash.failures_hidden = timed("failures_hidden", lambda: failures_hidden(engine, start, end, visible))
    totals: dict[str, dict[str, object]] = {}
    for r in dash.by_category:
        row = totals.setdefault(str(r["channel"]), {"channel": r["channel"], "published": 0, "failed": 0, "pending": 0})
        for k in ("published", "failed", "pending"):
            row[k] = int(row[k]) + int(r[k])  # type: ignore[call-overload]
    dash.pending = sorted(totals.values(), key=lambda r: str(r["channel"]))
    return dash


#: the columns of :func:`failures`, so an empty failures CSV still has its header
FAILURE_COLUMNS = ("delivery", "item", "title", "channel", "op", "kind", "error", "at")


def to_csv(rows: list[dict[str, object]], columns: tuple[str, ...] = ()) -> str:
    if not rows and not columns:
        return ""
    buf = io.StringIO()
    w = csvcells.dict_writer(buf, list(rows[0]) if rows else list(columns), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()})
    return buf.getvalue()


def day_bounds(d: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    return datetime.combine(d, time(), tz), datetime.combine(d + timedelta(days=1), time(), tz)
