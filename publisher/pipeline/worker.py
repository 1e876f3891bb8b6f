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

from publisher.models import utcnow
from publisher.pipeline.backlog import Backlog, Pacer
from publisher.pipeline.caller import Caller
from publisher.pipeline.outcome import Claim, Finished, HandedBack, Outcome, OutcomeKind
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
    deliveries (Pacer.hold_cap per channel) and records the outcomes that finished in the last
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
        #: a delivery's turn: start, call, hand the result to _push
        self._call = Caller(ctx, self.store, clock, self.stop, self._push, on_start)
        #: finished calls waiting for the next batched record
        self._unrecorded: list[Finished] = []
        #: claims whose start found a person's request: settled without a call by the loop thread
        self._withheld: list[Claim] = []
        self._lost = 0
        self._db_pause_until = 0.0
        self._db_failed = False
        #: with one delivery thread, the loop thread is that thread (see _deliver_inline)
        self._inline = self.threads == 1
        self._pacer = Pacer(ctx, self.threads, self._backlog, inline=self._inline)

    # ---------------------------------------------------------------------------------- claiming
    def claim(self, capacity: int | None = None, channels: list[str] | None = None) -> list[Claim]:
        """Lease due deliveries, up to each channel's hold cap and rate, in one transaction, and read
        their posts (in one batch: a delivery's start checks that its item has not changed since)."""
        now, mono = self.clock(), time.monotonic()
        free = self._pacer.free(channels)
        capacity = sum(free.values()) if capacity is None else min(capacity, sum(free.values()))
        if capacity <= 0:
            return []
        # one channel: the query's limit is what is kept; several: read more, as one may be full
        limit = capacity if len(free) == 1 else max(capacity * 2, self.settings.worker.batch_size)
        w = self.settings.worker
        got = self.store.claim(free, capacity, limit, now, now + timedelta(seconds=w.lease_seconds))
        self._pacer.after_claim(free, limit, got, now, mono, self.store.next_due_by_channel)
        with self._lock:
            for c in got.claims:
                self.inflight[c.id] = c
        return got.claims

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
        return self.store.next_due(self._pacer.active())

    # --------------------------------------------------------------------------------- executing
    def _push(self, entry: Finished | HandedBack) -> None:
        if isinstance(entry, Finished) and entry.finished is None:
            entry.finished = self.clock()
        self._backlog.push(entry, batch=self.RECORD_BATCH, threads=self.threads)

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
            self._call(claim)
            if time.monotonic() >= until:
                return

    def _deliver_loop(self) -> None:
        self.store.hold_connections()
        try:
            while (claim := self._backlog.take()) is not None:
                self._call(claim)
        finally:
            self.store.release_connections()

    def execute(self, delivery_id: int) -> str:
        """Run one delivery this worker has claimed and record its outcome (tests, tools)."""
        with self._lock:
            claim = self.inflight.get(delivery_id)
        if claim is None:
            return OutcomeKind.LOST_LEASE.value
        self._backlog.mark_running(claim.channel)
        self._call(claim)
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
        kinds = [str(o.kind) for o in outcomes]
        _report(finished, outcomes, kinds, self.on_outcome)
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
            self._pacer.clear()
        if wanted := self._pacer.wanted(mono):
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
        if delay == 0.0 and (hint := self._pacer.hint()) is not None:
            # due, yet nothing was claimed: held back by a rate limit (or locked by another worker's
            # claim). Ask again at the first hint, not at once: that was a busy loop of claims.
            delay = max(0.0, hint - time.monotonic())
        self.wake.wait(timeout=delay)
        self.wake.clear()
        self._pacer.clear()
        return False


def _report(
    finished: list[Finished], outcomes: list[Outcome], kinds: list[str], on_outcome: Callable[[str, str], None] | None
) -> None:
    """Tell ``on_outcome`` and the log what each recorded delivery came to."""
    info = log.isEnabledFor(logging.INFO)  # the message and its extras cost even when dropped
    for f, o, kind in zip(finished, outcomes, kinds, strict=True):
        c = f.claim
        if on_outcome:
            on_outcome(c.channel, kind)
        if info:
            why = f" — {o.message}" if o.message and o.kind != OutcomeKind.LOST_LEASE else ""
            extra = {"delivery_id": c.id, "item_id": c.item_id, "channel": c.channel, "outcome": kind}
            log.info("delivery %s (item %s → %s, %s): %s%s", c.id, c.item_id, c.channel, c.op, kind, why, extra=extra)
