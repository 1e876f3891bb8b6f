"""An in-memory channel that records what it was sent, for tests and for trying the pipeline.

Faults can be scripted: ``MemoryChannel.script("t", "t", "ok")`` makes the next two publish calls
raise TransientChannelError and the third succeed. ``MemoryChannel.hold(name)`` keeps the following
calls on a channel inside the channel until the test lets them go: a call in flight, on demand.
Recorded posts live in a class-level ledger keyed
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
    CredentialsRefused,
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
    #: false: behave like a channel that cannot take an item down (the manual channel's way)
    withdraw: bool = True


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
    #: every call the core made, whatever its outcome: (channel, op, delivery, item, version, step)
    calls: list[tuple[str, str, int, int, int, str]] = []
    #: what took effect on the channel, in the order it did (a held call's after it is let go):
    #: (channel, "publish" or "withdraw", delivery, item)
    effects: list[tuple[str, str, int, int]] = []
    _script: dict[str, deque[str]] = defaultdict(deque)
    _gates: dict[tuple[str, int | None], threading.Event] = {}
    #: per channel, how many calls are waiting at its gate (see :meth:`hold`)
    _held: dict[str, int] = defaultdict(int)
    _held_changed = threading.Condition(_lock)

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.supports_withdraw = self.config.withdraw  # type: ignore[misc]

    @classmethod
    def reset(cls) -> None:
        with cls._lock:
            for gate in cls._gates.values():
                gate.set()
            cls._gates.clear()
            cls._held.clear()
            cls.ledger.clear()
            cls.withdrawn.clear()
            cls.calls.clear()
            cls.effects.clear()
            cls._script.clear()

    @classmethod
    def hold(cls, name: str, delivery_id: int | None = None) -> threading.Event:
        """Hold every following call on channel ``name`` (once it is in :attr:`calls`, before it takes
        effect) until the returned event is set; with ``delivery_id``, only the next call of that
        delivery. :meth:`wait_held` waits until calls are held."""
        with cls._lock:
            gate = cls._gates[(name, delivery_id)] = threading.Event()
        return gate

    @classmethod
    def wait_held(cls, name: str, n: int = 1, timeout: float = 30.0) -> None:
        """Block until ``n`` calls wait at ``name``'s gate (AssertionError after ``timeout`` seconds)."""
        with cls._held_changed:
            assert cls._held_changed.wait_for(lambda: cls._held[name] >= n, timeout), f"no call held on {name}"

    def _gate(self, delivery_id: int) -> None:
        with self._lock:
            gate = self._gates.pop((self.name, delivery_id), None) or self._gates.get((self.name, None))
            if gate is None or gate.is_set():
                return
            self._held[self.name] += 1
            self._held_changed.notify_all()
        gate.wait()
        with self._lock:
            self._held[self.name] -= 1

    @classmethod
    def script(cls, name: str, *steps: str) -> None:
        """Queue outcomes for the next publish calls on channel ``name``.

        Steps: "ok", "t" (transient), "p" (permanent), "c" (credentials refused), "q" (quota, one
        minute), "a" (ambiguous, after actually publishing), "wait" (in progress).
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
            self.calls.append((self.name, "publish", ctx.delivery_id, post.item_id, post.version, step))
        self._gate(ctx.delivery_id)
        with self._lock:
            already = any(d == ctx.delivery_id for d, _, _ in self.ledger[self.name])
        if step == "t":
            raise TransientChannelError("memory: scripted transient failure")
        if step == "p":
            raise PermanentChannelError("memory: scripted permanent failure", code="P1")
        if step == "c":
            raise CredentialsRefused("memory: scripted credentials refused (token expired)", code="C1")
        if step == "q":
            raise QuotaExceeded("memory: scripted quota", until=self.env.clock() + timedelta(minutes=1))
        if step == "wait":
            return InProgress(check_again_in=timedelta(seconds=1), note="scripted")
        with self._lock:
            if not already:
                self.ledger[self.name].append((ctx.delivery_id, post.item_id, post.title))
            self.effects.append((self.name, "publish", ctx.delivery_id, post.item_id))
        if step == "a":
            raise AmbiguousOutcome("memory: scripted ambiguous outcome (it did publish)")
        return Published(url=f"memory://{self.name}/{post.item_id}", remote_id=str(ctx.delivery_id))

    def update(self, post: Post, ctx: DeliveryContext) -> Published:
        with self._lock:
            self.calls.append((self.name, "update", ctx.delivery_id, post.item_id, post.version, "ok"))
        self._gate(ctx.delivery_id)
        return Published(url=f"memory://{self.name}/{post.item_id}", remote_id=ctx.remote_id)

    def withdraw(self, post: Post, ctx: DeliveryContext) -> None:
        if not self.supports_withdraw:
            return super().withdraw(post, ctx)
        with self._lock:
            self.calls.append((self.name, "withdraw", ctx.delivery_id, post.item_id, post.version, "ok"))
        self._gate(ctx.delivery_id)
        with self._lock:
            self.withdrawn[self.name].append(post.item_id)
            self.effects.append((self.name, "withdraw", ctx.delivery_id, post.item_id))

    @classmethod
    def published_count(cls, name: str, since: datetime | None = None) -> int:
        return len(cls.ledger[name])


class MemoryKV:
    """A process-local :class:`publisher.channel.KeyValueStore` with expiry, for tests."""

    def __init__(self, clock=None) -> None:
        from datetime import UTC

        self._clock = clock or (lambda: datetime.now(UTC))
        self._data: dict[str, tuple[str, datetime | None]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            hit = self._data.get(key)
            if hit is None:
                return None
            value, expires_at = hit
            if expires_at is not None and expires_at <= self._clock():
                del self._data[key]
                return None
            return value

    def set(self, key: str, value: str, *, expires_at: datetime | None = None) -> None:
        with self._lock:
            self._data[key] = (value, expires_at)

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)


def make_env(data_dir, **overrides):
    """A ChannelEnv for tests: a folder, Asia/Shanghai, an in-memory KV."""
    from pathlib import Path
    from zoneinfo import ZoneInfo

    from publisher.channel import ChannelEnv

    kw = dict(data_dir=Path(data_dir), timezone=ZoneInfo("Asia/Shanghai"), kv=MemoryKV())
    kw.update(overrides)
    return ChannelEnv(**kw)


def make_post(item_id: int = 1, **overrides):
    """A plausible Post for channel tests; override any field."""
    from datetime import UTC

    from publisher.channel import Post

    now = datetime.now(UTC)
    kw = dict(
        item_id=item_id,
        title=f"关于2026年寒假放假安排的通知 {item_id}",
        body_markdown="根据学校校历，现将寒假放假安排通知如下。\n\n- 学生放假时间：1月12日\n",
        body_html="<p>根据学校校历，现将寒假放假安排通知如下。</p>\n<ul>\n<li>学生放假时间：1月12日</li>\n</ul>\n",
        summary="寒假放假安排",
        category="公告公示",
        department="校长办公室",
        author="王老师",
        publish_at=now,
        updated_at=now,
        site_url=f"http://127.0.0.1:8000/site/items/{item_id}.html",
    )
    kw.update(overrides)
    return Post(**kw)


def make_ctx(delivery_id: int = 1, state: dict | None = None, **overrides):
    """A DeliveryContext whose saved state lives in the returned object (``ctx.state``)."""
    from publisher.channel import DeliveryContext

    return DeliveryContext(delivery_id=delivery_id, attempt=overrides.pop("attempt", 1), state=state or {}, **overrides)
