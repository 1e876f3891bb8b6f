"""Shared by the pages and the API: templates, the viewer's language and zone, item visibility."""

from __future__ import annotations

import re
from datetime import datetime
from importlib.resources import files
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from publisher.accounts import Caller
from publisher.errors import InvalidInput, NotFound
from publisher.models import Delivery, Item, Role, User
from publisher.pipeline.workflow.states import _may_edit
from publisher.web.i18n import Translator, pick_lang

TEMPLATES = Jinja2Templates(directory=str(files("publisher.web").joinpath("templates")))
_ASSET = re.compile(r"asset://([0-9a-f]{64})")


def viewer_zone(request: Request) -> ZoneInfo:
    for v in (request.query_params.get("tz"), request.cookies.get("tz")):
        if v and len(v) <= 64:  # the longest IANA name is 32 characters; a long one only costs a file lookup
            try:
                return ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name no file system can open
                continue
    return request.app.state.app.settings.zone


def translator(request: Request) -> Translator:
    lang = pick_lang(request.query_params.get("lang"), request.cookies.get("lang"))
    return Translator(lang, viewer_zone(request))


def media_urls(html: str) -> str:
    """Stored HTML refers to images as asset://<sha256>; in our own pages they come from /media/."""
    return _ASSET.sub(r"/media/\1", html)


def render(request: Request, name: str, caller: Caller | None, code: int = 200, **ctx: Any) -> HTMLResponse:
    t = translator(request)
    app = request.app.state.app
    response = TEMPLATES.TemplateResponse(
        request,
        name,
        {
            "t": t,
            "me": caller.user if caller else None,
            "csrf": caller.csrf if caller else "",
            "Role": Role,
            "org": app.settings.organisation,
            "tzname": t.tz.key,
            "checklist_label": checklist_label,
            **ctx,
        },
        status_code=code,
    )
    # ?lang=en and ?tz=... stick for the following pages
    lang = request.query_params.get("lang")
    if lang in ("zh", "en"):
        response.set_cookie("lang", lang, max_age=365 * 86400, samesite="lax", httponly=True)
    if request.query_params.get("tz") and t.tz.key == request.query_params.get("tz"):
        response.set_cookie("tz", t.tz.key, max_age=365 * 86400, samesite="lax", httponly=True)
    return response


def channel_labels(app: Any) -> dict[str, str]:
    """Configured channel key -> its display label (a key no longer configured shows as itself)."""
    return {name: spec.label for name, spec in app.channels.items()}


def can_view(user: User, item: Item) -> bool:
    """The one visibility rule: reviewers and admins see every item, editors and heads their department's.

    Every route that names an item (or its deliveries, or a file it holds) asks this; one the caller may
    not see answers exactly as a missing one (``visible_item``), so ids cannot be probed for existence.
    """
    if user.role in (Role.ADMIN, Role.CONFIDENTIALITY_REVIEWER):
        return True
    return user.role in (Role.EDITOR, Role.DEPARTMENT_HEAD) and user.department == item.department


def view_filter(user: User) -> sa.ColumnElement[bool] | None:
    """``can_view`` as an SQL condition on the item table, for queries that list many items' rows.

    ``None`` when the user sees every item (no condition to add); ``sa.false()`` when they see none.
    ``tests/web/test_permissions.py`` checks it agrees with ``can_view`` for every role.
    """
    if user.role in (Role.ADMIN, Role.CONFIDENTIALITY_REVIEWER):
        return None
    if user.role in (Role.EDITOR, Role.DEPARTMENT_HEAD) and user.department is not None:
        return Item.__table__.c.department == user.department  # type: ignore[attr-defined,no-any-return]
    return sa.false()


def can_edit(user: User, item: Item) -> bool:
    return _may_edit(user, item)  # the workflow's own rule, so pages never disagree with it


def can_manage(user: User, item: Item) -> bool:
    """Schedule, withdraw, retry: the item's department, or the confidentiality reviewer (workflow rule)."""
    return can_edit(user, item) or user.role == Role.CONFIDENTIALITY_REVIEWER


#: the largest id a row can have (PostgreSQL's integer); a larger one in a URL is simply not found
MAX_ID = 2**31 - 1


def visible_item(session: Any, user: User, item_id: int) -> Item:
    """The item, or NotFound, the same one whether it is missing or merely not ``can_view``-able."""
    item = session.get(Item, item_id) if 0 < item_id <= MAX_ID else None
    if item is None or not can_view(user, item):
        raise NotFound(f"no item {item_id}")
    return item


def visible_delivery(session: Any, user: User, delivery_id: int) -> tuple[Delivery, Item]:
    """A delivery and its item, or NotFound, as for a missing delivery when its item is not visible."""
    d = session.get(Delivery, delivery_id) if 0 < delivery_id <= MAX_ID else None
    item = session.get(Item, d.item_id) if d is not None else None
    if d is None or item is None or not can_view(user, item):
        raise NotFound(f"no delivery {delivery_id}")
    return d, item


def local_time(value: str, tz: ZoneInfo) -> datetime:
    """A ``<input type=datetime-local>`` value (no zone) read in the viewer's zone."""
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"{value!r} is not a date and time (YYYY-MM-DDTHH:MM)") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=tz)


def checklist_label(number: int | None) -> str:
    """'2 — 学校基本情况' (the national checklist's number and name, as the compose form's list
    offers them), just the number when the list has no such item, '' for none."""
    from publisher.checklist import checklist_name

    if number is None:
        return ""
    name = checklist_name(number)
    return f"{number} — {name}" if name else str(number)


def checklist_number(value: str | int | None) -> int | None:
    """'12', '12 — 学校基本情况' or '' (from the searchable field) → 12 or None."""
    if value in (None, ""):
        return None
    m = re.match(r"\s*(\d+)", str(value))
    if not m:
        from publisher.checklist import checklist

        hits = [n for n, c in checklist().items() if str(value).strip() and str(value).strip() in c.name]
        if len(hits) == 1:
            return hits[0]
        raise InvalidInput(f"checklist item {value!r}: pick a number from 1 to 50 from the list")
    return int(m.group(1))
