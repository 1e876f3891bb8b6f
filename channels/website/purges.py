"""The CDN purges a site owes, kept in its state until the CDN accepted them (``[channels.X.cdn]``).

A change of the site (channels.website.channel) queues the URLs it wrote or deleted in its own
transaction (:meth:`PurgeRows.queue_purge`, the ``site_purge`` rows of channels.website.store), so a
crash right after the commit loses none; then :meth:`SitePurges.retry` sends them to the CDN
(channels.website.cdn), in batches, outside the site's turn. A refusal stays on the rows — attempts,
the error's class, the service's code, the message — and they are due again after a back-off (a
quota: when it ends); the scheduler's ``cdn-purge:<channel>`` job retries every minute and tells the
admins (``channel_problem``) of URLs failed ``alert_after`` times or more, as ``publisher channels``
does through :meth:`SitePurges.stuck` in the channel's health check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from channels.website.cdn import CdnPurger
from channels.website.files import translate_errors
from publisher.channel import ChannelError, QuotaExceeded

#: CDN purge requests one retry sends at most; how long a claimed URL is left to its worker
PURGE_ROUNDS = 10
PURGE_LEASE = timedelta(minutes=2)
#: the back-off of a refused purge: 30 s, doubling with each attempt, at most an hour
PURGE_BACKOFF, PURGE_BACKOFF_CAP = timedelta(seconds=30), timedelta(hours=1)

log = logging.getLogger("channels.website")


def stamp(when: datetime) -> str:
    """A time as the purge rows keep it: ISO 8601 UTC with microseconds (compares as a string)."""
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def retry_at(exc: ChannelError, now: datetime, attempts: int) -> datetime:
    """When a refused purge is due again: when the quota ends, else after the back-off."""
    if isinstance(exc, QuotaExceeded):
        return max(exc.until, now + timedelta(seconds=1))
    return now + min(PURGE_BACKOFF * (2 ** min(attempts, 10)), PURGE_BACKOFF_CAP)


@dataclass
class PurgeReport:
    """What one :meth:`SitePurges.retry` did: URLs purged, the CDN's refusal if any, the URLs still
    owed and those failed ``alert_after`` times or more (the admins are told of these)."""

    purged: int = 0
    error: ChannelError | None = None
    owed: int = 0
    stuck: list[dict[str, Any]] = field(default_factory=list)


def purge_problem(stuck: list[dict[str, Any]]) -> str:
    """One line for the admins: how many URLs keep failing, the last error (its class and code)."""
    last = stuck[0]
    return (
        f"CDN purge of {len(stuck)} URL(s) failed {last['attempts']} times (e.g. {last['url']}): "
        f"{last['kind']} {last['code'] or ''} {last['error'] or ''}".strip()
    )


class PurgeRows:
    """The ``site_purge`` rows of one site: a part of :class:`channels.website.store.SiteStore` (its
    ``_exec``, ``_many`` and ``site``), every method called inside its ``locked()``."""

    site: str
    _exec: Callable[..., Any]
    _many: Callable[..., None]

    # times are ISO 8601 UTC with microseconds (stamp above), so they compare as strings
    def queue_purge(self, urls: Iterable[str], now: str) -> None:
        """Owe the CDN a purge of ``urls``, in the change's own transaction. A URL already owed is due
        again now, its failures kept (the admins are told of a URL that keeps failing)."""
        self._many(
            "INSERT INTO site_purge (site, url, queued, due, attempts) VALUES (?, ?, ?, ?, 0) "
            "ON CONFLICT (site, url) DO UPDATE SET queued = excluded.queued, due = excluded.due",
            [(self.site, url, now, now) for url in sorted(set(urls))],
        )

    def claim_purges(self, now: str, lease_until: str, limit: int) -> list[tuple[str, str, int]]:
        """Up to ``limit`` owed URLs due by ``now``, the longest due first, as (url, queued, attempts);
        each is made due at ``lease_until`` so other workers leave it alone meanwhile (a worker that
        dies holding it only delays it until then)."""
        rows = self._exec(
            "SELECT url, queued, attempts FROM site_purge WHERE site = ? AND due <= ? ORDER BY due, url LIMIT ?",
            (self.site, now, limit),
        ).fetchall()
        self._many(
            "UPDATE site_purge SET due = ? WHERE site = ? AND url = ?", [(lease_until, self.site, r[0]) for r in rows]
        )
        return [(r[0], r[1], int(r[2])) for r in rows]

    def purged(self, done: Iterable[tuple[str, str, int]]) -> None:
        """The CDN accepted these (url, queued, …): forget them — unless a later change owed the URL again
        meanwhile (its ``queued`` moved), whose purge is still to come."""
        self._many(
            "DELETE FROM site_purge WHERE site = ? AND url = ? AND queued = ?", [(self.site, u, q) for u, q, *_ in done]
        )

    def purge_failed(self, urls: Iterable[str], *, due: str, kind: str, code: str | None, error: str) -> None:
        """The CDN refused (or did not answer): one more attempt counted, the failure kept, due again at ``due``."""
        self._many(
            "UPDATE site_purge SET attempts = attempts + 1, due = ?, kind = ?, code = ?, error = ? "
            "WHERE site = ? AND url = ?",
            [(due, kind, code, error[:2000], self.site, u) for u in urls],
        )

    def count_purges(self) -> int:
        return int(self._exec("SELECT count(*) FROM site_purge WHERE site = ?", (self.site,)).fetchone()[0])

    def purge_backlog(self, *, min_attempts: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """Owed purges failed at least ``min_attempts`` times, the most often failed first (``limit`` of
        them): url, queued, due, attempts, kind, code, error."""
        rows = self._exec(
            "SELECT url, queued, due, attempts, kind, code, error FROM site_purge WHERE site = ? AND attempts >= ? "
            "ORDER BY attempts DESC, due, url LIMIT ?",
            (self.site, min_attempts, limit),
        ).fetchall()
        keys = ("url", "queued", "due", "attempts", "kind", "code", "error")
        return [dict(zip(keys, r, strict=True)) for r in rows]


class SitePurges:
    """The purges of one site: owed in a change, sent after it, retried until the CDN takes them."""

    def __init__(
        self,
        *,
        name: str,
        cdn: CdnPurger,
        store: Any,
        locked: Callable[[], AbstractContextManager[None]],
        base_url: str,
        where: str,
        alert_after: int,
    ) -> None:
        self.name, self.cdn, self.store, self._locked = name, cdn, store, locked
        self.base_url, self.where, self.alert_after = base_url, where, alert_after

    def owe(self, keys: set[str]) -> None:
        """Queue the purge of what the change wrote or deleted, in the change's transaction (inside the lock)."""
        if not keys:
            return
        urls = {self.base_url + k for k in keys}
        # a reader (and the CDN) reaches an index page by its folder's address too
        urls |= {self.base_url + k[: -len("index.html")] for k in keys if k.rsplit("/", 1)[-1] == "index.html"}
        self.store.queue_purge(urls, stamp(datetime.now(UTC)))

    def stuck(self) -> list[dict[str, Any]]:
        """The owed purges failed ``alert_after`` times or more (inside the lock)."""
        return self.store.purge_backlog(min_attempts=self.alert_after, limit=50)

    def retry(self, now: datetime | None = None) -> PurgeReport:
        """Send the CDN the purges owed and due (at most ``PURGE_ROUNDS`` requests), the longest due
        first; a refusal is kept on its rows and they are due again after a back-off (a quota: when it
        ends). Never raises for the CDN; the state's errors do (as channel errors)."""
        report = PurgeReport()
        now = now or datetime.now(UTC)
        with translate_errors(self.where):
            for _ in range(PURGE_ROUNDS):
                with self._locked():
                    claimed = self.store.claim_purges(stamp(now), stamp(now + PURGE_LEASE), self.cdn.batch)
                if not claimed:
                    break
                urls = [u for u, _, _ in claimed]
                try:
                    self.cdn.purge(urls)
                except ChannelError as exc:
                    report.error = exc
                    attempts = max(a for _, _, a in claimed)
                    with self._locked():
                        self.store.purge_failed(
                            urls,
                            due=stamp(retry_at(exc, now, attempts)),
                            kind=type(exc).__name__,
                            code=None if exc.code is None else str(exc.code),
                            error=str(exc),
                        )
                    break
                with self._locked():
                    self.store.purged(claimed)
                report.purged += len(urls)
            with self._locked():
                report.owed = self.store.count_purges()
                report.stuck = self.stuck()
        return report

    def after_change(self) -> None:
        """Try at once the purge a change owes. The change is done and committed whatever happens
        here; what fails stays owed in the state and the scheduler's job retries it."""
        try:
            report = self.retry()
        except ChannelError as exc:  # the state could not be read: the rows are still there
            log.warning("%s: CDN purge postponed: %s", self.name, exc)
            return
        if report.error is not None:
            log.warning("%s: CDN purge failed, will retry: %s", self.name, report.error)
