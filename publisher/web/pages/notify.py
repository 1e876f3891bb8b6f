"""Each person's notification choice (通知设置): transport and address, immediate or a daily digest, quiet
hours. Thin over :func:`publisher.pipeline.workflow.outbox.set_pref`, the function ``publisher notify
set`` calls; staff set their own, an office admin anyone's (``?user=NAME``)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import select

from publisher.errors import InvalidInput
from publisher.models import Role, User
from publisher.notification import NotifyMode
from publisher.pipeline.workflow import outbox
from publisher.web.common import render, translator
from publisher.web.pages.shared import Csrf, app_of
from publisher.web.security import STAFF, need

router = APIRouter()


def _whose(c: Any, user: str) -> str:
    """The person whose choice is asked for: oneself, or anyone for an office admin."""
    name = user.strip() or c.user.name
    if name != c.user.name and c.user.role != Role.ADMIN:
        raise HTTPException(403, "only an office admin may see or change another person's notifications")
    return name


def _page(request: Request, c: Any, name: str, *, code: int = 200, error: str = "", form: Any = None) -> Response:
    app = app_of(request)
    with app.session() as s:
        pref = outbox.pref_of(s, user=name)
        people = [u.name for u in s.exec(select(User).order_by(User.name))] if c.user.role == Role.ADMIN else []
    if form is None and pref is not None:
        form = {
            "transport": pref.transport,
            "address": pref.address,
            "mode": pref.mode,
            "quiet_start": pref.quiet_start or "",
            "quiet_end": pref.quiet_end or "",
        }
    return render(
        request,
        "notify.html",
        c,
        code=code,
        whose=name,
        form=form or {"transport": outbox.NO_TRANSPORT, "mode": NotifyMode.IMMEDIATE},
        has_pref=pref is not None,
        transports=[*app.settings.notify.transports, outbox.NO_TRANSPORT],
        people=people,
        digest_hour=app.settings.notify.digest_hour,
        error=error,
        saved=request.query_params.get("saved") == "1",
    )


@router.get("/notify", include_in_schema=False)
def notify_page(request: Request, user: str = "") -> Response:
    c = need(request, STAFF)
    return _page(request, c, _whose(c, user))


@router.post("/notify", include_in_schema=False)
def notify_save(
    request: Request,
    csrf_token: Csrf = "",
    user: Annotated[str, Form()] = "",
    transport: Annotated[str, Form()] = "",
    address: Annotated[str, Form()] = "",
    mode: Annotated[str, Form()] = NotifyMode.IMMEDIATE,
    quiet_start: Annotated[str, Form()] = "",
    quiet_end: Annotated[str, Form()] = "",
) -> Response:
    c = need(request, STAFF, write=True, csrf=csrf_token)
    name = _whose(c, user)
    form = {
        "transport": transport,
        "address": address,
        "mode": mode,
        "quiet_start": quiet_start,
        "quiet_end": quiet_end,
    }
    app = app_of(request)
    quiet = f"{quiet_start.strip()}-{quiet_end.strip()}" if quiet_start.strip() or quiet_end.strip() else None
    try:
        with app.session() as s:
            outbox.set_pref(
                s,
                user=name,
                transport=transport,
                address=address,
                mode=mode,
                quiet=quiet,
                known=app.settings.notify.transports.keys(),
                actor=c.user.name,
            )
    except InvalidInput as exc:  # the form comes back as typed, with the reason
        return _page(request, c, name, code=422, error=translator(request).error(exc), form=form)
    target = "/notify?saved=1" + (f"&user={quote(name)}" if name != c.user.name else "")
    return RedirectResponse(target, status_code=303)
