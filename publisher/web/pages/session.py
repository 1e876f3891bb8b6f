"""Logging in and out, and where a user lands after logging in."""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from publisher import accounts
from publisher.models import (
    Role,
)
from publisher.web.common import (
    render,
)
from publisher.web.pages.shared import Csrf, app_of
from publisher.web.security import (
    EVERYONE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    client_address,
    cookie_args,
    need,
)

router = APIRouter()


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
    app = app_of(request)
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
    with app_of(request).session() as s:
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


def login_redirect(request: Request) -> RedirectResponse:
    return RedirectResponse(
        "/login?next=" + quote(request.url.path + (f"?{request.url.query}" if request.url.query else "")),
        status_code=303,
    )
