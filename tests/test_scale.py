"""Several workers on one store: batched records, lease checks, contention, periodic jobs, metrics.

Runs on SQLite and PostgreSQL (``store_url``). Deliveries are written straight into the tables by
``bench._common.seed_deliveries`` (the same set-up the benchmarks use); dispatch goes through the
Dispatcher only.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from bench._common import SECRET, seed_deliveries
from publisher.counting import periods
from publisher.metrics import WorkerMetrics, metrics_text
from publisher.pipeline import workflow
from publisher.pipeline.worker import Dispatcher
from publisher.scheduler import claim_period
from publisher.testing import MemoryChannel


def _count(app, sql: str) -> int:
    with app.engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar_one()


def test_outcomes_are_recorded_with_attempts_audit_and_rollup(app):
    seed_deliveries(app, 20, ["mem"])
    MemoryChannel.script("mem", "t", "p")  # the first call fails for now, the second for good
    summary = Dispatcher(engine=app.engine, ctx=app.ctx, threads=2).run(once=True)
    assert summary.outcomes["done"] == 19 and summary.outcomes["permanent"] == 1
    assert summary.outcomes["transient"] == 1
    assert _count(app, "select count(*) from delivery where status='done'") == 19
    assert _count(app, "select count(*) from delivery where status='failed' and last_error is not null") == 1
    assert _count(app, "select count(*) from delivery_attempt") == 21
    assert _count(app, "select count(*) from audit_log where entity='delivery' and actor like 'worker %'") == 21
    assert _count(app, "select count(*) from item where status='published'") == 19
    assert _count(app, "select count(*) from item where status='failed'") == 1
    assert _count(app, "select count(*) from audit_log where action='rollup'") == 20
    assert len(MemoryChannel.ledger["mem"]) == 19


def test_a_withdrawal_while_a_delivery_is_claimed_is_recorded_then_applied(app):
    """A claimed delivery may be in the channel's hands this very moment: resetting it would lose the
    call's result (live on the channel, recorded cancelled). The withdrawal is accepted and left on the
    delivery; the worker applies it when it records the outcome, and the item comes down."""
    seed_deliveries(app, 1, ["mem"])
    d = Dispatcher(engine=app.engine, ctx=app.ctx, threads=1)
    (claim,) = d.claim()
    with app.session() as s:
        workflow.withdraw(app.ctx, s, item_id=claim.item_id, reason="wrong file")
    assert _count(app, "select count(*) from delivery where status = 'claimed' and requested = 'withdraw'") == 1
    # its start, right before the call, finds the withdrawal: nothing is sent, nothing is left to take down
    assert d.execute(claim.id) == "withheld"
    assert _count(app, "select count(*) from delivery where status = 'cancelled' and requested is null") == 1
    assert Dispatcher(engine=app.engine, ctx=app.ctx, threads=1).run(once=True).total == 0
    assert MemoryChannel.ledger["mem"] == [] and MemoryChannel.withdrawn["mem"] == []


def test_a_withdrawal_while_deliveries_wait_in_the_backlog_loses_nothing(make_app):
    """The worker holds a backlog of leased deliveries; a withdrawal meanwhile is accepted, and nothing
    is published that the store does not know about, nor left up."""
    app = make_app(channels={"slow": {"type": "memory", "latency": 0.05}})
    seed_deliveries(app, 20, ["slow"])
    d = Dispatcher(engine=app.engine, ctx=app.ctx, threads=1)
    t = threading.Thread(target=d.run, kwargs={"once": True, "horizon": timedelta(0)})
    t.start()
    try:
        _wait_for(lambda: len(MemoryChannel.ledger["slow"]) >= 3)
        with d._lock:
            assert len(d.inflight) > 10  # the rest is leased to this worker, waiting its turn
            last = max(d.inflight)
        with app.engine.connect() as conn:
            item_id = conn.execute(sa.text(f"select item_id from delivery where id = {last}")).scalar_one()
        with app.session() as s:
            workflow.withdraw(app.ctx, s, item_id=item_id, reason="published by mistake")
        t.join(timeout=30)
    finally:
        d.stop.set()
        t.join(timeout=30)
    assert not t.is_alive()
    Dispatcher(engine=app.engine, ctx=app.ctx, threads=1).run(once=True)
    published = [i for _, i, _ in MemoryChannel.ledger["slow"]]
    assert len(published) in (19, 20) and len(set(published)) == len(published)
    # up and then down, or never sent: never up with nobody knowing
    assert (item_id in published) == (MemoryChannel.withdrawn["slow"] == [item_id])
    assert _count(app, "select count(*) from delivery where status = 'done' and published_at is not null") == len(
        published
    )
    assert _count(app, "select count(*) from delivery where status in ('pending', 'claimed')") == 0


def _wait_for(pred, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_stopped_worker_hands_back_what_it_never_started(make_app):
    app = make_app(channels={"slow": {"type": "memory", "latency": 0.02}})
    seed_deliveries(app, 200, ["slow"])
    d = Dispatcher(engine=app.engine, ctx=app.ctx, threads=1)
    t = threading.Thread(target=d.run)
    t.start()
    time.sleep(0.5)
    d.stop.set()
    t.join(timeout=30)
    assert not t.is_alive()
    done = _count(app, "select count(*) from delivery where status='done'")
    assert 0 < done < 200
    assert _count(app, "select count(*) from delivery where status='claimed'") == 0
    assert _count(app, "select count(*) from delivery where status='pending' and lease_owner is null") == 200 - done
    # what was handed back did not use up an attempt
    assert _count(app, "select max(attempts) from delivery where status='pending'") == 0


@pytest.mark.slow
def test_two_workers_share_one_queue_without_doing_anything_twice(make_app, monkeypatch):
    """Two dispatchers (two worker ids, 4 threads each) race for 300 deliveries to the webhook sink."""
    from channels.sandbox.sink import Sink

    monkeypatch.setenv("PUBLISHER_WEBHOOK_SECRET", SECRET)
    with Sink(secret=SECRET, latency_ms=2) as sink:
        app = make_app(channels={"hook": {"type": "webhook", "url": sink.hook_url}})
        seed_deliveries(app, 300, ["hook"])
        workers = [Dispatcher(engine=app.engine, ctx=app.ctx, threads=4, worker_id=f"w{i}") for i in range(2)]
        results: list = []
        threads = [
            threading.Thread(target=lambda w=w: results.append(w.run(once=True, horizon=timedelta(0)))) for w in workers
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        led = sink.ledger()
    assert led["accepted"] == 300 and led["duplicates"] == 0, led
    assert all(n == 1 for n in led["by_key"].values())
    assert sum(r.outcomes["done"] for r in results) == 300
    assert all(r.outcomes["done"] > 0 for r in results)  # both took part
    assert _count(app, "select count(*) from delivery_attempt") == 300
    assert _count(app, "select count(distinct worker) from delivery_attempt") == 2


def test_a_periodic_job_runs_once_per_period_across_workers(app):
    winners: dict[str, list[str]] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def worker(name: str) -> None:
        barrier.wait()
        for period in range(10):
            key = f"weekly-sync:2026-11-{period + 1:02d}T03:00"
            if claim_period(app.engine, key, name, timedelta(days=1)):
                with lock:
                    winners.setdefault(key, []).append(name)

    ts = [threading.Thread(target=worker, args=(f"worker-{i}",)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(winners) == 10
    assert all(len(w) == 1 for w in winners.values()), winners


def test_metrics_show_the_store_and_the_worker(app):
    seed_deliveries(app, 5, ["mem"])
    MemoryChannel.script("mem", "q")
    wm = WorkerMetrics()
    Dispatcher(engine=app.engine, ctx=app.ctx, on_outcome=wm.on_outcome, on_start=wm.on_start).run(
        once=True, horizon=timedelta(0)
    )
    text = metrics_text(app.engine, wm)
    assert 'publisher_worker_outcomes_total{channel="mem",outcome="done"} 4.0' in text
    assert 'publisher_worker_quota_deferrals_total{channel="mem"} 1.0' in text
    assert 'publisher_deliveries{channel="mem",status="pending"} 1.0' in text
    assert 'publisher_delivery_attempts_total{channel="mem",outcome="done"} 4.0' in text
    assert 'publisher_queue_depth{channel="mem"} 1.0' in text
    assert 'publisher_delivery_attempts_total{channel="mem",outcome="quota"} 1.0' in text
    assert 'publisher_schedule_lateness_seconds_count{channel="mem"} 5.0' in text
    assert "publisher_store_up 1.0" in text
    # later scrapes count only the attempts added since, and stay exact
    seed_deliveries(app, 2, ["mem"])
    Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True, horizon=timedelta(0))
    assert 'publisher_delivery_attempts_total{channel="mem",outcome="done"} 6.0' in metrics_text(app.engine)


@pytest.mark.parametrize("store_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_notify_wakes_an_idle_worker_at_once(make_app):
    """On PostgreSQL a delivery queued by another process starts within a fraction of poll_seconds
    (LISTEN/NOTIFY is PostgreSQL's; SQLite workers poll, bench/wakeup.py measures both)."""
    app = make_app(worker={"poll_seconds": 5.0})
    from publisher.scheduler import QueueListener

    wm = WorkerMetrics()
    d = Dispatcher(engine=app.engine, ctx=app.ctx, threads=1, on_start=wm.on_start)
    listener = QueueListener(app.engine, d.wake).start()
    t = threading.Thread(target=d.run)
    t.start()
    try:
        time.sleep(1.0)  # idle now, sleeping up to 5 s
        seed_deliveries(app, 1, ["mem"])
        queued = time.monotonic()
        with app.session() as s:
            workflow.wake_workers(s)
        deadline = queued + 4
        while not MemoryChannel.ledger["mem"] and time.monotonic() < deadline:
            time.sleep(0.01)
        took = time.monotonic() - queued
    finally:
        d.stop.set()
        t.join(timeout=10)
        listener.stop()
    assert MemoryChannel.ledger["mem"], "not delivered"
    assert took < 1.0, f"woke after {took:.2f} s"


def test_doctor_reports_each_check(make_app, tmp_path, monkeypatch):
    from publisher.doctor import run_checks

    app = make_app()
    f = tmp_path / "settings.toml"
    f.write_text(f'database_url = "{app.settings.database_url}"\n[channels.mem]\ntype = "memory"\n', encoding="utf-8")
    checks = {c.name: c for c in run_checks(f)}
    assert checks["database"].ok and checks["migrations"].ok and checks["clock"].ok
    assert checks["channel mem"].ok
    monkeypatch.setenv("PUBLISHER_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    checks = {c.name: c for c in run_checks(f)}
    assert not checks["database"].ok and "PUBLISHER_DATABASE_URL" in checks["database"].detail
    assert os.environ["PUBLISHER_DATABASE_URL"]


def test_stats_count_items_once_with_or_without_the_channel_dimension(app):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from publisher.counting import stats

    seed_deliveries(app, 3, ["mem", "mem2"])
    Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True, horizon=timedelta(0))
    tz = ZoneInfo("Asia/Shanghai")
    today = datetime.now(tz).date()
    start, end = periods.period(today, today, tz)
    by_channel = stats.counts(app.engine, stats.StatsQuery(start=start, end=end, by=("channel",), tz=tz))
    assert [(r["channel"], r["published"], r["items"]) for r in by_channel] == [("mem", 3, 3), ("mem2", 3, 3)]
    by_cat = stats.counts(app.engine, stats.StatsQuery(start=start, end=end, by=("category",), tz=tz))
    assert [(r["category"], r["published"], r["items"]) for r in by_cat] == [("招聘信息", 6, 3)]
    by_day = stats.counts(app.engine, stats.StatsQuery(start=start, end=end, by=("day",), tz=tz))
    assert [(r["published"], r["items"]) for r in by_day] == [(6, 3)]


def test_two_clocks_run_a_periodic_job_once_per_period(app):
    from datetime import UTC, datetime

    from apscheduler.triggers.cron import CronTrigger

    from publisher.scheduler import PeriodicJob, run_once_per_period

    runs: list[str] = []
    job = PeriodicJob("stats-pull", CronTrigger.from_crontab("0 3 * * *"), lambda a: runs.append("ran"))
    fire = datetime(2026, 11, 30, 19, 0, tzinfo=UTC)  # 03:00 in Beijing
    barrier = threading.Barrier(2)

    def clock(owner: str) -> None:
        barrier.wait()
        run_once_per_period(app, job, owner, fire)

    ts = [threading.Thread(target=clock, args=(f"clock-{i}",)) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert runs == ["ran"]
    run_once_per_period(app, job, "clock-0", fire + timedelta(days=1))
    assert runs == ["ran", "ran"]


def test_metrics_port_serves_prometheus_text_and_logs_can_be_json(app, caplog):
    import json
    import logging

    import requests

    from publisher.metrics import JsonFormatter, serve

    server = serve(app.engine, WorkerMetrics(), 0)
    try:
        r = requests.get(f"http://127.0.0.1:{server.port}/metrics", timeout=10)
    finally:
        server.close()
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    assert "publisher_store_up 1.0" in r.text
    record = logging.LogRecord(
        "publisher.pipeline.worker", logging.INFO, __file__, 1, "delivery %s: %s", (7, "done"), None
    )
    record.delivery_id, record.item_id, record.channel = 7, 3, "site"
    doc = json.loads(JsonFormatter().format(record))
    assert doc["message"] == "delivery 7: done" and doc["delivery_id"] == 7 and doc["item_id"] == 3
