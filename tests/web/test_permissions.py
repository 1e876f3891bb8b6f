"""Who may use which route: every route × every role (and another department's users, and nobody).

Each route is one test case; inside it every caller is tried. A caller who may not use the route
gets 403 (401 or a redirect to the log-in page when not logged in) and nothing changes; a caller
who may gets a success, each on a fresh item so one caller's change never hides another's. A caller
who passes the role gate but may not see the item (another department's editor or head) gets 404,
exactly as for an item that does not exist: ids are sequential, so a 403 would tell who has what.
Role gating does not depend on the database engine, so this runs on SQLite only.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlmodel import select

from publisher import accounts
from publisher.models import AuditLog, Delivery, DeliveryStatus
from publisher.pipeline import workflow
from tests.web.conftest import make_item

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)

#: the callers of the matrix: user name (None = not logged in)
CALLERS = ["ed", "ed2", "head", "head2", "sec", "admin", "viewer", None]
ALL = {"ed", "ed2", "head", "head2", "sec", "admin", "viewer"}
STAFF = ALL - {"viewer"}
WRITERS = {"ed", "ed2", "head", "head2", "admin"}
# on an item of 校长办公室: its editor and head, the confidentiality reviewer and the admin
ITEM_STAFF = {"ed", "head", "sec", "admin"}
ITEM_WRITERS = {"ed", "head", "admin"}
# on an item of 校长办公室, those of 人事处 who pass a route's role gate: they are told nothing exists
OTHER_DEPT = {"ed2", "head2"}
OTHER_HEAD = {"head2"}


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def _failed_delivery(app: Any) -> dict[str, Any]:
    item = make_item(app, stage="scheduled")
    with app.session() as s:
        d = s.exec(select(Delivery).where(Delivery.item_id == item)).one()
        d.status, d.last_error = DeliveryStatus.FAILED, "scripted"
        return {"item": item, "delivery": d.id}


def _media(app: Any, who: str) -> dict[str, Any]:
    from publisher.pipeline import content

    path = app.settings.media_dir.parent / "upload.png"
    path.write_bytes(_png())
    stored = content.store_file(path, media_dir=app.settings.media_dir, role="image", max_bytes=10**6)
    if who:  # a fresh upload is its uploader's department's (the writers'; the others cannot upload)
        from publisher.web import compose

        with app.session() as s:
            compose.record_upload(app.ctx, stored.sha256, workflow.get_user(s, who))
    return {"sha": stored.sha256}


def _feed(app: Any, who: str) -> dict[str, Any]:
    if not who:
        return {"token": ""}
    with app.session() as s:  # the feed takes its own read-only token, never an API token
        return {"token": accounts.new_feed_token(s, user=workflow.get_user(s, who))}


@dataclass
class Route:
    method: str
    path: str
    allowed: set[str]
    setup: Callable[[Any, str], dict[str, Any]] = lambda app, who: {}
    data: Any = None
    json: Any = None
    files: Any = None
    api: bool = False
    ok: tuple[int, ...] = (200, 201, 303)
    id: str = field(default="")
    hidden: set[str] = field(default_factory=set)  # callers answered 404, as for a missing item
    #: fields a page hands out before its form is sent (the public form's token), read with the client
    prepare: Callable[[Any], dict[str, str]] | None = None


def _item(stage: str) -> Callable[[Any, str], dict[str, Any]]:
    return lambda app, who: {"item": make_item(app, stage=stage)}


#: a body the privacy check has one finding in (a mobile number): finding 1 of its version
PRIVATE = "联系人：张老师，手机 13912345678"


def _private(stage: str, *, unchecked: bool = False) -> Callable[[Any, str], dict[str, Any]]:
    """An item with a privacy finding; ``unchecked``: as if stored before the check existed."""

    def setup(app: Any, who: str) -> dict[str, Any]:
        from publisher.models import ItemVersion, PrivacyFinding

        item = make_item(app, stage=stage, body=PRIVATE)
        if unchecked:
            with app.session() as s:
                for f in s.exec(select(PrivacyFinding).where(PrivacyFinding.item_id == item)):
                    s.delete(f)
                for v in s.exec(select(ItemVersion).where(ItemVersion.item_id == item)):
                    v.privacy_checked_at = None
        return {"item": item}

    return setup


#: a one-row ledger CSV (row 2) that the default test app accepts
LEDGER_CSV = (
    "title,category,department,channel,published_at,url\r\n矩阵导入,公告公示,校长办公室,mem,2026-01-05 09:00,\r\n"
).encode("utf-8-sig")


def _kept_csv(app: Any, who: str) -> dict[str, Any]:
    from publisher.counting import imports

    return {"sha": imports.keep(app.settings, LEDGER_CSV)}


def _token_of(app: Any, who: str) -> dict[str, Any]:
    with app.session() as s:
        tok, row = accounts.create_token(s, user=workflow.get_user(s, who), name="matrix")
    return {"token": tok, "token_id": row.id}


COMPOSE_FORM = {
    "title": "矩阵测试",
    "body_markdown": "正文",
    "category": "公告公示",
    "department": "校长办公室",
    "channels": "mem",
    "when": "none",
    "action": "draft",
}
API_ITEM = {
    "title": "矩阵测试",
    "body_markdown": "正文",
    "category": "公告公示",
    "channels": ["mem"],
    "department": "校长办公室",
}


def _request(app: Any, who: str) -> dict[str, Any]:
    from publisher.counting import registers

    with app.session() as s:
        r = registers.add_request(s, app.settings, applicant="张三", subject="招生计划", via="email", actor="admin")
        return {"request": r.id}


def _complaint(app: Any, who: str) -> dict[str, Any]:
    from publisher.counting import registers

    with app.session() as s:
        c = registers.add_complaint(s, app.settings, complainant="王五", subject="未公开", via="phone", actor="admin")
        return {"complaint": c.id}


def _apply_token(client: Any) -> dict[str, str]:
    """The public form's token, from the form (its cookie stays in the client)."""
    import re

    page = client.get("/apply")
    return {"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)}


#: the public pages: anyone, signed in or not
PUBLIC = ALL | {None}
APPLY_FORM = {"applicant": "赵六", "contact": "zhao@example.com", "subject": "招生计划"}

ROUTES = [
    Route("GET", "/", ALL),
    Route("GET", "/items", STAFF),
    Route("GET", "/items/new", WRITERS),
    Route("POST", "/items/new", {"ed", "head", "admin"}, data=COMPOSE_FORM),
    Route("POST", "/preview", WRITERS, data=COMPOSE_FORM),
    Route("POST", "/upload", WRITERS, files={"file": ("a.png", _png(), "image/png")}),
    Route("GET", "/items/{item}", ITEM_STAFF, _item("draft"), hidden=OTHER_DEPT),
    Route("GET", "/items/{item}/edit", ITEM_WRITERS, _item("draft"), hidden=OTHER_DEPT),
    Route("POST", "/items/{item}/edit", ITEM_WRITERS, _item("draft"), data=COMPOSE_FORM, hidden=OTHER_DEPT),
    Route("POST", "/items/{item}/submit", ITEM_WRITERS, _item("draft"), hidden=OTHER_DEPT),
    Route("POST", "/items/{item}/recall", ITEM_WRITERS, _item("submitted"), hidden=OTHER_DEPT),
    Route(
        "POST",
        "/items/{item}/review",
        {"head"},
        _item("submitted"),
        data={"decision": "approve"},
        id="review-1",
        hidden=OTHER_HEAD,
    ),
    Route(
        "POST",
        "/items/{item}/review",
        {"sec"},
        _item("dept_approved"),
        data={"decision": "approve"},
        id="review-2",
        hidden=OTHER_HEAD,
    ),
    Route(
        "POST", "/items/{item}/schedule", ITEM_STAFF, _item("draft"), data={"at": "2099-01-01T09:00"}, hidden=OTHER_DEPT
    ),
    Route("POST", "/items/{item}/withdraw", ITEM_STAFF, _item("scheduled"), hidden=OTHER_DEPT),
    Route(
        "POST", "/deliveries/{delivery}/retry", ITEM_STAFF, lambda app, who: _failed_delivery(app), hidden=OTHER_DEPT
    ),
    # the privacy check: clearing is the confidentiality reviewer's or an admin's, masking the item's
    # editors', an admin's or the confidentiality reviewer's (the service functions' own rules)
    Route(
        "POST",
        "/items/{item}/privacy/1/clear",
        {"sec", "admin"},
        _private("dept_approved"),
        data={"reason": "联系人本人同意公开"},
        hidden=OTHER_DEPT,
    ),
    Route("POST", "/items/{item}/mask", ITEM_STAFF, _private("dept_approved"), hidden=OTHER_DEPT),
    Route(
        "POST", "/items/{item}/privacy/recheck", ITEM_STAFF, _private("submitted", unchecked=True), hidden=OTHER_DEPT
    ),
    Route("GET", "/review", {"head", "head2", "sec", "admin"}),
    Route("GET", "/calendar", STAFF),
    Route("GET", "/media/{sha}", STAFF, _media),
    # the iCalendar feed authenticates by the token in its URL (calendar apps send no cookies)
    Route("GET", "/calendar/mem.ics?token={token}", STAFF, _feed, id="ical-feed"),
    Route("GET", "/dashboard", ALL),
    Route("GET", "/dashboard.csv?table=category", ALL),
    # the annual report is read by everyone (the register rows behind its figures by admins only, in
    # the page); its template, the CSV import and the audit export are the admin's (docs/web.md)
    Route("GET", "/report", ALL),
    Route("GET", "/report/download?format=md", ALL),
    Route("GET", "/report/figures.csv", ALL),
    Route("GET", "/report/template", {"admin"}),
    Route("POST", "/report/template", {"admin"}, data={"text": "# {{ org }}\n"}),
    Route("GET", "/import", {"admin"}),
    Route("POST", "/import", {"admin"}, files={"file": ("ledger.csv", LEDGER_CSV, "text/csv")}),
    Route("GET", "/import/{sha}", {"admin"}, _kept_csv),
    Route("POST", "/import/{sha}", {"admin"}, _kept_csv, data={"name": "ledger.csv", "rows": "2"}),
    Route("GET", "/audit", {"admin"}),
    Route("GET", "/audit.csv", {"admin"}),
    Route("GET", "/tokens", ALL),
    Route("POST", "/tokens", ALL, data={"name": "script"}),
    Route("POST", "/tokens/feed", STAFF),
    Route("POST", "/tokens/{token_id}/revoke", ALL, lambda app, who: _token_of(app, who or "admin"), id="revoke-own"),
    Route("GET", "/admin/users", {"admin"}),
    Route(
        "POST", "/admin/users", {"admin"}, data={"name": "new.user", "role": "viewer", "password": "a long password"}
    ),
    Route("POST", "/admin/users/viewer/password", {"admin"}, data={"password": "another long password"}),
    Route("GET", "/admin/channels", {"admin"}),
    # coverage is the office's, read as the dashboard is; the registers hold applicants' personal data
    Route("GET", "/coverage", ALL),
    Route("POST", "/coverage/19/rule", {"admin"}, data={"rule": "monthly"}),
    Route("GET", "/registers/requests", {"admin"}),
    Route("POST", "/registers/requests", {"admin"}, data={"applicant": "李四", "subject": "工资", "via": "letter"}),
    Route("POST", "/registers/requests/{request}/extend", {"admin"}, _request, data={"reason": "需要会商"}),
    Route("POST", "/registers/requests/{request}/close", {"admin"}, _request, data={"outcome": "disclosed"}),
    Route("GET", "/registers/complaints", {"admin"}),
    Route(
        "POST", "/registers/complaints", {"admin"}, data={"complainant": "王五", "subject": "未公开", "via": "phone"}
    ),
    Route(
        "POST",
        "/registers/complaints/{complaint}/close",
        {"admin"},
        _complaint,
        data={"outcome": "upheld", "resolution": "已补充公开"},
    ),
    Route("GET", "/apply", PUBLIC),
    Route("POST", "/apply", PUBLIC, data=APPLY_FORM, prepare=_apply_token),
    Route("GET", "/guide", PUBLIC),
    Route("POST", "/logout", ALL),
    # the JSON API, with bearer tokens
    Route("GET", "/api/me", ALL, api=True),
    Route("GET", "/api/stats", ALL, api=True),
    Route("GET", "/api/items", STAFF, api=True),
    Route("POST", "/api/items", {"ed", "head", "admin"}, json=API_ITEM, api=True),
    Route("GET", "/api/items/{item}", ITEM_STAFF, _item("draft"), api=True, hidden=OTHER_DEPT),
    Route(
        "PATCH", "/api/items/{item}", ITEM_WRITERS, _item("draft"), json={"title": "改"}, api=True, hidden=OTHER_DEPT
    ),
    Route("POST", "/api/items/{item}/submit", ITEM_WRITERS, _item("draft"), api=True, hidden=OTHER_DEPT),
    Route(
        "POST",
        "/api/items/{item}/review",
        {"head"},
        _item("submitted"),
        json={"approve": True},
        api=True,
        id="api-review-1",
        hidden=OTHER_HEAD,
    ),
    Route(
        "POST",
        "/api/items/{item}/review",
        {"sec"},
        _item("dept_approved"),
        json={"approve": True},
        api=True,
        id="api-review-2",
        hidden=OTHER_HEAD,
    ),
    Route(
        "POST",
        "/api/items/{item}/schedule",
        ITEM_STAFF,
        _item("draft"),
        json={"at": "2099-01-01T09:00+08:00"},
        api=True,
        hidden=OTHER_DEPT,
    ),
    Route("POST", "/api/items/{item}/withdraw", ITEM_STAFF, _item("scheduled"), json={}, api=True, hidden=OTHER_DEPT),
    Route("GET", "/api/items/{item}/deliveries", ITEM_STAFF, _item("scheduled"), api=True, hidden=OTHER_DEPT),
    Route("GET", "/api/items/{item}/privacy", ITEM_STAFF, _private("draft"), api=True, hidden=OTHER_DEPT),
    Route(
        "POST",
        "/api/items/{item}/privacy/1/clear",
        {"sec", "admin"},
        _private("dept_approved"),
        json={"reason": "联系人本人同意公开"},
        api=True,
        hidden=OTHER_DEPT,
    ),
    Route("POST", "/api/items/{item}/mask", ITEM_STAFF, _private("dept_approved"), api=True, hidden=OTHER_DEPT),
    Route(
        "POST",
        "/api/items/{item}/privacy/recheck",
        ITEM_STAFF,
        _private("submitted", unchecked=True),
        api=True,
        hidden=OTHER_DEPT,
    ),
    Route(
        "POST",
        "/api/deliveries/{delivery}/retry",
        ITEM_STAFF,
        lambda app, who: _failed_delivery(app),
        api=True,
        hidden=OTHER_DEPT,
    ),
]


def _audit_count(app: Any) -> int:
    with app.session() as s:
        return len(s.exec(select(AuditLog.id)).all())


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.id or f"{r.method} {r.path}")
def test_role_matrix(route: Route, app: Any, client: Any, login: Any) -> None:
    from publisher.web.security import SESSION_COOKIE

    # denied callers first: they must change nothing
    for who in sorted(CALLERS, key=lambda w: (w in route.allowed, w or "")):
        client.cookies.clear()
        params = route.setup(app, who)
        path = route.path.format(**params)
        headers: dict[str, str] = {}
        data = (
            dict(route.data) if route.data is not None else ({} if route.method == "POST" and not route.api else None)
        )
        if who is not None:
            if route.api:
                headers["Authorization"] = "Bearer " + _token_of(app, who)["token"]
            else:
                csrf = login(client, who)
                if route.method != "GET":
                    if route.files is not None:
                        headers["X-CSRF-Token"] = csrf
                    else:
                        data["csrf_token"] = csrf  # type: ignore[index]
        if route.prepare is not None:
            data.update(route.prepare(client))  # type: ignore[union-attr]
        before = _audit_count(app)
        r = client.request(route.method, path, data=data, json=route.json, files=route.files, headers=headers)
        if who in route.allowed:
            assert r.status_code in route.ok, (
                f"{who} should be able to {route.method} {path}: {r.status_code} {r.text[:300]}"
            )
        elif who is None:
            assert r.status_code in (401, 303), f"anonymous {route.method} {path}: {r.status_code}"
            if r.status_code == 303:
                assert r.headers["location"].startswith("/login")
            assert _audit_count(app) == before
        else:
            code = 404 if who in route.hidden else 403
            assert r.status_code == code, f"{who} must not {route.method} {path}: {r.status_code} {r.text[:300]}"
            assert _audit_count(app) == before, f"{who} was refused {path} but something changed"
        assert SESSION_COOKIE not in r.cookies or route.path == "/logout"


HIDDEN_ROUTES = [r for r in ROUTES if r.hidden]


@pytest.mark.parametrize("route", HIDDEN_ROUTES, ids=lambda r: r.id or f"{r.method} {r.path}")
def test_another_departments_item_answers_as_a_missing_one(route: Route, app: Any, client: Any, login: Any) -> None:
    """Same status, same body (but for the number asked), same headers; the department is never named."""
    for who in sorted(route.hidden):
        client.cookies.clear()
        params = route.setup(app, who)
        key = "delivery" if "{delivery}" in route.path else "item"
        real = params[key]
        missing = real + 10_000
        # one session (its CSRF token is in every page) or one token for both questions
        headers: dict[str, str] = {}
        form = not route.api and route.method == "POST"
        data = dict(route.data) if route.data is not None else ({} if form else None)
        if route.api:
            headers["Authorization"] = "Bearer " + _token_of(app, who)["token"]
        else:
            csrf = login(client, who)
            if route.method != "GET":
                data["csrf_token"] = csrf  # type: ignore[index]
        answers = []
        for number in (real, missing):
            path = route.path.format(**{**params, key: number})
            before = _audit_count(app)
            r = client.request(route.method, path, data=data, json=route.json, headers=headers)
            assert _audit_count(app) == before
            answers.append(
                (
                    r.status_code,
                    r.text.replace(f"{key} {number}", f"{key} N"),
                    {k: v for k, v in r.headers.items() if k != "content-length"},
                )
            )
        (code, body, headers_), gone = answers
        assert code == 404, f"{who} {route.method} {route.path}: {code} {body[:300]}"
        assert answers[0] == gone, f"{who}: another department's item differs from a missing one"
        assert "校长办公室" not in body


def test_an_image_is_as_visible_as_the_items_that_hold_it(app: Any, client: Any, login: Any) -> None:
    """Another department's draft's image answers exactly as a missing image does (404): nothing is told."""
    from publisher.pipeline import content

    path = app.settings.media_dir.parent / "seal.png"
    path.write_bytes(_png())
    stored = content.store_file(path, media_dir=app.settings.media_dir, role="image", max_bytes=10**6)
    with app.session() as s:
        draft = content.ItemDraft(
            title="校长办公室的草稿",
            body_markdown=f"![](asset://{stored.sha256})",
            fields={"category": "公告公示", "channels": ["mem"]},
            assets=[stored],
        )
        item = workflow.create_item(app.ctx, s, author=workflow.get_user(s, "ed"), draft=draft)
        item_id = item.id
    missing = "0" * 64

    def get(who: str, sha: str, *more: str) -> Any:
        client.cookies.clear()
        login(client, who)
        answers = [client.get(f"/media/{h}") for h in (sha, *more)]
        return answers if more else answers[0]

    for who in ("ed", "head", "sec", "admin"):
        r = get(who, stored.sha256)
        assert r.status_code == 200 and r.content == _png(), who
    for who in ("ed2", "head2"):
        r, gone = get(who, stored.sha256, missing)
        assert r.status_code == 404, who
        assert (r.text, dict(r.headers)) == (gone.text, dict(gone.headers)), "a hidden image differs from a missing one"
    # the same picture in an item of 人事处 is theirs too
    with app.session() as s:
        draft = content.ItemDraft(
            title="人事处的草稿",
            body_markdown=f"![](asset://{stored.sha256})",
            fields={"category": "公告公示", "channels": ["mem"]},
            assets=[stored],
        )
        workflow.create_item(app.ctx, s, author=workflow.get_user(s, "ed2"), draft=draft)
    assert get("ed2", stored.sha256).status_code == 200
    assert get("ed", stored.sha256).status_code == 200
    assert item_id
