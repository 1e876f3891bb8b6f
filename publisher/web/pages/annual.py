"""The annual report (信息公开年度报告) in the browser: its figures with the rows behind them, the
downloads, and the office's copy of the template. The same service functions as ``publisher report``.

Who reads what (docs/web.md, "The annual report, import and audit pages"): the report is published
to the public and its figures are the dashboard's counts, so every role may read it, with the
publications behind each figure (each was public on a channel). The request and complaint registers'
rows behind their figures name what applicants asked: only admins see those rows; the others see the
number. Only admins edit the template.
"""

from __future__ import annotations

import dataclasses
import io
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from publisher.counting import dashboard, report
from publisher.errors import InvalidInput
from publisher.models import Role, User
from publisher.pipeline.workflow import audit
from publisher.web.common import channel_labels, render
from publisher.web.pages.shared import Csrf, app_of
from publisher.web.security import ADMINS, EVERYONE, need

router = APIRouter()

#: the rows shown under one figure on the page; all of them are in the figures CSV
ROWS_SHOWN = 200
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _period(request: Request, period: str, start: str | None, end: str | None) -> tuple[str, date, date]:
    """The dashboard's periods (default ``report``: from the last 1 October to today), as days."""
    tz = app_of(request).settings.zone
    kind, s, e = dashboard.resolve_period(period, start or None, end or None, tz)
    return kind, s.astimezone(tz).date(), (e - timedelta(seconds=1)).astimezone(tz).date()


def _build(request: Request, start: date, end: date) -> report.AnnualReport:
    app = app_of(request)
    return report.build(app.engine, app.settings, start=start, end=end, channel_labels=channel_labels(app))


def _for_reader(rep: report.AnnualReport, user: User) -> report.AnnualReport:
    """The report as this reader may see it: the register rows (what applicants asked) for admins only."""
    if user.role == Role.ADMIN:
        return rep
    figures = {k: dataclasses.replace(f, requests=[], complaints=[]) for k, f in rep.figures.items()}
    return dataclasses.replace(rep, figures=figures)


def _visible(user: User, department: str) -> bool:
    """Whether the reader may open the item page (``can_view`` by the publication's department)."""
    if user.role in (Role.ADMIN, Role.CONFIDENTIALITY_REVIEWER):
        return True
    return user.role in (Role.EDITOR, Role.DEPARTMENT_HEAD) and user.department == department


@router.get("/report", include_in_schema=False)
def report_page(
    request: Request,
    period: str = "report",
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
) -> Response:
    c = need(request, EVERYONE)
    kind, s, e = _period(request, period, start, end)
    rep = _for_reader(_build(request, s, e), c.user)
    qs = urlencode({"period": "custom", "from": s.isoformat(), "to": e.isoformat()})
    return render(
        request,
        "report.html",
        c,
        rep=rep,
        kind=kind,
        start_day=s,
        end_day=e,
        qs=qs,
        rows_shown=ROWS_SHOWN,
        visible=lambda dept: _visible(c.user, dept),
        registers_hidden=c.user.role != Role.ADMIN,
        template_path=report.office_template_path(app_of(request).settings),
        office_copy=report.office_template_path(app_of(request).settings).exists(),
    )


@router.get("/report/download", include_in_schema=False)
def report_download(
    request: Request,
    fmt: Annotated[str, Query(alias="format")] = "docx",
    period: str = "report",
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
) -> Response:
    """The report as the CLI writes it (the office's template when it has one): DOCX or Markdown."""
    need(request, EVERYONE)
    if fmt not in ("docx", "md"):
        raise InvalidInput(f"unknown format {fmt[:20]!r}; use docx or md")
    _, s, e = _period(request, period, start, end)
    app = app_of(request)
    rep = _build(request, s, e)
    text = report.render_text(rep, report.load_template(app.settings, None))
    name = f"信息公开年度报告-{s.isoformat()}-{e.isoformat()}.{fmt}"
    disposition = f"attachment; filename=\"annual-report-{s}-{e}.{fmt}\"; filename*=UTF-8''{quote(name)}"
    if fmt == "md":
        return Response(
            report.to_markdown(rep, text).encode("utf-8"),
            media_type="text/markdown; charset=utf-8",
            headers={"Content-Disposition": disposition},
        )
    buf = io.BytesIO()
    report.to_docx(rep, text, buf)
    return Response(buf.getvalue(), media_type=DOCX, headers={"Content-Disposition": disposition})


@router.get("/report/figures.csv", include_in_schema=False)
def report_figures_csv(
    request: Request,
    figure: str | None = None,
    period: str = "report",
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
) -> Response:
    """Every figure with every row behind it (`publisher report explain`), or one figure's."""
    c = need(request, EVERYONE)
    _, s, e = _period(request, period, start, end)
    rep = _for_reader(_build(request, s, e), c.user)
    if figure is not None and figure not in rep.figures:
        raise InvalidInput(f"no figure {figure[:100]!r}; the report page lists them")
    body = report.figures_csv(rep, app_of(request).settings, keys=[figure] if figure else None)
    name = f"figures-{s}-{e}{'-' + figure.replace(':', '-') if figure else ''}.csv"
    return Response(
        body, media_type="text/csv; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


def _template_page(request: Request, c: Any, *, text: str, error: str | None = None, saved: bool = False) -> Response:
    app = app_of(request)
    path = report.office_template_path(app.settings)
    return render(
        request,
        "report_template.html",
        c,
        code=422 if error else 200,
        text=text,
        error=error,
        saved=saved,
        path=path,
        office_copy=path.exists(),
    )


@router.get("/report/template", include_in_schema=False)
def report_template_page(request: Request, saved: bool = False) -> Response:
    c = need(request, ADMINS)
    app = app_of(request)
    text = report.load_template(app.settings, None)
    return _template_page(request, c, text=text if text is not None else report.default_template(), saved=saved)


@router.post("/report/template", include_in_schema=False)
def report_template_save(
    request: Request,
    csrf_token: Csrf = "",
    text: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "save",
) -> Response:
    """Save the office's copy, checked first (parsed and rendered against this report period):
    a broken template is refused with its line and error and the old copy kept."""
    c = need(request, ADMINS, write=True, csrf=csrf_token)
    app = app_of(request)
    if action == "shipped":
        text = report.default_template()
    _, s, e = _period(request, "report", None, None)
    try:
        with app.session() as session:  # the audit row and the file together: a refused text writes neither
            path = report.save_template(_build(request, s, e), app.settings, text)
            audit(
                session,
                actor=c.user.name,
                entity="report_template",
                entity_id=None,
                action="shipped" if action == "shipped" else "save",
                path=str(path),
                chars=len(text),
            )
    except InvalidInput as exc:
        return _template_page(request, c, text=text, error=str(exc))
    return RedirectResponse("/report/template?saved=1", status_code=303)
