"""Calendar views and the iCalendar feed; the dashboard, its CSV and chart; callbacks and /site/."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from publisher import accounts
from publisher.channel import CallbackReply
from publisher.models import ChannelStat, Delivery
from publisher.pipeline import workflow
from publisher.pipeline.worker import Dispatcher
from publisher.testing import MemoryChannel
from tests.web.conftest import csrf_of, make_item

sqlite_only = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


def _token(app, name="ed"):
    """A calendar-feed token (an API token is refused by the feed: tests/web/test_edges.py)."""
    with app.session() as s:
        return accounts.new_feed_token(s, user=workflow.get_user(s, name))


def test_calendar_week_month_and_rescheduling(app, client, login):
    at = datetime(2099, 3, 4, 1, 30, tzinfo=UTC)  # 09:30 in Beijing
    item_id = make_item(app, stage="scheduled", publish_at=at, channels=("mem", "mem2"))
    login(client, "ed")
    week = client.get("/calendar?view=week&day=2099-03-04")
    assert week.status_code == 200
    cell = re.search(r'data-day="2099-03-04">(.*?)</td>', week.text, re.S).group(1)
    assert cell.count(f'data-item="{item_id}"') == 2 and "09:30" in cell
    month = client.get("/calendar?view=month&day=2099-03-20")
    assert f'data-item="{item_id}"' in month.text and 'data-day="2099-02-23"' in month.text  # whole weeks
    # move it to the next day at 10:00 from the calendar
    r = client.post(
        f"/items/{item_id}/schedule?next=/calendar%3Fview%3Dweek",
        data={"csrf_token": csrf_of(week.text), "at": "2099-03-05T10:00", "when": "at"},
    )
    assert r.status_code == 303 and r.headers["location"] == "/calendar?view=week"
    with app.session() as s:
        dues = {d.due_at for d in s.exec(select(Delivery).where(Delivery.item_id == item_id))}
    assert dues == {datetime(2099, 3, 5, 2, 0, tzinfo=UTC)}
    # in the viewer's own zone (the choice sticks in a cookie)
    assert "02:00" in client.get("/calendar?view=week&day=2099-03-05&tz=UTC").text
    # another department's editor does not see it
    client.cookies.clear()
    login(client, "ed2")
    assert f'data-item="{item_id}"' not in client.get("/calendar?view=week&day=2099-03-05").text


def test_ical_feed_per_channel(app, client):
    soon = datetime.now(UTC) + timedelta(days=2)
    item_id = make_item(app, stage="scheduled", publish_at=soon, title="含逗号, 分号; 和很长的标题" * 4)
    assert client.get("/calendar/mem.ics").status_code == 401
    assert client.get("/calendar/mem.ics?token=wrong").status_code == 401
    assert client.get(f"/calendar/mem.ics?token={_token(app, 'viewer')}").status_code == 403
    r = client.get(f"/calendar/mem.ics?token={_token(app)}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/calendar")
    text = r.text
    assert text.startswith("BEGIN:VCALENDAR\r\n") and text.endswith("END:VCALENDAR\r\n")
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    unfolded = text.replace("\r\n ", "")
    assert unfolded.count("BEGIN:VEVENT") == 1
    assert f"DTSTART:{soon.strftime('%Y%m%dT%H%M%SZ')}" in unfolded
    assert "SUMMARY:含逗号\\, 分号\\; 和很长的标题" in unfolded
    assert re.search(r"UID:delivery-\d+@", unfolded) and f"/items/{item_id}" in unfolded
    assert client.get(f"/calendar/nope.ics?token={_token(app)}").status_code == 404


def test_dashboard_counts_csv_and_chart(app, client, login):
    now = datetime.now(UTC)
    ok = make_item(app, stage="scheduled", publish_at=now, channels=("mem", "mem2"))
    MemoryChannel.script("mem2", "p")
    Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True)
    with app.session() as s:
        s.add(ChannelStat(channel="mem", remote_id="1", day=now.date(), metric="reads", value=321))
    login(client, "viewer")
    page = client.get("/dashboard?period=week")
    assert page.status_code == 200
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="chart"' in page.text
    assert "321" in page.text
    assert f"/items/{ok}" not in page.text  # a viewer sees counts, not items
    # nor the failures themselves (title, error text): they are counted, and the list says one is not shown
    assert "scripted permanent failure" not in page.text and 'id="failures-hidden"' in page.text
    csv = client.get("/dashboard.csv?table=category&period=week")
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.lstrip("\ufeff").splitlines()
    assert lines[0] == "channel,category,published,items,failed,pending"
    assert "mem,公告公示,1,1,0,0" in lines and "mem2,公告公示,0,0,1,0" in lines
    for table in ("department", "month", "engagement", "failures", "pending"):
        r = client.get(f"/dashboard.csv?table={table}&period=custom&from=2000-01-01&to=2100-01-01")
        assert r.status_code == 200 and len(r.text.splitlines()) >= (1 if table == "failures" else 2), table
    assert client.get("/dashboard.csv?table=nope").status_code == 422
    assert client.get("/dashboard?period=custom&from=2026-02-01&to=2026-01-01").status_code == 422
    api = client.get("/api/stats?by=channel,category&from=2000-01-01&to=2100-01-01")
    assert api.status_code == 200  # a viewer reads the counts through the API too
    assert {
        "channel": "mem",
        "category": "公告公示",
        "published": 1,
        "items": 1,
        "failed": 0,
        "pending": 0,
    } in api.json()


@sqlite_only
def test_channel_callbacks_reach_the_channel_without_log_in(app, client, monkeypatch):
    seen = []

    def handle(self, method, query, headers, body):
        seen.append((self.name, method, dict(query), body))
        return CallbackReply(status=200, body=b"<xml>ok</xml>", content_type="application/xml")

    monkeypatch.setattr(MemoryChannel, "handle_callback", handle)
    r = client.post("/channels/mem/callback?signature=abc", content=b"<xml>event</xml>")
    assert r.status_code == 200 and r.text == "<xml>ok</xml>" and r.headers["content-type"] == "application/xml"
    assert client.get("/channels/mem/callback?echostr=1").status_code == 200
    assert seen == [("mem", "POST", {"signature": "abc"}, b"<xml>event</xml>"), ("mem", "GET", {"echostr": "1"}, b"")]
    assert client.get("/channels/nope/callback").status_code == 404


@sqlite_only
def test_generated_site_is_served_under_site(app, client):
    from publisher.web import site_folder

    root = site_folder(app)
    (root / "items").mkdir(parents=True)
    (root / "index.html").write_text("<h1>信息公开</h1>", encoding="utf-8")
    (root / "items" / "1.html").write_text("<p>条目</p>", encoding="utf-8")
    assert "信息公开" in client.get("/site/").text
    assert client.get("/site/items/1.html").text == "<p>条目</p>"
    assert client.get("/site/../settings.toml").status_code == 404
    assert client.get("/api/openapi.json").json()["info"]["title"] == "publisher"
    assert client.get("/api/docs").status_code == 200


@sqlite_only
def test_item_page_speaks_chinese_about_attempts(app, client, login):
    """The delivery table's states are Chinese; its attempts and operations were raw English codes."""
    from datetime import timedelta as _td

    item_id = make_item(app, stage="scheduled", publish_at=datetime.now(UTC) + _td(seconds=1))
    Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True, horizon=_td(seconds=5))
    login(client, "ed")
    html = client.get(f"/items/{item_id}").text
    row = html.split('id="delivery-', 1)[1].split("</tr>", 1)[0]
    assert "完成" in row and "发布" in row, row
    assert ">done<" not in row and "· publish" not in row, row
