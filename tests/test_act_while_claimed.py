"""A person acts on an item whose deliveries a worker has claimed but not yet started.

The race the office answers for: a worker holds a backlog of claimed deliveries (their posts read at
claim time) while an editor edits an item, a reviewer withdraws it, or a channel is taken off it.
Once that action has committed, nothing of the old version may start on any channel; the delivery
ends cancelled with the person's action as the reason (never failed, which would alert people for
nothing), and the claim uses no attempt. Driven with real workers (``Dispatcher.run`` in threads,
two of them), on both engines.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from publisher.models import AuditLog, Delivery, DeliveryStatus
from publisher.pipeline import workflow
from publisher.pipeline.worker import Dispatcher
from publisher.testing import MemoryChannel
from tests.test_dispatch import approved_item, deliveries

WORKERS = 2


def _claimed_unsent(app: Any, channel: str) -> dict[int, int]:
    """{item id: delivery id} of ``channel``'s deliveries that are claimed and were never called."""
    called = {c[2] for c in MemoryChannel.calls}
    with app.session() as s:
        rows = s.exec(
            select(Delivery).where(Delivery.channel == channel, Delivery.status == DeliveryStatus.CLAIMED)
        ).all()
    return {d.item_id: d.id for d in rows if d.id not in called}


def _act(app: Any, action: str, item: int) -> None:
    with app.session() as s:
        if action == "edit":
            workflow.edit_item(app.ctx, s, item_id=item, actor=workflow.get_user(s, "ed"), changes={"title": "更正"})
        elif action == "withdraw":
            workflow.withdraw(app.ctx, s, item_id=item, reason="泄密")
        else:  # take the held channel off the item
            workflow.edit_item(
                app.ctx, s, item_id=item, actor=workflow.get_user(s, "ed"), changes={"channels": ["mem2"]}
            )


def _settle_reason(app: Any, delivery_id: int) -> str:
    with app.session() as s:
        rows = s.exec(
            select(AuditLog).where(
                AuditLog.entity == "delivery", AuditLog.entity_id == delivery_id, AuditLog.action.startswith("settle")
            )
        ).all()
    return " / ".join(r.reason or "" for r in rows)


@pytest.mark.parametrize("action", ["edit", "withdraw", "remove"])
def test_nothing_of_the_old_version_starts_after_the_person_acted(make_app: Any, action: str) -> None:
    app = make_app(
        channels={"mem": {"type": "memory", "max_concurrency": 1}, "mem2": {"type": "memory"}},
        worker={"threads": 2, "batch_size": 8},
    )
    for _ in range(12):
        approved_item(app, channels=["mem", "mem2"])
    gate = MemoryChannel.hold("mem")  # each worker's one call on mem waits there; the rest sits claimed
    workers = [Dispatcher(engine=app.engine, ctx=app.ctx, worker_id=f"race:{n}:{action}") for n in range(WORKERS)]
    threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
    for t in threads:
        t.start()
    try:
        MemoryChannel.wait_held("mem", WORKERS)
        deadline = time.monotonic() + 30
        while len(_claimed_unsent(app, "mem")) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        backlog = _claimed_unsent(app, "mem")
        assert len(backlog) >= 4, "the workers should hold a backlog of claimed, unsent deliveries"
        acted: dict[int, int] = {}
        for item, did in backlog.items():
            _act(app, action, item)
            acted[item] = did
        # let the calls go the moment the last action has committed: a sender trusting what it read
        # less than CHECK_FRESH before would send the last items' first version here
        gate.set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with app.session() as s:
                busy = s.exec(select(Delivery).where(Delivery.status == DeliveryStatus.CLAIMED)).all()
            if not busy:
                break
            time.sleep(0.05)
    finally:
        gate.set()
        for w in workers:
            w.stop.set()
        for t in threads:
            t.join(30)
    sent_on_mem = [c for c in MemoryChannel.calls if c[0] == "mem" and c[3] in acted]
    assert sent_on_mem == [], f"sent after the {action} had committed: {sent_on_mem}"
    for item, did in acted.items():
        d = deliveries(app, item)["mem"]
        assert d.id == did
        assert d.status == DeliveryStatus.CANCELLED, (item, d.status, d.last_error)
        assert d.attempts == 0  # claimed, never called: no attempt used
        why = _settle_reason(app, did)
        expected = {
            "edit": "item edited after approval before it was sent",
            "withdraw": "withdrawal requested before it was sent",
            "remove": "withdrawal requested before it was sent",
        }[action]
        assert expected in why, why
    # the workers' summaries say so: the calls were withheld, none refused
    with app.session() as s:
        failed = s.exec(select(Delivery).where(Delivery.status == DeliveryStatus.FAILED)).all()
    assert failed == []


def test_a_killed_workers_claims_use_no_attempts(make_app: Any) -> None:
    """Eight workers in a row claim a backlog and die before calling anything (their leases run out);
    the first real call then still has every attempt ahead of it."""
    app = make_app(worker={"max_attempts": 3, "batch_size": 20})
    items = [approved_item(app, channels=["mem"]) for _ in range(20)]
    for n in range(8):
        later = datetime.now(UTC) + timedelta(seconds=(n + 1) * (app.settings.worker.lease_seconds + 1))
        dead = Dispatcher(engine=app.engine, ctx=app.ctx, worker_id=f"dead:{n}:x", clock=lambda t=later: t)
        assert len(dead.claim()) == 20
    MemoryChannel.script("mem", *["t"] * 20)  # the first call of every delivery fails, transiently
    ahead = timedelta(seconds=9 * (app.settings.worker.lease_seconds + 1))
    w = Dispatcher(engine=app.engine, ctx=app.ctx, worker_id="alive:1:x", clock=lambda: datetime.now(UTC) + ahead)
    outcomes = dict(w.run(once=True, horizon=timedelta(seconds=1)).outcomes)
    assert outcomes.get("transient") == 20 and outcomes.get("done") == 20, outcomes
    for item in items:
        d = deliveries(app, item)["mem"]
        assert (d.status, d.attempts) == (DeliveryStatus.DONE, 2)
