"""Checklist coverage (current / stale / never, by admin-set rules) and per-department timeliness."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from publisher.counting import coverage, ledger, periods
from publisher.counting.workdays import Calendar
from publisher.errors import InvalidInput
from publisher.models import Delivery, Item
from publisher.pipeline import content, workflow
from publisher.pipeline.worker import Dispatcher
from tests.ledger_helpers import year_app

HEADER = "title,category,department,channel,published_at,url,checklist_item\n"
AS_OF = datetime(2022, 10, 26, tzinfo=UTC)


def _import(app, text):
    with app.session() as s:
        return ledger.import_csv(app.ctx, s, data=(HEADER + text).encode(), source="t.csv", actor="admin")


def _by_number(app, **kw):
    return {c.number: c for c in coverage.coverage(app.engine, app.settings, as_of=AS_OF, **kw)}


def test_status_by_rule_and_places(make_app):
    app = year_app(make_app)
    _import(
        app,
        (
            "章程,规章制度,校长办公室,website,2022-03-01 09:00,http://a.cn/1,2\n"
            "章程,规章制度,校长办公室,city_portal,2022-03-02 09:00,http://b.cn/1,2\n"
            "旧章程,规章制度,校长办公室,website,2020-03-01 09:00,http://a.cn/0,2\n"
            "预算,公告公示,财务处,website,2022-06-01 09:00,http://a.cn/2,19\n"
            "年报,公告公示,校长办公室,website,2021-09-20 09:00,http://a.cn/3,6\n"
        ),
    )
    cov = _by_number(app)
    assert len(cov) == 50
    assert cov[2].status == "current" and cov[2].title == "章程"
    assert cov[2].places == [("website", "http://a.cn/1"), ("city_portal", "http://b.cn/1")]
    assert cov[2].latest_at == datetime(2022, 3, 1, 1, tzinfo=UTC)  # 09:00 Beijing
    assert len(cov[2].rows) == 3  # every publication naming item 2, the old one too
    assert cov[6].status == "stale"  # annual by default; over a year old
    assert cov[1].status == "never" and cov[1].places == []
    # an admin says the budget is republished monthly: now it is stale
    with app.session() as s:
        coverage.set_rule(s, number=19, rule="monthly", actor="admin")
        coverage.set_rule(s, number=6, rule="on-change", actor="admin")
    cov = _by_number(app)
    assert (cov[19].rule, cov[19].status) == ("monthly", "stale")
    assert (cov[6].rule, cov[6].status) == ("on_change", "current")
    with app.session() as s, pytest.raises(InvalidInput, match="unknown rule 'weekly'"):
        coverage.set_rule(s, number=19, rule="weekly", actor="admin")
    with app.session() as s, pytest.raises(InvalidInput, match="outside 1-50"):
        coverage.set_rule(s, number=51, rule="annual", actor="admin")


def test_pages_taken_down_do_not_count_as_published(make_app):
    app = year_app(make_app)
    _import(
        app,
        "章程,规章制度,校长办公室,website,2022-03-01 09:00,http://a.cn/1,2\n"
        "章程,规章制度,校长办公室,city_portal,2022-03-01 09:00,http://b.cn/1,2\n",
    )
    d = Delivery.__table__
    with app.engine.begin() as c:
        c.execute(
            sa.update(d).where(d.c.channel == "city_portal").values(taken_down_at=datetime(2022, 5, 1, tzinfo=UTC))
        )
    cov = _by_number(app)
    assert cov[2].status == "current" and cov[2].places == [("website", "http://a.cn/1")]
    with app.engine.begin() as c:
        c.execute(sa.update(d).values(taken_down_at=datetime(2022, 5, 1, tzinfo=UTC)))
    assert _by_number(app)[2].status == "stale"


def _publish_pipeline(app, tmp_path, title: str, dept_user: str, created: datetime, published: datetime) -> int:
    f = tmp_path / f"{title}.md"
    f.write_text(f"---\ntitle: {title}\ncategory: 公告公示\nchannels: [website]\n---\n正文\n", encoding="utf-8")
    head = {"ed": "head", "ed2": "head2"}[dept_user]
    with app.session() as s:
        draft = content.read_item_file(f, media_dir=app.settings.media_dir, max_body_bytes=10**6, max_asset_bytes=10**6)
        item = workflow.create_item(app.ctx, s, author=workflow.get_user(s, dept_user), draft=draft)
        workflow.submit(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, dept_user))
        workflow.review(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, head), approve=True)
        workflow.review(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, "sec"), approve=True)
        workflow.schedule(app.ctx, s, item_id=item.id, at=datetime.now(UTC))
    Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True)
    # the history of a past year, written into the store as the pipeline would have
    with app.engine.begin() as c:
        c.execute(sa.update(Item.__table__).where(Item.__table__.c.id == item.id).values(created_at=created))
        c.execute(
            sa.update(Delivery.__table__).where(Delivery.__table__.c.item_id == item.id).values(published_at=published)
        )
    return item.id


def test_timeliness_in_chinese_working_days(make_app, tmp_path):
    app = year_app(make_app)
    # Wednesday 28 September 2022 → Monday 10 October: the National Day week is off, but the
    # weekend of 8-9 October is worked (调休), so 5 working days
    on_time = _publish_pipeline(
        app, tmp_path, "国庆前后", "ed", datetime(2022, 9, 28, 2, tzinfo=UTC), datetime(2022, 10, 10, 2, tzinfo=UTC)
    )
    late = _publish_pipeline(
        app, tmp_path, "拖了很久", "ed2", datetime(2022, 1, 4, 2, tzinfo=UTC), datetime(2022, 3, 1, 2, tzinfo=UTC)
    )
    _import(app, "导入的不算,公告公示,人事处,website,2022-03-01 09:00,http://a.cn/9,\n")
    start, end = periods.period("2021-10-01", "2022-10-25", app.settings.zone)
    cal = Calendar()
    rows = {r.department: r for r in coverage.timeliness(app.engine, app.settings, start, end, cal)}
    assert set(rows) == {"校长办公室", "人事处"}
    office, hr = rows["校长办公室"], rows["人事处"]
    assert (office.items, office.on_time, office.late, office.max_days) == (1, 1, 0, 5)
    assert (hr.items, hr.late) == (1, 1) and hr.late_items[0][0] == late and hr.max_days > 20
    assert cal.note == ""
    assert on_time


def test_calendar_falls_back_to_monday_friday_and_says_so():
    cal = Calendar()
    assert cal.between(date(2022, 9, 30), date(2022, 10, 8)) == 1  # 1-7 October off, 8 October worked
    assert cal.add(date(2022, 9, 30), 1) == date(2022, 10, 8)
    assert cal.note == ""
    far = Calendar()
    assert far.between(date(2099, 1, 1), date(2099, 1, 8)) == 5  # Thu 1 Jan 2099: Fri, Mon-Thu
    assert "2099" in far.note and "Monday-Friday" in far.note


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_cli_coverage(make_app, store_url, tmp_path):
    from typer.testing import CliRunner

    from publisher.cli import app as cli

    year_app(make_app)
    settings = tmp_path / "settings.toml"
    settings.write_text(
        f'database_url = "{store_url}"\ndata_dir = "{tmp_path}"\n[channels.website]\ntype = "memory"\n',
        encoding="utf-8",
    )
    r = CliRunner().invoke(cli, ["--settings", str(settings), "coverage", "rule", "19", "monthly"])
    assert r.exit_code == 0 and "checklist item 19: monthly" in r.output, r.output
    r = CliRunner().invoke(cli, ["--settings", str(settings), "coverage", "--from", "2022-01-01", "--to", "2022-12-31"])
    assert r.exit_code == 0, r.output
    assert "monthly" in r.output and "never" in r.output and "no pipeline items published" in r.output
