"""Large bodies: a save renders the Markdown once, the preview is bounded, a 1.4 MB body saves at all,
and the dashboard brings its roll-up up to date once per page.

The counters wrap the real functions (markdown-it's ``MarkdownIt.render``, the roll-up's ``_rebuild``)
and call them: nothing is replaced. Speed itself is measured by bench/render_bench.py, not here.
"""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt
from sqlmodel import select

from publisher.counting import rollup
from publisher.models import Item
from publisher.pipeline import content
from publisher.web import compose

sqlite_only = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


def _count(monkeypatch, owner, name: str) -> list[int]:
    content._rendered.cache_clear()  # a body rendered by an earlier test would not be rendered again
    real = getattr(owner, name)
    calls = [0]

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return calls


def _table(size: int) -> str:
    body = "## 拟聘用人员名单\n\n| 序号 | 姓名 | 岗位 | 学历 |\n|---|---|---|---|\n"
    rows, i = [], 0
    while len(body.encode()) + sum(len(r.encode()) for r in rows) < size:
        i += 1
        rows.append(f"| {i} | 张三{i} | 专任教师（{i % 40}号岗） | 博士研究生 |\n")
    return body + "".join(rows)


def _form(csrf: str, body: str, action: str = "draft") -> dict:  # type: ignore[type-arg]
    return {
        "csrf_token": csrf,
        "title": "拟聘用人员公示",
        "body_markdown": body,
        "category": "公告公示",
        "department": "校长办公室",
        "channels": "mem",
        "when": "none",
        "action": action,
    }


@sqlite_only
def test_a_save_renders_the_markdown_once(app, client, login, monkeypatch):
    csrf = login(client, "ed")
    renders = _count(monkeypatch, MarkdownIt, "render")
    r = client.post("/items/new", data=_form(csrf, _table(3000) + "\n一段新的正文。\n"))
    assert r.status_code == 303, r.text
    assert renders[0] == 1
    item_id = int(r.headers["location"].rsplit("/", 1)[1])
    with app.session() as s:
        assert s.get(Item, item_id).summary.startswith("拟聘用人员名单")  # cut from that same rendering
    renders[0] = 0
    r = client.post(f"/items/{item_id}/edit", data=_form(csrf, _table(3000) + "\n改过的正文。\n", "submit"))
    assert r.status_code == 303, r.text
    assert renders[0] == 1
    with app.session() as s:
        item = s.get(Item, item_id)
        assert "改过的正文" in item.body_html and item.status == "submitted"


def test_a_1_4_mb_body_saves_through_the_form(app, client, login):
    csrf = login(client, "ed")
    body = _table(1_400_000)
    r = client.post("/items/new", data=_form(csrf, body))
    assert r.status_code == 303, r.text[:2000]
    with app.session() as s:
        item = s.exec(select(Item)).one()
        assert item.body_markdown == body
        assert item.body_html.count("<tr>") == body.count("\n| ")  # the header row and every data row


@sqlite_only
def test_a_body_over_the_limit_is_refused_with_the_form_fields_message(app, client, login):
    csrf = login(client, "ed")
    r = client.post("/items/new", data=_form(csrf, "字" * (app.settings.review.max_body_bytes // 3 + 10)))
    assert r.status_code == 422
    assert "正文" in r.text and "max_body_bytes" in r.text
    with app.session() as s:
        assert s.exec(select(Item)).first() is None


@sqlite_only
def test_the_preview_is_bounded_and_says_so(app, client, login, monkeypatch):
    csrf = login(client, "ed")
    body = _table(compose.PREVIEW_MAX_BYTES * 3)
    lengths: list[int] = []
    real = MarkdownIt.render

    def measuring(self, src, env=None):  # type: ignore[no-untyped-def]
        lengths.append(len(src.encode()))
        return real(self, src, env)

    monkeypatch.setattr(MarkdownIt, "render", measuring)
    content._rendered.cache_clear()
    r = client.post("/preview", data=_form(csrf, body))
    assert r.status_code == 200
    assert lengths and max(lengths) <= compose.PREVIEW_MAX_BYTES
    assert len(lengths) == 1  # the summary comes from the same rendering
    assert "预览只显示正文的前 200 KB" in r.text
    en = client.post("/preview?lang=en", data=_form(csrf, body))
    assert "The preview shows the first 200 KB of the body" in en.text
    small = client.post("/preview", data=_form(csrf, "短正文"))
    assert "预览只显示正文的前" not in small.text


@sqlite_only
def test_the_dashboard_refreshes_the_rollup_once_per_page(app, client, login, monkeypatch):
    login(client, "admin")
    assert client.get("/dashboard").status_code == 200  # the first use builds the roll-up
    rebuilds = _count(monkeypatch, rollup, "_rebuild")
    assert client.get("/dashboard").status_code == 200
    assert rebuilds[0] == 1
    rebuilds[0] = 0
    assert client.get("/dashboard.csv?table=month").status_code == 200
    assert rebuilds[0] == 1
    # outside a page, each call still brings it up to date
    rebuilds[0] = 0
    rollup.refresh(app.engine, app.settings.zone)
    rollup.refresh(app.engine, app.settings.zone)
    assert rebuilds[0] == 2
