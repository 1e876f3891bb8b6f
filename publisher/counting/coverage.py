"""Checklist coverage and timeliness: is each of the 50 checklist items out, current, and on time?

Coverage: for every item of the national checklist, the latest publication that names it, where it
is (channels and URLs, leaving out pages the sync found taken down), and a status by the rule an
admin set for that item: ``current``, ``stale`` (older than the rule allows) or ``never`` published.

Timeliness: per department, the Chinese working days from an item's creation to its first
publication, against the 20-working-day rule. Only pipeline items count: an imported or remote
item's creation time here says nothing about when the information was produced.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from publisher.checklist import checklist
from publisher.counting.ledger import Publication, publications
from publisher.counting.workdays import Calendar
from publisher.errors import InvalidInput
from publisher.models import ChecklistRule, Item, ItemOrigin, utcnow
from publisher.pipeline.workflow import audit
from publisher.settings import Settings

#: rule -> the most days a publication stays current (None: current until the information changes)
RULES: dict[str, int | None] = {"annual": 366, "semester": 184, "quarterly": 92, "monthly": 31, "on_change": None}
RULE_ALIASES = {"on-change": "on_change", "yearly": "annual", "term": "semester"}


def normalise_rule(rule: str) -> str:
    r = RULE_ALIASES.get(rule.strip().lower(), rule.strip().lower())
    if r not in RULES:
        raise InvalidInput(f"unknown rule {rule!r}; one of: {', '.join(RULES)}")
    return r


def set_rule(session: Session, *, number: int, rule: str, actor: str) -> ChecklistRule:
    if number not in checklist():
        raise InvalidInput(f"checklist item {number} is outside 1-50 (see `publisher checklist`)")
    r = normalise_rule(rule)
    row = session.get(ChecklistRule, number)
    before = row.rule if row else None
    if row is None:
        row = ChecklistRule(number=number, rule=r, updated_by=actor)
        session.add(row)
    else:
        row.rule, row.updated_by, row.updated_at = r, actor, utcnow()
    audit(
        session,
        actor=actor,
        entity="checklist_rule",
        entity_id=number,
        action="set_rule",
        from_state=before,
        to_state=r,
    )
    return row


def rules(session: Session, default: str) -> dict[int, str]:
    set_ = {r.number: r.rule for r in session.exec(select(ChecklistRule))}
    return {n: set_.get(n, default) for n in checklist()}


@dataclass
class Coverage:
    number: int
    category: str
    name: str
    rule: str
    status: str  # current | stale | never
    latest_at: datetime | None = None
    item_id: int | None = None
    title: str | None = None
    #: (channel, url) of the latest item's live publications
    places: list[tuple[str, str | None]] = field(default_factory=list)
    #: every publication naming this checklist item (the rows behind it)
    rows: list[Publication] = field(default_factory=list)


def coverage(
    engine: Engine, settings: Settings, *, as_of: datetime | None = None, pubs: list[Publication] | None = None
) -> list[Coverage]:
    """One line per checklist item, in checklist order."""
    as_of = as_of or utcnow()
    if pubs is None:
        pubs = publications(engine, end=as_of)
    with Session(engine) as s:
        rule_of = rules(s, normalise_rule(settings.report.default_checklist_rule))
    by_number: dict[int, list[Publication]] = defaultdict(list)
    for p in pubs:
        if p.checklist_item is not None and p.published_at <= as_of:
            by_number[p.checklist_item].append(p)
    out = []
    for n, c in checklist().items():
        rows = by_number.get(n, [])
        rule = rule_of[n]
        if not rows:
            out.append(Coverage(n, c.category, c.name, rule, "never"))
            continue
        latest = max(rows, key=lambda p: p.published_at)
        same = [p for p in rows if p.item_id == latest.item_id]
        first_at = min(p.published_at for p in same)
        live = [(p.channel, p.url) for p in same if p.taken_down_at is None]
        limit = RULES[rule]
        if not live:
            status = "stale"  # every copy of the latest item has been taken down
        elif limit is None:
            status = "current"
        else:
            status = "current" if (as_of - latest.published_at).days <= limit else "stale"
        out.append(Coverage(n, c.category, c.name, rule, status, first_at, latest.item_id, latest.title, live, rows))
    return out


@dataclass
class DepartmentTimeliness:
    department: str
    items: int = 0
    on_time: int = 0
    late: int = 0
    median_days: float | None = None
    max_days: int | None = None
    #: (item id, title, working days) of the late ones, worst first
    late_items: list[tuple[int, str, int]] = field(default_factory=list)


def timeliness(
    engine: Engine, settings: Settings, start: datetime, end: datetime, calendar: Calendar | None = None
) -> list[DepartmentTimeliness]:
    """Per department: pipeline items first published in [start, end), creation → publication.

    Pass a :class:`Calendar` to learn afterwards (``calendar.note``) whether Mon–Fri had to stand in.
    """
    cal = calendar or Calendar()
    tz = settings.zone
    limit = settings.report.timeliness_working_days
    it = Item.__table__  # type: ignore[attr-defined]
    first: dict[int, datetime] = {}
    for p in publications(engine, end=end):
        if p.origin == ItemOrigin.PIPELINE and (p.item_id not in first or p.published_at < first[p.item_id]):
            first[p.item_id] = p.published_at
    first = {k: v for k, v in first.items() if v >= start}
    if not first:
        return []
    with engine.connect() as conn:
        meta = {
            r.id: r
            for r in conn.execute(
                sa.select(it.c.id, it.c.title, it.c.department, it.c.created_at).where(it.c.id.in_(list(first)))
            )
        }
        conn.rollback()
    days_by_dept: dict[str, list[tuple[int, str, int]]] = defaultdict(list)
    for item_id, published in first.items():
        r = meta[item_id]
        n = cal.between(r.created_at.astimezone(tz).date(), published.astimezone(tz).date())
        days_by_dept[r.department].append((item_id, r.title, n))
    out = []
    for dept in sorted(days_by_dept):
        rows = days_by_dept[dept]
        days = [d for _, _, d in rows]
        late = sorted((r for r in rows if r[2] > limit), key=lambda r: -r[2])
        out.append(
            DepartmentTimeliness(
                dept, len(rows), len(rows) - len(late), len(late), float(statistics.median(days)), max(days), late
            )
        )
    return out
