"""Writing and changing an item: the compose and edit forms, the preview, image upload and the images' URLs."""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from publisher import accounts
from publisher.checklist import checklist
from publisher.errors import InvalidInput, NotFound, StorageFull
from publisher.models import (
    Asset,
    Item,
    ItemStatus,
    Role,
    User,
    utcnow,
)
from publisher.pipeline import content, workflow
from publisher.pipeline.workflow import wording
from publisher.pipeline.workflow.catalogue import KEYS as CATALOGUE_KEYS
from publisher.web import compose
from publisher.web.common import (
    can_edit,
    checklist_label,
    checklist_number,
    local_time,
    media_urls,
    render,
    translator,
    viewer_zone,
    visible_item,
)
from publisher.web.pages.shared import app_of
from publisher.web.security import (
    STAFF,
    WRITERS,
    need,
)

router = APIRouter()


def _compose_ctx(request: Request, c: accounts.Caller, item: Item | None, values: dict) -> dict:  # type: ignore[type-arg]
    app = app_of(request)
    with app.session() as s:
        depts = workflow.departments(s)
        covers = compose.cover_choices(app.ctx, s, s.get(User, c.user.id), item.id if item else None, values)
    t = translator(request)
    now = utcnow()
    return {
        "item": item,
        "v": values,
        "categories": app.settings.categories,
        "departments": depts if c.user.role == Role.ADMIN else [c.user.department],
        "checklist": checklist(),
        "topics": app.settings.catalogue.topics,
        "channels": [(n, s) for n, s in app.channels.items() if s.enabled],
        "slots": {n: t.dt(s.next_slot(now, app.settings.zone)) for n, s in app.channels.items()},
        "idem": values.get("idempotency_key") or secrets.token_urlsafe(16),
        "covers": covers,
    }


def _catalogue_values(catalogue: dict) -> dict:  # type: ignore[type-arg]
    """The catalogue fields as the form shows them: text, relations as comma-separated ids."""
    return {
        k: ", ".join(map(str, v)) if isinstance(v, list) else ("" if v is None else str(v))
        for k, v in catalogue.items()
        if k in CATALOGUE_KEYS
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
        "display_until": item.display_until.astimezone(tz).strftime("%Y-%m-%dT%H:%M") if item.display_until else "",
        "display_working_days": item.display_working_days or "",
        "overrides": wording.public(item.overrides),
    }


def _form_wording(form: Any) -> dict[str, dict[str, str]]:
    """The form's per-channel wording fields, ``wording.CHANNEL.FIELD``, as {channel: {field: text}}.

    The form carries a fold for every configured channel; a field left empty is no wording, so the
    folds of channels the item does not target (all empty) are not overrides refused for them."""
    out: dict[str, dict[str, str]] = {}
    for key, value in form.multi_items():
        prefix, _, rest = str(key).partition(".")
        channel, _, name = rest.rpartition(".")
        if prefix == "wording" and channel and isinstance(value, str) and value.strip():
            out.setdefault(channel, {})[name] = value.replace("\r\n", "\n")
    return out


@router.get("/items/new", include_in_schema=False)
def compose_form(request: Request) -> Response:
    c = need(request, WRITERS)
    values = {"department": c.user.department, "channels": [], "when": "none"}
    return render(request, "compose.html", c, error=None, **_compose_ctx(request, c, None, values))


async def _form_fields(request: Request) -> dict:  # type: ignore[type-arg]
    # starlette refuses a form field over 1 MB with a bare 400; the body may be review.max_body_bytes,
    # each byte of it up to three once URL-encoded (%E5): past that the save says so in the form's words
    limit = app_of(request).settings.review.max_body_bytes
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
        "tz": tz,
        "when": when,
        "display_until_raw": str(form.get("display_until") or ""),
        "display_working_days": str(form.get("display_working_days") or "").strip(),
        **{k: str(form.get(k) or "").strip() for k in CATALOGUE_KEYS},
        "overrides": _form_wording(form),
        "action": str(form.get("action") or "draft"),
        "csrf_token": str(form.get("csrf_token") or ""),
        "idempotency_key": str(form.get("idempotency_key") or "")[:100],
    }


def _fields_for_workflow(f: dict) -> dict:  # type: ignore[type-arg]
    out = {k: f[k] for k in ("summary", "category", "department", "channels", "overrides")}
    out["checklist_item"] = checklist_number(f["checklist_item_raw"])
    if f["publish_at"] is not None:
        out["publish_at"] = f["publish_at"]
    out["display_working_days"] = f["display_working_days"]
    out["display_until"] = local_time(f["display_until_raw"], f["tz"]) if f["display_until_raw"] else None
    out.update({k: f[k] for k in CATALOGUE_KEYS})  # "" clears; the service checks each
    return out


def _form_values(f: dict) -> dict:  # type: ignore[type-arg]
    try:  # shown again as the list offers it ("2 — name"), or as typed when it names no item
        shown = checklist_label(checklist_number(f["checklist_item_raw"])) or f["checklist_item_raw"]
    except InvalidInput:
        shown = f["checklist_item_raw"]
    return {**f, "checklist_item": shown, "publish_at": f["publish_at_raw"], "display_until": f["display_until_raw"]}


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
    app = app_of(request)

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
    with app_of(request).session() as s:
        item = visible_item(s, c.user, item_id)
        catalogue = workflow.catalogue_of(s, item)
    if not can_edit(c.user, item):
        return render(request, "error.html", c, code=403, message="forbidden")
    values = {**_values_from_item(item, viewer_zone(request)), **_catalogue_values(catalogue)}
    return render(request, "compose.html", c, error=None, **_compose_ctx(request, c, item, values))


@router.post("/items/{item_id}/edit", include_in_schema=False)
async def edit_submit(request: Request, item_id: int) -> Response:
    f = await _form_fields(request)
    c = await run_in_threadpool(need, request, WRITERS, write=True, csrf=f["csrf_token"])
    app = app_of(request)

    def work() -> None:
        with app.session() as s:
            me = s.get(User, c.user.id)
            item = visible_item(s, me, item_id)
            changes = {**_fields_for_workflow(f), "title": f["title"]}
            body = f["body_markdown"]
            compose.check_body_size(app.ctx, body)
            known = compose.known_assets(s, item_id)
            new_assets = compose.referenced_assets(app.ctx, body, known, session=s, user=me)
            known |= {a.sha256 for a in new_assets}
            new_assets += compose.wording_assets(app.ctx, f["overrides"], known, session=s, user=me)
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
    app = app_of(request)
    fields = {**f}
    try:
        fields["checklist_item"] = checklist_number(f["checklist_item_raw"])
    except InvalidInput:
        fields["checklist_item"] = None

    words, wording_error = compose.preview_wording(app.ctx, fields)
    text = " ".join(
        [f["body_markdown"], *(f"{w.get('body', '')} asset://{w.get('cover', '')}" for w in words.values())]
    )

    def usable() -> set[str]:
        with app.session() as s:
            return compose.usable_assets(app.ctx, s, s.get(User, c.user.id), text)

    previews = await run_in_threadpool(
        compose.preview,
        app.ctx,
        fields,
        author=c.user.display_name or c.user.name,
        usable=await run_in_threadpool(usable),
        words=words,
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
        wording_error=wording_error,
        # what submit will refuse whatever the channels (images without alt text), said before it
        general=workflow.alt_text_problems(compose.preview_part(f["body_markdown"])[0]),
    )


@router.post("/upload", include_in_schema=False)
async def upload(
    request: Request, file: Annotated[UploadFile | None, File()] = None, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    c = await run_in_threadpool(need, request, WRITERS, write=True, csrf=csrf_token)
    app = app_of(request)
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
    app = app_of(request)
    path = content.local_media(app.settings.media_dir, sha, app.settings.media_store())
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
