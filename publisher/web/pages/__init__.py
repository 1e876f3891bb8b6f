"""The server-rendered pages. Thin: every change goes through publisher.pipeline.workflow / accounts.

``router`` holds every page; the pages live in the modules of this package by what they serve. The
forms for a new item come before the item page, so /items/new is never read as an item's number.
"""

from __future__ import annotations

from fastapi import APIRouter

from publisher.web.pages import (
    admin,
    annual,
    editing,
    items,
    notify,
    overview,
    privacy,
    public,
    records,
    registers,
    session,
    sso,
)
from publisher.web.pages.session import login_redirect
from publisher.web.security import optional_caller

# the modules' routes are copied into one flat list, in this order: an included router would be one
# nested entry of the app's routes, and what walks them (the tests too) looks one level deep
router = APIRouter()
for _module in (session, sso, editing, items, privacy, overview, notify, registers, public, annual, records, admin):
    router.routes.extend(_module.router.routes)

__all__ = ["router", "login_redirect", "optional_caller"]
