"""APScheduler as the clock, the database as the source of truth.

The worker's loop finds due deliveries by asking the database; APScheduler only wakes it (a nudge
at the next due time and every few seconds, for items scheduled by other processes) and fires the
periodic jobs. A periodic job runs once per period across every worker: before running, a worker
inserts a ``job_lease`` row keyed by the job and its period; the primary key lets only one insert
win, on SQLite and PostgreSQL alike (APScheduler 3's job stores cannot be shared between
schedulers, so they are not used for this).

Prompt wake-ups: on PostgreSQL, every change that makes a delivery due sends ``NOTIFY
publisher_queue`` (delivered at commit, see :func:`publisher.pipeline.workflow.wake_workers`) and each worker
keeps one connection in ``LISTEN`` (:class:`QueueListener`), so an idle worker starts a delivery
scheduled for "now" within milliseconds. On SQLite there is no such channel: an idle worker polls
every ``worker.poll_seconds`` and sleeps exactly until the next known due time.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import IntegrityError

from publisher.counting.registers import remind_deadlines
from publisher.counting.sync import run_sync
from publisher.models import JobLease, utcnow
from publisher.pipeline.workflow import end_displays, outbox

if TYPE_CHECKING:
    from publisher.app import App

log = logging.getLogger("publisher.scheduler")
LEASE = JobLease.__table__  # type: ignore[attr-defined]


@dataclass
class PeriodicJob:
    name: str
    trigger: BaseTrigger
    run: Callable[[App], object]


def periodic_jobs(app: App) -> list[PeriodicJob]:
    """The periodic jobs every worker schedules (each runs once per period across workers)."""
    return [
        PeriodicJob(
            "weekly-sync",
            CronTrigger.from_crontab(app.settings.sync.cron, timezone=app.settings.zone),
            run_sync,
        ),
        # 公示期 ends fall on a day's 24:00: a minute's lateness is the most a take-down waits
        PeriodicJob("display-end", CronTrigger.from_crontab("* * * * *", timezone=app.settings.zone), end_due_displays),
        # hourly: an entry filed today with a short deadline is told the same day; each once (the outbox)
        PeriodicJob(
            "register-deadlines", CronTrigger.from_crontab("7 * * * *", timezone=app.settings.zone), remind_registers
        ),
        *site_search_jobs(app),
        *cdn_purge_jobs(app),
    ]


def cdn_purge_jobs(app: App) -> list[PeriodicJob]:
    """One ``cdn-purge:<channel>`` job a minute per channel that owes a CDN purges (a website with a
    ``cdn`` table) — found by what it offers (``retry_purges()`` and the purges it owes), never by its type name."""
    jobs = []
    for name, spec in app.channels.items():
        if getattr(spec.channel, "purges", None) is not None and callable(getattr(spec.channel, "retry_purges", None)):
            jobs.append(
                PeriodicJob(
                    f"cdn-purge:{name}",
                    CronTrigger.from_crontab("* * * * *", timezone=app.settings.zone),
                    functools.partial(retry_cdn_purges, name=name),
                )
            )
    return jobs


def retry_cdn_purges(app: App, *, name: str) -> None:
    """The ``cdn-purge:<channel>`` job: the purges owed and due; URLs failed ``alert_after`` times or
    more tell the admins (``channel_problem``, once per channel, kind and day) with the last error."""
    spec = app.channels[name]
    report = spec.channel.retry_purges()  # type: ignore[attr-defined]
    if report.purged:
        log.info("%s: CDN purged %s URL(s), %s still owed", name, report.purged, report.owed)
    if not report.stuck:
        return
    last = report.stuck[0]
    kind = {"CredentialsRefused": outbox.CREDENTIALS, "QuotaExceeded": outbox.QUOTA}.get(last["kind"], outbox.CHECK)
    detail = (
        f"CDN 刷新（purge）{len(report.stuck)} 个地址已失败 {last['attempts']} 次，例如 {last['url']}："
        f"{last['kind']} {last['code'] or ''} {last['error'] or ''}"
    )
    with app.engine.begin() as conn:
        outbox.on_channel_problems(conn, [outbox.ChannelProblem(name, spec.label, kind, detail)], app.settings.zone)
    log.warning("%s: %s", name, detail)


def site_search_jobs(app: App) -> list[PeriodicJob]:
    """One ``site-search-index:<channel>`` job per channel that builds a search index on a schedule —
    found by what it offers (``search_index()`` and a ``search_cron``), never by its type name."""
    jobs = []
    for name, spec in app.channels.items():
        cron = getattr(spec.channel, "search_cron", None)
        if cron and callable(getattr(spec.channel, "search_index", None)):
            jobs.append(
                PeriodicJob(
                    f"site-search-index:{name}",
                    CronTrigger.from_crontab(cron, timezone=app.settings.zone),
                    functools.partial(_build_search_index, name=name),
                )
            )
    return jobs


def _build_search_index(app: App, *, name: str) -> None:
    build = app.channels[name].channel.search_index()  # type: ignore[attr-defined]
    log.info("%s: search index of %s pages built in %.1f s", name, build.indexed, build.seconds)


def end_due_displays(app: App) -> None:
    """The ``display-end`` job: :func:`publisher.pipeline.workflow.end_displays` now."""
    done = end_displays(app.ctx, app.session)
    for item_id in done.ended:
        log.info("item %s: 公示期 ended, taken down", item_id)
    for item_id, why in done.problems.items():
        log.warning("item %s: the end of its 公示期 cannot be computed: %s", item_id, why)


def remind_registers(app: App) -> None:
    """The ``register-deadlines`` job: :func:`publisher.counting.registers.remind_deadlines` today."""
    with app.session() as s:
        told = remind_deadlines(s, app.settings)
    if told:
        log.info("register deadlines: %s message(s) queued for the keepers", told)


def claim_period(engine: sa.Engine, key: str, owner: str, ttl: timedelta) -> bool:
    """True for exactly one caller per ``key`` (e.g. "weekly-sync:2026-11-30T03:00")."""
    now = utcnow()
    try:
        with engine.begin() as conn:
            conn.execute(sa.delete(LEASE).where(LEASE.c.expires_at < now - timedelta(days=30)))
            conn.execute(sa.insert(LEASE).values(name=key, owner=owner, expires_at=now + ttl))
    except IntegrityError:
        return False
    return True


def run_once_per_period(app: App, job: PeriodicJob, owner: str, fire_time: datetime) -> bool:
    key = f"{job.name}:{fire_time.astimezone(app.settings.zone).isoformat(timespec='minutes')}"
    if not claim_period(app.engine, key, owner, timedelta(days=1)):
        log.info("%s already ran elsewhere", key)
        return False
    log.info("running %s", key)
    job.run(app)
    return True


QUEUE_CHANNEL = "publisher_queue"


class QueueListener:
    """PostgreSQL ``LISTEN publisher_queue``: sets ``wake`` on each notification; reconnects on loss."""

    def __init__(self, engine: sa.Engine, wake: threading.Event) -> None:
        self.conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.wake = wake
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="queue-listener", daemon=True)

    def start(self) -> QueueListener:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)

    def _run(self) -> None:
        import psycopg

        while not self.stopped.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {QUEUE_CHANNEL}")
                    self.wake.set()  # anything sent while we were not listening is looked for now
                    while not self.stopped.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self.wake.set()
            except psycopg.Error as exc:
                log.warning("queue listener: %s; reconnecting in 1 s (polling meanwhile)", exc)
                self.stopped.wait(1.0)


class Clock:
    """Wraps a BackgroundScheduler: wake-ups for the dispatcher and the periodic jobs."""

    def __init__(self, app: App, *, wake: threading.Event, owner: str = "") -> None:
        self.app = app
        self.wake = wake
        self.owner = owner or f"clock-{id(self)}"
        self.scheduler = BackgroundScheduler(timezone=app.settings.zone)
        self.listener: QueueListener | None = None

    def start(self) -> None:
        self.scheduler.add_job(
            self.wake.set,
            IntervalTrigger(seconds=max(1.0, self.app.settings.worker.poll_seconds * 5)),
            id="nudge",
            coalesce=True,
            max_instances=1,
        )
        for job in periodic_jobs(self.app):
            self.scheduler.add_job(
                self._fire,
                job.trigger,
                args=[job],
                id=job.name,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=3600,
            )
        self.scheduler.start()
        if self.app.engine.dialect.name == "postgresql":
            self.listener = QueueListener(self.app.engine, self.wake).start()

    def _fire(self, job: PeriodicJob) -> None:
        fire = self.scheduler.get_job(job.name)
        when = utcnow().replace(second=0, microsecond=0)
        if fire is not None and fire.trigger is not None:
            prev = job.trigger.get_next_fire_time(None, when - timedelta(minutes=1))
            when = prev or when
        try:
            run_once_per_period(self.app, job, self.owner, when)
        except Exception:
            log.exception("periodic job %s failed", job.name)

    def stop(self) -> None:
        self.scheduler.shutdown(wait=False)
        if self.listener is not None:
            self.listener.stop()
