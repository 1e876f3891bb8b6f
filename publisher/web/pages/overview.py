"""The overviews: the publishing calendar (with its iCalendar feeds) and the dashboard with its CSVs."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from publisher import accounts
from publisher.counting import dashboard, periods
from publisher.errors import InvalidInput, NotFound
from publisher.models import (
    utcnow,
)
from publisher.web import calendar_view, svg
from publisher.web.common import (
    channel_labels,
    render,
    translator,
    view_filter,
    viewer_zone,
)
from publisher.web.pages.shared import app_of
from publisher.web.security import (
    EVERYONE,
    STAFF,
    need,
)

router = APIRouter()


@router.get("/calendar", include_in_schema=False)
def calendar(request: Request, view: str = "week", day: str | None = None) -> Response:
    c = need(request, STAFF)
    app = app_of(request)
    tz = viewer_zone(request)
    view = "month" if view == "month" else "week"
    try:
        anchor = date.fromisoformat(day) if day else datetime.now(tz).date()
    except ValueError:
        raise InvalidInput(f"day {day!r} is not a date (YYYY-MM-DD)") from None
    if not periods.EARLIEST <= anchor <= periods.LATEST:
        raise InvalidInput(f"day {anchor} is outside the calendar ({periods.EARLIEST} to {periods.LATEST})")
    first, last = calendar_view.window(view, anchor)
    start, end = calendar_view.day_range(first, last, tz)
    with app.session() as s:
        days = calendar_view.by_day(calendar_view.entries(s, c.user, start, end, ctx=app.ctx), tz)
    step = timedelta(days=7) if view == "week" else None
    if view == "month":
        m = anchor.replace(day=1)
        prev_day, next_day = (m - timedelta(days=1)).replace(day=1), (m + timedelta(days=32)).replace(day=1)
    else:
        prev_day, next_day = anchor - step, anchor + step  # type: ignore[operator]
    grid = [[first + timedelta(days=w * 7 + d) for d in range(7)] for w in range(((last - first).days + 1) // 7)]
    return render(
        request,
        "calendar.html",
        c,
        view=view,
        anchor=anchor,
        grid=grid,
        days=days,
        prev_day=prev_day,
        next_day=next_day,
        today=datetime.now(tz).date(),
        channels=app.channels,
        labels=channel_labels(app),
    )


@router.get("/calendar/{channel}.ics", include_in_schema=False)
def calendar_feed(request: Request, channel: str, token: str = "") -> Response:
    app = app_of(request)
    with app.session() as s:
        caller = accounts.token_caller(s, token, kind=accounts.FEED) if token else None
    if caller is None:  # an API token is refused too: it would give whoever reads the URL write access
        return Response(
            "a valid calendar-feed token is needed (make one on /tokens): /calendar/CHANNEL.ics?token=...",
            status_code=401,
            media_type="text/plain",
        )
    if caller.user.role not in STAFF:
        return Response("this account may not read the calendar", status_code=403, media_type="text/plain")
    spec = app.channels.get(channel)
    if spec is None:
        raise NotFound(f"no channel {channel!r}")
    now = utcnow()
    with app.session() as s:
        items = calendar_view.entries(
            s, caller.user, now - timedelta(days=92), now + timedelta(days=366), channel=channel, ctx=app.ctx
        )
    base = str(request.base_url)
    body = calendar_view.ical(channel, spec.label, items, host=request.url.hostname or "publisher", base_url=base)
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="{channel}.ics"'},
    )


def _period(request: Request, period: str, start: str | None, end: str | None):  # type: ignore[no-untyped-def]
    # counts are cut in the office's zone (as `publisher stats` and the annual report cut them)
    return dashboard.resolve_period(period, start or None, end or None, app_of(request).settings.zone)


@router.get("/dashboard", include_in_schema=False)
def dashboard_page(
    request: Request,
    period: str = "report",
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
) -> Response:
    c = need(request, EVERYONE)
    app = app_of(request)
    tz = app.settings.zone
    kind, s, e = _period(request, period, start, end)
    # the counts are the office's; the failures listed only those of items this reader may open
    dash = dashboard.build(app.engine, s, e, app.settings.zone, visible=view_filter(c.user))
    months = sorted({str(r["month"]) for r in dash.by_month})
    series: dict[str, dict[str, int]] = {}
    labels = channel_labels(app)
    for r in dash.by_month:
        series.setdefault(labels.get(str(r["channel"]), str(r["channel"])), {})[str(r["month"])] = int(r["published"])  # type: ignore[call-overload]
    t = translator(request)
    chart = svg.grouped_bars(months, series, title=t("chart_published")) if months else ""
    qs = urlencode(
        {
            "period": kind,
            "from": s.astimezone(tz).date().isoformat(),
            "to": (e - timedelta(seconds=1)).astimezone(tz).date().isoformat(),
        }
    )
    return render(
        request,
        "dashboard.html",
        c,
        dash=dash,
        chart=chart,
        kind=kind,
        qs=qs,
        start_day=s.astimezone(tz).date(),
        end_day=(e - timedelta(seconds=1)).astimezone(tz).date(),
        labels=labels,
        one_second=timedelta(seconds=1),
    )


@router.get("/dashboard.csv", include_in_schema=False)
def dashboard_csv(
    request: Request,
    table: str = "category",
    period: str = "report",
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
) -> Response:
    c = need(request, EVERYONE)
    if table not in dashboard.TABLES:
        raise InvalidInput(f"unknown table {table!r}; one of {', '.join(dashboard.TABLES)}")
    kind, s, e = _period(request, period, start, end)
    dash = dashboard.build(app_of(request).engine, s, e, app_of(request).settings.zone, visible=view_filter(c.user))
    columns = dashboard.FAILURE_COLUMNS if table == "failures" else ()  # an empty list still has its header
    body = "\ufeff" + dashboard.to_csv(dash.table(table), columns)  # BOM: Excel then reads the Chinese as UTF-8
    name = f"{table}-{s.date().isoformat()}-{kind}.csv"
    return Response(
        body, media_type="text/csv; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
