"""Requests on a delivery a worker holds: an edit, a withdrawal or a re-approval that comes while the
channel call is in flight leaves a request on the delivery (:func:`_request`); the worker's record
applies it to the call's outcome (:func:`settle_request`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session

from publisher.models import Delivery, DeliveryAttempt, DeliveryOp, DeliveryRequest, DeliveryStatus, Item, utcnow
from publisher.pipeline.workflow.audit import audit
from publisher.pipeline.workflow.context import Context


def _request(session: Session, d: Delivery, kind: DeliveryRequest, actor: str, reason: str) -> None:
    """Leave a wish on a delivery a worker holds; the worker's record applies it (:func:`settle_request`)."""
    if not d.requested:
        d.request_lease = d.lease_owner  # the first holder's call is the one whose result counts
    d.requested = kind
    d.updated_at = utcnow()
    audit(
        session,
        actor=actor,
        entity="delivery",
        entity_id=d.id,
        action=f"request {kind}",
        from_state=d.status,
        to_state=d.status,
        reason=reason,
        item_id=d.item_id,
        channel=d.channel,
        lease_owner=d.lease_owner,
    )


def _drop_request(session: Session, d: Delivery, actor: str, reason: str) -> None:
    """Take back the wish left on a claimed delivery: the worker records the call's own outcome."""
    was = d.requested
    d.requested = None
    d.request_lease = None
    d.updated_at = utcnow()
    audit(
        session,
        actor=actor,
        entity="delivery",
        entity_id=d.id,
        action=f"drop request {was}",
        from_state=d.status,
        to_state=d.status,
        reason=reason,
        item_id=d.item_id,
        channel=d.channel,
        lease_owner=d.lease_owner,
    )


def _after_take_down(state: dict[str, Any], withdrawn_at: datetime) -> dict[str, Any]:
    """The channel state a publish owed after a take-down (a put-back) starts from.

    A new publication: the old copy's ids (draft, post, article) are forgotten and the generation
    goes up, so idempotency keys (:attr:`DeliveryContext.idempotency_key`) and channel markers differ
    from the old copy's. Queued again for the same take-down (an edit cancelled it, the item was
    approved again) the state is kept: an attempt already made may have gone out.
    """
    stamp = withdrawn_at.isoformat()
    if state.get("taken_down_at") == stamp:
        return state
    return {"generation": int(state.get("generation") or 0) + 1, "taken_down_at": stamp}


def by_hand(channel: str) -> str:
    return f"{channel} cannot withdraw automatically: take it down by hand"


def unknown_fate(channel: str, why: str) -> str:
    return (
        f"{why}, and whether it went out on {channel} is unknown: check {channel} and take it down by hand "
        "if it is there"
    )


def _maybe_out(conn: Connection, delivery_id: int | None) -> bool:
    """A publish attempt of the delivery ended ambiguous since its last recorded success (a publish
    that went out, or a take-down): the channel may have it up although nothing was recorded as
    published (the next attempt would have reconciled; there will be none)."""
    at = DeliveryAttempt.__table__  # type: ignore[attr-defined]
    last_done = sa.select(sa.func.max(at.c.id)).where(at.c.delivery_id == delivery_id, at.c.outcome == "done")
    q = (
        sa.select(at.c.id)
        .where(
            at.c.delivery_id == delivery_id,
            at.c.op == DeliveryOp.PUBLISH.value,
            at.c.outcome == "ambiguous",
            at.c.id > sa.func.coalesce(last_done.scalar_subquery(), 0),
        )
        .limit(1)
    )
    return conn.execute(q).first() is not None


@dataclass(frozen=True)
class Settlement:
    """A request left on a claimed delivery, and the outcome of the call its worker is recording."""

    requested: str  #: the request (:class:`DeliveryRequest`)
    request_lease: str | None  #: the lease that held the delivery when the first request was left
    worker: str  #: the worker recording the outcome
    delivery_id: int
    op: str  #: what the call did (:class:`DeliveryOp`)
    channel: str
    item_id: int
    sent_version: int | None  #: the item version the call carried (None: no call was made)
    outcome: str  #: the attempt's outcome ("done", "ambiguous", …; "released": handed back unsent)
    to: DeliveryStatus  #: the state the outcome alone would leave the delivery in


def settle_request(ctx: Context, conn: Connection, s: Settlement, values: dict[str, Any]) -> tuple[DeliveryStatus, str]:
    """Apply a request left on a claimed delivery (:func:`_request`) to the outcome its worker is recording.

    Called by the dispatcher's record, inside its transaction, with the delivery row locked and
    ``values`` the columns the outcome alone would write (changed in place). Returns the state the
    delivery ends in and the reason for its audit row.

    What the call did decides: a publish that went out (or an update: the copy was already live) is
    taken down by a withdraw delivery due now; one that did not go out ends cancelled without a
    call; one whose fate is unknown (ambiguous, still in progress on the channel, or made by a worker
    whose lease ran out before this one took over) fails with the reason, for a person to check.
    """
    op, channel, outcome, to = s.op, s.channel, s.outcome, s.to
    values["requested"] = None
    values["request_lease"] = None
    spec = ctx.channels.get(channel)
    # publish is only owed where the item is not live, update only where it is; a take-down that
    # succeeded leaves nothing live
    live = (to == DeliveryStatus.DONE) != (op == DeliveryOp.WITHDRAW) or op == DeliveryOp.UPDATE
    lease_lost = s.request_lease is not None and s.request_lease != s.worker  # the first holder's call is unrecorded
    unsent = outcome == "released"  # handed back before its call started (Dispatcher.release)
    unknown = not live and (outcome == "ambiguous" or to == DeliveryStatus.WAITING or lease_lost)
    now = values.get("updated_at") or utcnow()

    def owe(new_op: str, status: DeliveryStatus, due: datetime, reason: str | None = None) -> DeliveryStatus:
        values.update(
            op=new_op,
            due_at=due,
            attempts=0,
            last_error=reason,
            last_error_kind=None,
            last_error_code=None,
            status=status.value,
        )
        return status

    if s.requested == DeliveryRequest.WITHDRAW:
        if live:
            if spec is None or not spec.channel.supports_withdraw:
                return owe(DeliveryOp.WITHDRAW, DeliveryStatus.FAILED, now, by_hand(channel)), (
                    f"withdrawal requested while it was being sent, and it went out: {by_hand(channel)}"
                )
            return owe(DeliveryOp.WITHDRAW, DeliveryStatus.PENDING, now), (
                "withdrawal requested while it was being sent, and it went out: queued withdraw"
            )
        if unknown or _maybe_out(conn, s.delivery_id):
            why = unknown_fate(
                channel,
                f"withdrawal requested while it was being sent ({outcome}{', lease lost' if lease_lost else ''})",
            )
            return owe(DeliveryOp.WITHDRAW, DeliveryStatus.FAILED, now, why), why
        values["status"] = DeliveryStatus.CANCELLED.value
        if unsent:
            return DeliveryStatus.CANCELLED, "withdrawal requested before it was sent: cancelled"
        return DeliveryStatus.CANCELLED, "withdrawal requested while it was being sent; it did not go out: cancelled"
    if s.requested == DeliveryRequest.CANCEL:
        if to in (DeliveryStatus.PENDING, DeliveryStatus.WAITING):
            when = "before it was sent" if unsent else "while it was being sent"
            if live:
                values["status"] = DeliveryStatus.DONE.value
                return DeliveryStatus.DONE, f"update superseded by a newer edit (made {when})"
            values["status"] = DeliveryStatus.CANCELLED.value
            return DeliveryStatus.CANCELLED, f"item edited after approval {when}: cancelled"
        return to, f"item edited after approval while it was being sent; kept {to}"
    # REQUEUE: the edit made while the call was in flight has been approved: owe the current version
    it = Item.__table__  # type: ignore[attr-defined]
    row = conn.execute(sa.select(it.c.version, it.c.publish_at).where(it.c.id == s.item_id)).one()
    values["item_version"] = row.version
    if op != DeliveryOp.WITHDRAW and s.sent_version == row.version:
        return to, f"the call carried the approved version {row.version}: kept {to}"
    if to == DeliveryStatus.WAITING:
        return to, f"still in progress on {channel}; its next check carries version {row.version}"
    due = spec.next_slot(row.publish_at or now, ctx.settings.zone) if spec is not None else now
    if live:
        if spec is None or not spec.channel.supports_update:
            why = f"{channel} cannot update a published item: change it there by hand"
            return owe(DeliveryOp.UPDATE, DeliveryStatus.FAILED, due, why), why
        return owe(DeliveryOp.UPDATE, DeliveryStatus.PENDING, due), f"queued update to version {row.version}"
    dl = Delivery.__table__  # type: ignore[attr-defined]
    was = conn.execute(
        sa.select(dl.c.published_at, dl.c.withdrawn_at, dl.c.state).where(dl.c.id == s.delivery_id)
    ).one()
    withdrawn_at = values.get("withdrawn_at", was.withdrawn_at)
    if was.published_at is not None and withdrawn_at is not None:  # a put-back: a new publication
        values["state"] = _after_take_down(values.get("state") or was.state or {}, withdrawn_at)
    return owe(DeliveryOp.PUBLISH, DeliveryStatus.PENDING, due), f"queued publish of version {row.version}"
