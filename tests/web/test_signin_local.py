"""Local passwords beside campus sign-in: they keep working, can be limited to admins, and every sign-in
(or refusal) lands in the sign-in list."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from publisher import accounts
from publisher.sso.tables import SignIn
from tests.web.conftest import PASSWORD

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


def _web(app):
    from fastapi.testclient import TestClient

    from publisher.web import create_app

    return TestClient(create_app(app), follow_redirects=False)


def _log_in(client, name: str, password: str = PASSWORD):
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return client.post("/login", data={"username": name, "password": password, "csrf_token": token})


def _rows(app) -> list[tuple[str, str, bool]]:
    with app.session() as s:
        return [(r.name, r.method, r.ok) for r in s.exec(select(SignIn).order_by(SignIn.id))]


def test_local_passwords_still_work_and_are_listed(make_app):
    app = make_app()
    with app.session() as s:
        accounts.set_password(s, name="ed", password=PASSWORD, actor="test")
    with _web(app) as c:
        assert _log_in(c, "ed", "wrong password!").status_code == 401
        assert _log_in(c, "ed").status_code == 303
    assert _rows(app) == [("ed", "password", False), ("ed", "password", True)]


def test_local_passwords_can_be_limited_to_admins(make_app):
    app = make_app(auth={"local_passwords": False})
    with app.session() as s:
        for name in ("ed", "admin"):
            accounts.set_password(s, name=name, password=PASSWORD, actor="test")
    with _web(app) as c:
        r = _log_in(c, "ed")
        assert r.status_code == 403 and "统一身份认证" in r.text
        assert c.get("/api/me").status_code == 401
        assert _log_in(c, "admin").status_code == 303
        assert c.get("/api/me").json()["name"] == "admin"
    assert _rows(app) == [("ed", "password", False), ("admin", "password", True)]
