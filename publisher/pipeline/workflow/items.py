"""Users, departments and items: writing an item, changing it, submitting it for review and
recalling it from review."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlmodel import Session, select

from publisher.checklist import checklist
from publisher.errors import InvalidInput, NotAllowed, NotFound
from publisher.models import (
    Asset,
    DeliveryOp,
    DeliveryRequest,
    DeliveryStatus,
    Department,
    Item,
    ItemStatus,
    ItemVersion,
    Role,
    User,
)
from publisher.pipeline import content
from publisher.pipeline.workflow.audit import SYSTEM, audit
from publisher.pipeline.workflow.catalogue import apply_catalogue, check_catalogue_fields
from publisher.pipeline.workflow.context import Context
from publisher.pipeline.workflow.deliveries import _future_time, _put_back, _set_delivery, _take_down
from publisher.pipeline.workflow.display import apply_display, check_display_fields, plan
from publisher.pipeline.workflow.inflight import _drop_request, _request
from publisher.pipeline.workflow.posts import build_post, check_channels_accept
from publisher.pipeline.workflow.privacy import record_findings
from publisher.pipeline.workflow.states import EDIT, RECALL, SUBMIT, _deliveries, get_item, transition
from publisher.pipeline.workflow.wording import check as check_wording
from publisher.pipeline.workflow.wording import refuse_problems as refuse_wording


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
    out.update(check_display_fields(fields))
    return out


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
    catalogue = check_catalogue_fields(ctx, session, fields)
    if author.role != Role.ADMIN and checked["department"] != author.department:
        raise NotAllowed(f"{author.name} writes for {author.department}, not {checked['department']}")
    if len(draft.body_markdown.encode()) > ctx.settings.review.max_body_bytes:
        raise InvalidInput("the body is larger than review.max_body_bytes")
    overrides = check_wording(
        fields.get("overrides"), channels=checked["channels"], max_body_bytes=ctx.settings.review.max_body_bytes
    )
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
        overrides=overrides,
    )
    apply_display(ctx, session, item, checked)
    session.add(item)
    session.flush()
    apply_catalogue(ctx, session, item, catalogue)
    for a in draft.assets:
        session.add(Asset(item_id=item.id, **a.__dict__))
    session.flush()
    if item.overrides:  # judged by each channel at save time, on the post it would receive
        refuse_wording(build_post(ctx, session, item), ctx.channels, item.overrides)
    _record_version(session, item, author.name)
    session.flush()
    found = record_findings(ctx, session, item)
    audit(
        session,
        actor=author.name,
        entity="item",
        entity_id=item.id,
        action="create",
        to_state=ItemStatus.DRAFT,
        title=item.title,
        privacy_findings=len(found),
    )
    return item


def _record_version(session: Session, item: Item, actor: str) -> None:
    """Keep each version's title, body and per-channel wording, so a reviewer sees what changed since
    an approval."""
    session.add(
        ItemVersion(
            item_id=item.id,
            version=item.version,
            title=item.title,
            body_markdown=item.body_markdown,
            overrides=dict(item.overrides or {}),
            actor=actor,
        )
    )


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
    return apply_edit(
        ctx, session, item, actor=actor, who=actor, changes=changes, body_markdown=body_markdown, new_assets=new_assets
    )


def apply_edit(
    ctx: Context,
    session: Session,
    item: Item,
    *,
    actor: User,
    who: User | None,
    changes: Mapping[str, Any],
    body_markdown: str | None = None,
    new_assets: Iterable[content.StoredAsset] = (),
    drop_assets: Iterable[int] = (),
    action_detail: Mapping[str, Any] | None = None,
) -> Item:
    """:func:`edit_item` on an item already locked. ``who``: the person the edit row's rule of who may
    edit is checked against (None: the caller has checked, as masking does for the 保密审查 reviewer);
    ``drop_assets``: ids of the item's assets this version no longer has (masking replaces an
    attachment with its cleaned copy). The new version is checked for privacy findings."""
    with transition(session, item, EDIT, actor.name, user=who) as move:
        checked = _check_fields(ctx, session, changes)
        catalogue = check_catalogue_fields(ctx, session, changes, own_id=item.id)
        if actor.role != Role.ADMIN and checked.get("department", actor.department) != actor.department:
            raise NotAllowed(f"{actor.name} cannot move an item to another department")
        for k, v in checked.items():
            if not k.startswith("display_"):
                setattr(item, k, v)
        apply_display(ctx, session, item, checked)
        apply_catalogue(ctx, session, item, catalogue)
        if body_markdown is not None:
            item.body_markdown = body_markdown
            item.body_html = content.render_markdown(body_markdown)
        for asset_id in drop_assets:
            old = session.get(Asset, asset_id)
            if old is not None and old.item_id == item.id:
                session.delete(old)
        new_assets = list(new_assets)
        if any(a.role == "cover" for a in new_assets):
            # an item has one cover: a new one (with its alt text) replaces the old
            for old in session.exec(select(Asset).where(Asset.item_id == item.id, Asset.role == "cover")).all():
                session.delete(old)
            session.flush()
        for a in new_assets:
            session.add(Asset(item_id=item.id, **a.__dict__))
        before = item.overrides or {}
        if "overrides" in changes:
            item.overrides = check_wording(
                changes["overrides"], channels=item.channels, max_body_bytes=ctx.settings.review.max_body_bytes
            )
        else:  # the wording of a channel taken off the list goes with it
            item.overrides = {k: v for k, v in before.items() if k in item.channels}
        if item.overrides:  # judged again: the item's own fields the wording leaves may have changed
            session.flush()
            refuse_wording(build_post(ctx, session, item), ctx.channels, item.overrides)
        item.version += 1
        deliveries = _deliveries(session, item.id)
        # a channel taken off the list: take the copy there down (or say it must be, by hand); cancel the rest
        for d in deliveries:
            if d.channel not in item.channels:
                _take_down(ctx, session, d, actor.name, removed=True)
            else:
                _put_back(session, d, actor.name)
        if move.step.to is not None:  # back to the first review
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
        move.detail["fields"] = (
            sorted({*checked, *catalogue})
            + (["body"] if body_markdown else [])
            + (["overrides"] if item.overrides != before else [])
        )
        session.flush()
        move.detail["privacy_findings"] = len(record_findings(ctx, session, item))
        move.detail.update(action_detail or {})
    return item


def submit(ctx: Context, session: Session, *, item_id: int, actor: User) -> Item:
    item = get_item(session, item_id, lock=True)
    with transition(session, item, SUBMIT, actor.name, user=actor):
        check_channels_accept(ctx, session, item, alt_text=True)
        plan(ctx, session, item)  # the publish time may have moved into a year the calendar does not know
        item.return_reason = None
    return item


def recall(ctx: Context, session: Session, *, item_id: int, actor: User, reason: str | None = None) -> Item:
    """撤回: take a submitted item back to draft, out of the review queues, to change it and submit again.

    Not :func:`~publisher.pipeline.workflow.deliveries.withdraw` (the final take-down): a recall is
    undone by submitting, and the item then needs both reviews again, a first-level approval it
    already had included.
    """
    item = get_item(session, item_id, lock=True)
    with transition(session, item, RECALL, actor.name, user=actor, reason=(reason or "").strip() or None):
        item.return_reason = None
    return item
