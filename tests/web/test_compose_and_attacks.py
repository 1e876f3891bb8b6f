"""Composing, previews, uploads and the API's idempotency; hostile content and files are refused."""

from __future__ import annotations

import io
import re

import pytest
from sqlmodel import select

from publisher.models import Asset, Item, ItemVersion
from publisher.pipeline import workflow
from tests.web.conftest import make_item

sqlite_only = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)

PAYLOADS = (
    "<script>alert(1)</script>\n\n"
    "[click](javascript:alert(2))\n\n"
    '<img src=x onerror="alert(3)">\n\n'
    "![svg](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoNCk+)\n\n"
    '<svg><script>alert(5)</script></svg> <a href="JaVaScRiPt:alert(6)">x</a>\n'
)


def _png(size=(40, 30)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (30, 90, 200)).save(buf, "PNG")
    return buf.getvalue()


def _no_live_script(html: str) -> None:
    lowered = html.lower()
    assert "<script>alert" not in lowered
    assert not re.search(r"<[^>]+\son\w+\s*=", lowered), "an event handler attribute survived"
    assert not re.search(r"""<[a-z][^<>]*\b(href|src)\s*=\s*["']?\s*javascript:""", lowered)
    assert not re.search(r"""<[a-z][^<>]*\bsrc\s*=\s*["']?data:image/svg""", lowered)
    assert "<svg><script" not in lowered


@sqlite_only
def test_hostile_content_never_runs_in_preview_or_pages(app, client, login):
    csrf = login(client, "ed")
    form = {
        "csrf_token": csrf,
        "title": "<script>alert('t')</script>标题",
        "body_markdown": PAYLOADS,
        "category": "公告公示",
        "channels": "mem",
        "when": "none",
        "action": "draft",
    }
    preview = client.post("/preview", data=form)
    assert preview.status_code == 200
    _no_live_script(preview.text)
    assert "&lt;script&gt;alert(&#39;t&#39;)" in preview.text  # shown as text, not run
    r = client.post("/items/new", data=form)
    assert r.status_code == 303
    page = client.get(r.headers["location"])
    _no_live_script(page.text)
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "object-src 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    for path in ("/items", "/calendar", "/dashboard", "/review"):
        client.cookies.clear()
        login(client, "admin")
        _no_live_script(client.get(path).text)


@sqlite_only
def test_preview_shows_each_channels_limits(make_app):
    from fastapi.testclient import TestClient

    from publisher.web import create_app
    from tests.web.conftest import PASSWORD  # noqa: F401

    app = make_app(channels={"mem": {"type": "memory", "title_max": 10}, "mem2": {"type": "memory"}})
    with TestClient(create_app(app), follow_redirects=False) as client:
        from publisher import accounts

        with app.session() as s:
            tok = accounts.start_session(s, workflow.get_user(s, "ed"), app.settings.web)
            csrf = accounts.session_caller(s, tok).csrf
        client.cookies.set("publisher_session", tok)
        r = client.post(
            "/preview",
            data={
                "csrf_token": csrf,
                "title": "一个超过十个字的很长很长的标题",
                "body_markdown": "**粗体**",
                "channels": ["mem", "mem2"],
            },
        )
    assert r.status_code == 200
    parts = re.split(r'<article class="pv', r.text)
    mem = next(p for p in parts if 'data-channel="mem"' in p)
    mem2 = next(p for p in parts if 'data-channel="mem2"' in p)
    assert "at most 10" in mem and "<strong>粗体</strong>" in mem
    assert "at most" not in mem2


@sqlite_only
def _secretless(make_app, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """An app with a channel ("logged") whose secret variable this process lacks."""
    monkeypatch.delenv("PUBLISHER_TEST_NOT_SET", raising=False)
    monkeypatch.syspath_prepend(str(__import__("tests.clirun").clirun.PLUGINS))
    return make_app(
        channels={
            "mem": {"type": "memory"},
            "logged": {"type": "filelog", "folder": str(tmp_path / "out"), "secret_env": "PUBLISHER_TEST_NOT_SET"},
        }
    )


def _signed_in(client, app, user):  # type: ignore[no-untyped-def]
    """Sign ``user`` in on ``client``; returns the session's CSRF token."""
    from publisher import accounts

    with app.session() as s:
        tok = accounts.start_session(s, workflow.get_user(s, user), app.settings.web)
        csrf = accounts.session_caller(s, tok).csrf
    client.cookies.set("publisher_session", tok)
    return csrf


def test_preview_names_a_channels_missing_secret(make_app, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from publisher.web import create_app

    app = _secretless(make_app, tmp_path, monkeypatch)
    with TestClient(create_app(app), follow_redirects=False) as client:
        csrf = _signed_in(client, app, "ed")
        r = client.post(
            "/preview",
            data={"csrf_token": csrf, "title": "通知", "body_markdown": "正文", "channels": ["mem", "logged"]},
        )
    assert r.status_code == 200, r.text
    logged = next(p for p in re.split(r'<article class="pv', r.text) if 'data-channel="logged"' in p)
    assert "environment variable PUBLISHER_TEST_NOT_SET is not set" in logged


def test_a_channels_missing_secret_is_a_503_naming_it_not_a_500(make_app, tmp_path, monkeypatch):
    """A server set up without a channel's secret: whatever needs that channel answers 503 (the
    server's configuration, not the request) with the variable's name, never a bare 500."""
    from fastapi.testclient import TestClient

    from publisher.web import create_app

    app = _secretless(make_app, tmp_path, monkeypatch)
    with TestClient(create_app(app), follow_redirects=False) as client:
        csrf = _signed_in(client, app, "ed")
        form = {
            "csrf_token": csrf,
            "title": "通知",
            "body_markdown": "正文",
            "category": "公告公示",
            "channels": ["mem", "logged"],
            "when": "none",
            "action": "submit",
        }
        r = client.post("/items/new", data=form)
        if r.status_code == 303:  # saved as a draft or submitted: the secret is needed at review
            item = int(r.headers["location"].rstrip("/").rsplit("/", 1)[-1])
            head_csrf = _signed_in(client, app, "head")
            r = client.post(f"/items/{item}/review", data={"csrf_token": head_csrf, "decision": "approve"})
    assert r.status_code == 503, (r.status_code, r.text[:500])
    assert "PUBLISHER_TEST_NOT_SET" in r.text


def test_image_upload_then_compose_with_it(app, client, login):
    csrf = login(client, "ed")
    r = client.post("/upload", files={"file": ("校徽.png", _png(), "image/png")}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    up = r.json()
    assert up["markdown"] == f"![校徽](asset://{up['sha256']})"
    img = client.get(up["url"])
    assert img.status_code == 200 and img.headers["content-type"] == "image/png"
    form = {
        "csrf_token": csrf,
        "title": "带图片的通知",
        "body_markdown": f"正文\n\n{up['markdown']}\n",
        "category": "公告公示",
        "channels": "mem",
        "when": "none",
        "action": "submit",
    }
    r = client.post("/items/new", data=form)
    assert r.status_code == 303
    page = client.get(r.headers["location"])
    assert f'src="/media/{up["sha256"]}"' in page.text
    with app.session() as s:
        item = s.exec(select(Item)).one()
        assert item.status == "submitted"
        assert [a.sha256 for a in s.exec(select(Asset).where(Asset.item_id == item.id))] == [up["sha256"]]


@sqlite_only
def test_bad_uploads_are_refused_and_nothing_is_stored(app, client, login):
    csrf = login(client, "ed")
    media = app.settings.media_dir
    before = sorted(p for p in media.rglob("*") if p.is_file())
    big = b"\x89PNG\r\n\x1a\n" + b"\0" * (50 * 1024 * 1024)
    r = client.post("/upload", files={"file": ("big.png", big, "image/png")}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 413
    exe = b"MZ\x90\x00" + b"\0" * 4000 + b"This program cannot be run in DOS mode"
    r = client.post("/upload", files={"file": ("photo.png", exe, "image/png")}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 415
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'
    r = client.post("/upload", files={"file": ("logo.svg", svg, "image/svg+xml")}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 415
    r = client.post("/upload", files={"file": ("a.png", _png(), "image/png")})  # no CSRF token
    assert r.status_code == 403
    assert sorted(p for p in media.rglob("*") if p.is_file()) == before
    # a body that is too large for any form is refused before it is read
    r = client.post(
        "/items/new",
        content=b"x" * (app.settings.review.max_asset_bytes + 10**6),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413


@sqlite_only
def test_image_bombs_and_unlisted_formats_are_refused_with_the_reason(app, client, login, tmp_path):
    from PIL import Image

    from tests.test_bad_input import big_png

    csrf = login(client, "ed")
    media = app.settings.media_dir
    before = sorted(p for p in media.rglob("*") if p.is_file())
    for size, says in (((20000, 20000), "is 400 megapixels"), ((10000, 10000), "is 10000×10000 pixels")):
        data = big_png(tmp_path / "big.png", *size).read_bytes()
        r = client.post("/upload", files={"file": ("海报.png", data, "image/png")}, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 413, r.text
        assert f"海报.png {says}" in r.json()["detail"] and "review.max_image_pixels" in r.json()["detail"]
    for fmt in ("BMP", "TIFF"):
        buf = io.BytesIO()
        Image.new("RGB", (8, 8), "red").save(buf, fmt)
        r = client.post(
            "/upload",
            files={"file": (f"scan.{fmt.lower()}", buf.getvalue(), "image/x")},
            headers={"X-CSRF-Token": csrf},
        )
        assert r.status_code == 415, r.text
        assert f"is a {fmt} image" in r.json()["detail"] and "JPEG, PNG, GIF or WebP" in r.json()["detail"]
    assert sorted(p for p in media.rglob("*") if p.is_file()) == before


def test_api_create_is_idempotent_and_viewers_cannot_create(app, client):
    from publisher import accounts

    with app.session() as s:
        ed_token, _ = accounts.create_token(s, user=workflow.get_user(s, "ed"), name="t")
        viewer_token, _ = accounts.create_token(s, user=workflow.get_user(s, "viewer"), name="t")
    body = {
        "title": "接口创建",
        "body_markdown": "正文",
        "category": "公告公示",
        "channels": ["mem"],
        "publish_at": "2099-05-01T09:00:00+08:00",
        "checklist_item": 3,
    }
    h = {"Authorization": f"Bearer {ed_token}", "Idempotency-Key": "req-42"}
    first = client.post("/api/items", json=body, headers=h)
    again = client.post("/api/items", json=body, headers=h)
    assert first.status_code == 201 and again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert first.json()["id"] == again.json()["id"]
    r = client.post(
        "/api/items", json=body, headers={"Authorization": f"Bearer {viewer_token}", "Idempotency-Key": "x"}
    )
    assert r.status_code == 403
    bad = client.post(
        "/api/items",
        json={**body, "publish_at": "2099-05-01T09:00:00"},
        headers={"Authorization": f"Bearer {ed_token}"},
    )
    assert bad.status_code == 422 and "time zone" in bad.json()["detail"]
    assert (
        client.post(
            "/api/items", json={**body, "checklist_item": 51}, headers={"Authorization": f"Bearer {ed_token}"}
        ).status_code
        == 422
    )
    with app.session() as s:
        assert len(s.exec(select(Item)).all()) == 1


def test_review_queue_and_diff_after_an_edit_following_approval(app, client, login):
    item_id = make_item(app, stage="dept_approved", body="第一段\n\n第二段")
    csrf = login(client, "ed")
    form = {
        "csrf_token": csrf,
        "title": "关于寒假放假安排的通知",
        "body_markdown": "第一段\n\n第二段（已修改）",
        "category": "公告公示",
        "department": "校长办公室",
        "channels": "mem",
        "when": "none",
    }
    assert client.post(f"/items/{item_id}/edit", data=form).status_code == 303
    with app.session() as s:
        assert [v.version for v in s.exec(select(ItemVersion).where(ItemVersion.item_id == item_id))] == [1, 2]
        assert workflow.get_item(s, item_id).status == "submitted"
    client.cookies.clear()
    login(client, "head")
    queue = client.get("/review")
    assert f'href="/items/{item_id}"' in queue.text and "批准后有修改" in queue.text
    page = client.get(f"/items/{item_id}")
    assert 'class="d-del">-第二段</span>' in page.text and 'class="d-add">+第二段（已修改）</span>' in page.text
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
    r = client.post(f"/items/{item_id}/review", data={"csrf_token": csrf, "decision": "reject", "reason": ""})
    assert r.status_code == 422  # a rejection needs a reason
    r = client.post(f"/items/{item_id}/review", data={"csrf_token": csrf, "decision": "reject", "reason": "数字有误"})
    assert r.status_code == 303
    with app.session() as s:
        item = workflow.get_item(s, item_id)
        assert item.status == "draft" and item.return_reason == "数字有误"


@sqlite_only
def test_english_switch_and_locale_formatting(app, client, login):
    login(client, "ed")
    make_item(app, stage="scheduled", publish_at="2099-03-04T09:30:00+08:00")
    zh = client.get("/items")
    assert "稿件" in zh.text and "2099年3月4日 09:30" in zh.text and 'lang="zh-CN"' in zh.text
    en = client.get("/items?lang=en")
    assert "Items" in en.text and "4 Mar 2099 09:30" in en.text and 'lang="en"' in en.text
    assert client.get("/items").text.count("Scheduled") >= 1  # the cookie keeps English
    utc = client.get("/items?tz=UTC")
    assert "4 Mar 2099 01:30" in utc.text  # the viewer's own zone


def test_nul_characters_are_refused_alike_on_every_engine(app, client, login):
    # PostgreSQL refuses NUL in text (a 500 before); SQLite would store it: both answer 422 with the reason
    from publisher import accounts

    with app.session() as s:
        ed_token, _ = accounts.create_token(s, user=workflow.get_user(s, "ed"), name="t")
    body = {"title": "接口\x00创建", "body_markdown": "正文", "category": "公告公示", "channels": ["mem"]}
    h = {"Authorization": f"Bearer {ed_token}"}
    for bad in (body, {**body, "title": "接口创建", "body_markdown": "正\x00文"}):
        r = client.post("/api/items", json=bad, headers=h)
        assert r.status_code == 422, r.text
        assert "NUL character" in str(r.json()["detail"]), r.text  # a message, or pydantic's list (docs/web.md)
    with app.session() as s:
        assert s.exec(select(Item)).all() == []
    login(client, "ed")
    r = client.get("/items", params={"q": "通知\x00"})
    assert r.status_code in (200, 400, 422), r.text[:300]  # 400: refused before any route (docs/web.md)
    client.cookies.clear()
    form = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    r = client.post("/login", data={"username": "ed\x00", "password": "x" * 12, "csrf_token": token})
    assert 400 <= r.status_code < 500, r.text[:300]


@sqlite_only
@pytest.mark.skipif(
    not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() != 0,
    reason="needs root to mount a small tmpfs",
)
def test_upload_onto_a_full_disk_says_so(make_app, tmp_path):
    import os
    import subprocess

    from fastapi.testclient import TestClient
    from PIL import Image

    from publisher import accounts
    from publisher.web import create_app

    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(small)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        app = make_app(data_dir=str(small))
        buf = io.BytesIO()
        Image.frombytes("RGB", (1500, 1000), os.urandom(1500 * 1000 * 3)).save(buf, "PNG")
        assert len(buf.getvalue()) > 4_000_000
        with TestClient(create_app(app), follow_redirects=False) as client:
            with app.session() as s:
                tok = accounts.start_session(s, workflow.get_user(s, "ed"), app.settings.web)
                csrf = accounts.session_caller(s, tok).csrf
            client.cookies.set("publisher_session", tok)
            r = client.post(
                "/upload", files={"file": ("photo.png", buf.getvalue(), "image/png")}, headers={"X-CSRF-Token": csrf}
            )
        assert r.status_code == 507, r.text[:300]
        assert "is full" in r.json()["detail"] and str(small) in r.json()["detail"]
        assert not [p for p in (small / "media").rglob("*") if p.is_file()]
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)
