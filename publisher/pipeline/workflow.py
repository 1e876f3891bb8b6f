"""The review workflow: who may move an item from which state to which, and the service functions
that every face (CLI, web, API) calls. Each function works inside the caller's transaction and
writes an audit row for every state change; the caller commits once per user action.

The invariant the office answers to regulators for: **nothing reaches any channel without both
approvals of the item's current version, by two different people, neither of them the author.**
It is enforced twice: deliveries are only created by :func:`_queue_deliveries` after the second
approval, and the dispatcher re-checks :func:`is_cleared` right before it calls a channel.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from publisher.channel import Asset as PostAsset
from publisher.channel import Post, site_page_path, web_address
from publisher.checklist import checklist, checklist_name
from publisher.db import DriverMany, one_of, records
from publisher.errors import ContentNotAccepted, InvalidInput, NotAllowed, NotFound
from publisher.models import (
    Asset,
    AuditLog,
    Delivery,
    DeliveryAttempt,
    DeliveryOp,
    DeliveryRequest,
    DeliveryStatus,
    Department,
    Item,
    ItemStatus,
    ItemVersion,
    Review,
    Role,
    User,
    utcnow,
)
from publisher.pipeline import content
from publisher.pipeline.registry import ChannelSpec
from publisher.settings import Settings

SYSTEM = "system"

#: item states in which the item (or a version of it) may be out on channels
LIVE_STATES = {ItemStatus.SCHEDULED, ItemStatus.PUBLISHED, ItemStatus.FAILED}
EDITABLE_STATES = {
    ItemStatus.DRAFT,
    ItemStatus.SUBMITTED,
    ItemStatus.DEPT_APPROVED,
    ItemStatus.APPROVED,
    ItemStatus.SCHEDULED,
    ItemStatus.PUBLISHED,
    ItemStatus.FAILED,
}


@dataclass
class Context:
    """What a service call needs besides the session: settings and the configured channels."""

    settings: Settings
    channels: Mapping[str, ChannelSpec]


def audit(
    session: Session,
    *,
    actor: str,
    entity: str,
    entity_id: int | None,
    action: str,
    from_state: str | None = None,
    to_state: str | None = None,
    reason: str | None = None,
    **detail: Any,
) -> None:
    session.add(
        AuditLog(
            actor=actor,
            entity=entity,
            entity_id=entity_id,
            action=action,
            from_state=from_state,
            to_state=to_state,
            reason=reason,
            detail=detail,
        )
    )


# ----------------------------------------------------------------------------------------- users
def get_user(session: Session, name: str) -> User:
    user = session.exec(select(User).where(User.name == name)).first()
    if user is None or not user.active:
        raise NotFound(f"no user {name!r} (add one with `publisher user add {name} --role ...`)")
    return user


def add_department(session: Session, name: str, *, actor: str = SYSTEM) -> Department:
    name = name.strip()
    if not name:
        raise InvalidInput("a department needs a name")
    existing = session.exec(select(Department).where(Department.name == name)).first()
    if existing:
        return existing
    dept = Department(name=name)
    session.add(dept)
    session.flush()
    audit(session, actor=actor, entity="department", entity_id=dept.id, action="create", to_state=name)
    return dept


def departments(session: Session) -> list[str]:
    return list(session.exec(select(Department.name).order_by(Department.name)))


def _check_department(session: Session, name: str) -> str:
    known = departments(session)
    if name not in known:
        raise InvalidInput(
            f"unknown department {name!r}; known: {', '.join(known) or 'none'} "
            "(add it with `publisher department add NAME`)"
        )
    return name


def add_user(
    session: Session,
    *,
    name: str,
    role: str,
    department: str | None,
    display_name: str = "",
    actor: str = SYSTEM,
    password_hash: str | None = None,
) -> User:
    if not name.strip() or any(c.isspace() for c in name):
        raise InvalidInput(f"user name {name!r}: one word without spaces, e.g. wang.li")
    try:
        role_ = Role(role)
    except ValueError:
        raise InvalidInput(f"unknown role {role!r}; one of: {', '.join(r.value for r in Role)}") from None
    if role_ in (Role.EDITOR, Role.DEPARTMENT_HEAD) and not department:
        raise InvalidInput(f"a {role_.value} belongs to a department: add --department NAME")
    if department:
        _check_department(session, department)
    if session.exec(select(User).where(User.name == name)).first():
        raise InvalidInput(f"user {name!r} already exists")
    user = User(
        name=name, role=role_, department=department, display_name=display_name or name, password_hash=password_hash
    )
    session.add(user)
    session.flush()
    audit(
        session,
        actor=actor,
        entity="user",
        entity_id=user.id,
        action="create",
        to_state=role_.value,
        department=department,
    )
    return user


# ----------------------------------------------------------------------------------------- items
def get_item(session: Session, item_id: int, *, lock: bool = False) -> Item:
    """``lock`` for every state change: on PostgreSQL two actions on one item at once (an edit and
    the second approval of the version before it) otherwise each decide on what they read first,
    and the later write wins: an unreviewed version ended up scheduled.

    The item's deliveries are locked too, first and in id order, as the dispatcher's record takes
    them (delivery rows, then the item): a withdrawal or an edit then either sees the outcome a
    worker has just recorded or leaves its request (``Delivery.requested``) on a delivery the worker
    still holds, where the record will find it; and neither waits for the other in a cycle."""
    if lock:
        session.exec(
            select(Delivery.id).where(Delivery.item_id == item_id).order_by(Delivery.id).with_for_update()
        ).all()
    item = session.get(Item, item_id, with_for_update=True if lock else None)
    if item is None:
        raise NotFound(f"no item {item_id}")
    return item


def _check_fields(ctx: Context, session: Session, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the editable fields of an item; InvalidInput naming the first bad one."""
    out: dict[str, Any] = {}
    if "category" in fields:
        cat = str(fields["category"] or "").strip()
        if cat not in ctx.settings.categories:
            raise InvalidInput(f"unknown category {cat!r}; one of: {', '.join(ctx.settings.categories)}")
        out["category"] = cat
    if "department" in fields:
        out["department"] = _check_department(session, str(fields["department"] or "").strip())
    if "checklist_item" in fields and fields["checklist_item"] not in (None, ""):
        try:
            n = int(fields["checklist_item"])
        except (TypeError, ValueError):
            raise InvalidInput(f"checklist item {fields['checklist_item']!r} is not a number from 1 to 50") from None
        if n not in checklist():
            raise InvalidInput(f"checklist item {n} is outside 1-50 (see `publisher checklist`)")
        out["checklist_item"] = n
    if "channels" in fields:
        chans = fields["channels"]
        if isinstance(chans, str):
            chans = [c.strip() for c in chans.split(",") if c.strip()]
        if not isinstance(chans, list | tuple) or not chans:
            raise InvalidInput("an item needs at least one target channel (channels: [website, ...])")
        unknown = [c for c in chans if c not in ctx.channels]
        if unknown:
            raise InvalidInput(
                f"unknown channel(s) {', '.join(map(str, unknown))}; configured: {', '.join(ctx.channels) or 'none'}"
            )
        disabled = [c for c in chans if not ctx.channels[c].enabled]
        if disabled:
            raise InvalidInput(f"channel(s) {', '.join(disabled)} are disabled in settings.toml")
        out["channels"] = list(dict.fromkeys(str(c) for c in chans))
    if "summary" in fields:
        out["summary"] = str(fields["summary"] or "").strip()
    if "title" in fields:
        title = str(fields["title"] or "").strip()
        if not title:
            raise InvalidInput("the title is empty")
        if len(title) > 500:
            raise InvalidInput(f"the title is {len(title)} characters; at most 500")
        out["title"] = title
    if fields.get("publish_at") not in (None, ""):
        out["publish_at"] = _future_time(ctx, fields["publish_at"])
    return out


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


def create_item(
    ctx: Context,
    session: Session,
    *,
    author: User,
    draft: content.ItemDraft,
    idempotency_key: str | None = None,
) -> Item:
    if author.role not in (Role.EDITOR, Role.ADMIN, Role.DEPARTMENT_HEAD):
        raise NotAllowed(f"{author.name} is a {author.role}; only editors write items")
    if idempotency_key:
        existing = session.exec(select(Item).where(Item.idempotency_key == idempotency_key)).first()
        if existing:
            return existing
    fields = dict(draft.fields)
    fields.pop("author", None)
    fields.setdefault("department", author.department)
    for required in ("category", "channels"):
        if not fields.get(required):
            raise InvalidInput(f"the item has no {required} (add `{required}:` to the front matter)")
    checked = _check_fields(ctx, session, {**fields, "title": draft.title})
    if author.role != Role.ADMIN and checked["department"] != author.department:
        raise NotAllowed(f"{author.name} writes for {author.department}, not {checked['department']}")
    if len(draft.body_markdown.encode()) > ctx.settings.review.max_body_bytes:
        raise InvalidInput("the body is larger than review.max_body_bytes")
    item = Item(
        title=checked["title"],
        summary=checked.get("summary") or content.plain_text(draft.body_markdown, 120),
        body_markdown=draft.body_markdown,
        body_html=content.render_markdown(draft.body_markdown),
        category=checked["category"],
        department=checked["department"],
        author_id=author.id,
        checklist_item=checked.get("checklist_item"),
        channels=checked["channels"],
        publish_at=checked.get("publish_at"),
        idempotency_key=idempotency_key,
    )
    session.add(item)
    session.flush()
    for a in draft.assets:
        session.add(Asset(item_id=item.id, **a.__dict__))
    _record_version(session, item, author.name)
    audit(
        session,
        actor=author.name,
        entity="item",
        entity_id=item.id,
        action="create",
        to_state=ItemStatus.DRAFT,
        title=item.title,
    )
    return item


def _record_version(session: Session, item: Item, actor: str) -> None:
    """Keep each version's title and body, so a reviewer sees what changed since an approval."""
    session.add(
        ItemVersion(
            item_id=item.id, version=item.version, title=item.title, body_markdown=item.body_markdown, actor=actor
        )
    )


def _may_edit(user: User, item: Item) -> bool:
    if user.role == Role.ADMIN:
        return True
    return user.role in (Role.EDITOR, Role.DEPARTMENT_HEAD) and user.department == item.department


def edit_item(
    ctx: Context,
    session: Session,
    *,
    item_id: int,
    actor: User,
    changes: Mapping[str, Any],
    body_markdown: str | None = None,
    new_assets: Iterable[content.StoredAsset] = (),
) -> Item:
    """Change an item. An edit after any approval sends it back to the first review."""
    item = get_item(session, item_id, lock=True)
    _pipeline_only(item, "edited")
    if not _may_edit(actor, item):
        raise NotAllowed(f"{actor.name} may not edit item {item_id} of {item.department}")
    if item.status not in EDITABLE_STATES:
        raise NotAllowed(f"item {item_id} is {item.status}; it can no longer be edited")
    checked = _check_fields(ctx, session, changes)
    if actor.role != Role.ADMIN and checked.get("department", actor.department) != actor.department:
        raise NotAllowed(f"{actor.name} cannot move an item to another department")
    for k, v in checked.items():
        setattr(item, k, v)
    if body_markdown is not None:
        item.body_markdown = body_markdown
        item.body_html = content.render_markdown(body_markdown)
    for a in new_assets:
        session.add(Asset(item_id=item.id, **a.__dict__))
    before = item.status
    item.version += 1
    item.updated_at = utcnow()
    deliveries = _deliveries(session, item.id)
    # a channel taken off the list: take the copy there down (or say it must be, by hand); cancel the rest
    for d in deliveries:
        if d.channel not in item.channels:
            _take_down(ctx, session, d, actor.name, removed=True)
        else:
            _put_back(session, d, actor.name)
    if before in (
        ItemStatus.DEPT_APPROVED,
        ItemStatus.APPROVED,
        ItemStatus.SCHEDULED,
        ItemStatus.PUBLISHED,
        ItemStatus.FAILED,
    ):
        item.status = ItemStatus.SUBMITTED
        # nothing of the old version may still go out: cancel what has not been sent
        for d in deliveries:
            if d.op == DeliveryOp.WITHDRAW and d.status == DeliveryStatus.CLAIMED and d.requested:
                # a take-down in flight after its channel was put back and the item approved again: the
                # approval is gone, so the publish it asked for must not follow the take-down
                _drop_request(
                    session,
                    d,
                    actor.name,
                    "item edited after approval while a take-down was "
                    "being sent: the take-down stands; the next approval publishes again",
                )
            if d.op == DeliveryOp.WITHDRAW or d.channel not in item.channels:
                continue  # a take-down needs no approval and stays owed
            if d.status == DeliveryStatus.CLAIMED:
                _request(
                    session,
                    d,
                    DeliveryRequest.CANCEL,
                    actor.name,
                    "item edited after approval while it was being sent: what went out stays "
                    "(updated after the new approval), the rest is cancelled when the call returns",
                )
            elif d.status in (DeliveryStatus.PENDING, DeliveryStatus.WAITING) and (
                d.published_at is None or d.withdrawn_at is not None  # not up: a put-back's new publish
            ):
                _set_delivery(session, d, DeliveryStatus.CANCELLED, actor.name, "item edited after approval")
            elif d.status in (DeliveryStatus.PENDING, DeliveryStatus.WAITING):
                _set_delivery(session, d, DeliveryStatus.DONE, actor.name, "update superseded by a newer edit")
    _record_version(session, item, actor.name)
    audit(
        session,
        actor=actor.name,
        entity="item",
        entity_id=item.id,
        action="edit",
        from_state=before,
        to_state=item.status,
        version=item.version,
        fields=sorted(checked) + (["body"] if body_markdown else []),
    )
    return item


def submit(ctx: Context, session: Session, *, item_id: int, actor: User) -> Item:
    item = get_item(session, item_id, lock=True)
    if not _may_edit(actor, item):
        raise NotAllowed(f"{actor.name} may not submit item {item_id} of {item.department}")
    if item.status != ItemStatus.DRAFT:
        raise NotAllowed(f"item {item_id} is {item.status}; only a draft can be submitted")
    check_channels_accept(ctx, session, item)
    _move(session, item, ItemStatus.SUBMITTED, actor.name, "submit")
    item.return_reason = None
    return item


#: the states an item can be recalled from: waiting for a review, nothing queued for any channel yet
RECALLABLE_STATES = {ItemStatus.SUBMITTED, ItemStatus.DEPT_APPROVED}


def recall(ctx: Context, session: Session, *, item_id: int, actor: User, reason: str | None = None) -> Item:
    """撤回: take a submitted item back to draft, out of the review queues, to change it and submit again.

    Not :func:`withdraw` (the final take-down): a recall is undone by submitting, and the item then
    needs both reviews again, a first-level approval it already had included.
    """
    item = get_item(session, item_id, lock=True)
    _pipeline_only(item, "recalled")
    if not _may_edit(actor, item):
        raise NotAllowed(f"{actor.name} may not recall item {item_id} of {item.department}")
    if item.status not in RECALLABLE_STATES:
        raise NotAllowed(
            f"item {item_id} is {item.status}; only a submitted item waiting for review can be "
            "recalled (a published one is taken down with withdraw)"
        )
    _move(session, item, ItemStatus.DRAFT, actor.name, "recall", reason=(reason or "").strip() or None)
    item.return_reason = None
    return item


def check_channels_accept(ctx: Context, session: Session, item: Item) -> None:
    """Ask every target channel whether it can take the item (review time, no network)."""
    post = build_post(ctx, session, item)
    problems: list[str] = []
    for name in item.channels:
        spec = ctx.channels.get(name)
        if spec is None:
            problems.append(f"{name}: channel is no longer configured")
            continue
        problems.extend(f"{name}: {p}" for p in spec.channel.validate(post))
    if problems:
        raise ContentNotAccepted("; ".join(problems), channel=",".join(item.channels), problems=problems)


def review(
    ctx: Context, session: Session, *, item_id: int, actor: User, approve: bool, reason: str | None = None
) -> Item:
    """First level: the department head of the item's department. Second: a confidentiality reviewer."""
    item = get_item(session, item_id, lock=True)
    if item.status == ItemStatus.SUBMITTED:
        level = 1
        if not (actor.role == Role.DEPARTMENT_HEAD and actor.department == item.department):
            raise NotAllowed(
                f"item {item_id} waits for the head of {item.department}; {actor.name} is "
                f"{actor.role}{' of ' + actor.department if actor.department else ''}"
            )
    elif item.status == ItemStatus.DEPT_APPROVED:
        level = 2
        if actor.role != Role.CONFIDENTIALITY_REVIEWER:
            raise NotAllowed(
                f"item {item_id} waits for the confidentiality review (保密审查); {actor.name} is {actor.role}"
            )
    else:
        raise NotAllowed(f"item {item_id} is {item.status}; there is nothing to review")
    if actor.id == item.author_id:
        raise NotAllowed(f"{actor.name} wrote item {item_id} and cannot review it")
    if _editor_of_current_version(session, item) == actor.name:
        raise NotAllowed(
            f"{actor.name} edited version {item.version} of item {item_id} and cannot review it; another person must"
        )
    if level == 2:
        first = _approval(session, item, 1)
        if first is not None and first.reviewer_id == actor.id:
            raise NotAllowed(f"{actor.name} already approved item {item_id} at the first level; a second person must")
    if not approve:
        if not (reason and reason.strip()):
            raise InvalidInput('a rejection needs a reason (--reason "...") so the author knows what to fix')
        session.add(
            Review(
                item_id=item.id,
                item_version=item.version,
                level=level,
                reviewer_id=actor.id,
                approved=False,
                reason=reason.strip(),
            )
        )
        item.return_reason = reason.strip()
        _move(session, item, ItemStatus.DRAFT, actor.name, f"reject level {level}", reason=reason.strip())
        return item
    if level == 2:
        check_channels_accept(ctx, session, item)
    session.add(
        Review(
            item_id=item.id, item_version=item.version, level=level, reviewer_id=actor.id, approved=True, reason=reason
        )
    )
    session.flush()
    if level == 1:
        _move(session, item, ItemStatus.DEPT_APPROVED, actor.name, "approve level 1", reason=reason)
        return item
    _move(session, item, ItemStatus.APPROVED, actor.name, "approve level 2 (保密审查)", reason=reason)
    if item.publish_at is not None:
        _queue_deliveries(ctx, session, item, SYSTEM)
    return item


def _approval(session: Session, item: Item, level: int) -> Review | None:
    return session.exec(
        select(Review)
        .where(Review.item_id == item.id, Review.item_version == item.version, Review.level == level)
        .order_by(col(Review.id).desc())
    ).first()


def _editor_of_current_version(session: Session, item: Item) -> str | None:
    """Who made the item's current version by editing it (None for the first version).

    Whoever rewrote the text is its author as much as the person who first wrote it, so they may
    not be one of its two reviewers either.
    """
    edits = session.exec(
        select(AuditLog)
        .where(AuditLog.entity == "item", AuditLog.entity_id == item.id, AuditLog.action == "edit")
        .order_by(col(AuditLog.id).desc())
    )
    for a in edits:
        if (a.detail or {}).get("version") == item.version:
            return a.actor
    return None


def is_cleared(session: Session, item: Item) -> bool:
    """Both approvals of the current version, by two different people who are not the author."""
    return _cleared(item.author_id, _approval(session, item, 1), _approval(session, item, 2))


def _cleared(author_id: int, first: Any, second: Any) -> bool:
    """The rule itself, over the newest level-1 and level-2 reviews of the item's current version."""
    return bool(
        first
        and second
        and first.approved
        and second.approved
        and first.reviewer_id != second.reviewer_id
        and author_id not in (first.reviewer_id, second.reviewer_id)
        and first.id < second.id
    )


def schedule(
    ctx: Context, session: Session, *, item_id: int, at: Any, actor: str = SYSTEM, user: User | None = None
) -> Item:
    """Set (or move) the publish time. An approved item is queued at once; a draft keeps the time."""
    item = get_item(session, item_id, lock=True)
    if user is not None and not (_may_edit(user, item) or user.role == Role.CONFIDENTIALITY_REVIEWER):
        raise NotAllowed(f"{user.name} may not schedule item {item_id}")
    if item.status in (ItemStatus.PUBLISHED, ItemStatus.WITHDRAWN):
        raise NotAllowed(f"item {item_id} is {item.status}; it cannot be rescheduled")
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
    if not is_cleared(session, item):  # belt and braces: never queue an item not cleared twice
        raise NotAllowed(f"item {item.id} lacks its two approvals")
    gone = [name for name in item.channels if name not in ctx.channels]
    if gone:
        raise InvalidInput(
            f"item {item.id} targets {', '.join(gone)}, no longer configured in settings.toml: "
            "edit the item's channels or configure them again"
        )
    existing = {d.channel: d for d in _deliveries(session, item.id)}
    for name in item.channels:
        spec = ctx.channels[name]
        due = spec.next_slot(item.publish_at, ctx.settings.zone)
        d = existing.get(name)
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
            continue
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
            continue
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
            continue
        _set_delivery(session, d, DeliveryStatus.PENDING, actor, f"queued {d.op}")
    _move(session, item, ItemStatus.SCHEDULED, actor, "schedule")
    # every delivery may have failed right here (live on channels that cannot update): no worker
    # will touch the item again, so its state must be settled now
    rollup(session, item, actor)
    wake_workers(session)


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
    _pipeline_only(item, "withdrawn")
    if user is not None and not (_may_edit(user, item) or user.role == Role.CONFIDENTIALITY_REVIEWER):
        raise NotAllowed(f"{user.name} may not withdraw item {item_id}")
    if item.status == ItemStatus.WITHDRAWN:
        raise NotAllowed(f"item {item_id} is already withdrawn")
    for d in _deliveries(session, item.id):
        _take_down(ctx, session, d, actor)
    _move(session, item, ItemStatus.WITHDRAWN, actor, "withdraw", reason=reason)
    wake_workers(session)
    return item


def _take_down(ctx: Context, session: Session, d: Delivery, actor: str, *, removed: bool = False) -> None:
    """What went out on ``d``'s channel is to come down; what has not is cancelled.

    ``removed``: the channel was taken off the item's list (the item stays); else the item is withdrawn.
    A claimed delivery may be inside the channel call: it gets a request instead, which the worker
    applies when it records the call's outcome (see :func:`settle_request`). The take-down is the
    only call a withdrawn item (or a removed channel) may still see.
    """
    why = f"{d.channel} was removed from the item's channels" if removed else "item withdrawn"
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
    d.attempts = 0
    d.due_at = utcnow()
    _set_delivery(session, d, DeliveryStatus.PENDING, actor, "retry requested")
    if item.status == ItemStatus.FAILED:
        _move(session, item, ItemStatus.SCHEDULED, actor, "retry")
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


# ------------------------------------------------------------------------------------- internals
def _pipeline_only(item: Item, what: str) -> None:
    """Imported and remote items (publisher.counting.ledger) only record what happened elsewhere."""
    if item.origin != "pipeline":
        raise NotAllowed(
            f"item {item.id} was recorded from elsewhere ({item.origin}), not published through "
            f"here: it cannot be {what} here; change it where it was published"
        )


def _deliveries(session: Session, item_id: int | None) -> list[Delivery]:
    return list(session.exec(select(Delivery).where(Delivery.item_id == item_id).order_by(Delivery.id)))


def _move(session: Session, item: Item, to: ItemStatus, actor: str, action: str, reason: str | None = None) -> None:
    before = item.status
    item.status = to
    item.updated_at = utcnow()
    audit(
        session,
        actor=actor,
        entity="item",
        entity_id=item.id,
        action=action,
        from_state=before,
        to_state=to,
        reason=reason,
        version=item.version,
    )


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


def rollup(session: Session, item: Item, actor: str = SYSTEM) -> None:
    """Derive the item's state from its deliveries once none is still moving."""
    # Two workers finishing the last two deliveries of one item at once would each see the other's
    # delivery still claimed (READ COMMITTED) and neither would roll up: serialise on the item row.
    session.flush()
    session.refresh(item, with_for_update=True)
    if item.status not in LIVE_STATES:
        return
    # a channel taken off the item's list no longer decides its state (its take-down is its own business)
    states = [d.status for d in _deliveries(session, item.id) if d.channel in item.channels]
    if not states or any(s in (DeliveryStatus.PENDING, DeliveryStatus.CLAIMED, DeliveryStatus.WAITING) for s in states):
        return
    to = ItemStatus.FAILED if DeliveryStatus.FAILED in states else ItemStatus.PUBLISHED
    if to != item.status:
        _move(session, item, to, actor, "rollup")


@functools.cache
def _rollup_statements(dialect: str) -> tuple[Any, Any, Any, Any]:
    """The statements of :func:`rollup_items`, built once per dialect (see :func:`_snapshot_statements`)."""
    it, dl, au = Item.__table__, Delivery.__table__, AuditLog.__table__  # type: ignore[attr-defined]
    return (
        sa.select(it.c.id, it.c.status, it.c.version, it.c.channels)
        .where(one_of(dialect, it.c.id, "ids"), it.c.status.in_([s.value for s in LIVE_STATES]))
        .order_by(it.c.id)
        .with_for_update(),
        sa.select(dl.c.item_id, dl.c.channel, dl.c.status).where(one_of(dialect, dl.c.item_id, "ids")),
        sa.update(it).where(it.c.id == sa.bindparam("b_id")),
        sa.insert(au),
    )


def rollup_items(conn: Connection, item_ids: Iterable[int], actor: str = SYSTEM) -> None:
    """:func:`rollup` for many items in one go, in Core statements (the dispatcher's batched record).

    Item rows are locked first, in id order: two workers finishing the last two deliveries of one
    item then see each other's outcome (READ COMMITTED re-reads after the lock wait), so exactly one
    of them rolls the item up; on SQLite the write lock already serialises them.
    """
    q_items, q_states, u_item, i_audit = _rollup_statements(conn.dialect.name)
    ids = sorted(set(item_ids))
    items = records(conn.execute(q_items, {"ids": ids}))
    if not items:
        return
    states: dict[int, list[str]] = {i.id: [] for i in items}
    targets = {i.id: set(i.channels or ()) for i in items}
    for item_id, channel, status in conn.execute(q_states, {"ids": list(states)}):
        if channel in targets[item_id]:  # as in rollup: a removed channel no longer counts
            states[item_id].append(status)
    moving = {DeliveryStatus.PENDING.value, DeliveryStatus.CLAIMED.value, DeliveryStatus.WAITING.value}
    now = utcnow()
    moves, audits = [], []
    for i in items:
        got = states[i.id]
        if not got or moving.intersection(got):
            continue
        to = ItemStatus.FAILED if DeliveryStatus.FAILED.value in got else ItemStatus.PUBLISHED
        if to.value == i.status:
            continue
        moves.append({"b_id": i.id, "status": to.value, "updated_at": now})
        audits.append(
            dict(
                at=now,
                actor=actor,
                entity="item",
                entity_id=i.id,
                action="rollup",
                from_state=i.status,
                to_state=to.value,
                reason=None,
                detail={"version": i.version},
            )
        )
    if moves:
        _driver_many(conn, "item-rollup", u_item, ("status", "updated_at")).execute(conn, moves)
        _driver_many(conn, "audit", i_audit, AUDIT_KEYS).execute(conn, audits)


#: the columns of an audit row written by the batched paths
AUDIT_KEYS = ("at", "actor", "entity", "entity_id", "action", "from_state", "to_state", "reason", "detail")
_DRIVER_MANY: dict[tuple[str, str, str], DriverMany] = {}


def _driver_many(conn: Connection, name: str, statement: Any, keys: Iterable[str]) -> DriverMany:
    """One compiled :class:`DriverMany` per dialect and purpose."""
    key = (conn.dialect.name, conn.dialect.driver, name)
    many = _DRIVER_MANY.get(key)
    if many is None:
        many = _DRIVER_MANY[key] = DriverMany(conn.dialect, statement, keys)
    return many


def build_post(ctx: Context, session: Session, item: Item) -> Post:
    """The frozen snapshot a channel receives."""
    assets = session.exec(select(Asset).where(Asset.item_id == item.id).order_by(Asset.id)).all()
    author = session.get(User, item.author_id)
    return _post(ctx, item, assets, (author.display_name or author.name) if author else "")


def _post(ctx: Context, item: Any, assets: Iterable[Any], author: str) -> Post:
    return Post(
        item_id=item.id,
        title=item.title,
        body_markdown=item.body_markdown,
        body_html=item.body_html,
        summary=item.summary,
        category=item.category,
        department=item.department,
        author=author,
        publish_at=item.publish_at or item.updated_at,
        updated_at=item.updated_at,
        checklist_item=item.checklist_item,
        checklist_name=checklist_name(item.checklist_item),
        assets=tuple(
            PostAsset(
                sha256=a.sha256,
                path=Path(content.media_path(ctx.settings.media_dir, a.sha256)),
                filename=a.filename,
                content_type=a.content_type,
                role=a.role,
                width=a.width,
                height=a.height,
            )
            for a in assets
        ),
        channels=tuple(item.channels),
        site_url=ctx.settings.site_base_url + site_page_path(item.id),
        version=item.version,
    )


@dataclass(frozen=True)
class PostSnapshot:
    """An item as the dispatcher saw it: its post, whether it is cleared, and what dates them."""

    version: int
    publish_at: Any
    updated_at: Any
    post: Post
    cleared: bool
    withdrawn: bool = False

    def post_for(self, op: str, channel: str) -> Post | None:
        """The post if ``op`` may go out on ``channel`` now, else None (the dispatcher then refuses).

        A take-down always may. Anything else needs both approvals of the current version, an item
        not withdrawn, and a channel still on the item's list: once a withdrawal (or the removal of
        the channel) is recorded, the take-down is the only call its deliveries may still make.
        """
        if op == DeliveryOp.WITHDRAW:
            return self.post
        ok = self.cleared and not self.withdrawn and channel in self.post.channels
        return self.post if ok else None


@functools.cache
def _snapshot_statements(dialect: str) -> tuple[Any, Any, Any, Any]:
    """The four statements of :func:`snapshot_posts`, built once per dialect, each list bound as one
    value (:func:`publisher.db.one_of`): building a statement, or expanding an ``in_`` list, cost more
    than running it on the dispatcher's hot path."""
    it, rv, at, us = (
        Item.__table__,
        Review.__table__,
        Asset.__table__,  # type: ignore[attr-defined]
        User.__table__,
    )  # type: ignore[attr-defined]
    return (
        sa.select(
            it.c.id,
            it.c.title,
            it.c.body_markdown,
            it.c.body_html,
            it.c.summary,
            it.c.category,
            it.c.department,
            it.c.author_id,
            it.c.publish_at,
            it.c.updated_at,
            it.c.checklist_item,
            it.c.channels,
            it.c.version,
            it.c.status,
        ).where(one_of(dialect, it.c.id, "ids")),
        sa.select(rv.c.id, rv.c.item_id, rv.c.item_version, rv.c.level, rv.c.reviewer_id, rv.c.approved)
        .where(one_of(dialect, rv.c.item_id, "ids"))
        .order_by(rv.c.id),
        sa.select(at).where(one_of(dialect, at.c.item_id, "ids")).order_by(at.c.id),
        sa.select(us.c.id, us.c.name, us.c.display_name).where(one_of(dialect, us.c.id, "ids")),
    )


def snapshot_posts(ctx: Context, conn: Connection, item_ids: Iterable[int]) -> dict[int, PostSnapshot]:
    """:func:`build_post` and :func:`is_cleared` for many items in four queries (the dispatcher's batch).

    Same rule as :func:`is_cleared` (through :func:`_cleared`), read with Core statements so a claim of
    a hundred deliveries costs four round trips instead of five hundred ORM loads.
    """
    ids = sorted(set(item_ids))
    if not ids:
        return {}
    q_items, q_reviews, q_assets, q_users = _snapshot_statements(conn.dialect.name)
    items = records(conn.execute(q_items, {"ids": ids}))
    newest: dict[tuple[int, int, int], Any] = {}
    for r in records(conn.execute(q_reviews, {"ids": ids})):
        newest[(r.item_id, r.item_version, r.level)] = r  # ascending ids: the newest wins
    assets: dict[int, list[Any]] = {i: [] for i in ids}
    for a in records(conn.execute(q_assets, {"ids": ids})):
        assets[a.item_id].append(a)
    authors = {
        u.id: (u.display_name or u.name) for u in conn.execute(q_users, {"ids": list({i.author_id for i in items})})
    }
    out = {}
    for i in items:
        ok = _cleared(i.author_id, newest.get((i.id, i.version, 1)), newest.get((i.id, i.version, 2)))
        out[i.id] = PostSnapshot(
            version=i.version,
            publish_at=i.publish_at,
            updated_at=i.updated_at,
            post=_post(ctx, i, assets[i.id], authors.get(i.author_id, "")),
            cleared=ok,
            withdrawn=i.status == ItemStatus.WITHDRAWN,
        )
    return out


def settle_request(
    ctx: Context,
    conn: Connection,
    *,
    requested: str,
    request_lease: str | None,
    worker: str,
    delivery_id: int,
    op: str,
    channel: str,
    item_id: int,
    sent_version: int | None,
    outcome: str,
    to: DeliveryStatus,
    values: dict[str, Any],
) -> tuple[DeliveryStatus, str]:
    """Apply a request left on a claimed delivery (:func:`_request`) to the outcome its worker is recording.

    Called by the dispatcher's record, inside its transaction, with the delivery row locked and
    ``values`` the columns the outcome alone would write (changed in place). Returns the state the
    delivery ends in and the reason for its audit row.

    What the call did decides: a publish that went out (or an update: the copy was already live) is
    taken down by a withdraw delivery due now; one that did not go out ends cancelled without a
    call; one whose fate is unknown (ambiguous, still in progress on the channel, or made by a worker
    whose lease ran out before this one took over) fails with the reason, for a person to check.
    """
    values["requested"] = None
    values["request_lease"] = None
    spec = ctx.channels.get(channel)
    # publish is only owed where the item is not live, update only where it is; a take-down that
    # succeeded leaves nothing live
    live = (to == DeliveryStatus.DONE) != (op == DeliveryOp.WITHDRAW) or op == DeliveryOp.UPDATE
    lease_lost = request_lease is not None and request_lease != worker  # the first holder's call is unrecorded
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

    if requested == DeliveryRequest.WITHDRAW:
        if live:
            if spec is None or not spec.channel.supports_withdraw:
                return owe(DeliveryOp.WITHDRAW, DeliveryStatus.FAILED, now, by_hand(channel)), (
                    f"withdrawal requested while it was being sent, and it went out: {by_hand(channel)}"
                )
            return owe(DeliveryOp.WITHDRAW, DeliveryStatus.PENDING, now), (
                "withdrawal requested while it was being sent, and it went out: queued withdraw"
            )
        if unknown or _maybe_out(conn, delivery_id):
            why = unknown_fate(
                channel,
                f"withdrawal requested while it was being sent ({outcome}{', lease lost' if lease_lost else ''})",
            )
            return owe(DeliveryOp.WITHDRAW, DeliveryStatus.FAILED, now, why), why
        values["status"] = DeliveryStatus.CANCELLED.value
        if unsent:
            return DeliveryStatus.CANCELLED, "withdrawal requested before it was sent: cancelled"
        return DeliveryStatus.CANCELLED, "withdrawal requested while it was being sent; it did not go out: cancelled"
    if requested == DeliveryRequest.CANCEL:
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
    row = conn.execute(sa.select(it.c.version, it.c.publish_at).where(it.c.id == item_id)).one()
    values["item_version"] = row.version
    if op != DeliveryOp.WITHDRAW and sent_version == row.version:
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
    was = conn.execute(sa.select(dl.c.published_at, dl.c.withdrawn_at, dl.c.state).where(dl.c.id == delivery_id)).one()
    withdrawn_at = values.get("withdrawn_at", was.withdrawn_at)
    if was.published_at is not None and withdrawn_at is not None:  # a put-back: a new publication
        values["state"] = _after_take_down(values.get("state") or was.state or {}, withdrawn_at)
    return owe(DeliveryOp.PUBLISH, DeliveryStatus.PENDING, due), f"queued publish of version {row.version}"
