"""Logging in and out, and where a user lands after logging in."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from publisher import accounts, sso
from publisher.models import Role
from publisher.web.pages.shared import Csrf, app_of
from publisher.web.pages.sso import login_page, logout_target
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
    r = login_page(request, login_csrf=token, error=error, next=request.query_params.get("next", ""))
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
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")

    def again(code: int, error: str) -> Response:
        # the form comes back with the user name as typed (never the password)
        return login_page(request, code=code, login_csrf=cookie, error=error, next=next, username=username)

    if not cookie or not hmac.compare_digest(cookie.encode(), csrf_token.encode()):
        return again(403, "forbidden")
    app = app_of(request)
    name, address = username.strip(), client_address(request)
    token, error = None, ""
    try:
        with app.session() as s:
            try:
                user = accounts.authenticate(
                    s,
                    name=name,
                    password=password,
                    address=address,
                    web=app.settings.web,
                    admins_only=not app.settings.auth.local_passwords,
                )
            except accounts.LocalPasswordsOff as exc:
                user, error = None, "local_off"
                sso.record(s, name=name, method=sso.PASSWORD, address=address, reason=str(exc))
            if user is not None:
                token = accounts.start_session(s, user, app.settings.web)
                sso.record(s, name=user.name, method=sso.PASSWORD, address=address)
            elif not error:
                error = "bad_login"
                sso.record(s, name=name, method=sso.PASSWORD, address=address, reason="wrong user name or password")
    except accounts.TooManyAttempts:
        return again(429, "throttled")
    if token is None:
        return again(403 if error == "local_off" else 401, error)
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
        ended = accounts.end_session(s, request.cookies.get(SESSION_COOKIE, ""))
    how, id_token = ended if ended else (None, None)
    # a campus session also ends at the CAS server or the OIDC provider, or the next visit would sign
    # straight back in
    r = RedirectResponse(logout_target(request, how, id_token), status_code=303)
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
