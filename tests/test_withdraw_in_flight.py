"""A withdrawal, an edit, a re-approval or a channel's removal while a channel call is in flight.

The call is held open inside a MemoryChannel (``MemoryChannel.hold``) while the person acts; the
request is recorded at once and the worker applies it when it records the call's outcome. On both
engines (``store_url``), with the real Dispatcher and the real service functions.
"""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from publisher.models import AuditLog, Delivery, DeliveryOp, DeliveryRequest, DeliveryStatus, ItemStatus
from publisher.pipeline import workflow
from publisher.pipeline.worker import Dispatcher
from publisher.testing import MemoryChannel
from tests.test_dispatch import approved_item, deliveries, item_status, run_once


def _in_flight(app: Any, channel: str, worker: str = "hostA:1:a") -> tuple[Any, threading.Thread, threading.Event]:
    """A worker inside the channel call of a fresh approved item's delivery (item id: ``calls[0][3]``);
    only that call is held (a worker taking the delivery over calls through)."""
    approved_item(app, channels=[channel])
    a = Dispatcher(engine=app.engine, ctx=app.ctx, worker_id=worker)
    [claim] = a.claim(1)
    gate = MemoryChannel.hold(channel, claim.id)
    t = threading.Thread(target=a.execute, args=(claim.id,))
    t.start()
    MemoryChannel.wait_held(channel)
    return a, t, gate


def _calls(item: int) -> list[tuple[str, str, int]]:
    return [(ch, op, v) for ch, op, _d, i, v, _s in MemoryChannel.calls if i == item]


def _audit(app: Any, delivery_id: int) -> list[tuple[str, str | None]]:
    with app.session() as s:
        rows = s.exec(
            select(AuditLog)
            .where(AuditLog.entity == "delivery", AuditLog.entity_id == delivery_id)
            .order_by(AuditLog.id)
        )
        return [(a.action, a.to_state) for a in rows]


def _withdraw(app: Any, item: int) -> workflow.Withdrawals:
    with app.session() as s:
        it = workflow.withdraw(app.ctx, s, item_id=item, reason="泄密")
        return workflow.withdrawals(s, it)


def _edit(app: Any, item: int, **changes: Any) -> None:
    with app.session() as s:
        workflow.edit_item(
            app.ctx, s, item_id=item, actor=workflow.get_user(s, "ed"), changes=changes or {"title": "更正"}
        )


def _approve(app: Any, item: int) -> None:
    with app.session() as s:
        workflow.review(app.ctx, s, item_id=item, actor=workflow.get_user(s, "head"), approve=True)
        workflow.review(app.ctx, s, item_id=item, actor=workflow.get_user(s, "sec"), approve=True)


# ------------------------------------------------------------------------------------- withdraw
def test_withdraw_while_the_call_is_in_flight_takes_it_down_when_it_returns(make_app: Any) -> None:
    app = make_app(channels={"mem": {"type": "memory"}})
    _a, t, gate = _in_flight(app, "mem")
    item = MemoryChannel.calls[0][3]
    owed = _withdraw(app, item)  # accepted at once, not "try again in a minute"
    assert (owed.in_flight, owed.queued, owed.by_hand) == (["mem"], [], [])
    d = deliveries(app, item)["mem"]
    assert (d.status, d.requested) == (DeliveryStatus.CLAIMED, DeliveryRequest.WITHDRAW)
    assert item_status(app, item) == ItemStatus.WITHDRAWN
    gate.set()
    t.join(30)
    d = deliveries(app, item)["mem"]
    assert (d.op, d.status, d.requested) == (DeliveryOp.WITHDRAW, DeliveryStatus.PENDING, None)
    assert d.published_at is not None and d.url == f"memory://mem/{item}"  # it did go out, and counts
    assert _audit(app, d.id)[-3:] == [
        ("request withdraw", "claimed"),
        ("publish", "done"),
        ("settle withdraw", "pending"),
    ]
    assert run_once(app) == {"done": 1}
    assert _calls(item) == [("mem", "publish", 1), ("mem", "withdraw", 1)]
    assert MemoryChannel.withdrawn["mem"] == [item]
    d = deliveries(app, item)["mem"]
    assert d.status == DeliveryStatus.DONE and d.withdrawn_at is not None
    assert item_status(app, item) == ItemStatus.WITHDRAWN
    assert run_once(app) == {}


@pytest.mark.parametrize(
    ("step", "status", "reason"),
    [
        ("t", DeliveryStatus.CANCELLED, None),
        ("p", DeliveryStatus.CANCELLED, None),
        ("q", DeliveryStatus.CANCELLED, None),
        ("a", DeliveryStatus.FAILED, "take it down by hand if it is there"),
        ("wait", DeliveryStatus.FAILED, "take it down by hand if it is there"),
    ],
)
def test_withdraw_while_in_flight_when_the_call_did_not_go_out(
    make_app: Any, step: str, status: DeliveryStatus, reason: str | None
) -> None:
    """Failed, retryable or over quota: cancelled without another call. Ambiguous or still finishing on
    the channel: nobody knows whether it is up, so a person is told to check (never a silent cancel)."""
    app = make_app(channels={"mem": {"type": "memory"}})
    MemoryChannel.script("mem", step)
    _a, t, gate = _in_flight(app, "mem")
    item = MemoryChannel.calls[0][3]
    _withdraw(app, item)
    gate.set()
    t.join(30)
    d = deliveries(app, item)["mem"]
    assert (d.status, d.requested) == (status, None)
    if reason:
        assert d.op == DeliveryOp.WITHDRAW and reason in (d.last_error or "")
    later = Dispatcher(engine=app.engine, ctx=app.ctx, clock=lambda: datetime.now(UTC) + timedelta(hours=1))
    assert dict(later.run(once=True).outcomes) == {}
    assert _calls(item) == [("mem", "publish", 1)]  # nothing more was sent


def test_withdraw_while_the_claim_waits_in_the_backlog_sends_nothing(app: Any) -> None:
    item = approved_item(app)
    a = Dispatcher(engine=app.engine, ctx=app.ctx)
    [claim] = a.claim(1)
    _withdraw(app, item)
    assert a.execute(claim.id) == "withheld"  # its start, right before the call, finds the withdrawal
    assert _calls(item) == []
    d = deliveries(app, item)["mem"]
    assert (d.status, d.requested, d.published_at) == (DeliveryStatus.CANCELLED, None, None)


def test_withdraw_while_in_flight_on_a_channel_that_cannot_withdraw_says_so(make_app: Any) -> None:
    app = make_app(channels={"board": {"type": "memory", "withdraw": False}})
    _a, t, gate = _in_flight(app, "board")
    item = MemoryChannel.calls[0][3]
    _withdraw(app, item)
    gate.set()
    t.join(30)
    d = deliveries(app, item)["board"]
    assert (d.op, d.status) == (DeliveryOp.WITHDRAW, DeliveryStatus.FAILED)
    assert "board cannot withdraw automatically: take it down by hand" in (d.last_error or "")
    with app.session() as s:
        assert workflow.withdrawals(s, workflow.get_item(s, item)).by_hand == ["board"]


def test_withdraw_while_in_flight_then_the_lease_is_lost(make_app: Any) -> None:
    """Worker A is inside the call when the withdrawal comes, and its lease runs out; B takes the
    delivery over. B sends nothing (the item is withdrawn) and cannot know what A's call did: the
    delivery says so, for a person to check. When A's call then comes back published, the take-down
    is queued: the copy it put up is known and comes down."""
    app = make_app(channels={"mem": {"type": "memory"}})
    a, t, gate = _in_flight(app, "mem")
    item = MemoryChannel.calls[0][3]
    _withdraw(app, item)
    after_lease = timedelta(seconds=app.settings.worker.lease_seconds + 5)
    b = Dispatcher(engine=app.engine, ctx=app.ctx, worker_id="hostB:2:b", clock=lambda: datetime.now(UTC) + after_lease)
    assert dict(b.run(once=True).outcomes) == {"withheld": 1}  # B's start finds the withdrawal: no call
    d = deliveries(app, item)["mem"]
    assert (d.op, d.status) == (DeliveryOp.WITHDRAW, DeliveryStatus.FAILED)
    assert "whether it went out on mem is unknown" in (d.last_error or "")
    assert _calls(item) == [("mem", "publish", 1)]  # A's call only; B sent nothing
    gate.set()
    t.join(30)
    d = deliveries(app, item)["mem"]
    assert (d.op, d.status, d.last_error, d.url) == (
        DeliveryOp.WITHDRAW,
        DeliveryStatus.PENDING,
        None,
        f"memory://mem/{item}",
    )
    assert d.published_at is not None and d.withdrawn_at is None
    assert _audit(app, d.id)[-1] == ("late outcome", "pending")
    with app.engine.connect() as conn:  # neither A's late outcome nor B's withheld start is an attempt row
        n = conn.execute(sa.text(f"select count(*) from delivery_attempt where delivery_id = {d.id}")).scalar_one()
    assert n == 0
    assert dict(b.run(once=True).outcomes) == {"done": 1}
    assert _calls(item) == [("mem", "publish", 1), ("mem", "withdraw", 1)]
    d = deliveries(app, item)["mem"]
    assert (d.status, d.withdrawn_at is not None) == (DeliveryStatus.DONE, True)


def test_a_late_publish_after_the_take_down_is_taken_down_again(make_app: Any) -> None:
    """A's lease runs out inside the call; B publishes, the item is withdrawn and taken down; then A's
    call returns published. Its copy may have landed after the take-down: the take-down is owed again
    (a take-down of a copy already gone succeeds)."""
    app = make_app(channels={"mem": {"type": "memory"}})
    a, t, gate = _in_flight(app, "mem")
    item = MemoryChannel.calls[0][3]
    after_lease = timedelta(seconds=app.settings.worker.lease_seconds + 5)
    b = Dispatcher(engine=app.engine, ctx=app.ctx, worker_id="hostB:2:b", clock=lambda: datetime.now(UTC) + after_lease)
    assert dict(b.run(once=True).outcomes) == {"done": 1}
    _withdraw(app, item)
    assert dict(b.run(once=True).outcomes) == {"done": 1}
    assert deliveries(app, item)["mem"].withdrawn_at is not None
    gate.set()
    t.join(30)
    d = deliveries(app, item)["mem"]
    assert (d.op, d.status, d.withdrawn_at) == (DeliveryOp.WITHDRAW, DeliveryStatus.PENDING, None)
    assert dict(b.run(once=True).outcomes) == {"done": 1}
    assert _calls(item) == [
        ("mem", "publish", 1),
        ("mem", "publish", 1),
        ("mem", "withdraw", 1),
        ("mem", "withdraw", 1),
    ]
    assert item_status(app, item) == ItemStatus.WITHDRAWN


def test_a_late_publish_on_a_live_item_is_recorded_so_a_withdrawal_finds_it(make_app: Any) -> None:
    """A's lease runs out inside the call and every attempt of B fails; A's call then comes back
    published. The store records the copy (it is up), so a later withdrawal takes it down."""
    app = make_app(channels={"mem": {"type": "memory"}})
    a, t, gate = _in_flight(app, "mem")
    item = MemoryChannel.calls[0][3]
    MemoryChannel.script("mem", "p")
    after_lease = timedelta(seconds=app.settings.worker.lease_seconds + 5)
    b = Dispatcher(engine=app.engine, ctx=app.ctx, worker_id="hostB:2:b", clock=lambda: datetime.now(UTC) + after_lease)
    assert dict(b.run(once=True).outcomes) == {"permanent": 1}
    gate.set()
    t.join(30)
    d = deliveries(app, item)["mem"]
    assert (d.status, d.url) == (DeliveryStatus.FAILED, f"memory://mem/{item}") and d.published_at is not None
    assert _audit(app, d.id)[-1] == ("late outcome", "failed")
    owed = _withdraw(app, item)
    assert owed.queued == ["mem"]
    assert dict(b.run(once=True).outcomes) == {"done": 1}
    assert [op for _c, op, _v in _calls(item)] == ["publish", "publish", "withdraw"]


# ---------------------------------------------------------------------------- edit, re-approval
def test_reapproval_while_the_old_version_is_in_flight_queues_the_update(make_app: Any) -> None:
    app = make_app(channels={"mem": {"type": "memory"}})
    _a, t, gate = _in_flight(app, "mem")
    item = MemoryChannel.calls[0][3]
    _edit(app, item)
    _approve(app, item)  # accepted at once
    d = deliveries(app, item)["mem"]
    assert (d.status, d.requested) == (DeliveryStatus.CLAIMED, DeliveryRequest.REQUEUE)
    gate.set()
    t.join(30)
    d = deliveries(app, item)["mem"]
    assert (d.op, d.status, d.item_version) == (DeliveryOp.UPDATE, DeliveryStatus.PENDING, 2)
    assert run_once(app) == {"done": 1}
    assert _calls(item) == [("mem", "publish", 1), ("mem", "update", 2)]
    assert item_status(app, item) == ItemStatus.PUBLISHED


def test_reapproval_while_in_flight_when_the_call_failed_publishes_the_new_version(make_app: Any) -> None:
    app = make_app(channels={"mem": {"type": "memory"}})
    MemoryChannel.script("mem", "t")
    _a, t, gate = _in_flight(app, "mem")
    item = MemoryChannel.calls[0][3]
    _edit(app, item)
    _approve(app, item)
    gate.set()
    t.join(30)
    d = deliveries(app, item)["mem"]
    assert (d.op, d.status, d.item_version, d.attempts) == (DeliveryOp.PUBLISH, DeliveryStatus.PENDING, 2, 0)
    assert run_once(app) == {"done": 1}
    assert _calls(item) == [("mem", "publish", 1), ("mem", "publish", 2)]
    assert [i for _, i, _ in MemoryChannel.ledger["mem"]] == [item]


def test_edit_while_in_flight_keeps_what_went_out_and_cancels_the_rest(make_app: Any) -> None:
    app = make_app(channels={"mem": {"type": "memory"}, "mem2": {"type": "memory"}})
    MemoryChannel.script("mem2", "t")
    item = approved_item(app, channels=["mem", "mem2"])
    gate = MemoryChannel.hold("mem")
    gate2 = MemoryChannel.hold("mem2")
    a = Dispatcher(engine=app.engine, ctx=app.ctx)
    threads = [threading.Thread(target=a.execute, args=(c.id,)) for c in a.claim(2)]
    for th in threads:
        th.start()
    MemoryChannel.wait_held("mem")
    MemoryChannel.wait_held("mem2")
    _edit(app, item)
    gate.set()
    gate2.set()
    for th in threads:
        th.join(30)
    ds = deliveries(app, item)
    assert (ds["mem"].status, ds["mem"].item_version) == (DeliveryStatus.DONE, 1)  # v1 is up; updated later
    assert ds["mem2"].status == DeliveryStatus.CANCELLED
    assert run_once(app) == {}  # nothing of an unapproved version goes anywhere
    _approve(app, item)
    assert run_once(app) == {"done": 2}
    assert sorted(_calls(item)) == [
        ("mem", "publish", 1),
        ("mem", "update", 2),
        ("mem2", "publish", 1),
        ("mem2", "publish", 2),
    ]


# ------------------------------------------------------------------------------ channel removal
def test_removing_a_channel_takes_the_copy_there_down(make_app: Any) -> None:
    app = make_app(
        channels={"mem": {"type": "memory"}, "mem2": {"type": "memory"}, "board": {"type": "memory", "withdraw": False}}
    )
    item = approved_item(app, channels=["mem", "mem2", "board"])
    assert run_once(app) == {"done": 3}
    _edit(app, item, channels=["mem"])
    ds = deliveries(app, item)
    assert (ds["mem2"].op, ds["mem2"].status) == (DeliveryOp.WITHDRAW, DeliveryStatus.PENDING)
    assert (ds["board"].op, ds["board"].status) == (DeliveryOp.WITHDRAW, DeliveryStatus.FAILED)
    assert "take it down by hand" in (ds["board"].last_error or "")
    with app.session() as s:
        owed = workflow.withdrawals(s, workflow.get_item(s, item))
    assert (owed.queued, owed.by_hand) == (["mem2"], ["board"])
    assert run_once(app) == {"done": 1}  # the take-down needs no approval; the new version does
    assert MemoryChannel.withdrawn["mem2"] == [item]
    _approve(app, item)
    assert run_once(app) == {"done": 1}
    assert [(c, o) for c, o, _ in _calls(item)][-1] == ("mem", "update")
    # the removed channels no longer decide the item's state (board's copy is a person's to take down)
    assert item_status(app, item) == ItemStatus.PUBLISHED
    # put back: published there again, live again (a later withdrawal must find it)
    _edit(app, item, channels=["mem", "mem2"])
    _approve(app, item)
    assert run_once(app) == {"done": 2}
    d = deliveries(app, item)["mem2"]
    assert (d.op, d.status, d.withdrawn_at) == (DeliveryOp.PUBLISH, DeliveryStatus.DONE, None)
    _withdraw(app, item)
    assert run_once(app) == {"done": 2}
    assert MemoryChannel.withdrawn["mem2"] == [item, item]


def test_removing_a_channel_not_yet_sent_cancels_it(make_app: Any) -> None:
    app = make_app(channels={"mem": {"type": "memory"}, "mem2": {"type": "memory"}})
    MemoryChannel.script("mem2", "p")
    item = approved_item(app, channels=["mem", "mem2"], at=datetime.now(UTC) + timedelta(hours=1))
    later = Dispatcher(engine=app.engine, ctx=app.ctx, clock=lambda: datetime.now(UTC) + timedelta(hours=2))
    assert dict(later.run(once=True).outcomes) == {"done": 1, "permanent": 1}
    _edit(app, item, channels=["mem"])
    ds = deliveries(app, item)
    assert ds["mem2"].status == DeliveryStatus.CANCELLED  # failed, never out: not to be retried there
    _approve(app, item)
    assert dict(later.run(once=True).outcomes) == {"done": 1}
    assert item_status(app, item) == ItemStatus.PUBLISHED
    calls = [c for c, _o, _v in _calls(item)]  # the first two ran side by side, in either order
    assert sorted(calls[:2]) == ["mem", "mem2"] and calls[2:] == ["mem"]


def test_removing_a_channel_while_its_call_is_in_flight(make_app: Any) -> None:
    app = make_app(channels={"mem": {"type": "memory"}, "mem2": {"type": "memory"}})
    item = approved_item(app, channels=["mem", "mem2"])
    gate = MemoryChannel.hold("mem2")
    a = Dispatcher(engine=app.engine, ctx=app.ctx)
    claims = {c.channel: c for c in a.claim(2)}
    t = threading.Thread(target=a.execute, args=(claims["mem2"].id,))
    t.start()
    MemoryChannel.wait_held("mem2")
    assert a.execute(claims["mem"].id) == "done"
    _edit(app, item, channels=["mem"])
    _approve(app, item)  # mem2 is no longer targeted: its in-flight call keeps its withdraw request
    assert deliveries(app, item)["mem2"].requested == DeliveryRequest.WITHDRAW
    gate.set()
    t.join(30)
    d = deliveries(app, item)["mem2"]
    assert (d.op, d.status) == (DeliveryOp.WITHDRAW, DeliveryStatus.PENDING)
    assert run_once(app) == {"done": 2}  # the take-down on mem2, the update on mem
    assert MemoryChannel.withdrawn["mem2"] == [item]
    assert item_status(app, item) == ItemStatus.PUBLISHED


def _put_back_after_take_down(app: Any) -> int:
    """Item live on mem and mem2; mem2 taken off it and its copy taken down; mem2 put back and the
    item approved again: mem2's delivery is a queued publish that still carries the old URL and
    ``withdrawn_at``."""
    item = approved_item(app, channels=["mem", "mem2"])
    assert run_once(app).get("done") == 2
    _edit(app, item, channels=["mem"])
    _approve(app, item)
    assert run_once(app) == {"done": 2}  # mem2's take-down, mem's update
    _edit(app, item, channels=["mem", "mem2"])
    _approve(app, item)
    d = deliveries(app, item)["mem2"]
    assert (d.op, d.status, d.url) == (DeliveryOp.PUBLISH, DeliveryStatus.PENDING, f"memory://mem2/{item}")
    assert d.published_at is not None and d.withdrawn_at is not None
    return item


@pytest.mark.parametrize("how", ["withdraw", "remove again"])
def test_a_put_back_channels_queued_publish_is_cancelled_by_a_withdrawal(make_app: Any, how: str) -> None:
    """A case the state machine (tests/test_workflow_invariant.py) finds ("a pending publish delivery
    carrying a URL for a withdrawn item"): read as "down, nothing owed", ``withdrawn_at`` would leave the
    put-back channel's queued publish pending, with only the dispatcher's last check between it and the
    channel. The withdrawal (or the channel's second removal) cancels it, and nothing more goes to mem2."""
    app = make_app(channels={"mem": {"type": "memory"}, "mem2": {"type": "memory"}})
    item = _put_back_after_take_down(app)
    if how == "withdraw":
        owed = _withdraw(app, item)
        assert (owed.queued, owed.in_flight, owed.by_hand) == (["mem"], [], [])
    else:
        _edit(app, item, channels=["mem"])
    d = deliveries(app, item)["mem2"]
    assert (d.op, d.status, d.requested) == (DeliveryOp.PUBLISH, DeliveryStatus.CANCELLED, None)
    later = Dispatcher(engine=app.engine, ctx=app.ctx, clock=lambda: datetime.now(UTC) + timedelta(hours=3))
    assert dict(later.run(once=True).outcomes) == ({"done": 1} if how == "withdraw" else {})
    assert [(c, o) for c, o, _v in _calls(item)].count(("mem2", "publish")) == 1


def test_an_ambiguous_republish_then_a_withdrawal_says_check_by_hand(make_app: Any) -> None:
    """The put-back channel's publish came back ambiguous (it may be up again), then failed for good;
    the withdrawal cannot know, and says so. An ambiguous attempt from before the first take-down
    would not count (it was settled by what followed)."""
    app = make_app(channels={"mem": {"type": "memory"}, "mem2": {"type": "memory"}})
    item = _put_back_after_take_down(app)
    MemoryChannel.script("mem2", "a", "p")
    assert run_once(app) == {"ambiguous": 1, "permanent": 1, "done": 1}
    _withdraw(app, item)
    d = deliveries(app, item)["mem2"]
    assert (d.op, d.status) == (DeliveryOp.WITHDRAW, DeliveryStatus.FAILED)
    assert "whether it went out on mem2 is unknown" in (d.last_error or "")


def test_an_ambiguous_attempt_settled_before_the_take_down_does_not_count(make_app: Any) -> None:
    app = make_app(channels={"mem": {"type": "memory"}, "mem2": {"type": "memory"}})
    MemoryChannel.script("mem2", "a", "ok")  # the first publication: ambiguous, then reconciled
    item = _put_back_after_take_down(app)
    _withdraw(app, item)
    d = deliveries(app, item)["mem2"]
    assert (d.op, d.status, d.last_error) == (DeliveryOp.PUBLISH, DeliveryStatus.CANCELLED, None)


def test_an_edit_cancels_a_put_back_channels_queued_publish(make_app: Any) -> None:
    """Not "update superseded" (done): the copy there is down, so the queued publish is cancelled and
    the next approval publishes again."""
    app = make_app(channels={"mem": {"type": "memory"}, "mem2": {"type": "memory"}})
    item = _put_back_after_take_down(app)
    _edit(app, item)
    assert deliveries(app, item)["mem2"].status == DeliveryStatus.CANCELLED
    _approve(app, item)
    assert run_once(app) == {"done": 2}
    d = deliveries(app, item)["mem2"]
    assert (d.op, d.status, d.withdrawn_at) == (DeliveryOp.PUBLISH, DeliveryStatus.DONE, None)


# ------------------------------------------------------- a take-down in flight, and a request on it
def _take_down_in_flight(app: Any) -> tuple[int, threading.Thread, threading.Event]:
    """Item live on mem and mem2; mem2 taken off it, and a worker inside mem2's take-down call."""
    item = approved_item(app, channels=["mem", "mem2"])
    assert run_once(app) == {"done": 2}
    _edit(app, item, channels=["mem"])
    gate = MemoryChannel.hold("mem2")
    a = Dispatcher(engine=app.engine, ctx=app.ctx, worker_id="hostA:1:a")
    [claim] = a.claim(1, channels=["mem2"])
    assert claim.op == DeliveryOp.WITHDRAW
    t = threading.Thread(target=a.execute, args=(claim.id,))
    t.start()
    MemoryChannel.wait_held("mem2")
    return item, t, gate


def test_withdraw_during_a_take_down_after_a_put_back_publishes_nothing(make_app: Any) -> None:
    """A case the state machine (tests/test_workflow_invariant.py) finds: mem2 is taken off a live item,
    and while its take-down is in flight mem2 is put back and the item approved again (a requeue request:
    publish once the take-down returns). Then the item is withdrawn. A withdrawal that finds the delivery
    already a take-down must clear the requeue on it, or recording the take-down queues a publish of a
    withdrawn item (pending, with the old URL; only the dispatcher's last check between it and the channel)."""
    app = make_app(channels={"mem": {"type": "memory"}, "mem2": {"type": "memory"}})
    item, t, gate = _take_down_in_flight(app)
    _edit(app, item, channels=["mem", "mem2"])
    _approve(app, item)
    assert deliveries(app, item)["mem2"].requested == DeliveryRequest.REQUEUE
    owed = _withdraw(app, item)
    assert sorted(owed.queued) == ["mem", "mem2"]  # mem2: the take-down in flight, its request dropped
    d = deliveries(app, item)["mem2"]
    assert (d.op, d.status, d.requested, d.request_lease) == (DeliveryOp.WITHDRAW, DeliveryStatus.CLAIMED, None, None)
    gate.set()
    t.join(30)
    d = deliveries(app, item)["mem2"]
    assert (d.op, d.status, d.requested) == (DeliveryOp.WITHDRAW, DeliveryStatus.DONE, None)
    assert d.withdrawn_at is not None
    assert ("drop request requeue", "claimed") in _audit(app, d.id)
    assert run_once(app) == {"done": 1}  # mem's take-down; nothing for mem2
    later = Dispatcher(engine=app.engine, ctx=app.ctx, clock=lambda: datetime.now(UTC) + timedelta(hours=3))
    assert dict(later.run(once=True).outcomes) == {}
    calls = [(c, o) for c, o, _v in _calls(item)]  # the two publishes ran side by side, in either order
    assert sorted(calls[:2]) == [("mem", "publish"), ("mem2", "publish")]
    assert calls[2:] == [("mem2", "withdraw"), ("mem", "withdraw")]
    with app.session() as s:
        for d in s.exec(select(Delivery).where(Delivery.item_id == item)):
            assert d.status in (DeliveryStatus.DONE, DeliveryStatus.CANCELLED) and d.withdrawn_at is not None, d


def test_edit_during_a_take_down_after_a_put_back_queues_no_unapproved_publish(make_app: Any) -> None:
    """As above, but the item is edited instead of withdrawn: the re-approval the requeue stood for is
    gone, so the take-down's record must not queue a publish of the new, unreviewed version; the
    next approval does."""
    app = make_app(channels={"mem": {"type": "memory"}, "mem2": {"type": "memory"}})
    item, t, gate = _take_down_in_flight(app)
    _edit(app, item, channels=["mem", "mem2"])
    _approve(app, item)
    _edit(app, item)
    assert deliveries(app, item)["mem2"].requested is None
    gate.set()
    t.join(30)
    d = deliveries(app, item)["mem2"]
    assert (d.op, d.status, d.withdrawn_at is not None) == (DeliveryOp.WITHDRAW, DeliveryStatus.DONE, True)
    assert run_once(app) == {}
    _approve(app, item)
    assert run_once(app) == {"done": 2}  # mem updated, mem2 published again
    assert sorted(_calls(item)[-2:]) == [("mem", "update", 4), ("mem2", "publish", 4)]
    d = deliveries(app, item)["mem2"]
    assert (d.op, d.status, d.withdrawn_at) == (DeliveryOp.PUBLISH, DeliveryStatus.DONE, None)


def test_a_request_on_a_claim_released_unsent_is_settled(make_app: Any) -> None:
    """A worker stopping hands back claims it never started. A withdrawal made while one sat in its
    backlog is settled then (nothing went out: cancelled), not left on a delivery pending to publish."""
    app = make_app(channels={"mem": {"type": "memory"}, "mem2": {"type": "memory"}})
    item = approved_item(app, channels=["mem", "mem2"])
    a = Dispatcher(engine=app.engine, ctx=app.ctx, worker_id="hostA:1:a")
    claims = a.claim(2)
    _withdraw(app, item)
    a.release(claims)
    for d in deliveries(app, item).values():
        assert (d.status, d.requested, d.lease_owner) == (DeliveryStatus.CANCELLED, None, None), d
    assert run_once(app) == {}
    assert _calls(item) == []
    # an edit then a re-approval while claimed: released as the current version, pending to publish
    item = approved_item(app, channels=["mem"])
    [claim] = a.claim(1)
    _edit(app, item)
    _approve(app, item)
    a.release([claim])
    d = deliveries(app, item)["mem"]
    assert (d.op, d.status, d.item_version, d.requested) == (DeliveryOp.PUBLISH, DeliveryStatus.PENDING, 2, None)
    assert run_once(app) == {"done": 1}
    assert _calls(item) == [("mem", "publish", 2)]


# -------------------------------------------------------------------------------- many at once
def test_two_workers_and_withdrawals_racing_never_post_twice_nor_leave_anything_up(make_app: Any) -> None:
    """Two workers (two threads each) publish 30 items on two channels while a person withdraws a
    third of them at random moments. Afterwards: nothing is up for a withdrawn item, nothing went out
    twice, and every delivery's record agrees with what the channels saw."""
    app = make_app(channels={"mem": {"type": "memory", "latency": 0.01}, "mem2": {"type": "memory", "latency": 0.01}})
    items = [approved_item(app, channels=["mem", "mem2"], title=f"通知 {n}") for n in range(30)]
    rng = random.Random(7)
    doomed = rng.sample(items, 10)
    workers = [Dispatcher(engine=app.engine, ctx=app.ctx, threads=2, worker_id=f"h:{n}:w") for n in range(2)]
    runs = [threading.Thread(target=w.run, kwargs={"once": True, "horizon": timedelta(0)}) for w in workers]
    for r in runs:
        r.start()
    for item in doomed:
        threading.Event().wait(rng.uniform(0, 0.05))
        _withdraw(app, item)
    for r in runs:
        r.join(120)
    assert run_once(app) is not None  # drain what the withdrawals queued
    live: dict[tuple[str, int], bool] = {}
    ok: dict[int, int] = {}
    for ch, op, did, item, _v, step in MemoryChannel.calls:
        if op == "publish" and step == "ok":
            live[(ch, item)] = True
            ok[did] = ok.get(did, 0) + 1
        elif op == "withdraw":
            live[(ch, item)] = False
    assert all(n == 1 for n in ok.values()), ok
    assert not [k for k, up in live.items() if up and k[1] in doomed], "a withdrawn item is still up"
    with app.session() as s:
        for d in s.exec(select(Delivery)):
            assert d.status not in (DeliveryStatus.PENDING, DeliveryStatus.CLAIMED, DeliveryStatus.WAITING), d
            assert d.requested is None
            assert (d.published_at is not None) == ((d.channel, d.item_id) in live), d
            if d.item_id not in doomed:
                assert d.status == DeliveryStatus.DONE and d.op == DeliveryOp.PUBLISH
    for item in items:
        assert item_status(app, item) == (ItemStatus.WITHDRAWN if item in doomed else ItemStatus.PUBLISHED)


def test_a_put_back_is_a_new_generation_once_per_take_down(make_app: Any) -> None:
    """A publish owed after a take-down starts a new publication (``state["generation"]``: the channel's
    idempotency keys and markers change with it), whether it is queued by the approval or by the
    requeue request of a take-down in flight; queued again for the same take-down (an edit cancelled
    it), it keeps its generation and state: an attempt may already have gone out."""
    app = make_app(channels={"mem": {"type": "memory"}, "mem2": {"type": "memory"}})
    item, t, gate = _take_down_in_flight(app)
    _edit(app, item, channels=["mem", "mem2"])
    _approve(app, item)
    assert deliveries(app, item)["mem2"].requested == DeliveryRequest.REQUEUE
    gate.set()
    t.join(30)
    d = deliveries(app, item)["mem2"]
    assert (d.op, d.status, d.state["generation"]) == (DeliveryOp.PUBLISH, DeliveryStatus.PENDING, 1)
    _edit(app, item, title="更正")  # cancels the queued put-back; the next approval queues it again
    assert deliveries(app, item)["mem2"].status == DeliveryStatus.CANCELLED
    _approve(app, item)
    assert deliveries(app, item)["mem2"].state["generation"] == 1
    assert run_once(app).get("done") == 2
    d = deliveries(app, item)["mem2"]
    assert (d.status, d.withdrawn_at, d.state["generation"]) == (DeliveryStatus.DONE, None, 1)
    # taken down and put back once more (through the approval this time): the next generation
    _edit(app, item, channels=["mem"])
    _approve(app, item)
    assert run_once(app) == {"done": 2}
    _edit(app, item, channels=["mem", "mem2"])
    _approve(app, item)
    assert deliveries(app, item)["mem2"].state == {
        "generation": 2,
        "taken_down_at": deliveries(app, item)["mem2"].withdrawn_at.isoformat(),
    }
    assert run_once(app).get("done") == 2
    assert [(c, o) for c, o, _v in _calls(item) if c == "mem2"] == [
        ("mem2", "publish"),
        ("mem2", "withdraw"),
        ("mem2", "publish"),
        ("mem2", "withdraw"),
        ("mem2", "publish"),
    ]
