"""The checklist coverage page and the registers of requests for disclosure (依申请公开) and complaints.

Thin, as the CLI is: every figure comes from :mod:`publisher.counting.coverage`, every change from
:mod:`publisher.counting.registers` (the functions ``publisher coverage`` and ``publisher request`` /
``complaint`` call), one transaction per action. A refusal the keeper can act on (a missing reason, a
second extension) comes back on the register page with the form as it was sent.

Who: coverage is read by everyone who may open the dashboard (it names only published items); the
rule of a checklist item is the office admin's, as `publisher coverage rule` is the office's. The
registers hold the applicants' and complainants' names, contacts and questions: only the office
(``REGISTER_KEEPERS``, the admins) reads and keeps them; departments are asked for their part by the
office, outside the register.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from publisher.counting import coverage, periods, registers
from publisher.counting.workdays import Calendar
from publisher.errors import InvalidInput, NotAllowed, NotFound
from publisher.web.common import MAX_ID, can_view, channel_labels, render
from publisher.web.pages.shared import Csrf, app_of
from publisher.web.security import ADMINS, EVERYONE, need

router = APIRouter()

#: who reads and keeps the registers (they hold applicants' personal data)
REGISTER_KEEPERS = ADMINS
STATES = ("open", "closed", "all")
_SHOWN = {InvalidInput: 422, NotAllowed: 403, NotFound: 404}


# ------------------------------------------------------------------------------------------- coverage
@router.get("/coverage", include_in_schema=False)
def coverage_page(
    request: Request,
    status: str = "",
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
) -> Response:
    c = need(request, EVERYONE)
    app = app_of(request)
    tz = app.settings.zone
    s, e = periods.period(start or None, end or None, tz)
    lines = coverage.coverage(app.engine, app.settings)
    counts = {k: sum(1 for x in lines if x.status == k) for k in ("current", "stale", "never")}
    if status in counts:
        lines = [x for x in lines if x.status == status]
    cal = Calendar()
    depts = coverage.timeliness(app.engine, app.settings, s, e, cal)
    with app.session() as session:
        from publisher.models import Item

        ids = {x.item_id for x in lines if x.item_id is not None}
        ids |= {i for d in depts for i, _, _ in d.late_items}
        openable = {i for i in ids if (it := session.get(Item, i)) is not None and can_view(c.user, it)}
    return render(
        request,
        "coverage.html",
        c,
        lines=lines,
        counts=counts,
        status=status if status in counts else "",
        rules=list(coverage.RULES),
        depts=depts,
        openable=openable,
        labels=channel_labels(app),
        limit=app.settings.report.timeliness_working_days,
        start_day=s.astimezone(tz).date(),
        end_day=(e - timedelta(seconds=1)).astimezone(tz).date(),
        calendar_note=cal.note,
    )


@router.post("/coverage/{number}/rule", include_in_schema=False)
def coverage_rule(request: Request, number: int, csrf_token: Csrf = "", rule: Annotated[str, Form()] = "") -> Response:
    c = need(request, ADMINS, write=True, csrf=csrf_token)
    with app_of(request).session() as s:
        coverage.set_rule(s, number=number, rule=rule, actor=c.user.name)
    return RedirectResponse(f"/coverage#c{number}", status_code=303)


# ------------------------------------------------------------------------------------------ registers
def _state(value: str) -> str:
    return value if value in STATES else "open"


def _rows(app: Any, s: Any, kind: str, state: str) -> list[tuple[Any, registers.Deadline | None]]:
    listed = registers.list_requests if kind == "requests" else registers.list_complaints
    found = listed(s, open_only=state == "open")
    if state == "closed":
        found = [r for r in found if r.outcome != "open"]
    if state == "open":  # the most urgent first
        found.sort(key=lambda r: (r.due_on, r.received_at))
    else:  # what came in last first
        found.reverse()
    return [(r, registers.deadline_state(r.due_on, app.settings) if r.outcome == "open" else None) for r in found]


def _page(request: Request, c: Any, kind: str, state: str, code: int = 200, **ctx: Any) -> Response:
    app = app_of(request)
    with app.session() as s:
        rows = _rows(app, s, kind, state)
        overdue = sum(1 for r, d in rows if d is not None and d.overdue)
        if state != "open":
            overdue = sum(1 for r, d in _rows(app, s, kind, "open") if d is not None and d.overdue)
        r = render(
            request,
            f"register_{kind}.html",
            c,
            code=code,
            kind=kind,
            state=state,
            rows=rows,
            overdue=overdue,
            via=registers.VIA,
            outcomes=registers.OUTCOMES if kind == "requests" else registers.COMPLAINT_OUTCOMES,
            legal=registers.LEGAL_REASONS,
            most=app.settings.registers.extension_working_days,
            settings=app.settings.registers,
            error=ctx.pop("error", None),
            sent=ctx.pop("sent", {}),
            **ctx,
        )
    r.headers["Cache-Control"] = "no-store"  # personal data: never kept by a cache, even a private one
    return r


def _act(request: Request, kind: str, csrf: str, fn: Callable[[Any, Any, Any], Any], sent: dict[str, Any]) -> Response:
    """Run ``fn(app, session, caller)`` in one transaction, then back to the register; a refusal shows there."""
    c = need(request, REGISTER_KEEPERS, write=True, csrf=csrf)
    app = app_of(request)
    try:
        with app.session() as s:
            done = fn(app, s, c)
            target = f"/registers/{kind}?state=all#r{done.id}"
    except (InvalidInput, NotAllowed, NotFound) as exc:
        code = next(v for k, v in _SHOWN.items() if isinstance(exc, k))
        return _page(request, c, kind, "open", code, error=exc, sent=sent)
    return RedirectResponse(target, status_code=303)


def _id(value: int) -> int:
    if not 0 < value <= MAX_ID:
        raise NotFound(f"no entry {value}")
    return value


@router.get("/registers/requests", include_in_schema=False)
def requests_page(request: Request, state: str = "open") -> Response:
    return _page(request, need(request, REGISTER_KEEPERS), "requests", _state(state))


@router.post("/registers/requests", include_in_schema=False)
def requests_add(
    request: Request,
    csrf_token: Csrf = "",
    applicant: Annotated[str, Form()] = "",
    subject: Annotated[str, Form()] = "",
    via: Annotated[str, Form()] = "",
    received: Annotated[str, Form()] = "",
) -> Response:
    sent = {"applicant": applicant, "subject": subject, "via": via, "received": received, "form": "add"}
    return _act(
        request,
        "requests",
        csrf_token,
        lambda a, s, c: registers.add_request(
            s,
            a.settings,
            applicant=applicant,
            subject=subject,
            via=via,
            received=received.replace("T", " ") or None,
            actor=c.user.name,
        ),
        sent,
    )


@router.post("/registers/requests/{request_id}/extend", include_in_schema=False)
def requests_extend(
    request: Request,
    request_id: int,
    csrf_token: Csrf = "",
    reason: Annotated[str, Form()] = "",
    days: Annotated[str, Form()] = "",
) -> Response:
    sent = {"id": request_id, "reason": reason, "days": days, "form": "extend"}

    def extend(a: Any, s: Any, c: Any) -> Any:
        try:
            n = int(days) if days.strip() else None
        except ValueError:
            raise InvalidInput(f"an extension is a number of working days, not {days[:20]!r}") from None
        return registers.extend_request(
            s, a.settings, request_id=_id(request_id), reason=reason, days=n, actor=c.user.name
        )

    return _act(request, "requests", csrf_token, extend, sent)


@router.post("/registers/requests/{request_id}/close", include_in_schema=False)
def requests_close(
    request: Request,
    request_id: int,
    csrf_token: Csrf = "",
    outcome: Annotated[str, Form()] = "",
    legal_reason: Annotated[str, Form()] = "",
    legal_text: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    answered: Annotated[str, Form()] = "",
) -> Response:
    sent = {"id": request_id, "outcome": outcome, "note": note, "legal_text": legal_text, "form": "close"}
    # the list of legal grounds, or "other" and a sentence (the CLI's --reason takes either)
    reason = legal_text.strip() if legal_reason in ("", "other") else legal_reason
    return _act(
        request,
        "requests",
        csrf_token,
        lambda a, s, c: registers.close_request(
            s,
            a.settings,
            request_id=_id(request_id),
            outcome=outcome,
            legal_reason=reason or None,
            note=note.strip() or None,
            answered=answered.replace("T", " ") or None,
            actor=c.user.name,
        ),
        sent,
    )


@router.get("/registers/complaints", include_in_schema=False)
def complaints_page(request: Request, state: str = "open") -> Response:
    return _page(request, need(request, REGISTER_KEEPERS), "complaints", _state(state))


@router.post("/registers/complaints", include_in_schema=False)
def complaints_add(
    request: Request,
    csrf_token: Csrf = "",
    complainant: Annotated[str, Form()] = "",
    subject: Annotated[str, Form()] = "",
    via: Annotated[str, Form()] = "",
    received: Annotated[str, Form()] = "",
) -> Response:
    sent = {"complainant": complainant, "subject": subject, "via": via, "received": received, "form": "add"}
    return _act(
        request,
        "complaints",
        csrf_token,
        lambda a, s, c: registers.add_complaint(
            s,
            a.settings,
            complainant=complainant,
            subject=subject,
            via=via,
            received=received.replace("T", " ") or None,
            actor=c.user.name,
        ),
        sent,
    )


@router.post("/registers/complaints/{complaint_id}/close", include_in_schema=False)
def complaints_close(
    request: Request,
    complaint_id: int,
    csrf_token: Csrf = "",
    outcome: Annotated[str, Form()] = "",
    resolution: Annotated[str, Form()] = "",
    closed: Annotated[str, Form()] = "",
) -> Response:
    sent = {"id": complaint_id, "outcome": outcome, "resolution": resolution, "form": "close"}
    return _act(
        request,
        "complaints",
        csrf_token,
        lambda a, s, c: registers.close_complaint(
            s,
            a.settings,
            complaint_id=_id(complaint_id),
            outcome=outcome,
            resolution=resolution,
            closed=closed.replace("T", " ") or None,
            actor=c.user.name,
        ),
        sent,
    )
