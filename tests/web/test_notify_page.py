"""The notification page (通知设置): each person's choice of transport, immediate or daily digest and quiet
hours, over ``outbox.set_pref`` (what ``publisher notify set`` calls); staff set their own, an admin
anyone's. On both engines: the choice is a row of the store."""

from __future__ import annotations

import html
from typing import Any

import pytest
from sqlmodel import select

from publisher.models import AuditLog
from publisher.pipeline.workflow import outbox

TRANSPORTS = {
    "email": {"host": "127.0.0.1", "port": 2525, "security": "none", "sender": "xxgk@example.edu.cn"},
    "wecom": {"key_env": "PUBLISHER_TEST_WECOM_KEY"},
}


@pytest.fixture
def app(make_app: Any) -> Any:
    return make_app(notify={"transports": TRANSPORTS, "digest_hour": 8})


def _pref(app: Any, name: str) -> Any:
    with app.session() as s:
        p = outbox.pref_of(s, user=name)
        return None if p is None else (p.transport, p.address, p.mode, p.quiet_start, p.quiet_end)


def _audits(app: Any) -> list[tuple[str, str, int]]:
    with app.session() as s:
        rows = s.exec(select(AuditLog).where(AuditLog.action == "notify preference").order_by(AuditLog.id))
        return [(a.actor, a.entity, a.entity_id) for a in rows]


def test_an_editor_sets_their_own_choice_and_sees_it_again(app: Any, client: Any, login: Any) -> None:
    csrf = login(client, "ed")
    page = client.get("/notify")
    assert page.status_code == 200
    for said in ("通知设置", "电子邮件", "企业微信", "不通知", "每日汇总（8:00）", "尚未设置"):
        assert said in page.text, said
    assert "钉钉</label>" not in page.text  # only the configured transports (and "none") are offered
    form = {
        "csrf_token": csrf,
        "transport": "email",
        "address": " liming@example.edu.cn ",
        "mode": "digest",
        "quiet_start": "22:00",
        "quiet_end": "07:30",
    }
    r = client.post("/notify", data=form)
    assert r.status_code == 303 and r.headers["location"] == "/notify?saved=1"
    assert _pref(app, "ed") == ("email", "liming@example.edu.cn", "digest", "22:00", "07:30")
    with app.session() as s:
        ed_id = outbox.pref_of(s, user="ed").user_id  # type: ignore[union-attr]
    assert _audits(app) == [("ed", "user", ed_id)]
    again = client.get("/notify?saved=1").text
    assert "已保存" in again and 'value="liming@example.edu.cn"' in again
    assert 'value="email" checked' in again and 'value="digest" checked' in again
    assert 'name="quiet_start" value="22:00"' in again and 'name="quiet_end" value="07:30"' in again
    # back to immediate, no quiet hours; then not told at all
    client.post("/notify", data={**form, "mode": "immediate", "quiet_start": "", "quiet_end": ""})
    assert _pref(app, "ed") == ("email", "liming@example.edu.cn", "immediate", None, None)
    client.post("/notify", data={"csrf_token": csrf, "transport": "none"})
    assert _pref(app, "ed") == ("none", "", "immediate", None, None)


def test_the_page_shows_what_the_cli_function_set(app: Any, client: Any, login: Any) -> None:
    with app.session() as s:
        outbox.set_pref(
            s, user="head", transport="wecom", address="wanghong", quiet="23:00-06:00", known=TRANSPORTS, actor="cli"
        )
    login(client, "head")
    page = client.get("/notify?lang=en").text
    assert "Notifications" in page and 'value="wanghong"' in page and 'value="wecom" checked' in page
    assert 'value="immediate" checked' in page and 'name="quiet_start" value="23:00"' in page


@pytest.mark.parametrize(
    ("form", "zh", "en"),
    [
        ({"transport": "email", "address": ""}, "email 需要填写地址", "transport 'email' needs --address"),
        ({"transport": "dingtalk", "address": "x"}, "transport 'dingtalk' is not configured", "one of: email, wecom"),
        ({"transport": "wecom", "address": "x", "quiet_start": "22:00"}, "开始和结束都要填", "not a local time"),
        ({"transport": "wecom", "address": "x", "quiet_start": "22:00", "quiet_end": "22:00"}, "不能相同", "same"),
        ({"transport": "wecom", "address": "x", "mode": "hourly"}, "mode 'hourly'", "immediate, digest"),
    ],
)
def test_a_bad_choice_comes_back_in_the_form_with_the_reason(
    app: Any, client: Any, login: Any, form: dict[str, str], zh: str, en: str
) -> None:
    csrf = login(client, "ed")
    before = _pref(app, "ed")
    r = client.post("/notify", data={"csrf_token": csrf, **form})
    assert r.status_code == 422
    text = html.unescape(r.text)
    assert zh in text and en in text, text[text.find('id="notify-error"') :][:300]
    assert 'id="notify-form"' in text  # the form again, as typed
    if form.get("address"):
        assert f'value="{form["address"]}"' in text
    assert _pref(app, "ed") == before and not _audits(app)


def test_an_admin_sets_anyones_choice_and_nobody_else_may(app: Any, client: Any, login: Any) -> None:
    csrf = login(client, "admin")
    users = client.get("/admin/users").text
    assert 'href="/notify?user=ed"' in users
    page = client.get("/notify?user=ed").text
    assert "通知设置 · ed" in page and 'name="user" value="ed"' in page
    r = client.post("/notify", data={"csrf_token": csrf, "user": "ed", "transport": "wecom", "address": "liming"})
    assert r.status_code == 303 and r.headers["location"] == "/notify?saved=1&user=ed"
    assert _pref(app, "ed") == ("wecom", "liming", "immediate", None, None)
    assert _audits(app)[-1][0] == "admin"
    assert _pref(app, "admin") is None  # the admin's own choice is untouched
    assert client.get("/notify?user=nobody").status_code == 404
    # an editor may not, neither to read nor to change; nothing changes
    client.cookies.clear()
    csrf = login(client, "ed")
    assert client.get("/notify?user=head").status_code == 403
    r = client.post("/notify", data={"csrf_token": csrf, "user": "head", "transport": "wecom", "address": "x"})
    assert r.status_code == 403
    assert _pref(app, "head") is None and len(_audits(app)) == 1
    # naming oneself is one's own page
    assert client.get("/notify?user=ed").status_code == 200


def test_viewers_are_never_told_so_they_have_no_page(app: Any, client: Any, login: Any) -> None:
    login(client, "viewer")
    assert client.get("/notify").status_code == 403
    assert 'href="/notify"' not in client.get("/dashboard").text
    client.cookies.clear()
    login(client, "sec")
    assert 'href="/notify"' in client.get("/dashboard").text
