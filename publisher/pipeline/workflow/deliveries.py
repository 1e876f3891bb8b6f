"""An item's deliveries, one per target channel: queueing them once the item is cleared, moving its
publish time, taking it down, retrying a failed one, recording one posted by hand."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from publisher.channel import web_address
from publisher.errors import InvalidInput, NotAllowed, NotFound
from publisher.models import Delivery, DeliveryOp, DeliveryRequest, DeliveryStatus, Item, ItemStatus, User, utcnow
from publisher.pipeline import content
from publisher.pipeline.workflow.audit import SYSTEM, audit
from publisher.pipeline.workflow.catalogue import allocate_index_no
from publisher.pipeline.workflow.context import Context
from publisher.pipeline.workflow.inflight import (
    _after_take_down,
    _drop_request,
    _maybe_out,
    _request,
    by_hand,
    unknown_fate,
)
from publisher.pipeline.workflow.states import (
    QUEUE,
    RETRY,
    SCHEDULE,
    WITHDRAW,
    _deliveries,
    get_item,
    is_cleared,
    rollup,
    transition,
)


def _future_time(ctx: Context, value: Any) -> datetime:
    at = content.parse_time(value, what="publish time")
    now = utcnow()
    if at < now - timedelta(minutes=1):
        if not ctx.settings.review.allow_past_publish_time:
            shown = at.astimezone(ctx.settings.zone).isoformat(timespec="minutes")
            raise InvalidInput(
                f"publish time {shown} is in the past; give a future time "
                "(or set review.allow_past_publish_time = true to publish at once)"
            )
        return now
    return at


def schedule(
    ctx: Context, session: Session, *, item_id: int, at: Any, actor: str = SYSTEM, user: User | None = None
) -> Item:
    """Set (or move) the publish time. An approved item is queued at once; a draft keeps the time."""
    item = get_item(session, item_id, lock=True)
    with transition(session, item, SCHEDULE, actor, user=user):
        when = _future_time(ctx, at)
        item.publish_at = when
        audit(
            session,
            actor=actor,
            entity="item",
            entity_id=item.id,
            action="schedule",
            from_state=item.status,
            to_state=item.status,
            publish_at=when.isoformat(),
        )
    if item.status == ItemStatus.APPROVED:
        _queue_deliveries(ctx, session, item, actor)
    elif item.status in (ItemStatus.SCHEDULED, ItemStatus.FAILED):
        for d in _deliveries(session, item.id):
            if d.status == DeliveryStatus.PENDING and d.op == DeliveryOp.PUBLISH:
                d.due_at = (
                    ctx.channels[d.channel].next_slot(when, ctx.settings.zone) if d.channel in ctx.channels else when
                )
                d.updated_at = utcnow()
        wake_workers(session)
    return item


def wake_workers(session: Session) -> None:
    """Tell idle workers the queue changed (PostgreSQL NOTIFY, sent at commit; SQLite workers poll)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("NOTIFY publisher_queue"))


def _queue_deliveries(ctx: Context, session: Session, item: Item, actor: str) -> None:
    """After both approvals: one delivery per target channel (publish, or update where it is live)."""
    assert item.publish_at is not None
    # the queue's rule is both approvals (belt and braces: never queue an item not cleared twice)
    with transition(session, item, QUEUE, actor):
        gone = [name for name in item.channels if name not in ctx.channels]
        if gone:
            raise InvalidInput(
                f"item {item.id} targets {', '.join(gone)}, no longer configured in settings.toml: "
                "edit the item's channels or configure them again"
            )
        # the 索引号, before any channel is called: the first copy anywhere carries it (docs/catalogue.md)
        allocate_index_no(ctx, session, item, at=max(item.publish_at, utcnow()))
        existing = {d.channel: d for d in _deliveries(session, item.id)}
        for name in item.channels:
            _queue_one(ctx, session, item, name, existing.get(name), actor)
    # every delivery may have failed right here (live on channels that cannot update): no worker
    # will touch the item again, so its state must be settled now
    rollup(session, item, actor)
    wake_workers(session)


def _queue_one(ctx: Context, session: Session, item: Item, name: str, d: Delivery | None, actor: str) -> None:
    """Owe the item's current version on channel ``name``, whose delivery (if any) is ``d``."""
    assert item.publish_at is not None
    spec = ctx.channels[name]
    due = spec.next_slot(item.publish_at, ctx.settings.zone)
    if d is not None and d.status == DeliveryStatus.CLAIMED:
        # the call in flight may be publishing the version before: resetting the row now would
        # lose its result, so the worker queues the current version when it records it
        _request(
            session,
            d,
            DeliveryRequest.REQUEUE,
            actor,
            f"version {item.version} approved while the delivery was being sent: queued when the call returns",
        )
        return
    if d is None:
        d = Delivery(item_id=item.id, channel=name, op=DeliveryOp.PUBLISH, due_at=due, item_version=item.version)
        session.add(d)
        session.flush()
        audit(
            session,
            actor=actor,
            entity="delivery",
            entity_id=d.id,
            action="queue",
            to_state="pending",
            item_id=item.id,
            channel=name,
            due_at=due.isoformat(),
        )
        return
    live = d.published_at is not None and d.withdrawn_at is None
    d.op = DeliveryOp.UPDATE if live else DeliveryOp.PUBLISH
    if not live and d.published_at is not None and d.withdrawn_at is not None:
        d.state = _after_take_down(d.state, d.withdrawn_at)
    d.item_version = item.version
    d.due_at = due
    d.attempts = 0
    if live and not spec.channel.supports_update:
        _set_delivery(
            session,
            d,
            DeliveryStatus.FAILED,
            actor,
            f"{name} cannot update a published item: change it there by hand",
        )
        return
    _set_delivery(session, d, DeliveryStatus.PENDING, actor, f"queued {d.op}")


def withdraw(
    ctx: Context,
    session: Session,
    *,
    item_id: int,
    actor: str = SYSTEM,
    reason: str | None = None,
    user: User | None = None,
) -> Item:
    """Take an item down: unsent deliveries are cancelled, live ones are asked to withdraw."""
    item = get_item(session, item_id, lock=True)
    with transition(session, item, WITHDRAW, actor, user=user, reason=reason):
        for d in _deliveries(session, item.id):
            _take_down(ctx, session, d, actor)
    wake_workers(session)
    return item


def _take_down(
    ctx: Context, session: Session, d: Delivery, actor: str, *, removed: bool = False, why: str | None = None
) -> None:
    """What went out on ``d``'s channel is to come down; what has not is cancelled.

    ``removed``: the channel was taken off the item's list (the item stays); else the item is withdrawn
    (``why``: the reason each delivery records, default "item withdrawn").
    A claimed delivery may be inside the channel call: it gets a request instead, which the worker
    applies when it records the call's outcome (see :func:`settle_request`). The take-down is the
    only call a withdrawn item (or a removed channel) may still see.
    """
    why = f"{d.channel} was removed from the item's channels" if removed else why or "item withdrawn"
    if d.status == DeliveryStatus.CLAIMED:
        if d.op != DeliveryOp.WITHDRAW:
            _request(
                session,
                d,
                DeliveryRequest.WITHDRAW,
                actor,
                f"{why} while it was being sent: taken down when the call returns if it went out, else cancelled",
            )
        elif d.requested:
            # the take-down in flight is what is wanted now: a request left by an earlier put-back and
            # re-approval (requeue) would otherwise queue a publish once the take-down is recorded
            _drop_request(session, d, actor, f"{why} while its take-down was being sent: the take-down stands")
        return
    live = d.published_at is not None and d.withdrawn_at is None
    if not live:
        if d.op == DeliveryOp.WITHDRAW and d.status in (DeliveryStatus.DONE, DeliveryStatus.FAILED):
            return  # taken down, or a person told to
        # Not up as far as the store knows, so nothing more may go out: cancelled. That includes a
        # copy taken down once whose channel was put back: ``withdrawn_at`` is still set while the new
        # publish is queued (returning here left it pending for a withdrawn item). An edit may have
        # cancelled it after an ambiguous attempt: cancelled is not proof it is not up.
        if _maybe_out(session.connection(), d.id):
            d.op = DeliveryOp.WITHDRAW
            d.last_error = None
            _set_delivery(session, d, DeliveryStatus.FAILED, actor, unknown_fate(d.channel, why))
        elif d.status != DeliveryStatus.CANCELLED:
            _set_delivery(session, d, DeliveryStatus.CANCELLED, actor, f"{why} before it went out")
        return
    if removed and d.op == DeliveryOp.WITHDRAW and d.status in (DeliveryStatus.PENDING, DeliveryStatus.FAILED):
        return  # already owed (an earlier edit removed it)
    d.op = DeliveryOp.WITHDRAW
    d.attempts = 0
    d.due_at = utcnow()
    spec = ctx.channels.get(d.channel)
    if spec is None or not spec.channel.supports_withdraw:
        d.last_error = None
        _set_delivery(session, d, DeliveryStatus.FAILED, actor, by_hand(d.channel))
    else:
        _set_delivery(session, d, DeliveryStatus.PENDING, actor, f"queued withdraw ({why})")
    wake_workers(session)


def _put_back(session: Session, d: Delivery, actor: str) -> None:
    """A channel back on the item's list before its take-down was done: the removal is undone, and
    the copy there is treated as after any edit (kept, updated once the new version is approved)."""
    why = f"take-down cancelled: {d.channel} is back on the item's channels"
    if d.status == DeliveryStatus.CLAIMED:
        if d.requested == DeliveryRequest.WITHDRAW:
            _request(session, d, DeliveryRequest.CANCEL, actor, why)
        return
    if d.op == DeliveryOp.WITHDRAW and d.status in (DeliveryStatus.PENDING, DeliveryStatus.FAILED):
        live = d.published_at is not None and d.withdrawn_at is None
        d.op = DeliveryOp.PUBLISH
        _set_delivery(session, d, DeliveryStatus.DONE if live else DeliveryStatus.CANCELLED, actor, why)


@dataclass
class Withdrawals:
    """What is owed to take an item down, per channel (what the faces tell the person who asked)."""

    queued: list[str]  #: a worker takes it down
    in_flight: list[str]  #: being sent right now: taken down when the call returns, if it went out
    by_hand: list[str]  #: the channel cannot withdraw: a person must


def withdrawals(session: Session, item: Item, *, channels: Iterable[str] | None = None) -> Withdrawals:
    """The take-downs owed on ``item`` (only on ``channels`` when given)."""
    out = Withdrawals([], [], [])
    for d in _deliveries(session, item.id):
        if channels is not None and d.channel not in channels:
            continue
        if d.status == DeliveryStatus.CLAIMED and d.requested == DeliveryRequest.WITHDRAW:
            out.in_flight.append(d.channel)
        elif d.op == DeliveryOp.WITHDRAW and d.status in (DeliveryStatus.PENDING, DeliveryStatus.CLAIMED):
            out.queued.append(d.channel)
        elif d.op == DeliveryOp.WITHDRAW and d.status == DeliveryStatus.FAILED:
            out.by_hand.append(d.channel)
    return out


def retry_delivery(ctx: Context, session: Session, *, delivery_id: int, actor: str = SYSTEM) -> Delivery:
    """Put one failed delivery (one channel) back in the queue."""
    d = session.get(Delivery, delivery_id)
    if d is None:
        raise NotFound(f"no delivery {delivery_id}")
    if d.status != DeliveryStatus.FAILED:
        raise NotAllowed(f"delivery {delivery_id} is {d.status}; only a failed delivery can be retried")
    item = get_item(session, d.item_id)  # unlocked: rollup locks it after the delivery, as the worker does
    if d.op != DeliveryOp.WITHDRAW and not is_cleared(session, item):
        raise NotAllowed(f"item {item.id} lacks its two approvals")
    # a failed item is scheduled again; in any other state it keeps it
    with transition(session, item, RETRY, actor):
        d.attempts = 0
        d.due_at = utcnow()
        _set_delivery(session, d, DeliveryStatus.PENDING, actor, "retry requested")
    wake_workers(session)
    return d


def record_manual(
    ctx: Context,
    session: Session,
    *,
    delivery_id: int,
    actor: str,
    url: str | None = None,
    not_applicable: str | None = None,
) -> Delivery:
    """A person posted the item by hand (or it does not apply there): record it so it counts."""
    d = session.get(Delivery, delivery_id)
    if d is None:
        raise NotFound(f"no delivery {delivery_id}")
    spec = ctx.channels.get(d.channel)
    if spec is None or not spec.channel.manual:
        raise InvalidInput(f"delivery {delivery_id} is on {d.channel}, which is not a manual channel")
    if d.status not in (DeliveryStatus.WAITING, DeliveryStatus.PENDING, DeliveryStatus.FAILED):
        raise NotAllowed(f"delivery {delivery_id} is {d.status}; nothing to record")
    item = get_item(session, d.item_id)  # unlocked: rollup locks it after the delivery, as the worker does
    if not is_cleared(session, item):
        raise NotAllowed(f"item {item.id} lacks its two approvals: it may not be posted anywhere yet")
    if (url is None) == (not_applicable is None):
        raise InvalidInput("give either the published URL or --not-applicable REASON")
    now = utcnow()
    if url is not None:
        url = validate_url(url)
        d.url = url
        d.published_at = d.published_at or now
        d.note = None
    else:
        if not not_applicable.strip():  # type: ignore[union-attr]
            raise InvalidInput("--not-applicable needs a reason")
        d.note = f"not applicable: {not_applicable}"
    _set_delivery(session, d, DeliveryStatus.DONE, actor, "recorded by hand", url=url)
    rollup(session, item, actor)
    return d


def validate_url(url: str) -> str:
    return web_address(url)


def _set_delivery(session: Session, d: Delivery, to: DeliveryStatus, actor: str, reason: str, **detail: Any) -> None:
    before = d.status
    d.status = to
    d.updated_at = utcnow()
    if to != DeliveryStatus.CLAIMED:
        d.lease_owner = None
        d.lease_expires_at = None
        # a request only means something to the worker holding the delivery; whoever settles it otherwise
        # decides afresh (a stale one would be applied to a later, unrelated call)
        d.requested = None
        d.request_lease = None
    if to == DeliveryStatus.FAILED and not d.last_error:
        d.last_error = reason
    audit(
        session,
        actor=actor,
        entity="delivery",
        entity_id=d.id,
        action=d.op,
        from_state=before,
        to_state=to,
        reason=reason,
        item_id=d.item_id,
        channel=d.channel,
        **detail,
    )
