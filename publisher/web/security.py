"""Who is calling, what they may do, and the guards every response passes through.

Authentication is a session cookie (browsers) or ``Authorization: Bearer <token>`` (scripts).
A request that changes something with a session cookie must carry the session's CSRF token (form
field ``csrf_token`` or header ``X-CSRF-Token``); a bearer request carries no cookie, so it needs none.
Permissions are checked twice: here by role (who may use a route at all), then by
:mod:`publisher.workflow` for the item at hand (department, review level, author).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Any

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from publisher import accounts
from publisher.accounts import Caller
from publisher.models import Role
from publisher.web.i18n import refusal

SESSION_COOKIE = "publisher_session"
LOGIN_CSRF_COOKIE = "publisher_login_csrf"

EVERYONE = frozenset(Role)
WRITERS = frozenset({Role.EDITOR, Role.DEPARTMENT_HEAD, Role.ADMIN})
REVIEWERS = frozenset({Role.DEPARTMENT_HEAD, Role.CONFIDENTIALITY_REVIEWER})
STAFF = frozenset({Role.EDITOR, Role.DEPARTMENT_HEAD, Role.CONFIDENTIALITY_REVIEWER, Role.ADMIN})
ADMINS = frozenset({Role.ADMIN})

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
       "base-uri 'none'; frame-ancestors 'none'; form-action 'self'")  # fmt: skip
# the generated website may carry its own inline styles and remote images; still no inline script
SITE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'self'")  # fmt: skip
# the OpenAPI page loads its script and style from a CDN (no internet needed for the rest)
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
            "object-src 'none'; frame-ancestors 'none'")  # fmt: skip


class LoginRequired(Exception):
    """No valid session or token: pages redirect to /login, the API answers 401."""


def _lookup(request: Request) -> Caller | None:
    if "caller" in request.state._state:
        return request.state.caller
    app = request.app.state.app
    caller = None
    auth = request.headers.get("authorization", "")
    with app.session() as s:
        if auth.lower().startswith("bearer "):
            caller = accounts.token_caller(s, auth[7:].strip())
            if caller is None:
                request.state.caller = None
                raise HTTPException(401, "invalid or revoked API token", headers={"WWW-Authenticate": "Bearer"})
        elif token := request.cookies.get(SESSION_COOKIE):
            caller = accounts.session_caller(s, token)
    request.state.caller = caller
    return caller


def optional_caller(request: Request) -> Caller | None:
    return _lookup(request)


def need(request: Request, roles: Iterable[Role], *, write: bool = False, csrf: str | None = None) -> Caller:
    """The caller if their role may use this route; 401/403 otherwise. ``write`` checks CSRF."""
    caller = _lookup(request)
    if caller is None:
        raise LoginRequired()
    if write and caller.csrf is not None:
        sent = csrf or request.headers.get("x-csrf-token") or ""
        if not hmac.compare_digest(sent.encode(), caller.csrf.encode()):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
    if caller.user.role not in set(roles):
        raise HTTPException(403, refusal(caller.user.role, list(roles)))
    return caller


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


class Guard:
    """Pure ASGI: security headers on every response, request bodies capped before they are read."""

    def __init__(self, app: ASGIApp, *, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await _plain(send, 413, f"the request is larger than {self.max_body // 1_000_000} MB")
            return
        received = 0

        async def capped() -> Message:
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > self.max_body:
                    raise HTTPException(413, f"the request is larger than {self.max_body // 1_000_000} MB")
            return msg

        path = scope["path"]
        csp = DOCS_CSP if path.startswith("/api/docs") else SITE_CSP if path.startswith("/site/") else CSP

        async def with_headers(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                extra: list[tuple[bytes, bytes]] = [
                    (b"content-security-policy", csp.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"SAMEORIGIN" if path.startswith("/site/") else b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                ]
                names = {k.lower() for k, _ in msg.get("headers", [])}
                msg["headers"] = list(msg.get("headers", [])) + [(k, v) for k, v in extra if k not in names]
            await send(msg)

        await self.app(scope, capped, with_headers)


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                            (b"content-security-policy", CSP.encode()), (b"connection", b"close")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def cookie_args(request: Request) -> dict[str, Any]:
    web = request.app.state.app.settings.web
    return {"httponly": True, "samesite": "lax", "secure": bool(web.secure_cookies), "path": "/"}
