"""A channel's ``rate_per_minute`` holds across every worker of one store, not per worker.

Two Dispatchers (two worker ids, as two ``publisher run`` processes would be) claim at the same
moments from the same store, on SQLite and PostgreSQL, with a clock the test moves; the channel
calls are counted per minute of that clock from the delivery_attempt rows the dispatchers wrote.
The last test runs real ``publisher run`` processes on PostgreSQL against the webhook sink.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bench._common import SECRET, counts, seed_deliveries, start_worker, write_settings
from publisher.models import ChannelRate, DeliveryAttempt
from publisher.pipeline.worker import Dispatcher
from publisher.testing import MemoryChannel

ATTEMPT = DeliveryAttempt.__table__  # type: ignore[attr-defined]
RATE = ChannelRate.__table__  # type: ignore[attr-defined]


class StepClock:
    """The dispatchers' clock: stands still until the test moves it."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def _most_in_a_minute(times: list[datetime]) -> int:
    """The most calls in any window [t, t + 60 s) (a window starting at a call holds the most)."""
    times = sorted(times)
    return max((sum(1 for u in times if t <= u < t + timedelta(minutes=1)) for t in times), default=0)


def _call_times(app: Any) -> list[tuple[datetime, str]]:
    with app.engine.connect() as c:
        return [(r.started_at, r.worker) for r in c.execute(sa.select(ATTEMPT.c.started_at, ATTEMPT.c.worker))]


def test_two_workers_together_keep_one_rate(make_app: Any) -> None:
    # 6 a minute: a slot every 10 s. The clock moves 5 s at a time and at each step both workers
    # claim at the same moment, then call the channel for what they got.
    app = make_app(channels={"mem": {"type": "memory", "rate_per_minute": 6}})
    clock = StepClock(datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5))
    seed_deliveries(app, 40, ["mem"], due_at=clock.at - timedelta(seconds=1))
    workers = [Dispatcher(engine=app.engine, ctx=app.ctx, worker_id=f"test:{n}:w{n}", clock=clock) for n in (1, 2)]
    together = threading.Barrier(2)
    errors: list[BaseException] = []

    def step(d: Dispatcher) -> None:
        try:
            together.wait()
            for c in d.claim():
                assert d.execute(c.id) == "done"
        except BaseException as exc:
            errors.append(exc)
            together.abort()

    start = clock.at
    for _ in range(36):  # three minutes
        threads = [threading.Thread(target=step, args=(d,)) for d in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        clock.at += timedelta(seconds=5)
    calls = _call_times(app)
    per_worker = Counter(w for _, w in calls)
    assert _most_in_a_minute([at for at, _ in calls]) == 6, sorted(calls)
    # and the rate is used, not starved: a call every 10 s from the first step, by both workers
    assert sorted(at for at, _ in calls) == [start + timedelta(seconds=10 * k) for k in range(18)]
    # which worker wins each slot is up to the thread scheduler (both claim at once); with limits
    # per worker instead of per store each would get its own slots and a minute would hold 12
    assert sum(per_worker.values()) == 18, per_worker
    assert len(MemoryChannel.ledger["mem"]) == 18
    with app.engine.connect() as c:
        assert c.execute(sa.select(RATE.c.channel)).scalars().all() == ["mem"]


def test_first_minute_idle_time_and_the_hint(make_app: Any) -> None:
    """The in-memory limiter's rules, now kept in the store: the first call of a channel gets one
    slot; a pause banks at most one slot; a limited channel is not asked again before its slot."""
    app = make_app(channels={"mem": {"type": "memory", "rate_per_minute": 6}, "free": {"type": "memory"}})
    clock = StepClock(datetime.now(UTC) + timedelta(seconds=5))
    seed_deliveries(app, 20, ["mem", "free"], due_at=clock.at - timedelta(seconds=1))
    a = Dispatcher(engine=app.engine, ctx=app.ctx, worker_id="test:1:a", clock=clock)
    b = Dispatcher(engine=app.engine, ctx=app.ctx, worker_id="test:2:b", clock=clock)

    def claim(d: Dispatcher) -> int:
        got = d.claim(channels=["mem"])
        d.release(got)  # hand the leases back: only the slots matter here
        return len(got)

    assert claim(a) == 1  # the channel's first call: one slot, not two
    assert "mem" not in a._pacer.wanted(time.monotonic()), "a limited channel is asked again before its slot"
    assert claim(b) == 0  # the other worker sees the slot taken
    clock.at += timedelta(seconds=9)
    assert (claim(a), claim(b)) == (0, 0)
    clock.at += timedelta(seconds=1)
    assert (claim(b), claim(a)) == (1, 0)
    clock.at += timedelta(minutes=10)  # idle: one slot banked, not sixty
    assert (claim(a), claim(b)) == (2, 0)
    clock.at += timedelta(seconds=10)
    assert (claim(b), claim(a)) == (1, 0)
    # a channel without a rate is not held back, and never touches channel_rate
    assert len(b.claim(channels=["free"])) == 20
    with app.engine.connect() as c:
        assert c.execute(sa.select(RATE.c.channel)).scalars().all() == ["mem"]


def test_a_clock_set_back_stalls_a_channel_for_one_slot_at_most(make_app: Any) -> None:
    app = make_app(channels={"mem": {"type": "memory", "rate_per_minute": 6}})
    now = datetime.now(UTC)
    clock = StepClock(now + timedelta(hours=1))
    seed_deliveries(app, 5, ["mem"], due_at=now - timedelta(minutes=1))
    d = Dispatcher(engine=app.engine, ctx=app.ctx, worker_id="test:1:a", clock=clock)
    assert len(d.claim()) == 1
    clock.at = now  # NTP steps the clock back: the stored slot is an hour ahead
    assert len(d.claim()) == 0
    clock.at += timedelta(seconds=10)
    assert len(d.claim()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("store_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_publisher_run_processes_share_the_rate(make_app: Any, tmp_path: Path, monkeypatch: Any) -> None:
    from channels.sandbox.sink import Sink

    monkeypatch.setenv("PUBLISHER_WEBHOOK_SECRET", SECRET)
    rate, n = 600, 30  # a call every 0.1 s: 30 calls take ~3 s; three workers on their own limits, ~1 s
    with Sink(secret=SECRET) as sink:
        channels = {"hook": {"type": "webhook", "url": sink.hook_url, "rate_per_minute": rate}}
        app = make_app(channels=channels)
        # due a little later, so that all three workers are up when the first falls due
        due = datetime.now(UTC) + timedelta(seconds=4)
        seed_deliveries(app, n, ["hook"], due_at=due)
        settings = write_settings(
            tmp_path / "settings.toml",
            {
                "database_url": app.settings.database_url,
                "data_dir": str(tmp_path),
                "channels": channels,
                "worker": {"threads": 4, "poll_seconds": 0.2, "lease_seconds": 60},
            },
        )
        workers = [start_worker(settings, "--once", log=tmp_path / f"w{i}.log") for i in range(3)]
        try:
            for w in workers:
                assert w.wait(timeout=90) == 0, f"worker exited with {w.returncode}"
        finally:
            for w in workers:
                if w.poll() is None:
                    w.kill()
        arrivals = sorted(d["at"] for d in sink.ledger()["deliveries"])
    assert counts(app.engine) == {"done": n}
    # Slots are a tenth of a second apart from the moment the deliveries fell due (at most one slot
    # banked), so the 30th call cannot arrive before 2.9 s - 0.1 s after that; three workers each on
    # its own limit would be done in about a second. Only this lower bound is asserted: how the calls
    # spread between the workers, and how they bunch when one starts late, is the scheduler's (the
    # slots themselves are checked under a controlled clock above).
    assert arrivals[-1] - due.timestamp() >= (n - 1) * 60 / rate - 60 / rate - 0.05, arrivals


def test_a_worker_held_back_by_the_rate_waits_for_its_slot(make_app: Any, monkeypatch: Any) -> None:
    """Held back by the rate with nothing else to do, the worker sleeps until the channel's next
    slot instead of claiming again at once (that loop ran a claim every few milliseconds)."""
    app = make_app(channels={"mem": {"type": "memory", "rate_per_minute": 120}})
    seed_deliveries(app, 4, ["mem"])
    claims: list[int] = []
    claim = Dispatcher.claim

    def counted(self: Dispatcher, *args: Any, **kw: Any) -> Any:
        got = claim(self, *args, **kw)
        claims.append(len(got))
        return got

    monkeypatch.setattr(Dispatcher, "claim", counted)
    assert dict(Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True).outcomes) == {"done": 4}
    # a claim per slot, and a few more for the poll hints of a channel with nothing more due
    assert sum(claims) == 4 and len(claims) <= 12, f"{len(claims)} claims for 4 calls, half a second apart"
