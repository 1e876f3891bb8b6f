"""``publisher user set / deactivate / signins`` and ``publisher token create / list / revoke``, run as
the real command; what they did is checked through the web app's answers to the tokens and sessions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from publisher import accounts
from publisher.models import User
from tests.clirun import Cli, _settings_for, setup_store

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


@pytest.fixture
def cli(tmp_path: Path, store_url: str) -> Cli:
    c = Cli(tmp_path, store_url)
    setup_store(c)
    return c


@pytest.fixture
def web(cli: Cli) -> Any:
    from fastapi.testclient import TestClient

    from publisher.app import open_app
    from publisher.web import create_app

    app = open_app(_settings_for(cli))
    with TestClient(create_app(app), follow_redirects=False) as c:
        c.publisher_app = app
        yield c
    app.close()


def test_token_create_list_revoke(cli: Cli, web: Any) -> None:
    r = cli.ok("token", "create", "ed", "--read-only", "--label", "周报脚本")
    token = r.last_line
    assert token.startswith("pub_") and "read-only" in r.out
    bearer = {"Authorization": f"Bearer {token}"}
    assert web.get("/api/me", headers=bearer).json()["name"] == "ed"
    refused = web.post("/api/items/999/submit", headers=bearer)
    assert refused.status_code == 403 and "read-only" in refused.json()["detail"]
    rw = cli.ok("token", "create", "ed").last_line
    assert web.post("/api/items", headers={"Authorization": f"Bearer {rw}"}, json={}).status_code == 422
    listing = cli.ok("token", "list", "ed").out
    assert "周报脚本" in listing and "read-only" in listing and "read-write" in listing and token not in listing
    token_id = r.out.split("API token ")[1].split()[0]
    assert cli.ok("token", "revoke", token_id).out.strip() == f"API token {token_id} revoked"
    assert web.get("/api/me", headers=bearer).status_code == 401
    bad = cli("token", "revoke", "999")
    assert bad.code != 0 and "no API token 999" in bad.err


def test_user_set_overrides_and_validates(cli: Cli, web: Any) -> None:
    assert "viewer" in cli.ok("user", "set", "ed", "--role", "viewer").out
    with web.publisher_app.session() as s:
        ed = s.exec(select(User).where(User.name == "ed")).one()
        assert (ed.role, ed.role_source) == ("viewer", "admin")
    for args, why in (
        (("--role", "boss"), "unknown role"),
        (("--department", "不存在的处"), "unknown department"),
        ((), "say what to change"),
    ):
        r = cli("user", "set", "ed", *args)
        assert r.code != 0 and why in r.err and len(r.err.strip().splitlines()) == 1


def test_deactivate_kills_sessions_and_tokens_at_once(cli: Cli, web: Any) -> None:
    app = web.publisher_app
    token = cli.ok("token", "create", "ed").last_line
    with app.session() as s:
        session_token = accounts.start_session(s, s.exec(select(User).where(User.name == "ed")).one(), app.settings.web)
    web.cookies.set("publisher_session", session_token)
    assert web.get("/api/me").status_code == 200
    cli.ok("user", "deactivate", "ed")
    assert web.get("/api/me").status_code == 401
    web.cookies.clear()
    assert web.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_signins_lists_refusals_with_their_reason(cli: Cli, web: Any) -> None:
    from publisher import sso

    with web.publisher_app.session() as s:
        sso.record(s, name="ed", method="cas", address="10.0.0.7")
        sso.record(s, name="zhang.san", method="oidc", address="10.0.0.8", reason="the ID token's nonce is wrong")
    out = cli.ok("user", "signins").out
    assert "ed" in out and "cas" in out and "refused: the ID token's nonce is wrong" in out
    assert "zhang.san" not in cli.ok("user", "signins", "ed").out
