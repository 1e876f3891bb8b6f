"""An item's way from draft to published and back: submit, review, schedule, withdraw, recall."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from publisher.cli.common import out, show_time, state
from publisher.cli.privacy import say_findings
from publisher.models import ItemStatus
from publisher.pipeline import workflow

review_app = typer.Typer(
    help="First review (department head) and 保密审查 (confidentiality review).", no_args_is_help=True
)


def submit(item_id: int, as_user: Annotated[str, typer.Option("--as", help="the author or an editor")]) -> None:
    """Send a draft to the department head."""
    a = state.app()
    with a.session() as s:
        item = workflow.submit(a.ctx, s, item_id=item_id, actor=workflow.get_user(s, as_user))
        found = workflow.findings_of(s, item)
    say_findings(item.id, item.version, found)
    out.print(f"item {item.id} submitted; waiting for the head of {item.department}")


def _review(item_id: int, as_user: str, approve: bool, reason: str | None) -> None:
    a = state.app()
    with a.session() as s:
        item = workflow.review(
            a.ctx, s, item_id=item_id, actor=workflow.get_user(s, as_user), approve=approve, reason=reason
        )
    nxt = {
        ItemStatus.DEPT_APPROVED: "waiting for 保密审查 (confidentiality review)",
        ItemStatus.APPROVED: "approved; set a time with `publisher schedule`",
        ItemStatus.SCHEDULED: f"scheduled for {show_time(a, item.publish_at)}",
        ItemStatus.DRAFT: "returned to the author",
    }.get(ItemStatus(item.status), item.status)
    out.print(f"item {item.id}: {nxt}")


@review_app.command("approve")
def review_approve(
    item_id: int,
    as_user: Annotated[str, typer.Option("--as", help="the reviewer")],
    reason: Annotated[str | None, typer.Option(help="optional remark")] = None,
) -> None:
    """Approve at the level the item is waiting for."""
    _review(item_id, as_user, True, reason)


@review_app.command("reject")
def review_reject(
    item_id: int,
    as_user: Annotated[str, typer.Option("--as", help="the reviewer")],
    reason: Annotated[str | None, typer.Option(help="why (required): the author sees it")] = None,
) -> None:
    """Return the item to its author with a reason."""
    _review(item_id, as_user, False, reason)


def schedule(
    item_id: int,
    at: Annotated[str, typer.Option("--at", help="ISO time with zone, e.g. 2026-12-01T09:00+08:00, or 'now'")],
    as_user: Annotated[str | None, typer.Option("--as", help="who schedules (checked against their role)")] = None,
) -> None:
    """Set the publish time; an approved item is queued for every target channel."""
    a = state.app()
    when: Any = datetime.now(a.settings.zone) if at.strip().lower() == "now" else at
    with a.session() as s:
        user = workflow.get_user(s, as_user) if as_user else None
        item = workflow.schedule(a.ctx, s, item_id=item_id, at=when, actor=as_user or "cli", user=user)
    when_s = f"{show_time(a, item.publish_at)} ({a.settings.timezone})"
    if item.status in (ItemStatus.DRAFT, ItemStatus.SUBMITTED, ItemStatus.DEPT_APPROVED):
        # only the time is set: nothing is queued until both reviews approve, and the user should know
        out.print(f"item {item.id} is {item.status}: it will publish at {when_s} once both reviews approve it")
    else:
        out.print(f"item {item.id} {item.status}, publish at {when_s}")


def withdraw(
    item_id: int,
    reason: Annotated[str | None, typer.Option(help="why it is withdrawn (kept in the audit log)")] = None,
    as_user: Annotated[str | None, typer.Option("--as", help="who withdraws")] = None,
) -> None:
    """Take an item down from every channel that supports it; cancel what has not gone out."""
    a = state.app()
    with a.session() as s:
        user = workflow.get_user(s, as_user) if as_user else None
        item = workflow.withdraw(a.ctx, s, item_id=item_id, actor=as_user or "cli", reason=reason, user=user)
        owed = workflow.withdrawals(s, item)
    # say what is left to do: "run the worker" for an item that never went out sends people looking
    said = f"item {item.id} withdrawn" + take_down_said(owed, item.id)
    if not owed.queued and not owed.by_hand and not owed.in_flight:
        said += "; it had not gone out anywhere, so there is nothing to take down"
    out.print(said)


def recall(
    item_id: int,
    as_user: Annotated[str, typer.Option("--as", help="the author or an editor of their department")],
    reason: Annotated[str | None, typer.Option(help="why (kept in the audit log)")] = None,
) -> None:
    """Take a submitted item back to draft (撤回), to change it and submit again; not a take-down."""
    a = state.app()
    with a.session() as s:
        item = workflow.recall(a.ctx, s, item_id=item_id, actor=workflow.get_user(s, as_user), reason=reason)
    out.print(f"item {item.id} recalled: a draft again; `publisher submit {item.id}` sends it to both reviews again")


def take_down_said(owed: workflow.Withdrawals, item_id: int) -> str:
    said = ""
    if owed.queued:
        said += f"; run the worker to take it down from {', '.join(owed.queued)}"
    if owed.in_flight:
        said += (
            f"; being sent to {', '.join(owed.in_flight)} right now: nothing more goes there, and it is "
            "taken down as soon as that call returns if it went out"
        )
    if owed.by_hand:
        said += f"; take it down by hand on {', '.join(owed.by_hand)} (`publisher item show {item_id}` says why)"
    return said
