"""Read-only counting: deliveries per channel × category × department × period.

Three counts are kept apart, because an office asks three different questions:
``published`` (went live in the period), ``failed`` (failed for good, last touched in the period),
``pending`` (owed and not yet out: pending, in flight or waiting, due in the period or overdue).
``items`` counts distinct items among the published ones, so an item on two channels is one item
in a line that groups the channels together. Periods are cut in the office's time zone: an item
published at 00:30 on 1 October Beijing time belongs to October.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from publisher.counting import csvcells
from publisher.counting import rollup as daily_rollup
from publisher.counting.periods import DIMENSIONS, bucket
from publisher.errors import InvalidInput
from publisher.models import Delivery, DeliveryStatus, owed, status_literal

D = Delivery.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class StatsQuery:
    start: datetime  # aware, inclusive
    end: datetime  # aware, exclusive
    by: tuple[str, ...] = ("channel",)
    tz: ZoneInfo = ZoneInfo("Asia/Shanghai")


def counts(engine: Engine, q: StatsQuery, *, rollup: bool = True) -> list[dict[str, object]]:
    """One row per combination of ``q.by``, with published, items, failed and pending.

    "published" and "items" come from the daily roll-up (:mod:`publisher.counting.rollup`, brought up to date
    first) when the period is whole days in the office's zone and the item fields grouped by are
    kept there; otherwise, or with ``rollup=False``, from the deliveries themselves. Failures and
    pending work are few and always read live, each from a partial index that holds those rows with
    the channel and the delivery's copies of its item's fields (migration 0007), so no count joins
    the item table.
    """

    for dim in q.by:
        if dim not in DIMENSIONS:
            raise InvalidInput(f"unknown dimension {dim!r}; use any of {', '.join(DIMENSIONS)}")
    start, end = q.start, q.end

    def dims(time_col: sa.ColumnElement) -> list[sa.ColumnElement]:
        out = []
        for dim in q.by:
            if dim == "channel":
                out.append(D.c.channel.label("channel"))
            elif dim in ("category", "department", "checklist_item"):
                # the delivery's copy of its item's field (kept by the database, migration 0007): on a
                # store of a million items the join to the item table is most of a count's time
                out.append(D.c[f"item_{dim}"].label(dim))
            else:
                out.append(bucket(engine, time_col, dim, q.tz).label(dim))
        return out

    # one delivery per item and channel: grouped by channel, the distinct items are the deliveries
    items = sa.func.count() if "channel" in q.by else sa.func.count(sa.distinct(D.c.item_id))
    results: dict[tuple, dict[str, object]] = {}

    def add(rows: Sequence[sa.Row], field: str) -> None:
        for r in rows:
            key = tuple(r[: len(q.by)])
            row = results.setdefault(
                key, {**dict(zip(q.by, key, strict=True)), "published": 0, "items": 0, "failed": 0, "pending": 0}
            )
            row[field] = int(r[len(q.by)])
            if field == "published":
                row["items"] = int(r[len(q.by) + 1])

    from_rollup = (
        rollup
        and daily_rollup.whole_days(start, end, q.tz)
        and daily_rollup.covering_set(q.by) is not None
        and end > start
    )
    if from_rollup:
        daily_rollup.refresh(engine, q.tz)
        add([(*key, n, k) for key, n, k in daily_rollup.published(engine, q.by, start, end, q.tz)], "published")  # type: ignore[misc]
    with engine.connect() as conn:
        d = dims(D.c.published_at)
        if not from_rollup:
            add(
                conn.execute(
                    sa.select(*d, sa.func.count(), items)
                    .where(D.c.published_at >= start, D.c.published_at < end)
                    .group_by(*d)
                ).all(),
                "published",
            )
        # the statuses are written out as literals so that both planners see the query is within the
        # partial index that holds exactly these rows with what is counted (ix_delivery_failed,
        # ix_delivery_owed): a few thousand index entries instead of a walk over every delivery
        d = dims(D.c.updated_at)
        add(
            conn.execute(
                sa.select(*d, sa.func.count())
                .where(
                    D.c.status == status_literal(DeliveryStatus.FAILED), D.c.updated_at >= start, D.c.updated_at < end
                )
                .group_by(*d)
            ).all(),
            "failed",
        )
        d = dims(D.c.due_at)
        add(
            conn.execute(sa.select(*d, sa.func.count()).where(owed(D.c.status), D.c.due_at < end).group_by(*d)).all(),
            "pending",
        )
        conn.rollback()
    return sorted(results.values(), key=lambda r: tuple(str(r[k]) for k in q.by))


def render(rows: list[dict[str, object]], by: Sequence[str], fmt: str) -> str:
    cols = [*by, "published", "items", "failed", "pending"]
    if fmt == "json":
        return json.dumps(rows, ensure_ascii=False, indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        w = csvcells.dict_writer(buf, cols, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        return buf.getvalue()
    raise InvalidInput(f"unknown format {fmt!r}; use table, csv or json")
