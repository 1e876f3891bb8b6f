"""An OpenID Connect client: authorization code flow with PKCE (RFC 7636, S256), ``state`` and ``nonce``.

The provider is found through its discovery document (OpenID Connect Discovery 1.0; its ``issuer`` must
be the configured one). The ID token is checked by PyJWT: the signature with the provider's JWKS
(``PyJWKClient``, keys by ``kid``), ``iss``, ``aud``, ``exp`` and ``iat``; then our ``nonce``. No crypto
is written here. The ``state``, ``nonce`` and verifier of a sign-in under way live in ``sso_request``
(one row, deleted when used) and the ``state`` also in a cookie of the browser that began it, so a
callback from another browser (log-in CSRF) or a second use of the same ``state`` is refused.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import jwt
import requests
import sqlalchemy as sa
from sqlmodel import Session

from publisher.models import utcnow
from publisher.settings import OidcSettings
from publisher.sso import OIDC, Principal, SignInRefused
from publisher.sso.tables import SsoRequest

CALLBACK = "/login/oidc/callback"
#: how long a sign-in may take between our redirect and the provider's callback
REQUEST_LIFE = timedelta(minutes=10)
#: the signatures we accept: asymmetric only (an HS256 token would be signed with the client secret)
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
DISCOVERY_TTL = 3600.0


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def challenge(verifier: str) -> str:
    """RFC 7636 4.2: BASE64URL-ENCODE(SHA256(ASCII(code_verifier))), no padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


class OidcClient:
    """Talks to one provider; keeps its discovery document and JWKS client for an hour."""

    def __init__(self, settings: OidcSettings, *, http: requests.Session | None = None, timeout: float = 10) -> None:
        self.settings = settings
        self.http = http or requests.Session()
        self.timeout = timeout
        self._meta: dict[str, Any] | None = None
        self._meta_at = 0.0
        self._jwks: jwt.PyJWKClient | None = None

    @property
    def redirect_uri(self) -> str:
        return self.settings.redirect_base_url + CALLBACK

    def metadata(self) -> dict[str, Any]:
        if self._meta is None or time.monotonic() - self._meta_at > DISCOVERY_TTL:
            meta = self._json("GET", self.settings.discovery, what="discovery document")
            if meta.get("issuer") != self.settings.issuer:
                raise SignInRefused(
                    f"the provider's discovery document names issuer {meta.get('issuer')!r}, "
                    f"not the configured {self.settings.issuer!r}"
                )
            for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(meta.get(key), str):
                    raise SignInRefused(f"the provider's discovery document has no {key}")
            self._meta, self._meta_at = meta, time.monotonic()
            self._jwks = jwt.PyJWKClient(meta["jwks_uri"], cache_keys=True, lifespan=300, timeout=int(self.timeout))
        return self._meta

    def begin(self, session: Session, *, next_path: str) -> tuple[str, str]:
        """The provider's authorize URL and the ``state`` (for the browser's cookie)."""
        meta = self.metadata()
        state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64)
        # sign-ins abandoned at the provider's form leave their row: each new one sweeps the expired
        session.exec(sa.delete(SsoRequest).where(SsoRequest.expires_at <= utcnow()))  # type: ignore[call-overload]
        session.add(
            SsoRequest(
                state_hash=_sha(state),
                nonce=nonce,
                verifier=verifier,
                next=next_path,
                expires_at=utcnow() + REQUEST_LIFE,
            )
        )
        query = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": " ".join(self.settings.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge(verifier),
            "code_challenge_method": "S256",
        }
        return meta["authorization_endpoint"] + "?" + urlencode(query), state

    def finish(self, session: Session, *, state: str, code: str, browser_state: str) -> tuple[Principal, str]:
        """The principal and the page to go to; SignInRefused for a wrong state, code, token or nonce."""
        if not state or not browser_state or not secrets.compare_digest(state, browser_state):
            raise SignInRefused("the sign-in's state does not match this browser's (start the sign-in again)")
        pending = session.get(SsoRequest, _sha(state))
        if pending is None:
            raise SignInRefused("unknown or used sign-in state (start the sign-in again)")
        session.delete(pending)
        session.flush()
        if pending.expires_at <= utcnow():
            raise SignInRefused("the sign-in took too long (start it again)")
        meta = self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": pending.verifier,
            "client_id": self.settings.client_id,
        }
        secret = self.settings.client_secret
        auth = (self.settings.client_id, secret) if secret else None
        tokens = self._json("POST", meta["token_endpoint"], what="token endpoint", data=form, auth=auth)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise SignInRefused("the provider's token answer has no id_token")
        claims = self.verify_id_token(id_token, nonce=pending.nonce)
        attributes: dict[str, list[str]] = {}
        if isinstance(tokens.get("access_token"), str) and isinstance(meta.get("userinfo_endpoint"), str):
            info = self._json(
                "GET",
                meta["userinfo_endpoint"],
                what="userinfo endpoint",
                headers={"Authorization": f"Bearer {tokens['access_token']}"},
            )
            if info.get("sub") != claims["sub"]:  # OpenID Connect Core 5.3.2
                raise SignInRefused("the userinfo answer is about another subject than the ID token")
            attributes.update(_as_lists(info))
        attributes.update(_as_lists(claims))
        principal = Principal(name=str(claims["sub"]), method=OIDC, attributes=attributes, id_token=id_token)
        return principal, pending.next

    def verify_id_token(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        """The ID token's claims once its signature, iss, aud, exp, iat and nonce hold."""
        meta = self.metadata()
        assert self._jwks is not None
        try:
            key = self._jwks.get_signing_key_from_jwt(id_token)
            claims = jwt.decode(
                id_token,
                key,
                algorithms=ALGORITHMS,
                audience=self.settings.client_id,
                issuer=meta["issuer"],
                leeway=30,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except (jwt.PyJWKClientError, jwt.InvalidTokenError) as exc:
            raise SignInRefused(f"the ID token was refused: {exc}") from exc
        if not isinstance(claims.get("nonce"), str) or not secrets.compare_digest(claims["nonce"], nonce):
            raise SignInRefused("the ID token's nonce is not the one this sign-in sent")
        aud = claims["aud"]
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != self.settings.client_id:
            raise SignInRefused("the ID token has several audiences and its azp is not this client")
        return claims

    def end_session_url(self, *, id_token: str | None) -> str | None:
        """Where the browser goes to log out of the provider too (RP-Initiated Logout 1.0): its
        ``end_session_endpoint`` with ``id_token_hint``, ``client_id`` and ``post_logout_redirect_uri``
        (our log-in page, which must be registered at the provider); None when the provider has none.

        Without an ID token (a session from before migration 0021) no ``post_logout_redirect_uri`` is
        sent, since the provider may honour it only with the hint: the browser stays at the provider."""
        try:
            endpoint = self.metadata().get("end_session_endpoint")
        except SignInRefused:
            return None  # the provider is unreachable: our session has ended all the same
        if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
            return None
        query = {"client_id": self.settings.client_id}
        if id_token:
            query |= {"id_token_hint": id_token, "post_logout_redirect_uri": self.post_logout_redirect_uri}
        return endpoint + ("&" if "?" in endpoint else "?") + urlencode(query)

    @property
    def post_logout_redirect_uri(self) -> str:
        return self.settings.redirect_base_url + "/login"

    def _json(self, method: str, url: str, *, what: str, **kw: Any) -> dict[str, Any]:
        try:
            r = self.http.request(method, url, timeout=self.timeout, **kw)
        except requests.RequestException as exc:
            raise SignInRefused(f"the provider's {what} did not answer ({type(exc).__name__})") from exc
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.status_code != 200 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            raise SignInRefused(
                f"the provider's {what} answered HTTP {r.status_code}" + (f": {error}" if error else "")
            )
        return body


def _as_lists(claims: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in claims.items():
        if isinstance(v, list):
            out[k] = [str(x) for x in v if isinstance(x, str | int)]
        elif isinstance(v, str | int | bool):
            out[k] = [str(v)]
    return out
