"""Who is calling, what they may do, and the guards every response passes through.

Authentication is a session cookie (browsers) or ``Authorization: Bearer <token>`` (scripts).
A request that changes something with a session cookie must carry the session's CSRF token (form
field ``csrf_token`` or header ``X-CSRF-Token``); a bearer request carries no cookie, so it needs none.
Permissions are checked twice: here by role (who may use a route at all), then by
:mod:`publisher.pipeline.workflow` for the item at hand (department, review level, author).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
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

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# the generated website may carry its own inline styles and remote images; still no inline script
SITE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'self'"
)
# the OpenAPI page: the package's own Swagger UI (publisher/web/static/swagger-ui); it sets inline styles
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


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


_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="an API token from /tokens (pub_…); a browser session with X-CSRF-Token works too",
)


def logged_in(request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)] = None) -> None:
    """The API router's dependency: who is calling is settled before the body is looked at (a caller
    without a valid token learns nothing about the routes' bodies), and the OpenAPI document declares
    the bearer scheme. Each route still says which roles it takes (``need``)."""
    if _lookup(request) is None:
        raise LoginRequired()


def need(request: Request, roles: Iterable[Role], *, write: bool = False, csrf: str | None = None) -> Caller:
    """The caller if their role may use this route; 401/403 otherwise. ``write`` checks CSRF."""
    caller = _lookup(request)
    if caller is None:
        raise LoginRequired()
    if write and caller.read_only:
        raise HTTPException(403, "this API token is read-only: make a read-write one for changes")
    if write and caller.csrf is not None:
        sent = csrf or request.headers.get("x-csrf-token") or ""
        if not hmac.compare_digest(sent.encode(), caller.csrf.encode()):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
    if caller.user.role not in set(roles):
        raise HTTPException(403, refusal(caller.user.role, list(roles)))
    return caller


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def not_to_keep(path: str, headers: dict[bytes, bytes]) -> bool:
    """``Cache-Control: no-store`` for every answer to a request carrying a session cookie or a token
    (so Back after log-out, or a shared proxy, shows no draft) and for the log-in pages. The package's
    own /static/ files are the same for everyone and stay cacheable (Swagger UI is 1.7 MB)."""
    if path.startswith("/static/"):
        return False
    if path == "/login" or path.startswith("/login/") or b"authorization" in headers:
        return True
    cookie = headers.get(b"cookie", b"").decode("latin-1")
    return f"{SESSION_COOKIE}=" in cookie


class Guard:
    """Pure ASGI: security headers on every response, request bodies capped before they are read."""

    def __init__(self, app: ASGIApp, *, max_body: int, form_targets: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_body = max_body
        # origins a form may end up at after our redirect (the CAS server's logout), besides 'self'
        self.csp = CSP.replace("form-action 'self'", " ".join(("form-action 'self'", *form_targets)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            # no field anywhere holds a NUL (PostgreSQL's text cannot): one answer for every route
            await _plain(send, 400, "the address contains a NUL character (%00)", scope["path"])
            return
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await _plain(send, 413, f"the request is larger than {self.max_body // 1_000_000} MB", scope["path"])
            return
        received = 0
        form = headers.get(b"content-type", b"").lower().startswith(b"application/x-www-form-urlencoded")
        tail = b""

        async def capped() -> Message:
            nonlocal received, tail
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > self.max_body:
                    raise HTTPException(413, f"the request is larger than {self.max_body // 1_000_000} MB")
                if form:  # a NUL in a form field (an upload's bytes, multipart, may hold any)
                    seen = tail + msg.get("body", b"")
                    if b"%00" in seen:
                        raise HTTPException(400, "a form field contains a NUL character (%00)")
                    tail = seen[-2:]
            return msg

        path = scope["path"]
        csp = DOCS_CSP if path.startswith("/api/docs") else SITE_CSP if path.startswith("/site/") else self.csp
        private = not_to_keep(path, headers)

        async def with_headers(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                extra: list[tuple[bytes, bytes]] = [
                    (b"content-security-policy", csp.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"SAMEORIGIN" if path.startswith("/site/") else b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                ]
                if private:  # replaces any caching the route allowed (a draft's image, say)
                    msg["headers"] = [(k, v) for k, v in msg.get("headers", []) if k.lower() != b"cache-control"]
                    extra.append((b"cache-control", b"no-store"))
                names = {k.lower() for k, _ in msg.get("headers", [])}
                msg["headers"] = list(msg.get("headers", [])) + [(k, v) for k, v in extra if k not in names]
            await send(msg)

        await self.app(scope, capped, with_headers)


async def _plain(send: Send, status: int, text: str, path: str = "") -> None:
    """An answer before any route runs: plain text, or ``{"detail": ...}`` under /api/ as the routes answer."""
    kind = b"text/plain; charset=utf-8"
    if path.startswith("/api/"):
        kind, text = b"application/json", json.dumps({"detail": text})
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", kind),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                (b"content-security-policy", CSP.encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def cookie_args(request: Request) -> dict[str, Any]:
    web = request.app.state.app.settings.web
    return {"httponly": True, "samesite": "lax", "secure": bool(web.secure_cookies), "path": "/"}
