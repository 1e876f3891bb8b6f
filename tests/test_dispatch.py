"""The dispatcher against a real store (SQLite file and PostgreSQL) and MemoryChannel channels.

Faults come from MemoryChannel.script; timings from the delivery_attempt rows the dispatcher
writes, so nothing of the code under test is replaced.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel import select

from publisher.errors import NotAllowed
from publisher.models import (
    AuditLog,
    Delivery,
    DeliveryAttempt,
    DeliveryOp,
    DeliveryStatus,
    ItemStatus,
)
from publisher.pipeline import content, workflow
from publisher.pipeline.worker import Dispatcher
from publisher.testing import MemoryChannel
from tests.clirun import PLUGINS

SHANGHAI = ZoneInfo("Asia/Shanghai")


def approved_item(
    app: Any,
    *,
    channels: list[str] | None = None,
    at: Any = None,
    author: str = "ed",
    title: str = "关于寒假放假安排的通知",
) -> int:
    """An item through both reviews, scheduled for ``at`` (default now)."""
    with app.session() as s:
        draft = content.ItemDraft(
            title=title,
            body_markdown="正文",
            fields={"category": "公告公示", "channels": channels or ["mem"]},
        )
        item = workflow.create_item(app.ctx, s, author=workflow.get_user(s, author), draft=draft)
        workflow.submit(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, author))
        head = "head" if item.department == "校长办公室" else "head2"
        workflow.review(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, head), approve=True)
        workflow.review(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, "sec"), approve=True)
        workflow.schedule(app.ctx, s, item_id=item.id, at=at or datetime.now(UTC))
        return item.id  # type: ignore[return-value]


def deliveries(app: Any, item_id: int) -> dict[str, Delivery]:
    with app.session() as s:
        return {d.channel: d for d in s.exec(select(Delivery).where(Delivery.item_id == item_id))}


def attempts(app: Any, delivery_id: int) -> list[DeliveryAttempt]:
    with app.session() as s:
        return list(
            s.exec(
                select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == delivery_id).order_by(DeliveryAttempt.id)
            )
        )


def item_status(app: Any, item_id: int) -> str:
    with app.session() as s:
        return workflow.get_item(s, item_id).status


#: run_once's delivery threads, set per test by the fixture below
_THREADS = {"n": 4}


@pytest.fixture(autouse=True, params=[4, 1], ids=["4-threads", "inline"])
def dispatch_threads(request: pytest.FixtureRequest) -> Any:
    """Every outcome test runs with delivery threads and with the loop thread delivering (threads=1)."""
    _THREADS["n"] = request.param
    yield request.param
    _THREADS["n"] = 4


def run_once(app: Any, **kw: Any) -> dict[str, int]:
    kw.setdefault("threads", _THREADS["n"])
    return dict(Dispatcher(engine=app.engine, ctx=app.ctx, **kw).run(once=True).outcomes)


# ------------------------------------------------------------------------------------- outcomes
def test_transient_is_retried_with_backoff_then_succeeds(app: Any) -> None:
    MemoryChannel.script("mem", "t", "t", "ok")
    item = approved_item(app)
    outcomes = run_once(app)
    assert outcomes == {"transient": 2, "done": 1}
    d = deliveries(app, item)["mem"]
    assert d.status == DeliveryStatus.DONE and d.attempts == 3 and d.last_error is None
    tries = attempts(app, d.id)
    assert [a.outcome for a in tries] == ["transient", "transient", "done"]
    assert [a.number for a in tries] == [1, 2, 3]
    # back-off: each retry started no sooner than the base back-off after the previous failure
    for before, after in zip(tries, tries[1:], strict=False):
        assert after.started_at - before.finished_at >= timedelta(seconds=app.settings.worker.backoff_base_seconds / 2)
    assert len(MemoryChannel.ledger["mem"]) == 1
    assert item_status(app, item) == ItemStatus.PUBLISHED


def test_permanent_fails_at_once_with_reason_and_code(app: Any) -> None:
    MemoryChannel.script("mem", "p")
    item = approved_item(app, channels=["mem", "mem2"])
    assert run_once(app) == {"permanent": 1, "done": 1}
    d = deliveries(app, item)["mem"]
    assert d.status == DeliveryStatus.FAILED and d.attempts == 1
    assert d.last_error == "memory: scripted permanent failure"
    assert d.last_error_kind == "permanent" and d.last_error_code == "P1"
    [a] = attempts(app, d.id)
    assert (a.outcome, a.message, a.code) == ("permanent", "memory: scripted permanent failure", "P1")
    assert item_status(app, item) == ItemStatus.FAILED
    assert MemoryChannel.ledger["mem"] == []


def test_quota_defers_to_until_without_using_an_attempt(app: Any) -> None:
    MemoryChannel.script("mem", "q")
    item = approved_item(app)
    before = datetime.now(UTC)
    assert run_once(app) == {"quota": 1}
    d = deliveries(app, item)["mem"]
    assert d.status == DeliveryStatus.PENDING and d.attempts == 0
    assert before + timedelta(seconds=55) < d.due_at < before + timedelta(seconds=65)
    assert d.last_error_kind == "quota"
    # the next run, once the quota has reset, publishes it with its first real attempt
    later = Dispatcher(engine=app.engine, ctx=app.ctx, clock=lambda: datetime.now(UTC) + timedelta(minutes=2))
    assert dict(later.run(once=True).outcomes) == {"done": 1}
    assert deliveries(app, item)["mem"].attempts == 1


def test_ambiguous_is_retried_and_not_published_twice(app: Any) -> None:
    MemoryChannel.script("mem", "a", "ok")
    item = approved_item(app)
    assert run_once(app) == {"ambiguous": 1, "done": 1}
    assert [i for _, i, _ in MemoryChannel.ledger["mem"]] == [item]
    assert deliveries(app, item)["mem"].status == DeliveryStatus.DONE


def test_attempts_exhausted_fails_with_gave_up(make_app: Any) -> None:
    app = make_app(worker={"max_attempts": 3})
    MemoryChannel.script("mem", "t", "t", "t", "ok")
    item = approved_item(app)
    assert run_once(app) == {"transient": 3}
    d = deliveries(app, item)["mem"]
    assert d.status == DeliveryStatus.FAILED
    assert "gave up after 3 attempts" in (d.last_error or "")
    assert MemoryChannel.ledger["mem"] == []
    assert item_status(app, item) == ItemStatus.FAILED


def test_in_progress_waits_then_done(app: Any) -> None:
    MemoryChannel.script("mem", "wait", "ok")
    item = approved_item(app)
    d = Dispatcher(engine=app.engine, ctx=app.ctx)
    assert dict(d.run(once=True, horizon=timedelta(0)).outcomes) == {"waiting": 1}
    row = deliveries(app, item)["mem"]
    assert row.status == DeliveryStatus.WAITING and row.attempts == 0 and row.note == "scripted"
    assert dict(d.run(once=True).outcomes) == {"done": 1}  # asked again after check_again_in (1 s)
    row = deliveries(app, item)["mem"]
    assert row.status == DeliveryStatus.DONE and row.attempts == 1


# --------------------------------------------------------------------------------------- leases
def test_expired_lease_is_taken_over_by_another_worker(app: Any) -> None:
    item = approved_item(app)
    a = Dispatcher(engine=app.engine, ctx=app.ctx, worker_id="hostA:1:a")
    [claim] = a.claim(4)
    did = claim.id
    # A "dies" holding the lease; B, whose clock is past the lease, takes the delivery over
    later = datetime.now(UTC) + timedelta(seconds=app.settings.worker.lease_seconds + 1)
    b = Dispatcher(engine=app.engine, ctx=app.ctx, worker_id="hostB:2:b", clock=lambda: later)
    assert [(c.id, c.channel) for c in b.claim(4)] == [(did, "mem")]
    assert b.execute(did) == "done"
    # A comes back to life: it must not run or record anything
    assert a.execute(did) == "lost-lease"
    d = deliveries(app, item)["mem"]
    assert d.status == DeliveryStatus.DONE and d.attempts == 1  # A never called: its claim used no attempt
    assert [x.worker for x in attempts(app, did)] == ["hostB:2:b"]
    assert len(MemoryChannel.calls) == 1


def test_unexpired_lease_is_not_taken(app: Any) -> None:
    approved_item(app)
    a = Dispatcher(engine=app.engine, ctx=app.ctx, worker_id="hostA:1:a")
    assert len(a.claim(4)) == 1
    b = Dispatcher(engine=app.engine, ctx=app.ctx, worker_id="hostB:2:b")
    assert b.claim(4) == []


def test_worker_whose_lease_was_taken_over_cannot_overwrite_the_new_owner(make_app: Any) -> None:
    """A is slow inside the channel call; B takes over after the lease expired and finishes first."""
    app = make_app(channels={"slow": {"type": "memory", "latency": 2.0}})
    MemoryChannel.script("slow", "p", "ok")  # A's call fails for good, B's succeeds
    item = approved_item(app, channels=["slow"])
    a = Dispatcher(engine=app.engine, ctx=app.ctx, worker_id="hostA:1:a")
    [claim] = a.claim(1)
    did = claim.id
    result: dict[str, str] = {}
    t = threading.Thread(target=lambda: result.setdefault("a", a.execute(did)))
    t.start()
    later = datetime.now(UTC) + timedelta(seconds=app.settings.worker.lease_seconds + 1)
    b = Dispatcher(engine=app.engine, ctx=app.ctx, worker_id="hostB:2:b", clock=lambda: later)
    threading.Event().wait(0.5)  # A is now sleeping inside the channel call (latency 2 s)
    assert MemoryChannel.calls == [] and t.is_alive()
    assert [(c.id, c.channel) for c in b.claim(1)] == [(did, "slow")]
    assert b.execute(did) == "done"
    t.join()
    assert result["a"] == "lost-lease"
    d = deliveries(app, item)["slow"]
    assert d.status == DeliveryStatus.DONE and d.last_error is None and d.url
    assert [x.worker for x in attempts(app, did)] == ["hostB:2:b"]


# ------------------------------------------------------------------------------ channel limits
def test_paused_channel_is_not_dispatched(make_app: Any) -> None:
    app = make_app(channels={"mem": {"type": "memory", "paused": True}, "mem2": {"type": "memory"}})
    item = approved_item(app, channels=["mem", "mem2"])
    assert run_once(app) == {"done": 1}
    ds = deliveries(app, item)
    assert ds["mem"].status == DeliveryStatus.PENDING and ds["mem2"].status == DeliveryStatus.DONE
    assert MemoryChannel.ledger["mem"] == []


def _max_overlap(tries: list[DeliveryAttempt]) -> int:
    events = sorted(
        [(a.started_at, 1) for a in tries] + [(a.finished_at, -1) for a in tries], key=lambda e: (e[0], e[1])
    )
    cur = peak = 0
    for _, step in events:
        cur += step
        peak = max(peak, cur)
    return peak


def test_max_concurrency_per_channel(make_app: Any) -> None:
    app = make_app(channels={"slow": {"type": "memory", "latency": 0.3, "max_concurrency": 2}}, worker={"threads": 8})
    ids = [approved_item(app, channels=["slow"], title=f"通知 {n}") for n in range(6)]
    assert run_once(app, threads=8) == {"done": 6}
    tries = [a for i in ids for a in attempts(app, deliveries(app, i)["slow"].id)]
    assert _max_overlap(tries) == 2


def test_channels_take_turns_for_the_threads(make_app: Any, dispatch_threads: int) -> None:
    """A channel with a deep backlog and as many free slots as there are threads does not keep every
    thread while another channel's due deliveries wait: the threads serve the channels in turn."""
    app = make_app(
        channels={
            "deep": {"type": "memory", "latency": 0.02, "max_concurrency": 8},
            "other": {"type": "memory", "latency": 0.02, "max_concurrency": 8},
        }
    )
    deep = [approved_item(app, channels=["deep"], title=f"通知 {n}") for n in range(16)]
    other = approved_item(app, channels=["other"], title="另一个渠道的通知")  # fell due last
    assert run_once(app) == {"done": 17}
    starts = sorted(
        (a.started_at, ch)
        for ch, ids in (("deep", deep), ("other", [other]))
        for i in ids
        for a in attempts(app, deliveries(app, i)[ch].id)
    )
    order = [ch for _, ch in starts]
    # one turn of the threads: `other` is served in the first round of takes, not after `deep`'s backlog
    assert "other" in order[: max(2, dispatch_threads)], order


def test_rate_per_minute(make_app: Any) -> None:
    app = make_app(channels={"mem": {"type": "memory", "rate_per_minute": 120}}, worker={"threads": 8})
    ids = [approved_item(app, title=f"通知 {n}") for n in range(4)]
    before = datetime.now(UTC)
    assert run_once(app, threads=8) == {"done": 4}
    starts = sorted(a.started_at for i in ids for a in attempts(app, deliveries(app, i)["mem"].id))
    # 120 a minute is one slot every 0.5 s, the first at the earliest now: the fourth call cannot start
    # before 1.5 s have passed (without the limit all four start at once). Only a lower bound is
    # asserted: a busy machine may start a call later than its slot, and calls then bunch up (the
    # slots themselves are checked under a controlled clock in tests/test_rate_limit.py).
    assert (starts[-1] - before).total_seconds() >= 1.5 - 0.05, starts


def test_channel_schedule_puts_due_at_on_the_next_slot_in_shanghai(make_app: Any) -> None:
    app = make_app(channels={"mem": {"type": "memory", "schedule": "0 18 * * mon-fri"}})
    # Saturday 2099-01-03 09:00 Beijing → the next slot is Monday 2099-01-05 18:00 Beijing
    item = approved_item(app, at="2099-01-03T09:00+08:00")
    due = deliveries(app, item)["mem"].due_at
    assert due.astimezone(SHANGHAI) == datetime(2099, 1, 5, 18, 0, tzinfo=SHANGHAI)
    # a weekday 17:59 goes out at 18:00 the same day, 18:00 exactly stays
    with app.session() as s:
        workflow.schedule(app.ctx, s, item_id=item, at="2099-01-06T17:59+08:00")
    assert deliveries(app, item)["mem"].due_at.astimezone(SHANGHAI) == datetime(2099, 1, 6, 18, 0, tzinfo=SHANGHAI)
    with app.session() as s:
        workflow.schedule(app.ctx, s, item_id=item, at="2099-01-07T18:00+08:00")
    assert deliveries(app, item)["mem"].due_at.astimezone(SHANGHAI) == datetime(2099, 1, 7, 18, 0, tzinfo=SHANGHAI)


# ------------------------------------------------------------------------- withdraw, edit, retry
def test_withdraw_asks_channels_and_cancels_pending(app: Any) -> None:
    item = approved_item(app, channels=["mem"])
    assert run_once(app) == {"done": 1}
    other = approved_item(app, channels=["mem"], at=datetime.now(UTC) + timedelta(days=1), title="明天的通知")
    with app.session() as s:
        workflow.withdraw(app.ctx, s, item_id=item, reason="信息有误")
        workflow.withdraw(app.ctx, s, item_id=other, reason="不再需要")
    assert deliveries(app, other)["mem"].status == DeliveryStatus.CANCELLED
    d = deliveries(app, item)["mem"]
    assert (d.op, d.status) == (DeliveryOp.WITHDRAW, DeliveryStatus.PENDING)
    assert run_once(app) == {"done": 1}
    d = deliveries(app, item)["mem"]
    assert d.status == DeliveryStatus.DONE and d.withdrawn_at is not None
    assert MemoryChannel.withdrawn["mem"] == [item]
    assert item_status(app, item) == ItemStatus.WITHDRAWN
    assert [i for _, i, _ in MemoryChannel.ledger["mem"]] == [item]  # the other one never went out


def test_edit_of_published_item_is_reviewed_again_then_updated(app: Any) -> None:
    item = approved_item(app, channels=["mem"])
    run_once(app)
    with app.session() as s:
        workflow.edit_item(app.ctx, s, item_id=item, actor=workflow.get_user(s, "ed"), changes={"title": "更正"})
        assert workflow.get_item(s, item).status == ItemStatus.SUBMITTED
    assert run_once(app) == {}  # nothing goes out before the second review of the new version
    with app.session() as s:
        workflow.review(app.ctx, s, item_id=item, actor=workflow.get_user(s, "head"), approve=True)
        workflow.review(app.ctx, s, item_id=item, actor=workflow.get_user(s, "sec2"), approve=True)
        assert workflow.get_item(s, item).status == ItemStatus.SCHEDULED
    d = deliveries(app, item)["mem"]
    assert (d.op, d.status, d.item_version) == (DeliveryOp.UPDATE, DeliveryStatus.PENDING, 2)
    assert run_once(app) == {"done": 1}
    assert [c[1:5] for c in MemoryChannel.calls] == [("publish", d.id, item, 1), ("update", d.id, item, 2)]
    assert item_status(app, item) == ItemStatus.PUBLISHED


def test_retry_requeues_only_the_failed_channel(app: Any) -> None:
    MemoryChannel.script("mem", "p")
    item = approved_item(app, channels=["mem", "mem2"])
    run_once(app)
    ds = deliveries(app, item)
    assert ds["mem"].status == DeliveryStatus.FAILED and ds["mem2"].status == DeliveryStatus.DONE
    with app.session() as s:
        workflow.retry_delivery(app.ctx, s, delivery_id=ds["mem"].id, actor="cli")
        assert workflow.get_item(s, item).status == ItemStatus.SCHEDULED
    assert run_once(app) == {"done": 1}
    assert sorted(c[0] for c in MemoryChannel.calls) == ["mem", "mem", "mem2"]
    assert len(MemoryChannel.ledger["mem2"]) == 1
    assert item_status(app, item) == ItemStatus.PUBLISHED
    with pytest.raises(NotAllowed, match="only a failed delivery"), app.session() as s:
        workflow.retry_delivery(app.ctx, s, delivery_id=ds["mem2"].id, actor="cli")


# ----------------------------------------------------------------------------------------- audit
def test_every_state_change_is_audited(app: Any) -> None:
    MemoryChannel.script("mem", "t", "ok")
    item = approved_item(app, channels=["mem"])
    run_once(app)
    with app.session() as s:
        rows = s.exec(select(AuditLog).order_by(AuditLog.id)).all()
    d = deliveries(app, item)["mem"]
    item_trail = [(r.action, r.from_state, r.to_state) for r in rows if r.entity == "item" and r.entity_id == item]
    assert item_trail == [
        ("create", None, "draft"),
        ("submit", "draft", "submitted"),
        ("approve level 1", "submitted", "dept_approved"),
        ("approve level 2 (保密审查)", "dept_approved", "approved"),
        ("schedule", "approved", "approved"),
        ("schedule", "approved", "scheduled"),
        ("rollup", "scheduled", "published"),
    ]
    delivery_trail = [(r.from_state, r.to_state) for r in rows if r.entity == "delivery" and r.entity_id == d.id]
    # pending -> claimed has no audit row of its own: the claim is a lease, not a decision, and its
    # outcome row says "from claimed"; the delivery_attempt rows carry who held it and when
    assert delivery_trail == [(None, "pending"), ("claimed", "pending"), ("claimed", "done")]


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"])
def test_audit_log_refuses_update_and_delete(app: Any, statement: str) -> None:
    with app.engine.connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one()
        assert n > 0
        with pytest.raises(sa.exc.DatabaseError, match="(?i)append-only|audit"):
            conn.execute(sa.text(statement))
        conn.rollback()
        assert conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE actor = 'x'")).scalar_one() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one() == n


def test_edit_of_item_live_on_a_channel_that_cannot_update_does_not_hang(
    make_app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The re-queue fails that delivery at once ("change it there by hand"); with nothing left to
    run, the item must say failed, not stay scheduled for ever."""
    monkeypatch.syspath_prepend(str(PLUGINS))
    app = make_app(channels={"flog": {"type": "filelog", "folder": str(tmp_path / "out")}, "mem": {"type": "memory"}})
    item = approved_item(app, channels=["flog", "mem"])
    assert run_once(app) == {"done": 2}
    with app.session() as s:
        workflow.edit_item(app.ctx, s, item_id=item, actor=workflow.get_user(s, "ed"), changes={"title": "更正"})
        workflow.review(app.ctx, s, item_id=item, actor=workflow.get_user(s, "head"), approve=True)
        workflow.review(app.ctx, s, item_id=item, actor=workflow.get_user(s, "sec"), approve=True)
    ds = deliveries(app, item)
    assert ds["flog"].status == DeliveryStatus.FAILED and "by hand" in (ds["flog"].last_error or "")
    assert run_once(app) == {"done": 1}  # the update on mem
    assert item_status(app, item) == ItemStatus.FAILED
    with app.session() as s:
        workflow.edit_item(app.ctx, s, item_id=item, actor=workflow.get_user(s, "ed"), changes={"title": "再更正"})
        workflow.review(app.ctx, s, item_id=item, actor=workflow.get_user(s, "head"), approve=True)
        workflow.review(app.ctx, s, item_id=item, actor=workflow.get_user(s, "sec"), approve=True)
    with app.session() as s:
        workflow.edit_item(app.ctx, s, item_id=item, actor=workflow.get_user(s, "ed"), changes={"channels": ["flog"]})
        workflow.review(app.ctx, s, item_id=item, actor=workflow.get_user(s, "head"), approve=True)
        workflow.review(app.ctx, s, item_id=item, actor=workflow.get_user(s, "sec"), approve=True)
        # only flog is targeted now, and it fails at once: nothing will ever roll the item up later
        assert workflow.get_item(s, item).status == ItemStatus.FAILED


# a withdrawal, an edit or a re-approval while a channel call is in flight: tests/test_withdraw_in_flight.py


def test_withdraw_from_a_channel_that_cannot_says_so(
    make_app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(PLUGINS))
    app = make_app(channels={"flog": {"type": "filelog", "folder": str(tmp_path / "out")}, "mem": {"type": "memory"}})
    item = approved_item(app, channels=["flog", "mem"])
    assert run_once(app) == {"done": 2}
    with app.session() as s:
        workflow.withdraw(app.ctx, s, item_id=item, reason="信息有误")
    ds = deliveries(app, item)
    assert (ds["flog"].op, ds["flog"].status) == (DeliveryOp.WITHDRAW, DeliveryStatus.FAILED)
    assert "cannot withdraw automatically: take it down by hand" in (ds["flog"].last_error or "")
    assert (ds["mem"].op, ds["mem"].status) == (DeliveryOp.WITHDRAW, DeliveryStatus.PENDING)
    assert run_once(app) == {"done": 1}
    assert MemoryChannel.withdrawn["mem"] == [item]
    assert item_status(app, item) == ItemStatus.WITHDRAWN


def test_concurrent_edit_and_second_approval_serialise(app: Any) -> None:
    """An edit and the 保密审查 approval of the previous version at the same moment. On PostgreSQL
    the approval read the old version, waited for the edit's row lock, then overwrote the status:
    version 2, never reviewed, came out 'scheduled'. The item row must be locked when read."""
    from sqlmodel import Session

    with app.session() as s:
        draft = content.ItemDraft(
            title="通知", body_markdown="正文", fields={"category": "公告公示", "channels": ["mem"]}
        )
        item = workflow.create_item(app.ctx, s, author=workflow.get_user(s, "ed"), draft=draft)
        workflow.submit(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, "ed"))
        workflow.review(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, "head"), approve=True)
        workflow.schedule(app.ctx, s, item_id=item.id, at=datetime.now(UTC))
    editing = Session(app.engine, expire_on_commit=False)
    workflow.edit_item(
        app.ctx, editing, item_id=item.id, actor=workflow.get_user(editing, "ed"), changes={"title": "更正"}
    )
    editing.flush()
    outcome: dict[str, Any] = {}

    def approve() -> None:
        try:
            with app.session() as s:
                workflow.review(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, "sec"), approve=True)
            outcome["result"] = "approved"
        except Exception as exc:  # noqa: BLE001 - the assertion below names what it was
            outcome["result"] = exc

    t = threading.Thread(target=approve)
    t.start()
    t.join(0.5)  # the approval is now waiting for the edit's transaction
    editing.commit()
    editing.close()
    t.join(30)
    assert isinstance(outcome["result"], NotAllowed), outcome
    with app.session() as s:
        it = workflow.get_item(s, item.id)
        assert (it.version, it.status) == (2, ItemStatus.SUBMITTED)
    assert deliveries(app, item.id) == {}
