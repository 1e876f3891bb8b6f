"""Rate limits held in the store, so every worker and web process shares them: a channel's calls per
minute (``RateLimiter``), and a public form's submissions per client address (``count_in_window``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from publisher.models import ChannelRate, FormRate

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


class RateLimiter:
    """One channel's ``rate_per_minute``, held across every worker of the store: calls evenly spread.

    The channel's next free slot is its ``channel_rate`` row, reserved inside the claim transaction
    by one statement: an upsert that locks the row, so that concurrent claims on PostgreSQL wait
    for each other there (SQLite's BEGIN IMMEDIATE already runs one claim at a time). Idle time is
    not banked beyond one slot, and not at all before the first call, or the first minute would
    see one call more than the rate. Slots are reckoned by the worker's clock, so the workers'
    clocks must agree (``publisher doctor`` checks them).
    """

    def __init__(self, dialect: sa.Dialect, channel: str, per_minute: int) -> None:
        self.channel = channel
        #: rounded up: ``per_minute`` slots never fit in less than a minute
        self.interval_us = -(-60_000_000 // per_minute)
        self.stmt = _reservation(dialect)
        #: the next free slot as this worker last saw it; the stored one only moves on from there
        self.next_slot: datetime | None = None

    def reserve(self, conn: sa.Connection, now: datetime, want: int) -> tuple[int, datetime]:
        """(how many of ``want`` calls may start at ``now``, the channel's next free slot)."""
        # known without asking the store (nor locking its row); unless this clock was set back since
        if self.next_slot is not None and now < self.next_slot <= now + self.interval_us * _US:
            return 0, self.next_slot
        granted, slot = conn.execute(
            self.stmt, {"ch": self.channel, "now": (now - _EPOCH) // _US, "iv": self.interval_us, "want": want}
        ).one()
        self.next_slot = _EPOCH + timedelta(microseconds=slot)
        return granted, self.next_slot


def _reservation(dialect: sa.Dialect) -> Any:
    """The upsert that reserves up to ``want`` slots of channel ``ch`` at ``now`` (microseconds).

    ``start`` is the first slot still free: the stored one, but never more than one interval back
    (idle time is not banked beyond one slot), nor more than one interval ahead (a slot further
    ahead was written by a clock since set back, or by a worker with a longer interval: waiting for
    it could stall the channel for as long). A channel never called before gets one slot, now.
    """
    if dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert

        greatest, least = sa.func.greatest, sa.func.least
    else:
        from sqlalchemy.dialects.sqlite import insert

        greatest, least = sa.func.max, sa.func.min
    t = ChannelRate.__table__  # type: ignore[attr-defined]
    now = sa.bindparam("now", type_=sa.BigInteger)
    iv = sa.bindparam("iv", type_=sa.BigInteger)
    start = greatest(least(t.c.next_slot_us, now + iv), now - iv)
    want = sa.bindparam("want", type_=sa.BigInteger)
    n = sa.case((start > now, 0), else_=least(want, (now - start) // iv + 1))
    return (
        insert(t)
        .values(channel=sa.bindparam("ch"), next_slot_us=now + iv, granted=1)
        .on_conflict_do_update(index_elements=[t.c.channel], set_={"granted": n, "next_slot_us": start + n * iv})
        .returning(t.c.granted, t.c.next_slot_us)
    )


def count_in_window(conn: sa.Connection, key: str, now: datetime, window: timedelta) -> int:
    """Count one more hit of ``key`` in its current fixed window and return the count, window included.

    One upsert that locks the key's row (PostgreSQL) or runs under SQLite's single writer, so two
    submissions at the same moment never both read the old count. A window starts at the first hit
    after the previous one ended; a burst across that edge may see up to twice the limit, which is
    enough to stop a flood and never needs a sweep of old rows.
    """
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    t = FormRate.__table__  # type: ignore[attr-defined]
    now_us = (now - _EPOCH) // _US
    expired = t.c.window_start_us <= now_us - window // _US
    stmt = (
        insert(t)
        .values(key=key, window_start_us=now_us, count=1)
        .on_conflict_do_update(
            index_elements=[t.c.key],
            set_={
                "count": sa.case((expired, 1), else_=t.c.count + 1),
                "window_start_us": sa.case((expired, now_us), else_=t.c.window_start_us),
            },
        )
        .returning(t.c.count)
    )
    return int(conn.execute(stmt).scalar_one())
