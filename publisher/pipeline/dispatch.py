"""The dispatcher: claims due deliveries with a lease, calls the channel, records the outcome, retries.

Why a lease: a worker killed with ``kill -9`` in the middle of a batch cannot say goodbye. Each
claimed delivery carries ``lease_owner`` and ``lease_expires_at``; another worker (or the same one
restarted) takes it up again once the lease has expired, and a worker starting on the same host
releases at once the leases of processes that no longer exist. Channels make the re-run safe:
the webhook sends the same ``Idempotency-Key``, WeChat resumes from its saved state.

Right before each channel call the worker *starts* the delivery: one conditional write that counts
the attempt and holds only while the lease is still this worker's, no person has left a request on
the delivery (an edit, a withdrawal, a removed channel: :func:`publisher.pipeline.workflow._request`) and the
item is still at the version about to be sent. The workflow locks the same row to leave its request,
so either the start committed first (the call is in flight, and the request is settled when it
returns) or the request did (nothing of the old version goes out: the delivery is *withheld* and the
request settled without a call). An attempt is a call that was made, or may have been: a claim that
never reached its call (a worker killed with its backlog) uses none.

Outcome → what happens:

=====================  =================================================================
Published              done; URL and remote id stored; the item's state rolls up
InProgress             waiting; asked again after ``check_again_in`` (no attempt used)
TransientChannelError  pending again after exponential back-off with jitter, until
                       ``worker.max_attempts`` is used up, then failed
AmbiguousOutcome       like transient; the channel reconciles on the next attempt
QuotaExceeded          pending until the quota resets (no attempt used)
PermanentChannelError  failed at once; the reason is kept on the delivery
anything else          like transient, with the exception's type and text as the reason
=====================  =================================================================
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from publisher.channel import (
    AmbiguousOutcome,
    ChannelError,
    DeliveryContext,
    InProgress,
    PermanentChannelError,
    Post,
    Published,
    QuotaExceeded,
)
from publisher.db import DriverMany, WalCheckpointer, one_of, read_only, records
from publisher.models import (
    AuditLog,
    ChannelRate,
    Delivery,
    DeliveryAttempt,
    DeliveryOp,
    DeliveryStatus,
    Item,
    ItemStatus,
    status_literal,
    utcnow,
)
from publisher.pipeline.workflow import AUDIT_KEYS, Context
from publisher.pipeline.workflow.inflight import Settlement, by_hand, settle_request, unknown_fate
from publisher.pipeline.workflow.posts import PostSnapshot, snapshot_posts
from publisher.pipeline.workflow.states import rollup_items

log = logging.getLogger("publisher.pipeline.dispatch")

D = Delivery.__table__  # type: ignore[attr-defined]
ATTEMPT = DeliveryAttempt.__table__  # type: ignore[attr-defined]
AUDIT = AuditLog.__table__  # type: ignore[attr-defined]
ITEM = Item.__table__  # type: ignore[attr-defined]

ACTIVE = (DeliveryStatus.PENDING, DeliveryStatus.WAITING)
#: the columns of an attempt row
ATTEMPT_KEYS = ("delivery_id", "number", "op", "worker", "started_at", "finished_at", "outcome", "message", "code")


def make_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class RunSummary:
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())


class _RateLimiter:
    """One channel's ``rate_per_minute``, held across every worker of the store: calls evenly spread.

    The channel's next free slot is its ``channel_rate`` row, reserved inside the claim transaction
    by one statement: an upsert that locks the row, so that concurrent claims on PostgreSQL wait
    for each other there (SQLite's BEGIN IMMEDIATE already runs one claim at a time). Idle time is
    not banked beyond one slot, and not at all before the first call, or the first minute would
    see one call more than the rate. Slots are reckoned by the dispatcher's clock, so the workers'
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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


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


@dataclass(slots=True)
class Claim:
    """A delivery this worker holds the lease of, as it was read when claimed (no ORM load later)."""

    id: int
    item_id: int
    channel: str
    op: str
    #: this call's attempt number (the attempts stored count from its start, not from the claim)
    attempts: int
    state: dict[str, Any]
    remote_id: str | None
    url: str | None
    published_at: datetime | None
    #: when it fell due (scheduling lateness is measured from here)
    due_at: datetime | None = None


class _WhyNot(NamedTuple):
    """Why a start did not hold: the delivery as it is now."""

    status: str
    lease_owner: str | None
    requested: str | None


@dataclass(slots=True)
class _Finished:
    """A channel call that returned; its outcome waits in memory for the next batched record."""

    claim: Claim
    started: datetime
    result: Any
    state: dict[str, Any] | None
    #: when the call returned (monotonic), for the record window
    done_at: float = field(default_factory=time.monotonic)
    #: when the call returned, by the dispatcher's clock: the attempt's finished_at (not the record's time)
    finished: datetime | None = None
    #: the item version the call carried (None: no call was made)
    version: int | None = None


class Dispatcher:
    """Runs deliveries. ``Dispatcher(engine=..., ctx=...)``; nothing global.

    Threads: the loop thread claims into a backlog and records outcomes; delivery threads take from
    the backlog (within each channel's max_concurrency), re-check the lease and call the channel.
    With ``threads=1`` there is no delivery thread: the loop thread delivers between its other steps.
    Claims and records are batched (one transaction for many deliveries) because per-delivery
    transactions cost more than a local HTTP call: a worker holds a small backlog of leased deliveries
    (``_hold_cap`` per channel) and records the
    outcomes that finished in the last ``RECORD_EVERY`` seconds together. A worker killed between the
    channel call and the record leaves the lease behind; the delivery is run again, and channels
    make that safe (Idempotency-Key, saved state), exactly as for a kill during the call itself.
    """

    #: record finished deliveries at least this often (seconds) ...
    RECORD_EVERY = 0.1
    #: ... or as soon as this many are waiting
    RECORD_BATCH = 200
    #: with one thread, the loop thread delivers for this long (seconds) between its other steps
    INLINE_SLICE = 0.05
    #: how often (seconds) a worker looks for leases of dead processes on its host (one small query)
    RELEASE_EVERY = 2.0

    def __init__(
        self,
        *,
        engine: Engine,
        ctx: Context,
        worker_id: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        threads: int | None = None,
        on_outcome: Callable[[str, str], None] | None = None,
        on_start: Callable[[str, float], None] | None = None,
    ) -> None:
        """``on_outcome(channel, outcome)`` after each record; ``on_start(channel, lateness_seconds)``
        when a channel call starts (publisher.metrics.WorkerMetrics has both)."""
        self.engine = engine
        self.ctx = ctx
        self.settings = ctx.settings
        self.worker_id = worker_id or make_worker_id()
        self.clock = clock
        self.threads = threads or self.settings.worker.threads
        self.on_outcome = on_outcome
        self.on_start = on_start
        #: every delivery this worker holds a lease on (backlog, running, or awaiting its record)
        self.inflight: dict[int, Claim] = {}
        self._lock = threading.Lock()
        self._limiters = {
            n: _RateLimiter(engine.dialect, n, s.rate_per_minute) for n, s in ctx.channels.items() if s.rate_per_minute
        }
        self._snapshots: dict[int, PostSnapshot] = {}
        self._read_engine = read_only(engine)
        #: each delivery thread keeps one read connection for its lease checks
        self._local = threading.local()
        #: claimed, not started; taken by the delivery threads themselves (no hand-off per delivery)
        self._backlog: dict[str, deque[Claim]] = defaultdict(deque)
        self._running: dict[str, int] = defaultdict(int)
        self._cond = threading.Condition()
        self._closing = False
        self._results: deque[tuple[str, Claim] | _Finished] = deque()
        #: claims whose start found a person's request: settled without a call by the loop thread
        self._withheld: list[Claim] = []
        self._lost = 0
        self._db_pause_until = 0.0
        self._db_failed = False
        self._ready = threading.Event()
        self._unrecorded: list[_Finished] = []
        self._dry_until: dict[str, float] = {}
        self.wake = threading.Event()
        self.stop = threading.Event()
        #: with one delivery thread, the loop thread is that thread (see _deliver_inline)
        self._inline = self.threads == 1
        # The start of a call (see the module's docstring), as the driver's own SQL (see _begin_call):
        # the row locked by the same write as the workflow's request, the attempt counted; publish
        # and update also need the item unchanged.
        mark = "?" if engine.dialect.name == "sqlite" else "%s"
        start_sql = (
            f"UPDATE {D.name} SET attempts = {mark} WHERE id = {mark} AND lease_owner = {mark} "
            f"AND status = '{DeliveryStatus.CLAIMED.value}' AND requested IS NULL"
        )
        #: by whether the item's version is checked too (publish and update; not a take-down)
        self._start_sql = {
            False: start_sql,
            True: f"{start_sql} AND (SELECT version FROM {ITEM.name} WHERE {ITEM.name}.id = {D.name}.item_id) = {mark}",
        }
        self._why_not_sql = f"SELECT status, lease_owner, requested FROM {D.name} WHERE id = {mark}"
        self._update_by_id = sa.update(D).where(D.c.id == sa.bindparam("b_id"))
        # Statements of the hot path, built once, with each list bound as one value (db.one_of):
        # building a statement, or expanding an ``in_`` list, cost more than running it.
        dialect = engine.dialect.name
        active = [s.value for s in ACTIVE]
        cols = (
            D.c.id,
            D.c.item_id,
            D.c.channel,
            D.c.op,
            D.c.attempts,
            # the state column as stored: parsed only for the rows kept (the query reads twice as many)
            _raw_json(engine, D.c.state),
            D.c.remote_id,
            D.c.url,
            D.c.published_at,
            D.c.due_at,
        )
        channel_in = one_of(dialect, D.c.channel, "channels")
        limit = sa.bindparam("lim", type_=sa.Integer)
        if engine.dialect.name == "postgresql":
            claim_q = (
                sa.select(*cols)
                .where(
                    sa.or_(
                        sa.and_(D.c.status.in_(active), D.c.due_at <= sa.bindparam("now")),
                        sa.and_(D.c.status == DeliveryStatus.CLAIMED.value, D.c.lease_expires_at < sa.bindparam("now")),
                    ),
                    channel_in,
                )
                .order_by(D.c.due_at, D.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        else:
            # SQLite answered the OR above by reading every delivery of the channel and sorting them
            # (4 ms for 10,000); one ordered range of (status, due_at) per status, each stopping at the
            # limit, costs a few rows each. Literal statuses: SQLite may then read ix_delivery_owed
            parts = [
                sa.select(*cols).where(D.c.status == status_literal(st), D.c.due_at <= sa.bindparam("now"), channel_in)
                for st in ACTIVE
            ] + [
                sa.select(*cols).where(
                    D.c.status == status_literal(DeliveryStatus.CLAIMED),
                    D.c.lease_expires_at < sa.bindparam("now"),
                    channel_in,
                )
            ]
            subs = [p.order_by(D.c.due_at, D.c.id).limit(limit).subquery() for p in parts]
            union = sa.union_all(*(sa.select(q) for q in subs)).subquery()
            claim_q = sa.select(union).order_by(union.c.due_at, union.c.id).limit(limit)
        self._claim_q = claim_q
        self._claim_u = (
            sa.update(D)
            .where(one_of(dialect, D.c.id, "ids"))
            .values(
                status=DeliveryStatus.CLAIMED.value,
                lease_owner=sa.bindparam("owner"),
                lease_expires_at=sa.bindparam("until"),
                updated_at=sa.bindparam("now"),
            )
        )
        # SQLite: the status compared as an expression, which no index holds, so that the ids pick the
        # rows (rowid look-ups); compared as a column, SQLite walked (status, …) over every claimed
        # delivery of every worker for each record (PostgreSQL's plan uses the ids either way)
        status = D.c.status + "" if dialect == "sqlite" else D.c.status
        self._owned_q = (
            sa.select(D.c.id, D.c.requested, D.c.request_lease)
            .where(
                one_of(dialect, D.c.id, "ids"),
                D.c.lease_owner == sa.bindparam("owner"),
                status == DeliveryStatus.CLAIMED.value,
            )
            .order_by(D.c.id)
            .with_for_update()
        )
        # the record's executemany statements go straight to the driver (see DriverMany)
        self._insert_attempt = DriverMany(engine.dialect, sa.insert(ATTEMPT), ATTEMPT_KEYS)
        self._insert_audit = DriverMany(engine.dialect, sa.insert(AUDIT), AUDIT_KEYS)
        self._updates: dict[tuple[str, ...], DriverMany] = {}

    # ---------------------------------------------------------------------------------- claiming
    def _active_channels(self) -> list[str]:
        return [n for n, s in self.ctx.channels.items() if s.enabled and not s.paused]

    def _hold_cap(self, channel: str) -> int:
        """How many leases of ``channel`` this worker may hold: what can run, plus a short backlog."""
        running = min(self.ctx.channels[channel].max_concurrency, self.threads)
        return running + max(running, self.settings.worker.batch_size)

    def claim(self, capacity: int | None = None, channels: list[str] | None = None) -> list[Claim]:
        """Lease due deliveries, up to each channel's hold cap and rate, in one transaction, and read
        their posts (in one batch: a delivery's start checks that its item has not changed since)."""
        now = self.clock()
        held = self._waiting_or_running()
        free = {n: self._hold_cap(n) - held[n] for n in (channels or self._active_channels())}
        free = {n: f for n, f in free.items() if f > 0}
        capacity = sum(free.values()) if capacity is None else min(capacity, sum(free.values()))
        if capacity <= 0:
            return []
        lease_until = now + timedelta(seconds=self.settings.worker.lease_seconds)
        mono = time.monotonic()
        # one channel: the query's limit is what is kept; several: read more, as one may be full
        limit = capacity if len(free) == 1 else max(capacity * 2, self.settings.worker.batch_size)
        with self._writing() as conn:
            rows = records(conn.execute(self._claim_q, {"now": now, "channels": list(free), "lim": limit}))
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
            for ch in sorted(taken.keys() & self._limiters.keys()):
                allowed[ch], slots[ch] = self._limiters[ch].reserve(conn, now, taken[ch])
            limited = {ch for ch, n in taken.items() if allowed[ch] < n}
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
                conn.execute(
                    self._claim_u,
                    {"ids": [c.id for c in kept], "owner": self.worker_id, "until": lease_until, "now": now},
                )
        # not asked again before its next delivery falls due (at most a poll later, or a wake-up): a
        # channel that had less due than it could take, when the query saw everything due; and a
        # channel its rate limit holds back, until its next slot
        dry = [ch for ch, f in free.items() if len(rows) < limit and taken[ch] < f]
        if dry:
            for ch, at in self._next_due_by_channel(dry, now).items():
                wait = self.settings.worker.poll_seconds if at is None else (at - now).total_seconds()
                self._dry_until[ch] = mono + max(0.0, min(wait, self.settings.worker.poll_seconds))
        for ch in limited:
            wait = (slots[ch] - now).total_seconds()
            self._dry_until[ch] = max(self._dry_until.get(ch, 0.0), mono + wait)
        with self._lock:
            for c in kept:
                self.inflight[c.id] = c
        self._prepare(kept)
        return kept

    def _next_due_by_channel(self, channels: list[str], now: datetime) -> dict[str, datetime | None]:
        out: dict[str, datetime | None] = dict.fromkeys(channels)
        with self._reading() as conn:
            for ch, at in conn.execute(
                sa.select(D.c.channel, sa.func.min(D.c.due_at))
                .where(D.c.channel.in_(channels), D.c.status.in_([s.value for s in ACTIVE]), D.c.due_at > now)
                .group_by(D.c.channel)
            ):
                out[ch] = at
        return out

    def renew_leases(self) -> None:
        with self._lock:
            ids = list(self.inflight)
        if not ids:
            return
        until = self.clock() + timedelta(seconds=self.settings.worker.lease_seconds)
        with self._writing() as conn:
            conn.execute(
                sa.update(D).where(D.c.id.in_(ids), D.c.lease_owner == self.worker_id).values(lease_expires_at=until)
            )

    def release_dead_leases(self) -> int:
        """Free at once the leases held by processes of this host that are gone (``kill -9``)."""
        host = socket.gethostname()
        now = self.clock()
        with self._writing() as conn:
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

    def release_orphans(self) -> int:
        """Free leases this worker holds in the store but not in memory.

        That happens when the connection drops while a claim commits: the server may have committed
        it, but this worker never learnt which rows it got. Without this they would sit until their
        lease expired (``worker.lease_seconds``).
        """
        with self._lock:
            held = set(self.inflight)
        now = self.clock()
        with self._writing() as conn:
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
        if orphans:
            log.info("released %d deliveries claimed by this worker during a lost connection", len(orphans))
        return len(orphans)

    def release(self, claims: list[Claim]) -> None:
        """Hand back leases of deliveries never started (the worker is stopping): due again at once.

        A request a person left meanwhile (``Delivery.requested``) is settled here as for a call that
        did not go out (:func:`publisher.pipeline.workflow.settle_request`): handed back as it is, a delivery of
        a withdrawn or edited item would sit pending to publish, its request waiting for a record that
        never comes.
        """
        if not claims:
            return
        now = self.clock()
        actor = f"worker {self.worker_id}"
        # never started: no attempt was counted (see the module's docstring)
        with self._writing() as conn:
            owned = {
                r.id: r for r in conn.execute(self._owned_q, {"ids": [c.id for c in claims], "owner": self.worker_id})
            }
            plain = [c for c in claims if c.id in owned and not owned[c.id].requested]
            if plain:
                conn.execute(
                    self._update_by_id.where(
                        D.c.lease_owner == self.worker_id, D.c.status == DeliveryStatus.CLAIMED.value
                    ),
                    [
                        {
                            "b_id": c.id,
                            "status": DeliveryStatus.PENDING.value,
                            "lease_owner": None,
                            "lease_expires_at": None,
                        }
                        for c in plain
                    ],
                )
            audits: list[dict[str, Any]] = []
            settled_items: set[int] = set()
            for c in claims:
                req = owned.get(c.id)
                if req is None or not req.requested:
                    continue
                values: dict[str, Any] = {
                    "status": DeliveryStatus.PENDING.value,
                    "lease_owner": None,
                    "lease_expires_at": None,
                    "updated_at": now,
                }
                to, why = settle_request(
                    self.ctx,
                    conn,
                    Settlement(
                        requested=req.requested,
                        request_lease=req.request_lease,
                        worker=self.worker_id,
                        delivery_id=c.id,
                        op=c.op,
                        channel=c.channel,
                        item_id=c.item_id,
                        sent_version=None,
                        outcome="released",
                        to=DeliveryStatus.PENDING,
                    ),
                    values,
                )
                conn.execute(sa.update(D).where(D.c.id == c.id).values(**values))
                audits.append(
                    dict(
                        at=now,
                        actor=actor,
                        entity="delivery",
                        entity_id=c.id,
                        action=f"settle {req.requested}",
                        from_state=DeliveryStatus.CLAIMED.value,
                        to_state=to.value,
                        reason=f"released unsent; {why}",
                        detail={"item_id": c.item_id, "channel": c.channel, "op": values.get("op", c.op)},
                    )
                )
                if to in (DeliveryStatus.DONE, DeliveryStatus.FAILED, DeliveryStatus.CANCELLED):
                    settled_items.add(c.item_id)
            if audits:
                self._insert_audit.execute(conn, audits)
            if settled_items:
                rollup_items(conn, settled_items, actor)
        with self._lock:
            for c in claims:
                self.inflight.pop(c.id, None)

    def next_due(self) -> datetime | None:
        with self._reading() as conn:
            a = conn.execute(
                sa.select(sa.func.min(D.c.due_at)).where(
                    D.c.status.in_([s.value for s in ACTIVE]), D.c.channel.in_(self._active_channels())
                )
            ).scalar()
            b = conn.execute(
                sa.select(sa.func.min(D.c.lease_expires_at)).where(D.c.status == DeliveryStatus.CLAIMED.value)
            ).scalar()
        vals = [v for v in (a, b) if v is not None]
        return min(vals) if vals else None

    # --------------------------------------------------------------------------------- executing
    def _prepare(self, claims: list[Claim]) -> None:
        """Build the posts of freshly claimed deliveries in one batch. A store that does not answer
        now leaves them unbuilt: each delivery's start then reads its own."""
        want = list({c.item_id for c in claims})
        if not want:
            return
        try:
            with self._reading() as conn:
                snaps = snapshot_posts(self.ctx, conn, want)
        except sa.exc.SQLAlchemyError as exc:
            log.warning("cannot read the posts of %d claimed deliveries now (%s)", len(claims), exc)
            return
        with self._lock:
            if len(self._snapshots) > 20_000:
                self._snapshots.clear()
            self._snapshots.update(snaps)

    def _snapshot(self, item_id: int) -> PostSnapshot:
        snap = self._snapshots.get(item_id)
        if snap is None:
            with self._reading() as conn:
                snap = snapshot_posts(self.ctx, conn, [item_id])[item_id]
            with self._lock:
                self._snapshots[item_id] = snap
        return snap

    def _start(self, claim: Claim) -> tuple[str, Post | None]:
        """Start the call (see the module's docstring): ("started", the post if the item is cleared),
        ("lost-lease", None), or ("withheld", None) where a person's request came first.

        The post comes from the batch read at claim time; the start holds only while the item is at
        that version, so a stale post is read again, never sent.
        """
        for _ in range(3):
            snap = self._snapshot(claim.item_id)
            # a take-down needs no approval: any version will do
            version = None if claim.op == DeliveryOp.WITHDRAW else snap.version
            started, why = self._begin_call(claim.id, claim.attempts, version)
            if started:
                return "started", snap.post_for(claim.op, claim.channel)
            if why is None or why.status != DeliveryStatus.CLAIMED or why.lease_owner != self.worker_id:
                return "lost-lease", None
            if why.requested:
                return "withheld", None
            with self._lock:  # the item moved on without a request on this delivery: read it again
                self._snapshots.pop(claim.item_id, None)
        log.warning("delivery %s: item %s keeps changing under its start; handed back", claim.id, claim.item_id)
        return "withheld", None

    def _begin_call(self, delivery_id: int, attempt: int, version: int | None) -> tuple[bool, _WhyNot | None]:
        """The start's one write: (started, else the delivery's status, lease owner and request).

        Sent straight to the driver: through SQLAlchemy the start cost the loop more than the rest of
        a delivery's bookkeeping (docs/benchmarks.md, "the start of a call"). PostgreSQL: the UPDATE
        alone, in autocommit: one round trip, and its row lock orders it against a person's request
        as a transaction would. SQLite: a lone statement would read an older snapshot than the write
        lock it then takes (SQLITE_BUSY_SNAPSHOT, no waiting), so it runs inside BEGIN IMMEDIATE.
        """
        sql = self._start_sql[version is not None]
        args = (attempt, delivery_id, self.worker_id, *(() if version is None else (version,)))
        transaction = self.engine.dialect.name == "sqlite"
        with self._driver_connection() as raw:
            if transaction:
                raw.execute("BEGIN IMMEDIATE")
            try:
                started = raw.execute(sql, args).rowcount == 1
                why = None if started else raw.execute(self._why_not_sql, (delivery_id,)).fetchone()
            except BaseException:
                if transaction:
                    raw.execute("ROLLBACK")
                raise
            if transaction:
                raw.execute("COMMIT")
        return started, None if why is None else _WhyNot(*why)

    @contextmanager
    def _driver_connection(self) -> Iterator[Any]:
        """The calling thread's connection as the driver's own, outside any transaction of SQLAlchemy's:
        SQLite's write connection (each statement autocommits unless BEGIN is sent), PostgreSQL's
        autocommit one. A driver error comes out as SQLAlchemy's (what the callers handle) and the
        connection is thrown away."""
        attr, engine = ("wconn", self.engine) if self.engine.dialect.name == "sqlite" else ("conn", self._read_engine)
        kept = getattr(self._local, "hold", False)
        conn = self._kept(attr, engine) if kept else engine.connect()
        try:
            yield conn.connection.driver_connection
        except self.engine.dialect.loaded_dbapi.Error as exc:
            conn.invalidate(exc)  # SQLAlchemy did not see the error: the pool must not reuse (or reset) it
            if kept:
                self._drop(attr)
            raise sa.exc.OperationalError("start of a delivery's call", None, exc) from exc
        finally:
            if not kept:
                conn.close()

    def _execute(self, claim: Claim) -> None:
        """Delivery thread: start the call, call the channel, leave the outcome for the loop thread."""
        started = self.clock()
        try:
            verdict, post = self._start(claim)
        except sa.exc.SQLAlchemyError as exc:
            log.warning(
                "delivery %s: cannot start its call (%s); trying again shortly",
                claim.id,
                exc,
                extra={"delivery_id": claim.id, "item_id": claim.item_id},
            )
            self.stop.wait(1.0)
            self._push(("retry", claim))
            return
        except Exception as exc:  # e.g. an asset missing on disk: keep the reason on the delivery
            log.exception("delivery %s: cannot build its post", claim.id)
            self._push(_Finished(claim, started, exc, None))
            return
        if verdict != "started":
            self._push((verdict, claim))
            return
        if post is None:
            # unreachable through the workflow (an edit or a withdrawal leaves a request, which
            # withholds the call); kept as the last line of defence
            result: Any = PermanentChannelError(
                "refused: the item lacks its two approvals, was withdrawn, or no longer targets this channel"
            )
            self._push(_Finished(claim, started, result, None))
            return
        spec = self.ctx.channels[claim.channel]
        if self.on_start is not None and claim.due_at is not None:
            self.on_start(claim.channel, (started - claim.due_at).total_seconds())
        dctx = DeliveryContext(
            delivery_id=claim.id,
            attempt=claim.attempts,
            state=dict(claim.state),
            remote_id=claim.remote_id,
            url=claim.url,
            _saver=lambda state: self._save_state(claim.id, state),
        )
        try:
            if claim.op == DeliveryOp.PUBLISH:
                result = spec.channel.publish(post, dctx)
            elif claim.op == DeliveryOp.UPDATE:
                result = spec.channel.update(post, dctx)
            else:
                spec.channel.withdraw(post, dctx)
                result = Published(url=claim.url, remote_id=claim.remote_id)
        except ChannelError as exc:
            result = exc
        except Exception as exc:  # a bug in a channel must not stop the worker; keep the reason
            log.exception(
                "channel %s raised an unexpected error on delivery %s",
                claim.channel,
                claim.id,
                extra={"delivery_id": claim.id, "item_id": claim.item_id},
            )
            result = exc
        self._push(_Finished(claim, started, result, dctx.state, version=post.version))

    def _push(self, entry: tuple[str, Claim] | _Finished) -> None:
        claim = entry.claim if isinstance(entry, _Finished) else entry[1]
        if isinstance(entry, _Finished) and entry.finished is None:
            entry.finished = self.clock()
        with self._cond:
            self._running[claim.channel] -= 1
            if isinstance(entry, tuple) and entry[0] == "retry":
                self._backlog[claim.channel].appendleft(claim)
            else:
                self._results.append(entry)
            self._cond.notify_all()
            # wake the loop thread only when it has work: a batch to record, a backlog to refill
            left = sum(len(q) for q in self._backlog.values())
            wake = len(self._results) >= self.RECORD_BATCH or left <= self.threads or not any(self._running.values())
        if wake:
            self._ready.set()

    def _take(self, block: bool = True) -> Claim | None:
        """The next backlog delivery whose channel has a free slot (None: closing, or none free and
        not ``block``)."""
        with self._cond:
            while not self._closing and not self.stop.is_set():
                for ch, queue in self._backlog.items():
                    if queue and self._running[ch] < self.ctx.channels[ch].max_concurrency:
                        self._running[ch] += 1
                        # the channel served goes to the back of the line: channels take turns, so one
                        # with a deep backlog and free slots cannot hold every thread while another's
                        # deliveries wait (seen in the chaos run: webhook calls untouched for 30-120 s)
                        self._backlog[ch] = self._backlog.pop(ch)
                        return queue.popleft()
                if not block:
                    return None
                self._cond.wait(timeout=1.0)
            return None

    def _deliver_inline(self) -> None:
        """One delivery thread: the loop thread delivers from the backlog itself, for a short while.

        A second thread would only take turns with this one under the interpreter lock, and each
        hand-off of the lock costs more than a local HTTP call's bookkeeping (docs/benchmarks.md). The
        loop comes back every ``INLINE_SLICE`` seconds, so records, claims and lease renewals keep
        their pace between deliveries; a single channel call is not interrupted (leases are renewed
        before and after it, not during it).
        """
        until = time.monotonic() + self.INLINE_SLICE
        while (claim := self._take(block=False)) is not None:
            self._execute(claim)
            if time.monotonic() >= until:
                return

    def _deliver_loop(self) -> None:
        self._hold_connections()
        try:
            while (claim := self._take()) is not None:
                self._execute(claim)
        finally:
            self._release_connections()

    # ----------------------------------------------------------------------------- connections
    # While a worker runs, each of its threads keeps its own connections between transactions: a
    # checkout from the pool costs a round trip on PostgreSQL (pool_pre_ping's ping) and more Python
    # than a batched claim's own statements. Outside run() (tests, tools) each step checks one out.
    def _hold_connections(self) -> None:
        """From now on the calling thread keeps its connections (until _release_connections)."""
        self._local.hold = True

    @contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        """One transaction, on the calling thread's kept write connection while it holds one."""
        if not getattr(self._local, "hold", False):
            with self.engine.begin() as conn:
                yield conn
            return
        conn = self._kept("wconn", self.engine)
        try:
            with conn.begin():
                yield conn
        except BaseException:
            self._drop("wconn")
            raise

    @contextmanager
    def _reading(self) -> Iterator[sa.Connection]:
        """Reads that need no snapshot across statements (see publisher.db.read_only), on the calling
        thread's kept read connection while it holds one."""
        if not getattr(self._local, "hold", False):
            with self._read_engine.connect() as conn:
                yield conn
            return
        conn = self._kept("conn", self._read_engine)
        try:
            yield conn
            conn.rollback()  # ends the read (PostgreSQL: nothing is sent in autocommit); conn stays
        except BaseException:
            self._drop("conn")
            raise

    def _kept(self, attr: str, engine: Engine) -> sa.Connection:
        """The calling thread's kept connection ``attr``, checked out of ``engine`` the first time."""
        conn = getattr(self._local, attr, None)
        if conn is None:
            conn = engine.connect()
            setattr(self._local, attr, conn)
        return conn

    def _drop(self, attr: str) -> None:
        """Close the calling thread's kept connection ``attr``, if any: it may be broken (a cut, a
        restarted server), and the next step takes another."""
        conn = getattr(self._local, attr, None)
        if conn is not None:
            setattr(self._local, attr, None)
            conn.close()

    def _release_connections(self) -> None:
        """Close the connections the calling thread kept (back to the pool)."""
        self._local.hold = False
        self._drop("conn")
        self._drop("wconn")

    def execute(self, delivery_id: int) -> str:
        """Run one delivery this worker has claimed and record its outcome (tests, tools)."""
        with self._lock:
            claim = self.inflight.get(delivery_id)
        if claim is None:
            return "lost-lease"
        with self._cond:
            self._running[claim.channel] += 1
        self._execute(claim)
        entry = self._results.pop()
        if isinstance(entry, _Finished):
            return self._record([entry])[0]
        if entry[0] == "withheld":
            self.release([claim])
        else:
            with self._lock:
                self.inflight.pop(delivery_id, None)
        return entry[0]

    def _save_state(self, delivery_id: int, state: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            res = conn.execute(
                sa.update(D)
                .where(D.c.id == delivery_id, D.c.lease_owner == self.worker_id)
                .values(state=state, updated_at=self.clock())
            )
        if res.rowcount != 1:
            raise PermanentChannelError(f"delivery {delivery_id}: lease lost while saving progress")

    # --------------------------------------------------------------------------------- recording
    def _outcome(
        self, f: _Finished, now: datetime
    ) -> tuple[dict[str, Any], str, DeliveryStatus, str | None, str | None]:
        """The delivery's new column values, outcome name, new state, error message and code."""
        c, result = f.claim, f.result
        values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None, "updated_at": now}
        if f.state is not None:
            values["state"] = f.state
        message = code = None
        if isinstance(result, Published):
            outcome, to = "done", DeliveryStatus.DONE
            values.update(last_error=None, last_error_kind=None, last_error_code=None, note=None)
            if c.op == DeliveryOp.WITHDRAW:
                values["withdrawn_at"] = now
            else:
                values.update(url=result.url or c.url, remote_id=result.remote_id or c.remote_id)
                if c.published_at is None:
                    values["published_at"] = now
                elif c.op == DeliveryOp.PUBLISH:
                    values["withdrawn_at"] = None  # published again after a take-down (channel re-added)
        elif isinstance(result, InProgress):
            outcome, to = "waiting", DeliveryStatus.WAITING
            values.update(due_at=now + result.check_again_in, attempts=c.attempts - 1, note=result.note or None)
        elif isinstance(result, QuotaExceeded):
            outcome, to = "quota", DeliveryStatus.PENDING
            message, code = str(result), result.code
            values.update(due_at=result.until, attempts=c.attempts - 1)
        elif isinstance(result, PermanentChannelError):
            outcome, to = "permanent", DeliveryStatus.FAILED
            message, code = str(result), result.code
        else:
            outcome = result.kind if isinstance(result, ChannelError) else "error"
            message = str(result) if isinstance(result, ChannelError) else f"{type(result).__name__}: {result}"
            code = getattr(result, "code", None)
            values["attempts"] = c.attempts  # also where the call never started (its post could not be built)
            if c.attempts >= self.settings.worker.max_attempts:
                to = DeliveryStatus.FAILED
                message = f"{message} (gave up after {c.attempts} attempts)"
            else:
                to = DeliveryStatus.PENDING
                values["due_at"] = now + self.settings.backoff(c.attempts)
        if message is not None:
            values.update(
                last_error=message[:2000], last_error_kind=outcome, last_error_code=None if code is None else str(code)
            )
        values["status"] = to.value
        return values, outcome, to, message, None if code is None else str(code)

    def _record(self, finished: list[_Finished]) -> list[str]:
        """Record many outcomes in one transaction; a delivery whose lease was lost is left alone."""
        now = self.clock()
        actor = f"worker {self.worker_id}"
        planned = [(f, *self._outcome(f, now)) for f in finished]
        outcomes: list[str] = []
        with self._writing() as conn:
            owned = {
                r.id: r
                for r in records(
                    conn.execute(self._owned_q, {"ids": [f.claim.id for f in finished], "owner": self.worker_id})
                )
            }
            groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
            attempts: list[dict[str, Any]] = []
            audits: list[dict[str, Any]] = []
            finished_items: set[int] = set()
            late: list[_Finished] = []
            for f, values, outcome, to, message, code in planned:
                c = f.claim
                if c.id not in owned:
                    # another worker took the delivery over after our lease expired: its record wins,
                    # unless our call put a copy up where a take-down is now owed (see _late)
                    outcomes.append("lost-lease")
                    late.append(f)
                    continue
                outcomes.append(outcome)
                attempts.append(
                    dict(
                        delivery_id=c.id,
                        number=c.attempts,
                        op=c.op,
                        worker=self.worker_id,
                        started_at=f.started,
                        finished_at=f.finished or now,
                        outcome=outcome,
                        message=message,
                        code=code,
                    )
                )
                audits.append(
                    dict(
                        at=now,
                        actor=actor,
                        entity="delivery",
                        entity_id=c.id,
                        action=c.op,
                        from_state=DeliveryStatus.CLAIMED.value,
                        to_state=to.value,
                        reason=message,
                        detail={
                            "item_id": c.item_id,
                            "channel": c.channel,
                            "outcome": outcome,
                            "url": values.get("url"),
                        },
                    )
                )
                if (req := owned[c.id]).requested:
                    # a withdrawal, an edit or a re-approval came while the call was in flight (workflow._request)
                    settled, why = settle_request(
                        self.ctx,
                        conn,
                        Settlement(
                            requested=req.requested,
                            request_lease=req.request_lease,
                            worker=self.worker_id,
                            delivery_id=c.id,
                            op=c.op,
                            channel=c.channel,
                            item_id=c.item_id,
                            sent_version=f.version,
                            outcome=outcome,
                            to=to,
                        ),
                        values,
                    )
                    audits.append(
                        dict(
                            at=now,
                            actor=actor,
                            entity="delivery",
                            entity_id=c.id,
                            action=f"settle {req.requested}",
                            from_state=to.value,
                            to_state=settled.value,
                            reason=why,
                            detail={"item_id": c.item_id, "channel": c.channel, "op": values.get("op", c.op)},
                        )
                    )
                    to = settled
                groups[tuple(sorted(values))].append({"b_id": c.id, **values})
                if to in (DeliveryStatus.DONE, DeliveryStatus.FAILED, DeliveryStatus.CANCELLED):
                    finished_items.add(c.item_id)
            for keys, rows in groups.items():
                many = self._updates.get(keys)
                if many is None:
                    many = self._updates[keys] = DriverMany(self.engine.dialect, self._update_by_id, keys)
                many.execute(conn, rows)
            self._insert_attempt.execute(conn, attempts)
            self._insert_audit.execute(conn, audits)
            if finished_items:
                rollup_items(conn, finished_items, actor)
        for f in late:  # rare: each in its own transaction, its row locked as the workflow locks it
            with self._writing() as conn:
                if (audit_row := self._late(conn, f, now, actor)) is not None:
                    self._insert_audit.execute(conn, [audit_row])
        with self._lock:
            for f in finished:
                self.inflight.pop(f.claim.id, None)
        info = log.isEnabledFor(logging.INFO)  # the message and its extras cost even when dropped
        for (f, _v, _o, _to, message, _code), outcome in zip(planned, outcomes, strict=True):
            c = f.claim
            if self.on_outcome:
                self.on_outcome(c.channel, outcome)
            if info:
                log.info(
                    "delivery %s (item %s → %s, %s): %s%s",
                    c.id,
                    c.item_id,
                    c.channel,
                    c.op,
                    outcome,
                    f" — {message}" if message and outcome != "lost-lease" else "",
                    extra={"delivery_id": c.id, "item_id": c.item_id, "channel": c.channel, "outcome": outcome},
                )
        return outcomes

    def _late(self, conn: sa.Connection, f: _Finished, now: datetime, actor: str) -> dict[str, Any] | None:
        """A publish or update whose lease ran out mid-call came back: what it did must not be lost.

        Whoever took the delivery over recorded its own outcome, not this call's. When the call says it
        put a copy up (or may have) and the item has since been withdrawn or the channel taken off it,
        the store would otherwise believe nothing is up there, or that it is already down (the copy may
        have landed after the take-down): the take-down is owed again (a take-down of a copy already
        gone succeeds on every channel), or a person is told to check where nobody can know. On a
        live item a publication the store did not know of is recorded (a later withdrawal then takes
        it down). A delivery claimed again right now is left to its worker. Returns the audit row.
        """
        c, result = f.claim, f.result
        published = isinstance(result, Published)
        if c.op == DeliveryOp.WITHDRAW or not (published or isinstance(result, (AmbiguousOutcome, InProgress))):
            return None
        # the delivery row first, then the item (as workflow.get_item locks them): a withdrawal either
        # committed before (read below) or waits and then finds what this writes
        row = conn.execute(
            sa.select(D.c.status, D.c.op, D.c.published_at, D.c.withdrawn_at, D.c.url, D.c.remote_id)
            .where(D.c.id == c.id)
            .with_for_update()
        ).first()
        if row is None or row.status == DeliveryStatus.CLAIMED.value:
            return None
        item = conn.execute(sa.select(ITEM.c.status, ITEM.c.channels).where(ITEM.c.id == c.item_id)).one()
        live = row.published_at is not None and row.withdrawn_at is None
        values: dict[str, Any] = {"updated_at": now}
        if published:
            values.update(published_at=row.published_at or f.finished or now)
            if not live:  # the copy this call put up is the one to know of
                values.update(url=result.url or row.url, remote_id=result.remote_id or row.remote_id)
        down = item.status == ItemStatus.WITHDRAWN.value or c.channel not in (item.channels or ())
        if not down:
            if not published or row.published_at is not None:
                return None
            why = f"a call whose lease had run out published after all ({result.url}): recorded as live"
            to = row.status
        else:
            owed = row.op == DeliveryOp.WITHDRAW.value and row.status in (
                DeliveryStatus.PENDING.value,
                DeliveryStatus.FAILED.value,
            )
            if owed and (live or not published):
                return None  # the take-down (or a person's check) is already owed
            spec = self.ctx.channels.get(c.channel)
            values.update(
                op=DeliveryOp.WITHDRAW.value,
                due_at=now,
                attempts=0,
                withdrawn_at=None,
                last_error_kind=None,
                last_error_code=None,
                requested=None,
                request_lease=None,
                lease_owner=None,
                lease_expires_at=None,
            )
            if not published:
                to = DeliveryStatus.FAILED.value
                why = unknown_fate(
                    c.channel,
                    "item withdrawn or channel removed, and a call whose lease had run out "
                    f"came back {type(result).__name__}",
                )
                values.update(status=to, last_error=why)
            elif spec is None or not spec.channel.supports_withdraw:
                to = DeliveryStatus.FAILED.value
                why = f"a call whose lease had run out published after the withdrawal: {by_hand(c.channel)}"
                values.update(status=to, last_error=by_hand(c.channel))
            else:
                to = DeliveryStatus.PENDING.value
                why = "a call whose lease had run out published after the withdrawal: queued withdraw"
                values.update(status=to, last_error=None)
        conn.execute(sa.update(D).where(D.c.id == c.id).values(**values))
        return dict(
            at=now,
            actor=actor,
            entity="delivery",
            entity_id=c.id,
            action="late outcome",
            from_state=row.status,
            to_state=to,
            reason=why,
            detail={
                "item_id": c.item_id,
                "channel": c.channel,
                "op": values.get("op", row.op),
                "url": values.get("url"),
            },
        )

    # ------------------------------------------------------------------------------------ loops
    def _drain(self) -> None:
        """Take what the delivery threads finished: outcomes to record, withheld calls, lost leases."""
        while self._results:
            entry = self._results.popleft()
            if isinstance(entry, _Finished):
                self._unrecorded.append(entry)
            elif entry[0] == "withheld":
                self._withheld.append(entry[1])
            else:
                with self._lock:
                    self.inflight.pop(entry[1].id, None)
                self._lost += 1

    def _held_locally(self) -> tuple[int, int]:
        """(running, waiting in the backlog)."""
        with self._cond:
            return sum(self._running.values()), sum(len(q) for q in self._backlog.values())

    def _waiting_or_running(self) -> dict[str, int]:
        """Per channel, the deliveries in the backlog or being sent (not those awaiting their record:
        counting those starved the delivery threads while a record batch filled up)."""
        with self._cond:
            held: dict[str, int] = defaultdict(int)
            for ch, q in self._backlog.items():
                held[ch] += len(q)
            for ch, n in self._running.items():
                held[ch] += n
        return held

    def _want_claim(self, mono: float) -> list[str]:
        """Channels whose backlog is below half their hold cap (empty, when the loop thread delivers
        itself: nothing runs meanwhile, and one claim then fills the whole cap) and that are not known
        to be dry."""
        held = self._waiting_or_running()
        return [
            ch
            for ch in self._active_channels()
            if (held[ch] == 0 if self._inline else held[ch] * 2 <= self._hold_cap(ch))
            and self._dry_until.get(ch, 0.0) <= mono
        ]

    def run(
        self,
        *,
        once: bool = False,
        horizon: timedelta = timedelta(seconds=10),
        progress: Callable[[str], None] | None = None,
    ) -> RunSummary:
        """Work until stopped; with ``once``, until nothing is due within ``horizon`` and nothing is in flight.

        Database errors (a cut connection, a restarted server, a locked SQLite file) never end the
        loop: the step is retried after a short pause, and outcomes not yet recorded stay in memory
        until the store answers again.
        """
        summary = RunSummary()
        self._lost = 0
        self._db_pause_until = 0.0
        self._db_failed = False
        self._closing = False
        workers = [
            threading.Thread(target=self._deliver_loop, name=f"deliver-{n}", daemon=True)
            for n in range(0 if self._inline else self.threads)
        ]
        for t in workers:
            t.start()
        self._hold_connections()
        try:
            with WalCheckpointer(self.engine):
                self._loop(summary, once, horizon, progress)
            if self._lost:
                summary.outcomes["lost-lease"] += self._lost
        finally:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            for t in workers:
                t.join()
            self._release_connections()
        return summary

    def _loop(
        self, summary: RunSummary, once: bool, horizon: timedelta, progress: Callable[[str], None] | None
    ) -> None:
        renew_every = min(self.settings.worker.lease_seconds / 3, 10.0)
        last_renew = last_release = -1e9
        while True:
            mono = time.monotonic()
            stopping = self.stop.is_set()
            try:
                self._drain()
                if self._lost:
                    summary.outcomes["lost-lease"] += self._lost
                    self._lost = 0
                if self._withheld:  # a person acted before these calls started: settled without a call
                    self.release(self._withheld)
                    summary.outcomes["withheld"] += len(self._withheld)
                    self._withheld = []
                if not stopping and mono >= self._db_pause_until:
                    # a dead neighbour's deliveries (same host) are taken up within RELEASE_EVERY
                    if mono - last_release > self.RELEASE_EVERY:
                        self.release_dead_leases()
                        last_release = mono
                    if mono - last_renew > renew_every:
                        self.renew_leases()
                        last_renew = mono
                    if self._db_failed:
                        self.release_orphans()
                        self._db_failed = False
                    if self.wake.is_set():
                        self.wake.clear()
                        self._dry_until.clear()
                    wanted = self._want_claim(mono)
                    if wanted:
                        claims = self.claim(channels=wanted)
                        with self._cond:
                            for c in claims:
                                self._backlog[c.channel].append(c)
                            self._cond.notify_all()
                busy, waiting = self._held_locally()
                if self._unrecorded and (
                    stopping
                    or (busy == 0 and waiting == 0)
                    or len(self._unrecorded) >= self.RECORD_BATCH
                    or mono - self._unrecorded[0].done_at >= self.RECORD_EVERY
                ):
                    batch, self._unrecorded = self._unrecorded, []
                    try:
                        outs = self._record(batch)
                    except BaseException:
                        self._unrecorded = batch + self._unrecorded
                        raise
                    for o in outs:
                        summary.outcomes[o] += 1
                        if progress:
                            progress(o)
                if stopping and busy == 0 and not self._results and not self._unrecorded:
                    with self._cond:
                        backlog = [c for q in self._backlog.values() for c in q]
                        self._backlog.clear()
                    self.release(backlog)
                    return
            except sa.exc.SQLAlchemyError as exc:
                log.warning("database error, retrying in 1 s: %s", exc)
                self._db_pause_until = time.monotonic() + 1.0
                self._db_failed = True
                self.stop.wait(0.2)
                continue
            if self._inline and waiting and not stopping:
                self._deliver_inline()
                continue
            if busy or waiting or self._unrecorded or self._results or stopping:
                timeout = self.RECORD_EVERY
                if self._unrecorded:
                    timeout = max(0.0, self.RECORD_EVERY - (mono - self._unrecorded[0].done_at))
                if self._ready.wait(timeout=timeout):
                    self._ready.clear()
                continue
            # idle: nothing held. Sleep until the next due time, a poll, or a wake-up.
            try:
                nxt = self.next_due()
            except sa.exc.SQLAlchemyError as exc:
                log.warning("database error, retrying in 1 s: %s", exc)
                self.stop.wait(1.0)
                continue
            now = self.clock()
            if once and (nxt is None or nxt - now > horizon):
                return
            delay = self.settings.worker.poll_seconds
            if nxt is not None:
                delay = max(0.0, min(delay, (nxt - now).total_seconds()))
            if delay == 0.0 and self._dry_until:
                # due, yet nothing was claimed: held back by a rate limit (or locked by another worker's
                # claim). Ask again at the first hint, not at once: that was a busy loop of claims.
                delay = max(0.0, min(self._dry_until.values()) - time.monotonic())
            self.wake.wait(timeout=delay)
            self.wake.clear()
            self._dry_until.clear()


def _raw_json(engine: Engine, column: Any) -> Any:
    """``column`` (JSON) as the driver returns it: SQLite's text is parsed later, only when needed."""
    if engine.dialect.name == "sqlite":
        return sa.type_coerce(column, sa.Text).label(column.name)
    return column


def _state(value: Any) -> dict[str, Any]:
    """A delivery's saved state from :func:`_raw_json`: almost always empty, so not parsed then."""
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
