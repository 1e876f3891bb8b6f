"""Campus sign-in pages: CAS (``/login/cas``, its callback and single logout) and OpenID Connect
(``/login/oidc`` and its callback). Thin over :mod:`publisher.sso`; each callback is one transaction
that ends in the very session a local log-in starts, or in the log-in page saying why not (docs/auth.md).
"""

from __future__ import annotations

from typing import Annotated, Any

import requests
from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from publisher import accounts, sso
from publisher.sso import SignInRefused, cas, mapping, oidc
from publisher.web.common import render
from publisher.web.pages.shared import app_of
from publisher.web.security import SESSION_COOKIE, client_address, cookie_args

router = APIRouter()

NEXT_COOKIE = "publisher_sso_next"
STATE_COOKIE = "publisher_oidc_state"


def _clients(request: Request) -> dict[str, Any]:
    """One CAS and one OIDC client per web app, sharing a connection pool (built on first use)."""
    state = request.app.state
    if getattr(state, "sso_clients", None) is None:
        auth = app_of(request).settings.auth
        http = requests.Session()
        state.sso_clients = {
            "cas": cas.CasClient(auth.cas, http=http) if auth.cas else None,
            "oidc": oidc.OidcClient(auth.oidc, http=http) if auth.oidc else None,
        }
    return state.sso_clients


def _client(request: Request, kind: str) -> Any:
    client = _clients(request)[kind]
    if client is None:
        raise HTTPException(404, f"campus sign-in through {kind.upper()} is not configured ([auth.{kind}])")
    return client


def _safe_next(value: str | None) -> str:
    return value if value and value.startswith("/") and not value.startswith("//") and len(value) < 500 else "/"


def login_page(request: Request, *, code: int = 200, **ctx: Any) -> Response:
    """The log-in page: the campus sign-in buttons that are configured, and the password form."""
    auth = app_of(request).settings.auth
    ctx.setdefault("next", "")
    return render(
        request,
        "login.html",
        None,
        code=code,
        cas_label=auth.cas.label if auth.cas else None,
        oidc_label=auth.oidc.label if auth.oidc else None,
        local_passwords=auth.local_passwords,
        **ctx,
    )


def _refused(request: Request, reason: str) -> Response:
    return login_page(request, code=403, error="sso_refused", reason=reason, login_csrf="")


def _signed_in(request: Request, token: str, next_path: str) -> Response:
    r = RedirectResponse(_safe_next(next_path), status_code=303)
    web = app_of(request).settings.web
    r.set_cookie(SESSION_COOKIE, token, max_age=int(web.session_hours * 3600), **cookie_args(request))
    r.delete_cookie(NEXT_COOKIE, path="/")
    r.delete_cookie(STATE_COOKIE, path="/")
    return r


# ------------------------------------------------------------------------------------------- CAS
@router.get("/login/cas", include_in_schema=False)
def cas_login(request: Request, next: str = "") -> Response:
    client = _client(request, "cas")
    r = RedirectResponse(client.login_url(), status_code=303)
    r.set_cookie(NEXT_COOKIE, _safe_next(next), max_age=600, **cookie_args(request))
    return r


@router.get("/login/cas/callback", include_in_schema=False)
def cas_callback(request: Request, ticket: str = "") -> Response:
    client = _client(request, "cas")
    app = app_of(request)
    address = client_address(request)
    with app.session() as s:
        name, reason = "", ""
        try:
            if not ticket:
                raise SignInRefused("the CAS server sent no ticket")
            cas.burn(s, ticket)
            principal = client.validate(ticket)
            name = principal.name
            user = mapping.sign_in_user(s, principal, app.settings.auth.mapping)
            name = user.name
            token = accounts.start_session(s, user, app.settings.web, sso=f"cas:{cas.ticket_hash(ticket)}")
            sso.record(s, name=name, method=sso.CAS, address=address)
        except SignInRefused as exc:
            sso.record(s, name=name, method=sso.CAS, address=address, reason=str(exc))
            token, reason = None, str(exc)
    if token is None:
        return _refused(request, reason)
    return _signed_in(request, token, request.cookies.get(NEXT_COOKIE, "/"))


@router.post("/login/cas/callback", include_in_schema=False)
def cas_single_logout(request: Request, logoutRequest: Annotated[str, Form()] = "") -> Response:  # noqa: N803
    """The CAS server's back-channel ``logoutRequest``: end the session its ``SessionIndex`` began."""
    _client(request, "cas")
    ticket = cas.logout_request_ticket(logoutRequest)
    if not ticket:
        return PlainTextResponse("not a CAS logoutRequest", status_code=400)
    with app_of(request).session() as s:
        ended = accounts.end_sso_sessions(s, f"cas:{cas.ticket_hash(ticket)}")
    return PlainTextResponse(f"{ended} session(s) ended")


# ------------------------------------------------------------------------------------------ OIDC
@router.get("/login/oidc", include_in_schema=False)
def oidc_login(request: Request, next: str = "") -> Response:
    client = _client(request, "oidc")
    try:
        with app_of(request).session() as s:
            url, state = client.begin(s, next_path=_safe_next(next))
    except SignInRefused as exc:
        return _refused(request, str(exc))
    r = RedirectResponse(url, status_code=303)
    r.set_cookie(STATE_COOKIE, state, max_age=int(oidc.REQUEST_LIFE.total_seconds()), **cookie_args(request))
    return r


@router.get("/login/oidc/callback", include_in_schema=False)
def oidc_callback(request: Request, state: str = "", code: str = "", error: str = "") -> Response:
    client = _client(request, "oidc")
    app = app_of(request)
    address = client_address(request)
    with app.session() as s:
        name, reason = "", ""
        try:
            if error:
                raise SignInRefused(f"the provider refused: {error[:200]}")
            principal, next_path = client.finish(
                s, state=state, code=code, browser_state=request.cookies.get(STATE_COOKIE, "")
            )
            name = principal.name
            user = mapping.sign_in_user(s, principal, app.settings.auth.mapping)
            name = user.name
            token = accounts.start_session(s, user, app.settings.web, sso=sso.OIDC, id_token=principal.id_token)
            sso.record(s, name=name, method=sso.OIDC, address=address)
        except SignInRefused as exc:
            sso.record(s, name=name, method=sso.OIDC, address=address, reason=str(exc))
            token, reason = None, str(exc)
    if token is None:
        return _refused(request, reason)
    return _signed_in(request, token, next_path)


def logout_target(request: Request, how: str | None, id_token: str | None = None) -> str:
    """Where the browser goes after logging out: the CAS server's logout for a CAS session, the OIDC
    provider's end_session_endpoint for an OIDC one (when it has one), else /login."""
    if how and how.startswith("cas:") and (cas_client := _clients(request)["cas"]):
        return cas_client.logout_url()
    if how == sso.OIDC and (oidc_client := _clients(request)["oidc"]):
        return oidc_client.end_session_url(id_token=id_token) or "/login"
    return "/login"
