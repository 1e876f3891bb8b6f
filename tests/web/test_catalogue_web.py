"""The catalogue in the web workspace and the JSON API: the same service functions as the CLI."""

from __future__ import annotations

import re

from publisher import accounts
from publisher.pipeline import workflow
from tests.web.conftest import make_item


def _bearer(app, name="ed"):
    with app.session() as s:
        token = accounts.create_token(s, user=workflow.get_user(s, name), name="script")[0]
    return {"Authorization": f"Bearer {token}"}


RULE = {"title": "学生管理规定", "body_markdown": "全文如下。", "category": "规章制度", "channels": ["mem"]}


def test_the_api_carries_and_checks_the_catalogue(app, client):
    bearer = _bearer(app)
    r = client.post("/api/items", json={**RULE, "doc_number": "第十二号"}, headers=bearer)
    assert r.status_code == 422 and "齐高师专发〔2022〕12号" in r.json()["detail"], r.text
    r = client.post(
        "/api/items",
        json={**RULE, "doc_number": "齐高师专发[2022]12号", "written_on": "2022-03-01", "topic": "学生管理"},
        headers=bearer,
    )
    assert r.status_code == 201, r.text
    rule = r.json()
    assert (rule["doc_number"], rule["written_on"], rule["topic"]) == (
        "齐高师专发〔2022〕12号",
        "2022-03-01",
        "学生管理",
    )
    assert (rule["disclosure_mode"], rule["disclosure_scope"], rule["index_no"]) == ("主动公开", "面向社会", None)
    r = client.post("/api/items", json={**RULE, "title": "政策解读", "interprets": [rule["id"]]}, headers=bearer)
    assert r.status_code == 201, r.text
    reading = r.json()
    assert reading["interprets"] == [rule["id"]]
    got = client.get(f"/api/items/{rule['id']}", headers=bearer).json()
    assert got["related"] == [{"label": "政策解读", "item_id": reading["id"], "title": "政策解读", "status": "draft"}]
    r = client.patch(f"/api/items/{rule['id']}", json={"validity": "已废止", "replaced_by": 99999}, headers=bearer)
    assert r.status_code == 422 and "no item 99999" in r.json()["detail"], r.text
    r = client.patch(f"/api/items/{rule['id']}", json={"validity": "已废止", "topic": ""}, headers=bearer)
    assert r.status_code == 200, r.text
    assert (r.json()["validity"], r.json()["topic"]) == ("已废止", None)
    r = client.patch(f"/api/items/{reading['id']}", json={"interprets": []}, headers=bearer)
    assert r.status_code == 200 and r.json()["interprets"] == [], r.text


def test_the_compose_form_and_the_item_page(app, client, login):
    other = make_item(app)
    csrf = login(client, "ed")
    form = {
        "csrf_token": csrf,
        "title": "学生管理规定",
        "body_markdown": "全文如下。",
        "category": "规章制度",
        "channels": "mem",
        "when": "none",
        "action": "draft",
        "department": "校长办公室",
        "doc_number": "齐高师专发【2022】12号",
        "written_on": "2022-03-01",
        "topic": "学生管理",
        "disclosure_mode": "依申请公开",
        "validity": "现行有效",
        "revises": str(other),
    }
    page = client.get("/items/new").text
    assert 'name="doc_number"' in page and ">学生管理</option>" in page
    r = client.post("/items/new", data={**form, "topic": "不存在"})
    assert r.status_code == 422 and "主题分类 (topic)" in r.text
    r = client.post("/items/new", data=form)
    assert r.status_code == 303, r.text
    item_id = int(r.headers["location"].rstrip("/").rsplit("/", 1)[-1])
    with app.session() as s:
        item = workflow.get_item(s, item_id)
        assert (item.doc_number, item.disclosure_mode, item.validity) == (
            "齐高师专发〔2022〕12号",
            "依申请公开",
            "现行有效",
        )
    shown = client.get(f"/items/{item_id}").text
    block = re.search(r'<table class="catalogue">(.*?)</table>', shown, re.S).group(1)
    assert "齐高师专发〔2022〕12号" in block and "（排期发布时生成）" in block and "依申请公开" in block
    assert f'修订的文件: <a href="/items/{other}">#{other}' in block
    # the other item's page links back
    assert f'修订版本: <a href="/items/{item_id}">' in client.get(f"/items/{other}").text
    edit = client.get(f"/items/{item_id}/edit").text
    assert 'name="doc_number" value="齐高师专发〔2022〕12号"' in edit and f'name="revises" value="{other}"' in edit
    r = client.post(f"/items/{item_id}/edit", data={**form, "validity": "", "revises": ""})
    assert r.status_code == 303, r.text
    with app.session() as s:
        assert workflow.get_item(s, item_id).validity is None
        assert workflow.related_of(s, item_id) == []
    assert "Disclosure catalogue" in client.get(f"/items/{item_id}?lang=en").text


def test_the_item_list_finds_by_index_no_doc_number_topic_and_validity(app, client, login):
    bearer = _bearer(app)
    made = {}
    for title, extra in (
        ("学生管理规定", {"doc_number": "齐高师专发〔2022〕12号", "topic": "学生管理", "validity": "现行有效"}),
        ("旧的规定", {"doc_number": "齐高师专发〔2019〕3号", "topic": "学生管理", "validity": "已废止"}),
        ("招生简章", {"topic": "招生考试"}),
    ):
        r = client.post("/api/items", json={**RULE, "title": title, **extra}, headers=bearer)
        assert r.status_code == 201, r.text
        made[title] = r.json()["id"]
    with app.session() as s:  # an imported-style number, to search by
        workflow.get_item(s, made["招生简章"]).index_no = "12230000MB0000000X/2022-00042"

    def api(**params):
        return [i["title"] for i in client.get("/api/items", params=params, headers=bearer).json()]

    assert api(topic="学生管理", validity="现行有效") == ["学生管理规定"]
    assert api(index_no="12230000MB0000000X/2022-00042") == ["招生简章"]
    login(client, "ed")

    def page(**params):
        html = client.get("/items", params=params).text
        return {t for t, i in made.items() if f'href="/items/{i}"' in html}

    assert page(q="〔2019〕") == {"旧的规定"}
    assert page(q="2022-00042") == {"招生简章"}
    assert page(topic="学生管理") == {"学生管理规定", "旧的规定"}
    assert page(validity="已废止") == {"旧的规定"}
