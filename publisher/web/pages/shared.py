"""What the page modules share: the form's CSRF field, the app behind a request, the redirect back."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import RedirectResponse

Csrf = Annotated[str, Form()]


def app_of(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.app


def go_back(request: Request, default: str) -> RedirectResponse:
    nxt = request.query_params.get("next") or default
    if not nxt.startswith("/") or nxt.startswith("//") or "\\" in nxt:
        nxt = default
    return RedirectResponse(nxt, status_code=303)
