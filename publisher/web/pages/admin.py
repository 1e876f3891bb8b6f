"""Access and configuration: each user's API and calendar-feed tokens, and the admin's users and channels
pages."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import col, select

from publisher import accounts, sso
from publisher.models import (
    Delivery,
    DeliveryStatus,
    Role,
    User,
    utcnow,
)
from publisher.pipeline import workflow
from publisher.web.common import (
    render,
    translator,
)
from publisher.web.pages.shared import Csrf, app_of, go_back
from publisher.web.security import (
    ADMINS,
    EVERYONE,
    STAFF,
    need,
)

router = APIRouter()


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
        channels=list(app_of(request).channels),
    )
    r.headers["Cache-Control"] = "no-store"
    return r


@router.get("/tokens", include_in_schema=False)
def tokens_page(request: Request) -> Response:
    c = need(request, EVERYONE)
    with app_of(request).session() as s:
        return _tokens(request, c, s)


@router.post("/tokens", include_in_schema=False)
def tokens_create(request: Request, csrf_token: Csrf = "", name: Annotated[str, Form()] = "") -> Response:
    c = need(request, EVERYONE, write=True, csrf=csrf_token)
    with app_of(request).session() as s:
        token, _ = accounts.create_token(s, user=s.get(User, c.user.id), name=name)
        return _tokens(request, c, s, new_token=token)


@router.post("/tokens/feed", include_in_schema=False)
def tokens_feed(request: Request, csrf_token: Csrf = "") -> Response:
    """A new calendar-feed token (the old one stops working): its URLs are shown once."""
    c = need(request, STAFF, write=True, csrf=csrf_token)
    with app_of(request).session() as s:
        return _tokens(request, c, s, new_feed=accounts.new_feed_token(s, user=s.get(User, c.user.id)))


@router.post("/tokens/{token_id}/revoke", include_in_schema=False)
def tokens_revoke(request: Request, token_id: int, csrf_token: Csrf = "") -> Response:
    c = need(request, EVERYONE, write=True, csrf=csrf_token)
    with app_of(request).session() as s:
        accounts.revoke_token(s, token_id=token_id, actor=c.user)
    return go_back(request, "/tokens")


@router.get("/admin/users", include_in_schema=False)
def admin_users(request: Request) -> Response:
    c = need(request, ADMINS)
    with app_of(request).session() as s:
        users = list(s.exec(select(User).order_by(User.name)))
        depts = workflow.departments(s)
        recent = sso.sign_ins(s, limit=50)
    return render(
        request, "admin_users.html", c, users=users, departments=depts, roles=list(Role), error=None, sign_ins=recent
    )


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
    with app_of(request).session() as s:
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
    with app_of(request).session() as s:
        accounts.set_password(s, name=name, password=password, actor=c.user.name)
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{name}/set", include_in_schema=False)
def admin_users_set(
    request: Request,
    name: str,
    csrf_token: Csrf = "",
    role: Annotated[str, Form()] = "",
    department: Annotated[str, Form()] = "",
) -> Response:
    """Role and department by hand: campus sign-in keeps them from then on (docs/auth.md)."""
    c = need(request, ADMINS, write=True, csrf=csrf_token)
    with app_of(request).session() as s:
        accounts.set_user(s, name=name, role=role or None, department=department, actor=c.user.name)
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{name}/deactivate", include_in_schema=False)
def admin_users_deactivate(request: Request, name: str, csrf_token: Csrf = "") -> Response:
    c = need(request, ADMINS, write=True, csrf=csrf_token)
    if name == c.user.name:
        raise HTTPException(422, "you cannot deactivate yourself: ask another admin")
    with app_of(request).session() as s:
        accounts.deactivate_user(s, name=name, actor=c.user.name)
    return RedirectResponse("/admin/users", status_code=303)


@router.get("/admin/channels", include_in_schema=False)
def admin_channels(request: Request) -> Response:
    c = need(request, ADMINS)
    app = app_of(request)
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
