"""The admin's users page: change a role or department by hand, deactivate a user (their session and
tokens answer 401 at once), and the list of sign-ins; nobody else may."""

from __future__ import annotations

import pytest
from sqlmodel import select

from publisher import accounts, sso
from publisher.models import User
from publisher.pipeline import workflow

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


def _user(app, name):
    with app.session() as s:
        return s.exec(select(User).where(User.name == name)).one()


def test_admin_sets_a_role_by_hand_and_deactivates(app, client, login):
    with app.session() as s:
        sso.record(s, name="ed", method="cas", address="10.1.2.3")
        sso.record(s, name="ed", method="oidc", address="10.1.2.3", reason="the ID token was refused: expired")
        token, _ = accounts.create_token(s, user=workflow.get_user(s, "ed"), name="script")
    csrf = login(client, "admin")
    page = client.get("/admin/users")
    assert page.status_code == 200
    assert "最近登录" in page.text and "10.1.2.3" in page.text and "the ID token was refused: expired" in page.text
    r = client.post("/admin/users/ed/set", data={"csrf_token": csrf, "role": "department_head", "department": "人事处"})
    assert r.status_code == 303
    ed = _user(app, "ed")
    assert (ed.role, ed.department, ed.role_source) == ("department_head", "人事处", "admin")
    assert "管理员设置" in client.get("/admin/users").text

    bad = client.post("/admin/users/ed/set", data={"csrf_token": csrf, "role": "editor", "department": ""})
    assert bad.status_code == 422 and _user(app, "ed").role == "department_head"

    from fastapi.testclient import TestClient

    with TestClient(client.app, follow_redirects=False) as ed_browser:
        login(ed_browser, "ed")
        assert ed_browser.get("/api/me").status_code == 200
        r = client.post("/admin/users/ed/deactivate", data={"csrf_token": csrf})
        assert r.status_code == 303 and _user(app, "ed").active is False
        assert ed_browser.get("/api/me").status_code == 401
    assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert "已停用" in client.get("/admin/users").text
    assert client.post("/admin/users/admin/deactivate", data={"csrf_token": csrf}).status_code == 422


def test_only_admins_change_users(app, client, login):
    for who in ("ed", "head", "sec", "viewer"):
        csrf = login(client, who)
        assert client.post("/admin/users/ed2/deactivate", data={"csrf_token": csrf}).status_code == 403
        r = client.post("/admin/users/ed2/set", data={"csrf_token": csrf, "role": "admin"})
        assert r.status_code == 403
        client.cookies.clear()
    assert client.post("/admin/users/ed2/deactivate").status_code == 401
    assert (_user(app, "ed2").active, _user(app, "ed2").role) == (True, "editor")
