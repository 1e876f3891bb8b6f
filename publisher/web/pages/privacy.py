"""The privacy check's actions on the item page (隐私/保密检查): clear one finding with a reason, mask the
item into a new version, re-check a version stored before the check existed. Each is one service call
(publisher.pipeline.workflow) in one transaction, with that function's permissions; a refusal comes
back on the item page, in its privacy block, with the service's message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from publisher.errors import InvalidInput, NotAllowed, NotFound
from publisher.models import User
from publisher.pipeline import workflow
from publisher.web.common import visible_item
from publisher.web.pages.items import item_view
from publisher.web.pages.shared import Csrf, app_of
from publisher.web.privacy import diff_lines
from publisher.web.security import STAFF, need

router = APIRouter()

#: the refusals a person can act on, shown in the privacy block (anything else is the error page's)
_SHOWN = {InvalidInput: 422, NotAllowed: 403, NotFound: 404}


def _act(request: Request, item_id: int, csrf: str, fn: Callable[[Any, Any, User], Any]) -> tuple[Any, Response | None]:
    """Run ``fn(app, session, me)`` in one transaction; a refusal renders the item page with it."""
    c = need(request, STAFF, write=True, csrf=csrf)
    app = app_of(request)
    try:
        with app.session() as s:
            me = s.get(User, c.user.id)
            visible_item(s, me, item_id)
            return fn(app, s, me), None
    except (InvalidInput, NotAllowed, NotFound) as exc:
        with app.session() as s:
            visible_item(s, c.user, item_id)  # a missing (or hidden) item is the 404 page, not a block
        status = next(code for kind, code in _SHOWN.items() if isinstance(exc, kind))
        return None, item_view(request, c, item_id, status, privacy_error=exc)


@router.post("/items/{item_id}/privacy/{number}/clear", include_in_schema=False)
def privacy_clear(
    request: Request, item_id: int, number: int, csrf_token: Csrf = "", reason: Annotated[str, Form()] = ""
) -> Response:
    _, refused = _act(
        request,
        item_id,
        csrf_token,
        lambda a, s, me: workflow.clear_finding(a.ctx, s, item_id=item_id, number=number, actor=me, reason=reason),
    )
    return refused or RedirectResponse(f"/items/{item_id}#privacy", status_code=303)


@router.post("/items/{item_id}/mask", include_in_schema=False)
def privacy_mask(request: Request, item_id: int, csrf_token: Csrf = "") -> Response:
    """The new version is shown at once, with the body's diff (masked: removed numbers read ``[mobile]``)
    and the attachments replaced by cleaned copies; the diff exists only in this answer."""
    done, refused = _act(
        request, item_id, csrf_token, lambda a, s, me: workflow.mask_item(a.ctx, s, item_id=item_id, actor=me)
    )
    if refused:
        return refused
    c = need(request, STAFF)
    return item_view(
        request,
        c,
        item_id,
        masked={
            "from": done.item.version - 1,
            "to": done.item.version,
            "diff": diff_lines(done.diff),
            "cleaned": done.cleaned,
            "count": done.masked_findings,
        },
    )


@router.post("/items/{item_id}/privacy/recheck", include_in_schema=False)
def privacy_recheck(request: Request, item_id: int, csrf_token: Csrf = "") -> Response:
    _, refused = _act(
        request, item_id, csrf_token, lambda a, s, me: workflow.recheck(a.ctx, s, item_id=item_id, actor=me)
    )
    return refused or RedirectResponse(f"/items/{item_id}#privacy", status_code=303)
