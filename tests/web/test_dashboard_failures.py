"""The dashboard's "recent failures" lists only the failures of items the reader may open (``can_view``),
and says how many others there are; the per-channel counts stay the office's."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime

from sqlmodel import select

from publisher.models import Item, Role, User
from publisher.pipeline.worker import Dispatcher
from publisher.testing import MemoryChannel
from publisher.web.common import can_view, view_filter
from tests.web.conftest import make_item

OURS, THEIRS = "校长办公室的失败稿件", "人事处的失败稿件"


def _two_failures(app) -> tuple[int, int]:
    now = datetime.now(UTC)
    a = make_item(app, author="ed", title=OURS, stage="scheduled", publish_at=now, channels=("mem2",))
    b = make_item(app, author="ed2", title=THEIRS, stage="scheduled", publish_at=now, channels=("mem2",))
    MemoryChannel.script("mem2", "p", "p")
    Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True)
    return a, b


def _failures_section(html: str) -> str:
    return html[html.index('id="recent-failures"') :]


def _hidden(html: str) -> int:
    m = re.search(r'id="failures-hidden">\D*([\d,]+)', html)
    return int(m.group(1).replace(",", "")) if m else 0


def test_each_reader_sees_only_failures_of_items_they_may_open(app, client, login):
    a, b = _two_failures(app)
    for name, shown, hidden in (
        ("ed", {a}, 1),
        ("head2", {b}, 1),
        ("viewer", set(), 2),
        ("sec", {a, b}, 0),
        ("admin", {a, b}, 0),
    ):
        client.cookies.clear()
        login(client, name)
        page = client.get("/dashboard?period=week")
        assert page.status_code == 200, name
        section = _failures_section(page.text)
        for item_id, title in ((a, OURS), (b, THEIRS)):
            assert (title in section) == (item_id in shown), (name, title)
            assert (f'href="/items/{item_id}#delivery-' in section) == (item_id in shown), (name, item_id)
        assert section.count("scripted permanent failure") == len(shown), name
        assert _hidden(page.text) == hidden, name
        # the office's counts are not cut: both failures are counted for everyone
        pending = page.text[: page.text.index('id="recent-failures"')]
        assert re.search(r'<span class="bad">2</span>', pending), name
        # every listed link opens for this reader
        for item_id in shown:
            assert client.get(f"/items/{item_id}").status_code == (404 if name == "viewer" else 200)
        csv = client.get("/dashboard.csv?table=failures&period=week").text
        assert (OURS in csv, THEIRS in csv) == (a in shown, b in shown), name


def test_the_sql_filter_is_the_can_view_rule(app):
    """``view_filter`` (the query) and ``can_view`` (the page) agree for every role and department."""
    make_item(app, author="ed")
    make_item(app, author="ed2")
    with app.session() as s:
        items = list(s.exec(select(Item)))
        assert {i.department for i in items} == {"校长办公室", "人事处"}
        for role, dept in itertools.product(list(Role), [None, "校长办公室", "人事处", "财务处"]):
            user = User(name="probe", role=role, department=dept)
            cond = view_filter(user)
            query = select(Item.id) if cond is None else select(Item.id).where(cond)
            assert set(s.exec(query)) == {i.id for i in items if can_view(user, i)}, (role, dept)
