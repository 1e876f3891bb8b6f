"""The public pages of ``publisher serve``, no sign-in: the 依申请公开 form (``/apply``) and the office's
公开指南 (``/guide``).

The form files into the same register the office keeps (:func:`publisher.counting.registers.file_public_request`)
and answers with the receipt number (回执编号) on the page itself: the receipt names the applicant and
their question, so it has no address of its own that a guessed number could open, and it is never cached.

Cross-site forgery: a stranger has no session to ride, but a forged post would still file a request in
someone's name from their address (and use up that address's allowance). The form carries a random
token that must equal a ``SameSite=Strict`` cookie set with the form (a double-submit token, as the
log-in form's), and a post whose ``Origin`` names another site is refused. Each post is counted per
client address (``[registers] apply_per_address`` within ``apply_window_minutes``), refused or not.
"""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from publisher.counting import registers
from publisher.errors import InvalidInput
from publisher.web.common import render
from publisher.web.pages.shared import Csrf, app_of
from publisher.web.security import client_address, cookie_args

router = APIRouter()

APPLY_CSRF_COOKIE = "publisher_apply_csrf"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")


def office(settings: Any) -> dict[str, str]:
    """The office as the public reaches it (``[office]``); its name defaults to the organisation's."""
    o = settings.office
    return {
        "name": o.name or f"{settings.organisation}信息公开办公室",
        "address": o.address,
        "phone": o.phone,
        "email": o.email,
        "hours": o.hours,
    }


def _form(request: Request, code: int = 200, *, token: str | None = None, **ctx: Any) -> Response:
    app = app_of(request)
    token = token or secrets.token_urlsafe(24)
    r = render(
        request,
        "apply.html",
        None,
        public=True,
        code=code,
        apply_csrf=token,
        office=office(app.settings),
        days=app.settings.registers.request_working_days,
        limits=registers.PUBLIC_LIMITS,
        sent=ctx.pop("sent", {}),
        error=ctx.pop("error", None),
        **ctx,
    )
    r.set_cookie(APPLY_CSRF_COOKIE, token, max_age=6 * 3600, **{**cookie_args(request), "samesite": "strict"})
    r.headers["Cache-Control"] = "no-store"
    return r


def _same_origin(request: Request) -> bool:
    """No ``Origin`` (an old browser, a privacy setting) passes to the token check; another site's fails.

    This site is the ``Host`` asked for, or the workspace's public address (``[notify] web_base_url``),
    which is what a browser names when a proxy passes the request on under another ``Host``."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    ours = {(request.headers.get("host") or "").lower(), urlsplit(app_of(request).settings.notify.web_base_url).netloc}
    return urlsplit(origin).netloc.lower() in ours


@router.get("/apply", include_in_schema=False)
def apply_form(request: Request) -> Response:
    # the token already held is kept, so a form open in another tab still sends
    held = request.cookies.get(APPLY_CSRF_COOKIE, "")
    return _form(request, token=held if _TOKEN.fullmatch(held) else None)


@router.post("/apply", include_in_schema=False)
def apply_send(
    request: Request,
    csrf_token: Csrf = "",
    applicant: Annotated[str, Form()] = "",
    contact: Annotated[str, Form()] = "",
    subject: Annotated[str, Form()] = "",
) -> Response:
    app = app_of(request)
    sent = {"applicant": applicant, "contact": contact, "subject": subject}
    cookie = request.cookies.get(APPLY_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), csrf_token.encode()) or not _same_origin(request):
        # the form comes back with what was typed and the token held (or a fresh one): sending it again works
        return _form(request, 403, token=cookie if _TOKEN.fullmatch(cookie) else None, sent=sent, error="apply_expired")
    with app.session() as s:  # committed on its own: a refused submission counts too
        too_many = registers.count_public_submission(s, app.settings, address=client_address(request))
    if too_many is not None:
        return _form(request, 429, token=cookie, sent=sent, error=too_many)
    try:
        with app.session() as s:
            filed, new = registers.file_public_request(
                s, app.settings, applicant=applicant, contact=contact, subject=subject
            )
            shown = {
                "receipt_no": filed.receipt_no,
                "received_at": filed.received_at,
                "due_on": filed.due_on,
                "applicant": filed.applicant,
                "contact": filed.contact,
                "subject": filed.subject,
            }
    except InvalidInput as exc:
        return _form(request, 422, token=cookie, sent=sent, error=exc)
    r = render(request, "apply_done.html", None, public=True, filed=shown, new=new, office=office(app.settings))
    r.headers["Cache-Control"] = "no-store"
    return r


@router.get("/guide", include_in_schema=False)
def guide(request: Request) -> Response:
    app = app_of(request)
    reg = app.settings.registers
    return render(
        request,
        "guide.html",
        None,
        public=True,
        office=office(app.settings),
        days=reg.request_working_days,
        extension=reg.extension_working_days,
        complaint_days=reg.complaint_working_days,
        site=app.settings.site_base_url,
    )
