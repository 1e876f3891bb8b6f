"""The item list, the item page and what is done from it (submit, recall, review, schedule, withdraw,
retry), and the review queue."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlmodel import col, select

from publisher.accounts import Caller
from publisher.errors import InvalidInput, NotAllowed
from publisher.models import (
    AuditLog,
    Delivery,
    DeliveryAttempt,
    Item,
    ItemStatus,
    Review,
    Role,
    User,
    utcnow,
)
from publisher.pipeline import workflow
from publisher.web import compose
from publisher.web.common import (
    can_edit,
    can_manage,
    channel_labels,
    local_time,
    media_urls,
    render,
    viewer_zone,
    visible_delivery,
    visible_item,
)
from publisher.web.pages.shared import Csrf, app_of, go_back
from publisher.web.privacy import masked_html, masked_wording, privacy_view
from publisher.web.security import (
    ADMINS,
    REVIEWERS,
    STAFF,
    WRITERS,
    need,
)

router = APIRouter()


#: the item list shows the most recently changed; older ones are found by searching
ITEMS_SHOWN = 200


@router.get("/items", include_in_schema=False)
def items_list(
    request: Request, status: str | None = None, q: str = "", topic: str = "", validity: str = ""
) -> Response:
    c = need(request, STAFF)
    q = q.strip()[:200]
    with app_of(request).session() as s:
        query = select(Item).order_by(col(Item.updated_at).desc()).limit(ITEMS_SHOWN + 1)
        if c.user.role in (Role.EDITOR, Role.DEPARTMENT_HEAD):
            query = query.where(Item.department == c.user.department)
        if status:
            query = query.where(Item.status == status)
        if q:
            # words in the title, the 索引号 or 发文字号 (or part of them), or the item's number (#123 or 123)
            match = sa.or_(
                *(col(c).icontains(q, autoescape=True) for c in (Item.title, Item.index_no, Item.doc_number))
            )
            number = q.removeprefix("#")
            if number.isdigit() and len(number) < 10:
                match = sa.or_(match, Item.id == int(number))
            query = query.where(match)
        if topic:
            query = query.where(Item.topic == topic)
        if validity:
            query = query.where(Item.validity == validity)
        items = list(s.exec(query))
    return render(
        request,
        "items.html",
        c,
        items=items[:ITEMS_SHOWN],
        more=len(items) > ITEMS_SHOWN,
        shown=ITEMS_SHOWN,
        filter_status=status,
        query=q,
        topic=topic,
        validity=validity,
        topics=app_of(request).settings.catalogue.topics,
        statuses=list(ItemStatus),
        channel_labels=channel_labels(app_of(request)),
    )


#: the item page shows this many of the item's newest audit rows (`publisher item show` has them all)
AUDIT_SHOWN = 200


@router.get("/items/{item_id}", include_in_schema=False)
def item_page(request: Request, item_id: int) -> Response:
    return item_view(request, need(request, STAFF), item_id)


def item_view(request: Request, c: Caller, item_id: int, code: int = 200, **extra: Any) -> Response:
    """The item page; ``extra`` goes to the template (the privacy actions' result or refusal)."""
    app = app_of(request)
    with app.session() as s:
        item = visible_item(s, c.user, item_id)
        privacy = privacy_view(s, item, c.user)
        deliveries = list(s.exec(select(Delivery).where(Delivery.item_id == item_id).order_by(Delivery.id)))
        attempts = {
            d.id: list(
                s.exec(
                    select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == d.id).order_by(DeliveryAttempt.number)
                )
            )
            for d in deliveries
        }
        reviews = [
            (r, u.display_name or u.name)
            for r, u in s.exec(
                select(Review, User)
                .join(User, col(User.id) == Review.reviewer_id)
                .where(Review.item_id == item_id)
                .order_by(Review.id)
            )
        ]
        author = s.get(User, item.author_id)
        diff = compose.changes_since_approval(s, item)
        # a version records its editor's login name; people are shown by the name they go by, as in reviews
        stored = compose.versions_of(s, item_id)
        shown = {
            name: display or name
            for name, display in s.exec(
                select(User.name, User.display_name).where(col(User.name).in_({v.actor for v in stored}))
            )
        }
        versions = [(v, shown.get(v.actor, v.actor)) for v in stored]
        # the item's audit trail, as `publisher item show` prints it (the newest AUDIT_SHOWN rows)
        trail = list(
            s.exec(
                select(AuditLog)
                .where(AuditLog.entity == "item", AuditLog.entity_id == item_id)
                .order_by(col(AuditLog.id).desc())
                .limit(AUDIT_SHOWN)
            )
        )[::-1]
        level = {ItemStatus.SUBMITTED: 1, ItemStatus.DEPT_APPROVED: 2}.get(ItemStatus(item.status))
        # why the 保密审查 approval would be refused now (the privacy gate among the rules), said beside
        # the button: the workflow's own answer, asked before the reviewer clicks
        approve_refusal = workflow.approval_refusal(s, item, c.user) if level == 2 else None
        catalogue = workflow.catalogue_of(s, item)
        related = workflow.related_of(s, item_id)
    may_review = (level == 1 and c.user.role == Role.DEPARTMENT_HEAD and c.user.department == item.department) or (
        level == 2 and c.user.role == Role.CONFIDENTIALITY_REVIEWER
    )
    tz = viewer_zone(request)
    return render(
        request,
        "item.html",
        c,
        code,
        item=item,
        deliveries=deliveries,
        attempts=attempts,
        reviews=reviews,
        author=author,
        diff=diff,
        versions=versions,
        level=level,
        may_review=may_review and c.user.id != item.author_id,
        may_edit=can_edit(c.user, item) and item.status != ItemStatus.WITHDRAWN,
        may_manage=can_manage(c.user, item),
        body_html=media_urls(masked_html(item.body_html)),
        wording_lines=masked_wording(item.overrides),
        publish_local=(item.publish_at or utcnow() + timedelta(hours=1)).astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
        channel_labels=channel_labels(app),
        trail=trail,
        trail_more=len(trail) == AUDIT_SHOWN,
        privacy=privacy,
        approve_refusal=approve_refusal,
        display=workflow.display_of(app.ctx, item),
        catalogue=catalogue,
        related=related,
        **extra,
    )


def _item_action(request: Request, item_id: int, fn, roles=STAFF, csrf: str = "") -> Response:  # type: ignore[no-untyped-def]
    c = need(request, roles, write=True, csrf=csrf)
    app = app_of(request)
    with app.session() as s:
        me = s.get(User, c.user.id)
        visible_item(s, me, item_id)
        fn(app, s, me)
    return go_back(request, f"/items/{item_id}")


@router.post("/items/{item_id}/submit", include_in_schema=False)
def item_submit(request: Request, item_id: int, csrf_token: Csrf = "") -> Response:
    return _item_action(
        request, item_id, lambda a, s, me: workflow.submit(a.ctx, s, item_id=item_id, actor=me), WRITERS, csrf_token
    )


@router.post("/items/{item_id}/recall", include_in_schema=False)
def item_recall(request: Request, item_id: int, csrf_token: Csrf = "", reason: Annotated[str, Form()] = "") -> Response:
    return _item_action(
        request,
        item_id,
        lambda a, s, me: workflow.recall(a.ctx, s, item_id=item_id, actor=me, reason=reason or None),
        WRITERS,
        csrf_token,
    )


@router.post("/items/{item_id}/review", include_in_schema=False)
def item_review(
    request: Request,
    item_id: int,
    csrf_token: Csrf = "",
    decision: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    if decision not in ("approve", "reject"):
        need(request, REVIEWERS, write=True, csrf=csrf_token)
        raise InvalidInput("decision must be approve or reject")
    return _item_action(
        request,
        item_id,
        lambda a, s, me: workflow.review(
            a.ctx, s, item_id=item_id, actor=me, approve=decision == "approve", reason=reason or None
        ),
        REVIEWERS,
        csrf_token,
    )


@router.post("/items/{item_id}/schedule", include_in_schema=False)
def item_schedule(
    request: Request,
    item_id: int,
    csrf_token: Csrf = "",
    at: Annotated[str, Form()] = "",
    when: Annotated[str, Form()] = "at",
) -> Response:
    tz = viewer_zone(request)

    def fn(a, s, me):  # type: ignore[no-untyped-def]
        moment = utcnow() if when == "slot" else local_time(at, tz)
        workflow.schedule(a.ctx, s, item_id=item_id, at=moment, actor=me.name, user=me)

    return _item_action(request, item_id, fn, STAFF, csrf_token)


@router.post("/items/{item_id}/withdraw", include_in_schema=False)
def item_withdraw(
    request: Request, item_id: int, csrf_token: Csrf = "", reason: Annotated[str, Form()] = ""
) -> Response:
    return _item_action(
        request,
        item_id,
        lambda a, s, me: workflow.withdraw(a.ctx, s, item_id=item_id, actor=me.name, reason=reason or None, user=me),
        STAFF,
        csrf_token,
    )


@router.post("/deliveries/{delivery_id}/retry", include_in_schema=False)
def delivery_retry(request: Request, delivery_id: int, csrf_token: Csrf = "") -> Response:
    c = need(request, STAFF, write=True, csrf=csrf_token)
    app = app_of(request)
    with app.session() as s:
        d, item = visible_delivery(s, c.user, delivery_id)
        if not can_manage(c.user, item):
            raise NotAllowed(f"{c.user.name} may not retry deliveries of item {item.id}")
        workflow.retry_delivery(app.ctx, s, delivery_id=delivery_id, actor=c.user.name)
    return go_back(request, f"/items/{d.item_id}")


@router.get("/review", include_in_schema=False)
def review_queue(request: Request) -> Response:
    c = need(request, REVIEWERS | ADMINS)
    with app_of(request).session() as s:
        first = select(Item).where(Item.status == ItemStatus.SUBMITTED).order_by(Item.updated_at)
        if c.user.role == Role.DEPARTMENT_HEAD:
            first = first.where(Item.department == c.user.department)
        second = select(Item).where(Item.status == ItemStatus.DEPT_APPROVED).order_by(Item.updated_at)
        queues = []
        if c.user.role in (Role.DEPARTMENT_HEAD, Role.ADMIN):
            queues.append(("level1", list(s.exec(first.limit(500)))))
        if c.user.role in (Role.CONFIDENTIALITY_REVIEWER, Role.ADMIN):
            queues.append(("level2", list(s.exec(second.limit(500)))))
        edited = {i.id for _, items in queues for i in items if i.version > 1 and compose.changes_since_approval(s, i)}
        open_findings = workflow.unresolved_counts(s, [i for _, items in queues for i in items])
    return render(request, "review.html", c, queues=queues, edited=edited, open_findings=open_findings)
