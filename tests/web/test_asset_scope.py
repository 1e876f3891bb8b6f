"""An item may refer (asset://<sha256>) only to images its own department uploaded, or that are already
attached to items its author may see. Another department's image answers exactly as a missing one,
on the form, the API, the preview and /media: neither its bytes nor its existence are told."""

from __future__ import annotations

import io
import re

from sqlmodel import select

from publisher.models import Asset, Item

MISSING = "0123456789abcdef" * 4


def _png(colour: tuple[int, int, int]) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (20, 10), colour).save(buf, "PNG")
    return buf.getvalue()


def _upload(client, login, who: str, colour=(200, 30, 30)) -> str:  # type: ignore[no-untyped-def]
    client.cookies.clear()
    csrf = login(client, who)
    r = client.post("/upload", files={"file": ("章.png", _png(colour), "image/png")}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    return r.json()["sha256"]


def _form(csrf: str, sha: str) -> dict:  # type: ignore[type-arg]
    return {
        "csrf_token": csrf,
        "title": "人事处通知",
        "body_markdown": f"正文\n\n![章](asset://{sha})\n",
        "category": "公告公示",
        "channels": "mem",
        "when": "none",
        "action": "draft",
    }


def _same(a: str, b: str, sha_a: str, sha_b: str) -> None:
    """Two answers that differ only by the hash each names."""
    assert a.replace(sha_a, "HASH").replace(sha_a[:12], "HASH") == b.replace(sha_b, "HASH").replace(sha_b[:12], "HASH")


def _error_of(html: str) -> str:
    m = re.search(r'<p class="error"[^>]*>(.*?)</p>', html, re.S)
    assert m, html[:2000]
    return m.group(1)


def test_another_departments_upload_is_refused_as_a_missing_one_on_the_form(app, client, login):
    theirs = _upload(client, login, "ed")  # 校长办公室
    client.cookies.clear()
    csrf = login(client, "ed2")  # 人事处
    r, gone = (client.post("/items/new", data=_form(csrf, sha)) for sha in (theirs, MISSING))
    assert r.status_code == gone.status_code == 422
    _same(_error_of(r.text), _error_of(gone.text), theirs, MISSING)
    # nor through the preview, which must not tell either
    pv, pv_gone = (client.post("/preview", data=_form(csrf, sha)) for sha in (theirs, MISSING))
    _same(pv.text, pv_gone.text, theirs, MISSING)
    # nor by editing it into an item of their own
    own = _upload(client, login, "ed2", (0, 0, 200))
    csrf = login(client, "ed2")
    mine = client.post("/items/new", data=_form(csrf, own))
    assert mine.status_code == 303
    item_id = int(mine.headers["location"].rsplit("/", 1)[1])
    edit = client.post(f"/items/{item_id}/edit", data={**_form(csrf, theirs), "department": "人事处"})
    assert edit.status_code == 422
    img, img_gone = client.get(f"/media/{theirs}"), client.get(f"/media/{MISSING}")
    assert img.status_code == img_gone.status_code == 404
    assert img.text == img_gone.text
    with app.session() as s:
        assert theirs not in set(s.exec(select(Asset.sha256)))
        assert [i.id for i in s.exec(select(Item))] == [item_id]
    # the uploader's own department may use it (and see it), a colleague too
    client.cookies.clear()
    csrf = login(client, "head")
    assert client.get(f"/media/{theirs}").status_code == 200
    assert client.post("/items/new", data={**_form(csrf, theirs), "department": "校长办公室"}).status_code == 303


def test_another_departments_upload_is_refused_as_a_missing_one_through_the_api(app, client, login):
    theirs = _upload(client, login, "ed")
    client.cookies.clear()
    csrf = login(client, "ed2")
    h = {"X-CSRF-Token": csrf}
    body = {"title": "人事处通知", "category": "公告公示", "channels": ["mem"]}
    r, gone = (
        client.post("/api/items", json={**body, "body_markdown": f"![](asset://{sha})"}, headers=h)
        for sha in (theirs, MISSING)
    )
    assert r.status_code == gone.status_code == 422
    _same(r.json()["detail"], gone.json()["detail"], theirs, MISSING)
    created = client.post("/api/items", json={**body, "body_markdown": "正文"}, headers=h)
    assert created.status_code == 201
    item_id = created.json()["id"]
    r, gone = (
        client.patch(f"/api/items/{item_id}", json={"body_markdown": f"![](asset://{sha})"}, headers=h)
        for sha in (theirs, MISSING)
    )
    assert r.status_code == gone.status_code == 422
    _same(r.json()["detail"], gone.json()["detail"], theirs, MISSING)
    with app.session() as s:
        assert theirs not in set(s.exec(select(Asset.sha256)))


def test_an_image_already_on_an_item_the_author_may_see_may_be_used(app, client, login):
    sha = _upload(client, login, "admin")  # an office upload, put on an item of 人事处
    client.cookies.clear()
    csrf = login(client, "admin")
    assert client.post("/items/new", data={**_form(csrf, sha), "department": "人事处"}).status_code == 303
    client.cookies.clear()
    csrf = login(client, "ed2")
    assert client.post("/items/new", data=_form(csrf, sha)).status_code == 303
    client.cookies.clear()
    csrf = login(client, "ed")  # 校长办公室 sees no item holding it
    assert client.post("/items/new", data=_form(csrf, sha)).status_code == 422
    assert client.get(f"/media/{sha}").status_code == 404
