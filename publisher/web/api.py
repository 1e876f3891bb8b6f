"""The JSON API (/api, documented at /api/docs): the same service calls and permissions as the pages.

Authenticate with ``Authorization: Bearer <token>`` (create one on /tokens) or a browser session
plus its ``X-CSRF-Token`` header. ``POST /api/items`` honours an ``Idempotency-Key`` header: a
retried request with the same key returns the item the first one created instead of a second item.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlmodel import col, select

from publisher.checklist import checklist_name
from publisher.counting import periods, stats
from publisher.errors import NotAllowed
from publisher.models import Delivery, DeliveryAttempt, Item, Role, User, utcnow
from publisher.pipeline import workflow
from publisher.pipeline.workflow import wording
from publisher.web import compose
from publisher.web.common import MAX_ID, can_manage, viewer_zone, visible_delivery, visible_item
from publisher.web.privacy import privacy_json
from publisher.web.security import EVERYONE, REVIEWERS, STAFF, WRITERS, logged_in, need


class Message(BaseModel):
    detail: str


#: what any route may answer besides its own result (the 422 is FastAPI's, documented per route)
ANSWERS: dict[int | str, dict[str, Any]] = {
    400: {"model": Message, "description": "a body that could not be read (not UTF-8, say)"},
    401: {"model": Message, "description": "no token or session, or a revoked or unknown token"},
    403: {"model": Message, "description": "this role may not use the route, or the item is not this caller's"},
    404: {"model": Message, "description": "no such item or delivery (or one the caller may not see)"},
    415: {"model": Message, "description": "a body that is not JSON"},
}
router = APIRouter(prefix="/api", tags=["api"], responses=ANSWERS, dependencies=[Depends(logged_in)])
#: ids in URLs: a row id is a positive PostgreSQL integer
ItemId = Annotated[int, Path(ge=1, le=MAX_ID)]
DeliveryId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _no_nul(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("a NUL character (\\u0000) is not accepted in any text")
    if isinstance(value, list):
        for v in value:
            _no_nul(v)
    return value


class Body(BaseModel):
    """Every API body: no text holds a NUL (PostgreSQL's text cannot; SQLite's would, so both refuse it)."""

    @field_validator("*", mode="after")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return _no_nul(value)


class WordingIn(Body):
    """One channel's own wording (per-channel overrides, docs/channels.md); a missing or empty field is the item's."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, max_length=500)
    summary: str | None = Field(default=None, description="WeChat's digest (摘要), or what the channel shows as one")
    body: str | None = Field(default=None, description="Markdown; images as asset://<sha256>")
    cover: str | None = Field(default=None, description="an uploaded image, asset://<sha256> (POST /upload)")
    cover_alt: str | None = Field(
        default=None,
        max_length=500,
        description="what the channel's cover shows (替代文本), required at submit with a cover; only with a cover",
    )


_WORDING = (
    "per-channel wording: {channel: {title, summary, body, cover, cover_alt}}, judged by each channel at save time"
)


class ItemIn(Body):
    title: str = Field(max_length=500)
    body_markdown: str
    category: str
    channels: list[str]
    department: str | None = None
    summary: str | None = None
    checklist_item: int | None = Field(default=None, ge=1, le=50)
    publish_at: datetime | None = Field(default=None, description="ISO 8601 with a zone; omit to schedule later")
    display_until: datetime | None = Field(
        default=None, description="公示期: the end, ISO 8601 with a zone (not with display_working_days)"
    )
    display_working_days: int | None = Field(
        default=None, ge=1, le=60, description="公示期: Chinese working days from going live (not with display_until)"
    )
    #: the catalogue (docs/catalogue.md), checked by the same service functions as the CLI's front matter
    doc_number: str | None = Field(default=None, max_length=100, description="发文字号, e.g. 齐高师专发〔2022〕12号")
    written_on: str | None = Field(default=None, description="成文日期, YYYY-MM-DD")
    topic: str | None = Field(default=None, description="主题分类: one of [catalogue] topics")
    disclosure_mode: str | None = Field(default=None, description="公开方式: 主动公开 or 依申请公开")
    disclosure_scope: str | None = Field(default=None, max_length=200, description="公开范围")
    validity: str | None = Field(default=None, description="有效性 of a rule: 现行有效, 已修订 or 已废止")
    replaced_by: int | None = Field(default=None, ge=1, description="the item that replaced this rule")
    interprets: list[int] | None = Field(default=None, description="items this 政策解读 explains")
    revises: list[int] | None = Field(default=None, description="items this one revises")
    awards: list[int] | None = Field(default=None, description="the 招标公告 this 中标公告 awards")
    overrides: dict[str, WordingIn] | None = Field(default=None, description=_WORDING)


class ItemEdit(Body):
    title: str | None = Field(default=None, max_length=500)
    body_markdown: str | None = None
    category: str | None = None
    channels: list[str] | None = None
    summary: str | None = None
    checklist_item: int | None = Field(default=None, ge=1, le=50)
    #: either replaces the other (publisher.pipeline.workflow.display)
    display_until: datetime | None = None
    display_working_days: int | None = Field(default=None, ge=1, le=60)
    #: the catalogue; "" (or [] for a relation) clears a field
    doc_number: str | None = Field(default=None, max_length=100, description="发文字号, e.g. 齐高师专发〔2022〕12号")
    written_on: str | None = Field(default=None, description="成文日期, YYYY-MM-DD")
    topic: str | None = Field(default=None, description="主题分类: one of [catalogue] topics")
    disclosure_mode: str | None = Field(default=None, description="公开方式: 主动公开 or 依申请公开")
    disclosure_scope: str | None = Field(default=None, max_length=200, description="公开范围")
    validity: str | None = Field(default=None, description="有效性 of a rule: 现行有效, 已修订 or 已废止")
    replaced_by: int | None = Field(default=None, ge=1, description="the item that replaced this rule")
    interprets: list[int] | None = Field(default=None, description="items this 政策解读 explains")
    revises: list[int] | None = Field(default=None, description="items this one revises")
    awards: list[int] | None = Field(default=None, description="the 招标公告 this 中标公告 awards")
    overrides: dict[str, WordingIn] | None = Field(
        default=None, description=_WORDING + "; replaces the item's whole wording ({} removes it)"
    )


class ReviewIn(Body):
    approve: bool
    reason: str | None = None


class ScheduleIn(Body):
    at: datetime | None = Field(default=None, description="ISO 8601 with a zone; omit for each channel's next slot")


class WithdrawIn(Body):
    reason: str | None = None


class ClearIn(Body):
    reason: str | None = Field(
        default=None,
        max_length=2000,
        description="why it may be published as it is (required; it must not hold the number), "
        "e.g. 联系人手机号，本人同意公开",
    )


class FindingOut(BaseModel):
    """One finding of the privacy check (隐私/保密检查) on one version, and its decision."""

    no: int = Field(description="its number within the version, as clearing names it")
    kind: str = Field(description="id_card, mobile, bank_card, classification_mark, sensitive_word, ...")
    where: str = Field(description="body:LINE, title, summary, or the attachment's file name and place")
    masked: str = Field(description="the value masked (138****5678); never the raw number")
    rule: str
    decision: str | None = Field(description="cleared, masked, or null (unresolved)")
    reason: str | None
    decided_by: str | None
    decided_at: datetime | None


class PrivacyOut(BaseModel):
    item_id: int
    version: int
    checked: bool = Field(description="false for a version stored before the check existed (recheck it)")
    findings: list[FindingOut]


class MaskOut(BaseModel):
    item: dict[str, Any] = Field(description="the item at its new version (as GET /api/items/{id})")
    diff: str = Field(description="the body's unified diff; removed numbers read [mobile], [id_card], [bank_card]")
    cleaned: list[str] = Field(description="attachments replaced by cleaned copies")
    masked_findings: int = Field(description="findings of the version before that the new version masked")
    privacy: PrivacyOut = Field(description="the new version's findings, checked afresh")


def _item(item: Item, session: Any = None) -> dict[str, Any]:
    """The item's JSON; with a session, ``privacy_unresolved``: its current version's undecided findings."""
    out = _item_fields(item)
    if session is not None:
        out["privacy_unresolved"] = workflow.unresolved_counts(session, [item]).get(item.id, 0)  # type: ignore[arg-type]
        out.update(workflow.catalogue_of(session, item))
        out["related"] = [
            {"label": r.label, "item_id": r.item_id, "title": r.title, "status": r.status}
            for r in workflow.related_of(session, item.id)  # type: ignore[arg-type]
        ]
    return out


def _item_fields(item: Item) -> dict[str, Any]:
    return {
        "id": item.id,
        "title": item.title,
        "status": item.status,
        "version": item.version,
        "category": item.category,
        "department": item.department,
        "checklist_item": item.checklist_item,
        "checklist_name": checklist_name(item.checklist_item),
        "channels": item.channels,
        "summary": item.summary,
        "body_markdown": item.body_markdown,
        "publish_at": item.publish_at,
        "updated_at": item.updated_at,
        "return_reason": item.return_reason,
        "display_until": item.display_until,
        "display_working_days": item.display_working_days,
        "display_ends_at": item.display_ends_at,
        "display_ended_at": item.display_ended_at,
        "index_no": item.index_no,
        "doc_number": item.doc_number,
        "written_on": item.written_on,
        "topic": item.topic,
        "disclosure_mode": item.disclosure_mode,
        "disclosure_scope": item.disclosure_scope,
        "validity": item.validity,
        "replaced_by": item.replaced_by,
        "overrides": wording.public(item.overrides),
    }


def _delivery(d: Delivery, attempts: list[DeliveryAttempt]) -> dict[str, Any]:
    return {
        "id": d.id,
        "item_id": d.item_id,
        "channel": d.channel,
        "op": d.op,
        "status": d.status,
        "due_at": d.due_at,
        "attempts": d.attempts,
        "url": d.url,
        "published_at": d.published_at,
        "last_error": d.last_error,
        "last_error_kind": d.last_error_kind,
        "requested": d.requested,
        "history": [
            {"number": a.number, "outcome": a.outcome, "message": a.message, "code": a.code, "at": a.finished_at}
            for a in attempts
        ],
    }


@router.get("/items", summary="List items (your department's, or all for reviewers and admins)")
def list_items(
    request: Request,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    topic: Annotated[str | None, Query(description="主题分类")] = None,
    validity: Annotated[str | None, Query(description="有效性: 现行有效, 已修订 or 已废止")] = None,
    index_no: Annotated[str | None, Query(description="索引号, exactly")] = None,
) -> list[dict]:  # type: ignore[type-arg]
    c = need(request, STAFF)
    with request.app.state.app.session() as s:
        q = select(Item).order_by(col(Item.id).desc()).limit(limit)
        if c.user.role in (Role.EDITOR, Role.DEPARTMENT_HEAD):
            q = q.where(Item.department == c.user.department)
        if status:
            q = q.where(Item.status == status)
        for column, value in ((Item.topic, topic), (Item.validity, validity), (Item.index_no, index_no)):
            if value is not None:
                q = q.where(column == value)
        items = list(s.exec(q))
        counts = workflow.unresolved_counts(s, items)
        return [{**_item_fields(i), "privacy_unresolved": counts.get(i.id, 0)} for i in items]  # type: ignore[arg-type]


@router.post(
    "/items",
    status_code=201,
    summary="Create a draft item",
    responses={200: {"description": "the item an earlier request with this Idempotency-Key created"}},
)
def create_item(
    request: Request,
    response: Response,
    body: ItemIn,
    idempotency_key: Annotated[str | None, Header(max_length=100)] = None,
) -> dict:  # type: ignore[type-arg]
    c = need(request, WRITERS, write=True)
    app = request.app.state.app
    fields = body.model_dump(exclude_none=True)
    with app.session() as s:
        draft = compose.draft_from_fields(app.ctx, fields, session=s, user=s.get(User, c.user.id))
    # keys are per user: one user's key can neither collide with nor reveal another user's item
    key = f"{c.user.id}:api:{idempotency_key}" if idempotency_key else None
    try:
        with app.session() as s:
            before = s.exec(select(Item.id).where(Item.idempotency_key == key)).first() if key else None
            item = workflow.create_item(app.ctx, s, author=s.get(User, c.user.id), draft=draft, idempotency_key=key)
            out = _item(item, s)
    except sa.exc.IntegrityError:
        if key is None:
            raise
        before = True  # the same key was used by a concurrent request that committed first
        with app.session() as s:
            out = _item(s.exec(select(Item).where(Item.idempotency_key == key)).one(), s)
    if before:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return out


@router.get("/items/{item_id}", summary="One item")
def get_item(request: Request, item_id: ItemId) -> dict:  # type: ignore[type-arg]
    c = need(request, STAFF)
    with request.app.state.app.session() as s:
        return _item(visible_item(s, c.user, item_id), s)


@router.patch("/items/{item_id}", summary="Edit an item (an edit after approval sends it back to review)")
def edit_item(request: Request, item_id: ItemId, body: ItemEdit) -> dict:  # type: ignore[type-arg]
    c = need(request, WRITERS, write=True)
    app = request.app.state.app
    changes = body.model_dump(exclude_none=True)
    text = changes.pop("body_markdown", None)
    with app.session() as s:
        me = s.get(User, c.user.id)
        visible_item(s, me, item_id)
        known = compose.known_assets(s, item_id)
        new_assets = compose.referenced_assets(app.ctx, text, known, session=s, user=me) if text else []
        if changes.get("overrides"):
            known |= {a.sha256 for a in new_assets}
            new_assets += compose.wording_assets(app.ctx, changes["overrides"], known, session=s, user=me)
        item = workflow.edit_item(
            app.ctx, s, item_id=item_id, actor=me, changes=changes, body_markdown=text, new_assets=new_assets
        )
        return _item(item, s)


@router.post("/items/{item_id}/submit", summary="Submit a draft for the first review")
def submit_item(request: Request, item_id: ItemId) -> dict:  # type: ignore[type-arg]
    c = need(request, WRITERS, write=True)
    app = request.app.state.app
    with app.session() as s:
        me = s.get(User, c.user.id)
        visible_item(s, me, item_id)
        return _item(workflow.submit(app.ctx, s, item_id=item_id, actor=me), s)


@router.post("/items/{item_id}/review", summary="Approve or reject at the level the item waits for")
def review_item(request: Request, item_id: ItemId, body: ReviewIn) -> dict:  # type: ignore[type-arg]
    c = need(request, REVIEWERS, write=True)
    app = request.app.state.app
    with app.session() as s:
        me = s.get(User, c.user.id)
        visible_item(s, me, item_id)
        item = workflow.review(app.ctx, s, item_id=item_id, actor=me, approve=body.approve, reason=body.reason)
        return _item(item, s)


@router.post("/items/{item_id}/schedule", summary="Set or move the publish time")
def schedule_item(request: Request, item_id: ItemId, body: ScheduleIn) -> dict:  # type: ignore[type-arg]
    c = need(request, STAFF, write=True)
    app = request.app.state.app
    with app.session() as s:
        me = s.get(User, c.user.id)
        visible_item(s, me, item_id)
        return _item(workflow.schedule(app.ctx, s, item_id=item_id, at=body.at or utcnow(), actor=me.name, user=me))


@router.post("/items/{item_id}/withdraw", summary="Take an item down from every channel")
def withdraw_item(request: Request, item_id: ItemId, body: WithdrawIn) -> dict:  # type: ignore[type-arg]
    c = need(request, STAFF, write=True)
    app = request.app.state.app
    with app.session() as s:
        me = s.get(User, c.user.id)
        visible_item(s, me, item_id)
        return _item(workflow.withdraw(app.ctx, s, item_id=item_id, actor=me.name, reason=body.reason, user=me))


@router.get(
    "/items/{item_id}/privacy",
    response_model=PrivacyOut,
    summary="The privacy check's findings on a version (default the current one), masked, with decisions",
)
def item_privacy(
    request: Request, item_id: ItemId, version: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None
) -> dict:  # type: ignore[type-arg]
    c = need(request, STAFF)
    with request.app.state.app.session() as s:
        return privacy_json(s, visible_item(s, c.user, item_id), version)


@router.post(
    "/items/{item_id}/privacy/{no}/clear",
    response_model=PrivacyOut,
    summary="Clear one finding of the current version with a reason (the confidentiality reviewer or an admin)",
)
def clear_finding(request: Request, item_id: ItemId, no: Annotated[int, Path(ge=1, le=MAX_ID)], body: ClearIn) -> dict:  # type: ignore[type-arg]
    c = need(request, STAFF, write=True)
    app = request.app.state.app
    with app.session() as s:
        me = s.get(User, c.user.id)
        visible_item(s, me, item_id)
        workflow.clear_finding(app.ctx, s, item_id=item_id, number=no, actor=me, reason=body.reason)
        return privacy_json(s, workflow.get_item(s, item_id))


@router.post(
    "/items/{item_id}/mask",
    response_model=MaskOut,
    summary="Mask ID, mobile and card numbers into a new version, reviewed again (as `publisher mask`)",
)
def mask_item(request: Request, item_id: ItemId) -> dict:  # type: ignore[type-arg]
    c = need(request, STAFF, write=True)
    app = request.app.state.app
    with app.session() as s:
        me = s.get(User, c.user.id)
        visible_item(s, me, item_id)
        done = workflow.mask_item(app.ctx, s, item_id=item_id, actor=me)
        return {
            "item": _item(done.item, s),
            "diff": done.diff,
            "cleaned": done.cleaned,
            "masked_findings": done.masked_findings,
            "privacy": privacy_json(s, done.item),
        }


@router.post(
    "/items/{item_id}/privacy/recheck",
    response_model=PrivacyOut,
    summary="Check a version stored before the privacy check existed (the 保密审查 approval waits for it)",
)
def recheck_item(request: Request, item_id: ItemId) -> dict:  # type: ignore[type-arg]
    c = need(request, STAFF, write=True)
    app = request.app.state.app
    with app.session() as s:
        me = s.get(User, c.user.id)
        visible_item(s, me, item_id)
        workflow.recheck(app.ctx, s, item_id=item_id, actor=me)
        return privacy_json(s, workflow.get_item(s, item_id))


@router.get("/items/{item_id}/deliveries", summary="Each channel's delivery, with every attempt")
def item_deliveries(request: Request, item_id: ItemId) -> list[dict]:  # type: ignore[type-arg]
    c = need(request, STAFF)
    with request.app.state.app.session() as s:
        visible_item(s, c.user, item_id)
        out = []
        for d in s.exec(select(Delivery).where(Delivery.item_id == item_id).order_by(Delivery.id)):
            attempts = list(
                s.exec(
                    select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == d.id).order_by(DeliveryAttempt.number)
                )
            )
            out.append(_delivery(d, attempts))
        return out


@router.post("/deliveries/{delivery_id}/retry", summary="Queue one failed channel again")
def retry(request: Request, delivery_id: DeliveryId) -> dict:  # type: ignore[type-arg]
    c = need(request, STAFF, write=True)
    app = request.app.state.app
    with app.session() as s:
        d, item = visible_delivery(s, c.user, delivery_id)
        if not can_manage(c.user, item):
            raise NotAllowed(f"{c.user.name} may not retry deliveries of item {item.id}")
        d = workflow.retry_delivery(app.ctx, s, delivery_id=delivery_id, actor=c.user.name)
        return _delivery(d, [])


@router.get("/stats", summary="Counts per channel × category × department × period (as `publisher stats`)")
def get_stats(
    request: Request,
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
    by: Annotated[str, Query(description="comma-separated: " + ", ".join(periods.DIMENSIONS))] = "channel",
) -> list[dict]:  # type: ignore[type-arg]
    need(request, EVERYONE)
    app = request.app.state.app
    tz = viewer_zone(request)
    s, e = periods.period(start, end, tz)
    q = stats.StatsQuery(start=s, end=e, by=tuple(b.strip() for b in by.split(",") if b.strip()), tz=tz)
    return stats.counts(app.engine, q)


@router.get("/me", summary="Who this token or session belongs to")
def me(request: Request) -> dict:  # type: ignore[type-arg]
    c = need(request, EVERYONE)
    return {"name": c.user.name, "role": c.user.role, "department": c.user.department}
