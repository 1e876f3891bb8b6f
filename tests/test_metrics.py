"""The store part of /metrics: its figures are what plain COUNT queries say, and it reads the
partial indexes (migration 0007) instead of walking every delivery.

Rows are written straight into the tables (every state, due times well before and after now, attempts
of every outcome), then one collector is scraped twice, with more rows added between the scrapes (the
attempt counter is incremental). Both engines.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from publisher.metrics import StoreCollector
from publisher.models import Delivery, DeliveryAttempt, DeliveryStatus, utcnow

CHANNELS = ("wechat", "site", "cms")
OUTCOMES = ("done", "transient", "quota", "permanent", "ambiguous", "error")
D = Delivery.__table__  # type: ignore[attr-defined]
A = DeliveryAttempt.__table__  # type: ignore[attr-defined]
ITEMS = 40  # items made once per test; each delivery row takes an item of its own

row = st.tuples(
    st.sampled_from(CHANNELS),
    st.sampled_from(list(DeliveryStatus)),
    st.sampled_from([-72, -1, 1, 72]),  # due this many hours from now: never near the scrape
    st.lists(st.sampled_from(OUTCOMES), max_size=3),
)
batches = st.lists(row, max_size=ITEMS // 2)


def _items(app: Any) -> list[int]:
    from tests.web.conftest import make_item

    return [make_item(app, title=f"第{n}号") for n in range(ITEMS)]


def _write(app: Any, items: list[int], rows: list[tuple[str, str, int, list[str]]]) -> None:
    now = utcnow()
    with app.engine.begin() as c:
        for item_id, (channel, status, hours, outcomes) in zip(items, rows, strict=False):
            d = c.execute(
                sa.insert(D).values(
                    item_id=item_id,
                    channel=channel,
                    op="publish",
                    status=status,
                    due_at=now + timedelta(hours=hours),
                    item_version=1,
                    attempts=len(outcomes),
                    state={},
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
            for number, outcome in enumerate(outcomes, 1):
                c.execute(
                    sa.insert(A).values(
                        delivery_id=d,
                        number=number,
                        op="publish",
                        worker="test",
                        started_at=now,
                        finished_at=now,
                        outcome=outcome,
                    )
                )


def _scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _expected(app: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The same figures, each from the plainest COUNT query (statuses bound as parameters)."""
    owed, due = ("pending", "claimed", "waiting"), ("pending", "waiting")
    q = {
        "publisher_deliveries": (
            "select channel, status, count(*) from delivery where status in :states group by channel, status",
            {"states": (*owed, "failed")},
            ("channel", "status"),
        ),
        "publisher_queue_depth": (
            "select channel, count(*) from delivery where status in :states group by channel",
            {"states": owed},
            ("channel",),
        ),
        "publisher_queue_due": (
            "select channel, count(*) from delivery where status in :states and due_at <= :now group by channel",
            {"states": due, "now": utcnow()},
            ("channel",),
        ),
        "publisher_delivery_attempts_total": (
            "select d.channel, a.outcome, count(*) from delivery_attempt a join delivery d on d.id = a.delivery_id "
            "group by d.channel, a.outcome",
            {},
            ("channel", "outcome"),
        ),
    }
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {("publisher_store_up", ()): 1.0}
    with app.engine.connect() as c:
        for name, (sql, params, labels) in q.items():
            stmt = sa.text(sql)
            if "states" in params:
                stmt = stmt.bindparams(sa.bindparam("states", expanding=True))
            for *keys, n in c.execute(stmt, params):
                out[(name, tuple(sorted(zip(labels, keys, strict=True))))] = float(n)
    return out


def _check(app: Any, registry: CollectorRegistry) -> None:
    before = utcnow()
    got = _scrape(registry)
    after = utcnow()
    age = {dict(k[1])["channel"]: v for k, v in got.items() if k[0] == "publisher_queue_oldest_due_seconds"}
    assert {k: v for k, v in got.items() if k[0] != "publisher_queue_oldest_due_seconds"} == _expected(app)
    # the age of the oldest due delivery not started, as of the scrape (between ``before`` and ``after``)
    with app.engine.connect() as c:
        oldest = dict(
            c.execute(
                sa.select(D.c.channel, sa.func.min(D.c.due_at))
                .where(D.c.status.in_(["pending", "waiting"]), D.c.due_at <= before)
                .group_by(D.c.channel)
            ).all()
        )
    assert set(age) == set(oldest)
    for channel, first in oldest.items():
        assert (before - first).total_seconds() - 1e-3 <= age[channel] <= (after - first).total_seconds() + 1e-3


def test_metrics_are_the_plain_counts(app: Any) -> None:
    items = _items(app)

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(first=batches, second=batches)
    def check(first: list[Any], second: list[Any]) -> None:
        with app.engine.begin() as c:
            c.execute(sa.text("delete from delivery_attempt"))
            c.execute(sa.text("delete from delivery"))
        registry = CollectorRegistry()
        registry.register(StoreCollector(app.engine))  # a fresh collector: the attempt ids start again
        _write(app, items[: len(first)], first)
        _check(app, registry)
        _write(app, items[ITEMS // 2 : ITEMS // 2 + len(second)], second)
        _check(app, registry)  # the attempts counted since the first scrape are added to it

    check()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_scrape_reads_the_partial_indexes_not_every_delivery(app: Any) -> None:
    """SQLite only: PostgreSQL's plan for a small table is a sequential scan whatever the query. With
    its statuses bound as parameters SQLite can not tell the query lies within a partial index, and
    walked the whole table through the channel index (~2 s a scrape on a million items)."""
    from sqlalchemy import event

    _write(app, _items(app), [("wechat", s, -1, ["done"]) for s in DeliveryStatus])
    with app.engine.begin() as c:
        c.execute(sa.text("analyze"))
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, stmt: str, params: Any, context: Any, many: bool) -> None:
        seen.append((stmt, params))

    registry = CollectorRegistry()
    registry.register(StoreCollector(app.engine))
    event.listen(app.engine, "before_cursor_execute", record)
    try:
        _scrape(registry)
    finally:
        event.remove(app.engine, "before_cursor_execute", record)
    reads = [(stmt, params) for stmt, params in seen if "delivery_attempt" not in stmt and "FROM delivery" in stmt]
    assert reads
    used = set()
    with app.engine.connect() as c:
        for stmt, params in reads:
            plan = [r[-1] for r in c.exec_driver_sql("EXPLAIN QUERY PLAN " + stmt, params).all()]
            assert not any(p.startswith("SCAN delivery") for p in plan), (stmt, plan)
            used |= {ix for ix in ("ix_delivery_owed", "ix_delivery_failed") if any(ix in p for p in plan)}
    assert used == {"ix_delivery_owed", "ix_delivery_failed"}
