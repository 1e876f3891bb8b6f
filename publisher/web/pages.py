"""The server-rendered pages. Thin: every change goes through publisher.pipeline.workflow / accounts."""

from __future__ import annotations

import re
import secrets
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import sqlalchemy as sa
from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from publisher import accounts
from publisher.checklist import checklist
from publisher.counting import dashboard, periods
from publisher.errors import InvalidInput, NotAllowed, NotFound, StorageFull
from publisher.models import (
    Asset,
    AuditLog,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Item,
    ItemStatus,
    Review,
    Role,
    User,
    utcnow,
)
from publisher.pipeline import content, workflow
from publisher.web import calendar_view, compose, svg
from publisher.web.common import (
    can_edit,
    can_manage,
    channel_labels,
    checklist_label,
    checklist_number,
    local_time,
    media_urls,
    render,
    translator,
    view_filter,
    viewer_zone,
    visible_delivery,
    visible_item,
)
from publisher.web.security import (
    ADMINS,
    EVERYONE,
    LOGIN_CSRF_COOKIE,
    REVIEWERS,
    SESSION_COOKIE,
    STAFF,
    WRITERS,
    client_address,
    cookie_args,
    need,
    optional_caller,
)

router = APIRouter()
Csrf = Annotated[str, Form()]


def _app(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.app


def _back(request: Request, default: str) -> RedirectResponse:
    nxt = request.query_params.get("next") or default
    if not nxt.startswith("/") or nxt.startswith("//") or "\\" in nxt:
        nxt = default
    return RedirectResponse(nxt, status_code=303)


# ------------------------------------------------------------------------------------------ log-in
@router.get("/login", include_in_schema=False)
def login_form(request: Request, error: str | None = None) -> Response:
    token = secrets.token_urlsafe(24)
    r = render(request, "login.html", None, login_csrf=token, error=error, next=request.query_params.get("next", ""))
    r.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, **cookie_args(request))
    return r


@router.post("/login", include_in_schema=False)
def login(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Csrf = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    import hmac

    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")

    def again(code: int, error: str) -> Response:
        # the form comes back with the user name as typed (never the password)
        return render(
            request, "login.html", None, code=code, login_csrf=cookie, error=error, next=next, username=username
        )

    if not cookie or not hmac.compare_digest(cookie.encode(), csrf_token.encode()):
        return again(403, "forbidden")
    app = _app(request)
    try:
        with app.session() as s:
            user = accounts.authenticate(
                s, name=username.strip(), password=password, address=client_address(request), web=app.settings.web
            )
            token = accounts.start_session(s, user, app.settings.web) if user else None
    except accounts.TooManyAttempts:
        return again(429, "throttled")
    if token is None:
        return again(401, "bad_login")
    if not next.startswith("/") or next.startswith("//"):
        next = "/"
    r = RedirectResponse(next, status_code=303)
    r.set_cookie(SESSION_COOKIE, token, max_age=int(app.settings.web.session_hours * 3600), **cookie_args(request))
    r.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return r


@router.post("/logout", include_in_schema=False)
def logout(request: Request, csrf_token: Csrf = "") -> Response:
    need(request, EVERYONE, write=True, csrf=csrf_token)
    with _app(request).session() as s:
        accounts.end_session(s, request.cookies.get(SESSION_COOKIE, ""))
    r = RedirectResponse("/login", status_code=303)
    r.delete_cookie(SESSION_COOKIE, path="/")
    return r


@router.get("/", include_in_schema=False)
def home(request: Request) -> Response:
    c = need(request, EVERYONE)
    role = c.user.role
    target = {Role.VIEWER: "/dashboard", Role.DEPARTMENT_HEAD: "/review", Role.CONFIDENTIALITY_REVIEWER: "/review"}.get(
        role, "/items"
    )
    return RedirectResponse(target, status_code=303)


# ------------------------------------------------------------------------------------------- items
#: the item list shows the most recently changed; older ones are found by searching
ITEMS_SHOWN = 200


@router.get("/items", include_in_schema=False)
def items_list(request: Request, status: str | None = None, q: str = "") -> Response:
    c = need(request, STAFF)
    q = q.strip()[:200]
    with _app(request).session() as s:
        query = select(Item).order_by(col(Item.updated_at).desc()).limit(ITEMS_SHOWN + 1)
        if c.user.role in (Role.EDITOR, Role.DEPARTMENT_HEAD):
            query = query.where(Item.department == c.user.department)
        if status:
            query = query.where(Item.status == status)
        if q:
            # words in the title, or the item's number (#123 or 123)
            match = col(Item.title).icontains(q, autoescape=True)
            number = q.removeprefix("#")
            if number.isdigit() and len(number) < 10:
                match = sa.or_(match, Item.id == int(number))
            query = query.where(match)
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
        statuses=list(ItemStatus),
        channel_labels=channel_labels(_app(request)),
    )


def _compose_ctx(request: Request, c: accounts.Caller, item: Item | None, values: dict) -> dict:  # type: ignore[type-arg]
    app = _app(request)
    with app.session() as s:
        depts = workflow.departments(s)
    t = translator(request)
    now = utcnow()
    return {
        "item": item,
        "v": values,
        "categories": app.settings.categories,
        "departments": depts if c.user.role == Role.ADMIN else [c.user.department],
        "checklist": checklist(),
        "channels": [(n, s) for n, s in app.channels.items() if s.enabled],
        "slots": {n: t.dt(s.next_slot(now, app.settings.zone)) for n, s in app.channels.items()},
        "idem": values.get("idempotency_key") or secrets.token_urlsafe(16),
    }


def _values_from_item(item: Item, tz) -> dict:  # type: ignore[no-untyped-def,type-arg]
    return {
        "title": item.title,
        "body_markdown": item.body_markdown,
        "summary": item.summary,
        "category": item.category,
        "department": item.department,
        "checklist_item": checklist_label(item.checklist_item),
        "channels": list(item.channels),
        "publish_at": item.publish_at.astimezone(tz).strftime("%Y-%m-%dT%H:%M") if item.publish_at else "",
        "when": "at" if item.publish_at else "none",
    }


@router.get("/items/new", include_in_schema=False)
def compose_form(request: Request) -> Response:
    c = need(request, WRITERS)
    values = {"department": c.user.department, "channels": [], "when": "none"}
    return render(request, "compose.html", c, error=None, **_compose_ctx(request, c, None, values))


async def _form_fields(request: Request) -> dict:  # type: ignore[type-arg]
    # starlette refuses a form field over 1 MB with a bare 400; the body may be review.max_body_bytes,
    # each byte of it up to three once URL-encoded (%E5): past that the save says so in the form's words
    limit = _app(request).settings.review.max_body_bytes
    form = await request.form(max_part_size=3 * limit + 64 * 1024)
    tz = viewer_zone(request)
    when = str(form.get("when") or "none")
    publish_at: datetime | None = None
    if when == "at" and form.get("publish_at"):
        publish_at = local_time(str(form["publish_at"]), tz)
    elif when == "slot":
        publish_at = utcnow()
    return {
        "title": str(form.get("title") or ""),
        "body_markdown": str(form.get("body_markdown") or "").replace("\r\n", "\n"),
        "summary": str(form.get("summary") or ""),
        "category": str(form.get("category") or ""),
        "department": str(form.get("department") or ""),
        "checklist_item_raw": str(form.get("checklist_item") or ""),
        "channels": [str(v) for v in form.getlist("channels")],
        "publish_at": publish_at,
        "publish_at_raw": str(form.get("publish_at") or ""),
        "when": when,
        "action": str(form.get("action") or "draft"),
        "csrf_token": str(form.get("csrf_token") or ""),
        "idempotency_key": str(form.get("idempotency_key") or "")[:100],
    }


def _fields_for_workflow(f: dict) -> dict:  # type: ignore[type-arg]
    out = {k: f[k] for k in ("summary", "category", "department", "channels")}
    out["checklist_item"] = checklist_number(f["checklist_item_raw"])
    if f["publish_at"] is not None:
        out["publish_at"] = f["publish_at"]
    return out


def _form_values(f: dict) -> dict:  # type: ignore[type-arg]
    try:  # shown again as the list offers it ("2 — name"), or as typed when it names no item
        shown = checklist_label(checklist_number(f["checklist_item_raw"])) or f["checklist_item_raw"]
    except InvalidInput:
        shown = f["checklist_item_raw"]
    return {**f, "checklist_item": shown, "publish_at": f["publish_at_raw"]}


#: the workflow's hints speak of an item file's front matter; on the form they name the form's field
_FRONT_MATTER_HINT = re.compile(r" \(add `(\w+):` to the front matter\)")
_FORM_FIELDS = {"category": "Category", "channels": "Target channels", "title": "Title", "department": "Department"}


def _form_error(request: Request, exc: InvalidInput) -> str:
    t = translator(request)
    if getattr(exc, "problems", None):
        return t.error(exc)
    return t.error(
        _FRONT_MATTER_HINT.sub(
            lambda m: f": choose one in the form's {_FORM_FIELDS.get(m.group(1), m.group(1))} field", str(exc)
        )
    )


@router.post("/items/new", include_in_schema=False)
async def compose_submit(request: Request) -> Response:
    f = await _form_fields(request)
    c = await run_in_threadpool(need, request, WRITERS, write=True, csrf=f["csrf_token"])
    app = _app(request)

    def work() -> int:
        fields = {**_fields_for_workflow(f), "title": f["title"], "body_markdown": f["body_markdown"]}
        key = f"{c.user.id}:form:{f['idempotency_key']}" if f["idempotency_key"] else None
        with app.session() as s:
            me = s.get(User, c.user.id)
            draft = compose.draft_from_fields(app.ctx, fields, session=s, user=me)
            item = workflow.create_item(app.ctx, s, author=me, draft=draft, idempotency_key=key)
            if f["action"] == "submit" and item.status == ItemStatus.DRAFT:
                workflow.submit(app.ctx, s, item_id=item.id, actor=me)
            return item.id  # type: ignore[return-value]

    try:
        item_id = await run_in_threadpool(work)
    except InvalidInput as exc:
        return render(
            request,
            "compose.html",
            c,
            code=422,
            error=_form_error(request, exc),
            **_compose_ctx(request, c, None, _form_values(f)),
        )
    return RedirectResponse(f"/items/{item_id}", status_code=303)


@router.get("/items/{item_id}/edit", include_in_schema=False)
def edit_form(request: Request, item_id: int) -> Response:
    c = need(request, WRITERS)
    with _app(request).session() as s:
        item = visible_item(s, c.user, item_id)
    if not can_edit(c.user, item):
        return render(request, "error.html", c, code=403, message="forbidden")
    return render(
        request,
        "compose.html",
        c,
        error=None,
        **_compose_ctx(request, c, item, _values_from_item(item, viewer_zone(request))),
    )


@router.post("/items/{item_id}/edit", include_in_schema=False)
async def edit_submit(request: Request, item_id: int) -> Response:
    f = await _form_fields(request)
    c = await run_in_threadpool(need, request, WRITERS, write=True, csrf=f["csrf_token"])
    app = _app(request)

    def work() -> None:
        with app.session() as s:
            me = s.get(User, c.user.id)
            item = visible_item(s, me, item_id)
            changes = {**_fields_for_workflow(f), "title": f["title"]}
            body = f["body_markdown"]
            compose.check_body_size(app.ctx, body)
            new_assets = compose.referenced_assets(app.ctx, body, compose.known_assets(s, item_id), session=s, user=me)
            body_changed = body != item.body_markdown
            workflow.edit_item(
                app.ctx,
                s,
                item_id=item_id,
                actor=me,
                changes=changes,
                body_markdown=body if body_changed else None,
                new_assets=new_assets,
            )
            if f["action"] == "submit" and item.status == ItemStatus.DRAFT:
                workflow.submit(app.ctx, s, item_id=item_id, actor=me)

    try:
        await run_in_threadpool(work)
    except InvalidInput as exc:
        with app.session() as s:
            item = workflow.get_item(s, item_id)
        return render(
            request,
            "compose.html",
            c,
            code=422,
            error=_form_error(request, exc),
            **_compose_ctx(request, c, item, _form_values(f)),
        )
    return RedirectResponse(f"/items/{item_id}", status_code=303)


@router.post("/preview", include_in_schema=False)
async def preview(request: Request) -> Response:
    f = await _form_fields(request)
    c = await run_in_threadpool(need, request, WRITERS, write=True, csrf=f["csrf_token"])
    app = _app(request)
    fields = {**f}
    try:
        fields["checklist_item"] = checklist_number(f["checklist_item_raw"])
    except InvalidInput:
        fields["checklist_item"] = None

    def usable() -> set[str]:
        with app.session() as s:
            return compose.usable_assets(app.ctx, s, s.get(User, c.user.id), f["body_markdown"])

    previews = await run_in_threadpool(
        compose.preview,
        app.ctx,
        fields,
        author=c.user.display_name or c.user.name,
        usable=await run_in_threadpool(usable),
    )
    for p in previews:
        p.html = media_urls(p.html)
    _, cut = compose.preview_part(f["body_markdown"])
    kb = len(f["body_markdown"].encode()) // 1000
    return render(
        request,
        "_preview.html",
        c,
        previews=previews,
        title=f["title"],
        body=f["body_markdown"],
        cut=cut,
        cut_kb=compose.PREVIEW_MAX_BYTES // 1000,
        body_kb=kb,
    )


@router.post("/upload", include_in_schema=False)
async def upload(
    request: Request, file: Annotated[UploadFile | None, File()] = None, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    c = await run_in_threadpool(need, request, WRITERS, write=True, csrf=csrf_token)
    app = _app(request)
    if file is None:
        raise InvalidInput("no file: send the image as the multipart field `file`")

    def chunks():  # type: ignore[no-untyped-def]
        while True:
            b = file.file.read(1 << 20)
            if not b:
                return
            yield b

    try:
        stored = await run_in_threadpool(compose.store_upload, app.ctx, chunks(), file.filename or "image")
        await run_in_threadpool(compose.record_upload, app.ctx, stored.sha256, c.user)
    except compose.UploadTooLarge as exc:
        return JSONResponse({"detail": str(exc)}, status_code=413)
    except compose.NotAnImage as exc:
        return JSONResponse({"detail": str(exc)}, status_code=415)
    except StorageFull as exc:  # 507 Insufficient Storage: the server's disk, not the file, is the problem
        return JSONResponse({"detail": str(exc)}, status_code=507)
    alt = (file.filename or "image").rsplit(".", 1)[0].replace("]", "").replace("[", "")[:80]
    return JSONResponse(
        {"sha256": stored.sha256, "url": f"/media/{stored.sha256}", "markdown": f"![{alt}](asset://{stored.sha256})"},
        status_code=201,
    )


@router.get("/media/{sha}", include_in_schema=False)
def media(request: Request, sha: str) -> Response:
    c = need(request, STAFF)
    if len(sha) != 64 or any(ch not in "0123456789abcdef" for ch in sha):
        raise NotFound("no such image")
    app = _app(request)
    path = content.media_path(app.settings.media_dir, sha)
    with app.session() as s:
        a = s.exec(select(Asset).where(Asset.sha256 == sha)).first()
        allowed = compose.may_use(app.ctx, s, c.user, sha)
    # an image of an item the caller may not see answers exactly as a missing one: its existence is not told
    if not allowed or not path.is_file():
        raise NotFound("no such image")
    ctype = a.content_type if a else _sniff(path)
    if ctype not in content.IMAGE_TYPES:
        ctype = "application/octet-stream"
    return Response(path.read_bytes(), media_type=ctype, headers={"Cache-Control": "private, max-age=86400"})


def _sniff(path) -> str:  # type: ignore[no-untyped-def]
    from PIL import Image

    try:
        with Image.open(path) as im:
            return Image.MIME.get(im.format or "", "application/octet-stream")
    except OSError:
        return "application/octet-stream"


#: the item page shows this many of the item's newest audit rows (`publisher item show` has them all)
AUDIT_SHOWN = 200


@router.get("/items/{item_id}", include_in_schema=False)
def item_page(request: Request, item_id: int) -> Response:
    c = need(request, STAFF)
    app = _app(request)
    with app.session() as s:
        item = visible_item(s, c.user, item_id)
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
    may_review = (level == 1 and c.user.role == Role.DEPARTMENT_HEAD and c.user.department == item.department) or (
        level == 2 and c.user.role == Role.CONFIDENTIALITY_REVIEWER
    )
    tz = viewer_zone(request)
    return render(
        request,
        "item.html",
        c,
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
        body_html=media_urls(item.body_html),
        publish_local=(item.publish_at or utcnow() + timedelta(hours=1)).astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
        channel_labels=channel_labels(app),
        trail=trail,
        trail_more=len(trail) == AUDIT_SHOWN,
    )


def _item_action(request: Request, item_id: int, fn, roles=STAFF, csrf: str = "") -> Response:  # type: ignore[no-untyped-def]
    c = need(request, roles, write=True, csrf=csrf)
    app = _app(request)
    with app.session() as s:
        me = s.get(User, c.user.id)
        visible_item(s, me, item_id)
        fn(app, s, me)
    return _back(request, f"/items/{item_id}")


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
    app = _app(request)
    with app.session() as s:
        d, item = visible_delivery(s, c.user, delivery_id)
        if not can_manage(c.user, item):
            raise NotAllowed(f"{c.user.name} may not retry deliveries of item {item.id}")
        workflow.retry_delivery(app.ctx, s, delivery_id=delivery_id, actor=c.user.name)
    return _back(request, f"/items/{d.item_id}")


# ------------------------------------------------------------------------------------------ review
@router.get("/review", include_in_schema=False)
def review_queue(request: Request) -> Response:
    c = need(request, REVIEWERS | ADMINS)
    with _app(request).session() as s:
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
    return render(request, "review.html", c, queues=queues, edited=edited)


# ---------------------------------------------------------------------------------------- calendar
@router.get("/calendar", include_in_schema=False)
def calendar(request: Request, view: str = "week", day: str | None = None) -> Response:
    c = need(request, STAFF)
    app = _app(request)
    tz = viewer_zone(request)
    view = "month" if view == "month" else "week"
    try:
        anchor = date.fromisoformat(day) if day else datetime.now(tz).date()
    except ValueError:
        raise InvalidInput(f"day {day!r} is not a date (YYYY-MM-DD)") from None
    if not periods.EARLIEST <= anchor <= periods.LATEST:
        raise InvalidInput(f"day {anchor} is outside the calendar ({periods.EARLIEST} to {periods.LATEST})")
    first, last = calendar_view.window(view, anchor)
    start, end = calendar_view.day_range(first, last, tz)
    with app.session() as s:
        days = calendar_view.by_day(calendar_view.entries(s, c.user, start, end), tz)
    step = timedelta(days=7) if view == "week" else None
    if view == "month":
        m = anchor.replace(day=1)
        prev_day, next_day = (m - timedelta(days=1)).replace(day=1), (m + timedelta(days=32)).replace(day=1)
    else:
        prev_day, next_day = anchor - step, anchor + step  # type: ignore[operator]
    grid = [[first + timedelta(days=w * 7 + d) for d in range(7)] for w in range(((last - first).days + 1) // 7)]
    return render(
        request,
        "calendar.html",
        c,
        view=view,
        anchor=anchor,
        grid=grid,
        days=days,
        prev_day=prev_day,
        next_day=next_day,
        today=datetime.now(tz).date(),
        channels=app.channels,
        labels=channel_labels(app),
    )


@router.get("/calendar/{channel}.ics", include_in_schema=False)
def calendar_feed(request: Request, channel: str, token: str = "") -> Response:
    app = _app(request)
    with app.session() as s:
        caller = accounts.token_caller(s, token, kind=accounts.FEED) if token else None
    if caller is None:  # an API token is refused too: it would give whoever reads the URL write access
        return Response(
            "a valid calendar-feed token is needed (make one on /tokens): /calendar/CHANNEL.ics?token=...",
            status_code=401,
            media_type="text/plain",
        )
    if caller.user.role not in STAFF:
        return Response("this account may not read the calendar", status_code=403, media_type="text/plain")
    spec = app.channels.get(channel)
    if spec is None:
        raise NotFound(f"no channel {channel!r}")
    now = utcnow()
    with app.session() as s:
        items = calendar_view.entries(
            s, caller.user, now - timedelta(days=92), now + timedelta(days=366), channel=channel
        )
    base = str(request.base_url)
    body = calendar_view.ical(channel, spec.label, items, host=request.url.hostname or "publisher", base_url=base)
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="{channel}.ics"'},
    )


# --------------------------------------------------------------------------------------- dashboard
def _period(request: Request, period: str, start: str | None, end: str | None):  # type: ignore[no-untyped-def]
    # counts are cut in the office's zone (as `publisher stats` and the annual report cut them)
    return dashboard.resolve_period(period, start or None, end or None, _app(request).settings.zone)


@router.get("/dashboard", include_in_schema=False)
def dashboard_page(
    request: Request,
    period: str = "report",
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
) -> Response:
    c = need(request, EVERYONE)
    app = _app(request)
    tz = app.settings.zone
    kind, s, e = _period(request, period, start, end)
    # the counts are the office's; the failures listed only those of items this reader may open
    dash = dashboard.build(app.engine, s, e, app.settings.zone, visible=view_filter(c.user))
    months = sorted({str(r["month"]) for r in dash.by_month})
    series: dict[str, dict[str, int]] = {}
    labels = channel_labels(app)
    for r in dash.by_month:
        series.setdefault(labels.get(str(r["channel"]), str(r["channel"])), {})[str(r["month"])] = int(r["published"])  # type: ignore[call-overload]
    t = translator(request)
    chart = svg.grouped_bars(months, series, title=t("chart_published")) if months else ""
    qs = urlencode(
        {
            "period": kind,
            "from": s.astimezone(tz).date().isoformat(),
            "to": (e - timedelta(seconds=1)).astimezone(tz).date().isoformat(),
        }
    )
    return render(
        request,
        "dashboard.html",
        c,
        dash=dash,
        chart=chart,
        kind=kind,
        qs=qs,
        start_day=s.astimezone(tz).date(),
        end_day=(e - timedelta(seconds=1)).astimezone(tz).date(),
        labels=labels,
        one_second=timedelta(seconds=1),
    )


@router.get("/dashboard.csv", include_in_schema=False)
def dashboard_csv(
    request: Request,
    table: str = "category",
    period: str = "report",
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
) -> Response:
    c = need(request, EVERYONE)
    if table not in dashboard.TABLES:
        raise InvalidInput(f"unknown table {table!r}; one of {', '.join(dashboard.TABLES)}")
    kind, s, e = _period(request, period, start, end)
    dash = dashboard.build(_app(request).engine, s, e, _app(request).settings.zone, visible=view_filter(c.user))
    columns = dashboard.FAILURE_COLUMNS if table == "failures" else ()  # an empty list still has its header
    body = "\ufeff" + dashboard.to_csv(dash.table(table), columns)  # BOM: Excel then reads the Chinese as UTF-8
    name = f"{table}-{s.date().isoformat()}-{kind}.csv"
    return Response(
        body, media_type="text/csv; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


# ------------------------------------------------------------------------------------------ tokens
def _tokens(request: Request, c: Any, s: Any, *, new_token: str | None = None, new_feed: str | None = None) -> Response:
    """The tokens page; a token just made is shown once (``no-store``: never kept by a cache)."""
    r = render(
        request,
        "tokens.html",
        c,
        tokens=accounts.tokens_of(s, c.user),
        new_token=new_token,
        feed=accounts.feed_token_of(s, c.user),
        new_feed=new_feed,
        channels=list(_app(request).channels),
    )
    r.headers["Cache-Control"] = "no-store"
    return r


@router.get("/tokens", include_in_schema=False)
def tokens_page(request: Request) -> Response:
    c = need(request, EVERYONE)
    with _app(request).session() as s:
        return _tokens(request, c, s)


@router.post("/tokens", include_in_schema=False)
def tokens_create(request: Request, csrf_token: Csrf = "", name: Annotated[str, Form()] = "") -> Response:
    c = need(request, EVERYONE, write=True, csrf=csrf_token)
    with _app(request).session() as s:
        token, _ = accounts.create_token(s, user=s.get(User, c.user.id), name=name)
        return _tokens(request, c, s, new_token=token)


@router.post("/tokens/feed", include_in_schema=False)
def tokens_feed(request: Request, csrf_token: Csrf = "") -> Response:
    """A new calendar-feed token (the old one stops working): its URLs are shown once."""
    c = need(request, STAFF, write=True, csrf=csrf_token)
    with _app(request).session() as s:
        return _tokens(request, c, s, new_feed=accounts.new_feed_token(s, user=s.get(User, c.user.id)))


@router.post("/tokens/{token_id}/revoke", include_in_schema=False)
def tokens_revoke(request: Request, token_id: int, csrf_token: Csrf = "") -> Response:
    c = need(request, EVERYONE, write=True, csrf=csrf_token)
    with _app(request).session() as s:
        accounts.revoke_token(s, token_id=token_id, actor=c.user)
    return _back(request, "/tokens")


# ------------------------------------------------------------------------------------------- admin
@router.get("/admin/users", include_in_schema=False)
def admin_users(request: Request) -> Response:
    c = need(request, ADMINS)
    with _app(request).session() as s:
        users = list(s.exec(select(User).order_by(User.name)))
        depts = workflow.departments(s)
    return render(request, "admin_users.html", c, users=users, departments=depts, roles=list(Role), error=None)


@router.post("/admin/users", include_in_schema=False)
def admin_users_add(
    request: Request,
    csrf_token: Csrf = "",
    name: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    department: Annotated[str, Form()] = "",
    display_name: Annotated[str, Form()] = "",
) -> Response:
    c = need(request, ADMINS, write=True, csrf=csrf_token)
    with _app(request).session() as s:
        workflow.add_user(
            s,
            name=name.strip(),
            role=role,
            department=department or None,
            display_name=display_name,
            actor=c.user.name,
            password_hash=accounts.hash_password(password),
        )
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{name}/password", include_in_schema=False)
def admin_users_password(
    request: Request, name: str, csrf_token: Csrf = "", password: Annotated[str, Form()] = ""
) -> Response:
    c = need(request, ADMINS, write=True, csrf=csrf_token)
    with _app(request).session() as s:
        accounts.set_password(s, name=name, password=password, actor=c.user.name)
    return RedirectResponse("/admin/users", status_code=303)


@router.get("/admin/channels", include_in_schema=False)
def admin_channels(request: Request) -> Response:
    c = need(request, ADMINS)
    app = _app(request)
    with app.session() as s:
        counts = dict(
            s.exec(
                select(Delivery.channel, sa.func.count())
                .where(
                    col(Delivery.status).in_([DeliveryStatus.PENDING, DeliveryStatus.FAILED, DeliveryStatus.WAITING])
                )
                .group_by(Delivery.channel)
            ).all()
        )
    t = translator(request)
    now = utcnow()
    rows = [(n, sp, t.dt(sp.next_slot(now, app.settings.zone)), counts.get(n, 0)) for n, sp in app.channels.items()]
    return render(request, "admin_channels.html", c, rows=rows)


def login_redirect(request: Request) -> RedirectResponse:
    return RedirectResponse(
        "/login?next=" + quote(request.url.path + (f"?{request.url.query}" if request.url.query else "")),
        status_code=303,
    )


__all__ = ["router", "login_redirect", "optional_caller"]
