"""Periods and their buckets: whole days in the office's zone, and the SQL that puts a timestamp
into its year, month, ISO week or day on either engine. The live counts (stats) and the daily
roll-up (rollup) both bucket with it."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from publisher.errors import InvalidInput

DIMENSIONS = ("channel", "category", "department", "year", "month", "week", "day", "checklist_item")
PERIOD_FORMATS = {
    "year": ("%Y", "YYYY"),
    "month": ("%Y-%m", "YYYY-MM"),
    "day": ("%Y-%m-%d", "YYYY-MM-DD"),
    "week": ("%Y-W%W", 'IYYY-"W"IW'),
}


#: the dates a period may name (a day outside them is a typo, and 9999-12-31 + 1 day overflows)
EARLIEST, LATEST = date(1900, 1, 1), date(2999, 12, 31)


def period(start: date | str | None, end: date | str | None, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Whole days in the office's zone: [start 00:00, end + 1 day 00:00)."""

    def _d(v: date | str | None, what: str) -> date | None:
        if v is None or isinstance(v, date):
            return v
        try:
            return date.fromisoformat(v)
        except ValueError:
            raise InvalidInput(f"{what} {v!r} is not a date; write YYYY-MM-DD") from None

    s, e = _d(start, "--from"), _d(end, "--to")
    today = datetime.now(tz).date()
    s = s or date(today.year, 1, 1)
    e = e or today
    for d in (s, e):
        if not EARLIEST <= d <= LATEST:
            raise InvalidInput(f"{d} is outside the dates counted ({EARLIEST} to {LATEST})")
    if e < s:
        raise InvalidInput(f"the period ends ({e}) before it starts ({s})")
    return datetime.combine(s, time(), tz), datetime.combine(e + timedelta(days=1), time(), tz)


def bucket(engine: Engine, column: sa.ColumnElement, dim: str, tz: ZoneInfo) -> sa.ColumnElement:
    if engine.dialect.name == "postgresql":
        return sa.func.to_char(sa.func.timezone(tz.key, sa.func.timezone("UTC", column)), PERIOD_FORMATS[dim][1])
    # SQLite: shift by the zone's offset (fixed for Asia/Shanghai; zones with DST are off by an hour
    # for the changeover days, see the README)
    offset = datetime.now(tz).utcoffset() or timedelta()
    mods = f"{int(offset.total_seconds())} seconds"
    if dim == "week":
        # ISO weeks like PostgreSQL's IYYY-IW (SQLite's %W counts from the first Monday, so the two
        # engines disagreed): a week belongs to the year of its Thursday, and is numbered from it
        thursday = sa.func.date(column, mods, "-3 days", "weekday 4")
        number = sa.cast(sa.func.strftime("%j", thursday), sa.Integer) - 1
        return (
            sa.func.strftime("%Y", thursday)
            .op("||")("-W")
            .op("||")(sa.func.printf("%02d", sa.cast(number / 7, sa.Integer) + 1))
        )
    return sa.func.strftime(PERIOD_FORMATS[dim][0], column, mods)
