"""Log-in, sessions, CSRF, throttling, API tokens, and `publisher user passwd`."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from publisher import accounts
from publisher.models import Item, LoginFailure, User, WebSession
from publisher.web.security import SESSION_COOKIE
from tests.web.conftest import PASSWORD, csrf_of

sqlite_only = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


def _set_password(app, name: str, password: str = PASSWORD) -> None:
    with app.session() as s:
        accounts.set_password(s, name=name, password=password, actor="test")


def _login_form(client):
    r = client.get("/login")
    assert r.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
    return token


def test_log_in_sets_a_hardened_session_cookie_and_log_out_ends_it(app, client):
    _set_password(app, "ed")
    with app.session() as s:
        stored = s.exec(select(User).where(User.name == "ed")).one().password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    token = _login_form(client)
    r = client.post("/login", data={"username": "ed", "password": PASSWORD, "csrf_token": token, "next": "/items"})
    assert r.status_code == 303 and r.headers["location"] == "/items"
    cookie = r.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert "Secure" not in cookie
    page = client.get("/items")
    assert page.status_code == 200
    with app.session() as s:  # only the token's hash is stored
        assert client.cookies[SESSION_COOKIE] not in {w.token_hash for w in s.exec(select(WebSession))}
    r = client.post("/logout", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 303
    client.cookies.set(SESSION_COOKIE, page.request.headers["cookie"].split(f"{SESSION_COOKIE}=")[1].split(";")[0])
    assert client.get("/items").status_code == 303  # the old cookie no longer works


@sqlite_only
def test_secure_cookie_when_configured(make_app):
    from fastapi.testclient import TestClient

    from publisher.web import create_app

    app = make_app(web={"secure_cookies": True})
    _set_password(app, "ed")
    with TestClient(create_app(app), base_url="https://testserver", follow_redirects=False) as client:
        token = _login_form(client)
        r = client.post("/login", data={"username": "ed", "password": PASSWORD, "csrf_token": token})
        assert "Secure" in r.headers["set-cookie"]


@sqlite_only
def test_open_redirect_after_log_in_is_refused(app, client):
    _set_password(app, "ed")
    token = _login_form(client)
    r = client.post(
        "/login", data={"username": "ed", "password": PASSWORD, "csrf_token": token, "next": "//evil.example/x"}
    )
    assert r.headers["location"] == "/"


@sqlite_only
def test_log_in_form_without_its_csrf_token_is_refused(app, client):
    _set_password(app, "ed")
    _login_form(client)
    r = client.post("/login", data={"username": "ed", "password": PASSWORD, "csrf_token": "forged"})
    assert r.status_code == 403 and SESSION_COOKIE not in r.cookies


@sqlite_only
def test_a_thousand_wrong_passwords_are_throttled(app, client):
    _set_password(app, "ed")
    token = _login_form(client)
    codes = [
        client.post("/login", data={"username": "ed", "password": f"guess{i}", "csrf_token": token}).status_code
        for i in range(1000)
    ]
    assert codes[:10] == [401] * 10
    assert set(codes[10:]) == {429}
    # throttled attempts are not even checked: the right password is refused too until the window passes
    r = client.post("/login", data={"username": "ed", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 429 and SESSION_COOKIE not in r.cookies
    with app.session() as s:
        assert s.exec(select(WebSession)).all() == []
        assert len(s.exec(select(LoginFailure)).all()) == 20  # 10 per account + 10 per address, no more


@sqlite_only
def test_per_address_throttle_covers_many_accounts(make_app):
    from fastapi.testclient import TestClient

    from publisher.web import create_app

    app = make_app(web={"login_failures_per_address": 5})
    with TestClient(create_app(app), follow_redirects=False) as client:
        token = _login_form(client)
        codes = [
            client.post("/login", data={"username": f"u{i}", "password": "x", "csrf_token": token}).status_code
            for i in range(8)
        ]
    assert codes == [401] * 5 + [429] * 3


def test_forged_form_without_csrf_and_another_users_session(app, client, login):
    ed_csrf = login(client, "ed")
    ed_cookie = client.cookies[SESSION_COOKIE]
    form = {"title": "伪造", "body_markdown": "x", "category": "公告公示", "channels": "mem", "when": "none"}
    assert client.post("/items/new", data=form).status_code == 403
    assert client.post("/items/new", data={**form, "csrf_token": "wrong"}).status_code == 403
    # head's session with ed's CSRF token (a token stolen from another user's page) is refused
    client.cookies.clear()
    login(client, "ed2")
    assert client.post("/items/new", data={**form, "csrf_token": ed_csrf}).status_code == 403
    with app.session() as s:
        assert s.exec(select(Item)).all() == []
    # and a made-up session cookie is no session at all
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, ed_cookie[::-1])
    assert client.post("/items/new", data={**form, "csrf_token": ed_csrf}).status_code == 401


def test_api_tokens_create_use_and_revoke(app, client, login):
    csrf = login(client, "ed")
    r = client.post("/tokens", data={"csrf_token": csrf, "name": "nightly import"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    token = re.search(r'id="new-token">([^<]+)<', r.text).group(1)
    with app.session() as s:
        rows = accounts.tokens_of(s, s.exec(select(User).where(User.name == "ed")).one())
    assert token not in {row.token_hash for row in rows} and rows[0].prefix == token[:8]
    client.cookies.clear()
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/me", headers=bearer).json()["name"] == "ed"
    # a bearer request carries no cookie, so no CSRF token is needed for it
    r = client.post(
        "/api/items",
        headers=bearer,
        json={"title": "脚本", "body_markdown": "x", "category": "公告公示", "channels": ["mem"]},
    )
    assert r.status_code == 201
    csrf = login(client, "ed")
    assert client.post(f"/tokens/{rows[0].id}/revoke", data={"csrf_token": csrf}).status_code == 303
    client.cookies.clear()
    r = client.get("/api/me", headers=bearer)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/me", headers={"Authorization": "Bearer nonsense"}).status_code == 401


@sqlite_only
def test_session_calls_to_the_api_need_the_csrf_header(app, client, login):
    csrf = login(client, "ed")
    body = {"title": "会话", "body_markdown": "x", "category": "公告公示", "channels": ["mem"]}
    assert client.post("/api/items", json=body).status_code == 403
    assert client.post("/api/items", json=body, headers={"X-CSRF-Token": csrf}).status_code == 201


@sqlite_only
def test_cli_user_passwd_from_stdin(app, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from publisher.cli import app as cli

    settings = tmp_path / "settings.toml"
    settings.write_text(f'database_url = "{app.settings.database_url}"\ndata_dir = "{tmp_path}"\n', encoding="utf-8")
    r = CliRunner().invoke(
        cli, ["--settings", str(settings), "user", "passwd", "ed", "--password-stdin"], input=PASSWORD + "\n"
    )
    assert r.exit_code == 0, r.output
    with app.session() as s:
        user = accounts.authenticate(s, name="ed", password=PASSWORD, address="t", web=app.settings.web)
    assert user is not None and user.name == "ed"
    r = CliRunner().invoke(
        cli, ["--settings", str(settings), "user", "passwd", "ed", "--password-stdin"], input="short\n"
    )
    assert r.exit_code != 0


@sqlite_only
def test_a_failed_log_in_keeps_the_user_name_but_never_the_password(app, client):
    _set_password(app, "ed")
    token = _login_form(client)
    r = client.post("/login", data={"username": "ed", "password": "wrong password 123", "csrf_token": token})
    assert r.status_code == 401 and "用户名或密码错误" in r.text
    assert re.search(r'<input name="username" value="ed"', r.text)
    assert "wrong password 123" not in r.text
    assert re.search(r'<input name="password" type="password"[^>]*autofocus', r.text)  # the field to fill in next
    # what was typed is shown as text, never as markup
    r = client.post("/login", data={"username": '"><script>x</script>', "password": "x", "csrf_token": token})
    assert r.status_code == 401 and "<script>x</script>" not in r.text and "&#34;&gt;&lt;script&gt;" in r.text
