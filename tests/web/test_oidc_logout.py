"""Logging out of an OIDC session goes on to the provider (OpenID Connect RP-Initiated Logout 1.0), as a
CAS session's goes on to CAS /logout: the provider's ``end_session_endpoint`` from discovery, with the
session's ID token as ``id_token_hint`` and our log-in page as ``post_logout_redirect_uri``. The OIDC
sandbox, over real HTTP, implements the endpoint as the specification says, refusals included; in
Chromium the whole walk ends with the provider's form shown again (its sign-in ended too)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
import requests

from channels.sandbox.oidc import SID, Client, OidcProvider
from publisher.sso.oidc import OidcClient
from tests.web.signin_helpers import MAPPING, campus_form, free_socket, live_server, path_of, query_of
from tests.web.test_browser import SHOTS
from tests.web.test_browser import browser as browser  # the journey test's Chromium

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
SECRET = "sandbox-client-secret"
BASE = "http://testserver"


def _provider(base: str) -> OidcProvider:
    return OidcProvider(
        clients={
            "publisher": Client(
                (f"{base}/login/oidc/callback",), secret=SECRET, post_logout_redirect_uris=(f"{base}/login",)
            ),
            "other-app": Client(("http://other.example/cb",), post_logout_redirect_uris=("http://other.example/",)),
        }
    )


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[OidcProvider]:
    monkeypatch.setenv("PUBLISHER_OIDC_CLIENT_SECRET", SECRET)
    p = _provider(BASE)
    p.start()
    yield p
    p.stop()


def _oidc_app(make_app: Any, issuer: str, base: str) -> Any:
    return make_app(
        auth={
            "oidc": {"issuer": issuer, "client_id": "publisher", "redirect_base_url": base},
            "mapping": {**MAPPING, "display_name": "name"},
        }
    )


@pytest.fixture
def web(make_app: Any, provider: OidcProvider) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from publisher.web import create_app

    with TestClient(create_app(_oidc_app(make_app, provider.issuer, BASE)), follow_redirects=False) as c:
        yield c


def _sign_in(web: Any, provider: OidcProvider, uid: str = "li.si") -> str:
    """Signed in through the provider's form; the provider's own sign-in cookie (OIDC_SID)."""
    r = web.get("/login/oidc")
    back = campus_form(provider.issuer + "/authorize", query_of(r.headers["location"]), uid)
    assert back.status_code == 302, back.text
    assert web.get(path_of(back.headers["Location"])).status_code == 303
    assert web.get("/api/me").json()["name"] == uid
    return back.cookies[SID]


def _csrf(web: Any) -> str:
    from tests.web.conftest import csrf_of

    return csrf_of(web.get("/tokens").text)


def _authorize_with(provider: OidcProvider, web: Any, sid: str) -> requests.Response:
    """The provider's /authorize as a browser holding ``sid`` asks it."""
    q = query_of(web.get("/login/oidc").headers["location"])
    return requests.get(provider.issuer + "/authorize", params=q, cookies={SID: sid}, allow_redirects=False, timeout=5)


def test_logging_out_goes_on_to_the_providers_end_session(web: Any, provider: OidcProvider) -> None:
    sid = _sign_in(web, provider)
    # while signed in at the provider, a new sign-in skips its form: why the log-out must end it too
    assert _authorize_with(provider, web, sid).status_code == 302
    r = web.post("/logout", data={"csrf_token": _csrf(web)})
    assert r.status_code == 303
    target = r.headers["location"]
    assert target.startswith(provider.issuer + "/end_session?")
    q = query_of(target)
    assert q["client_id"] == "publisher" and q["post_logout_redirect_uri"] == f"{BASE}/login"
    hint = jwt.decode(q["id_token_hint"], options={"verify_signature": False})
    assert (hint["sub"], hint["aud"], hint["iss"]) == ("li.si", "publisher", provider.issuer)
    assert web.get("/api/me").status_code == 401  # our session ended first, whatever the provider does
    # the provider asks whether to log out of it too, then sends the browser back to our log-in page
    page = requests.get(target, cookies={SID: sid}, timeout=5)
    assert page.status_code == 200 and "退出统一身份认证" in page.text
    form = {k: q[k] for k in ("id_token_hint", "client_id", "post_logout_redirect_uri")}
    done = requests.post(
        provider.issuer + "/end_session/confirm",
        data={**form, "logout": "yes"},
        cookies={SID: sid},
        allow_redirects=False,
        timeout=5,
    )
    assert done.status_code == 302 and done.headers["Location"] == f"{BASE}/login"
    assert [e["uid"] for e in provider.ledger if e["action"] == "end_session"] == ["li.si"]
    form_again = _authorize_with(provider, web, sid)
    assert form_again.status_code == 200 and 'name="password"' in form_again.text


def test_the_provider_follows_rp_initiated_logout(web: Any, provider: OidcProvider) -> None:
    sid = _sign_in(web, provider)
    end = provider.issuer + "/end_session"
    good = {**provider.claims_of("li.si"), "aud": "publisher"}
    hint = provider.sign(good)
    back = f"{BASE}/login"

    def ask(method: str = "GET", **params: str) -> requests.Response:
        kw = {"params": params} if method == "GET" else {"data": params}
        return requests.request(method, end, cookies={SID: sid}, allow_redirects=False, timeout=5, **kw)  # type: ignore[arg-type]

    refusals = {
        "not registered": {"id_token_hint": hint, "post_logout_redirect_uri": "http://evil.example/login"},
        "needs an id_token_hint": {"post_logout_redirect_uri": back},
        "not issued by this provider": {"id_token_hint": provider.sign(good, foreign=True)},
        "not the audience": {"id_token_hint": hint, "client_id": "other-app"},
        # registered, but for another client than the hint's
        "not registered for this client": {"id_token_hint": hint, "post_logout_redirect_uri": "http://other.example/"},
    }
    for why, params in refusals.items():
        r = ask(**params)
        assert r.status_code == 400 and why in r.text and "Location" not in r.headers, (why, r.status_code, r.text)
    refused = [e["reason"] for e in provider.ledger if e["action"] == "end_session_refused"]
    assert len(refused) == len(refusals)
    # an expired ID token is still a hint (section 2); POST works as GET does
    expired = provider.sign({**good, "exp": int(time.time()) - 3600})
    assert ask("POST", id_token_hint=expired, post_logout_redirect_uri=back).status_code == 200
    # the confirmation re-checks what it carries: a forged form is refused the same way
    forged = requests.post(
        end + "/confirm",
        data={"id_token_hint": hint, "post_logout_redirect_uri": "http://evil.example/", "logout": "yes"},
        cookies={SID: sid},
        allow_redirects=False,
        timeout=5,
    )
    assert forged.status_code == 400 and "Location" not in forged.headers
    assert sid in provider.sessions

    def confirm(answer: str) -> requests.Response:
        fields = {"id_token_hint": hint, "post_logout_redirect_uri": back, "state": "st-42", "logout": answer}
        return requests.post(end + "/confirm", data=fields, cookies={SID: sid}, allow_redirects=False, timeout=5)

    stay = confirm("no")  # the End-User may decline: sent back all the same, still signed in there
    assert stay.status_code == 302 and query_of(stay.headers["Location"]) == {"state": "st-42"}
    assert sid in provider.sessions
    bye = confirm("yes")
    assert bye.status_code == 302 and bye.headers["Location"] == f"{back}?state=st-42"
    assert sid not in provider.sessions and f"{SID}=;" in bye.headers["Set-Cookie"]


def test_the_client_builds_the_logout_url_from_discovery(make_app: Any, provider: OidcProvider) -> None:
    app = _oidc_app(make_app, provider.issuer, BASE)
    client = OidcClient(app.settings.auth.oidc)
    url = client.end_session_url(id_token="a.b.c")
    assert url is not None and url.startswith(provider.issuer + "/end_session?")
    assert query_of(url) == {
        "client_id": "publisher",
        "id_token_hint": "a.b.c",
        "post_logout_redirect_uri": f"{BASE}/login",
    }
    # no ID token (a session from before migration 0018): no redirect asked, which the provider would refuse
    assert query_of(client.end_session_url(id_token=None) or "") == {"client_id": "publisher"}
    provider.stop()
    down = OidcClient(app.settings.auth.oidc)  # a fresh client: nothing cached
    assert down.end_session_url(id_token="a.b.c") is None


def test_a_password_session_still_logs_out_to_the_login_page(web: Any, provider: OidcProvider) -> None:
    from publisher import accounts
    from publisher.pipeline import workflow
    from publisher.web.security import SESSION_COOKIE

    app = web.app.state.app
    with app.session() as s:
        web.cookies.set(SESSION_COOKIE, accounts.start_session(s, workflow.get_user(s, "admin"), app.settings.web))
    r = web.post("/logout", data={"csrf_token": _csrf(web)})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert not [e for e in provider.ledger if e["action"].startswith("end_session")]


@pytest.mark.browser
def test_oidc_log_out_in_chromium_ends_the_providers_sign_in_too(
    make_app: Any, monkeypatch: pytest.MonkeyPatch, browser: Any
) -> None:
    from channels.sandbox.campus import DEMO_PASSWORD

    monkeypatch.setenv("PUBLISHER_OIDC_CLIENT_SECRET", SECRET)
    sock = free_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    provider = _provider(base)
    provider.start()
    try:
        with live_server(_oidc_app(make_app, provider.issuer, base), sock):
            page = browser.new_page()
            page.goto(f"{base}/login")
            page.click("#sso-oidc")
            page.wait_for_url(f"{provider.issuer}/authorize?*")
            page.fill('input[name="username"]', "li.si")
            page.fill('input[name="password"]', DEMO_PASSWORD)
            page.click("#campus-login")
            page.wait_for_url(f"{base}/review")
            page.goto(f"{base}/login/oidc")  # signed in at the provider: straight back, no form
            page.wait_for_url(f"{base}/review")
            page.click("header form button")  # 退出
            page.wait_for_url(f"{provider.issuer}/end_session?*")
            page.screenshot(path=str(SHOTS / "27-oidc-end-session.png"))
            page.click("#op-logout")
            page.wait_for_url(f"{base}/login")
            assert urlsplit(page.url).path == "/login" and page.locator("#sso-oidc").count() == 1
            page.goto(f"{base}/review")
            assert page.url == f"{base}/login?next=/review"  # our session is gone
            page.click("#sso-oidc")
            page.wait_for_url(f"{provider.issuer}/authorize?*")  # and the provider's: its form again
            assert page.locator('input[name="password"]').count() == 1
            assert [e["uid"] for e in provider.ledger if e["action"] == "end_session"] == ["li.si"]
    finally:
        provider.stop()
