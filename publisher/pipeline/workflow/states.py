"""The review workflow as a table (:data:`WORKFLOW`): which action may move an item from which state
to which, and who may ask for it. :func:`transition` is the only place the workflow changes an item's
state through the ORM; the dispatcher's batched roll-up (:func:`rollup_items`) follows the same
roll-up rule (:func:`rolled_up`).

The invariant the office answers to regulators for: **nothing reaches any channel without both
approvals of the item's current version, by two different people, neither of them the author.**
It is enforced twice: deliveries are only created by the ``queue`` action, whose rule is
:func:`is_cleared`, and the dispatcher re-checks the same rule right before it calls a channel.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from publisher.db import one_of, records
from publisher.errors import NotAllowed, NotFound
from publisher.models import (
    AuditLog,
    Delivery,
    DeliveryStatus,
    Item,
    ItemStatus,
    ItemVersion,
    PrivacyFinding,
    Review,
    Role,
    User,
    utcnow,
)
from publisher.pipeline.workflow import outbox
from publisher.pipeline.workflow.audit import AUDIT_KEYS, SYSTEM, _driver_many, audit, audit_row

S = ItemStatus

#: the refusal of a person (None: they may), given who asks and the item
Who = Callable[[User, Item], str | None]
#: the refusal of a further condition on the item (None: it holds), given the session, item and person
Rule = Callable[[Session, Item, User | None], str | None]


# ------------------------------------------------------------------------------------ who may ask
def _may_edit(user: User, item: Item) -> bool:
    if user.role == Role.ADMIN:
        return True
    return user.role in (Role.EDITOR, Role.DEPARTMENT_HEAD) and user.department == item.department


def _editor(verb: str) -> Who:
    """An editor (or head) of the item's department, or an admin."""

    def who(user: User, item: Item) -> str | None:
        return None if _may_edit(user, item) else f"{user.name} may not {verb} item {item.id} of {item.department}"

    return who


def _editor_or_reviewer(verb: str) -> Who:
    """As :func:`_editor`, or the confidentiality reviewer (the item is cleared or on its way out)."""

    def who(user: User, item: Item) -> str | None:
        if _may_edit(user, item) or user.role == Role.CONFIDENTIALITY_REVIEWER:
            return None
        return f"{user.name} may not {verb} item {item.id}"

    return who


#: the review level an item in each state waits for
REVIEW_LEVEL = {S.SUBMITTED: 1, S.DEPT_APPROVED: 2}


def _reviewer(user: User, item: Item) -> str | None:
    """First level: the head of the item's department. Second: a confidentiality reviewer."""
    level = REVIEW_LEVEL.get(item.status)
    if level == 1 and not (user.role == Role.DEPARTMENT_HEAD and user.department == item.department):
        return (
            f"item {item.id} waits for the head of {item.department}; {user.name} is "
            f"{user.role}{' of ' + user.department if user.department else ''}"
        )
    if level == 2 and user.role != Role.CONFIDENTIALITY_REVIEWER:
        return f"item {item.id} waits for the confidentiality review (保密审查); {user.name} is {user.role}"
    return None  # not waiting for a review: the state refuses it


# ------------------------------------------------------------------------------ rules on the item
def _not_the_author(session: Session, item: Item, user: User | None) -> str | None:
    assert user is not None
    return f"{user.name} wrote item {item.id} and cannot review it" if user.id == item.author_id else None


def _not_its_editor(session: Session, item: Item, user: User | None) -> str | None:
    assert user is not None
    if _editor_of_current_version(session, item) == user.name:
        return f"{user.name} edited version {item.version} of item {item.id} and cannot review it; another person must"
    return None


def _not_the_first_approver(session: Session, item: Item, user: User | None) -> str | None:
    assert user is not None
    first = _approval(session, item, 1)
    if first is not None and first.reviewer_id == user.id:
        return f"{user.name} already approved item {item.id} at the first level; a second person must"
    return None


def _cleared_twice(session: Session, item: Item, user: User | None) -> str | None:
    return None if is_cleared(session, item) else f"item {item.id} lacks its two approvals"


def _privacy_resolved(session: Session, item: Item, user: User | None) -> str | None:
    """The privacy gate (issue 12): every finding of the privacy check on this version is cleared or
    masked (publisher.pipeline.workflow.privacy) before the 保密审查 approval."""
    open_ = session.exec(
        select(PrivacyFinding.number)
        .where(
            PrivacyFinding.item_id == item.id,
            PrivacyFinding.item_version == item.version,
            col(PrivacyFinding.decision).is_(None),
        )
        .order_by(col(PrivacyFinding.number))
    ).all()
    if not open_:
        checked = session.exec(
            select(ItemVersion.privacy_checked_at).where(
                ItemVersion.item_id == item.id, ItemVersion.version == item.version
            )
        ).first()
        if checked is None:  # stored before the check existed (migration 0013): no findings is no answer
            return (
                f"item {item.id} version {item.version} was stored before the privacy check (隐私/保密检查) "
                f"existed and has not been checked: run `publisher privacy recheck {item.id} --as USER` first"
            )
        return None
    n = len(open_)
    return (
        f"item {item.id} version {item.version} has {n} unresolved privacy finding{'s' if n != 1 else ''} "
        f"(隐私/保密检查: no. {', '.join(map(str, open_))}): see them with `publisher privacy list {item.id}`, "
        f"then mask the numbers with `publisher mask {item.id} --as USER` (a new version, reviewed again) or "
        f'clear each with `publisher privacy clear {item.id} NO --reason "…" --as USER`'
    )


REVIEW_RULES: tuple[Rule, ...] = (_not_the_author, _not_its_editor)
SECOND_REVIEW_RULES: tuple[Rule, ...] = (*REVIEW_RULES, _not_the_first_approver)


# --------------------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Step:
    """One row of the workflow: ``action`` takes an item in one of ``sources`` to ``to``."""

    action: str
    sources: frozenset[ItemStatus]
    to: ItemStatus | None  #: None: the item keeps its state
    who: Who | None = None  #: who may ask, checked when a person asks (None: whoever the code lets)
    rules: tuple[Rule, ...] = ()  #: further conditions, checked in order after the state
    record: str | None = None  #: the audit action of the move (None: the caller records what it does)


_MAY_EDIT = _editor("edit")
_ROLLUP_RECORD = "rollup"

SUBMIT, RECALL, APPROVE, REJECT, EDIT = "submit", "recall", "approve", "reject", "edit"
SCHEDULE, QUEUE, WITHDRAW, RETRY = "schedule", "queue", "withdraw", "retry"
ROLLUP_PUBLISHED, ROLLUP_FAILED = "rollup published", "rollup failed"

#: the states an item can be recalled from: waiting for a review, nothing queued for any channel yet
RECALLABLE_STATES = frozenset({S.SUBMITTED, S.DEPT_APPROVED})
#: item states in which the item (or a version of it) may be out on channels
LIVE_STATES = frozenset({S.SCHEDULED, S.PUBLISHED, S.FAILED})
#: an edit in these states undoes an approval: the item goes back to the first review
APPROVED_STATES = frozenset({S.DEPT_APPROVED, S.APPROVED, *LIVE_STATES})
_ALL = frozenset(S)

_EDITOR_SUBMITS, _EDITOR_RECALLS = _editor("submit"), _editor("recall")
_MANAGER_SCHEDULES, _MANAGER_WITHDRAWS = _editor_or_reviewer("schedule"), _editor_or_reviewer("withdraw")

#: the review workflow, one row per (action, from-states): first matching row wins, none: refused
WORKFLOW: tuple[Step, ...] = (
    Step(SUBMIT, frozenset({S.DRAFT}), S.SUBMITTED, who=_EDITOR_SUBMITS, record="submit"),
    Step(RECALL, RECALLABLE_STATES, S.DRAFT, who=_EDITOR_RECALLS, record="recall"),
    Step(
        APPROVE,
        frozenset({S.SUBMITTED}),
        S.DEPT_APPROVED,
        who=_reviewer,
        rules=REVIEW_RULES,
        record="approve level 1",
    ),
    Step(
        APPROVE,
        frozenset({S.DEPT_APPROVED}),
        S.APPROVED,
        who=_reviewer,
        # the privacy gate last: a reviewer refused for who they are need not resolve findings first
        rules=(*SECOND_REVIEW_RULES, _privacy_resolved),
        record="approve level 2 (保密审查)",
    ),
    Step(REJECT, frozenset({S.SUBMITTED}), S.DRAFT, who=_reviewer, rules=REVIEW_RULES, record="reject level 1"),
    Step(
        REJECT, frozenset({S.DEPT_APPROVED}), S.DRAFT, who=_reviewer, rules=SECOND_REVIEW_RULES, record="reject level 2"
    ),
    Step(EDIT, frozenset({S.DRAFT, S.SUBMITTED}), None, who=_MAY_EDIT, record="edit"),
    Step(EDIT, APPROVED_STATES, S.SUBMITTED, who=_MAY_EDIT, record="edit"),
    # the new time is recorded by schedule() itself; an approved item is then queued
    Step(SCHEDULE, _ALL - {S.PUBLISHED, S.WITHDRAWN}, None, who=_MANAGER_SCHEDULES),
    Step(QUEUE, frozenset({S.APPROVED}), S.SCHEDULED, rules=(_cleared_twice,), record="schedule"),
    Step(WITHDRAW, _ALL - {S.WITHDRAWN}, S.WITHDRAWN, who=_MANAGER_WITHDRAWS, record="withdraw"),
    Step(RETRY, frozenset({S.FAILED}), S.SCHEDULED, record="retry"),
    Step(RETRY, _ALL - {S.FAILED}, None),  # one failed delivery of an item in another state
    Step(ROLLUP_PUBLISHED, LIVE_STATES, S.PUBLISHED, record=_ROLLUP_RECORD),
    Step(ROLLUP_FAILED, LIVE_STATES, S.FAILED, record=_ROLLUP_RECORD),
)

#: why an action is refused in a state none of its rows starts from ({item}, {status})
REFUSED = {
    SUBMIT: "item {item} is {status}; only a draft can be submitted",
    RECALL: (
        "item {item} is {status}; only a submitted item waiting for review can be recalled "
        "(a published one is taken down with withdraw)"
    ),
    APPROVE: "item {item} is {status}; there is nothing to review",
    REJECT: "item {item} is {status}; there is nothing to review",
    EDIT: "item {item} is {status}; it can no longer be edited",
    SCHEDULE: "item {item} is {status}; it cannot be rescheduled",
    QUEUE: "item {item} is {status}; only an approved item is queued",
    WITHDRAW: "item {item} is already withdrawn",
    ROLLUP_PUBLISHED: "item {item} is {status}; nothing of it is out on channels",
    ROLLUP_FAILED: "item {item} is {status}; nothing of it is out on channels",
}
#: actions an item recorded from elsewhere refuses (publisher.counting.ledger), with the verb to say so
PIPELINE_ONLY = {EDIT: "edited", RECALL: "recalled", WITHDRAW: "withdrawn"}


def _check_table() -> None:
    for action in {s.action for s in WORKFLOW}:
        steps = [s for s in WORKFLOW if s.action == action]
        # checked before the state, so the person's refusal does not depend on which row matches
        assert len({s.who for s in steps}) == 1, f"{action}: one rule of who may ask"
        starts = [src for s in steps for src in s.sources]
        assert len(starts) == len(set(starts)), f"{action}: two rows start from one state"


_check_table()


@dataclass
class Move:
    """A transition under way: the row it follows; ``detail`` goes into its audit row."""

    step: Step
    source: ItemStatus
    detail: dict[str, Any] = field(default_factory=dict)


@contextmanager
def transition(
    session: Session,
    item: Item,
    action: str,
    actor: str,
    *,
    user: User | None = None,
    reason: str | None = None,
) -> Iterator[Move]:
    """Check ``action`` on ``item`` against :data:`WORKFLOW`, run the body, then move the item.

    Checked in this order, each refusal a :class:`NotAllowed`: an imported item (:data:`PIPELINE_ONLY`),
    who may ask (when ``user``, a person, asks), the item's state (:data:`REFUSED`), the row's rules.
    The body does the work that goes with the move; if it raises, nothing moves. Then the item takes
    the row's state, and a row with an audit action records it (with ``version`` and ``move.detail``).
    """
    step = allowed(session, item, action, user=user)
    move = Move(step, item.status)
    yield move
    if step.record is None:
        return
    before = item.status
    if step.to is not None:
        item.status = step.to
    item.updated_at = utcnow()
    row = audit(
        session,
        actor=actor,
        entity="item",
        entity_id=item.id,
        action=step.record,
        from_state=before,
        to_state=item.status,
        reason=reason,
        version=item.version,
        **move.detail,
    )
    if outbox.tells(step.action, item.status, before):
        # the people who act next are told in this transaction (docs/notify.md); the audit row's id
        # names the occurrence in the message's dedupe key
        session.flush()
        outbox.on_move(
            session.connection(),
            item,
            action=step.action,
            to=item.status,
            before=before,
            actor=actor,
            reason=reason,
            audit_id=row.id,
        )


def allowed(session: Session, item: Item, action: str, *, user: User | None = None) -> Step:
    """The row ``action`` on ``item`` follows, or the :class:`NotAllowed` :func:`transition` would raise:
    an action with work to do before its transition (masking writes cleaned copies) asks first."""
    if action in PIPELINE_ONLY:
        _pipeline_only(item, PIPELINE_ONLY[action])
    steps = [s for s in WORKFLOW if s.action == action]
    who = steps[0].who
    if user is not None and who is not None and (refusal := who(user, item)):
        raise NotAllowed(refusal)
    step = next((s for s in steps if item.status in s.sources), None)
    if step is None:
        raise NotAllowed(REFUSED[action].format(item=item.id, status=item.status))
    for rule in step.rules:
        if refusal := rule(session, item, user):
            raise NotAllowed(refusal)
    return step


def _pipeline_only(item: Item, what: str) -> None:
    """Imported and remote items (publisher.counting.ledger) only record what happened elsewhere."""
    if item.origin != "pipeline":
        raise NotAllowed(
            f"item {item.id} was recorded from elsewhere ({item.origin}), not published through "
            f"here: it cannot be {what} here; change it where it was published"
        )


# ------------------------------------------------------------------------------------ the item
def get_item(session: Session, item_id: int, *, lock: bool = False) -> Item:
    """``lock`` for every state change: on PostgreSQL two actions on one item at once (an edit and
    the second approval of the version before it) otherwise each decide on what they read first,
    and the later write wins: an unreviewed version ended up scheduled.

    The item's deliveries are locked too, first and in id order, as the dispatcher's record takes
    them (delivery rows, then the item): a withdrawal or an edit then either sees the outcome a
    worker has just recorded or leaves its request (``Delivery.requested``) on a delivery the worker
    still holds, where the record will find it; and neither waits for the other in a cycle."""
    if lock:
        session.exec(
            select(Delivery.id).where(Delivery.item_id == item_id).order_by(Delivery.id).with_for_update()
        ).all()
    item = session.get(Item, item_id, with_for_update=True if lock else None)
    if item is None:
        raise NotFound(f"no item {item_id}")
    return item


def _deliveries(session: Session, item_id: int | None) -> list[Delivery]:
    return list(session.exec(select(Delivery).where(Delivery.item_id == item_id).order_by(Delivery.id)))


def _approval(session: Session, item: Item, level: int) -> Review | None:
    return session.exec(
        select(Review)
        .where(Review.item_id == item.id, Review.item_version == item.version, Review.level == level)
        .order_by(col(Review.id).desc())
    ).first()


def _editor_of_current_version(session: Session, item: Item) -> str | None:
    """Who made the item's current version by editing it (None for the first version).

    Whoever rewrote the text is its author as much as the person who first wrote it, so they may
    not be one of its two reviewers either.
    """
    edits = session.exec(
        select(AuditLog)
        .where(AuditLog.entity == "item", AuditLog.entity_id == item.id, AuditLog.action == "edit")
        .order_by(col(AuditLog.id).desc())
    )
    for a in edits:
        if (a.detail or {}).get("version") == item.version:
            return a.actor
    return None


def is_cleared(session: Session, item: Item) -> bool:
    """Both approvals of the current version, by two different people who are not the author."""
    return _cleared(item.author_id, _approval(session, item, 1), _approval(session, item, 2))


def _cleared(author_id: int, first: Any, second: Any) -> bool:
    """The rule itself, over the newest level-1 and level-2 reviews of the item's current version."""
    return bool(
        first
        and second
        and first.approved
        and second.approved
        and first.reviewer_id != second.reviewer_id
        and author_id not in (first.reviewer_id, second.reviewer_id)
        and first.id < second.id
    )


# ----------------------------------------------------------------------------------- the roll-up
_MOVING = (DeliveryStatus.PENDING, DeliveryStatus.CLAIMED, DeliveryStatus.WAITING)
#: the roll-up action that takes an item to each state
_ROLLUP = {S.PUBLISHED: ROLLUP_PUBLISHED, S.FAILED: ROLLUP_FAILED}


def rolled_up(statuses: Collection[str]) -> ItemStatus | None:
    """The state a live item's deliveries (on the channels still on its list) make it: failed if one
    failed for good, else published; None while one is still moving, or when there are none."""
    if not statuses or any(s in _MOVING for s in statuses):
        return None
    return S.FAILED if DeliveryStatus.FAILED in statuses else S.PUBLISHED


def rollup(session: Session, item: Item, actor: str = SYSTEM) -> None:
    """Derive the item's state from its deliveries once none is still moving."""
    # Two workers finishing the last two deliveries of one item at once would each see the other's
    # delivery still claimed (READ COMMITTED) and neither would roll up: serialise on the item row.
    session.flush()
    session.refresh(item, with_for_update=True)
    if item.status not in LIVE_STATES:
        return
    # a channel taken off the item's list no longer decides its state (its take-down is its own business)
    to = rolled_up([d.status for d in _deliveries(session, item.id) if d.channel in item.channels])
    if to is not None and to != item.status:
        with transition(session, item, _ROLLUP[to], actor):
            pass


@functools.cache
def _rollup_statements(dialect: str) -> tuple[Any, Any, Any, Any]:
    """The statements of :func:`rollup_items`, built once per dialect (see ``posts._snapshot_statements``)."""
    it, dl, au = Item.__table__, Delivery.__table__, AuditLog.__table__  # type: ignore[attr-defined]
    return (
        sa.select(it.c.id, it.c.status, it.c.version, it.c.channels)
        .where(one_of(dialect, it.c.id, "ids"), it.c.status.in_([s.value for s in LIVE_STATES]))
        .order_by(it.c.id)
        .with_for_update(),
        sa.select(dl.c.item_id, dl.c.channel, dl.c.status).where(one_of(dialect, dl.c.item_id, "ids")),
        sa.update(it).where(it.c.id == sa.bindparam("b_id")),
        sa.insert(au),
    )


def rollup_items(conn: Connection, item_ids: Iterable[int], actor: str = SYSTEM) -> None:
    """:func:`rollup` for many items in one go, in Core statements (the dispatcher's batched record).

    Item rows are locked first, in id order: two workers finishing the last two deliveries of one
    item then see each other's outcome (READ COMMITTED re-reads after the lock wait), so exactly one
    of them rolls the item up; on SQLite the write lock already serialises them.
    """
    q_items, q_states, u_item, i_audit = _rollup_statements(conn.dialect.name)
    ids = sorted(set(item_ids))
    items = records(conn.execute(q_items, {"ids": ids}))
    if not items:
        return
    states: dict[int, list[str]] = {i.id: [] for i in items}
    targets = {i.id: set(i.channels or ()) for i in items}
    for item_id, channel, status in conn.execute(q_states, {"ids": list(states)}):
        if channel in targets[item_id]:  # as in rollup: a removed channel no longer counts
            states[item_id].append(status)
    now = utcnow()
    moves, audits = [], []
    for i in items:
        to = rolled_up(states[i.id])
        if to is None or to.value == i.status:
            continue
        moves.append({"b_id": i.id, "status": to.value, "updated_at": now})
        audits.append(
            audit_row(
                at=now,
                actor=actor,
                entity="item",
                entity_id=i.id,
                action=_ROLLUP_RECORD,
                from_state=i.status,
                to_state=to.value,
                version=i.version,
            )
        )
    if moves:
        _driver_many(conn, "item-rollup", u_item, ("status", "updated_at")).execute(conn, moves)
        _driver_many(conn, "audit", i_audit, AUDIT_KEYS).execute(conn, audits)
        published = S.PUBLISHED.value
        outbox.on_rollups(
            conn,
            [
                m["b_id"]
                for m, i in zip(moves, audits, strict=True)
                if m["status"] == published and i["from_state"] != published
            ],
        )
