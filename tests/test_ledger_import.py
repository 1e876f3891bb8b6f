"""Importing publications made elsewhere: all rows or none, idempotent, counted like the rest."""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa
from sqlmodel import select

from publisher.counting import ledger, periods, stats
from publisher.counting.ledger import ImportRejected
from publisher.errors import InvalidInput
from publisher.models import AuditLog, Delivery, DeliveryStatus, Item
from tests.data import make_year_csv
from tests.ledger_helpers import import_year, year_app

HEADER = ",".join(make_year_csv.HEADER) + "\n"


def _count(app, table) -> int:
    with app.engine.connect() as c:
        n = c.execute(sa.select(sa.func.count()).select_from(table.__table__)).scalar_one()
        c.rollback()
    return n


def _import(app, text: str | bytes, **kw):
    data = text.encode() if isinstance(text, str) else text
    with app.session() as s:
        return ledger.import_csv(app.ctx, s, data=data, source="t.csv", actor="ed", **kw)


def test_year_imports_counts_and_reimport_adds_nothing(make_app, tmp_path):
    app = year_app(make_app)
    r = import_year(app, tmp_path)
    rows = make_year_csv.rows()
    assert r.rows == len(rows) and r.publications_added == len(rows) and r.already_present == 0
    assert r.items_added == len({(t, c, d) for t, c, d, *_ in rows})

    # imported publications are done deliveries with published_at: publisher.counting.stats counts them
    start, end = periods.period("2021-10-01", "2022-10-25", app.settings.zone)
    by_channel = {row["channel"]: row for row in stats.counts(app.engine, stats.StatsQuery(start, end, ("channel",)))}
    assert by_channel["wechat"]["published"] == 260
    assert by_channel["journal"]["published"] == 7 and by_channel["media"]["published"] == 4
    assert by_channel["hr_site"]["published"] == 14
    with app.session() as s:
        items = list(s.exec(select(Item)))
        assert {i.origin for i in items} == {"import"} and {i.status for i in items} == {"published"}
        deliveries = list(s.exec(select(Delivery)))
        assert {d.status for d in deliveries} == {DeliveryStatus.DONE}
        # a recruitment notice on three channels is one item
        notice = s.exec(select(Item).where(Item.category == "招聘信息")).first()
        assert sorted(notice.channels) == ["city_portal", "hr_site", "website"] and notice.checklist_item == 25

    # periods are cut in Beijing time: 00:30 on 1 October belongs to October, 23:30 on 30 September not
    months = Counter()
    for row in stats.counts(
        app.engine, stats.StatsQuery(*periods.period("2021-09-01", "2021-10-31", app.settings.zone), by=("month",))
    ):
        months[row["month"]] += row["published"]
    assert months["2021-09"] == 3  # the two publications of 30 September 23:30, and the 28 September report
    assert "2021-10" in months

    # the same file again adds nothing; nor does our own export of it
    before = (_count(app, Item), _count(app, Delivery))
    again = import_year(app, tmp_path)
    assert again.publications_added == 0 and again.items_added == 0 and again.already_present == len(rows)
    exported = ledger.export_csv(app.engine, app.settings.zone)
    assert exported.startswith("\ufeff" + HEADER.strip())
    assert exported.count("\n") == len(rows) + 1
    r3 = _import(app, exported.encode("utf-8"))
    assert r3.publications_added == 0 and r3.already_present == len(rows)
    assert (_count(app, Item), _count(app, Delivery)) == before


def test_dry_run_adds_nothing(make_app, tmp_path):
    app = year_app(make_app)
    r = import_year(app, tmp_path, dry_run=True)
    assert r.dry_run and r.publications_added == len(make_year_csv.rows())
    # the CLI rolls the dry run back; the service itself never wrote anything
    assert _count(app, Item) == 0 and _count(app, Delivery) == 0


GOOD = "关于某事的通知,公告公示,校长办公室,website,2022-03-01 09:00,http://www.example.edu.cn/a.htm,\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("标题,类别,部门,渠道,时间,网址\n" + GOOD, "row 1 (header): missing column(s) title"),
        ("title,category,department,channel,published_at\n" + GOOD, "missing column(s) url"),
        (HEADER + GOOD + "另一条,公告公示,校长办公室,website,2022/03/01,,\n", "row 3: published_at '2022/03/01'"),
        (HEADER + GOOD + "另一条,公告公示,校长办公室,weibo,2022-03-01,,\n", "row 3: unknown channel 'weibo'"),
        (HEADER + GOOD + "另一条,通知,校长办公室,website,2022-03-01,,\n", "row 3: unknown category '通知'"),
        (HEADER + GOOD + "另一条,公告公示,后勤处,website,2022-03-01,,\n", "row 3: unknown department '后勤处'"),
        (HEADER + GOOD + GOOD, "row 3: repeats row 2"),
        (
            HEADER + GOOD + "另一条,公告公示,校长办公室,website,2099-03-01,,\n",
            "row 3: published_at 2099-03-01 is in the future",
        ),
        (
            HEADER + GOOD + "另一条,公告公示,校长办公室,website,2022-03-01,www.x.cn,\n",
            "row 3: 'www.x.cn' is not a web address",
        ),
        (
            HEADER + GOOD + "另一条,公告公示,校长办公室,website,2022-03-01,,51\n",
            "row 3: checklist_item 51 is outside 1-50",
        ),
        (HEADER + GOOD + "另一条,公告公示,校长办公室,website\n", "row 3: 4 fields, the header has 7"),
        (HEADER, "no data rows"),
    ],
)
@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # parsing does not depend on the engine
def test_bad_rows_are_numbered_and_nothing_is_imported(make_app, text, expected):
    app = year_app(make_app)
    with pytest.raises(ImportRejected) as exc:
        _import(app, text)
    assert expected in str(exc.value), str(exc.value)
    assert "nothing imported" in str(exc.value)
    assert _count(app, Item) == 0 and _count(app, Delivery) == 0


def test_one_bad_row_among_many_rolls_back_everything(make_app, tmp_path):
    app = year_app(make_app)
    good = make_year_csv.write(tmp_path / "y.csv").read_text(encoding="utf-8")
    bad = good + "坏行,公告公示,校长办公室,website,22-3-1,,\n"
    with pytest.raises(ImportRejected, match=r"row \d+: published_at '22-3-1'"):
        _import(app, bad)
    assert _count(app, Item) == 0 and _count(app, Delivery) == 0
    with app.engine.connect() as c:
        assert (
            c.execute(
                sa.select(sa.func.count())
                .select_from(AuditLog.__table__)
                .where(AuditLog.__table__.c.action == "import")
            ).scalar_one()
            == 0
        )
        c.rollback()


def test_gbk_from_excel_is_detected(make_app, tmp_path):
    app = year_app(make_app)
    text = HEADER + "".join(
        f"关于{n}月份学生奖助学金评审结果的公示,公告公示,学生工作部,website,2022-0{n}-15 10:00,,\n" for n in range(1, 9)
    )
    r = _import(app, text.encode("gbk"))
    assert r.encoding == "gb18030" and r.publications_added == 8
    with app.session() as s:
        assert s.exec(select(Item).where(Item.title == "关于1月份学生奖助学金评审结果的公示")).first() is not None


def test_undecodable_file_says_so(make_app):
    app = year_app(make_app)
    data = b"title,category\n" + bytes(range(0x80, 0x100)) * 3
    with pytest.raises(InvalidInput, match="not UTF-8.*--encoding"):
        _import(app, data)


def test_items_on_several_channels_and_checklist_conflict(make_app):
    app = year_app(make_app)
    rows = (
        "规则A,规章制度,校长办公室,website,2022-03-01 09:00,http://a.cn/1,2\n"
        "规则A,规章制度,校长办公室,city_portal,2022-03-02 09:00,http://b.cn/1,3\n"
    )
    with pytest.raises(ImportRejected, match="rows 2, 3: the same item .* different checklist items"):
        _import(app, HEADER + rows)
    r = _import(app, HEADER + rows.replace(",3\n", ",\n"))
    assert r.items_added == 1 and r.publications_added == 2
    # a later file adds the same item on a third channel: same item, one more publication
    r = _import(app, HEADER + "规则A,规章制度,校长办公室,hr_site,2022-03-03 09:00,http://c.cn/1,\n")
    assert r.items_added == 0 and r.publications_added == 1
    with app.session() as s:
        (item,) = s.exec(select(Item)).all()
        assert item.channels == ["website", "city_portal", "hr_site"] and item.checklist_item == 2


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_imported_items_never_enter_the_pipeline(make_app):
    from publisher.errors import NotAllowed
    from publisher.pipeline import workflow

    app = year_app(make_app)
    r = _import(app, HEADER + GOOD)
    (item_id,) = r.item_ids
    with app.session() as s:
        with pytest.raises(NotAllowed, match="recorded from elsewhere"):
            workflow.edit_item(app.ctx, s, item_id=item_id, actor=workflow.get_user(s, "admin"), changes={"title": "x"})
        with pytest.raises(NotAllowed, match="recorded from elsewhere"):
            workflow.withdraw(app.ctx, s, item_id=item_id, actor="admin")
        item = workflow.get_item(s, item_id)
        assert not workflow.is_cleared(s, item)  # no reviews: the dispatcher would refuse it anyway
