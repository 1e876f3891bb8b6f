"""An OpenID Connect provider as OpenID Connect Core 1.0, Discovery 1.0 and RFC 7636 (PKCE) describe it.

``/.well-known/openid-configuration``, ``/jwks`` (an RS256 key generated at start), ``/authorize``
(a log-in form; then a redirect with ``code`` and ``state``), ``/token`` (the code: single use, valid
``code_seconds``, for the client and ``redirect_uri`` it was issued to, with the PKCE verifier whose
S256 is the challenge; client authentication by HTTP Basic or ``client_secret_post``), ``/userinfo``.
It is not kinder than a real provider: PKCE is required, an unregistered ``redirect_uri`` is answered
with an error page and never redirected to (Core 3.1.2.4), a used code answers ``invalid_grant``.

It remembers the browser (an ``OIDC_SID`` cookie, as a campus provider does): a second ``/authorize``
from it skips the form unless ``prompt=login``. ``/end_session`` is RP-Initiated Logout 1.0: GET or POST;
an ``id_token_hint`` must be one this provider signed (its ``exp`` may have passed, section 2); a
``client_id`` beside it must be in its ``aud``; a ``post_logout_redirect_uri`` needs the hint and must be
one the client registered, exactly (section 3), else an error page and no redirect (section 4). The
End-User is asked whether to log out of the provider too (a confirmation page, section 2: "SHOULD ask"),
and the ``state`` comes back on the redirect.

Faults for tests: ``wrong_nonce`` (the next ID token carries another nonce), ``foreign_key`` (the next
ID token is signed by a key the JWKS does not hold, under the same ``kid``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from channels.sandbox._http import HttpSandbox, Reply, Request, serve_main
from channels.sandbox.campus import DEMO_PASSWORD, Account, demo_accounts, login_page
from publisher.channel import SandboxHandle


@dataclass(frozen=True)
class Client:
    redirect_uris: tuple[str, ...]
    #: None: a public client (PKCE alone)
    secret: str | None = None
    #: where RP-Initiated Logout may send the browser back to (matched exactly)
    post_logout_redirect_uris: tuple[str, ...] = ()


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    uid: str
    nonce: str | None
    challenge: str
    expires: float


#: the provider's own sign-in cookie (single sign-on across its clients)
SID = "OIDC_SID"


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


class OidcProvider(HttpSandbox):
    fault_kinds = ("wrong_nonce", "foreign_key")

    def __init__(
        self,
        *,
        clients: dict[str, Client] | None = None,
        accounts: dict[str, Account] | None = None,
        code_seconds: float = 30.0,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.clients = dict(clients or {})
        self.accounts = accounts if accounts is not None else demo_accounts()
        self.code_seconds = code_seconds
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(8)
        self.codes: dict[str, _Code] = {}
        self.access: dict[str, str] = {}
        #: the provider's own sign-ins: OIDC_SID cookie -> uid
        self.sessions: dict[str, str] = {}

    @property
    def issuer(self) -> str:
        return self.base_url

    def handle(self, req: Request) -> Reply:
        routes = {
            ("GET", "/.well-known/openid-configuration"): self._discovery,
            ("GET", "/jwks"): self._jwks,
            ("GET", "/authorize"): self._authorize_form,
            ("POST", "/authorize"): self._authorize,
            ("POST", "/token"): self._token,
            ("GET", "/userinfo"): self._userinfo,
            ("GET", "/end_session"): self._end_session,
            ("POST", "/end_session"): self._end_session,
            ("POST", "/end_session/confirm"): self._end_session_confirm,
        }
        route = routes.get((req.method, req.path))
        return route(req) if route else Reply(404, {"error": "not_found"})

    def _discovery(self, req: Request) -> Reply:
        i = self.issuer
        return Reply(
            200,
            {
                "issuer": i,
                "authorization_endpoint": f"{i}/authorize",
                "token_endpoint": f"{i}/token",
                "userinfo_endpoint": f"{i}/userinfo",
                "jwks_uri": f"{i}/jwks",
                "end_session_endpoint": f"{i}/end_session",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "profile"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
                "code_challenge_methods_supported": ["S256"],
                "claims_supported": ["sub", "name", "ou", "eduPersonAffiliation", "memberOf", "nonce"],
            },
        )

    def _jwks(self, req: Request) -> Reply:
        jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return Reply(200, {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]})

    # -- authorize ------------------------------------------------------------------------------------
    def _check_authorize(self, q: dict[str, str]) -> Reply | None:
        """An error answer, or None. Errors about the client or redirect URI never redirect."""
        client = self.clients.get(q.get("client_id", ""))
        if client is None:
            return Reply(400, "<!doctype html><p>invalid_request: unknown client_id</p>")
        if q.get("redirect_uri") not in client.redirect_uris:
            return Reply(400, "<!doctype html><p>invalid_request: redirect_uri is not registered</p>")
        error = None
        if q.get("response_type") != "code":
            error = "unsupported_response_type"
        elif "openid" not in q.get("scope", "").split():
            error = "invalid_scope"
        elif not q.get("code_challenge") or q.get("code_challenge_method") != "S256":
            error = "invalid_request"  # PKCE with S256 is required here
        if error:
            return self._redirect(q["redirect_uri"], {"error": error, "state": q.get("state", "")})
        return None

    def _authorize_form(self, req: Request) -> Reply:
        refused = self._check_authorize(req.query)
        if refused:
            return refused
        uid = self.sessions.get(self._sid(req) or "")
        if uid is not None and req.query.get("prompt") != "login":
            return self._issue_code(dict(req.query), uid)  # signed in here already: no form
        return Reply(200, login_page(action="/authorize", hidden=dict(req.query), title="统一身份认证 OIDC"))

    def _authorize(self, req: Request) -> Reply:
        q = req.form()
        refused = self._check_authorize(q)
        if refused:
            return refused
        account = self.accounts.get(q.pop("username", ""))
        if account is None or not secrets.compare_digest(account.password, q.pop("password", "")):
            self.record("login_failed")
            page = login_page(action="/authorize", hidden=q, title="统一身份认证 OIDC", error="用户名或密码错误")
            return Reply(401, page)
        sid = secrets.token_urlsafe(32)
        self.sessions[sid] = account.uid
        reply = self._issue_code(q, account.uid)
        reply.headers["Set-Cookie"] = f"{SID}={sid}; Path=/; HttpOnly; SameSite=Lax"
        return reply

    def _issue_code(self, q: dict[str, str], uid: str) -> Reply:
        code = secrets.token_urlsafe(32)
        self.codes[code] = _Code(
            client_id=q["client_id"],
            redirect_uri=q["redirect_uri"],
            uid=uid,
            nonce=q.get("nonce"),
            challenge=q["code_challenge"],
            expires=time.monotonic() + self.code_seconds,
        )
        self.record("code", uid=uid, client_id=q["client_id"])
        return self._redirect(q["redirect_uri"], {"code": code, "state": q.get("state", "")})

    def _sid(self, req: Request) -> str | None:
        for part in req.headers.get("cookie", "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == SID and v in self.sessions:
                return v
        return None

    # -- RP-Initiated Logout 1.0 ----------------------------------------------------------------------
    def _check_end_session(self, q: dict[str, str]) -> tuple[Reply | None, dict[str, Any] | None]:
        """An error page (never a redirect: section 4) or None, and the hint's claims."""
        hint, client_id, back = q.get("id_token_hint"), q.get("client_id"), q.get("post_logout_redirect_uri")
        claims = None
        if hint:
            try:  # one this provider signed; an expired one is still a hint (section 2)
                claims = jwt.decode(
                    hint,
                    self.key.public_key(),
                    algorithms=["RS256"],
                    issuer=self.issuer,
                    options={"verify_exp": False, "verify_aud": False, "require": ["iss", "sub", "aud"]},
                )
            except jwt.InvalidTokenError as exc:
                return self._logout_error(f"id_token_hint was not issued by this provider ({exc})"), None
            aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
            if client_id and client_id not in aud:
                return self._logout_error("client_id is not the audience of the id_token_hint"), None
            client_id = client_id or aud[0]
        if back:
            if claims is None:
                return self._logout_error("post_logout_redirect_uri needs an id_token_hint"), None
            client = self.clients.get(client_id or "")
            if client is None or back not in client.post_logout_redirect_uris:
                return self._logout_error("post_logout_redirect_uri is not registered for this client"), None
        return None, claims

    def _logout_error(self, reason: str) -> Reply:
        self.record("end_session_refused", reason=reason)
        return Reply(400, f"<!doctype html><p>invalid_request: {html.escape(reason)}</p>")

    def _end_session(self, req: Request) -> Reply:
        q = dict(req.query) if req.method == "GET" else req.form()
        refused, _ = self._check_end_session(q)
        if refused:
            return refused
        keep = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state")
        fields = "".join(f'<input type="hidden" name="{k}" value="{html.escape(q[k])}">' for k in keep if q.get(k))
        return Reply(
            200,
            '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>退出统一身份认证</title></head>'
            "<body><h1>退出统一身份认证？</h1><p>Log out of the campus sign-in as well?</p>"
            f'<form method="post" action="/end_session/confirm">{fields}'
            '<button name="logout" value="yes" id="op-logout">退出 / Log out</button> '
            '<button name="logout" value="no" id="op-stay">保持登录 / Stay signed in</button></form></body></html>',
        )

    def _end_session_confirm(self, req: Request) -> Reply:
        q = req.form()
        refused, claims = self._check_end_session(q)
        if refused:
            return refused
        headers = {}
        if q.get("logout") == "yes":
            sid = self._sid(req)
            uid = self.sessions.pop(sid, None) if sid else None
            self.record("end_session", uid=uid, sub=claims["sub"] if claims else None, state=q.get("state"))
            headers["Set-Cookie"] = f"{SID}=; Path=/; Max-Age=0"
        else:
            self.record("end_session_declined", sub=claims["sub"] if claims else None)
        back = q.get("post_logout_redirect_uri")
        if not back:
            return Reply(200, "<!doctype html><p>已退出 / Logged out</p>", headers=headers)
        reply = self._redirect(back, {"state": q.get("state", "")})
        reply.headers.update(headers)
        return reply

    def _redirect(self, uri: str, params: dict[str, str]) -> Reply:
        params = {k: v for k, v in params.items() if v}
        query = (("&" if "?" in uri else "?") + urlencode(params)) if params else ""
        return Reply(302, "", headers={"Location": uri + query})

    # -- token ----------------------------------------------------------------------------------------
    def _token(self, req: Request) -> Reply:
        form = req.form()
        client_id, secret = form.get("client_id", ""), form.get("client_secret")
        auth = req.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return self._oauth_error(401, "invalid_client")
        client = self.clients.get(client_id)
        if client is None or (client.secret is not None and not secrets.compare_digest(client.secret, secret or "")):
            return self._oauth_error(401, "invalid_client")
        if form.get("grant_type") != "authorization_code":
            return self._oauth_error(400, "unsupported_grant_type")
        code = self.codes.pop(form.get("code", ""), None)  # single use, whatever the outcome
        if code is None:
            return self._oauth_error(400, "invalid_grant", "unknown or used code")
        if time.monotonic() > code.expires:
            return self._oauth_error(400, "invalid_grant", "the code expired")
        if code.client_id != client_id or code.redirect_uri != form.get("redirect_uri"):
            return self._oauth_error(400, "invalid_grant", "the code was issued to another client or redirect_uri")
        verifier = form.get("code_verifier", "")
        if not 43 <= len(verifier) <= 128 or not secrets.compare_digest(_s256(verifier), code.challenge):
            return self._oauth_error(400, "invalid_grant", "PKCE verification failed")
        claims = {**self.claims_of(code.uid), "aud": client_id, "nonce": code.nonce}
        fault = self.take_fault()
        if fault == "wrong_nonce":
            claims["nonce"] = secrets.token_urlsafe(16)
        token = self.sign(claims, foreign=fault == "foreign_key")
        access = secrets.token_urlsafe(32)
        self.access[access] = code.uid
        self.record("token", uid=code.uid, client_id=client_id, fault=fault)
        body = {"access_token": access, "token_type": "Bearer", "expires_in": 300, "id_token": token}
        return Reply(200, body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _oauth_error(self, status: int, error: str, description: str = "") -> Reply:
        body = {"error": error, **({"error_description": description} if description else {})}
        self.record("token_refused", error=error, description=description)
        return Reply(status, body, headers={"Cache-Control": "no-store"})

    def _userinfo(self, req: Request) -> Reply:
        auth = req.headers.get("authorization", "")
        uid = self.access.get(auth[7:]) if auth.lower().startswith("bearer ") else None
        if uid is None:
            return Reply(401, {"error": "invalid_token"}, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return Reply(200, self.claims_of(uid))

    # -- keys -----------------------------------------------------------------------------------------
    def claims_of(self, uid: str) -> dict[str, Any]:
        a = self.accounts[uid].attributes
        now = int(time.time())
        return {
            "iss": self.issuer,
            "sub": uid,
            "iat": now,
            "exp": now + 300,
            "auth_time": now,
            "name": a.get("cn", [uid])[0],
            "ou": a.get("ou", [""])[0],
            "eduPersonAffiliation": a.get("eduPersonAffiliation", []),
            "memberOf": a.get("memberOf", []),
        }

    def sign(self, claims: dict[str, Any], *, foreign: bool = False) -> str:
        """An ID token signed with this provider's key (or, ``foreign``, a fresh key the JWKS lacks)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if foreign else self.key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.kid})


def demo_sandbox(workdir: Path) -> SandboxHandle:
    """The ``publisher.sandboxes`` entry point: a running provider and the ``[auth.oidc]`` table for it."""
    secret = secrets.token_urlsafe(24)
    provider = OidcProvider(
        clients={
            "publisher": Client(
                redirect_uris=("http://127.0.0.1:8000/login/oidc/callback",),
                secret=secret,
                post_logout_redirect_uris=("http://127.0.0.1:8000/login",),
            )
        }
    )
    provider.start()
    return SandboxHandle(
        config={},
        auth={
            "oidc": {"issuer": provider.issuer, "client_id": "publisher", "redirect_base_url": "http://127.0.0.1:8000"}
        },
        environ={"PUBLISHER_OIDC_CLIENT_SECRET": secret},
        stop=provider.stop,
        describe=f"an OIDC provider at {provider.issuer} (account li.si, password {DEMO_PASSWORD})",
    )


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--client-id", default="publisher")
    p.add_argument("--redirect-uri", default="http://127.0.0.1:8000/login/oidc/callback")
    p.add_argument("--code-seconds", type=float, default=30.0)


if __name__ == "__main__":
    serve_main(
        lambda a: OidcProvider(
            host=a.host,
            port=a.port,
            code_seconds=a.code_seconds,
            clients={
                a.client_id: Client(
                    redirect_uris=(a.redirect_uri,),
                    post_logout_redirect_uris=(a.redirect_uri.rsplit("/login/oidc/callback", 1)[0] + "/login",),
                )
            },
        ),
        _args,
        __doc__ or "",
    )
