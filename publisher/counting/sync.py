"""The weekly sync: what happened to our publications after they went out.

For each configured channel, as far as it can tell (its ``supports_*`` flags say how far):

* engagement figures (:meth:`Channel.fetch_stats`) are upserted into ``channel_stat``;
* every published URL is checked (:meth:`Channel.check_url`); a page answering 404/410 or a WeChat
  article the API says is deleted sets ``delivery.taken_down_at`` and writes a ``link_check`` row and
  an audit row; a page that answers again clears it the same way; no answer, a timeout, a 5xx or a
  failed API call is no verdict: the delivery is left as it was and the run's errors say so;
* articles the channel lists (:meth:`Channel.list_publications`) that we have no delivery for, by
  remote id, become ``remote``-origin items, so a post made by hand in the WeChat editor is counted.

Only changes are written, so a second run straight after the first changes nothing except its own
``sync_run`` row (the summary the dashboard shows). The network calls happen outside transactions;
each channel's changes are committed on their own, so one channel failing does not undo another's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from publisher.channel import Channel, LinkStatus
from publisher.counting.ledger import add_recorded_delivery, new_recorded_item
from publisher.errors import PublisherError
from publisher.models import ChannelStat, Delivery, ItemOrigin, LinkCheck, SyncRun, utcnow
from publisher.pipeline.workflow import add_department, audit

if TYPE_CHECKING:
    from publisher.app import App

log = logging.getLogger("publisher.counting.sync")
ACTOR = "sync"

#: progress(label, done, total): called as work is done, for the CLI's progress bar
Progress = Callable[[str, int, int], None]


@dataclass
class ChannelSync:
    channel: str
    stats_changed: int = 0
    links_checked: int = 0
    taken_down: list[int] = field(default_factory=list)  # delivery ids
    restored: list[int] = field(default_factory=list)
    remote_added: list[int] = field(default_factory=list)  # item ids
    errors: list[str] = field(default_factory=list)
    #: the days whose engagement figures this run fetched (ISO dates; None: none)
    stats_from: str | None = None
    #: the last day whose figures have been fetched, by this run or an earlier one
    stats_through: str | None = None
    #: when the run that fetched them read the list of articles (ISO, UTC)
    stats_read_at: str | None = None


@dataclass
class SyncSummary:
    run_id: int
    started_at: datetime
    finished_at: datetime
    channels: dict[str, ChannelSync]

    def total(self, what: str) -> int:
        return sum(len(v) if isinstance(v := getattr(c, what), list) else v for c in self.channels.values())

    @property
    def changed(self) -> bool:
        return any(self.total(k) for k in ("stats_changed", "taken_down", "restored", "remote_added"))


def run_sync(
    app: App, *, actor: str = ACTOR, progress: Progress | None = None, now: datetime | None = None
) -> SyncSummary:
    """Run the sync over every enabled channel; never raises for one channel's failure (it is recorded).

    ``now`` (aware; default: the current time) decides which days' figures are final.
    """
    now = now or utcnow()
    with app.session() as s:
        run = SyncRun(actor=actor)
        s.add(run)
        s.flush()
        run_id = run.id
        started = run.started_at
    assert run_id is not None
    results: dict[str, ChannelSync] = {}
    for name, spec in app.channels.items():
        if not spec.enabled:
            continue
        res = results[name] = ChannelSync(name, **_stats_kept(app, name))
        ch = spec.channel
        # listing first: what it finds gets its stats and link check in the same run
        for step in (_listing, _stats, _links):
            try:
                step(app, ch, res, run_id, progress, now)
            except PublisherError as exc:
                res.errors.append(f"{step.__name__.strip('_')}: {exc}")
                log.warning("sync %s %s failed: %s", name, step.__name__, exc)
    finished = utcnow()
    summary = SyncSummary(run_id=run_id, started_at=started, finished_at=finished, channels=results)
    with app.session() as s:
        run = s.get(SyncRun, run_id)
        assert run is not None
        run.finished_at = finished
        run.stats_changed = summary.total("stats_changed")
        run.links_checked = summary.total("links_checked")
        run.taken_down = summary.total("taken_down")
        run.restored = summary.total("restored")
        run.remote_added = summary.total("remote_added")
        run.errors = summary.total("errors")
        run.detail = {n: asdict(c) for n, c in results.items()}
        audit(
            s,
            actor=actor,
            entity="sync",
            entity_id=run_id,
            action="sync",
            taken_down=run.taken_down,
            restored=run.restored,
            remote_added=run.remote_added,
            errors=run.errors,
        )
    return summary


def _stats_kept(app: App, channel: str) -> dict[str, str]:
    """How far earlier runs fetched ``channel``'s figures: ``stats_through`` (the last day) and
    ``stats_read_at`` (when that run read the list of articles), from the last run's detail that has them."""
    with app.session() as s:
        runs = s.exec(
            select(SyncRun)
            .where(col(SyncRun.finished_at).is_not(None))
            .order_by(col(SyncRun.started_at).desc())
            .limit(50)
        )
        for run in runs:
            mine = (run.detail or {}).get(channel) or {}
            if mine.get("stats_through"):
                return {k: str(mine[k]) for k in ("stats_through", "stats_read_at") if mine.get(k)}
    return {}


def _stats(app: App, ch: Channel, res: ChannelSync, run_id: int, progress: Progress | None, now: datetime) -> None:
    """Each day's figures once: from the day after the last one fetched to the last final one.

    A run at Monday 03:00 must not end the window on Saturday for good (WeChat has no figures for
    today, nor for yesterday before 08:00): the next run starts where this one stopped. An article
    recorded after an earlier run read the list but published before this run's window (found late
    on the channel, recorded by hand) has its earlier days fetched once, as far back as a first run goes.
    """
    if not ch.supports_stats:
        return
    last = ch.stats_final_through(now)
    back = timedelta(days=app.settings.sync.stats_days - 1)
    through = date.fromisoformat(res.stats_through) if res.stats_through else None
    since = through + timedelta(days=1) if through else last - back
    read_at = utcnow()
    with app.session() as s:
        known = s.exec(
            select(Delivery.remote_id, Delivery.published_at, Delivery.created_at).where(
                Delivery.channel == ch.name,
                col(Delivery.remote_id).is_not(None),
                col(Delivery.published_at).is_not(None),
            )
        ).all()  # type: ignore[call-overload]
    late: dict[str, date] = {}
    if through is not None and res.stats_read_at:
        before = datetime.fromisoformat(res.stats_read_at)
        for rid, published, created in known:
            day = published.astimezone(app.settings.zone).date()
            if created >= before and day <= through:
                late[rid] = day
    if since > last and not late:
        return
    rows = ch.fetch_stats(sorted({k[0] for k in known}), since, last) if since <= last else []
    if late:
        first = max(min(late.values()), through - back)  # type: ignore[operator]
        rows += [r for r in ch.fetch_stats(sorted(late), first, through) if r.remote_id in late]  # type: ignore[arg-type]
    with app.session() as s:
        for r in rows:
            rid = r.remote_id or ""
            have = s.exec(
                select(ChannelStat).where(
                    ChannelStat.channel == ch.name,
                    ChannelStat.remote_id == rid,
                    ChannelStat.day == r.day,
                    ChannelStat.metric == r.metric,
                )
            ).first()
            if have is None:
                s.add(ChannelStat(channel=ch.name, remote_id=rid, day=r.day, metric=r.metric, value=r.value))
                s.flush()
                res.stats_changed += 1
            elif have.value != r.value:
                have.value = r.value
                res.stats_changed += 1
    if since <= last:
        res.stats_from, res.stats_through = since.isoformat(), last.isoformat()
    res.stats_read_at = read_at.isoformat()
    if progress:
        progress(f"{ch.name}: engagement", 1, 1)


def _links(app: App, ch: Channel, res: ChannelSync, run_id: int, progress: Progress | None, now: datetime) -> None:
    if not app.settings.sync.check_links:
        return
    with app.session() as s:
        todo = [
            (d.id, d.url, d.taken_down_at is not None)
            for d in s.exec(
                select(Delivery)
                .where(
                    Delivery.channel == ch.name,
                    col(Delivery.url).is_not(None),
                    col(Delivery.published_at).is_not(None),
                    col(Delivery.withdrawn_at).is_(None),
                )
                .order_by(Delivery.id)
            )
        ]
    unknown: list[str] = []
    for n, (did, url, was_down) in enumerate(todo, 1):
        if progress:
            progress(f"{ch.name}: links", n - 1, len(todo))
        try:
            status = ch.check_url(url)  # type: ignore[arg-type]
        except PublisherError as exc:
            status = LinkStatus(ok=False, reason=str(exc))
        gone = link_gone(status)
        if gone is None:
            unknown.append(f"{url} ({status.status or 'no answer'}: {status.reason})")
            continue
        res.links_checked += 1
        if gone != was_down:  # changed: down → up, or up → down
            _record_link(app, did, status, run_id, actor=ACTOR)
            (res.taken_down if gone else res.restored).append(did)  # type: ignore[arg-type]
    if unknown:
        res.errors.append(f"{len(unknown)} URL(s) could not be checked, left as they were; first: {unknown[0]}")
    if progress:
        progress(f"{ch.name}: links", len(todo), len(todo))


#: the answers that say a page is gone for good; anything else that is not a success is no verdict
GONE = frozenset({404, 410})


def link_gone(status: LinkStatus) -> bool | None:
    """True: taken down (404/410, or a channel's API saying so as 404/410); False: it answers;
    None: nobody knows (no answer, a timeout, a 5xx, an API call that failed) — leave it as it was."""
    if status.ok:
        return False
    return True if status.status in GONE else None


def _record_link(app: App, delivery_id: int, status: LinkStatus, run_id: int, *, actor: str) -> None:
    with app.session() as s:
        d = s.get(Delivery, delivery_id)
        assert d is not None
        now = utcnow()
        d.taken_down_at = None if status.ok else now
        d.updated_at = now
        s.add(
            LinkCheck(
                delivery_id=delivery_id,
                sync_run_id=run_id,
                at=now,
                ok=status.ok,
                status=status.status,
                reason=status.reason[:500],
            )
        )
        audit(
            s,
            actor=actor,
            entity="delivery",
            entity_id=delivery_id,
            action="link_restored" if status.ok else "taken_down",
            item_id=d.item_id,
            channel=d.channel,
            url=d.url,
            status=status.status,
            reason=status.reason[:500],
        )


def _listing(app: App, ch: Channel, res: ChannelSync, run_id: int, progress: Progress | None, now: datetime) -> None:
    if not ch.supports_listing:
        return
    with app.session() as s:
        last = s.exec(
            select(SyncRun)
            .where(col(SyncRun.finished_at).is_not(None), SyncRun.id != run_id)
            .order_by(col(SyncRun.started_at).desc())
        ).first()
    # a month's overlap: a channel may list an article days after it went out
    since = last.started_at - timedelta(days=30) if last else None
    found = ch.list_publications(since)
    cfg = app.settings.sync
    with app.session() as s:
        known = set(
            s.exec(select(Delivery.remote_id).where(Delivery.channel == ch.name, col(Delivery.remote_id).is_not(None)))
        )
        for pub in found:
            if pub.remote_id in known:
                continue
            if pub.published_at.tzinfo is None:
                res.errors.append(f"{pub.remote_id}: the channel gave a naive publish time; skipped")
                continue
            add_department(s, cfg.remote_department, actor=ACTOR)
            item = new_recorded_item(
                s,
                title=pub.title[:500] or f"({ch.name} {pub.remote_id})",
                category=cfg.remote_category,
                department=cfg.remote_department,
                origin=ItemOrigin.REMOTE,
                checklist_item=None,
                published_at=pub.published_at,
            )
            d = add_recorded_delivery(
                s,
                item,
                channel=ch.name,
                published_at=pub.published_at,
                url=pub.url,
                remote_id=pub.remote_id,
                note=f"found on {ch.name} by sync run {run_id}",
            )
            known.add(pub.remote_id)
            res.remote_added.append(item.id)  # type: ignore[arg-type]
            audit(
                s,
                actor=ACTOR,
                entity="item",
                entity_id=item.id,
                action="found_remote",
                to_state="published",
                channel=ch.name,
                remote_id=pub.remote_id,
                delivery_id=d.id,
                url=pub.url,
            )
    if progress:
        progress(f"{ch.name}: listing", 1, 1)


def latest_sync(app: App) -> SyncRun | None:
    """The last finished sync run (for the dashboard)."""
    with Session(app.engine) as s:
        return s.exec(
            select(SyncRun).where(col(SyncRun.finished_at).is_not(None)).order_by(col(SyncRun.started_at).desc())
        ).first()


def taken_down(app: App) -> list[Delivery]:
    """Publications whose URL stopped answering (for the dashboard and `publisher sync --show`)."""
    with Session(app.engine) as s:
        return list(
            s.exec(
                select(Delivery)
                .where(col(Delivery.taken_down_at).is_not(None))
                .order_by(col(Delivery.taken_down_at).desc())
            )
        )
