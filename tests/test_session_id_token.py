"""An OIDC session's ID token (``sso_id_token``, migration 0018) lives exactly as long as its session,
however the session ends: a log-out, a new password, a deactivation (ON DELETE CASCADE, both engines)."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from publisher import accounts
from publisher.pipeline import workflow
from publisher.sso.tables import SsoIdToken


def _kept(app: Any) -> list[str]:
    with app.session() as s:
        return sorted(t.id_token for t in s.exec(select(SsoIdToken)))


def test_the_id_token_goes_with_its_session(app: Any) -> None:
    with app.session() as s:
        ed, head = workflow.get_user(s, "ed"), workflow.get_user(s, "head")
        one = accounts.start_session(s, ed, app.settings.web, sso="oidc", id_token="token.of.ed")
        accounts.start_session(s, ed, app.settings.web, sso="oidc", id_token="second.of.ed")
        accounts.start_session(s, head, app.settings.web, sso="oidc", id_token="token.of.head")
        accounts.start_session(s, head, app.settings.web)  # a password session keeps none
    assert _kept(app) == ["second.of.ed", "token.of.ed", "token.of.head"]
    with app.session() as s:
        assert accounts.end_session(s, one) == ("oidc", "token.of.ed")
        assert accounts.end_session(s, one) is None
    assert _kept(app) == ["second.of.ed", "token.of.head"]
    with app.session() as s:
        accounts.set_password(s, name="ed", password="a new long password", actor="test")
        accounts.deactivate_user(s, name="head", actor="test")
    assert _kept(app) == []
