"""CAS sign-in against the CAS sandbox over real HTTP: the redirect, ``p3/serviceValidate``, the attribute
mapping, single logout, and every refusal (forged, replayed, expired, another service's ticket)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlmodel import select

from channels.sandbox.cas import CasServer
from publisher import accounts
from publisher.models import User
from publisher.sso import SignInRefused
from publisher.sso.cas import CasClient
from publisher.sso.tables import SignIn
from publisher.web.security import SESSION_COOKIE
from tests.web.signin_helpers import MAPPING, campus_form, free_socket, live_server, path_of, query_of

# on both engines: the used-ticket table's replay check is a primary key and a savepoint


@pytest.fixture
def cas_server() -> Iterator[CasServer]:
    server = CasServer()
    server.start()
    yield server
    server.stop()


def _auth(cas_server: CasServer, base: str = "http://testserver", version: int = 3, **more: Any) -> dict[str, Any]:
    return {
        "cas": {"server_url": cas_server.cas_url, "version": version, "service_base_url": base},
        "mapping": MAPPING,
        **more,
    }


@pytest.fixture
def cas_app(make_app: Any, cas_server: CasServer) -> Any:
    return make_app(auth=_auth(cas_server))


@pytest.fixture
def cas_client(cas_app: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from publisher.web import create_app

    with TestClient(create_app(cas_app), follow_redirects=False) as c:
        yield c


def _sign_in(client: Any, cas_server: CasServer, uid: str) -> tuple[Any, str]:
    r = client.get("/login/cas?next=/dashboard")
    assert r.status_code == 303
    assert r.headers["location"].startswith(cas_server.cas_url + "/login?service=")
    service = query_of(r.headers["location"])["service"]
    assert service == "http://testserver/login/cas/callback"
    back = campus_form(cas_server.cas_url + "/login", {"service": service}, uid)
    assert back.status_code == 302, back.text
    return client.get(path_of(back.headers["Location"])), back.headers["Location"]


def _user(app: Any, name: str) -> User:
    with app.session() as s:
        return s.exec(select(User).where(User.name == name)).one()


def _sign_ins(app: Any) -> list[SignIn]:
    with app.session() as s:
        return list(s.exec(select(SignIn).order_by(SignIn.id)))


def test_first_sign_in_creates_the_mapped_user_and_starts_a_session(cas_app, cas_client, cas_server):
    r, _ = _sign_in(cas_client, cas_server, "zhang.san")
    assert r.status_code == 303 and r.headers["location"] == "/dashboard"
    assert SESSION_COOKIE in r.cookies or cas_client.cookies.get(SESSION_COOKIE)
    me = cas_client.get("/api/me")
    assert me.status_code == 200 and me.json()["name"] == "zhang.san"
    user = _user(cas_app, "zhang.san")
    assert (user.role, user.department, user.display_name, user.role_source) == (
        "editor",
        "人事处",
        "张三",
        "directory",
    )
    last = _sign_ins(cas_app)[-1]
    assert (last.name, last.method, last.ok) == ("zhang.san", "cas", True)
    assert [e["action"] for e in cas_server.ledger if e["action"] == "validate"] == ["validate"]


def test_no_rule_matches_a_student_who_becomes_a_viewer(cas_app, cas_client, cas_server):
    r, _ = _sign_in(cas_client, cas_server, "wang.wu")
    assert r.status_code == 303
    assert (_user(cas_app, "wang.wu").role, _user(cas_app, "wang.wu").department) == ("viewer", "教务处")


def test_cas_2_validates_without_attributes_so_the_default_role_holds(make_app, cas_server):
    from fastapi.testclient import TestClient

    from publisher.web import create_app

    app = make_app(auth=_auth(cas_server, version=2))
    with TestClient(create_app(app), follow_redirects=False) as c:
        r, _ = _sign_in(c, cas_server, "zhang.san")
    assert r.status_code == 303
    assert (_user(app, "zhang.san").role, _user(app, "zhang.san").department) == ("viewer", None)
    assert cas_server.ledger[-1]["attributes"] is False


def test_a_forged_ticket_is_refused_by_the_server(cas_app, cas_client, cas_server):
    r = cas_client.get("/login/cas/callback?ticket=ST-" + "x" * 40)
    assert r.status_code == 403 and "INVALID_TICKET" in r.text
    assert SESSION_COOKIE not in r.cookies
    assert _sign_ins(cas_app)[-1].ok is False and "INVALID_TICKET" in _sign_ins(cas_app)[-1].reason


def test_something_that_is_not_a_service_ticket_never_reaches_the_server(cas_app, cas_client, cas_server):
    for bad in ("TGT-abc", "ST-" + "a" * 300, "", "ST-中文"):
        r = cas_client.get("/login/cas/callback", params={"ticket": bad})
        assert r.status_code == 403, bad
    assert not [e for e in cas_server.ledger if e["action"].startswith("validate")]


def test_a_replayed_ticket_is_refused_here_before_the_server_is_asked(cas_app, cas_client, cas_server):
    r, back = _sign_in(cas_client, cas_server, "zhang.san")
    assert r.status_code == 303
    cas_client.cookies.clear()
    again = cas_client.get(path_of(back))
    assert again.status_code == 403 and "used already" in again.text
    assert SESSION_COOKIE not in again.cookies
    assert len([e for e in cas_server.ledger if e["action"].startswith("validate")]) == 1


def test_the_server_itself_accepts_a_ticket_once_even_when_the_first_attempt_failed(cas_app, cas_server):
    client = CasClient(cas_app.settings.auth.cas)
    ticket = cas_server.ticket_for("zhang.san", client.service)
    assert client.validate(ticket).name == "zhang.san"
    with pytest.raises(SignInRefused, match="INVALID_TICKET"):
        client.validate(ticket)
    # the spec: one validation attempt, successful or not
    other = cas_server.ticket_for("zhang.san", "http://elsewhere.example/cb")
    with pytest.raises(SignInRefused, match="INVALID_SERVICE"):
        client.validate(other)
    # …so the right service cannot use it after a wrong one tried
    elsewhere = cas_app.settings.auth.cas.model_copy(update={"service_base_url": "http://elsewhere.example"})
    assert CasClient(elsewhere).service != "http://elsewhere.example/cb"
    right = cas_server.ticket_for("zhang.san", CasClient(elsewhere).service)
    with pytest.raises(SignInRefused, match="INVALID_SERVICE"):
        client.validate(right)
    with pytest.raises(SignInRefused, match="INVALID_TICKET"):
        CasClient(elsewhere).validate(right)


def test_a_ticket_issued_for_another_service_is_refused(cas_app, cas_client, cas_server):
    ticket = cas_server.ticket_for("zhang.san", "http://portal.example.edu.cn/cas-callback")
    r = cas_client.get("/login/cas/callback", params={"ticket": ticket})
    assert r.status_code == 403 and "INVALID_SERVICE" in r.text
    assert cas_client.get("/api/me").status_code == 401


def test_an_expired_ticket_is_refused(cas_app, cas_client, cas_server):
    cas_server.ticket_seconds = 0.2
    ticket = cas_server.ticket_for("zhang.san", "http://testserver/login/cas/callback")
    time.sleep(0.4)
    r = cas_client.get("/login/cas/callback", params={"ticket": ticket})
    assert r.status_code == 403 and "expired" in r.text


def test_an_admins_role_survives_the_next_sign_in(cas_app, cas_client, cas_server):
    _sign_in(cas_client, cas_server, "zhang.san")
    with cas_app.session() as s:
        accounts.set_user(s, name="zhang.san", role="viewer", actor="admin")
    cas_client.cookies.clear()
    r, _ = _sign_in(cas_client, cas_server, "zhang.san")
    assert r.status_code == 303
    user = _user(cas_app, "zhang.san")
    assert (user.role, user.role_source) == ("viewer", "admin")


def test_the_directory_changes_a_mapped_users_role_at_the_next_sign_in(cas_app, cas_client, cas_server):
    _sign_in(cas_client, cas_server, "zhang.san")
    assert _user(cas_app, "zhang.san").role == "editor"
    cas_server.accounts["zhang.san"].attributes["memberOf"][:] = ["xxgk-heads"]
    cas_client.cookies.clear()
    _sign_in(cas_client, cas_server, "zhang.san")
    assert _user(cas_app, "zhang.san").role == "department_head"


def test_a_deactivated_user_is_refused_and_their_session_dies_at_once(cas_app, cas_client, cas_server):
    _sign_in(cas_client, cas_server, "zhang.san")
    assert cas_client.get("/api/me").status_code == 200
    with cas_app.session() as s:
        accounts.deactivate_user(s, name="zhang.san", actor="admin")
    assert cas_client.get("/api/me").status_code == 401
    cas_client.cookies.clear()
    r, _ = _sign_in(cas_client, cas_server, "zhang.san")
    assert r.status_code == 403 and "deactivated" in r.text


def test_single_logout_ends_the_session_and_logout_ends_the_campus_session(make_app, cas_server):
    sock = free_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = make_app(auth=_auth(cas_server, base=base))
    with live_server(app, sock):
        browser = requests.Session()
        r = browser.get(base + "/login/cas", allow_redirects=False)
        service = query_of(r.headers["location"])["service"]
        back = browser.post(
            cas_server.cas_url + "/login",
            data={"service": service, "username": "zhang.san", "password": "campus-demo-2026"},
            allow_redirects=False,
        )
        browser.get(back.headers["Location"], allow_redirects=False)
        assert browser.get(base + "/api/me").status_code == 200
        # the CAS server's logout (another application's "log out" button) POSTs logoutRequest to us
        out = browser.get(cas_server.cas_url + "/logout", allow_redirects=False)
        assert out.status_code == 200
        slo = [e for e in cas_server.ledger if e["action"] == "single_logout"]
        assert slo == [{"action": "single_logout", "service": service, "status": 200}]
        assert browser.get(base + "/api/me").status_code == 401

        # and our /logout sends the browser to the CAS server's logout
        browser = requests.Session()
        r = browser.get(base + "/login/cas", allow_redirects=False)
        back = browser.post(
            cas_server.cas_url + "/login",
            data={"service": service, "username": "zhang.san", "password": "campus-demo-2026"},
            allow_redirects=False,
        )
        browser.get(back.headers["Location"], allow_redirects=False)
        with app.session() as s:
            token = browser.cookies.get(SESSION_COOKIE)
            csrf = accounts.session_caller(s, token).csrf
        r = browser.post(base + "/logout", data={"csrf_token": csrf}, allow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith(cas_server.cas_url + "/logout?service=")


def test_a_logout_request_that_is_not_one_ends_nothing(cas_app, cas_client, cas_server):
    _sign_in(cas_client, cas_server, "zhang.san")
    bomb = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    for body in ("", "not xml", bomb, "<samlp:LogoutRequest xmlns:samlp='urn:oasis:names:tc:SAML:2.0:protocol'/>"):
        assert cas_client.post("/login/cas/callback", data={"logoutRequest": body}).status_code == 400
    unknown = (
        "<samlp:LogoutRequest xmlns:samlp='urn:oasis:names:tc:SAML:2.0:protocol'>"
        "<samlp:SessionIndex>ST-unknown</samlp:SessionIndex></samlp:LogoutRequest>"
    )
    r = cas_client.post("/login/cas/callback", data={"logoutRequest": unknown})
    assert r.status_code == 200 and r.text.startswith("0 ")
    assert cas_client.get("/api/me").status_code == 200


def test_campus_sign_in_that_is_not_configured_answers_404(client):
    assert client.get("/login/cas").status_code == 404
    assert client.get("/login/oidc").status_code == 404


def test_two_requests_with_one_ticket_at_the_same_moment_sign_in_once(cas_app):
    import threading

    from publisher.sso import cas

    outcomes: list[str] = []
    first_in = threading.Event()

    def second() -> None:
        first_in.wait(5)
        try:
            with cas_app.session() as s:
                cas.burn(s, "ST-same-moment")
            outcomes.append("burnt")
        except SignInRefused:
            outcomes.append("refused")

    t = threading.Thread(target=second)
    t.start()
    with cas_app.session() as s:
        cas.burn(s, "ST-same-moment")
        first_in.set()
        time.sleep(0.5)  # the second request is now waiting on this one's row (or its lock)
    t.join(10)
    assert outcomes == ["refused"]
