"""The worker: claims due deliveries with a lease, calls the channel, records the outcome, retries.

The SQL of all this (claims, leases, the start of a call, the record) is the delivery store's
(:mod:`publisher.pipeline.store`, whose docstring says why leases and starts); what an outcome does
to a delivery is :mod:`publisher.pipeline.outcome`'s. This module holds the threads and their loop.
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
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from publisher.channel import DeliveryContext, PermanentChannelError
from publisher.models import utcnow
from publisher.pipeline.backlog import Backlog
from publisher.pipeline.caller import call_channel
from publisher.pipeline.outcome import Claim, Finished, HandedBack, OutcomeKind
from publisher.pipeline.store import open_store
from publisher.pipeline.workflow import Context

log = logging.getLogger("publisher.pipeline.worker")


def make_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class RunSummary:
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())


class Dispatcher:
    """Runs deliveries. ``Dispatcher(engine=..., ctx=...)``; nothing global.

    Threads: the loop thread claims into a backlog and records outcomes; delivery threads take from
    the backlog (within each channel's max_concurrency), start the call and call the channel. With
    ``threads=1`` there is no delivery thread: the loop thread delivers between its other steps.
    Claims and records are batched (one transaction for many deliveries) because per-delivery
    transactions cost more than a local HTTP call: a worker holds a small backlog of leased
    deliveries (``_hold_cap`` per channel) and records the outcomes that finished in the last
    ``RECORD_EVERY`` seconds together. A worker killed between the channel call and the record
    leaves the lease behind; the delivery is run again, and channels make that safe
    (Idempotency-Key, saved state), exactly as for a kill during the call itself.
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
        self.store = open_store(engine, ctx, self.worker_id)
        #: every delivery this worker holds a lease on (backlog, running, or awaiting its record)
        self.inflight: dict[int, Claim] = {}
        self._lock = threading.Lock()
        self.wake = threading.Event()
        self.stop = threading.Event()
        self._backlog = Backlog(lambda ch: self.ctx.channels[ch].max_concurrency, self.stop)
        #: finished calls waiting for the next batched record
        self._unrecorded: list[Finished] = []
        #: claims whose start found a person's request: settled without a call by the loop thread
        self._withheld: list[Claim] = []
        self._lost = 0
        self._db_pause_until = 0.0
        self._db_failed = False
        #: channel → until when (monotonic) it is known to have nothing to claim
        self._dry_until: dict[str, float] = {}
        #: with one delivery thread, the loop thread is that thread (see _deliver_inline)
        self._inline = self.threads == 1

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
        now, mono = self.clock(), time.monotonic()
        held = self._backlog.per_channel()
        free = {n: self._hold_cap(n) - held[n] for n in (channels or self._active_channels())}
        free = {n: f for n, f in free.items() if f > 0}
        capacity = sum(free.values()) if capacity is None else min(capacity, sum(free.values()))
        if capacity <= 0:
            return []
        # one channel: the query's limit is what is kept; several: read more, as one may be full
        limit = capacity if len(free) == 1 else max(capacity * 2, self.settings.worker.batch_size)
        w = self.settings.worker
        got = self.store.claim(free, capacity, limit, now, now + timedelta(seconds=w.lease_seconds))
        # not asked again before its next delivery falls due (at most a poll later, or a wake-up): a
        # channel that had less due than it could take, when the query saw everything due; and a
        # channel its rate limit holds back, until its next slot
        dry = [ch for ch, f in free.items() if got.read < limit and got.taken.get(ch, 0) < f]
        if dry:
            for ch, at in self.store.next_due_by_channel(dry, now).items():
                wait = w.poll_seconds if at is None else (at - now).total_seconds()
                self._dry_until[ch] = mono + max(0.0, min(wait, w.poll_seconds))
        for ch, slot in got.held_back.items():
            self._dry_until[ch] = max(self._dry_until.get(ch, 0.0), mono + (slot - now).total_seconds())
        with self._lock:
            for c in got.claims:
                self.inflight[c.id] = c
        return got.claims

    def _want_claim(self, mono: float) -> list[str]:
        """Channels whose backlog is below half their hold cap (empty, when the loop thread delivers
        itself: nothing runs meanwhile, and one claim then fills the whole cap) and that are not known
        to be dry."""
        held = self._backlog.per_channel()
        return [
            ch
            for ch in self._active_channels()
            if (held[ch] == 0 if self._inline else held[ch] * 2 <= self._hold_cap(ch))
            and self._dry_until.get(ch, 0.0) <= mono
        ]

    def renew_leases(self) -> None:
        with self._lock:
            ids = list(self.inflight)
        if ids:
            self.store.extend_leases(ids, self.clock() + timedelta(seconds=self.settings.worker.lease_seconds))

    def release_dead_leases(self) -> int:
        """Free at once the leases held by processes of this host that are gone (``kill -9``)."""
        return self.store.reap_dead_leases(self.clock())

    def release_orphans(self) -> int:
        """Free leases this worker holds in the store but not in memory.

        That happens when the connection drops while a claim commits: the server may have committed
        it, but this worker never learnt which rows it got. Without this they would sit until their
        lease expired (``worker.lease_seconds``).
        """
        with self._lock:
            held = set(self.inflight)
        n = self.store.reap_orphans(held, self.clock())
        if n:
            log.info("released %d deliveries claimed by this worker during a lost connection", n)
        return n

    def release(self, claims: list[Claim]) -> None:
        """Hand back leases of deliveries never started (the worker is stopping): due again at once,
        any request a person left meanwhile settled as for a call that did not go out."""
        if not claims:
            return
        self.store.release(claims, self.clock())
        with self._lock:
            for c in claims:
                self.inflight.pop(c.id, None)

    def next_due(self) -> datetime | None:
        return self.store.next_due(self._active_channels())

    # --------------------------------------------------------------------------------- executing
    def _execute(self, claim: Claim) -> None:
        """Delivery thread: start the call, call the channel, leave the outcome for the loop thread."""
        started = self.clock()
        try:
            refused, post = self.store.start(claim)
        except sa.exc.SQLAlchemyError as exc:
            extra = {"delivery_id": claim.id, "item_id": claim.item_id}
            log.warning("delivery %s: cannot start its call (%s); trying again shortly", claim.id, exc, extra=extra)
            self.stop.wait(1.0)
            return self._push(HandedBack(claim))
        except Exception as exc:  # e.g. an asset missing on disk: keep the reason on the delivery
            log.exception("delivery %s: cannot build its post", claim.id)
            return self._push(Finished(claim, started, exc, None))
        if refused is not None:
            return self._push(HandedBack(claim, refused))
        if post is None:
            # unreachable through the workflow (an edit or a withdrawal leaves a request, which
            # withholds the call); kept as the last line of defence
            why = "refused: the item lacks its two approvals, was withdrawn, or no longer targets this channel"
            return self._push(Finished(claim, started, PermanentChannelError(why), None))
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
        result = call_channel(self.ctx.channels[claim.channel].channel, claim, post, dctx)
        self._push(Finished(claim, started, result, dctx.state, version=post.version))

    def _push(self, entry: Finished | HandedBack) -> None:
        if isinstance(entry, Finished) and entry.finished is None:
            entry.finished = self.clock()
        self._backlog.push(entry, batch=self.RECORD_BATCH, threads=self.threads)

    def _save_state(self, delivery_id: int, state: dict) -> None:
        if not self.store.save_state(delivery_id, state, self.clock()):
            raise PermanentChannelError(f"delivery {delivery_id}: lease lost while saving progress")

    def _deliver_inline(self) -> None:
        """One delivery thread: the loop thread delivers from the backlog itself, for a short while.

        A second thread would only take turns with this one under the interpreter lock, and each
        hand-off of the lock costs more than a local HTTP call's bookkeeping (docs/benchmarks.md). The
        loop comes back every ``INLINE_SLICE`` seconds, so records, claims and lease renewals keep
        their pace between deliveries; a single channel call is not interrupted (leases are renewed
        before and after it, not during it).
        """
        until = time.monotonic() + self.INLINE_SLICE
        while (claim := self._backlog.take(block=False)) is not None:
            self._execute(claim)
            if time.monotonic() >= until:
                return

    def _deliver_loop(self) -> None:
        self.store.hold_connections()
        try:
            while (claim := self._backlog.take()) is not None:
                self._execute(claim)
        finally:
            self.store.release_connections()

    def execute(self, delivery_id: int) -> str:
        """Run one delivery this worker has claimed and record its outcome (tests, tools)."""
        with self._lock:
            claim = self.inflight.get(delivery_id)
        if claim is None:
            return OutcomeKind.LOST_LEASE.value
        self._backlog.mark_running(claim.channel)
        self._execute(claim)
        entry = self._backlog.results.pop()
        if isinstance(entry, Finished):
            return self._record([entry])[0]
        if entry.kind == OutcomeKind.WITHHELD:
            self.release([claim])
        else:
            with self._lock:
                self.inflight.pop(delivery_id, None)
        return str(entry.kind)

    # --------------------------------------------------------------------------------- recording
    def _record(self, finished: list[Finished]) -> list[str]:
        """Record many outcomes in one transaction; a delivery whose lease was lost is left alone."""
        outcomes = self.store.record(finished, self.clock())
        with self._lock:
            for f in finished:
                self.inflight.pop(f.claim.id, None)
        info = log.isEnabledFor(logging.INFO)  # the message and its extras cost even when dropped
        kinds = [str(o.kind) for o in outcomes]
        for f, o, kind in zip(finished, outcomes, kinds, strict=True):
            c = f.claim
            if self.on_outcome:
                self.on_outcome(c.channel, kind)
            if info:
                why = f" — {o.message}" if o.message and o.kind != OutcomeKind.LOST_LEASE else ""
                extra = {"delivery_id": c.id, "item_id": c.item_id, "channel": c.channel, "outcome": kind}
                log.info("delivery %s (item %s → %s, %s): %s%s", c.id, c.item_id, c.channel, c.op, kind, why, extra=extra)
        return kinds

    # ------------------------------------------------------------------------------------ loops
    def _drain(self) -> None:
        """Take what the delivery threads finished: outcomes to record, withheld calls, lost leases."""
        results = self._backlog.results
        while results:
            entry = results.popleft()
            if isinstance(entry, Finished):
                self._unrecorded.append(entry)
            elif entry.kind == OutcomeKind.WITHHELD:
                self._withheld.append(entry.claim)
            else:
                with self._lock:
                    self.inflight.pop(entry.claim.id, None)
                self._lost += 1

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
        self._backlog.open()
        workers = [
            threading.Thread(target=self._deliver_loop, name=f"deliver-{n}", daemon=True)
            for n in range(0 if self._inline else self.threads)
        ]
        for t in workers:
            t.start()
        self.store.hold_connections()
        try:
            with self.store.checkpointer():
                self._loop(summary, once, horizon, progress)
            if self._lost:
                summary.outcomes[OutcomeKind.LOST_LEASE.value] += self._lost
        finally:
            self._backlog.close()
            for t in workers:
                t.join()
            self.store.release_connections()
        return summary

    def _housekeeping(self, mono: float, last: dict[str, float]) -> None:
        """Dead neighbours' leases (same host, within RELEASE_EVERY), lease renewal, orphans, claims."""
        if mono - last["release"] > self.RELEASE_EVERY:
            self.release_dead_leases()
            last["release"] = mono
        if mono - last["renew"] > min(self.settings.worker.lease_seconds / 3, 10.0):
            self.renew_leases()
            last["renew"] = mono
        if self._db_failed:
            self.release_orphans()
            self._db_failed = False
        if self.wake.is_set():
            self.wake.clear()
            self._dry_until.clear()
        if wanted := self._want_claim(mono):
            self._backlog.add(self.claim(channels=wanted))

    def _loop(
        self, summary: RunSummary, once: bool, horizon: timedelta, progress: Callable[[str], None] | None
    ) -> None:
        last = {"renew": -1e9, "release": -1e9}
        backlog = self._backlog
        while True:
            mono = time.monotonic()
            stopping = self.stop.is_set()
            try:
                self._drain()
                if self._lost:
                    summary.outcomes[OutcomeKind.LOST_LEASE.value] += self._lost
                    self._lost = 0
                if self._withheld:  # a person acted before these calls started: settled without a call
                    self.release(self._withheld)
                    summary.outcomes[OutcomeKind.WITHHELD.value] += len(self._withheld)
                    self._withheld = []
                if not stopping and mono >= self._db_pause_until:
                    self._housekeeping(mono, last)
                busy, waiting = backlog.held()
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
                if stopping and busy == 0 and not backlog.results and not self._unrecorded:
                    self.release(backlog.clear())
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
            if busy or waiting or self._unrecorded or backlog.results or stopping:
                timeout = self.RECORD_EVERY
                if self._unrecorded:
                    timeout = max(0.0, self.RECORD_EVERY - (mono - self._unrecorded[0].done_at))
                if backlog.ready.wait(timeout=timeout):
                    backlog.ready.clear()
                continue
            if self._idle(once, horizon):
                return

    def _idle(self, once: bool, horizon: timedelta) -> bool:
        """Nothing held: sleep until the next due time, a poll, or a wake-up. True: the run is over."""
        try:
            nxt = self.next_due()
        except sa.exc.SQLAlchemyError as exc:
            log.warning("database error, retrying in 1 s: %s", exc)
            self.stop.wait(1.0)
            return False
        now = self.clock()
        if once and (nxt is None or nxt - now > horizon):
            return True
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
        return False
