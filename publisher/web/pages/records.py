"""The ledger's CSV import (a dry-run preview, then the confirmed import) and the audit export, for
admins: the same service functions as ``publisher import`` and ``publisher audit export``.

Import is the admin's: it records publications for every department, born published, without
review (docs/report.md). The audit export lists what every user did, for inspections: the admin's too.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from publisher.counting import audit_export, dashboard, imports, ledger
from publisher.errors import InvalidInput
from publisher.pipeline import workflow
from publisher.web.common import channel_labels, render
from publisher.web.pages.shared import Csrf, app_of
from publisher.web.security import ADMINS, need

router = APIRouter()

#: the audit page shows this many of the period's newest rows; the CSV has them all
AUDIT_SHOWN = 50


@router.get("/import", include_in_schema=False)
def import_page(request: Request) -> Response:
    c = need(request, ADMINS)
    return render(request, "import.html", c, preview=None, columns=ledger.CSV_COLUMNS, done=None, error=None)


@router.post("/import", include_in_schema=False)
async def import_upload(
    request: Request,
    file: Annotated[UploadFile | None, File()] = None,
    csrf_token: Annotated[str, Form()] = "",
    create_departments: Annotated[bool, Form()] = False,
) -> Response:
    """Keep the file by its SHA-256 and go to its preview (a page that can be reloaded)."""
    await run_in_threadpool(need, request, ADMINS, write=True, csrf=csrf_token)
    if file is None or not file.filename:
        raise InvalidInput("no file: choose the CSV to import")
    data = await file.read()
    sha = await run_in_threadpool(imports.keep, app_of(request).settings, data)
    qs = {"name": imports.safe_name(file.filename)}
    if create_departments:
        qs["create_departments"] = "1"
    return RedirectResponse(f"/import/{sha}?{urlencode(qs)}", status_code=303)


def _preview(request: Request, c: Any, sha: str, name: str, create_departments: bool) -> imports.Preview:
    app = app_of(request)
    with app.session() as s:
        p = imports.preview(app.ctx, s, sha=sha, name=name, actor=c.user.name, create_departments=create_departments)
        s.rollback()  # a dry run: nothing it touched is kept
    return p


def _preview_page(
    request: Request, c: Any, p: imports.Preview, *, error: str | None = None, code: int = 200
) -> Response:
    return render(
        request,
        "import.html",
        c,
        code=422 if p.errors or error else code,
        preview=p,
        columns=ledger.CSV_COLUMNS,
        labels=channel_labels(app_of(request)),
        done=None,
        error=error,
    )


@router.get("/import/{sha}", include_in_schema=False)
def import_preview(request: Request, sha: str, name: str = "upload.csv", create_departments: bool = False) -> Response:
    c = need(request, ADMINS)
    return _preview_page(request, c, _preview(request, c, sha, name, create_departments))


@router.post("/import/{sha}", include_in_schema=False)
def import_confirm(
    request: Request,
    sha: str,
    csrf_token: Csrf = "",
    name: Annotated[str, Form()] = "upload.csv",
    rows: Annotated[str, Form()] = "",
    create_departments: Annotated[bool, Form()] = False,
) -> Response:
    """Import the previewed file in one transaction, if it still adds exactly the previewed rows."""
    c = need(request, ADMINS, write=True, csrf=csrf_token)
    app = app_of(request)
    try:
        with app.session() as s:
            result = imports.confirm(
                app.ctx,
                s,
                sha=sha,
                name=name,
                actor=c.user.name,
                rows=rows,
                create_departments=create_departments,
            )
    except InvalidInput as exc:  # rolled back whole; show the file's state now, and why
        errors = exc.errors if isinstance(exc, ledger.ImportRejected) else []
        p = _preview(request, c, sha, name, create_departments)
        return _preview_page(request, c, p, error=str(exc) if not errors else None)
    return render(
        request,
        "import.html",
        c,
        preview=None,
        columns=ledger.CSV_COLUMNS,
        done=result,
        source=imports.safe_name(name),
        error=None,
    )


def _audit_query(
    request: Request, start: str | None, end: str | None, item: str, department: str, user: str
) -> tuple[audit_export.AuditQuery, dict[str, str]]:
    tz = app_of(request).settings.zone
    _, s, e = dashboard.resolve_period("custom" if start or end else "report", start or None, end or None, tz)
    item_id: int | None = None
    if item.strip():
        try:
            item_id = int(item.strip().lstrip("#"))
        except ValueError:
            raise InvalidInput(f"item {item[:50]!r} is not an item number") from None
    q = audit_export.AuditQuery(s, e, item_id=item_id, department=department or None, actor=user or None)
    form = {
        "from": s.astimezone(tz).date().isoformat(),
        "to": (e - timedelta(seconds=1)).astimezone(tz).date().isoformat(),
        "item": item.strip(),
        "department": department,
        "user": user,
    }
    return q, form


@router.get("/audit", include_in_schema=False)
def audit_page(
    request: Request,
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
    item: str = "",
    department: str = "",
    user: str = "",
) -> Response:
    c = need(request, ADMINS)
    app = app_of(request)
    q, form = _audit_query(request, start, end, item, department, user)
    found = audit_export.rows(app.engine, q)
    with app.session() as s:
        departments = workflow.departments(s)
    return render(
        request,
        "audit.html",
        c,
        form=form,
        count=len(found),
        shown=list(reversed(found[-AUDIT_SHOWN:])),
        departments=departments,
        qs=urlencode({k: v for k, v in form.items() if v}),
    )


@router.get("/audit.csv", include_in_schema=False)
def audit_csv(
    request: Request,
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
    item: str = "",
    department: str = "",
    user: str = "",
) -> Response:
    need(request, ADMINS)
    app = app_of(request)
    q, form = _audit_query(request, start, end, item, department, user)
    body = audit_export.to_csv(audit_export.rows(app.engine, q), app.settings.zone)
    name = f"audit-{form['from']}-{form['to']}.csv"
    return Response(
        body, media_type="text/csv; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
