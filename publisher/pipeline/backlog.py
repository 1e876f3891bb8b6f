"""The deliveries a worker has claimed and not yet recorded, shared by its loop and delivery threads."""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import datetime

from publisher.pipeline.outcome import Claim, Finished, HandedBack
from publisher.pipeline.store import Claimed
from publisher.pipeline.workflow import Context


class Backlog:
    """Claimed deliveries waiting for a thread, per channel; what the threads hand back.

    Delivery threads take from it themselves (no hand-off per delivery), each channel within its
    ``concurrency``; the loop thread refills it and collects the results.
    """

    def __init__(self, concurrency: Callable[[str], int], stop: threading.Event) -> None:
        self.concurrency = concurrency
        self.stop = stop
        #: claimed, not started
        self.waiting: dict[str, deque[Claim]] = defaultdict(deque)
        self.running: dict[str, int] = defaultdict(int)
        #: what the delivery threads finished or handed back, for the loop thread
        self.results: deque[Finished | HandedBack] = deque()
        self.cond = threading.Condition()
        self.closing = False
        #: set when the loop thread has work: a batch to record, a backlog to refill
        self.ready = threading.Event()

    def add(self, claims: list[Claim]) -> None:
        with self.cond:
            for c in claims:
                self.waiting[c.channel].append(c)
            self.cond.notify_all()

    def open(self) -> None:
        self.closing = False

    def close(self) -> None:
        with self.cond:
            self.closing = True
            self.cond.notify_all()

    def clear(self) -> list[Claim]:
        """Empty the backlog: the claims no thread took."""
        with self.cond:
            left = [c for q in self.waiting.values() for c in q]
            self.waiting.clear()
        return left

    def take(self, block: bool = True) -> Claim | None:
        """The next delivery whose channel has a free slot (None: closing, or none free and not ``block``)."""
        with self.cond:
            while not self.closing and not self.stop.is_set():
                for ch, queue in self.waiting.items():
                    if queue and self.running[ch] < self.concurrency(ch):
                        self.running[ch] += 1
                        # the channel served goes to the back of the line: channels take turns, so one
                        # with a deep backlog and free slots cannot hold every thread while another's
                        # deliveries wait (seen in the chaos run: webhook calls untouched for 30-120 s)
                        self.waiting[ch] = self.waiting.pop(ch)
                        return queue.popleft()
                if not block:
                    return None
                self.cond.wait(timeout=1.0)
            return None

    def mark_running(self, channel: str) -> None:
        with self.cond:
            self.running[channel] += 1

    def push(self, entry: Finished | HandedBack, *, batch: int, threads: int) -> None:
        """A delivery thread is done with a claim: a retry goes back to the front, the rest to the loop."""
        claim = entry.claim
        with self.cond:
            self.running[claim.channel] -= 1
            if isinstance(entry, HandedBack) and entry.kind is None:
                self.waiting[claim.channel].appendleft(claim)
            else:
                self.results.append(entry)
            self.cond.notify_all()
            # wake the loop thread only when it has work: a batch to record, a backlog to refill
            left = sum(len(q) for q in self.waiting.values())
            wake = len(self.results) >= batch or left <= threads or not any(self.running.values())
        if wake:
            self.ready.set()

    def held(self) -> tuple[int, int]:
        """(running, waiting)."""
        with self.cond:
            return sum(self.running.values()), sum(len(q) for q in self.waiting.values())

    def per_channel(self) -> dict[str, int]:
        """Per channel, the deliveries waiting or being sent (not those awaiting their record: counting
        those starved the delivery threads while a record batch filled up)."""
        with self.cond:
            held: dict[str, int] = defaultdict(int)
            for ch, q in self.waiting.items():
                held[ch] += len(q)
            for ch, n in self.running.items():
                held[ch] += n
        return held


class Pacer:
    """Which channels a worker claims for, and how many: each channel's hold cap, and the channels
    known to have nothing to claim for a while (not asked again before then: a claim that finds
    nothing is a wasted transaction)."""

    def __init__(self, ctx: Context, threads: int, backlog: Backlog, *, inline: bool) -> None:
        self.ctx = ctx
        self.threads = threads
        self.backlog = backlog
        self.inline = inline
        #: channel → until when (monotonic) it is known to have nothing to claim
        self.dry_until: dict[str, float] = {}

    def active(self) -> list[str]:
        return [n for n, s in self.ctx.channels.items() if s.enabled and not s.paused]

    def hold_cap(self, channel: str) -> int:
        """How many leases of ``channel`` this worker may hold: what can run, plus a short backlog."""
        running = min(self.ctx.channels[channel].max_concurrency, self.threads)
        return running + max(running, self.ctx.settings.worker.batch_size)

    def free(self, channels: list[str] | None) -> dict[str, int]:
        """Per channel (of ``channels``, else every active one), how many more leases it may take."""
        held = self.backlog.per_channel()
        free = {n: self.hold_cap(n) - held[n] for n in (channels or self.active())}
        return {n: f for n, f in free.items() if f > 0}

    def wanted(self, mono: float) -> list[str]:
        """Channels whose backlog is below half their hold cap (empty, when the loop thread delivers
        itself: nothing runs meanwhile, and one claim then fills the whole cap) and that are not known
        to be dry."""
        held = self.backlog.per_channel()
        return [
            ch
            for ch in self.active()
            if (held[ch] == 0 if self.inline else held[ch] * 2 <= self.hold_cap(ch))
            and self.dry_until.get(ch, 0.0) <= mono
        ]

    def after_claim(
        self,
        free: dict[str, int],
        limit: int,
        got: Claimed,
        now: datetime,
        mono: float,
        next_due: Callable[[list[str], datetime], dict[str, datetime | None]],
    ) -> None:
        """Not asked again before its next delivery falls due (at most a poll later, or a wake-up): a
        channel that had less due than it could take, when the query saw everything due; and a
        channel its rate limit holds back, until its next slot."""
        poll = self.ctx.settings.worker.poll_seconds
        dry = [ch for ch, f in free.items() if got.read < limit and got.taken.get(ch, 0) < f]
        if dry:
            for ch, at in next_due(dry, now).items():
                wait = poll if at is None else (at - now).total_seconds()
                self.dry_until[ch] = mono + max(0.0, min(wait, poll))
        for ch, slot in got.held_back.items():
            self.dry_until[ch] = max(self.dry_until.get(ch, 0.0), mono + (slot - now).total_seconds())

    def hint(self) -> float | None:
        """When (monotonic) the first channel known to be dry may have something again."""
        return min(self.dry_until.values()) if self.dry_until else None

    def clear(self) -> None:
        self.dry_until.clear()
