"""OpenID Connect sign-in against the OIDC sandbox over real HTTP: discovery, PKCE, the ID token checked
with the provider's JWKS, and every refusal (wrong state, another browser's state, a replay, a wrong
nonce, another key, an expired code, an expired token, another audience)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlmodel import select

from channels.sandbox.oidc import Client, OidcProvider
from publisher.models import User
from publisher.sso import SignInRefused
from publisher.sso.oidc import OidcClient, challenge
from tests.web.signin_helpers import MAPPING, campus_form, path_of, query_of

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
SECRET = "sandbox-client-secret"


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[OidcProvider]:
    monkeypatch.setenv("PUBLISHER_OIDC_CLIENT_SECRET", SECRET)
    p = OidcProvider(clients={"publisher": Client(("http://testserver/login/oidc/callback",), secret=SECRET)})
    p.start()
    yield p
    p.stop()


@pytest.fixture
def oidc_app(make_app: Any, provider: OidcProvider) -> Any:
    return make_app(
        auth={
            "oidc": {"issuer": provider.issuer, "client_id": "publisher", "redirect_base_url": "http://testserver"},
            # an OIDC provider says the display name in the standard "name" claim
            "mapping": {**MAPPING, "display_name": "name"},
        }
    )


@pytest.fixture
def web(oidc_app: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from publisher.web import create_app

    with TestClient(create_app(oidc_app), follow_redirects=False) as c:
        yield c


def _authorize(web: Any, provider: OidcProvider, uid: str = "li.si") -> str:
    """Our redirect to the provider, its log-in form posted: the callback URL the browser is sent to."""
    r = web.get("/login/oidc?next=/review")
    assert r.status_code == 303 and r.headers["location"].startswith(provider.issuer + "/authorize?")
    q = query_of(r.headers["location"])
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43 and q["nonce"] and q["state"]
    back = campus_form(provider.issuer + "/authorize", q, uid)
    assert back.status_code == 302, back.text
    return back.headers["Location"]


def test_sign_in_with_pkce_creates_the_mapped_user(oidc_app, web, provider):
    r = web.get(path_of(_authorize(web, provider)))
    assert r.status_code == 303 and r.headers["location"] == "/review"
    assert web.get("/api/me").json()["name"] == "li.si"
    with oidc_app.session() as s:
        user = s.exec(select(User).where(User.name == "li.si")).one()
    assert (user.role, user.department, user.display_name) == ("department_head", "校长办公室", "李四")
    assert [e["action"] for e in provider.ledger if e["action"] == "token"] == ["token"]


def test_a_wrong_state_is_refused(web, provider):
    back = _authorize(web, provider)
    q = query_of(back)
    r = web.get("/login/oidc/callback", params={"code": q["code"], "state": q["state"] + "x"})
    assert r.status_code == 403 and "state" in r.text
    assert web.get("/api/me").status_code == 401


def test_a_state_from_another_browser_is_refused(oidc_app, web, provider):
    from fastapi.testclient import TestClient

    from publisher.web import create_app

    back = _authorize(web, provider)
    with TestClient(create_app(oidc_app), follow_redirects=False) as other:  # log-in CSRF: no state cookie
        r = other.get(path_of(back))
    assert r.status_code == 403 and "state" in r.text


def test_a_callback_replayed_is_refused(web, provider):
    back = _authorize(web, provider)
    assert web.get(path_of(back)).status_code == 303
    r = web.get(path_of(back))
    assert r.status_code == 403


def test_a_wrong_nonce_is_refused(web, provider):
    provider.fail_next("wrong_nonce")
    r = web.get(path_of(_authorize(web, provider)))
    assert r.status_code == 403 and "nonce" in r.text
    assert web.get("/api/me").status_code == 401


def test_a_token_signed_by_another_key_is_refused(web, provider):
    provider.fail_next("foreign_key")
    r = web.get(path_of(_authorize(web, provider)))
    assert r.status_code == 403 and "Signature verification failed" in r.text


def test_an_expired_code_is_refused(web, provider):
    provider.code_seconds = 0.2
    back = _authorize(web, provider)
    time.sleep(0.4)
    r = web.get(path_of(back))
    assert r.status_code == 403 and "invalid_grant" in r.text


def test_forged_id_tokens_are_refused(oidc_app, provider):
    client = OidcClient(oidc_app.settings.auth.oidc)
    good = {**provider.claims_of("li.si"), "aud": "publisher", "nonce": "n-1"}
    assert client.verify_id_token(provider.sign(good), nonce="n-1")["sub"] == "li.si"
    cases = {
        "nonce": provider.sign({**good, "nonce": "n-2"}),  # the sandbox's own key, another sign-in's nonce
        "Signature verification failed": provider.sign(good, foreign=True),
        "(?i)expired": provider.sign({**good, "exp": int(time.time()) - 120}),
        "(?i)audience": provider.sign({**good, "aud": "another-app"}),
        "(?i)issuer": provider.sign({**good, "iss": "http://evil.example"}),
    }
    for why, token in cases.items():
        with pytest.raises(SignInRefused, match=why):
            client.verify_id_token(token, nonce="n-1")
    import jwt

    with pytest.raises(SignInRefused):  # a symmetric token "signed" with a guessable secret
        client.verify_id_token(jwt.encode(good, "x" * 32, algorithm="HS256"), nonce="n-1")


def test_the_provider_checks_the_pkce_verifier_and_the_redirect_uri(web, provider):
    back = _authorize(web, provider)
    code = query_of(back)["code"]
    token_url = provider.issuer + "/token"
    base = {"grant_type": "authorization_code", "code": code, "redirect_uri": "http://testserver/login/oidc/callback"}
    r = requests.post(token_url, data={**base, "code_verifier": "v" * 50}, auth=("publisher", SECRET), timeout=5)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # the code is spent by that attempt, as RFC 6749 asks
    r = requests.post(token_url, data={**base, "code_verifier": "v" * 50}, auth=("publisher", SECRET), timeout=5)
    assert r.json()["error_description"] == "unknown or used code"
    r = requests.get(
        provider.issuer + "/authorize",
        params={"client_id": "publisher", "redirect_uri": "http://evil.example/cb", "response_type": "code"},
        allow_redirects=False,
        timeout=5,
    )
    assert r.status_code == 400 and "Location" not in r.headers
    # RFC 7636 appendix B
    assert challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
