"""An in-memory channel that records what it was sent, for tests and for trying the pipeline.

Faults can be scripted: ``MemoryChannel.script("t", "t", "ok")`` makes the next two publish calls
raise TransientChannelError and the third succeed. Recorded posts live in a class-level ledger keyed
by channel name so a test can look after the worker built its own instances; ``reset()`` clears it.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from datetime import datetime, timedelta

from publisher.channel import (
    AmbiguousOutcome,
    Channel,
    ChannelConfig,
    DeliveryContext,
    InProgress,
    PermanentChannelError,
    Post,
    Published,
    QuotaExceeded,
    TransientChannelError,
)


class MemoryConfig(ChannelConfig):
    title_max: int = 200
    #: seconds slept in each publish call (to simulate a slow remote side)
    latency: float = 0.0


class MemoryChannel(Channel):
    """Records every publish in :attr:`ledger`; never talks to anything."""

    type_name = "memory"
    label = "In-memory (tests)"
    Config = MemoryConfig
    supports_update = True
    supports_withdraw = True

    _lock = threading.Lock()
    ledger: dict[str, list[tuple[int, int, str]]] = defaultdict(list)  # name -> (delivery, item, title)
    withdrawn: dict[str, list[int]] = defaultdict(list)
    _script: dict[str, deque[str]] = defaultdict(deque)

    @classmethod
    def reset(cls) -> None:
        with cls._lock:
            cls.ledger.clear()
            cls.withdrawn.clear()
            cls._script.clear()

    @classmethod
    def script(cls, name: str, *steps: str) -> None:
        """Queue outcomes for the next publish calls on channel ``name``.

        Steps: "ok", "t" (transient), "p" (permanent), "q" (quota, one minute), "a" (ambiguous,
        after actually publishing), "wait" (in progress).
        """
        with cls._lock:
            cls._script[name].extend(steps)

    def validate(self, post: Post) -> list[str]:
        if len(post.title) > self.config.title_max:
            return [f"title is {len(post.title)} characters; {self.name} takes at most {self.config.title_max}"]
        return []

    def publish(self, post: Post, ctx: DeliveryContext) -> InProgress | Published:
        if self.config.latency:
            import time

            time.sleep(self.config.latency)
        with self._lock:
            step = self._script[self.name].popleft() if self._script[self.name] else "ok"
            already = any(d == ctx.delivery_id for d, _, _ in self.ledger[self.name])
        if step == "t":
            raise TransientChannelError("memory: scripted transient failure")
        if step == "p":
            raise PermanentChannelError("memory: scripted permanent failure", code="P1")
        if step == "q":
            raise QuotaExceeded("memory: scripted quota", until=self.env.clock() + timedelta(minutes=1))
        if step == "wait":
            return InProgress(check_again_in=timedelta(seconds=1), note="scripted")
        if not already:
            with self._lock:
                self.ledger[self.name].append((ctx.delivery_id, post.item_id, post.title))
        if step == "a":
            raise AmbiguousOutcome("memory: scripted ambiguous outcome (it did publish)")
        return Published(url=f"memory://{self.name}/{post.item_id}", remote_id=str(ctx.delivery_id))

    def update(self, post: Post, ctx: DeliveryContext) -> Published:
        return Published(url=f"memory://{self.name}/{post.item_id}", remote_id=ctx.remote_id)

    def withdraw(self, post: Post, ctx: DeliveryContext) -> None:
        with self._lock:
            self.withdrawn[self.name].append(post.item_id)

    @classmethod
    def published_count(cls, name: str, since: datetime | None = None) -> int:
        return len(cls.ledger[name])
