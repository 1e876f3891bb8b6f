"""The checklist item shows as its number and its name (the national list), never a bare number."""

from __future__ import annotations

import html
import re

import pytest

from publisher.checklist import checklist

sqlite_only = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


def _input_value(page: str) -> str:
    m = re.search(r'<input name="checklist_item"[^>]*value="([^"]*)"', page)
    assert m, "no checklist field"
    return html.unescape(m.group(1))


@sqlite_only
def test_item_page_edit_form_and_api_name_the_checklist_item(app, client, login):
    name = checklist()[2].name
    csrf = login(client, "ed")
    form = {
        "csrf_token": csrf,
        "title": "学校基本情况简介",
        "body_markdown": "正文",
        "category": "公告公示",
        "channels": "mem",
        "when": "none",
        "action": "draft",
        "checklist_item": "2",
        "department": "校长办公室",
    }
    # a refused save shows the field again as the list offers it
    refused = client.post("/items/new", data={**form, "title": ""})
    assert refused.status_code == 422 and _input_value(refused.text) == f"2 — {name}"
    r = client.post("/items/new", data=form)
    assert r.status_code == 303
    item_id = int(r.headers["location"].rsplit("/", 1)[1])
    page = client.get(f"/items/{item_id}").text
    shown = re.search(r'<span class="checklist">([^<]*)</span>', page)
    assert shown and html.unescape(shown.group(1)) == f"2 — {name}"
    assert "（1-50）: 2" not in page
    edit = client.get(f"/items/{item_id}/edit").text
    assert _input_value(edit) == f"2 — {name}"
    # saving the edit form as it came back keeps the number
    again = client.post(f"/items/{item_id}/edit", data={**form, "checklist_item": _input_value(edit)})
    assert again.status_code == 303, re.findall(r"role=\"alert\">([^<]*)", again.text)
    api = client.get(f"/api/items/{item_id}", headers={"X-CSRF-Token": csrf}).json()
    assert api["checklist_item"] == 2 and api["checklist_name"] == name
    # English pages name it too (the list's names are Chinese: the national document's)
    assert name in client.get(f"/items/{item_id}?lang=en").text


def test_checklist_label_for_numbers_outside_the_list():
    from publisher.web.common import checklist_label

    assert checklist_label(None) == ""
    assert checklist_label(99) == "99"
    assert checklist_label(50) == f"50 — {checklist()[50].name}"
