"""Images need alt text (替代文本, issue 14) in the web workspace: a refused submit keeps the form and says
which image, on which line, and how to describe it; nothing is stored."""

from __future__ import annotations

import html
import io
import re

from sqlmodel import select

from publisher.models import Item
from publisher.pipeline import workflow
from tests.web.conftest import make_item


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (30, 90, 200)).save(buf, "PNG")
    return buf.getvalue()


def test_compose_refuses_to_submit_an_image_without_alt_text(app, client, login):
    csrf = login(client, "ed")
    r = client.post("/upload", files={"file": ("校门.png", _png(), "image/png")}, headers={"X-CSRF-Token": csrf})
    sha = r.json()["sha256"]
    form = {
        "csrf_token": csrf,
        "title": "校园开放日通知",
        "body_markdown": f"欢迎参加校园开放日。\n\n![](asset://{sha})\n",
        "category": "公告公示",
        "channels": "mem",
        "when": "none",
        "action": "submit",
    }
    r = client.post("/items/new", data=form)
    assert r.status_code == 422
    text = html.unescape(r.text)
    # the image as the author typed it, so it can be found in the text box
    said = f"图片缺少替代文本 (alt text): line 3 `![](asset://{sha})` — write what the picture shows: ![校门口合影](asset://{sha})"
    assert f'<p class="error" role="alert">{said}</p>' in text
    assert f"欢迎参加校园开放日。\n\n![](asset://{sha})" in text  # the form comes back as it was typed
    with app.session() as s:
        assert s.exec(select(Item)).all() == []  # create and submit are one action: neither happened

    form["body_markdown"] = f"欢迎参加校园开放日。\n\n![开放日的校门口](asset://{sha})\n"
    r = client.post("/items/new", data=form)
    assert r.status_code == 303
    with app.session() as s:
        assert s.exec(select(Item.status)).one() == "submitted"


def test_submitting_a_stored_draft_with_a_remote_image_without_alt_text_is_refused(app, client, login):
    item_id = make_item(app, body="正文。\n\n![](https://www.example.edu.cn/gate.jpg)\n")
    csrf = login(client, "ed")
    r = client.post(f"/items/{item_id}/submit", data={"csrf_token": csrf}, follow_redirects=True)
    text = html.unescape(r.text)
    assert "图片缺少替代文本 (alt text): line 3 `![](https://www.example.edu.cn/gate.jpg)`" in text
    with app.session() as s:
        assert workflow.get_item(s, item_id).status == "draft"


def test_the_live_preview_says_it_before_submit_does(app, client, login):
    csrf = login(client, "ed")
    body = "欢迎参加校园开放日。\n\n```\n![](example.png)\n```\n\n![](https://www.example.edu.cn/gate.jpg)\n"
    r = client.post(
        "/preview", data={"csrf_token": csrf, "title": "校园开放日通知", "body_markdown": body, "channels": "mem"}
    )
    assert r.status_code == 200
    notices = [html.unescape(n) for n in re.findall(r'<p class="notice" role="alert">(.*?)</p>', r.text)]
    gate = "https://www.example.edu.cn/gate.jpg"
    assert notices == [
        f"图片缺少替代文本 (alt text): line 7 `![]({gate})` — write what the picture shows: ![校门口合影]({gate})"
    ]
    body = body.replace("![](https", "![校门口的合影](https")
    r = client.post(
        "/preview", data={"csrf_token": csrf, "title": "校园开放日通知", "body_markdown": body, "channels": "mem"}
    )
    assert r.status_code == 200 and "替代文本" not in r.text
