"""Short versions of bench/chaos.py: real ``publisher run`` processes, killed and cut off.

(a) SIGKILL in the middle of 1,000 deliveries to the website and the webhook sink (150 items on both,
    700 on the webhook only: the website fsyncs every page and index, ~60 ms a publish), then a restart:
    every delivery done exactly once (each page once, each Idempotency-Key accepted once; a replay
    only for a delivery the killed worker held).
(b) two ``publisher run --once`` processes on PostgreSQL share one queue: nothing done twice.
(c) ``pg_terminate_backend`` of the worker's connections (this test's own database only) mid-run:
    the worker recovers and finishes.
(d) the WeChat Official Account and WordPress sandboxes, each its own process, answering 20 % of the
    calls with a fault (busy, HTTP 500, late answers, answers lost after the call took effect, token
    expiry; WordPress also 429 quota), while two workers are killed with SIGKILL twice and the
    connections are cut once: every item once at each remote end, and no WeChat draft left behind.
    WeChat's per-minute quota (45011) is left to bench/chaos.py: it defers a delivery to the next
    minute.

The PostgreSQL server is never restarted here (other people's tests use it); bench/chaos.py does
that, run by hand.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench._common import SECRET, counts, seed_deliveries, start_worker, terminate_backends, write_settings
from publisher.models import Delivery

pytestmark = pytest.mark.slow

PG_ONLY = pytest.mark.parametrize("store_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)


def _settings(tmp_path: Path, app, channels: dict, threads: int = 4) -> Path:
    return write_settings(
        tmp_path / "settings.toml",
        {
            "database_url": app.settings.database_url,
            "data_dir": str(tmp_path),
            "channels": channels,
            "worker": {
                "threads": threads,
                "poll_seconds": 0.2,
                "backoff_base_seconds": 0.1,
                "backoff_cap_seconds": 0.5,
                "lease_seconds": 60,
            },
        },
    )


def _wait(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _finish(proc, timeout: float = 90) -> None:
    try:
        assert proc.wait(timeout=timeout) == 0, f"worker exited with {proc.returncode}"
    finally:
        if proc.poll() is None:
            proc.kill()


def _check_sink(led: dict, n: int, allowed_replays: set[str]) -> None:
    assert led["accepted"] == n, {k: led[k] for k in ("accepted", "duplicates", "requests")}
    assert len(led["by_key"]) == n and all(v == 1 for v in led["by_key"].values())
    unexplained = set(led["duplicate_keys"]) - allowed_replays
    assert not unexplained, f"replayed keys the killed worker did not hold: {sorted(unexplained)[:5]}"


def test_sigkill_mid_batch_then_restart_does_every_delivery_once(make_app, tmp_path, monkeypatch):
    from channels.sandbox.sink import Sink

    monkeypatch.setenv("PUBLISHER_WEBHOOK_SECRET", SECRET)
    with Sink(secret=SECRET, latency_ms=3) as sink:
        channels = {"site": {"type": "website"}, "hook": {"type": "webhook", "url": sink.hook_url}}
        app = make_app(channels=channels)
        seed_deliveries(app, 150, ["site", "hook"])
        seed_deliveries(app, 700, ["hook"])
        settings = _settings(tmp_path, app, channels)
        w = start_worker(settings, log=tmp_path / "worker1.log")
        try:
            _wait(lambda: counts(app.engine).get("done", 0) >= 300, 60, "300 deliveries done")
        finally:
            w.kill()
            w.wait()
        with app.engine.connect() as c:
            held = (
                c.execute(
                    sa.text("select id from delivery where status = 'claimed' and lease_owner like :o"),
                    {"o": f"%:{w.pid}:%"},
                )
                .scalars()
                .all()
            )
        assert counts(app.engine).get("done", 0) < 1000, "the kill came too late to test anything"
        _finish(start_worker(settings, "--once", log=tmp_path / "worker2.log"))
        led = sink.ledger()
    assert counts(app.engine) == {"done": 1000}
    _check_sink(led, 850, {f"delivery-{i}" for i in held})
    with app.engine.connect() as c:
        assert c.execute(sa.text("select count(*) from delivery_attempt where outcome = 'done'")).scalar() == 1000
        assert c.execute(sa.text("select count(distinct delivery_id) from delivery_attempt")).scalar() == 1000
    (state,) = tmp_path.glob("**/.site.sqlite3")
    # every item listed once on the site's numbered pages (what readers see), and its page there
    listed = [
        int(i)
        for page in state.parent.glob("page/*.html")
        for i in re.findall(r'href="\.\./items/(\d+)\.html"', page.read_text(encoding="utf-8"))
    ]
    assert len(listed) == len(set(listed)) == 150
    assert len(list((state.parent / "items").glob("*.html"))) == 150


@PG_ONLY
def test_two_workers_on_postgresql_share_the_queue(make_app, tmp_path, monkeypatch):
    from channels.sandbox.sink import Sink

    monkeypatch.setenv("PUBLISHER_WEBHOOK_SECRET", SECRET)
    with Sink(secret=SECRET, latency_ms=3) as sink:
        channels = {"hook": {"type": "webhook", "url": sink.hook_url}}
        app = make_app(channels=channels)
        # due only once both workers are up: a worker that started first could otherwise do them all
        # (seen: 400 deliveries finished before the second interpreter had started)
        seed_deliveries(app, 400, ["hook"], due_at=datetime.now(UTC) + timedelta(hours=1))
        settings = _settings(tmp_path, app, channels)
        logs = [tmp_path / f"w{i}.log" for i in range(2)]
        workers = [start_worker(settings, log=log) for log in logs]
        try:
            _wait(
                lambda: all(log.exists() and " running with " in log.read_text(errors="replace") for log in logs),
                60,
                "both workers to start",
            )
            with app.engine.begin() as c:
                c.execute(sa.update(Delivery.__table__).values(due_at=datetime.now(UTC)))
            _wait(lambda: counts(app.engine) == {"done": 400}, 90, "400 deliveries done")
        finally:
            for w in workers:
                w.terminate()
        for w in workers:
            _finish(w)
        led = sink.ledger()
    assert counts(app.engine) == {"done": 400}
    _check_sink(led, 400, set())
    assert led["duplicates"] == 0
    with app.engine.connect() as c:
        per_worker = c.execute(sa.text("select worker, count(*) from delivery_attempt group by worker")).all()
    assert len(per_worker) == 2 and sum(n for _, n in per_worker) == 400, per_worker


@PG_ONLY
def test_worker_recovers_when_its_connections_are_cut(make_app, tmp_path, monkeypatch):
    from channels.sandbox.sink import Sink

    monkeypatch.setenv("PUBLISHER_WEBHOOK_SECRET", SECRET)
    with Sink(secret=SECRET, latency_ms=10) as sink:
        channels = {"hook": {"type": "webhook", "url": sink.hook_url}}
        app = make_app(channels=channels)
        seed_deliveries(app, 600, ["hook"])
        settings = _settings(tmp_path, app, channels, threads=2)
        w = start_worker(settings, "--once", log=tmp_path / "worker.log")
        cut = 0
        try:
            for threshold in (100, 250, 400):
                _wait(lambda t=threshold: sink.ledger()["accepted"] >= t, 60, f"{threshold} accepted")
                cut += terminate_backends(app.settings.database_url)
        except BaseException:
            w.kill()
            raise
        _finish(w)
        led = sink.ledger()
    assert cut >= 3
    assert counts(app.engine) == {"done": 600}
    _check_sink(led, 600, set(led["duplicate_keys"]))  # replays after a cut are answered, not re-done
    log = (tmp_path / "worker.log").read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log, log[-3000:]


@PG_ONLY
def test_wechat_and_cms_under_faults_kills_and_cuts_publish_each_item_once(make_app, tmp_path, monkeypatch):
    from bench.chaos import cms_plugin, delivery_rows, wechat_plugin

    # `lost_answer` is in the mix again: the failures it showed ("no published article can be found"
    # after an unconfirmed submit) came from the state's thumb id being replaced by the cache's, see
    # tests/channels/test_wechat_drafts.py::test_unconfirmed_submit_of_a_known_draft_is_found_after_the_cached_
    # thumb_changed
    wechat = wechat_plugin(
        tmp_path,
        0.2,
        mix="busy,http500,timeout,lost_answer,expire_token",
        hang_s=1.0,
        timeout=0.5,
        publish_delay=0.2,
        grace=2.0,
        seed=3,
    )
    try:
        cms = cms_plugin(0.2, hang_s=1.0, timeout=0.5, seed=5)
    except BaseException:
        wechat.stop()
        raise
    plugins = {"wechat": wechat, "cms": cms}
    workers: list = []
    try:
        for pl in plugins.values():
            for k, v in pl.environ.items():
                monkeypatch.setenv(k, v)
        channels = {name: pl.settings for name, pl in plugins.items()}
        app = make_app(channels=channels)
        seed_deliveries(app, 25, ["wechat"])
        seed_deliveries(app, 50, ["cms"], start=25)  # every item its own title: the WeChat marker
        settings = _settings(tmp_path, app, channels)
        workers = [start_worker(settings, log=tmp_path / f"w{i}.log") for i in range(2)]
        for victim, threshold in enumerate((10, 35)):
            _wait(lambda t=threshold: counts(app.engine).get("done", 0) >= t, 60, f"{threshold} done")
            workers[victim].kill()
            workers[victim].wait()
            workers.append(start_worker(settings, log=tmp_path / f"w{len(workers)}.log"))
            if threshold == 10:
                terminate_backends(app.settings.database_url)
        assert counts(app.engine).get("done", 0) < 75, "the kills came too late to test anything"
        try:
            _wait(lambda: counts(app.engine) == {"done": 75}, 180, "every delivery done")
        except AssertionError as exc:
            with app.engine.connect() as c:
                left = c.execute(
                    sa.text(
                        "select channel, status, attempts, due_at, last_error from delivery "
                        "where status <> 'done' order by id limit 5"
                    )
                ).all()
            raise AssertionError(f"{exc}: {counts(app.engine)}; e.g. {left}") from None
        rows = delivery_rows(app.engine)
        for name, pl in plugins.items():
            lost, dup, detail = pl.check([r for r in rows if r.channel == name])
            assert (lost, dup) == (0, 0), f"{name}: lost {lost}, duplicated {dup}; {detail}"
            assert "faults served 0" not in detail, f"{name}: no faults were drawn ({detail})"
            if pl.orphans is not None:
                orphaned, what = pl.orphans()
                assert orphaned == 0, f"{name}: {what}; {detail}"
    finally:
        for w in workers:
            if w.poll() is None:
                w.terminate()
        for w in workers:
            try:
                w.wait(timeout=30)
            except Exception:
                w.kill()
        for pl in plugins.values():
            pl.stop()
