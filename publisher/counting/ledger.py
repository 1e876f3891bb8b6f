"""The publication ledger: every publication on every channel, wherever it came from.

A publication is a :class:`~publisher.models.Delivery` with ``published_at`` set. Three kinds of item
own them, told apart by ``Item.origin``:

* ``pipeline`` — written and reviewed twice here, pushed by the dispatcher;
* ``import`` — published elsewhere (by hand, or before this system existed) and recorded from a CSV
  with :func:`import_csv`;
* ``remote`` — found on a channel by the weekly sync (:mod:`publisher.counting.sync`).

Imported and remote items are born ``published`` with deliveries already ``done``: the dispatcher
only claims ``pending`` deliveries and re-checks both approvals before calling a channel, so they
never reach a channel and "nothing unapproved leaves" is untouched. They carry no reviews, which is
how any screen can tell them apart. Because every publication is a delivery row, publisher.counting.stats
counts them all without knowing where they came from.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from publisher.checklist import checklist
from publisher.counting import csvcells
from publisher.errors import InvalidInput
from publisher.models import (
    Delivery,
    DeliveryOp,
    DeliveryStatus,
    Item,
    ItemOrigin,
    ItemStatus,
    Role,
    User,
    utcnow,
)
from publisher.pipeline.workflow import Context, add_department, audit, departments, validate_url
from publisher.pipeline.workflow.catalogue import check_catalogue_fields

#: the catalogue's columns (docs/catalogue.md), optional like checklist_item: 索引号 first, as the sites list it
CATALOGUE_COLUMNS = ["index_no", "doc_number", "written_on", "topic", "disclosure_mode", "disclosure_scope", "validity"]
CSV_COLUMNS = [
    "title",
    "category",
    "department",
    "channel",
    "published_at",
    "url",
    "checklist_item",
    *CATALOGUE_COLUMNS,
]
REQUIRED_COLUMNS = CSV_COLUMNS[:6]
#: the user named as author of items this system did not write (it cannot log in)
SYSTEM_USER = "system"
MAX_ERRORS_SHOWN = 50
#: the PostgreSQL advisory lock an import holds until it commits
IMPORT_LOCK = 0x1ED6E4

_TIME_RE = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})(?:[ T](?P<time>\d{2}:\d{2}(?::\d{2})?)(?P<tz>Z|[+-]\d{2}:?\d{2})?)?$"
)
_GB_ENCODINGS = {"gb2312", "gbk", "gb18030", "cp936"}

D = Delivery.__table__  # type: ignore[attr-defined]
I = Item.__table__  # type: ignore[attr-defined]  # noqa: E741


class ImportRejected(InvalidInput):
    """The CSV has bad rows: nothing was imported."""

    def __init__(self, errors: list[str], *, source: str = "") -> None:
        self.errors = errors
        shown = errors[:MAX_ERRORS_SHOWN]
        more = f"\n  ... and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{len(errors)} problem(s), nothing imported:\n  " + "\n  ".join(shown) + more)


@dataclass(frozen=True)
class Publication:
    """One item on one channel, as the ledger (and the report's explanation CSV) shows it."""

    delivery_id: int
    item_id: int
    title: str
    category: str
    department: str
    channel: str
    published_at: datetime
    url: str | None
    origin: str
    checklist_item: int | None
    remote_id: str | None = None
    taken_down_at: datetime | None = None
    #: when the copy was taken down through the pipeline (a withdrawal, or the end of its 公示期)
    withdrawn_at: datetime | None = None
    #: the item's 公示期 ended then (its take-down was queued): why it was withdrawn. The publication
    #: still counts; a withdrawn item's deliveries keep their published_at
    display_ended_at: datetime | None = None
    #: the item's catalogue fields (docs/catalogue.md)
    index_no: str | None = None
    doc_number: str | None = None
    written_on: date | None = None
    topic: str | None = None
    disclosure_mode: str | None = None
    disclosure_scope: str | None = None
    validity: str | None = None


def publications(
    engine: Engine,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    channels: Iterable[str] | None = None,
) -> list[Publication]:
    """Every publication (published_at in [start, end) when given), oldest first."""
    q = (
        sa.select(
            D.c.id,
            D.c.item_id,
            I.c.title,
            I.c.category,
            I.c.department,
            D.c.channel,
            D.c.published_at,
            D.c.url,
            I.c.origin,
            I.c.checklist_item,
            D.c.remote_id,
            D.c.taken_down_at,
            D.c.withdrawn_at,
            I.c.display_ended_at,
            *(I.c[name] for name in CATALOGUE_COLUMNS),
        )
        .select_from(D.join(I, I.c.id == D.c.item_id))
        .where(D.c.published_at.is_not(None))
        .order_by(D.c.published_at, D.c.id)
    )
    if start is not None:
        q = q.where(D.c.published_at >= start)
    if end is not None:
        q = q.where(D.c.published_at < end)
    if channels is not None:
        q = q.where(D.c.channel.in_(list(channels)))
    with engine.connect() as conn:
        rows = conn.execute(q).all()
        conn.rollback()
    return [Publication(*r) for r in rows]


def system_user(session: Session) -> User:
    """The author of imported and remote items: exists so Item.author_id holds, never logs in."""
    user = session.exec(select(User).where(User.name == SYSTEM_USER)).first()
    if user is None:
        user = User(name=SYSTEM_USER, display_name="(recorded, not written here)", role=Role.VIEWER, active=False)
        session.add(user)
        session.flush()
    return user


def new_recorded_item(
    session: Session,
    *,
    title: str,
    category: str,
    department: str,
    origin: ItemOrigin,
    checklist_item: int | None,
    published_at: datetime,
) -> Item:
    """An item published elsewhere: status published, no body, no reviews, never dispatched."""
    item = Item(
        title=title,
        summary="",
        body_markdown="",
        body_html="",
        category=category,
        department=department,
        author_id=system_user(session).id,
        checklist_item=checklist_item,
        channels=[],
        status=ItemStatus.PUBLISHED,
        publish_at=published_at,
        origin=origin,
    )
    session.add(item)
    session.flush()
    return item


def add_recorded_delivery(
    session: Session,
    item: Item,
    *,
    channel: str,
    published_at: datetime,
    url: str | None,
    remote_id: str | None = None,
    note: str,
) -> Delivery:
    d = Delivery(
        item_id=item.id,
        channel=channel,
        op=DeliveryOp.PUBLISH,
        status=DeliveryStatus.DONE,
        due_at=published_at,
        published_at=published_at,
        url=url,
        remote_id=remote_id,
        note=note,
    )
    session.add(d)
    item.channels = [*item.channels, channel] if channel not in item.channels else item.channels
    if item.publish_at is None or published_at < item.publish_at:
        item.publish_at = published_at
    session.flush()
    return d


# ------------------------------------------------------------------------------------------ import
def decode_csv(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """The text of a CSV and the encoding it was read in.

    UTF-8 (with or without Excel's BOM) is read as is; otherwise charset-normalizer guesses, and a
    Chinese encoding (GBK/GB18030, what Excel saves in China) is read as GB18030, its superset.
    Anything else is refused with the guess named, rather than imported as mojibake.
    """
    if encoding:
        try:
            return data.decode(encoding), encoding
        except (LookupError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"cannot read the file as {encoding}: {exc}") from exc
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as exc:
        utf8_error = exc
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    guess = best.encoding.lower() if best is not None else None
    if guess in _GB_ENCODINGS or (guess is None and _decodes(data, "gb18030")):
        try:
            return data.decode("gb18030"), "gb18030"
        except UnicodeDecodeError:
            pass
    raise InvalidInput(
        f"the file is not UTF-8 (byte {utf8_error.start}: {utf8_error.reason})"
        + (f"; it looks like {guess}" if guess else "")
        + ": save it from Excel as 'CSV UTF-8', or name its encoding with --encoding"
    ) from utf8_error


def _decodes(data: bytes, enc: str) -> bool:
    try:
        data.decode(enc)
    except UnicodeDecodeError:
        return False
    return True


def parse_published_at(value: str, tz: ZoneInfo) -> datetime:
    """``YYYY-MM-DD``, ``YYYY-MM-DD HH:MM[:SS]`` or ISO 8601 with an offset; no offset = office time."""
    m = _TIME_RE.match(value.strip())
    if not m:
        raise ValueError(f"published_at {value!r} is not YYYY-MM-DD or YYYY-MM-DD HH:MM[:SS]")
    try:
        day = datetime.fromisoformat(m["date"]).date()
        t = time.fromisoformat(m["time"]) if m["time"] else time()
    except ValueError as exc:
        raise ValueError(f"published_at {value!r}: {exc}") from None
    if m["tz"]:
        return datetime.fromisoformat(f"{m['date']}T{m['time']}{m['tz'].replace('Z', '+00:00')}")
    return datetime.combine(day, t, tz)


@dataclass
class CsvRow:
    row: int  # as Excel numbers it: the header is row 1
    title: str
    category: str
    department: str
    channel: str
    published_at: datetime
    url: str | None
    checklist_item: int | None
    #: the catalogue cells given (checked), by column name
    catalogue: dict[str, Any] = field(default_factory=dict)

    @property
    def item_key(self) -> tuple[str, str, str]:
        return (self.title, self.category, self.department)


@dataclass
class ImportResult:
    source: str
    encoding: str
    rows: int
    dry_run: bool
    items_added: int = 0
    publications_added: int = 0
    #: rows already in the ledger (re-importing a file adds nothing)
    already_present: int = 0
    item_ids: list[int] = field(default_factory=list)
    departments_added: list[str] = field(default_factory=list)
    #: the rows that add a publication, and those already recorded (what a dry run previews)
    added: list[CsvRow] = field(default_factory=list)
    present: list[CsvRow] = field(default_factory=list)


def parse_csv(
    ctx: Context, session: Session, text: str, *, create_departments: bool = False
) -> tuple[list[CsvRow], list[str], list[str]]:
    """Rows, errors (row-numbered), departments that would be created."""
    errors: list[str] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportRejected(["the file is empty; the first row must be: " + ",".join(CSV_COLUMNS)]) from None
    except csv.Error as exc:
        raise ImportRejected([f"row 1: not CSV ({exc})"]) from None
    header = [h.strip().lower() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [h for h in header if h not in CSV_COLUMNS]
    dup_cols = sorted({h for h in header if header.count(h) > 1})
    if missing or unknown or dup_cols:
        why = "; ".join(
            x
            for x in (
                f"missing column(s) {', '.join(missing)}" if missing else "",
                f"unknown column(s) {', '.join(repr(u) for u in unknown)}" if unknown else "",
                f"repeated column(s) {', '.join(dup_cols)}" if dup_cols else "",
            )
            if x
        )
        raise ImportRejected(
            [
                f"row 1 (header): {why}; the header must be: {','.join(CSV_COLUMNS)} "
                f"(checklist_item and {', '.join(CATALOGUE_COLUMNS)} optional)"
            ]
        )
    tz = ctx.settings.zone
    known_depts = set(departments(session))
    new_depts: list[str] = []
    rows: list[CsvRow] = []
    seen: dict[tuple[str, str, str, str], int] = {}
    now = utcnow()
    rownum = 1
    while True:
        try:
            raw = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(f"row {rownum + 1}: not valid CSV ({exc})")
            break
        rownum += 1
        if not any(c.strip() for c in raw):
            continue
        if len(raw) > len(header) and not any(c.strip() for c in raw[len(header) :]):
            raw = raw[: len(header)]  # Excel's trailing empty cells
        if len(raw) != len(header):
            errors.append(f"row {rownum}: {len(raw)} fields, the header has {len(header)}")
            continue
        v = {h: csvcells.unescape(c.strip()) for h, c in zip(header, raw, strict=True)}
        problems: list[str] = []
        title = v["title"]
        if not title:
            problems.append("title is empty")
        elif len(title) > 500:
            problems.append(f"title is {len(title)} characters; at most 500")
        if v["category"] not in ctx.settings.categories:
            problems.append(f"unknown category {v['category']!r} (one of: {', '.join(ctx.settings.categories)})")
        dept = v["department"]
        if not dept:
            problems.append("department is empty")
        elif dept not in known_depts:
            if create_departments:
                known_depts.add(dept)
                new_depts.append(dept)
            else:
                problems.append(
                    f"unknown department {dept!r} (add it with `publisher department add {dept}` "
                    "or pass --create-departments)"
                )
        chan = v["channel"]
        if chan not in ctx.channels:
            problems.append(
                f"unknown channel {chan!r} (configured: {', '.join(ctx.channels) or 'none'}; a place "
                'without an API is configured as type "manual" in settings.toml)'
            )
        published_at: datetime | None = None
        try:
            published_at = parse_published_at(v["published_at"], tz)
            if published_at > now:
                problems.append(f"published_at {v['published_at']} is in the future")
        except ValueError as exc:
            problems.append(str(exc))
        url: str | None = v["url"] or None
        if url is not None:
            try:
                url = validate_url(url)
            except InvalidInput as exc:
                problems.append(str(exc))
        number: int | None = None
        raw_n = v.get("checklist_item", "")
        if raw_n:
            try:
                number = int(raw_n)
            except ValueError:
                problems.append(f"checklist_item {raw_n!r} is not a number from 1 to 50")
            else:
                if number not in checklist():
                    problems.append(f"checklist_item {number} is outside 1-50")
        cells = _catalogue_cells(ctx, session, v, problems)
        key = (title, v["category"], dept, chan)
        if key in seen:
            problems.append(f"repeats row {seen[key]} (same title, category, department and channel)")
        else:
            seen[key] = rownum
        if problems:
            errors.extend(f"row {rownum}: {p}" for p in problems)
            continue
        assert published_at is not None
        rows.append(CsvRow(rownum, title, v["category"], dept, chan, published_at, url, number, cells))
    # one item = rows sharing title, category and department: they must agree on the checklist item
    by_item: dict[tuple[str, str, str], list[CsvRow]] = defaultdict(list)
    for r in rows:
        by_item[r.item_key].append(r)
    for group in by_item.values():
        numbers = {r.checklist_item for r in group if r.checklist_item is not None}
        if len(numbers) > 1:
            errors.append(
                f"rows {', '.join(str(r.row) for r in group)}: the same item (title, category, department) "
                f"names different checklist items {sorted(numbers)}"
            )
    errors.extend(_catalogue_conflicts(session, by_item))
    if not rows and not errors:
        errors.append("no data rows under the header")
    return rows, errors, new_depts


def _catalogue_cells(ctx: Context, session: Session, v: dict[str, str], problems: list[str]) -> dict[str, Any]:
    """The row's catalogue cells that hold a value, checked as an item's fields are; each bad one a problem."""
    out: dict[str, Any] = {}
    for name in CATALOGUE_COLUMNS:
        value = v.get(name, "")
        if not value:
            continue
        if name == "index_no":
            if len(value) > 100:
                problems.append(f"index_no is {len(value)} characters; at most 100")
            out[name] = value
            continue
        try:
            out.update(check_catalogue_fields(ctx, session, {name: value}))
        except InvalidInput as exc:
            problems.append(str(exc))
    return out


def _catalogue_conflicts(session: Session, by_item: dict[tuple[str, str, str], list[CsvRow]]) -> list[str]:
    """Rows of one item that disagree on a catalogue cell, and 索引号 that another item holds (in the
    file or in the store): an index number is one item's, never reused."""
    errors: list[str] = []
    holder: dict[str, tuple[tuple[str, str, str], int]] = {}
    for key, group in by_item.items():
        for name in CATALOGUE_COLUMNS:
            values = {str(r.catalogue[name]) for r in group if name in r.catalogue}
            if len(values) > 1:
                errors.append(
                    f"rows {', '.join(str(r.row) for r in group)}: the same item names different {name} "
                    f"{sorted(values)}"
                )
        number = next((r.catalogue["index_no"] for r in group if "index_no" in r.catalogue), None)
        if number is None:
            continue
        first = group[0].row
        if number in holder and holder[number][0] != key:
            errors.append(f"row {first}: 索引号 {number} is also given to another item on row {holder[number][1]}")
        holder.setdefault(number, (key, first))
        owner = session.exec(select(Item).where(Item.index_no == number)).first()
        if owner is not None and (owner.title, owner.category, owner.department) != key:
            errors.append(f"row {first}: 索引号 {number} is already item {owner.id}'s ({owner.title}); never reused")
    return errors


def import_csv(
    ctx: Context,
    session: Session,
    *,
    data: bytes,
    source: str,
    actor: str,
    dry_run: bool = False,
    encoding: str | None = None,
    create_departments: bool = False,
) -> ImportResult:
    """Record publications made elsewhere. All rows or none: ImportRejected lists every bad row.

    Idempotent: a row whose item (title, category, department) already has a publication on that
    channel, from any origin, is counted as already present and adds nothing.
    """
    text, enc = decode_csv(data, encoding)
    if not dry_run and session.get_bind().dialect.name == "postgresql":
        # one import at a time, or two would each find the other's rows missing and add them twice
        # (SQLite's BEGIN IMMEDIATE already runs one writer at a time)
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": IMPORT_LOCK})
    rows, errors, new_depts = parse_csv(ctx, session, text, create_departments=create_departments)
    if errors:
        raise ImportRejected(errors, source=source)
    result = ImportResult(source=source, encoding=enc, rows=len(rows), dry_run=dry_run, departments_added=new_depts)
    by_item: dict[tuple[str, str, str], list[CsvRow]] = defaultdict(list)
    for r in rows:
        by_item[r.item_key].append(r)
    if not dry_run:
        for dept in new_depts:
            add_department(session, dept, actor=actor)
    for (title, category, dept), group in by_item.items():
        existing = list(
            session.exec(select(Item).where(Item.title == title, Item.category == category, Item.department == dept))
        )
        on = set()
        if existing:
            ids = [i.id for i in existing]
            on = set(
                session.exec(
                    select(Delivery.channel).where(Delivery.item_id.in_(ids), Delivery.published_at.is_not(None))
                )
            )  # type: ignore[union-attr,attr-defined]
        todo = [r for r in group if r.channel not in on]
        result.already_present += len(group) - len(todo)
        result.present.extend(r for r in group if r.channel in on)
        result.added.extend(todo)
        if not todo:
            continue
        target = next((i for i in existing if i.origin == ItemOrigin.IMPORT), None)
        if dry_run:
            result.items_added += target is None
            result.publications_added += len(todo)
            continue
        number = next((r.checklist_item for r in group if r.checklist_item is not None), None)
        if target is None:
            target = new_recorded_item(
                session,
                title=title,
                category=category,
                department=dept,
                origin=ItemOrigin.IMPORT,
                checklist_item=number,
                published_at=min(r.published_at for r in todo),
            )
            for r in group:
                for name, value in r.catalogue.items():
                    setattr(target, name, value)
            result.items_added += 1
            result.item_ids.append(target.id)  # type: ignore[arg-type]
            audit(
                session,
                actor=actor,
                entity="item",
                entity_id=target.id,
                action="import",
                to_state=ItemStatus.PUBLISHED,
                source=source,
                rows=[r.row for r in todo],
            )
        elif target.checklist_item is None and number is not None:
            target.checklist_item = number
        for r in todo:
            d = add_recorded_delivery(
                session,
                target,
                channel=r.channel,
                published_at=r.published_at,
                url=r.url,
                note=f"imported from {source} row {r.row}",
            )
            result.publications_added += 1
            audit(
                session,
                actor=actor,
                entity="delivery",
                entity_id=d.id,
                action="import",
                to_state=DeliveryStatus.DONE,
                item_id=target.id,
                channel=r.channel,
                url=r.url,
                source=source,
                row=r.row,
            )
    return result


# ------------------------------------------------------------------------------------------ export
def export_csv(engine: Engine, tz: ZoneInfo, *, start: datetime | None = None, end: datetime | None = None) -> str:
    """Every publication in the import format (UTF-8 with a BOM, so Excel shows the Chinese)."""
    buf = io.StringIO()
    buf.write("\ufeff")
    w = csvcells.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for p in publications(engine, start=start, end=end):
        w.writerow(
            [
                p.title,
                p.category,
                p.department,
                p.channel,
                p.published_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
                p.url or "",
                p.checklist_item if p.checklist_item is not None else "",
                *("" if getattr(p, name) is None else str(getattr(p, name)) for name in CATALOGUE_COLUMNS),
            ]
        )
    return buf.getvalue()
