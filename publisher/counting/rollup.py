"""A daily roll-up of published deliveries, so counting a year of a million items reads a few
thousand rows instead of joining a million deliveries to their items.

``stats_rollup`` holds, per office-zone day and channel, the published deliveries cut by a few sets
of item fields (:data:`SETS`). :func:`refresh` brings it up to date before each read: it
recomputes only the days on which items changed since its watermark (or whose deliveries changed)
were published, so after the first build it costs a few milliseconds. :func:`published` answers
the "published" and "items" columns of :func:`publisher.counting.stats.counts` from it; failures and
pending work are few and read live by stats.

Distinct items (when the channels are not told apart) cannot simply be summed from days: an item
on the website on 30 September and on WeChat on 1 October is one item in a period that holds both
days. So rows with channel "" count each day's distinct items, and correction rows (``since`` set)
count minus one for each item published on ``day`` whose previous publication day was ``since``.
Summed over a run of days (and within one month, year... when grouped by one), every item counts
exactly once: its publication days inside the run are consecutive among its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from publisher.counting.periods import PERIOD_FORMATS, bucket
from publisher.models import Delivery, Item, RollupState, StatsRollup, utcnow

D = Delivery.__table__  # type: ignore[attr-defined]
I = Item.__table__  # type: ignore[attr-defined]  # noqa: E741
R = StatsRollup.__table__  # type: ignore[attr-defined]
RS = RollupState.__table__  # type: ignore[attr-defined]
NAME = "stats.published"
#: changes committed a little after the watermark was read (long transactions, clock skew) are
#: caught by looking back this far each time
LOOK_BACK = timedelta(minutes=10)
ITEM_DIMS = ("category", "department", "checklist_item")
#: the sets of item fields kept, smallest first; a grouping by item fields no set covers (say
#: category × checklist item) is counted live. Each set costs about (channels + 1) × its distinct
#: values rows a day.
SETS: tuple[tuple[str, ...], ...] = (
    (),
    ("category",),
    ("department",),
    ("checklist_item",),
    ("category", "department"),
)


def covering_set(by: Sequence[str]) -> tuple[str, ...] | None:
    wanted = {d for d in by if d in ITEM_DIMS}
    return next((s for s in SETS if wanted <= set(s)), None)


def whole_days(start: datetime, end: datetime, tz: ZoneInfo) -> bool:
    return all(t.astimezone(tz).time() == time() for t in (start, end))


def _day(engine: Engine, column: sa.ColumnElement, tz: ZoneInfo) -> sa.ColumnElement:
    day = bucket(engine, column, "day", tz)
    return day if engine.dialect.name == "sqlite" else sa.cast(day, sa.Date)


def _bounds(d: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(d, time(), tz)


def _rebuild(conn: Connection, engine: Engine, tz: ZoneInfo, days: list[date] | None) -> None:
    """Recompute the roll-up for ``days`` (every day when None)."""
    day = _day(engine, D.c.published_at, tz)
    where: list[sa.ColumnElement] = [D.c.published_at.is_not(None)]
    delete = sa.delete(R)
    if days is not None:
        runs = _runs(days)
        if not runs:
            return
        where.append(
            sa.or_(
                *(
                    sa.and_(D.c.published_at >= _bounds(a, tz), D.c.published_at < _bounds(b + timedelta(days=1), tz))
                    for a, b in runs
                )
            )
        )
        delete = delete.where(sa.or_(*(R.c.day.between(a, b) for a, b in runs)))
    conn.execute(delete)
    # the range's publications with their item's fields and day, and each item's publication days
    # with the day of its previous publication, are worked out once into temporary tables, then
    # summed for each set (a million items: one join instead of one per set and count)
    meta = sa.MetaData()

    def fields() -> list[sa.Column]:
        return [
            sa.Column("category", sa.String(50)),
            sa.Column("department", sa.String(100)),
            sa.Column("checklist_item", sa.Integer),
        ]

    pub = sa.Table(
        "rollup_pub",
        meta,
        sa.Column("item_id", sa.Integer),
        sa.Column("channel", sa.String(100)),
        sa.Column("day", sa.Date),
        *fields(),
        prefixes=["TEMPORARY"],
    )
    pairs = sa.Table(
        "rollup_pairs", meta, sa.Column("day", sa.Date), sa.Column("since", sa.Date), *fields(), prefixes=["TEMPORARY"]
    )
    meta.create_all(conn)
    conn.execute(
        sa.insert(pub).from_select(
            ["item_id", "channel", "day", *ITEM_DIMS],
            sa.select(D.c.item_id, D.c.channel, day, *(I.c[f] for f in ITEM_DIMS))
            .select_from(D.join(I, I.c.id == D.c.item_id))
            .where(*where),
        )
    )
    first = (
        sa.select(D.c.item_id, day.label("day"), sa.func.min(D.c.published_at).label("first_at"))
        .where(*where)
        .group_by(D.c.item_id, day)
        .subquery("first")
    )
    D2 = D.alias("d2")
    prev_at = (
        sa.select(sa.func.max(D2.c.published_at))
        .where(D2.c.item_id == first.c.item_id, D2.c.published_at < first.c.first_at)
        .scalar_subquery()
    )
    linked = sa.select(first.c.item_id, first.c.day, prev_at.label("prev_at")).subquery("linked")
    conn.execute(
        sa.insert(pairs).from_select(
            ["day", "since", *ITEM_DIMS],
            sa.select(linked.c.day, _day(engine, linked.c.prev_at, tz), *(I.c[f] for f in ITEM_DIMS))
            .select_from(linked.join(I, I.c.id == linked.c.item_id))
            .where(linked.c.prev_at.is_not(None)),
        )
    )
    cols = ["day", "dims", "channel", *ITEM_DIMS, "since", "n"]
    for dims in SETS:
        name = ",".join(dims)

        def sel(t: sa.Table, dims: tuple[str, ...] = dims) -> list[sa.ColumnElement]:
            return [t.c[f] if f in dims else sa.null() for f in ITEM_DIMS]

        conn.execute(
            sa.insert(R).from_select(
                cols,
                sa.select(pub.c.day, sa.literal(name), pub.c.channel, *sel(pub), sa.null(), sa.func.count()).group_by(
                    pub.c.day, pub.c.channel, *(pub.c[f] for f in dims)
                ),
            )
        )
        conn.execute(
            sa.insert(R).from_select(
                cols,
                sa.select(
                    pub.c.day,
                    sa.literal(name),
                    sa.literal(""),
                    *sel(pub),
                    sa.null(),
                    sa.func.count(sa.distinct(pub.c.item_id)),
                ).group_by(pub.c.day, *(pub.c[f] for f in dims)),
            )
        )
        conn.execute(
            sa.insert(R).from_select(
                cols,
                sa.select(
                    pairs.c.day, sa.literal(name), sa.literal(""), *sel(pairs), pairs.c.since, -sa.func.count()
                ).group_by(pairs.c.day, pairs.c.since, *(pairs.c[f] for f in dims)),
            )
        )
    meta.drop_all(conn)


def _runs(days: list[date]) -> list[tuple[date, date]]:
    runs: list[tuple[date, date]] = []
    for d in sorted(set(days)):
        if runs and d - runs[-1][1] <= timedelta(days=1):
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    return runs


#: (engine, zone) pairs brought up to date for the block running now (see :func:`refreshed`)
_FRESH: ContextVar[frozenset[tuple[int, str]]] = ContextVar("rollup_fresh", default=frozenset())


@contextmanager
def refreshed(engine: Engine, tz: ZoneInfo) -> Iterator[int]:
    """Refresh once, then skip the refreshes asked for inside the block (same store and zone).

    A dashboard page counts three ways, and each :func:`publisher.counting.stats.counts` refreshes first:
    four refreshes a page (up to 650 ms with concurrent writers). Inside this block the page
    pays for one, and its tables all read the same state of the roll-up. Yields what
    :func:`refresh` returned.
    """
    days = refresh(engine, tz)
    token = _FRESH.set(_FRESH.get() | {(id(engine), tz.key)})
    try:
        yield days
    finally:
        _FRESH.reset(token)


def refresh(engine: Engine, tz: ZoneInfo) -> int:
    """Bring the roll-up up to date; the number of days recomputed (-1: a full rebuild; 0 inside
    :func:`refreshed`, which has just done it)."""
    if (id(engine), tz.key) in _FRESH.get():
        return 0
    now = utcnow()
    with engine.begin() as conn:  # SQLite: BEGIN IMMEDIATE, so two refreshes never interleave
        q = sa.select(RS.c.zone, RS.c.watermark).where(RS.c.name == NAME)
        if engine.dialect.name == "postgresql":
            q = q.with_for_update()
        row = conn.execute(q).first()
        if row is None or row.zone != tz.key:
            _rebuild(conn, engine, tz, None)
            conn.execute(sa.delete(RS).where(RS.c.name == NAME))
            conn.execute(sa.insert(RS).values(name=NAME, zone=tz.key, watermark=now))
            if engine.dialect.name == "postgresql":
                # until autovacuum comes by, the planner would take the table just filled for empty and
                # sort a long period's rows on disk (five years, a million items: 140 ms instead of 60)
                conn.execute(sa.text("ANALYZE stats_rollup"))
            return -1
        since = row.watermark - LOOK_BACK
        # every publication day of a changed item: its fields moved, or one of its publications
        # came, went or moved, which also changes the previous-day link of its later days
        changed = sa.union(
            sa.select(D.c.item_id).where(D.c.updated_at >= since), sa.select(I.c.id).where(I.c.updated_at >= since)
        ).subquery()
        bucket = _day(engine, D.c.published_at, tz)
        days = [
            date.fromisoformat(str(r[0]))
            for r in conn.execute(
                sa.select(bucket)
                .distinct()
                .where(D.c.item_id.in_(sa.select(changed.c[0])), D.c.published_at.is_not(None))
            )
            if r[0]
        ]
        _rebuild(conn, engine, tz, days)
        conn.execute(sa.update(RS).where(RS.c.name == NAME).values(watermark=now))
        return len(days)


def _bucket_day(engine: Engine, column: sa.ColumnElement, dim: str) -> sa.ColumnElement:
    """``periods.bucket`` for a column that already holds the office-zone day."""
    fmt, pg = PERIOD_FORMATS[dim]
    if engine.dialect.name == "postgresql":
        # as a timestamp without zone: to_char(date) would convert each day to the session's zone first
        return sa.func.to_char(sa.cast(column, sa.DateTime), pg)
    if dim == "week":
        thursday = sa.func.date(column, "-3 days", "weekday 4")
        number = sa.cast(sa.func.strftime("%j", thursday), sa.Integer) - 1
        return (
            sa.func.strftime("%Y", thursday)
            .op("||")("-W")
            .op("||")(sa.func.printf("%02d", sa.cast(number / 7, sa.Integer) + 1))
        )
    return sa.func.strftime(fmt, column)


def published(
    engine: Engine, by: Sequence[str], start: datetime, end: datetime, tz: ZoneInfo
) -> list[tuple[tuple, int, int]]:
    """(key, published, items) per combination of ``by``, for whole office-zone days [start, end);
    the caller checks :func:`whole_days` and :func:`covering_set` and calls :func:`refresh` first."""
    dims = covering_set(by)
    assert dims is not None
    first, last = start.astimezone(tz).date(), (end - timedelta(days=1)).astimezone(tz).date()
    keys: list[sa.ColumnElement] = []
    same_bucket: list[sa.ColumnElement] = []
    for dim in by:
        if dim == "channel":
            keys.append(R.c.channel)
        elif dim in ITEM_DIMS:
            keys.append(R.c[dim])
        else:
            keys.append(_bucket_day(engine, R.c.day, dim))
            same_bucket.append(_bucket_day(engine, R.c.since, dim) == _bucket_day(engine, R.c.day, dim))
    where = [R.c.dims == ",".join(dims), R.c.day >= first, R.c.day <= last]
    if "channel" in by:
        # one delivery per item and channel: the distinct items are the deliveries
        where.append(R.c.channel != "")
        pub = items = sa.func.sum(R.c.n)
    else:
        pub = sa.func.sum(sa.case((R.c.channel != "", R.c.n), else_=0))
        counted = sa.and_(R.c.channel == "", sa.or_(R.c.since.is_(None), sa.and_(R.c.since >= first, *same_bucket)))
        items = sa.func.sum(sa.case((counted, R.c.n), else_=0))
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*keys, pub, items).where(*where).group_by(*keys)).all()
        conn.rollback()
    return [(tuple(r[: len(by)]), int(r[-2]), int(r[-1])) for r in rows if r[-2]]
