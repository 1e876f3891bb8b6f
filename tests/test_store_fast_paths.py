"""The fast paths the delivery store keeps, pinned on both engines.

Each one replaces something SQLAlchemy does in the ordinary way (publisher.db.records for Row,
publisher.db.DriverMany for executemany, the store's post cache for reading a post at each start);
each must give exactly what the ordinary way gives.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from bench._common import seed_deliveries
from publisher.db import DriverMany, records
from publisher.models import Delivery, DeliveryAttempt, DeliveryOp, DeliveryStatus, Item
from publisher.pipeline.outcome import OutcomeKind
from publisher.pipeline.store import open_store
from publisher.pipeline.store.posts import PostCache
from publisher.pipeline.store.record import ATTEMPT_KEYS

D = Delivery.__table__  # type: ignore[attr-defined]
ATTEMPT = DeliveryAttempt.__table__  # type: ignore[attr-defined]
ITEM = Item.__table__  # type: ignore[attr-defined]


def test_records_give_the_values_of_plain_rows(app: Any) -> None:
    seed_deliveries(app, 5, ["mem", "mem2"])
    with app.engine.begin() as conn:
        conn.execute(
            sa.update(D)
            .where(D.c.id == sa.select(sa.func.min(D.c.id)).scalar_subquery())
            .values(state={"a": [1, None]})
        )
    q = sa.select(D, sa.null().label("no_value"), D.c.id.label("id_again")).order_by(D.c.id)
    with app.engine.connect() as conn:
        plain = conn.execute(q).all()
        fast = records(conn.execute(q))
    assert len(fast) == len(plain) == 10
    for r, p in zip(fast, plain, strict=True):
        assert tuple(r) == tuple(p)
        for key in p._mapping:
            assert getattr(r, key) == p._mapping[key], key
    assert records(_empty(app)) == []


def _empty(app: Any) -> Any:
    with app.engine.connect() as conn:
        return conn.execute(sa.select(D.c.id).where(D.c.id < 0))


def _attempt_rows(delivery_id: int) -> list[dict[str, Any]]:
    plus8 = timezone(timedelta(hours=8))
    at = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    return [
        dict(
            delivery_id=delivery_id,
            number=n,
            op=DeliveryOp.PUBLISH if n % 2 else "update",
            worker=f"host:{n}:abc",
            started_at=at.astimezone(plus8) if n == 2 else at,
            finished_at=at + timedelta(microseconds=n),
            outcome=OutcomeKind.DONE if n == 1 else "transient",
            message=None if n != 3 else "tab\there, newline\nthere, back\\slash, 中文",
            code=None if n != 3 else "503",
        )
        for n in (1, 2, 3)
    ]


def test_driver_many_inserts_what_sqlalchemy_inserts(app: Any) -> None:
    seed_deliveries(app, 2, ["mem"])
    with app.engine.connect() as conn:
        a, b = conn.execute(sa.select(D.c.id).order_by(D.c.id)).scalars().all()
    with app.engine.begin() as conn:
        DriverMany(app.engine.dialect, sa.insert(ATTEMPT), ATTEMPT_KEYS).execute(conn, _attempt_rows(a))
        conn.execute(sa.insert(ATTEMPT), _attempt_rows(b))
    cols = [ATTEMPT.c[k] for k in ATTEMPT_KEYS if k != "delivery_id"]
    with app.engine.connect() as conn:
        fast = conn.execute(sa.select(*cols).where(ATTEMPT.c.delivery_id == a).order_by(ATTEMPT.c.number)).all()
        slow = conn.execute(sa.select(*cols).where(ATTEMPT.c.delivery_id == b).order_by(ATTEMPT.c.number)).all()
    assert fast == slow and len(fast) == 3
    assert fast[1].started_at == datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    assert fast[0].outcome == "done" and fast[0].op == "publish" and fast[2].message.startswith("tab\t")


def test_driver_many_updates_what_sqlalchemy_updates(app: Any) -> None:
    seed_deliveries(app, 4, ["mem"])
    with app.engine.connect() as conn:
        ids = conn.execute(sa.select(D.c.id).order_by(D.c.id)).scalars().all()
    due = datetime(2026, 5, 4, 3, 2, 1, 654321, tzinfo=UTC)
    values = {
        "status": DeliveryStatus.PENDING,
        "lease_owner": None,
        "lease_expires_at": None,
        "due_at": due,
        "updated_at": due,
        "attempts": 2,
        "state": {"step": "upload", "ids": [1, 2], "none": None},
        "last_error": "ambiguous: timed out",
        "last_error_kind": OutcomeKind.AMBIGUOUS,
        "last_error_code": None,
    }
    stmt = sa.update(D).where(D.c.id == sa.bindparam("b_id"))
    with app.engine.begin() as conn:
        DriverMany(app.engine.dialect, stmt, tuple(values)).execute(conn, [{"b_id": i, **values} for i in ids[:2]])
        conn.execute(stmt, [{"b_id": i, **values} for i in ids[2:]])
    cols = [D.c[k] for k in values]
    with app.engine.connect() as conn:
        got = conn.execute(sa.select(*cols).where(D.c.id.in_(ids)).order_by(D.c.id)).all()
    assert got[0] == got[1] == got[2] == got[3]
    assert got[0].status == "pending" and got[0].due_at == due and got[0].last_error_kind == "ambiguous"
    assert got[0].state == {"step": "upload", "ids": [1, 2], "none": None} and got[0].lease_owner is None


def test_the_post_cache_is_bounded(app: Any) -> None:
    seed_deliveries(app, 5, ["mem"])
    with app.engine.connect() as conn:
        items = conn.execute(sa.select(ITEM.c.id).order_by(ITEM.c.id)).scalars().all()
    store = open_store(app.engine, app.ctx, "host:1:test")
    assert store.posts.bound == PostCache.BOUND == 20_000
    cache = PostCache(app.ctx, store.connections, bound=3)
    cache.load(items[:2])
    assert len(cache) == 2
    cache.load(items[2:4])
    assert len(cache) <= 3
    cache.get(items[4])
    assert len(cache) <= 3 and cache.get(items[4]).version == 1
    cache.load(items)  # one batch over the bound keeps at most the bound
    assert len(cache) <= 3


def test_a_start_never_sends_a_cached_post_of_an_older_version(app: Any) -> None:
    seed_deliveries(app, 1, ["mem"])
    store = open_store(app.engine, app.ctx, "host:1:test")
    now = datetime.now(UTC)
    [claim] = store.claim({"mem": 5}, 5, 5, now, now + timedelta(seconds=60)).claims
    assert store.posts.get(claim.item_id).version == 1  # read in the claim's batch
    with app.engine.begin() as conn:  # the item moves on (no request on the delivery)
        conn.execute(sa.update(ITEM).where(ITEM.c.id == claim.item_id).values(version=2, title="changed"))
    refused, _post = store.start(claim)
    assert refused is None
    assert store.posts.get(claim.item_id).version == 2  # the start held only at the new version
    assert store.posts.get(claim.item_id).post.title == "changed"
    with app.engine.connect() as conn:
        assert conn.execute(sa.select(D.c.attempts).where(D.c.id == claim.id)).scalar_one() == 1
    # a lost lease is told as such, whatever the cache holds
    with app.engine.begin() as conn:
        conn.execute(sa.update(D).where(D.c.id == claim.id).values(lease_owner="someone:2:else"))
    assert store.start(claim) == (OutcomeKind.LOST_LEASE, None)
