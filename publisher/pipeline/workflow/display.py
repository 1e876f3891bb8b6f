"""The 公示期 that ends by itself (issue 12): what an item asks for, when its period ends, and the job
that takes it down at the end (:func:`end_displays`).

An item asks for ``display_until`` (an end time) or ``display_working_days`` (N Chinese working days
from when it first went live, :mod:`publisher.pipeline.display`), or gets its category's default
(``[display] working_days``) when it names neither. ``display_ends_at`` is known at once for an end
time, and for working days once the item is live (the earliest ``published_at`` of its deliveries);
before that, the faces show the end planned from ``publish_at`` (:func:`display_of`).

At the end the item is **withdrawn** through the same take-down as a person's withdrawal (every
channel that can takes it down, a claimed delivery gets a request, the others fail "take it down by
hand"), by ``system``, with the reason ``公示期已结束 (display period ended …)``. Its publications stay
in the ledger and the counts (a delivery keeps its ``published_at``); ``display_ended_at`` says why it
was withdrawn, and the website replaces the page with a notice or removes it (``after_display``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from publisher.errors import InvalidInput
from publisher.models import DISPLAY_OPEN, Delivery, Item, ItemStatus, utcnow
from publisher.pipeline import content
from publisher.pipeline.display import MAX_WORKING_DAYS, UnknownYear, WorkCalendar, display_end
from publisher.pipeline.workflow.audit import SYSTEM
from publisher.pipeline.workflow.context import Context
from publisher.pipeline.workflow.deliveries import Withdrawals, _take_down, wake_workers, withdrawals
from publisher.pipeline.workflow.outbox import on_display_ending
from publisher.pipeline.workflow.states import LIVE_STATES, WITHDRAW, _deliveries, get_item, transition

#: what a take-down at the end tells each delivery and the audit trail
ENDED = "display period ended"


def calendar_of(ctx: Context) -> WorkCalendar:
    """The working-day calendar with the office's own lists of years chinese-calendar does not know."""
    return WorkCalendar.of(ctx.settings.calendar.holidays, ctx.settings.calendar.workdays)


def check_display_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``display_until`` / ``display_working_days`` of an item's fields, checked (only those given; an
    empty value clears it). InvalidInput names the fix."""
    out: dict[str, Any] = {}
    until = fields.get("display_until")
    days = fields.get("display_working_days")
    if until not in (None, "") and days not in (None, ""):
        raise InvalidInput(
            "give either display_until (an end time) or display_working_days (working days from going "
            "live), not both: remove one of them"
        )
    if "display_until" in fields:
        # with a zone, as publish_at: a time without one is refused with the fix, never guessed
        out["display_until"] = (
            None if until in (None, "") else content.parse_time(until, what="display_until").astimezone(UTC)
        )
    if "display_working_days" in fields:
        if days in (None, ""):
            out["display_working_days"] = None
        else:
            if isinstance(days, bool) or not str(days).strip().isdigit():
                raise InvalidInput(
                    f"display_working_days {days!r} is not a whole number of working days (1 to {MAX_WORKING_DAYS})"
                )
            n = int(str(days).strip())
            if not 1 <= n <= MAX_WORKING_DAYS:
                raise InvalidInput(f"display_working_days {n}: give 1 to {MAX_WORKING_DAYS} working days")
            out["display_working_days"] = n
    # the one given replaces the other
    if out.get("display_until") is not None:
        out["display_working_days"] = None
    if out.get("display_working_days") is not None:
        out["display_until"] = None
    return out


def apply_display(ctx: Context, session: Session, item: Item, checked: Mapping[str, Any]) -> None:
    """Set the item's period from checked fields (the category's default when it names none) and work
    out its end (:func:`plan`)."""
    for key in ("display_until", "display_working_days"):
        if key in checked:
            setattr(item, key, checked[key])
    until = checked.get("display_until")
    if until is not None and until <= max(item.publish_at or utcnow(), utcnow()):
        shown = until.astimezone(ctx.settings.zone).isoformat(timespec="minutes")
        raise InvalidInput(f"display_until {shown} is not after the publish time: give a later end")
    # an item of a category with a default always has a period: one naming none gets the default
    default = ctx.settings.display.working_days.get(item.category)
    if default and item.display_until is None and item.display_working_days is None:
        item.display_working_days = default
    plan(ctx, session, item)


def first_live(session: Session, item_id: int | None) -> datetime | None:
    """When the item first went live anywhere (the earliest ``published_at`` of its deliveries)."""
    return session.exec(select(func.min(Delivery.published_at)).where(Delivery.item_id == item_id)).one()


def plan(ctx: Context, session: Session, item: Item) -> None:
    """Work out ``display_ends_at`` where it can be known: at once for ``display_until``, from the
    first publication for working days. At save, refuse working days whose count from the planned
    publish time (``publish_at``, else now) reaches a year the calendar does not know (UnknownYear,
    an InvalidInput naming the fixes)."""
    item.display_problem = None
    if item.display_until is not None:
        item.display_ends_at = item.display_until
        return
    if item.display_working_days is None:
        item.display_ends_at = None
        return
    live = first_live(session, item.id) if item.id is not None else None
    start = live or item.publish_at or utcnow()
    try:
        end = display_end(start, item.display_working_days, zone=ctx.settings.zone, calendar=calendar_of(ctx))
    except UnknownYear as exc:
        raise InvalidInput(f"display_working_days {item.display_working_days}: {exc}") from exc
    item.display_ends_at = end if live else None


@dataclass(frozen=True)
class Display:
    """An item's 公示期 as the faces show it."""

    until: datetime | None
    working_days: int | None
    #: the end: known (``planned`` False) or planned from ``publish_at`` (True); None when not known
    ends_at: datetime | None
    planned: bool
    ended_at: datetime | None
    #: why the end cannot be computed (the item stays up until someone acts)
    problem: str | None


def display_of(ctx: Context, item: Any) -> Display | None:
    """The item's 公示期 (None when it has none). ``item``: an Item or a row with its display columns."""
    if item.display_until is None and item.display_working_days is None:
        return None
    ends, planned, problem = item.display_ends_at, False, item.display_problem
    if ends is None and item.display_working_days is not None and item.publish_at is not None and not problem:
        planned = True
        try:
            ends = display_end(
                item.publish_at, item.display_working_days, zone=ctx.settings.zone, calendar=calendar_of(ctx)
            )
        except UnknownYear as exc:
            ends, problem = None, str(exc)
    return Display(item.display_until, item.display_working_days, ends, planned, item.display_ended_at, problem)


def shown_end(ctx: Context, item: Any) -> datetime | None:
    """The end a channel may show while the item is up (``Post.display_ends_at``): the known end, else
    the one planned from ``publish_at`` (the worker sends a post when it goes live), else None."""
    if item.display_ends_at is not None or item.display_working_days is None or item.publish_at is None:
        return item.display_ends_at
    try:
        return display_end(
            item.publish_at, item.display_working_days, zone=ctx.settings.zone, calendar=calendar_of(ctx)
        )
    except UnknownYear:
        return None


@dataclass
class EndedDisplays:
    """What one run of :func:`end_displays` did."""

    #: item id → the take-downs owed on it
    ended: dict[int, Withdrawals] = field(default_factory=dict)
    #: item id → the end just worked out (the item went live)
    known: dict[int, datetime] = field(default_factory=dict)
    #: item id → why its end cannot be computed (it stays up)
    problems: dict[int, str] = field(default_factory=dict)
    #: reminders queued for people of items ending within a day (each once per item and end)
    reminded: int = 0


def _due_ids(session: Session, now: datetime) -> list[int]:
    """Items whose period is open and either ended by ``now`` or not yet worked out though live.

    Queued or live items (scheduled, published, failed), and items in any other state with a copy
    still up somewhere: an edit sends a live 公示 back to review (and a rejection to draft) while
    its copies stay up, and its period ends all the same."""
    dl = Delivery.__table__  # type: ignore[attr-defined]
    went_live = sa.exists().where(dl.c.item_id == Item.id, dl.c.published_at.is_not(None))
    still_up = sa.exists().where(dl.c.item_id == Item.id, dl.c.published_at.is_not(None), dl.c.withdrawn_at.is_(None))
    return list(
        session.exec(
            select(Item.id)
            .where(
                sa.text(DISPLAY_OPEN),  # ix_item_display_open's condition, word for word
                Item.status != ItemStatus.WITHDRAWN,
                sa.or_(col(Item.status).in_([s.value for s in LIVE_STATES]), still_up),
                sa.or_(sa.and_(col(Item.display_ends_at).is_(None), went_live), col(Item.display_ends_at) <= now),
            )
            .order_by(col(Item.id))
        )
    )


def end_displays(
    ctx: Context, sessions: Callable[[], AbstractContextManager[Session]], *, now: datetime | None = None
) -> EndedDisplays:
    """Take down every live item whose 公示期 has ended by ``now`` (default: the current time), one
    transaction per item (``sessions()`` opens one and commits it); work out the end of those that
    went live since the last run. The periodic job ``display-end`` calls it every minute."""
    now = now or utcnow()
    if now.tzinfo is None:
        raise ValueError("now must be time-zone aware")
    out = EndedDisplays()
    with sessions() as s:
        ids = _due_ids(s, now)
    for item_id in ids:
        with sessions() as s:
            _end_one(ctx, s, item_id, now, out)
    with sessions() as s:
        out.reminded = on_display_ending(s.connection(), _ending_soon(s, now), ctx.settings.zone)
    return out


def _ending_soon(session: Session, now: datetime) -> list[Any]:
    """Live items whose known end falls within the next day (their people are reminded once)."""
    it = Item.__table__  # type: ignore[attr-defined]
    return list(
        session.connection().execute(
            sa.select(it.c.id, it.c.title, it.c.department, it.c.author_id, it.c.display_ends_at)
            .where(
                sa.text(DISPLAY_OPEN),
                it.c.status.in_([s.value for s in LIVE_STATES]),
                it.c.display_ends_at > now,
                it.c.display_ends_at <= now + timedelta(days=1),
            )
            .order_by(it.c.id)
        )
    )


def _end_one(ctx: Context, session: Session, item_id: int, now: datetime, out: EndedDisplays) -> None:
    item = get_item(session, item_id, lock=True)
    if item.display_ended_at is not None or item.status == ItemStatus.WITHDRAWN:
        return  # ended, or withdrawn by a person, since the list was read
    if item.display_ends_at is None:
        assert item.display_working_days is not None
        live = first_live(session, item.id)
        if live is None:
            return  # nothing out yet: the count starts when it goes live
        try:
            item.display_ends_at = display_end(
                live, item.display_working_days, zone=ctx.settings.zone, calendar=calendar_of(ctx)
            )
        except UnknownYear as exc:
            # never guess: an early take-down breaks the 公示期; the item stays up and says why
            if item.display_problem != str(exc):
                item.display_problem = str(exc)
            out.problems[item_id] = str(exc)
            return
        item.display_problem = None
        out.known[item_id] = item.display_ends_at
    ends = item.display_ends_at
    if ends > now:
        return
    shown = ends.astimezone(ctx.settings.zone).strftime("%Y-%m-%d %H:%M %z")
    shown = shown[:-2] + ":" + shown[-2:]
    with transition(session, item, WITHDRAW, SYSTEM, reason=f"公示期已结束 ({ENDED} {shown})") as move:
        move.detail["display_ends_at"] = ends.isoformat()
        for d in _deliveries(session, item.id):
            _take_down(ctx, session, d, SYSTEM, why=ENDED)
        item.display_ended_at = now
    wake_workers(session)
    out.ended[item_id] = withdrawals(session, item)
