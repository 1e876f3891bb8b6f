"""The requests-for-disclosure register (依申请公开) and the complaints register (举报/投诉).

A request is answered within 15 working days of receipt (the day of receipt not counted); the
office may extend once, by at most 15 more working days, and must tell the applicant why. The
outcome is one of the four the annual report counts; "not disclosed" needs its legal ground.
Working days follow the Chinese holiday calendar (:mod:`publisher.counting.workdays`); the numbers of days
are settings (``[registers]``) because the article-level wording was not all verified.

The public form (``/apply`` of ``publisher serve``) files a request through :func:`file_public_request`:
the same register, a receipt number (回执编号) for the applicant, its input checked as a stranger's.
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from publisher.counting.ledger import parse_published_at
from publisher.counting.workdays import Calendar
from publisher.errors import InvalidInput, NotAllowed, NotFound, PublisherError
from publisher.models import Complaint, DisclosureRequest, utcnow
from publisher.pipeline.store.rate import count_in_window
from publisher.pipeline.workflow import audit
from publisher.pipeline.workflow.outbox import RegisterDeadline, on_register_deadlines
from publisher.settings import Settings

VIA = ("letter", "email", "web", "in_person", "phone", "fax", "other")
OUTCOMES = {
    "disclosed": "予以公开",
    "partly": "部分公开",
    "not_disclosed": "不予公开",
    "not_held": "信息不存在",
}
#: the legal grounds for not disclosing (高等学校信息公开办法 第十条); anything else is written out
LEGAL_REASONS = {
    "state_secret": "涉及国家秘密",
    "trade_secret": "涉及商业秘密",
    "privacy": "涉及个人隐私",
    "other_law": "法律法规禁止公开",
}
COMPLAINT_OUTCOMES = {"upheld": "属实", "partly_upheld": "部分属实", "rejected": "不属实"}


def _received(value: Any, settings: Settings) -> datetime:
    if value in (None, ""):
        return utcnow()
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidInput("the time received needs a time zone")
        return value
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time(), settings.zone)
    try:
        return parse_published_at(str(value), settings.zone)
    except ValueError:
        raise InvalidInput(f"{value!r} is not a date; write YYYY-MM-DD or YYYY-MM-DD HH:MM (office time)") from None


def _via(via: str) -> str:
    v = via.strip().lower().replace("-", "_")
    if v not in VIA:
        raise InvalidInput(f"received through {via!r}? one of: {', '.join(VIA)}")
    return v


def _check_received(at: datetime) -> None:
    if at > utcnow():
        raise InvalidInput("the time received is in the future")


@dataclass
class Deadline:
    due_on: date
    working_days_left: int
    overdue: bool
    note: str = ""  # set when the holiday calendar did not cover the dates


def deadline_state(due_on: date, settings: Settings, today: date | None = None) -> Deadline:
    cal = Calendar()
    today = today or datetime.now(settings.zone).date()
    if today > due_on:
        return Deadline(due_on, -cal.between(due_on, today), True, cal.note)
    return Deadline(due_on, cal.between(today, due_on), False, cal.note)


# -------------------------------------------------------------------------------------------- requests
def add_request(
    session: Session,
    settings: Settings,
    *,
    applicant: str,
    subject: str,
    via: str,
    received: Any = None,
    actor: str,
) -> DisclosureRequest:
    if not applicant.strip() or not subject.strip():
        raise InvalidInput("a request needs who asked (applicant) and what was asked (subject)")
    at = _received(received, settings)
    _check_received(at)
    cal = Calendar()
    due = cal.add(at.astimezone(settings.zone).date(), settings.registers.request_working_days)
    r = DisclosureRequest(
        applicant=applicant.strip(),
        subject=subject.strip(),
        via=_via(via),
        received_at=at,
        due_on=due,
        recorded_by=actor,
    )
    session.add(r)
    session.flush()
    audit(
        session,
        actor=actor,
        entity="disclosure_request",
        entity_id=r.id,
        action="create",
        to_state="open",
        due_on=due.isoformat(),
        calendar_note=cal.note or None,
    )
    return r


def get_request(session: Session, request_id: int) -> DisclosureRequest:
    r = session.get(DisclosureRequest, request_id)
    if r is None:
        raise NotFound(f"no request {request_id} (see `publisher request list`)")
    return r


def extend_request(
    session: Session, settings: Settings, *, request_id: int, reason: str, days: int | None = None, actor: str
) -> DisclosureRequest:
    """The one extension the rules allow, of at most ``extension_working_days`` more working days."""
    r = get_request(session, request_id)
    if r.outcome != "open":
        raise NotAllowed(f"request {request_id} is closed ({r.outcome}); nothing to extend")
    if r.extended:
        raise NotAllowed(
            f"request {request_id} was already extended once (to {r.due_on}); only one extension is allowed"
        )
    most = settings.registers.extension_working_days
    days = most if days is None else days
    if not 1 <= days <= most:
        raise InvalidInput(f"an extension is 1 to {most} working days, not {days}")
    if not reason.strip():
        raise InvalidInput("say why the answer needs more time (the applicant is told)")
    before = r.due_on
    r.due_on = Calendar().add(r.due_on, days)
    r.extended, r.extension_reason = True, reason.strip()
    audit(
        session,
        actor=actor,
        entity="disclosure_request",
        entity_id=r.id,
        action="extend",
        from_state=before.isoformat(),
        to_state=r.due_on.isoformat(),
        reason=r.extension_reason,
    )
    return r


def close_request(
    session: Session,
    settings: Settings,
    *,
    request_id: int,
    outcome: str,
    legal_reason: str | None = None,
    note: str | None = None,
    answered: Any = None,
    actor: str,
) -> DisclosureRequest:
    r = get_request(session, request_id)
    if r.outcome != "open":
        raise NotAllowed(f"request {request_id} is already closed ({r.outcome})")
    outcome = outcome.strip().lower().replace("-", "_")
    if outcome not in OUTCOMES:
        raise InvalidInput(f"outcome {outcome!r}? one of: {', '.join(OUTCOMES)}")
    if outcome in ("not_disclosed", "partly") and not (legal_reason and legal_reason.strip()):
        raise InvalidInput(f"'{outcome}' needs the legal reason (--reason {'|'.join(LEGAL_REASONS)} or a sentence)")
    at = _received(answered, settings)
    if at < r.received_at:
        raise InvalidInput("answered before it was received?")
    r.outcome, r.legal_reason, r.note, r.answered_at = outcome, (legal_reason or "").strip() or None, note, at
    late = at.astimezone(settings.zone).date() > r.due_on
    audit(
        session,
        actor=actor,
        entity="disclosure_request",
        entity_id=r.id,
        action="close",
        from_state="open",
        to_state=outcome,
        reason=r.legal_reason,
        late=late,
    )
    return r


def list_requests(
    session: Session, *, start: datetime | None = None, end: datetime | None = None, open_only: bool = False
) -> list[DisclosureRequest]:
    q = select(DisclosureRequest).order_by(DisclosureRequest.received_at)
    if start is not None:
        q = q.where(DisclosureRequest.received_at >= start)
    if end is not None:
        q = q.where(DisclosureRequest.received_at < end)
    if open_only:
        q = q.where(DisclosureRequest.outcome == "open")
    return list(session.exec(q))


def overdue_requests(session: Session, settings: Settings, today: date | None = None) -> list[DisclosureRequest]:
    today = today or datetime.now(settings.zone).date()
    return [r for r in list_requests(session, open_only=True) if r.due_on < today]


# --------------------------------------------------------------------------------- the public form
class TooManySubmissions(PublisherError):
    """Too many requests from this address for now: wait a while, or write to the office."""


#: who the audit trail names for a request filed through the public form
PUBLIC_FORM = "public-form"
#: the receipt's random part: no 0/O, 1/I/L, so it can be read out over the phone
_RECEIPT_LETTERS = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
#: a field's longest value on the public form (characters)
PUBLIC_LIMITS = {"applicant": 100, "contact": 200, "subject": 2000}
#: bidirectional overrides and isolates: they make a register line read differently from what it holds
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def receipt_number(at: datetime, settings: Settings) -> str:
    """YSQ20261203-7K3M9Q: 依申请 (YSQ), the office-zone day received, six random characters (not a count,
    so a receipt tells nobody how many others asked, nor lets them guess another's)."""
    day = at.astimezone(settings.zone).strftime("%Y%m%d")
    return f"YSQ{day}-" + "".join(secrets.choice(_RECEIPT_LETTERS) for _ in range(6))


def _public_text(field: str, value: str, *, lines: bool = False) -> str:
    v = value.strip()
    if not v:
        raise InvalidInput(f"the form's {field} field is empty; fill it in")
    if len(v) > PUBLIC_LIMITS[field]:
        raise InvalidInput(f"the form's {field} field is over {PUBLIC_LIMITS[field]} characters; shorten it")
    allowed = "\n\r\t" if lines else ""
    if any((unicodedata.category(ch) == "Cc" and ch not in allowed) or ch in _BIDI for ch in v):
        what = "control characters" if lines else "line breaks or control characters"
        raise InvalidInput(f"the form's {field} field contains {what}; type it again as plain text")
    return v


def count_public_submission(
    session: Session, settings: Settings, *, address: str, now: datetime | None = None
) -> TooManySubmissions | None:
    """Count one submission from ``address``; the refusal to give when it is past ``apply_per_address``.

    The caller commits the count whatever the form's fate, in a transaction of its own: a refused
    submission counts too, or a script could probe the form's checks for free."""
    window = timedelta(minutes=settings.registers.apply_window_minutes)
    n = count_in_window(session.connection(), f"apply:{address[:100]}", now or utcnow(), window)
    if n <= settings.registers.apply_per_address:
        return None
    return TooManySubmissions(
        f"more than {settings.registers.apply_per_address} submissions from this address within "
        f"{settings.registers.apply_window_minutes} minutes; try again later, or apply by letter or e-mail"
    )


def file_public_request(
    session: Session, settings: Settings, *, applicant: str, contact: str, subject: str
) -> tuple[DisclosureRequest, bool]:
    """File a request from the public form: (the request, whether it was filed just now).

    The same request sent again within the hour (the applicant pressed the button twice, or Back and
    send) is the one already filed, with its receipt, not a second entry in the register."""
    name = _public_text("applicant", applicant)
    reach = _public_text("contact", contact)
    what = _public_text("subject", subject, lines=True)
    same = session.exec(
        select(DisclosureRequest).where(
            DisclosureRequest.applicant == name,
            DisclosureRequest.contact == reach,
            DisclosureRequest.subject == what,
            col(DisclosureRequest.receipt_no).is_not(None),
            DisclosureRequest.received_at >= utcnow() - timedelta(hours=1),
        )
    ).first()
    if same is not None:
        return same, False
    r = add_request(session, settings, applicant=name, subject=what, via="web", actor=PUBLIC_FORM)
    r.receipt_no, r.contact = receipt_number(r.received_at, settings), reach
    session.flush()
    return r, True


# ------------------------------------------------------------------------------------------ complaints
def add_complaint(
    session: Session, settings: Settings, *, complainant: str, subject: str, via: str, received: Any = None, actor: str
) -> Complaint:
    if not complainant.strip() or not subject.strip():
        raise InvalidInput("a complaint needs who made it and what it is about")
    at = _received(received, settings)
    _check_received(at)
    due = Calendar().add(at.astimezone(settings.zone).date(), settings.registers.complaint_working_days)
    c = Complaint(
        complainant=complainant.strip(),
        subject=subject.strip(),
        via=_via(via),
        received_at=at,
        due_on=due,
        recorded_by=actor,
    )
    session.add(c)
    session.flush()
    audit(
        session,
        actor=actor,
        entity="complaint",
        entity_id=c.id,
        action="create",
        to_state="open",
        due_on=due.isoformat(),
    )
    return c


def close_complaint(
    session: Session,
    settings: Settings,
    *,
    complaint_id: int,
    outcome: str,
    resolution: str,
    closed: Any = None,
    actor: str,
) -> Complaint:
    c = session.get(Complaint, complaint_id)
    if c is None:
        raise NotFound(f"no complaint {complaint_id} (see `publisher complaint list`)")
    if c.outcome != "open":
        raise NotAllowed(f"complaint {complaint_id} is already closed ({c.outcome})")
    outcome = outcome.strip().lower().replace("-", "_")
    if outcome not in COMPLAINT_OUTCOMES:
        raise InvalidInput(f"outcome {outcome!r}? one of: {', '.join(COMPLAINT_OUTCOMES)}")
    if not resolution.strip():
        raise InvalidInput("say how it was settled (--resolution)")
    at = _received(closed, settings)
    if at < c.received_at:
        raise InvalidInput("closed before it was received?")
    c.outcome, c.resolution, c.closed_at = outcome, resolution.strip(), at
    audit(
        session,
        actor=actor,
        entity="complaint",
        entity_id=c.id,
        action="close",
        from_state="open",
        to_state=outcome,
        reason=c.resolution,
    )
    return c


def list_complaints(
    session: Session, *, start: datetime | None = None, end: datetime | None = None, open_only: bool = False
) -> list[Complaint]:
    q = select(Complaint).order_by(Complaint.received_at)
    if start is not None:
        q = q.where(Complaint.received_at >= start)
    if end is not None:
        q = q.where(Complaint.received_at < end)
    if open_only:
        q = q.where(col(Complaint.outcome) == "open")
    return list(session.exec(q))


# ------------------------------------------------------------------------------------------ reminders
def remind_deadlines(session: Session, settings: Settings, today: date | None = None) -> int:
    """The ``register-deadlines`` job: open requests and complaints within ``[registers]
    remind_working_days`` working days of their deadline, or past it, are told to the keepers — each
    once per due date and state (the outbox's dedupe key), however often the job runs. Returns the
    messages queued; the caller commits (one transaction)."""
    soon = settings.registers.remind_working_days
    entries: list[RegisterDeadline] = []
    rows: list[tuple[str, Any, str]] = [("request", r, r.applicant) for r in list_requests(session, open_only=True)]
    rows += [("complaint", c, c.complainant) for c in list_complaints(session, open_only=True)]
    for register, entry, who in rows:
        dl = deadline_state(entry.due_on, settings, today)
        if dl.overdue or dl.working_days_left <= soon:
            entries.append(
                RegisterDeadline(register, entry.id, who, entry.subject, entry.due_on, dl.working_days_left, dl.overdue)
            )
    return on_register_deadlines(session.connection(), entries, settings.registers.keepers)
