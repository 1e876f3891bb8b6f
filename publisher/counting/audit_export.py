"""The audit trail over a period, as a CSV for inspections (``publisher audit export``, /audit).

Read-only. The rows are the ``audit_log`` table's as written (append-only), filtered by period and,
when asked, by item (its own rows and its deliveries'), by department (the rows of its items and
their deliveries) or by who acted. Each row also names its item (``item_id``), so a filter on one
item's deliveries needs no second look-up.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from publisher.counting import csvcells
from publisher.errors import InvalidInput
from publisher.models import AuditLog, Delivery, Item

A = AuditLog.__table__  # type: ignore[attr-defined]
D = Delivery.__table__  # type: ignore[attr-defined]
I = Item.__table__  # type: ignore[attr-defined]  # noqa: E741

COLUMNS = [
    "id",
    "at",  # the office's zone, as every CSV here shows times
    "at_utc",
    "actor",
    "entity",
    "entity_id",
    "item_id",
    "action",
    "from_state",
    "to_state",
    "reason",
    "detail",
]


@dataclass(frozen=True)
class AuditQuery:
    start: datetime
    end: datetime
    item_id: int | None = None
    department: str | None = None
    actor: str | None = None


def rows(engine: Engine, q: AuditQuery) -> list[dict[str, object]]:
    """The audit rows with ``at`` in [start, end), oldest first, each with its ``item_id`` (or None)."""
    if q.start.tzinfo is None or q.end.tzinfo is None:
        raise InvalidInput("the audit period needs times with a zone")
    if q.item_id is not None and not 0 < q.item_id <= 2**31 - 1:
        raise InvalidInput(f"item {q.item_id} is not an item number")
    # the item a row is about: itself for an item's rows, its delivery's item for a delivery's
    delivery_item = sa.select(D.c.item_id).where(D.c.id == A.c.entity_id).scalar_subquery()
    item_of = sa.case(
        (A.c.entity == "item", A.c.entity_id),
        (A.c.entity == "delivery", delivery_item),
        else_=None,
    ).label("item_id")
    sel = sa.select(A, item_of).where(A.c.at >= q.start, A.c.at < q.end).order_by(A.c.at, A.c.id)
    if q.actor:
        sel = sel.where(A.c.actor == q.actor.strip())
    if q.item_id is not None or q.department:
        items = sa.select(I.c.id)
        if q.item_id is not None:
            items = items.where(I.c.id == q.item_id)
        if q.department:
            items = items.where(I.c.department == q.department.strip())
        deliveries = sa.select(D.c.id).where(D.c.item_id.in_(items))
        sel = sel.where(
            sa.or_(
                sa.and_(A.c.entity == "item", A.c.entity_id.in_(items)),
                sa.and_(A.c.entity == "delivery", A.c.entity_id.in_(deliveries)),
            )
        )
    with engine.connect() as conn:
        found = [dict(r._mapping) for r in conn.execute(sel)]
        conn.rollback()
    return found


def to_csv(found: list[dict[str, object]], tz: ZoneInfo) -> str:
    """UTF-8 with a BOM (Excel then reads the Chinese), cells through csvcells (no formulas)."""
    buf = io.StringIO()
    buf.write("\ufeff")
    w = csvcells.writer(buf, lineterminator="\r\n")
    w.writerow(COLUMNS)
    for r in found:
        at = r["at"]
        assert isinstance(at, datetime)
        w.writerow(
            [
                r["id"],
                at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
                at.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ"),
                r["actor"],
                r["entity"],
                "" if r["entity_id"] is None else r["entity_id"],
                "" if r["item_id"] is None else r["item_id"],
                r["action"],
                r["from_state"] or "",
                r["to_state"] or "",
                r["reason"] or "",
                json.dumps(r["detail"] or {}, ensure_ascii=False, sort_keys=True, default=str),
            ]
        )
    return buf.getvalue()
