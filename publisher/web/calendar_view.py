"""What is scheduled on which channel and day, in the viewer's zone; and the iCalendar feed.

A delivery sits on the day it went live (``published_at``) or, until then, the day it is due. An
approved-but-unqueued item with a publish time shows on that day as planned, on all its channels.
A 公示 shows once more when its display period ends (``display_end``, or ``display_ended`` once
taken down): the known end, or the one planned from its publish time.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from publisher.models import Delivery, DeliveryStatus, Item, ItemStatus, Role, User, utcnow
from publisher.pipeline.workflow import Context, display_of


@dataclass
class Entry:
    item_id: int
    title: str
    channel: str
    at: datetime
    status: str
    item_status: str
    delivery_id: int | None = None
    url: str | None = None


def window(view: str, anchor: date) -> tuple[date, date]:
    """[first, last] days shown: the ISO week, or the whole weeks covering the month."""
    if view == "month":
        first = anchor.replace(day=1)
        nxt = (first + timedelta(days=32)).replace(day=1)
        start = first - timedelta(days=first.weekday())
        end = nxt - timedelta(days=1)
        end = end + timedelta(days=6 - end.weekday())
        return start, end
    start = anchor - timedelta(days=anchor.weekday())
    return start, start + timedelta(days=6)


def entries(
    session: Session,
    user: User,
    start: datetime,
    end: datetime,
    *,
    channel: str | None = None,
    limit: int = 2000,
    ctx: Context | None = None,
) -> list[Entry]:
    """What goes out (or went out) in [start, end); with ``ctx``, the 公示期 that end then too."""
    dept = user.department if user.role in (Role.EDITOR, Role.DEPARTMENT_HEAD) else None
    when = sa.func.coalesce(Delivery.published_at, Delivery.due_at)
    q = (
        select(Delivery, Item.title, Item.status)
        .join(Item, col(Item.id) == Delivery.item_id)
        .where(
            sa.or_(
                sa.and_(col(Delivery.published_at) >= start, col(Delivery.published_at) < end),
                sa.and_(col(Delivery.published_at).is_(None), Delivery.due_at >= start, Delivery.due_at < end),
            ),
            Delivery.status != DeliveryStatus.CANCELLED,
        )
        .order_by(when)
        .limit(limit)
    )
    if dept:
        q = q.where(Item.department == dept)
    if channel:
        q = q.where(Delivery.channel == channel)
    out = [
        Entry(
            item_id=d.item_id,
            title=title,
            channel=d.channel,
            at=d.published_at or d.due_at,
            status=d.status,
            item_status=st,
            delivery_id=d.id,
            url=d.url,
        )
        for d, title, st in session.exec(q)
    ]
    planned = (
        select(Item)
        .where(
            col(Item.publish_at) >= start,
            col(Item.publish_at) < end,
            col(Item.status).in_(
                [ItemStatus.DRAFT, ItemStatus.SUBMITTED, ItemStatus.DEPT_APPROVED, ItemStatus.APPROVED]
            ),
        )
        .limit(limit)
    )
    if dept:
        planned = planned.where(Item.department == dept)
    for item in session.exec(planned):
        for ch in item.channels:
            if channel is None or ch == channel:
                out.append(
                    Entry(
                        item_id=item.id,
                        title=item.title,
                        channel=ch,
                        at=item.publish_at,  # type: ignore[arg-type]
                        status="planned",
                        item_status=item.status,
                    )
                )
    if ctx is not None:
        out += display_ends(session, ctx, start, end, dept=dept, channel=channel, limit=limit)
    out.sort(key=lambda e: (e.at, e.channel))
    return out


#: a period of 60 working days (the most, publisher.pipeline.display) spans at most this long
_LONGEST = timedelta(days=120)


def display_ends(
    session: Session,
    ctx: Context,
    start: datetime,
    end: datetime,
    *,
    dept: str | None = None,
    channel: str | None = None,
    limit: int = 2000,
) -> list[Entry]:
    """The 公示期 that end in [start, end): known ends, and ends planned from a publish time."""
    known = col(Item.display_ends_at)
    q = (
        select(Item)
        .where(
            sa.or_(
                sa.and_(known >= start, known < end),
                sa.and_(
                    known.is_(None),
                    col(Item.display_working_days).is_not(None),
                    col(Item.publish_at) >= start - _LONGEST,
                    col(Item.publish_at) < end,
                    Item.status != ItemStatus.WITHDRAWN,
                ),
            )
        )
        .order_by(col(Item.id))
        .limit(limit)
    )
    if dept:
        q = q.where(Item.department == dept)
    out = []
    for item in session.exec(q):
        shown = display_of(ctx, item)
        if shown is None or shown.ends_at is None or not start <= shown.ends_at < end:
            continue
        if item.status == ItemStatus.WITHDRAWN and shown.ended_at is None:
            continue  # withdrawn by a person before its end: nothing ends then
        if channel is not None and channel not in item.channels:
            continue
        out.append(
            Entry(
                item_id=item.id,  # type: ignore[arg-type]
                title=item.title,
                channel=channel or "",
                at=shown.ends_at,
                status="display_ended" if shown.ended_at else "display_end",
                item_status=item.status,
            )
        )
    return out


def by_day(items: list[Entry], tz: ZoneInfo) -> dict[date, list[Entry]]:
    days: dict[date, list[Entry]] = defaultdict(list)
    for e in items:
        days[e.at.astimezone(tz).date()].append(e)
    return days


def day_range(first: date, last: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    return datetime.combine(first, time(), tz), datetime.combine(last + timedelta(days=1), time(), tz)


# ------------------------------------------------------------------------------------------ iCal
#: how the feed names an entry of display_ends (a calendar app shows DESCRIPTION as it is)
_DISPLAY_STATUSES = {
    "display_end": "公示期截止 (display period ends)",
    "display_ended": "公示期已结束 (display period ended)",
}


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\r", "").replace("\n", "\\n")


def _fold(line: str) -> str:
    """RFC 5545 §3.1: lines longer than 75 octets continue on the next line after a space."""
    raw = line.encode()
    if len(raw) <= 75:
        return line
    parts, cur, size = [], "", 0
    for ch in line:
        n = len(ch.encode())
        if size + n > (75 if not parts else 74):
            parts.append(cur)
            cur, size = "", 0
        cur += ch
        size += n
    parts.append(cur)
    return "\r\n ".join(parts)


def _utc(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def ical(channel: str, label: str, items: list[Entry], *, host: str, base_url: str) -> str:
    stamp = _utc(utcnow())
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//publisher//web workspace//ZH",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{_esc(label)}",
    ]
    for e in items:
        uid = f"delivery-{e.delivery_id}" if e.delivery_id else f"item-{e.item_id}-{channel}"
        if e.status in _DISPLAY_STATUSES:  # the same item may also be planned on this channel
            uid = f"display-end-{e.item_id}-{channel}"
        lines += [
            "BEGIN:VEVENT",
            f"UID:{uid}@{host}",
            f"DTSTAMP:{stamp}",
            f"DTSTART:{_utc(e.at)}",
            f"DTEND:{_utc(e.at + timedelta(minutes=30))}",
            f"SUMMARY:{_esc(e.title)}",
            f"DESCRIPTION:{_esc(f'{channel}: {_DISPLAY_STATUSES.get(e.status, e.status)}')}",
            f"URL:{base_url}items/{e.item_id}",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "\r\n".join(_fold(ln) for ln in lines) + "\r\n"
