"""What a worker asks of the store: claims with leases, the start of a call, the record of outcomes.

Why a lease: a worker killed with ``kill -9`` in the middle of a batch cannot say goodbye. Each
claimed delivery carries ``lease_owner`` and ``lease_expires_at``; another worker (or the same one
restarted) takes it up again once the lease has expired, and a worker starting on the same host
releases at once the leases of processes that no longer exist. Channels make the re-run safe:
the webhook sends the same ``Idempotency-Key``, WeChat resumes from its saved state.

Right before each channel call the worker *starts* the delivery: one conditional write that counts
the attempt and holds only while the lease is still this worker's, no person has left a request on
the delivery (an edit, a withdrawal, a removed channel: :func:`publisher.pipeline.workflow.inflight._request`)
and the item is still at the version about to be sent. The workflow locks the same row to leave its
request, so either the start committed first (the call is in flight, and the request is settled when
it returns) or the request did (nothing of the old version goes out: the delivery is *withheld* and
the request settled without a call). An attempt is a call that was made, or may have been: a claim
that never reached its call (a worker killed with its backlog) uses none.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from abc import ABC, abstractmethod
from collections import defaultdict
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from publisher.channel import Post
from publisher.db import one_of, records
from publisher.models import Delivery, DeliveryOp, DeliveryStatus, Item
from publisher.pipeline.outcome import Claim, Finished, Outcome, OutcomeKind
from publisher.pipeline.store.connections import Connections
from publisher.pipeline.store.posts import PostCache
from publisher.pipeline.store.rate import RateLimiter
from publisher.pipeline.store.record import Recorder
from publisher.pipeline.workflow import Context

log = logging.getLogger(__name__)

D = Delivery.__table__  # type: ignore[attr-defined]
ITEM = Item.__table__  # type: ignore[attr-defined]
ACTIVE = (DeliveryStatus.PENDING, DeliveryStatus.WAITING)


class WhyNot(NamedTuple):
    """Why a start did not hold: the delivery as it is now."""

    status: str
    lease_owner: str | None
    requested: str | None


@dataclass(slots=True)
class Claimed:
    """What one claim took, and what it learnt of the channels it asked for."""

    claims: list[Claim]
    #: how many rows the claim query returned (fewer than its limit: it saw everything due)
    read: int
    #: per channel, how many due deliveries the claim found room for (before rate limits)
    taken: dict[str, int] = field(default_factory=dict)
    #: channels their rate limit held back, with their next free slot
    held_back: dict[str, datetime] = field(default_factory=dict)


class DeliveryStore(ABC):
    """The SQL of one worker's deliveries: every statement of the worker's hot path, built once.

    One implementation per engine where they differ (the claim query, the start of a call); what
    they share is here. Each list is bound as one value (db.one_of): building a statement, or
    expanding an ``in_`` list, cost more than running it.
    """

    #: the driver's placeholder, for the statements sent straight to it
    MARK = "?"

    def __init__(self, engine: Engine, ctx: Context, worker_id: str) -> None:
        self.engine = engine
        self.ctx = ctx
        self.worker_id = worker_id
        self.connections = Connections(engine)
        self.posts = PostCache(ctx, self.connections)
        self.recorder = Recorder(ctx, worker_id, self.connections)
        dialect = engine.dialect.name
        self.limiters = {
            n: RateLimiter(engine.dialect, n, s.rate_per_minute) for n, s in ctx.channels.items() if s.rate_per_minute
        }
        cols = (
            D.c.id,
            D.c.item_id,
            D.c.channel,
            D.c.op,
            D.c.attempts,
            # the state column as stored: parsed only for the rows kept (the query reads twice as many)
            self._raw_json(D.c.state),
            D.c.remote_id,
            D.c.url,
            D.c.published_at,
            D.c.due_at,
        )
        self.claim_q = self._claim_query(cols, one_of(dialect, D.c.channel, "channels"))
        self.claim_u = (
            sa.update(D)
            .where(one_of(dialect, D.c.id, "ids"))
            .values(
                status=DeliveryStatus.CLAIMED.value,
                lease_owner=sa.bindparam("owner"),
                lease_expires_at=sa.bindparam("until"),
                updated_at=sa.bindparam("now"),
            )
        )
        # the start of a call (see the module's docstring), as the driver's own SQL (see begin_call):
        # the row locked by the same write as the workflow's request, the attempt counted; publish and
        # update also need the item unchanged
        m = self.MARK
        start_sql = (
            f"UPDATE {D.name} SET attempts = {m} WHERE id = {m} AND lease_owner = {m} "
            f"AND status = '{DeliveryStatus.CLAIMED.value}' AND requested IS NULL"
        )
        #: by whether the item's version is checked too (publish and update; not a take-down)
        self.start_sql = {
            False: start_sql,
            True: f"{start_sql} AND (SELECT version FROM {ITEM.name} WHERE {ITEM.name}.id = {D.name}.item_id) = {m}",
        }
        self.why_not_sql = f"SELECT status, lease_owner, requested FROM {D.name} WHERE id = {m}"

    # ------------------------------------------------------------------- what differs by engine
    @abstractmethod
    def _claim_query(self, cols: tuple[Any, ...], channel_in: Any) -> Any:
        """Due deliveries (or expired leases) of ``:channels`` at ``:now``, oldest due first, ``:lim`` rows."""

    def _raw_json(self, column: Any) -> Any:
        """``column`` (JSON) as the driver returns it."""
        return column

    @abstractmethod
    def begin_call(self, delivery_id: int, attempt: int, version: int | None) -> tuple[bool, WhyNot | None]:
        """The start's one write: (started, else the delivery's status, lease owner and request)."""

    @abstractmethod
    def checkpointer(self) -> AbstractContextManager[Any]:
        """What keeps the store's own housekeeping off the worker's commits while it runs."""

    def _begin_call(self, raw: Any, delivery_id: int, attempt: int, version: int | None) -> tuple[bool, Any]:
        """The start's statements on the driver connection ``raw``."""
        args = (attempt, delivery_id, self.worker_id, *(() if version is None else (version,)))
        started = raw.execute(self.start_sql[version is not None], args).rowcount == 1
        return started, None if started else raw.execute(self.why_not_sql, (delivery_id,)).fetchone()

    # --------------------------------------------------------------------------- connections
    def hold_connections(self) -> None:
        """The calling thread keeps its connections until :meth:`release_connections` (a run)."""
        self.connections.hold()

    def release_connections(self) -> None:
        self.connections.release()

    # ------------------------------------------------------------------------------- claiming
    def claim(self, free: dict[str, int], capacity: int, limit: int, now: datetime, lease_until: datetime) -> Claimed:
        """Lease up to ``capacity`` due deliveries, at most ``free[channel]`` of each channel and what
        its rate allows, in one transaction; then read their posts in one batch."""
        with self.connections.writing() as conn:
            rows = records(conn.execute(self.claim_q, {"now": now, "channels": list(free), "lim": limit}))
            chosen: list[Any] = []
            taken: dict[str, int] = defaultdict(int)
            for row in rows:
                if len(chosen) >= capacity:
                    break
                if taken[row.channel] >= free[row.channel]:
                    continue
                taken[row.channel] += 1
                chosen.append(row)
            # one reservation per rate-limited channel for what this claim wants, in one order for
            # every worker (two claims never wait for each other's channel_rate rows crosswise)
            allowed = dict(taken)
            slots: dict[str, datetime] = {}
            for ch in sorted(taken.keys() & self.limiters.keys()):
                allowed[ch], slots[ch] = self.limiters[ch].reserve(conn, now, taken[ch])
            held_back = {ch: slots[ch] for ch, n in taken.items() if allowed[ch] < n}
            kept: list[Claim] = []
            for row in chosen:
                if allowed[row.channel] > 0:
                    allowed[row.channel] -= 1
                    kept.append(
                        Claim(
                            id=row.id,
                            item_id=row.item_id,
                            channel=row.channel,
                            op=row.op,
                            attempts=row.attempts + 1,
                            state=_state(row.state),
                            remote_id=row.remote_id,
                            url=row.url,
                            published_at=row.published_at,
                            due_at=row.due_at,
                        )
                    )
            if kept:
                params = {"ids": [c.id for c in kept], "owner": self.worker_id, "until": lease_until, "now": now}
                conn.execute(self.claim_u, params)
        # a delivery's start checks that its item has not changed since
        self.posts.load(c.item_id for c in kept)
        return Claimed(kept, len(rows), taken, held_back)

    def next_due_by_channel(self, channels: list[str], now: datetime) -> dict[str, datetime | None]:
        """Per channel, when its next delivery falls due after ``now`` (None: nothing due)."""
        out: dict[str, datetime | None] = dict.fromkeys(channels)
        with self.connections.reading() as conn:
            for ch, at in conn.execute(
                sa.select(D.c.channel, sa.func.min(D.c.due_at))
                .where(D.c.channel.in_(channels), D.c.status.in_([s.value for s in ACTIVE]), D.c.due_at > now)
                .group_by(D.c.channel)
            ):
                out[ch] = at
        return out

    def next_due(self, channels: list[str]) -> datetime | None:
        """When the next delivery of ``channels`` falls due or the next lease (of any) expires."""
        with self.connections.reading() as conn:
            a = conn.execute(
                sa.select(sa.func.min(D.c.due_at)).where(
                    D.c.status.in_([s.value for s in ACTIVE]), D.c.channel.in_(channels)
                )
            ).scalar()
            b = conn.execute(
                sa.select(sa.func.min(D.c.lease_expires_at)).where(D.c.status == DeliveryStatus.CLAIMED.value)
            ).scalar()
        vals = [v for v in (a, b) if v is not None]
        return min(vals) if vals else None

    # --------------------------------------------------------------------------------- leases
    def extend_leases(self, ids: list[int], until: datetime) -> None:
        with self.connections.writing() as conn:
            conn.execute(
                sa.update(D).where(D.c.id.in_(ids), D.c.lease_owner == self.worker_id).values(lease_expires_at=until)
            )

    def reap_dead_leases(self, now: datetime) -> int:
        """Expire at once the leases held by processes of this host that are gone (``kill -9``)."""
        host = socket.gethostname()
        with self.connections.writing() as conn:
            owners = (
                conn.execute(
                    sa.select(D.c.lease_owner)
                    .where(D.c.status == DeliveryStatus.CLAIMED.value, D.c.lease_owner.like(f"{host}:%"))
                    .distinct()
                )
                .scalars()
                .all()
            )
            dead = [o for o in owners if o != self.worker_id and not _pid_alive(int(o.split(":")[1]))]
            if not dead:
                return 0
            res = conn.execute(
                sa.update(D)
                .where(D.c.status == DeliveryStatus.CLAIMED.value, D.c.lease_owner.in_(dead))
                .values(lease_expires_at=now - timedelta(seconds=1))
            )
        log.info("released %d deliveries leased by dead workers %s", res.rowcount, dead)
        return res.rowcount

    def reap_orphans(self, held: set[int], now: datetime) -> int:
        """Expire the leases this worker holds in the store but not in memory (``held``)."""
        with self.connections.writing() as conn:
            mine = (
                conn.execute(
                    sa.select(D.c.id).where(
                        D.c.status == DeliveryStatus.CLAIMED.value, D.c.lease_owner == self.worker_id
                    )
                )
                .scalars()
                .all()
            )
            orphans = [i for i in mine if i not in held]
            if orphans:
                conn.execute(
                    sa.update(D)
                    .where(D.c.id.in_(orphans), D.c.lease_owner == self.worker_id)
                    .values(lease_expires_at=now - timedelta(seconds=1))
                )
        return len(orphans)

    def release(self, claims: list[Claim], now: datetime) -> None:
        """Hand back leases of deliveries never started (see Recorder.release)."""
        if claims:
            self.recorder.release(claims, now)

    # ------------------------------------------------------------------------------ the call
    def start(self, claim: Claim) -> tuple[OutcomeKind | None, Post | None]:
        """Start the call: (None, the post if the item is cleared), (LOST_LEASE, None), or
        (WITHHELD, None) where a person's request came first. Raises PrivacyRefused (a permanent
        failure, after the call was started) when the post holds a privacy finding nobody cleared.

        The post comes from the batch read at claim time; the start holds only while the item is at
        that version, so a stale post is read again, never sent.
        """
        for _ in range(3):
            snap = self.posts.get(claim.item_id)
            # a take-down needs no approval: any version will do
            version = None if claim.op == DeliveryOp.WITHDRAW else snap.version
            started, why = self.begin_call(claim.id, claim.attempts, version)
            if started:
                return None, snap.post_for(claim.op, claim.channel)
            if why is None or why.status != DeliveryStatus.CLAIMED or why.lease_owner != self.worker_id:
                return OutcomeKind.LOST_LEASE, None
            if why.requested:
                return OutcomeKind.WITHHELD, None
            self.posts.forget(claim.item_id)  # the item moved on without a request on this delivery
        log.warning("delivery %s: item %s keeps changing under its start; handed back", claim.id, claim.item_id)
        return OutcomeKind.WITHHELD, None

    def save_state(self, delivery_id: int, state: dict[str, Any], now: datetime) -> bool:
        """Keep a channel's progress on the delivery; False if the lease is no longer this worker's."""
        with self.engine.begin() as conn:
            res = conn.execute(
                sa.update(D)
                .where(D.c.id == delivery_id, D.c.lease_owner == self.worker_id)
                .values(state=state, updated_at=now)
            )
        return res.rowcount == 1

    def record(self, finished: list[Finished], now: datetime) -> list[Outcome]:
        """Record many outcomes in one transaction (see Recorder.record)."""
        return self.recorder.record(finished, now)


def _state(value: Any) -> dict[str, Any]:
    """A delivery's saved state from ``_raw_json``: almost always empty, so not parsed then."""
    if value is None or value == "{}" or value == "null":
        return {}
    if isinstance(value, str):
        value = json.loads(value)
    return dict(value or {})


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
