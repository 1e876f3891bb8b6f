"""Per-channel wording (issue 14) in the JSON API, the compose form and its live preview, the item page
and ``publisher item``: the same service functions judge it (the memory channel ``mem`` takes titles of
at most 20 characters here, ``mem2`` of 200)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from publisher import accounts
from publisher.pipeline import workflow
from tests.clirun import Cli, setup_store

TITLE = "关于2026年寒假放假及2027年春季学期开学时间安排的通知"  # 30 characters: too long for mem
ITEM = {"title": TITLE, "body_markdown": "各学院、各部门：现将安排通知如下。", "category": "公告公示"}


@pytest.fixture
def app(make_app: Any) -> Any:
    return make_app(channels={"mem": {"type": "memory", "title_max": 20}, "mem2": {"type": "memory"}})


def _bearer(app: Any, name: str = "ed") -> dict[str, str]:
    with app.session() as s:
        token = accounts.create_token(s, user=workflow.get_user(s, name), name="script")[0]
    return {"Authorization": f"Bearer {token}"}


def test_the_api_carries_and_checks_the_wording(app: Any, client: Any) -> None:
    bearer = _bearer(app)
    # the item's own title is too long for mem: its wording makes it fit, and the save says what does not
    r = client.post(
        "/api/items",
        json={**ITEM, "channels": ["mem", "mem2"], "overrides": {"mem": {"title": "寒" * 21}}},
        headers=bearer,
    )
    assert r.status_code == 422 and "mem wording: title is 21 characters; mem takes at most 20" in r.text, r.text
    r = client.post(
        "/api/items", json={**ITEM, "channels": ["mem"], "overrides": {"mem3": {"title": "短"}}}, headers=bearer
    )
    assert r.status_code == 422 and "overrides for 'mem3': it is not one of the item's channels" in r.text, r.text
    r = client.post(
        "/api/items", json={**ITEM, "channels": ["mem"], "overrides": {"mem": {"subject": "短"}}}, headers=bearer
    )
    assert r.status_code == 422 and "subject" in r.text, r.text
    wording = {"mem": {"title": "寒假及开学时间通知", "summary": "1月17日放假"}}
    r = client.post("/api/items", json={**ITEM, "channels": ["mem", "mem2"], "overrides": wording}, headers=bearer)
    assert r.status_code == 201, r.text
    item = r.json()
    assert item["overrides"] == wording and item["version"] == 1
    r = client.patch(
        f"/api/items/{item['id']}", json={"overrides": {"mem2": {"body": "寒假通知全文见官网。"}}}, headers=bearer
    )
    assert r.status_code == 200, r.text
    assert (r.json()["overrides"], r.json()["version"]) == ({"mem2": {"body": "寒假通知全文见官网。"}}, 2)
    assert client.get(f"/api/items/{item['id']}", headers=bearer).json()["overrides"] == r.json()["overrides"]
    # the channel receives its wording: mem2's body, mem's title again being the item's (too long) is refused
    with app.session() as s:
        it = workflow.get_item(s, item["id"])
        assert workflow.build_post(app.ctx, s, it, "mem2").body_markdown == "寒假通知全文见官网。"
        assert workflow.build_post(app.ctx, s, it, "mem").body_markdown == ITEM["body_markdown"]
    r = client.post(f"/api/items/{item['id']}/submit", headers=bearer)
    assert r.status_code == 422 and "mem: title is 30 characters" in r.text, r.text


def test_the_compose_form_its_preview_and_the_item_page(app: Any, client: Any, login: Any) -> None:
    csrf = login(client, "ed")
    form = {
        "csrf_token": csrf,
        **ITEM,
        "channels": ["mem", "mem2"],
        "when": "none",
        "department": "校长办公室",
        "wording.mem.title": "寒假及开学时间通知",
        "wording.mem.summary": "",
        "wording.mem2.title": "",
    }
    r = client.post("/preview", data=form, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    cards = r.text.split('<article class="pv')[1:]
    mem, mem2 = (next(c for c in cards if f'data-channel="{n}"' in c) for n in ("mem", "mem2"))
    assert "<h1>寒假及开学时间通知</h1>" in mem and "符合渠道要求" in mem
    assert f"<h1>{TITLE}</h1>" in mem2
    r = client.post("/preview", data={**form, "wording.mem.title": "寒" * 21}, headers={"X-CSRF-Token": csrf})
    assert "title is 21 characters; mem takes at most 20" in r.text
    r = client.post("/items/new", data={**form, "wording.mem.title": "寒" * 21})
    assert r.status_code == 422 and "mem wording: title is 21 characters" in r.text
    assert 'value="寒寒寒' in r.text  # the form keeps what was typed
    r = client.post("/items/new", data=form)
    assert r.status_code == 303, r.text
    item_id = int(r.headers["location"].rsplit("/", 1)[1])
    with app.session() as s:
        assert workflow.get_item(s, item_id).overrides == {"mem": {"title": "寒假及开学时间通知"}}
    page = client.get(f"/items/{item_id}").text
    assert "渠道专用文字" in page and "[mem] title: 寒假及开学时间通知" in page
    edit = client.get(f"/items/{item_id}/edit").text
    assert 'name="wording.mem.title" value="寒假及开学时间通知"' in edit
    r = client.post(f"/items/{item_id}/edit", data={**form, "wording.mem.title": "", "wording.mem2.title": "寒假通知"})
    assert r.status_code == 303, r.text
    with app.session() as s:
        assert workflow.get_item(s, item_id).overrides == {"mem2": {"title": "寒假通知"}}


def test_the_cli_takes_front_matter_and_override_and_shows_the_wording(tmp_path: Path, store_url: str) -> None:
    cli = Cli(tmp_path, store_url)
    setup_store(cli)
    md = tmp_path / "item.md"
    md.write_text(
        f"---\ntitle: {TITLE}\ncategory: 公告公示\nchannels: [mem]\n"
        "overrides:\n  mem:\n    title: 寒假及开学时间通知\n---\n各学院、各部门：现将安排通知如下。\n",
        encoding="utf-8",
    )
    r = cli("item", "add", str(md), "--as", "ed", "--override", "mem.summary=1月17日放假")
    assert r.code == 0, r.out + r.err
    item = r.last_line
    shown = json.loads(cli("item", "show", item, "--json").out)
    assert shown["overrides"] == {"mem": {"title": "寒假及开学时间通知", "summary": "1月17日放假"}}
    r = cli("item", "edit", item, str(md), "--as", "ed", "--override", "mem.title=", "--override", "mem.body=短正文")
    assert r.code == 0, r.out + r.err
    r = cli("item", "show", item)
    assert (
        "wording [mem] body:" in (r.out + r.err)
        and "短正文" in (r.out + r.err)
        and "[mem] title" not in (r.out + r.err)
    )
    r = cli("item", "edit", item, str(md), "--as", "ed", "--override", "mem.title")
    assert r.code != 0 and "write CHANNEL.FIELD=TEXT" in (r.out + r.err)


def _png(colour: tuple[int, int, int]) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (120, 80), colour).save(buf, "PNG")
    return buf.getvalue()


def test_a_channels_cover_and_its_alt_text_through_the_api_and_the_form(app: Any, client: Any, login: Any) -> None:
    csrf = login(client, "ed")
    up = client.post(
        "/upload", files={"file": ("礼堂.png", _png((90, 20, 20)), "image/png")}, headers={"X-CSRF-Token": csrf}
    )
    assert up.status_code == 201, up.text
    cover = f"asset://{up.json()['sha256']}"
    bearer = _bearer(app)
    item = {**ITEM, "title": "寒假通知", "channels": ["mem", "mem2"]}
    r = client.post("/api/items", json={**item, "overrides": {"mem2": {"cover_alt": "礼堂"}}}, headers=bearer)
    assert r.status_code == 422 and "cover_alt is set but there is no cover" in r.text, r.text
    r = client.post("/api/items", json={**item, "overrides": {"mem2": {"cover": cover}}}, headers=bearer)
    assert r.status_code == 201, r.text
    item_id = r.json()["id"]
    # submit names the channel and the field to write
    r = client.post(f"/api/items/{item_id}/submit", headers=bearer)
    assert r.status_code == 422 and "mem2 wording: 封面图缺少替代文本" in r.text and "mem2.cover_alt" in r.text, r.text
    # the compose page offers the field, and what is written there is the channel's cover's alt text
    edit = client.get(f"/items/{item_id}/edit").text
    assert 'name="wording.mem2.cover_alt" value=""' in edit
    form = {
        "csrf_token": csrf,
        **ITEM,
        "title": "寒假通知",
        "channels": ["mem", "mem2"],
        "when": "none",
        "department": "校长办公室",
        "wording.mem2.cover": cover,
        "wording.mem2.cover_alt": "红色幕布前的礼堂讲台",
    }
    r = client.post(f"/items/{item_id}/edit", data=form)
    assert r.status_code == 303, r.text
    got = client.get(f"/api/items/{item_id}", headers=bearer).json()
    assert got["overrides"] == {"mem2": {"cover": cover, "cover_alt": "红色幕布前的礼堂讲台"}}
    r = client.post(f"/api/items/{item_id}/submit", headers=bearer)
    assert r.status_code == 200, r.text
    with app.session() as s:
        post = workflow.build_post(app.ctx, s, workflow.get_item(s, item_id), "mem2")
        assert (post.cover.sha256, post.cover.alt) == (cover.removeprefix("asset://"), "红色幕布前的礼堂讲台")
