"""The 公示期 on the web: set through the JSON API (the same service functions as the CLI), shown on
the item page (planned, known, ended) and marked on the calendar and the channel's iCal feed."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from publisher import accounts
from publisher.pipeline import workflow
from tests.web.conftest import make_item


def _bearer(app, name="ed"):
    with app.session() as s:
        token = accounts.create_token(s, user=workflow.get_user(s, name), name="script")[0]
    return {"Authorization": f"Bearer {token}"}


ITEM = {"title": "奖学金评审结果公示", "body_markdown": "名单如下。", "category": "公告公示", "channels": ["mem"]}


def test_the_api_sets_the_period_and_refuses_both_kinds(app, client):
    bearer = _bearer(app)
    r = client.post(
        "/api/items",
        json={**ITEM, "display_until": "2099-03-10T17:00+08:00", "display_working_days": 5},
        headers=bearer,
    )
    assert r.status_code == 422 and "not both" in r.json()["detail"], r.text
    r = client.post("/api/items", json={**ITEM, "display_working_days": 61}, headers=bearer)
    assert r.status_code == 422, r.text
    r = client.post("/api/items", json={**ITEM, "display_until": "2099-03-10T17:00+08:00"}, headers=bearer)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["display_ends_at"].startswith("2099-03-10T09:00") and made["display_working_days"] is None
    r = client.patch(f"/api/items/{made['id']}", json={"display_working_days": 5}, headers=bearer)
    assert r.status_code == 200, r.text
    assert (r.json()["display_until"], r.json()["display_working_days"], r.json()["display_ends_at"]) == (None, 5, None)


def test_item_page_and_calendar_show_the_end(app, client, login):
    item_id = make_item(app, stage="scheduled", publish_at=datetime(2099, 3, 2, 1, 0, tzinfo=UTC))
    with app.session() as s:
        workflow.edit_item(
            app.ctx,
            s,
            item_id=item_id,
            actor=workflow.get_user(s, "ed"),
            changes={"display_until": "2099-03-10T17:00+08:00"},
        )
    login(client, "ed")
    page = client.get(f"/items/{item_id}").text
    block = re.search(r'<p class="meta display-period">(.*?)</p>', page, re.S).group(1)
    assert "公示期" in block and "2099年3月10日 17:00" in block
    week = client.get("/calendar?view=week&day=2099-03-10").text
    cell = re.search(r'data-day="2099-03-10">(.*?)</td>', week, re.S).group(1)
    assert f'data-item="{item_id}"' in cell and "公示期截止" in cell and "17:00" in cell
    en = client.get(f"/items/{item_id}?lang=en").text
    assert "Display period" in en


def test_the_compose_form_sets_the_period(app, client, login):
    csrf = login(client, "ed")
    form = {
        "csrf_token": csrf,
        "title": "奖学金评审结果公示",
        "body_markdown": "名单如下。",
        "category": "公告公示",
        "channels": "mem",
        "when": "none",
        "action": "draft",
        "department": "校长办公室",
        "display_until": "2099-03-10T17:00",  # the viewer's zone (Beijing)
    }
    r = client.post("/items/new", data={**form, "display_working_days": "5"})
    assert r.status_code == 422 and "not both" in r.text
    r = client.post("/items/new", data=form)
    assert r.status_code == 303, r.text
    item_id = int(r.headers["location"].rstrip("/").rsplit("/", 1)[-1])
    with app.session() as s:
        item = workflow.get_item(s, item_id)
        assert (item.display_until, item.display_working_days) == (datetime(2099, 3, 10, 9, 0, tzinfo=UTC), None)
    edit = client.get(f"/items/{item_id}/edit").text
    assert 'name="display_until" value="2099-03-10T17:00"' in edit
    r = client.post(f"/items/{item_id}/edit", data={**form, "display_until": "", "display_working_days": "3"})
    assert r.status_code == 303, r.text
    with app.session() as s:
        item = workflow.get_item(s, item_id)
        assert (item.display_until, item.display_working_days) == (None, 3)


def test_the_ical_feed_has_the_end_beside_the_publication(app, client):
    from datetime import timedelta

    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)  # the feed spans a year ahead
    item_id = make_item(app, stage="scheduled", publish_at=soon)
    until = soon + timedelta(days=10)
    with app.session() as s:
        workflow.edit_item(
            app.ctx, s, item_id=item_id, actor=workflow.get_user(s, "ed"), changes={"display_until": until.isoformat()}
        )
        token = accounts.new_feed_token(s, user=workflow.get_user(s, "ed"))
    ics = client.get(f"/calendar/mem.ics?token={token}").text
    uids = re.findall(r"^UID:(.*)\r$", ics, re.M)
    assert len(uids) == len(set(uids)) == 2  # the planned publication and the end, apart
    assert f"UID:display-end-{item_id}-mem@" in ics and f"DTSTART:{until:%Y%m%dT%H%M%S}Z" in ics
    assert "公示期截止" in ics


def test_a_gongshi_withdrawn_by_a_person_has_no_end_on_the_calendar(app, client, login):
    item_id = make_item(app, stage="scheduled", publish_at=datetime(2099, 3, 2, 1, 0, tzinfo=UTC))
    with app.session() as s:
        workflow.edit_item(
            app.ctx,
            s,
            item_id=item_id,
            actor=workflow.get_user(s, "ed"),
            changes={"display_until": "2099-03-10T17:00+08:00"},
        )
        workflow.withdraw(app.ctx, s, item_id=item_id, reason="发布有误")
    login(client, "ed")
    week = client.get("/calendar?view=week&day=2099-03-10").text
    assert f'data-item="{item_id}"' not in week
