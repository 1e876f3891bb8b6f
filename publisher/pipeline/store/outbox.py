"""All the SQL of the notification sender (publisher.pipeline.notify): claims with a lease, the record
of a send, the release of a dead sender's claims, a digest's rows, a person's choice.

The same promises as the delivery store (publisher.pipeline.store.base): a claim is one transaction
that takes the oldest due message (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the write lock on
SQLite), leases it and counts its attempt; a record holds only while the lease is still the
sender's; a sender on the same host whose process is gone loses its leases at once.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from publisher.notification import Notification, NotificationStatus, NotifyMode, NotifyPref
from publisher.pipeline.store.base import _pid_alive
from publisher.pipeline.store.rate import RateLimiter

N = Notification.__table__  # type: ignore[attr-defined]
PREF = NotifyPref.__table__  # type: ignore[attr-defined]
PENDING, CLAIMED = NotificationStatus.PENDING.value, NotificationStatus.CLAIMED.value


@dataclass(frozen=True)
class Paced:
    """A claim its transport's pace refused: nothing of ``transport`` before ``until``."""

    transport: str
    until: datetime


class OutboxStore:
    """One sender's statements on the ``notification`` table. ``rates``: messages a minute per transport,
    held across every sender of the store (the channels' rate limiter, keyed ``notify:NAME``)."""

    def __init__(self, engine: Engine, owner: str, lease_seconds: int, rates: dict[str, int]) -> None:
        self.engine = engine
        self.owner = owner
        self.lease = timedelta(seconds=lease_seconds)
        self.limiters = {t: RateLimiter(engine.dialect, f"notify:{t}", n) for t, n in rates.items() if n}
        self._skip_locked = engine.dialect.name == "postgresql"

    def _locking(self, q: Any) -> Any:
        return q.with_for_update(skip_locked=True) if self._skip_locked else q

    def claim(self, now: datetime, held: list[str]) -> Any | Paced | None:
        """Lease the oldest due message (or one whose lease ended) of a transport not in ``held``; its
        row with the attempt counted, :class:`Paced` when its transport's pace has no slot, or None."""
        due = sa.or_(
            sa.and_(N.c.status == PENDING, N.c.due_at <= now),
            sa.and_(N.c.status == CLAIMED, N.c.lease_expires_at < now),
        )
        q = sa.select(N).where(due).order_by(N.c.due_at, N.c.id).limit(1)
        if held:
            q = q.where(N.c.transport.not_in(held))
        with self.engine.begin() as conn:
            row = conn.execute(self._locking(q)).first()
            if row is None:
                return None
            limiter = self.limiters.get(row.transport)
            if limiter is not None and row.mode == NotifyMode.IMMEDIATE:
                granted, slot = limiter.reserve(conn, now, 1)
                if not granted:
                    return Paced(row.transport, slot)
            conn.execute(
                sa.update(N)
                .where(N.c.id == row.id)
                .values(
                    status=CLAIMED, lease_owner=self.owner, lease_expires_at=now + self.lease, attempts=row.attempts + 1
                )
            )
        # as stored now: the attempt is counted by the claim, right before the send
        return SimpleNamespace(**{**row._asdict(), "attempts": row.attempts + 1})

    def claim_digest(self, row: Any, last: datetime, now: datetime) -> list[Any]:
        """The other pending digest messages of ``row``'s person and transport queued before the digest
        time ``last``, leased with it (one message for all)."""
        q = (
            sa.select(N)
            .where(
                N.c.user_id == row.user_id,
                N.c.transport == row.transport,
                N.c.mode == NotifyMode.DIGEST.value,
                N.c.status == PENDING,
                N.c.created_at <= last,
                N.c.id != row.id,
            )
            .order_by(N.c.id)
        )
        with self.engine.begin() as conn:
            mates = conn.execute(self._locking(q)).all()
            if mates:
                conn.execute(
                    sa.update(N)
                    .where(N.c.id.in_([m.id for m in mates]))
                    .values(status=CLAIMED, lease_owner=self.owner, lease_expires_at=now + self.lease)
                )
        return list(mates)

    def record(self, ids: list[int], **values: Any) -> list[int]:
        """Write what a send came to on ``ids``, in one transaction, where the lease is still this
        sender's; returns the ids whose lease was lost (their record is left alone)."""
        values = {"lease_owner": None, "lease_expires_at": None, **values}
        lost = []
        with self.engine.begin() as conn:
            for i in ids:
                res = conn.execute(
                    sa.update(N).where(N.c.id == i, N.c.lease_owner == self.owner, N.c.status == CLAIMED).values(values)
                )
                if res.rowcount != 1:
                    lost.append(i)
        return lost

    def reap_dead(self, now: datetime) -> int:
        """Expire at once the leases of senders on this host whose process is gone (``kill -9``)."""
        host = socket.gethostname()
        with self.engine.begin() as conn:
            owners = conn.execute(
                sa.select(N.c.lease_owner).where(N.c.status == CLAIMED, N.c.lease_owner.like(f"{host}:%")).distinct()
            ).scalars()
            dead = [o for o in owners if o != self.owner and not _pid_alive(int(o.split(":")[1]))]
            if not dead:
                return 0
            res = conn.execute(
                sa.update(N)
                .where(N.c.status == CLAIMED, N.c.lease_owner.in_(dead))
                .values(lease_expires_at=now - timedelta(seconds=1))
            )
        return res.rowcount

    def pref(self, user_id: int) -> Any:
        """The person's choice (quiet hours), or None."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(PREF).where(PREF.c.user_id == user_id)).first()

    def waiting(self, now: datetime, transports: list[str]) -> list[str]:
        """Which of ``transports`` have a message due now."""
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(N.c.transport)
                    .where(N.c.status == PENDING, N.c.due_at <= now, N.c.transport.in_(transports))
                    .distinct()
                ).scalars()
            )
