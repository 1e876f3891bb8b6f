"""The per-channel dashboard: counts, engagement, failures and pending work for one period.

The counts mean exactly what :mod:`publisher.stats` counts (published in the period, failed for
good, still owed), so the dashboard and ``publisher stats`` agree (a test checks it). But joining
every published delivery of a year to its item is too slow on a store of a million items, so
"published" is read from ``stats_day``, a roll-up per office-zone day, channel and item
dimensions. :func:`refresh` brings it up to date before each read: it recomputes only the days of
deliveries and items changed since its watermark (both columns indexed), so after the first build
it costs a few milliseconds. Failures and pending work are few and read live.
``bench/dashboard_bench.py`` times it all on 1,000,000 items.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from publisher import stats
from publisher.errors import InvalidInput
from publisher.models import ChannelStat, Delivery, DeliveryStatus, Item, RollupState, StatsDay, utcnow

D = Delivery.__table__  # type: ignore[attr-defined]
I = Item.__table__  # type: ignore[attr-defined]  # noqa: E741
SD = StatsDay.__table__  # type: ignore[attr-defined]
RS = RollupState.__table__  # type: ignore[attr-defined]
ROLLUP = "dashboard.published"
#: changes committed a little after the watermark was read (long transactions, clock skew) are
#: caught by looking back this far each time
LOOK_BACK = timedelta(minutes=10)
OWED = [DeliveryStatus.PENDING.value, DeliveryStatus.CLAIMED.value, DeliveryStatus.WAITING.value]

TABLES = ("category", "department", "month", "engagement", "failures", "pending")


def resolve_period(kind: str, start: str | None, end: str | None, tz: ZoneInfo,
                   today: date | None = None) -> tuple[str, datetime, datetime]:  # fmt: skip
    """``report`` (from the last 1 October, the provincial notice's usual start, to today),
    ``week`` (Monday to today) or ``custom`` (whole days ``start``..``end``)."""
    today = today or datetime.now(tz).date()
    if kind == "week":
        s, e = stats.period(today - timedelta(days=today.weekday()), today, tz)
    elif kind == "custom":
        if not start or not end:
            raise InvalidInput("a custom period needs both dates (YYYY-MM-DD)")
        s, e = stats.period(start, end, tz)
    elif kind == "report":
        oct1 = date(today.year if today >= date(today.year, 10, 1) else today.year - 1, 10, 1)
        s, e = stats.period(oct1, today, tz)
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
    pending: list[dict[str, object]] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)

    def table(self, name: str) -> list[dict[str, object]]:
        if name not in TABLES:
            raise InvalidInput(f"unknown table {name!r}; one of {', '.join(TABLES)}")
        return getattr(self, {"category": "by_category", "department": "by_department",
                              "month": "by_month"}.get(name, name))  # fmt: skip


def engagement(engine: Engine, start: datetime, end: datetime, tz: ZoneInfo) -> list[dict[str, object]]:
    """Sums of what channels report (WeChat reads, shares...) per channel and metric, by day."""
    t = ChannelStat.__table__  # type: ignore[attr-defined]
    first, last = start.astimezone(tz).date(), (end - timedelta(microseconds=1)).astimezone(tz).date()
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.c.channel, t.c.metric, sa.func.sum(t.c.value))
            .where(t.c.day >= first, t.c.day <= last)
            .group_by(t.c.channel, t.c.metric)
            .order_by(t.c.channel, t.c.metric)
        ).all()
        conn.rollback()
    return [{"channel": r[0], "metric": r[1], "value": int(r[2] or 0)} for r in rows]


def failures(engine: Engine, start: datetime, end: datetime, limit: int = 50) -> list[dict[str, object]]:
    d, i = Delivery.__table__, Item.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(d.c.id, d.c.item_id, i.c.title, d.c.channel, d.c.op, d.c.last_error_kind, d.c.last_error,
                      d.c.updated_at)  # fmt: skip
            .select_from(d.join(i, i.c.id == d.c.item_id))
            .where(d.c.status == DeliveryStatus.FAILED.value, d.c.updated_at >= start, d.c.updated_at < end)
            .order_by(d.c.updated_at.desc())
            .limit(limit)
        ).all()
        conn.rollback()
    return [
        {"delivery": r[0], "item": r[1], "title": r[2], "channel": r[3], "op": r[4], "kind": r[5] or "",
         "error": r[6] or "", "at": r[7]}  # fmt: skip
        for r in rows
    ]


def _day_expr(engine: Engine) -> sa.ColumnElement:
    return sa.func.strftime("%Y-%m", SD.c.day) if engine.dialect.name == "sqlite" else sa.func.to_char(SD.c.day, "YYYY-MM")


def _rebuild_days(conn: Connection, engine: Engine, tz: ZoneInfo, first: date | None, last: date | None) -> None:
    """Recompute the roll-up for the days first..last (all days when both are None)."""
    bucket = stats._bucket(engine, D.c.published_at, "day", tz)
    day = bucket if engine.dialect.name == "sqlite" else sa.cast(bucket, sa.Date)
    where = [D.c.published_at.is_not(None)]
    delete = sa.delete(SD)
    if first is not None and last is not None:
        s, _ = day_bounds(first, tz)
        _, e = day_bounds(last, tz)
        where += [D.c.published_at >= s, D.c.published_at < e]
        delete = delete.where(SD.c.day >= first, SD.c.day <= last)
    conn.execute(delete)
    for dim in ("category", "department"):
        conn.execute(
            sa.insert(SD).from_select(
                ["day", "channel", "dim", "value", "published"],
                sa.select(day, D.c.channel, sa.literal(dim), I.c[dim], sa.func.count())
                .select_from(D.join(I, I.c.id == D.c.item_id))
                .where(*where)
                .group_by(day, D.c.channel, I.c[dim]),
            )
        )


def _runs(days: list[date]) -> list[tuple[date, date]]:
    runs: list[tuple[date, date]] = []
    for d in sorted(days):
        if runs and d - runs[-1][1] <= timedelta(days=1):
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    return runs


def refresh(engine: Engine, tz: ZoneInfo) -> int:
    """Bring the roll-up up to date; the number of days recomputed (-1: a full rebuild)."""
    now = utcnow()
    with engine.begin() as conn:  # SQLite: BEGIN IMMEDIATE, so two refreshes never interleave
        q = sa.select(RS.c.zone, RS.c.watermark).where(RS.c.name == ROLLUP)
        if engine.dialect.name == "postgresql":
            q = q.with_for_update()
        row = conn.execute(q).first()
        if row is None or row.zone != tz.key:
            _rebuild_days(conn, engine, tz, None, None)
            conn.execute(sa.delete(RS).where(RS.c.name == ROLLUP))
            conn.execute(sa.insert(RS).values(name=ROLLUP, zone=tz.key, watermark=now))
            return -1
        since = row.watermark - LOOK_BACK
        bucket = stats._bucket(engine, D.c.published_at, "day", tz)
        changed = sa.union(
            sa.select(bucket).where(D.c.updated_at >= since, D.c.published_at.is_not(None)),
            sa.select(bucket).select_from(D.join(I, I.c.id == D.c.item_id))
            .where(I.c.updated_at >= since, D.c.published_at.is_not(None)),
        )
        days = [date.fromisoformat(str(r[0])) for r in conn.execute(changed) if r[0]]
        for first, last in _runs(days):
            _rebuild_days(conn, engine, tz, first, last)
        conn.execute(sa.update(RS).where(RS.c.name == ROLLUP).values(watermark=now))
        return len(days)


def _published(engine: Engine, first: date, last: date, dim: str) -> list[sa.Row]:
    col = _day_expr(engine) if dim == "month" else SD.c.value
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(SD.c.channel, col, sa.func.sum(SD.c.published))
            .where(SD.c.dim == ("category" if dim == "month" else dim), SD.c.day >= first, SD.c.day <= last)
            .group_by(SD.c.channel, col)
        ).all()
        conn.rollback()
    return rows


def _live(engine: Engine, which: str, dim: str, start: datetime, end: datetime, tz: ZoneInfo) -> list[sa.Row]:
    """Failed (in the period) or pending (owed, due before its end), per channel and ``dim``."""
    time_col = D.c.updated_at if which == "failed" else D.c.due_at
    col = stats._bucket(engine, time_col, "month", tz) if dim == "month" else I.c[dim]
    where = ([D.c.status == DeliveryStatus.FAILED.value, D.c.updated_at >= start, D.c.updated_at < end]
             if which == "failed" else [D.c.status.in_(OWED), D.c.due_at < end])  # fmt: skip
    with engine.connect() as conn:
        # grouping by the item's column first keeps SQLite on the status index (grouping by
        # channel first tempts it into scanning the channel index of every delivery)
        rows = conn.execute(
            sa.select(col, D.c.channel, sa.func.count()).select_from(D.join(I, I.c.id == D.c.item_id))
            .where(*where).group_by(col, D.c.channel)
        ).all()
        conn.rollback()
    return [(r[1], r[0], r[2]) for r in rows]  # type: ignore[misc]


def counts(engine: Engine, start: datetime, end: datetime, tz: ZoneInfo, dim: str) -> list[dict[str, object]]:
    """Rows like :func:`publisher.stats.counts` with ``by=("channel", dim)``; call :func:`refresh` first."""
    first, last = start.astimezone(tz).date(), (end - timedelta(microseconds=1)).astimezone(tz).date()
    out: dict[tuple, dict[str, object]] = {}

    if dim not in ("category", "department", "month"):
        raise InvalidInput(f"the dashboard counts by category, department or month, not {dim!r}")

    def row(channel: object, value: object) -> dict[str, object]:
        return out.setdefault((channel, value), {"channel": channel, dim: value, "published": 0, "items": 0,
                                                 "failed": 0, "pending": 0})  # fmt: skip

    for channel, value, n in _published(engine, first, last, dim):
        r = row(channel, value)
        r["published"] = r["items"] = int(n)  # one delivery per item and channel
    for which in ("failed", "pending"):
        for channel, value, n in _live(engine, which, dim, start, end, tz):
            row(channel, value)[which] = int(n)
    return sorted((r for r in out.values() if r["published"] or r["failed"] or r["pending"]),
                  key=lambda r: (str(r["channel"]), str(r[dim])))  # fmt: skip


def build(engine: Engine, start: datetime, end: datetime, tz: ZoneInfo) -> Dashboard:
    """Everything the dashboard shows for [start, end), with how long each query took."""
    import time as _time

    dash = Dashboard(start=start, end=end)

    def timed(name: str, fn):  # type: ignore[no-untyped-def]
        t0 = _time.perf_counter()
        out = fn()
        dash.timings_ms[name] = (_time.perf_counter() - t0) * 1000
        return out

    timed("refresh", lambda: refresh(engine, tz))
    dash.by_category = timed("category", lambda: counts(engine, start, end, tz, "category"))
    dash.by_department = timed("department", lambda: counts(engine, start, end, tz, "department"))
    dash.by_month = timed("month", lambda: counts(engine, start, end, tz, "month"))
    dash.engagement = timed("engagement", lambda: engagement(engine, start, end, tz))
    dash.failures = timed("failures", lambda: failures(engine, start, end))
    totals: dict[str, dict[str, object]] = {}
    for r in dash.by_category:
        row = totals.setdefault(str(r["channel"]), {"channel": r["channel"], "published": 0, "failed": 0, "pending": 0})
        for k in ("published", "failed", "pending"):
            row[k] = int(row[k]) + int(r[k])  # type: ignore[call-overload]
    dash.pending = sorted(totals.values(), key=lambda r: str(r["channel"]))
    return dash


def to_csv(rows: list[dict[str, object]]) -> str:
    if not rows:
        return ""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()})
    return buf.getvalue()


def day_bounds(d: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    return datetime.combine(d, time(), tz), datetime.combine(d + timedelta(days=1), time(), tz)
