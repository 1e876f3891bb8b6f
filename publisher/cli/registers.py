"""``publisher request …`` and ``publisher complaint …``: the registers of disclosure requests and of
complaints, with their deadlines."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from publisher.cli.common import Table, err, out, show_time, state

request_app = typer.Typer(help="The register of requests for disclosure (依申请公开).", no_args_is_help=True)
complaint_app = typer.Typer(help="The register of complaints and reports (举报/投诉).", no_args_is_help=True)


def _show_day(d: Any) -> str:
    return d.isoformat() if d else "-"


@request_app.command("add")
def request_add(
    applicant: Annotated[str, typer.Option(help="who asked")],
    subject: Annotated[str, typer.Option(help="what was asked")],
    via: Annotated[str, typer.Option(help="letter | email | web | in_person | phone | fax | other")],
    received: Annotated[str | None, typer.Option(help="when, YYYY-MM-DD [HH:MM] office time (default now)")] = None,
    as_user: Annotated[str, typer.Option("--as")] = "cli",
) -> None:
    """Record a request for disclosure; its deadline is 15 working days after receipt."""
    from publisher.counting import registers

    a = state.app()
    with a.session() as s:
        r = registers.add_request(
            s, a.settings, applicant=applicant, subject=subject, via=via, received=received, actor=as_user
        )
    out.print(f"request {r.id} recorded; answer due by {r.due_on}")


@request_app.command("extend")
def request_extend(
    request_id: int,
    reason: Annotated[str, typer.Option(help="why more time is needed (tell the applicant)")],
    days: Annotated[int | None, typer.Option(help="working days (default the most allowed, 15)")] = None,
    as_user: Annotated[str, typer.Option("--as")] = "cli",
) -> None:
    """The one extension allowed."""
    from publisher.counting import registers

    a = state.app()
    with a.session() as s:
        r = registers.extend_request(s, a.settings, request_id=request_id, reason=reason, days=days, actor=as_user)
    out.print(f"request {r.id} extended; answer due by {r.due_on}")


@request_app.command("close")
def request_close(
    request_id: int,
    outcome: Annotated[str, typer.Option(help="disclosed | partly | not_disclosed | not_held")],
    reason: Annotated[
        str | None,
        typer.Option(
            help="legal reason when not (wholly) disclosed: state_secret | trade_secret | privacy | other_law | text"
        ),
    ] = None,
    note: Annotated[str | None, typer.Option(help="anything else worth keeping")] = None,
    answered: Annotated[str | None, typer.Option(help="when answered, YYYY-MM-DD [HH:MM] (default now)")] = None,
    as_user: Annotated[str, typer.Option("--as")] = "cli",
) -> None:
    """Record the answer."""
    from publisher.counting import registers

    a = state.app()
    with a.session() as s:
        r = registers.close_request(
            s,
            a.settings,
            request_id=request_id,
            outcome=outcome,
            legal_reason=reason,
            note=note,
            answered=answered,
            actor=as_user,
        )
    late = r.answered_at is not None and r.answered_at.astimezone(a.settings.zone).date() > r.due_on
    out.print(f"request {r.id} closed: {r.outcome}" + (" (answered after the deadline)" if late else ""))


@request_app.command("list")
def request_list(open_only: Annotated[bool, typer.Option("--open", help="only unanswered ones")] = False) -> None:
    """Requests, with deadlines and overdue warnings."""
    from publisher.counting import registers

    a = state.app()
    t = Table("#", "received", "applicant", "via", "subject", "due", "outcome", "receipt")
    overdue = 0
    with a.session() as s:
        for r in registers.list_requests(s, open_only=open_only):
            dl = registers.deadline_state(r.due_on, a.settings)
            flag = ""
            if r.outcome == "open":
                flag = " OVERDUE" if dl.overdue else f" ({dl.working_days_left} working days left)"
                overdue += dl.overdue
            t.add_row(
                str(r.id),
                show_time(a, r.received_at),
                r.applicant,
                r.via,
                r.subject[:40],
                _show_day(r.due_on) + (" ext." if r.extended else "") + flag,
                r.outcome,
                r.receipt_no or "",  # filed through the public form (/apply)
            )
    out.print(t)
    if overdue:
        err.print(f"warning: {overdue} request(s) past their deadline")


@complaint_app.command("add")
def complaint_add(
    complainant: Annotated[str, typer.Option(help="who complained")],
    subject: Annotated[str, typer.Option(help="what about")],
    via: Annotated[str, typer.Option(help="letter | email | web | in_person | phone | fax | other")],
    received: Annotated[str | None, typer.Option(help="when, YYYY-MM-DD [HH:MM] (default now)")] = None,
    as_user: Annotated[str, typer.Option("--as")] = "cli",
) -> None:
    """Record a complaint or report about the disclosure work."""
    from publisher.counting import registers

    a = state.app()
    with a.session() as s:
        c = registers.add_complaint(
            s, a.settings, complainant=complainant, subject=subject, via=via, received=received, actor=as_user
        )
    out.print(f"complaint {c.id} recorded; settle by {c.due_on}")


@complaint_app.command("close")
def complaint_close(
    complaint_id: int,
    outcome: Annotated[str, typer.Option(help="upheld | partly_upheld | rejected")],
    resolution: Annotated[str, typer.Option(help="how it was settled")],
    closed: Annotated[str | None, typer.Option(help="when, YYYY-MM-DD [HH:MM] (default now)")] = None,
    as_user: Annotated[str, typer.Option("--as")] = "cli",
) -> None:
    """Record how a complaint was settled."""
    from publisher.counting import registers

    a = state.app()
    with a.session() as s:
        c = registers.close_complaint(
            s,
            a.settings,
            complaint_id=complaint_id,
            outcome=outcome,
            resolution=resolution,
            closed=closed,
            actor=as_user,
        )
    out.print(f"complaint {c.id} closed: {c.outcome}")


@complaint_app.command("list")
def complaint_list(open_only: Annotated[bool, typer.Option("--open", help="only open ones")] = False) -> None:
    """Complaints, with deadlines and overdue warnings."""
    from publisher.counting import registers

    a = state.app()
    t = Table("#", "received", "complainant", "via", "subject", "due", "outcome")
    overdue = 0
    with a.session() as s:
        for c in registers.list_complaints(s, open_only=open_only):
            dl = registers.deadline_state(c.due_on, a.settings)
            flag = " OVERDUE" if c.outcome == "open" and dl.overdue else ""
            overdue += bool(flag)
            t.add_row(
                str(c.id),
                show_time(a, c.received_at),
                c.complainant,
                c.via,
                c.subject[:40],
                _show_day(c.due_on) + flag,
                c.outcome,
            )
    out.print(t)
    if overdue:
        err.print(f"warning: {overdue} complaint(s) past their deadline")
