"""The two reviews: first the head of the item's department, then the confidentiality review (保密审查).
Who may review at each level, and what a reviewer may not have done, is in :data:`states.WORKFLOW`."""

from __future__ import annotations

from sqlmodel import Session

from publisher.errors import InvalidInput, NotAllowed
from publisher.models import Item, Review, User
from publisher.pipeline.workflow.audit import SYSTEM
from publisher.pipeline.workflow.context import Context
from publisher.pipeline.workflow.deliveries import _queue_deliveries
from publisher.pipeline.workflow.posts import check_channels_accept
from publisher.pipeline.workflow.states import APPROVE, REJECT, REVIEW_LEVEL, allowed, get_item, transition


def review(
    ctx: Context, session: Session, *, item_id: int, actor: User, approve: bool, reason: str | None = None
) -> Item:
    """First level: the department head of the item's department. Second: a confidentiality reviewer."""
    item = get_item(session, item_id, lock=True)
    said = reason if approve else (reason or "").strip()
    with transition(session, item, APPROVE if approve else REJECT, actor.name, user=actor, reason=said) as move:
        level = REVIEW_LEVEL[move.source]
        if not approve:
            if not said:
                raise InvalidInput('a rejection needs a reason (--reason "...") so the author knows what to fix')
            session.add(
                Review(
                    item_id=item.id,
                    item_version=item.version,
                    level=level,
                    reviewer_id=actor.id,
                    approved=False,
                    reason=said,
                )
            )
            item.return_reason = said
        else:
            if level == 2:
                check_channels_accept(ctx, session, item)
            session.add(
                Review(
                    item_id=item.id,
                    item_version=item.version,
                    level=level,
                    reviewer_id=actor.id,
                    approved=True,
                    reason=reason,
                )
            )
            session.flush()
    if approve and level == 2 and item.publish_at is not None:
        _queue_deliveries(ctx, session, item, SYSTEM)
    return item


def approval_refusal(session: Session, item: Item, actor: User) -> str | None:
    """Why :func:`review` would refuse ``actor``'s approval of ``item`` now (None: it would not), asked of
    the workflow table itself, so a face can say it beside the button without a rule of its own (the
    privacy gate's "unresolved findings" among them). The channels' checks of a level-2 approval are
    not asked: they read every channel's settings and run when the approval is made."""
    try:
        allowed(session, item, APPROVE, user=actor)
    except NotAllowed as exc:
        return str(exc)
    return None
