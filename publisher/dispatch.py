"""The dispatcher: claims due deliveries with a lease, calls the channel, records the outcome, retries.

Why a lease: a worker killed with ``kill -9`` in the middle of a batch cannot say goodbye. Each
claimed delivery carries ``lease_owner`` and ``lease_expires_at``; another worker (or the same one
restarted) takes it up again once the lease has expired, and a worker starting on the same host
releases at once the leases of processes that no longer exist. Channels make the re-run safe:
the webhook sends the same ``Idempotency-Key``, WeChat resumes from its saved state.

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

import logging
import os
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from publisher.channel import (
    ChannelError,
    DeliveryContext,
    InProgress,
    PermanentChannelError,
    Post,
    Published,
    QuotaExceeded,
)
from publisher.models import AuditLog, Delivery, DeliveryAttempt, DeliveryOp, DeliveryStatus, Item, utcnow
from publisher.workflow import Context, build_post, is_cleared, rollup

log = logging.getLogger("publisher.dispatch")

D = Delivery.__table__  # type: ignore[attr-defined]
ATTEMPT = DeliveryAttempt.__table__  # type: ignore[attr-defined]
AUDIT = AuditLog.__table__  # type: ignore[attr-defined]

ACTIVE = (DeliveryStatus.PENDING, DeliveryStatus.WAITING)


def make_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class RunSummary:
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())


class _RateLimiter:
    """A per-channel spacing limiter: at most ``per_minute`` calls a minute, evenly spread."""

    def __init__(self, per_minute: int | None) -> None:
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self.next_at: float | None = None
        self.lock = threading.Lock()

    def available(self, now: float, want: int) -> int:
        if not self.interval:
            return want
        with self.lock:
            # no banking of idle time beyond one slot; none at all before the first call, or the
            # first minute would see one call more than the rate
            start = now if self.next_at is None else max(self.next_at, now - self.interval)
            n = 0
            while n < want and start <= now:
                start += self.interval
                n += 1
            self.next_at = start
            return n


class Dispatcher:
    """Runs deliveries. ``Dispatcher(engine=..., ctx=...)``; nothing global."""

    def __init__(
        self,
        *,
        engine: Engine,
        ctx: Context,
        worker_id: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        threads: int | None = None,
        on_outcome: Callable[[str, str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.ctx = ctx
        self.settings = ctx.settings
        self.worker_id = worker_id or make_worker_id()
        self.clock = clock
        self.threads = threads or self.settings.worker.threads
        self.on_outcome = on_outcome
        self.inflight: dict[int, str] = {}
        self._lock = threading.Lock()
        self._limiters = {n: _RateLimiter(s.rate_per_minute) for n, s in ctx.channels.items()}
        self._post_cache: dict[tuple[int, int], Post] = {}
        self.wake = threading.Event()
        self.stop = threading.Event()

    # ---------------------------------------------------------------------------------- claiming
    def _active_channels(self) -> list[str]:
        return [n for n, s in self.ctx.channels.items() if s.enabled and not s.paused]

    def claim(self, capacity: int) -> list[tuple[int, str]]:
        """Lease up to ``capacity`` due deliveries within each channel's free concurrency and rate."""
        if capacity <= 0:
            return []
        now = self.clock()
        with self._lock:
            busy: dict[str, int] = defaultdict(int)
            for ch in self.inflight.values():
                busy[ch] += 1
        free = {
            n: self.ctx.channels[n].max_concurrency - busy[n]
            for n in self._active_channels()
            if self.ctx.channels[n].max_concurrency - busy[n] > 0
        }
        if not free:
            return []
        due = sa.or_(
            sa.and_(D.c.status.in_([s.value for s in ACTIVE]), D.c.due_at <= now),
            sa.and_(D.c.status == DeliveryStatus.CLAIMED.value, D.c.lease_expires_at < now),
        )
        query = (
            sa.select(D.c.id, D.c.channel)
            .where(due, D.c.channel.in_(list(free)))
            .order_by(D.c.due_at, D.c.id)
            .limit(max(capacity * 4, self.settings.worker.batch_size))
        )
        if self.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        lease_until = now + timedelta(seconds=self.settings.worker.lease_seconds)
        mono = time.monotonic()
        with self.engine.begin() as conn:
            chosen: list[tuple[int, str]] = []
            taken: dict[str, int] = defaultdict(int)
            for did, ch in conn.execute(query):
                if len(chosen) >= capacity:
                    break
                if taken[ch] >= free[ch]:
                    continue
                taken[ch] += 1
                chosen.append((did, ch))
            # the rate limiter is asked once per channel for what this claim wants
            allowed = {ch: self._limiters[ch].available(mono, n) for ch, n in taken.items()}
            kept: list[tuple[int, str]] = []
            for did, ch in chosen:
                if allowed[ch] > 0:
                    allowed[ch] -= 1
                    kept.append((did, ch))
            if kept:
                conn.execute(
                    sa.update(D)
                    .where(D.c.id.in_([d for d, _ in kept]))
                    .values(
                        status=DeliveryStatus.CLAIMED.value,
                        lease_owner=self.worker_id,
                        lease_expires_at=lease_until,
                        attempts=D.c.attempts + 1,
                        updated_at=now,
                    )
                )
        with self._lock:
            for did, ch in kept:
                self.inflight[did] = ch
        return kept

    def renew_leases(self) -> None:
        with self._lock:
            ids = list(self.inflight)
        if not ids:
            return
        until = self.clock() + timedelta(seconds=self.settings.worker.lease_seconds)
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(D)
                .where(D.c.id.in_(ids), D.c.lease_owner == self.worker_id)
                .values(lease_expires_at=until)
            )

    def release_dead_leases(self) -> int:
        """Free at once the leases held by processes of this host that are gone (``kill -9``)."""
        host = socket.gethostname()
        now = self.clock()
        with self.engine.begin() as conn:
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

    def next_due(self) -> datetime | None:
        with self.engine.begin() as conn:
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
    def execute(self, delivery_id: int) -> str:
        """Run one claimed delivery and record its outcome; returns the outcome's name."""
        started = self.clock()
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                d = session.get(Delivery, delivery_id)
                if d is None or d.status != DeliveryStatus.CLAIMED or d.lease_owner != self.worker_id:
                    session.rollback()
                    return "lost-lease"
                item = session.get(Item, d.item_id)
                assert item is not None
                cleared = d.op == DeliveryOp.WITHDRAW or is_cleared(session, item)
                key = (item.id, item.version)
                post = self._post_cache.get(key)  # type: ignore[arg-type]
                if post is None and cleared:
                    post = build_post(self.ctx, session, item)
                    self._post_cache[key] = post  # type: ignore[index]
                session.expunge_all()  # keep the loaded rows usable after the session closes
            if not cleared or post is None:
                # unreachable through the workflow; kept as the last line of defence
                return self._record(
                    d, started, PermanentChannelError("refused: the item lacks its two approvals")
                )
            spec = self.ctx.channels[d.channel]
            dctx = DeliveryContext(
                delivery_id=d.id,  # type: ignore[arg-type]
                attempt=d.attempts,
                state=dict(d.state or {}),
                remote_id=d.remote_id,
                url=d.url,
                _saver=lambda state: self._save_state(delivery_id, state),
            )
            try:
                if d.op == DeliveryOp.PUBLISH:
                    result: Any = spec.channel.publish(post, dctx)
                elif d.op == DeliveryOp.UPDATE:
                    result = spec.channel.update(post, dctx)
                else:
                    spec.channel.withdraw(post, dctx)
                    result = Published(url=d.url, remote_id=d.remote_id)
            except ChannelError as exc:
                result = exc
            except Exception as exc:  # a bug in a channel must not stop the worker; keep the reason
                log.exception("channel %s raised an unexpected error on delivery %s", d.channel, delivery_id)
                result = exc
            return self._record(d, started, result, state=dctx.state)
        finally:
            with self._lock:
                self.inflight.pop(delivery_id, None)

    def _save_state(self, delivery_id: int, state: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            res = conn.execute(
                sa.update(D)
                .where(D.c.id == delivery_id, D.c.lease_owner == self.worker_id)
                .values(state=state, updated_at=self.clock())
            )
        if res.rowcount != 1:
            raise PermanentChannelError(f"delivery {delivery_id}: lease lost while saving progress")

    def _record(
        self, d: Delivery, started: datetime, result: Any, state: dict[str, Any] | None = None
    ) -> str:
        now = self.clock()
        values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None, "updated_at": now}
        if state is not None:
            values["state"] = state
        message = code = None
        if isinstance(result, Published):
            outcome, to = "done", DeliveryStatus.DONE
            values.update(last_error=None, last_error_kind=None, last_error_code=None, note=None)
            if d.op == DeliveryOp.WITHDRAW:
                values["withdrawn_at"] = now
            else:
                values.update(url=result.url or d.url, remote_id=result.remote_id or d.remote_id)
                if d.published_at is None:
                    values["published_at"] = now
        elif isinstance(result, InProgress):
            outcome, to = "waiting", DeliveryStatus.WAITING
            values.update(
                due_at=now + result.check_again_in, attempts=D.c.attempts - 1, note=result.note or None
            )
        elif isinstance(result, QuotaExceeded):
            outcome, to = "quota", DeliveryStatus.PENDING
            message, code = str(result), result.code
            values.update(due_at=result.until, attempts=D.c.attempts - 1)
        elif isinstance(result, PermanentChannelError):
            outcome, to = "permanent", DeliveryStatus.FAILED
            message, code = str(result), result.code
        else:
            outcome = result.kind if isinstance(result, ChannelError) else "error"
            message = (
                str(result) if isinstance(result, ChannelError) else f"{type(result).__name__}: {result}"
            )
            code = getattr(result, "code", None)
            if d.attempts >= self.settings.worker.max_attempts:
                to = DeliveryStatus.FAILED
                message = f"{message} (gave up after {d.attempts} attempts)"
            else:
                to = DeliveryStatus.PENDING
                values["due_at"] = now + self.settings.backoff(d.attempts)
        if message is not None:
            values.update(last_error=message[:2000], last_error_kind=outcome,
                          last_error_code=None if code is None else str(code))  # fmt: skip
        values["status"] = to.value
        with Session(self.engine, expire_on_commit=False) as session:
            conn = session.connection()
            res = conn.execute(
                sa.update(D)
                .where(
                    D.c.id == d.id,
                    D.c.lease_owner == self.worker_id,
                    D.c.status == DeliveryStatus.CLAIMED.value,
                )
                .values(**values)
            )
            if res.rowcount != 1:
                # another worker took the delivery over after our lease expired: its record wins
                session.rollback()
                return "lost-lease"
            conn.execute(
                sa.insert(ATTEMPT).values(
                    delivery_id=d.id,
                    number=d.attempts,
                    op=d.op,
                    worker=self.worker_id,
                    started_at=started,
                    finished_at=now,
                    outcome=outcome,
                    message=message,
                    code=None if code is None else str(code),
                )  # fmt: skip
            )
            conn.execute(
                sa.insert(AUDIT).values(
                    at=now,
                    actor=f"worker {self.worker_id}",
                    entity="delivery",
                    entity_id=d.id,
                    action=d.op,
                    from_state=DeliveryStatus.CLAIMED.value,
                    to_state=to.value,
                    reason=message,
                    detail={
                        "item_id": d.item_id,
                        "channel": d.channel,
                        "outcome": outcome,
                        "url": values.get("url"),
                    },
                )  # fmt: skip
            )
            if to in (DeliveryStatus.DONE, DeliveryStatus.FAILED):
                item = session.get(Item, d.item_id)
                if item is not None:
                    rollup(session, item, f"worker {self.worker_id}")
            session.commit()
        if self.on_outcome:
            self.on_outcome(d.channel, outcome)
        log.info("delivery %s (item %s → %s, %s): %s%s", d.id, d.item_id, d.channel, d.op, outcome,
                 f" — {message}" if message else "")  # fmt: skip
        return outcome

    # ------------------------------------------------------------------------------------ loops
    def run(self, *, once: bool = False, horizon: timedelta = timedelta(seconds=10),
            progress: Callable[[str], None] | None = None) -> RunSummary:  # fmt: skip
        """Work until stopped; with ``once``, until nothing is due within ``horizon`` and nothing is in flight."""
        summary = RunSummary()
        self.release_dead_leases()
        futures: set[Future[str]] = set()
        last_renew = time.monotonic()
        renew_every = self.settings.worker.lease_seconds / 3
        with ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="deliver") as pool:
            while not self.stop.is_set():
                claimed = self.claim(self.threads - len(futures))
                for did, _ch in claimed:
                    futures.add(pool.submit(self.execute, did))
                if time.monotonic() - last_renew > renew_every:
                    self.renew_leases()
                    last_renew = time.monotonic()
                if futures:
                    done, futures = wait(
                        futures, timeout=self.settings.worker.poll_seconds, return_when=FIRST_COMPLETED
                    )
                    for f in done:
                        outcome = f.result()
                        summary.outcomes[outcome] += 1
                        if progress:
                            progress(outcome)
                    continue
                nxt = self.next_due()
                now = self.clock()
                if once and (nxt is None or nxt - now > horizon):
                    break
                delay = self.settings.worker.poll_seconds
                if nxt is not None:
                    delay = max(0.0, min(delay, (nxt - now).total_seconds()))
                if self.wake.wait(timeout=delay):
                    self.wake.clear()
            for f in futures:
                summary.outcomes[f.result()] += 1
        return summary


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
