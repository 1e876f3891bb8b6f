"""The notification sender: claims due messages of the outbox with a lease, sends, records.

It gives the delivery queue's promises (publisher.pipeline.store): a message is claimed with a lease
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the write lock on SQLite); a sender killed with ``kill -9``
loses nothing — its claim is taken up again when the lease ends, or at once by a sender started on
the same host (the owner's process is gone). One message is claimed at a time, right before it is
sent, so the attempt counted by the claim is a send that started (or may have).

What ``kill -9`` cannot promise: a sender killed after the transport took the message but before the
record commits leaves a send whose outcome nobody knows, and the message is sent again — at most
that once per kill. E-mail carries a Message-ID made from the row's dedupe key (a de-duplicating
server, like the SMTP sandbox, keeps one); the 企业微信 and 钉钉 robots have no idempotency key, so
there a repeat is possible.

It runs on its own thread in ``publisher run`` (and alone as ``publisher notify run``), with its own
connections: the delivery loop never waits for it, and a transport that is down only delays
messages. Transient failures retry with exponential back-off and jitter (``notify.backoff_*``) up to
``notify.max_attempts``, then fail with the error kept; a robot's rate-limit answer waits until the
limit resets without using an attempt; a transport's ``rate_per_minute`` paces sends across every
sender of the store (the channels' rate limiter, keyed ``notify:NAME``).

Quiet hours: an immediate message to a person inside their quiet hours is held until they end (no
attempt used). A digest person's messages wait for ``notify.digest_hour`` and go out as one message.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, time, timedelta
from time import monotonic
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from publisher.models import utcnow
from publisher.notification import NotificationStatus, NotifyMode
from publisher.notifier import Message, Notifier, NotifyError, NotifyPermanent, NotifyRateLimited
from publisher.pipeline.store.outbox import OutboxStore, Paced
from publisher.settings import Settings

log = logging.getLogger("publisher.pipeline.notify")

PENDING = NotificationStatus.PENDING.value
SENT, FAILED = NotificationStatus.SENT.value, NotificationStatus.FAILED.value


def _hhmm(value: str) -> time:
    h, m = value.split(":")
    return time(int(h), int(m))


def quiet_until(now: datetime, start: str | None, end: str | None, zone: Any) -> datetime | None:
    """The end of the quiet hours ``start``-``end`` (local "HH:MM") that ``now`` is inside, else None.
    A span over midnight (22:00-07:30) is the usual case."""
    if not start or not end:
        return None
    local = now.astimezone(zone)
    s, e, t = _hhmm(start), _hhmm(end), local.time()
    inside = (s <= t < e) if s < e else (t >= s or t < e)
    if not inside:
        return None
    day = local.date() if (s < e or t < e) else local.date() + timedelta(days=1)
    return datetime.combine(day, e, zone)


def digest_slot(now: datetime, hour: int, zone: Any) -> tuple[datetime, datetime]:
    """(the last digest time at or before ``now``, the next one after it), at ``hour`` local."""
    local = now.astimezone(zone)
    today = datetime.combine(local.date(), time(hour), zone)
    last = today if today <= local else today - timedelta(days=1)
    return last, last + timedelta(days=1)


class NotificationSender:
    """``NotificationSender(engine=..., settings=..., notifiers=...)``; nothing global. The SQL is the
    outbox store's (publisher.pipeline.store.outbox); this class decides what a message's turn comes to."""

    #: how often (seconds) a sender looks for claims of dead senders on its host (one small query)
    REAP_EVERY = 2.0

    def __init__(
        self,
        *,
        engine: Engine,
        settings: Settings,
        notifiers: dict[str, Notifier],
        owner: str,
        clock: Callable[[], datetime] = utcnow,
        rates: dict[str, int] | None = None,
    ) -> None:
        """``rates``: messages a minute per transport name (paced across senders)."""
        self.settings = settings
        self.notify = settings.notify
        self.notifiers = notifiers
        self.owner = owner
        self.clock = clock
        self.stop = threading.Event()
        self.store = OutboxStore(engine, owner, self.notify.lease_seconds, rates or {})
        #: per transport, not before this (its pace's next slot, or a robot's rate-limit answer)
        self._held: dict[str, datetime] = {}
        self._thread: threading.Thread | None = None

    def claim(self) -> Any | None:
        """Lease the oldest due message of a transport that may send now (see OutboxStore.claim)."""
        for _ in range(len(self.notifiers) + 1):
            now = self.clock()
            got = self.store.claim(now, [t for t, until in self._held.items() if until > now])
            if not isinstance(got, Paced):
                return got
            self._held[got.transport] = got.until
        return None

    # -------------------------------------------------------------------------------------- sends
    def send_one(self) -> str | None:
        """Claim and send one due message; its outcome ("sent", "retry", "failed", "held", ...), or None."""
        row = self.claim()
        if row is None:
            return None
        now = self.clock()
        if row.mode == NotifyMode.DIGEST:
            return self._digest(row, now)
        pref = self.store.pref(row.user_id)
        until = quiet_until(now, pref.quiet_start, pref.quiet_end, self.settings.zone) if pref else None
        if until is not None:  # held until the quiet hours end; no attempt used
            self._record([row], status=PENDING, due_at=until, attempts=row.attempts - 1)
            return "held"
        return self._send(row, [row], row.subject, row.body, row.link, row.dedupe_key)

    def _digest(self, row: Any, now: datetime) -> str:
        """A digest person's message: held until the digest hour, then sent with the others of the day."""
        last, nxt = digest_slot(now, self.notify.digest_hour, self.settings.zone)
        if row.created_at > last:
            self._record([row], status=PENDING, due_at=nxt, attempts=row.attempts - 1)
            return "held"
        rows = [row, *self.store.claim_digest(row, last, now)]
        day = last.astimezone(self.settings.zone).strftime("%Y-%m-%d")
        subject = f"信息公开待办汇总（{day}，{len(rows)} 项）"
        body = "\n\n".join(
            f"{i}. {r.subject}\n{r.body}\n{self.notify.web_base_url}{r.link}" for i, r in enumerate(rows, 1)
        )
        return self._send(row, rows, subject, body, "", f"digest:{row.user_id}:{row.transport}:{day}")

    def _send(self, row: Any, rows: list[Any], subject: str, body: str, link: str, key: str) -> str:
        notifier = self.notifiers.get(row.transport)
        if notifier is None:
            why = f"transport {row.transport!r} is not configured ([notify.transports.{row.transport}])"
            self._record(rows, status=FAILED, last_error=why)
            return "failed"
        url = f"{self.notify.web_base_url}{link}" if link else self.notify.web_base_url
        text = f"{body}\n\n{url}" if link else body
        message = Message(address=row.address, subject=subject, text=text, link=url, key=key)
        now = self.clock()
        try:
            notifier.send(message)
        except NotifyRateLimited as exc:  # the robot's answer: wait as long as it says; no attempt used
            self._held[row.transport] = exc.until
            self._record(rows, status=PENDING, due_at=exc.until, attempts=row.attempts - 1, last_error=str(exc))
            return "rate-limited"
        except NotifyPermanent as exc:
            self._record(rows, status=FAILED, last_error=str(exc)[:2000])
            return "failed"
        except Exception as exc:  # transient, or anything the transport did not expect: retried
            why = str(exc) if isinstance(exc, NotifyError) else f"{type(exc).__name__}: {exc}"
            if row.attempts >= self.notify.max_attempts:
                why = f"{why} (gave up after {row.attempts} attempts)"
                self._record(rows, status=FAILED, last_error=why[:2000])
                return "failed"
            self._record(rows, status=PENDING, due_at=now + self.notify.backoff(row.attempts), last_error=why[:2000])
            return "retry"
        self._record(rows, status=SENT, sent_at=self.clock(), last_error=None)
        return "sent"

    def _record(self, rows: list[Any], **values: Any) -> None:
        for i in self.store.record([r.id for r in rows], **values):
            log.info("notification %s: the lease was no longer this sender's; its record is left alone", i)

    # -------------------------------------------------------------------------------------- loops
    def _paced(self, horizon: float) -> float | None:
        """Seconds until a transport held back by its pace may send a message already due (None: no such
        message within ``horizon`` seconds)."""
        now = self.clock()
        soon = {t: u for t, u in self._held.items() if now < u <= now + timedelta(seconds=horizon)}
        if not soon:
            return None
        waits = [(soon[t] - now).total_seconds() for t in self.store.waiting(now, list(soon))]
        return min(waits) if waits else None

    def run(self, *, once: bool = False, horizon: float = 10.0) -> dict[str, int]:
        """Send until stopped; with ``once``, until nothing is due now (a message held back by its
        transport's pace for less than ``horizon`` seconds waits for it). Returns outcome counts."""
        counts: dict[str, int] = {}
        last_reap = -1e9
        while not self.stop.is_set():
            try:
                if monotonic() - last_reap > self.REAP_EVERY:
                    self.store.reap_dead(self.clock())
                    last_reap = monotonic()
                outcome = self.send_one()
            except sa.exc.SQLAlchemyError as exc:
                log.warning("notification sender: database error, retrying in 1 s: %s", exc)
                self.stop.wait(1.0)
                continue
            if outcome is None:
                if once:
                    wait = self._paced(horizon)
                    if wait is None:
                        break
                    self.stop.wait(wait)
                    continue
                self.stop.wait(self.notify.poll_seconds)
                continue
            counts[outcome] = counts.get(outcome, 0) + 1
        return counts

    def start(self) -> NotificationSender:
        """Run on a thread of its own (``publisher run``): the delivery loop never waits for it."""
        self._thread = threading.Thread(target=self._run_logged, name="notify-sender", daemon=True)
        self._thread.start()
        return self

    def _run_logged(self) -> None:
        try:
            self.run()
        except Exception:  # the thread must say why it stopped; deliveries go on without it
            log.exception("notification sender stopped")

    def close(self) -> None:
        self.stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for n in self.notifiers.values():
            n.close()


def open_sender(engine: Engine, settings: Settings, owner: str) -> NotificationSender | None:
    """The sender of ``[notify.transports]`` (None when none is configured: nobody is told). A
    transport's missing secret is a MissingSecret naming its variable, raised here, at start-up."""
    from publisher.notifier import build_notifiers

    if not settings.notify.transports:
        return None
    notifiers = build_notifiers(settings.notify.transports)
    rates = {n: r for n, t in notifiers.items() if (r := getattr(t.config, "rate_per_minute", None))}
    return NotificationSender(engine=engine, settings=settings, notifiers=notifiers, owner=owner, rates=rates)
