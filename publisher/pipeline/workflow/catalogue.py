"""The disclosure catalogue (政府信息公开目录, docs/catalogue.md): an item's catalogue fields checked and
set, its related items, and the 索引号 it is given when it is queued to go out.

The 索引号 is given once, in the transaction that queues the item's deliveries after both approvals
(:func:`publisher.pipeline.workflow.deliveries._queue_deliveries`): that is the last transaction before
any channel is called, so the website's page carries the number from its first copy. It comes from
the counter row of (``org_code``, year) with one ``UPDATE … RETURNING`` (:func:`allocate_index_no`);
an edit never changes it, a withdrawn item keeps it, and an imported item keeps the one it came with.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from publisher.catalogue import (
    RELATION_LABELS,
    DisclosureMode,
    ItemRelation,
    Relation,
    Validity,
    format_index_no,
    normalise_doc_number,
    parse_date,
)
from publisher.channel import Catalogue, RelatedLink
from publisher.db import one_of
from publisher.errors import InvalidInput
from publisher.models import Item, utcnow
from publisher.pipeline.workflow.context import Context
from publisher.pipeline.workflow.states import LIVE_STATES

#: the catalogue's columns an item's fields may set (索引号 is given, never written)
COLUMNS = (
    "index_no",
    "doc_number",
    "written_on",
    "topic",
    "disclosure_mode",
    "disclosure_scope",
    "validity",
    "replaced_by",
)
#: every catalogue key of an item's fields (front matter, API, forms)
KEYS = frozenset(COLUMNS) - {"index_no"} | {r.value for r in Relation}
#: at most this many tries past numbers an import already holds (each try is a fresh number)
_MAX_SKIPS = 10_000


def _item_id(value: Any, *, what: str) -> int:
    if isinstance(value, bool) or not str(value).strip().isdigit():
        raise InvalidInput(f"{what} {value!r} is not an item id (a whole number, as `publisher item list` shows)")
    return int(str(value).strip())


def _existing(session: Session, item_id: int, *, what: str, own_id: int | None) -> int:
    if own_id is not None and item_id == own_id:
        raise InvalidInput(f"{what} {item_id} is this item itself: name another item")
    if session.get(Item, item_id) is None:
        raise InvalidInput(f"{what} {item_id}: there is no item {item_id} (see `publisher item list`)")
    return item_id


def check_catalogue_fields(
    ctx: Context, session: Session, fields: Mapping[str, Any], *, own_id: int | None = None
) -> dict[str, Any]:
    """The catalogue keys of ``fields``, checked (only those given; an empty value clears a column).

    Relations come back as lists of item ids under their key (``interprets``...). InvalidInput names
    the first bad value and its fix.
    """
    if fields.get("index_no") not in (None, ""):
        raise InvalidInput(
            "索引号 (index_no) is given by the system when the item is first queued to go out and never "
            "changes: remove it (only `publisher import` takes the numbers of items published before)"
        )
    out: dict[str, Any] = {}
    given = {k: fields[k] for k in KEYS if k in fields}
    for key, value in given.items():
        empty = value is None or (isinstance(value, str) and not value.strip())
        if key in COLUMNS and empty:
            out[key] = None
            continue
        if key == "doc_number":
            out[key] = normalise_doc_number(str(value))
        elif key == "written_on":
            out[key] = parse_date(value, what="成文日期 (written_on)")
        elif key == "topic":
            topic = str(value).strip()
            topics = ctx.settings.catalogue.topics
            if topic not in topics:
                raise InvalidInput(
                    f"主题分类 (topic) {topic!r} is not one of the office's topics: {', '.join(topics)} "
                    "([catalogue] topics in settings.toml)"
                )
            out[key] = topic
        elif key == "disclosure_mode":
            out[key] = _one_of(DisclosureMode, value, "公开方式 (disclosure_mode)")
        elif key == "disclosure_scope":
            scope = str(value).strip()
            if len(scope) > 200:
                raise InvalidInput(f"公开范围 (disclosure_scope) is {len(scope)} characters; at most 200")
            out[key] = scope
        elif key == "validity":
            out[key] = _one_of(Validity, value, "有效性 (validity)")
        elif key == "replaced_by":
            out[key] = _existing(session, _item_id(value, what="replaced_by"), what="replaced_by", own_id=own_id)
        else:  # a relation: one id or a list of them
            values = [] if empty else value if isinstance(value, list | tuple) else str(value).split(",")
            out[key] = sorted(
                {_existing(session, _item_id(v, what=key), what=key, own_id=own_id) for v in values if str(v).strip()}
            )
    return out


def _one_of(enum_: Any, value: Any, what: str) -> str:
    try:
        return enum_(str(value).strip()).value
    except ValueError:
        raise InvalidInput(f"{what} {value!r}: one of {' / '.join(m.value for m in enum_)}") from None


def apply_catalogue(ctx: Context, session: Session, item: Item, checked: Mapping[str, Any]) -> None:
    """Set checked catalogue fields on ``item`` (flushed, so it has an id) and its relations; a new
    item without a 公开方式 / 公开范围 gets 主动公开 and ``[catalogue] default_scope``."""
    for key in COLUMNS:
        if key in checked and key != "index_no":
            setattr(item, key, checked[key])
    if item.disclosure_mode is None:
        item.disclosure_mode = DisclosureMode.ACTIVE.value
    if item.disclosure_scope is None:
        item.disclosure_scope = ctx.settings.catalogue.default_scope
    if item.replaced_by is not None and item.validity == Validity.CURRENT:
        raise InvalidInput(
            f"item {item.id} is 现行有效 but names replaced_by {item.replaced_by}: mark it 已修订 or 已废止, "
            "or remove replaced_by"
        )
    for rel in Relation:
        if rel.value not in checked:
            continue
        rows = session.exec(
            select(ItemRelation).where(ItemRelation.item_id == item.id, ItemRelation.relation == rel.value)
        ).all()
        for row in rows:
            session.delete(row)
        session.flush()
        for other in checked[rel.value]:
            session.add(ItemRelation(item_id=item.id, related_id=other, relation=rel.value))


def allocate_index_no(ctx: Context, session: Session, item: Item, *, at: datetime | None = None) -> str:
    """Give ``item`` its 索引号 unless it has one (an edit, a re-approval or an import keeps it).

    The year is that of ``at`` (default now) in the office's zone. One counter row per (org_code,
    year) is created if missing and bumped with ``UPDATE … RETURNING`` in the caller's transaction;
    the row lock (PostgreSQL) or write lock (SQLite) orders concurrent callers, so numbers are unique
    and increase in commit order. A number an imported item already holds is skipped, never reused.
    """
    if item.index_no:
        return item.index_no
    cfg = ctx.settings.catalogue
    year = (at or utcnow()).astimezone(ctx.settings.zone).year
    conn = session.connection()
    key = {"org": cfg.org_code, "year": year}
    conn.execute(
        sa.text(
            "INSERT INTO catalogue_counter (org_code, year, last_seq) VALUES (:org, :year, 0) "
            "ON CONFLICT (org_code, year) DO NOTHING"
        ),
        key,
    )
    bump = sa.text(
        "UPDATE catalogue_counter SET last_seq = last_seq + 1 WHERE org_code = :org AND year = :year RETURNING last_seq"
    )
    for _ in range(_MAX_SKIPS):
        seq = conn.execute(bump, key).scalar_one()
        number = format_index_no(cfg.index_pattern, org_code=cfg.org_code, year=year, seq=seq)
        if session.exec(select(Item.id).where(Item.index_no == number)).first() is None:
            item.index_no = number
            return number
    raise InvalidInput(f"索引号: {_MAX_SKIPS} numbers in a row after {number} are held by imported items")


@dataclass(frozen=True)
class Related:
    """One link of an item's page to another item."""

    label: str
    item_id: int
    title: str
    status: str
    index_no: str | None


def related_of(session: Session, item_id: int) -> list[Related]:
    """The items this one relates to and those that relate to it, each labelled from this side."""
    out: list[Related] = []
    forward = session.exec(
        select(ItemRelation, Item)
        .join(Item, col(Item.id) == ItemRelation.related_id)
        .where(ItemRelation.item_id == item_id)
    ).all()
    backward = session.exec(
        select(ItemRelation, Item)
        .join(Item, col(Item.id) == ItemRelation.item_id)
        .where(ItemRelation.related_id == item_id)
    ).all()
    for rows, side in ((forward, 0), (backward, 1)):
        for rel, other in rows:
            label = RELATION_LABELS[Relation(rel.relation)][side]
            out.append(Related(label, other.id, other.title, other.status, other.index_no))  # type: ignore[arg-type]
    return sorted(out, key=lambda r: (r.label, r.item_id))


def relation_ids(session: Session, item_id: int) -> dict[str, list[int]]:
    """The item's own relations as its fields name them: {"interprets": [12], ...}."""
    out: dict[str, list[int]] = {}
    for rel in session.exec(select(ItemRelation).where(ItemRelation.item_id == item_id).order_by(ItemRelation.id)):
        out.setdefault(rel.relation, []).append(rel.related_id)
    return out


def catalogue_of(session: Session, item: Item) -> dict[str, Any]:
    """The item's catalogue fields for the faces (JSON-ready)."""
    return {
        "index_no": item.index_no,
        "doc_number": item.doc_number,
        "written_on": item.written_on.isoformat() if item.written_on else None,
        "topic": item.topic,
        "disclosure_mode": item.disclosure_mode,
        "disclosure_scope": item.disclosure_scope,
        "validity": item.validity,
        "replaced_by": item.replaced_by,
        **{r.value: [] for r in Relation},
        **(relation_ids(session, item.id) if item.id is not None else {}),
    }


def has_links(item_id: Any) -> Any:
    """``EXISTS`` a relation naming the item, either way (a column for a batched read of items)."""
    rel = ItemRelation.__table__  # type: ignore[attr-defined]
    return sa.or_(sa.exists().where(rel.c.item_id == item_id), sa.exists().where(rel.c.related_id == item_id)).label(
        "has_links"
    )


@functools.cache
def _links_statement(dialect: str) -> Any:
    """The read of :func:`related_links`, built once per dialect: both directions in one round trip."""
    rel, it = ItemRelation.__table__, Item.__table__  # type: ignore[attr-defined]
    live = it.c.status.in_([s.value for s in LIVE_STATES])
    sides = [
        sa.select(
            rel.c[mine].label("me"),
            rel.c.relation,
            sa.literal(side).label("side"),
            it.c.id,
            it.c.title,
            rel.c.id.label("rid"),
        )
        .join(it, it.c.id == rel.c[other])
        .where(one_of(dialect, rel.c[mine], "ids"), live)
        for side, (mine, other) in enumerate((("item_id", "related_id"), ("related_id", "item_id")))
    ]
    union = sa.union_all(*sides).subquery()
    return sa.select(union).order_by(union.c.side, union.c.rid)


def related_links(conn: Connection, item_ids: Iterable[int]) -> dict[int, tuple[RelatedLink, ...]]:
    """The links each item's pages show, both ways, to related items that are live (a draft or a
    withdrawn item has no page to link to)."""
    ids = sorted(set(item_ids))
    out: dict[int, list[RelatedLink]] = {i: [] for i in ids}
    for me, relation, side, other, title, _ in conn.execute(_links_statement(conn.dialect.name), {"ids": ids}):
        labels = RELATION_LABELS[Relation(relation)]
        out[me].append(RelatedLink(labels[side], other, title, back_label=labels[1 - side]))
    return {i: tuple(links) for i, links in out.items()}


def post_catalogue(item: Any, related: tuple[RelatedLink, ...]) -> Catalogue:
    """The catalogue a channel receives, from an item row (ORM or Core) and its links."""
    return Catalogue(
        index_no=item.index_no,
        doc_number=item.doc_number,
        written_on=item.written_on,
        topic=item.topic,
        disclosure_mode=item.disclosure_mode,
        disclosure_scope=item.disclosure_scope,
        validity=item.validity,
        replaced_by=item.replaced_by,
        related=related,
    )
