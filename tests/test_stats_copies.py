"""Each delivery's copy of its item's category, department and checklist item (migration 0007) is
the item's, whoever writes: the workflow, an import, the sync, or plain SQL; and the live counts
of failures and pending work, which read the copies, stay exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from publisher.counting import ledger, periods, stats
from publisher.models import Delivery, DeliveryStatus, Item, ItemOrigin
from publisher.pipeline import workflow
from publisher.pipeline.worker import Dispatcher
from publisher.testing import MemoryChannel
from tests.web.conftest import make_item

D = Delivery.__table__  # type: ignore[attr-defined]
I = Item.__table__  # type: ignore[attr-defined]  # noqa: E741


def _drift(engine: sa.Engine) -> list[tuple]:
    """Deliveries whose copies differ from their item's fields (NULLs compared as values)."""
    with engine.connect() as c:
        rows = c.execute(
            sa.select(
                D.c.id,
                D.c.item_category,
                I.c.category,
                D.c.item_department,
                I.c.department,
                D.c.item_checklist_item,
                I.c.checklist_item,
            )
            .select_from(D.join(I, I.c.id == D.c.item_id))
            .where(
                sa.or_(
                    D.c.item_category.is_distinct_from(I.c.category),
                    D.c.item_department.is_distinct_from(I.c.department),
                    D.c.item_checklist_item.is_distinct_from(I.c.checklist_item),
                )
            )
        ).all()
        total = c.execute(sa.select(sa.func.count()).select_from(D)).scalar()
    assert total, "no deliveries: nothing was checked"
    return [tuple(r) for r in rows]


def _joined_counts(engine: sa.Engine, by: str, start: datetime, end: datetime) -> dict[object, tuple[int, int]]:
    """(failed, pending) per item field, counted through the item table: what the copies replace."""
    owed = [DeliveryStatus.PENDING.value, DeliveryStatus.CLAIMED.value, DeliveryStatus.WAITING.value]
    out: dict[object, list[int]] = {}
    with engine.connect() as c:
        for i, where in enumerate(
            (
                sa.and_(D.c.status == DeliveryStatus.FAILED.value, D.c.updated_at >= start, D.c.updated_at < end),
                sa.and_(D.c.status.in_(owed), D.c.due_at < end),
            )
        ):
            for key, n in c.execute(
                sa.select(I.c[by], sa.func.count())
                .select_from(D.join(I, I.c.id == D.c.item_id))
                .where(where)
                .group_by(I.c[by])
            ):
                out.setdefault(key, [0, 0])[i] = n
    return {k: (v[0], v[1]) for k, v in out.items()}


def _stats_counts(app, by: str, start: datetime, end: datetime) -> dict[object, tuple[int, int]]:
    q = stats.StatsQuery(start=start, end=end, by=(by,), tz=app.settings.zone)
    return {r[by]: (r["failed"], r["pending"]) for r in stats.counts(app.engine, q) if r["failed"] or r["pending"]}


def test_copies_follow_the_item_through_queue_edit_import_and_sql(app):
    tz = app.settings.zone
    start, end = periods.period("2000-01-01", "2100-01-01", tz)
    later = datetime.now(UTC) + timedelta(days=30)
    a = make_item(app, stage="scheduled", channels=("mem", "mem2"))  # published on mem, fails on mem2
    b = make_item(app, author="ed2", stage="scheduled", channels=("mem",), title="人事处通知")  # published
    c = make_item(app, stage="scheduled", channels=("mem", "mem2"), title="下月的公告", publish_at=later)  # owed
    MemoryChannel.script("mem2", "p")
    Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True)
    assert _drift(app.engine) == []
    for by in ("category", "department", "checklist_item"):
        assert _stats_counts(app, by, start, end) == _joined_counts(app.engine, by, start, end), by
    assert _stats_counts(app, "category", start, end) == {"公告公示": (1, 2)}

    # an edit of the fields after publication (the item goes back to review; its deliveries stay)
    with app.session() as s:
        workflow.edit_item(
            app.ctx, s, item_id=a, actor=workflow.get_user(s, "ed"), changes={"category": "新闻", "checklist_item": 7}
        )
    assert _drift(app.engine) == []
    assert _stats_counts(app, "category", start, end) == _joined_counts(app.engine, "category", start, end)
    assert _stats_counts(app, "checklist_item", start, end)[7] == (1, 0)

    # an import: a new recorded item, and a second row giving an existing imported item its checklist number
    imp = ItemOrigin.IMPORT
    with app.session() as s:
        i = ledger.new_recorded_item(
            s,
            title="旧公告",
            category="招聘信息",
            department="人事处",
            origin=imp,
            checklist_item=None,
            published_at=datetime(2020, 5, 1, tzinfo=UTC),
        )
        ledger.add_recorded_delivery(
            s, i, channel="site", published_at=datetime(2020, 5, 1, tzinfo=UTC), url=None, note="test"
        )
        i.checklist_item = 25
        ledger.add_recorded_delivery(
            s, i, channel="mem", published_at=datetime(2020, 5, 2, tzinfo=UTC), url=None, note="test"
        )
        imported = i.id
    assert _drift(app.engine) == []
    with app.engine.connect() as conn:
        assert set(conn.execute(sa.select(D.c.item_checklist_item).where(D.c.item_id == imported))) == {(25,)}

    # plain SQL: a field changed on the item (a rename of a department), a delivery written with wrong
    # copies, a copy overwritten, a delivery moved to another item
    with app.engine.begin() as conn:
        conn.execute(sa.update(I).where(I.c.department == "人事处").values(department="人力资源处"))
        conn.execute(
            sa.insert(D).values(
                item_id=b,
                channel="mem2",
                op="publish",
                status="failed",
                due_at=later,
                item_version=1,
                attempts=1,
                state={},
                created_at=later,
                updated_at=later,
                item_category="规章制度",
                item_department="nowhere",
                item_checklist_item=50,
            )
        )
        conn.execute(sa.update(D).where(D.c.item_id == a, D.c.channel == "mem").values(item_category="其他"))
        conn.execute(sa.update(D).where(D.c.item_id == c, D.c.channel == "mem2").values(item_id=imported))
    assert _drift(app.engine) == []
    for by in ("category", "department", "checklist_item"):
        assert _stats_counts(app, by, start, end) == _joined_counts(app.engine, by, start, end), by
    assert _stats_counts(app, "department", start, end)["人力资源处"] == (1, 1)


def test_copies_of_remote_items_found_by_the_sync(app):
    with app.session() as s:
        item = ledger.new_recorded_item(
            s,
            title="公众号文章",
            category="新闻",
            department="党委宣传部",
            origin=ItemOrigin.REMOTE,
            checklist_item=None,
            published_at=datetime(2026, 3, 1, tzinfo=UTC),
        )
        ledger.add_recorded_delivery(
            s,
            item,
            channel="mem",
            published_at=datetime(2026, 3, 1, tzinfo=UTC),
            url="https://example.org/a",
            remote_id="r1",
            note="found by sync",
        )
    assert _drift(app.engine) == []
    with app.session() as s:
        d = s.exec(select(Delivery).where(Delivery.remote_id == "r1")).one()
        assert (d.item_category, d.item_department, d.item_checklist_item) == ("新闻", "党委宣传部", None)


def test_migration_fills_the_copies_of_an_existing_store(store_url):
    """Down to 0006, deliveries written there, up again: every copy filled, the triggers back."""
    from alembic import command

    from publisher.db import alembic_config, make_engine

    engine = make_engine(store_url)
    cfg = alembic_config(store_url)
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006_stats_rollup")
        conn.commit()
    now = datetime.now(UTC).replace(tzinfo=None)
    with engine.begin() as conn:
        uid = conn.execute(
            sa.text(
                'insert into "user" (name, display_name, role, active, created_at) '
                "values ('x', '', 'editor', true, :t) returning id"
            ),
            {"t": now},
        ).scalar()
        for n, (cat, dept, number) in enumerate((("新闻", "人事处", None), ("招聘信息", "教务处", 12)), start=1):
            conn.execute(
                sa.text(
                    "insert into item (id, title, summary, body_markdown, body_html, category, department, author_id, "
                    "checklist_item, channels, status, version, created_at, updated_at, origin) values (:id, 't', '', "
                    "'', '', :cat, :dept, :uid, :number, '[]', 'published', 1, :t, :t, 'pipeline')"
                ),
                {"id": n, "cat": cat, "dept": dept, "uid": uid, "number": number, "t": now},
            )
            for ch in ("mem", "mem2"):
                conn.execute(
                    sa.text(
                        "insert into delivery (item_id, channel, op, status, due_at, item_version, attempts, state, "
                        "created_at, updated_at) values (:id, :ch, 'publish', 'pending', :t, 1, 0, '{}', :t, :t)"
                    ),
                    {"id": n, "ch": ch, "t": now},
                )
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        conn.commit()
    with engine.connect() as conn:
        got = conn.execute(
            sa.select(D.c.item_id, D.c.item_category, D.c.item_department, D.c.item_checklist_item).order_by(D.c.id)
        ).all()
    assert [tuple(r) for r in got] == [(1, "新闻", "人事处", None)] * 2 + [(2, "招聘信息", "教务处", 12)] * 2
    with engine.begin() as conn:
        conn.execute(sa.update(I).where(I.c.id == 1).values(category="其他"))
    assert _drift(engine) == []
    engine.dispose()


@pytest.mark.parametrize("what", ["failed", "pending"])
def test_live_counts_read_the_partial_index(app, what):
    """The failures and pending work are found in their partial index (the statuses are literals)."""
    statements: list[tuple[str, object]] = []

    def grab(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if "delivery" in statement and "status" in statement:
            statements.append((statement, parameters))

    tz = app.settings.zone
    q = stats.StatsQuery(*periods.period("2026-01-01", "2026-12-31", tz), by=("category", "month"), tz=tz)
    sa.event.listen(app.engine, "before_cursor_execute", grab)
    try:
        stats.counts(app.engine, q, rollup=False)
    finally:
        sa.event.remove(app.engine, "before_cursor_execute", grab)
    statement, params = next((s, p) for s, p in statements if ("'failed'" if what == "failed" else "'waiting'") in s)
    index = "ix_delivery_failed" if what == "failed" else "ix_delivery_owed"
    with app.engine.connect() as conn:
        if app.engine.dialect.name == "sqlite":
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params))
            assert f"COVERING INDEX {index}" in plan, plan
        else:
            # an empty table is read whole by any planner: forbid that to see which index it would take
            conn.exec_driver_sql("SET enable_seqscan = off")
            conn.exec_driver_sql("SET enable_bitmapscan = off")
            plan = " ".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, params))
            assert f"Index Only Scan using {index}" in plan, plan
        conn.rollback()
