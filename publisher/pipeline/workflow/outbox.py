"""The notification outbox: who is told of a workflow change, written in the change's own transaction.

Three hooks, one per place a change happens, and nothing else queues a message:

* :func:`on_move` — from :func:`publisher.pipeline.workflow.states.transition` (every ORM move):
  submitted (or sent back to the first review by an edit) → the department's head(s); the first
  approval → the confidentiality reviewers (保密审查); rejected → the author, with the reason;
  published → the author, with the links.
* :func:`on_rollups` — from the worker's batched roll-up (``rollup_items``): published → the author.
* :func:`on_display_ending` — from the ``display-end`` job (:func:`end_displays`): a 公示 whose period
  ends within a day → its author and the editors of its department (once per item and end).
* :func:`on_deliveries` — from the worker's record (publisher.pipeline.store.record): a delivery that
  failed for good, that waits on the by-hand queue, or whose by-hand post is overdue (the channel's
  ``InProgress.overdue``) → the editors of the item's department (the admins when it has none).
* :func:`on_channel_problems` — from the worker's record (a call refused with CredentialsRefused or
  QuotaExceeded) and from ``publisher channels`` (a failing check): the admins, once per channel,
  kind of problem and local day — not once per delivery.
* :func:`on_register_deadlines` — from the ``register-deadlines`` job
  (publisher.counting.registers.remind_deadlines): a request or complaint due within
  ``[registers] remind_working_days`` working days, or late → the register keepers
  (``[registers] keepers``, else the admins), once per entry, due date and state.

Each row's ``dedupe_key`` is the event + recipient + transport, UNIQUE in the table and inserted with
ON CONFLICT DO NOTHING: an event is queued once per person however often its code path runs. The
event part names the occurrence: the audit row of a move (append-only, so its id is never reused);
the item version for a publication (the author hears once per version, however often the roll-up
flips); the delivery and attempt for a failure; the delivery and version for a by-hand post (the
manual channel's reminders every few hours are the same event; its overdue answers one more);
the channel, kind and local day for a channel's problem; the entry, its due date and "soon" or
"late" for a register deadline (an extension moves the date: told again).

The text is Chinese and short; the link is a path under ``notify.web_base_url``, joined when the
message is sent (so the settings of the process that sends it decide the host).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from publisher.errors import InvalidInput, NotFound
from publisher.models import Delivery, Item, Role, User, utcnow
from publisher.notification import Notification, NotificationStatus, NotifyMode, NotifyPref
from publisher.pipeline.workflow.audit import SYSTEM, audit

N = Notification.__table__  # type: ignore[attr-defined]
PREF = NotifyPref.__table__  # type: ignore[attr-defined]
U = User.__table__  # type: ignore[attr-defined]
ITEM = Item.__table__  # type: ignore[attr-defined]
D = Delivery.__table__  # type: ignore[attr-defined]

SUBMITTED, LEVEL1, REJECTED, PUBLISHED = "submitted", "approved_level1", "rejected", "published"
DELIVERY_FAILED, BY_HAND = "delivery_failed", "by_hand"
DISPLAY_ENDS = "display_ends"
BY_HAND_OVERDUE = "by_hand_overdue"
CHANNEL_PROBLEM = "channel_problem"
REGISTER_DUE, REGISTER_LATE = "register_due", "register_late"
#: the transport value of a person who asked not to be told
NO_TRANSPORT = "none"


@dataclass(frozen=True)
class Event:
    """What happened, to whom it matters, and what to tell them."""

    kind: str
    #: the occurrence: with the recipient and transport, the dedupe key
    ref: str
    #: None for an event about no item (a channel's problem, a register entry)
    item_id: int | None
    subject: str
    body: str
    link: str


# ------------------------------------------------------------------------------------ who is told
def _recipients(conn: sa.Connection, where: Any, exclude: str | None = None) -> list[Any]:
    """Active users matching ``where`` who chose a transport, with their choice."""
    q = (
        sa.select(U.c.id, U.c.name, PREF.c.transport, PREF.c.address, PREF.c.mode)
        .join(PREF, PREF.c.user_id == U.c.id)
        .where(where, U.c.active.is_(True), PREF.c.transport != NO_TRANSPORT)
        .order_by(U.c.id)
    )
    return [r for r in conn.execute(q) if r.name != exclude]


def _heads(department: str) -> Any:
    return sa.and_(U.c.role == Role.DEPARTMENT_HEAD.value, U.c.department == department)


def _reviewers() -> Any:
    return U.c.role == Role.CONFIDENTIALITY_REVIEWER.value


def _editors_or_admins(conn: sa.Connection, department: str) -> Any:
    editors = sa.and_(U.c.role == Role.EDITOR.value, U.c.department == department, U.c.active.is_(True))
    if conn.execute(sa.select(U.c.id).where(editors).limit(1)).first() is not None:
        return editors
    return U.c.role == Role.ADMIN.value


# ----------------------------------------------------------------------------------- writing rows
def _insert(conn: sa.Connection) -> Any:
    dialect = conn.dialect.name
    ins = postgresql.insert(N) if dialect == "postgresql" else sqlite.insert(N)
    # RETURNING: what was written (a row the key already had returns nothing); rowcount is -1 on psycopg
    return ins.on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(N.c.id)


def queue(conn: sa.Connection, event: Event, recipients: Iterable[Any], now: datetime | None = None) -> int:
    """Queue ``event`` for each recipient on their transport; returns the rows written (a repeat: 0)."""
    now = now or utcnow()
    rows = [
        {
            "event": event.kind,
            "dedupe_key": f"{event.kind}:{event.ref}:u{r.id}:{r.transport}"[:300],
            "user_id": r.id,
            "item_id": event.item_id,
            "transport": r.transport,
            "address": r.address or r.name,
            "mode": r.mode,
            "subject": event.subject[:300],
            "body": event.body,
            "link": event.link,
            "status": NotificationStatus.PENDING.value,
            "attempts": 0,
            "due_at": now,
            "created_at": now,
        }
        for r in recipients
    ]
    written = 0
    for row in rows:  # one statement each: ON CONFLICT with executemany reports no per-row count
        written += len(conn.execute(_insert(conn), row).all())
    return written


def _title(title: str) -> str:
    return title if len(title) <= 60 else title[:59] + "…"


# ------------------------------------------------------------------------------------------ hooks
def tells(action: str, to: str | None, before: str) -> bool:
    """Whether a move is one somebody is told of (:func:`on_move` is only called for those)."""
    return (
        (to == "submitted" and before != "submitted")
        or (action == "approve" and to == "dept_approved")
        or action == "reject"
        or (to == "published" and before != "published")
    )


def on_move(
    conn: sa.Connection,
    item: Item,
    *,
    action: str,
    to: str | None,
    before: str,
    actor: str,
    reason: str | None,
    audit_id: int | None,
) -> int:
    """The ORM transition ``action`` took ``item`` from ``before`` to ``to`` (its audit row ``audit_id``)."""
    assert item.id is not None
    title, link = _title(item.title), f"items/{item.id}"
    ref = f"item{item.id}:audit{audit_id}"
    exclude = actor
    # people know each other by name (王主任), not by account (wang.hong)
    actor = conn.execute(sa.select(U.c.display_name).where(U.c.name == actor)).scalar() or actor
    if to == "submitted" and before != "submitted":
        again = "修改后重新" if action == "edit" else ""
        event = Event(
            SUBMITTED,
            ref,
            item.id,
            f"待审核：《{title}》",
            f"{item.department}{again}提交的《{title}》（第 {item.version} 版）等待您审核（部门负责人审核）。\n"
            f"提交人：{actor}",
            link,
        )
        return queue(conn, event, _recipients(conn, _heads(item.department), exclude=exclude))
    if action == "approve" and to == "dept_approved":
        event = Event(
            LEVEL1,
            ref,
            item.id,
            f"待保密审查：《{title}》",
            f"{item.department}的《{title}》（第 {item.version} 版）已通过部门负责人审核（{actor}），等待保密审查。",
            link,
        )
        return queue(conn, event, _recipients(conn, _reviewers(), exclude=exclude))
    if action == "reject":
        event = Event(
            REJECTED,
            ref,
            item.id,
            f"已退回：《{title}》",
            f"您的《{title}》（第 {item.version} 版）被 {actor} 退回修改。\n理由：{reason or '（未填写）'}",
            link,
        )
        return queue(conn, event, _recipients(conn, U.c.id == item.author_id))
    if to == "published" and before != "published":
        return on_rollups(conn, [item.id])
    return 0


def on_display_ending(conn: sa.Connection, items: Sequence[Any], zone: Any) -> int:
    """Each of ``items`` (id, title, department, author_id, display_ends_at) ends its 公示期 within a
    day: its author and its department's editors are told once per item and end (a moved end is a new
    event), so whoever must extend it still can."""
    written = 0
    for it in items:
        ends = it.display_ends_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        title = _title(it.title)
        event = Event(
            DISPLAY_ENDS,
            f"item{it.id}:end{it.display_ends_at.isoformat()}",
            it.id,
            f"公示即将结束：《{title}》",
            f"{it.department}的《{title}》公示期将于 {ends} 结束，届时各渠道自动撤下"
            "（不能自动撤下的渠道列入人工待办）。如需延长，请在此之前修改公示期。",
            f"items/{it.id}",
        )
        who = sa.or_(U.c.id == it.author_id, sa.and_(U.c.role == Role.EDITOR.value, U.c.department == it.department))
        written += queue(conn, event, _recipients(conn, who))
    return written


def on_rollups(conn: sa.Connection, published: Sequence[int]) -> int:
    """Items rolled up to published: each author is told once per version, with the links."""
    if not published:
        return 0
    # one query for the worker's whole batch, and only the items whose author wants to be told: the
    # record of a batch of publications pays one more statement, not one per item
    items = conn.execute(
        sa.select(ITEM.c.id, ITEM.c.title, ITEM.c.version, ITEM.c.author_id)
        .join(PREF, PREF.c.user_id == ITEM.c.author_id)
        .where(ITEM.c.id.in_(list(published)), PREF.c.transport != NO_TRANSPORT)
    ).all()
    if not items:
        return 0
    told = [i.id for i in items]
    links: dict[int, list[str]] = {}
    for item_id, channel, url in conn.execute(
        sa.select(D.c.item_id, D.c.channel, D.c.url)
        .where(D.c.item_id.in_(told), D.c.published_at.is_not(None), D.c.withdrawn_at.is_(None))
        .order_by(D.c.item_id, D.c.channel)
    ):
        links.setdefault(item_id, []).append(f"{channel}：{url or '（无网址）'}")
    written = 0
    for i in items:
        title = _title(i.title)
        where = "\n".join(links.get(i.id, [])) or "（各渠道已完成）"
        event = Event(
            PUBLISHED,
            f"item{i.id}:v{i.version}",
            i.id,
            f"已发布：《{title}》",
            f"您的《{title}》（第 {i.version} 版）已发布：\n{where}",
            f"items/{i.id}",
        )
        written += queue(conn, event, _recipients(conn, U.c.id == i.author_id))
    return written


@dataclass(frozen=True)
class DeliveryEvent:
    """One delivery the worker's record left failed for good or waiting to be posted by hand."""

    delivery_id: int
    item_id: int
    channel: str
    label: str
    #: DELIVERY_FAILED, BY_HAND or BY_HAND_OVERDUE
    kind: str
    attempt: int
    version: int | None
    #: the failure's reason; for BY_HAND_OVERDUE, since when it waits (local time, "YYYY-MM-DD HH:MM")
    error: str | None = None


def on_deliveries(conn: sa.Connection, events: Sequence[DeliveryEvent]) -> int:
    """Deliveries failed for good, put on the by-hand queue or overdue there: their department's editors
    (or admins)."""
    if not events:
        return 0
    items = {
        r.id: r
        for r in conn.execute(
            sa.select(ITEM.c.id, ITEM.c.title, ITEM.c.department, ITEM.c.version).where(
                ITEM.c.id.in_({e.item_id for e in events})
            )
        )
    }
    written = 0
    for e in events:
        item = items[e.item_id]
        title = _title(item.title)
        if e.kind == DELIVERY_FAILED:
            event = Event(
                DELIVERY_FAILED,
                f"d{e.delivery_id}:a{e.attempt}",
                e.item_id,
                f"发布失败：《{title}》→ {e.label}",
                f"{item.department}的《{title}》在渠道「{e.label}」（{e.channel}）发布失败，不再自动重试。\n"
                f"原因：{e.error or '（未知）'}\n请查看原因后在条目页点「重试」。",
                f"items/{e.item_id}",
            )
        elif e.kind == BY_HAND_OVERDUE:
            event = Event(
                BY_HAND_OVERDUE,
                f"d{e.delivery_id}:v{e.version or item.version}",
                e.item_id,
                f"手工发布已逾期：《{title}》→ {e.label}",
                f"{item.department}的《{title}》"
                + (f"自 {e.error} 起" if e.error else "")
                + f"等待手工发布到「{e.label}」，至今未发布，已超过规定时限。\n"
                f"发布后请记录网址（publisher manual record {e.delivery_id} URL），"
                "无法发布的请记为“不适用”并写明原因。",
                f"items/{e.item_id}",
            )
        else:
            event = Event(
                BY_HAND,
                f"d{e.delivery_id}:v{e.version or item.version}",
                e.item_id,
                f"待手工发布：《{title}》→ {e.label}",
                f"{item.department}的《{title}》需要手工发布到「{e.label}」。\n"
                f"发布后请记录网址（publisher manual record {e.delivery_id} URL）。",
                f"items/{e.item_id}",
            )
        written += queue(conn, event, _recipients(conn, _editors_or_admins(conn, item.department)))
    return written


@dataclass(frozen=True)
class ChannelProblem:
    """A channel whose credentials or quota failed: in a delivery's call, or in its health check."""

    channel: str
    label: str
    #: CREDENTIALS, QUOTA or CHECK
    kind: str
    detail: str


CREDENTIALS, QUOTA, CHECK = "credentials", "quota", "check"
_PROBLEM_WORDS = {
    CREDENTIALS: ("凭据失效", "拒绝了本系统的凭据（令牌过期、密钥错误或服务器 IP 不在白名单）"),
    QUOTA: ("配额用尽", "的调用配额已用尽，发布将推迟到配额恢复"),
    CHECK: ("检查失败", "的凭据与配额检查（publisher channels）未通过"),
}


def on_channel_problems(
    conn: sa.Connection, problems: Sequence[ChannelProblem], zone: Any, now: datetime | None = None
) -> int:
    """Channels whose credentials or quota failed: the admins, once per channel, kind and local day
    (``zone``): a hundred deliveries refused for one expired token are one message; a problem still
    there the next day is told again."""
    if not problems:
        return 0
    now = now or utcnow()
    day = now.astimezone(zone).date().isoformat()
    seen: dict[tuple[str, str], ChannelProblem] = {}
    for p in problems:
        seen.setdefault((p.channel, p.kind), p)
    admins = _recipients(conn, U.c.role == Role.ADMIN.value)
    written = 0
    for p in seen.values():
        short, what = _PROBLEM_WORDS[p.kind]
        event = Event(
            CHANNEL_PROBLEM,
            f"{p.channel}:{p.kind}:{day}",
            None,
            f"渠道{short}：{p.label}" + (f"（{p.channel}）" if p.label != p.channel else ""),
            f"渠道「{p.label}」（{p.channel}）{what}。\n详情：{p.detail[:500]}\n"
            "请管理员检查该渠道的设置与环境变量中的密钥，修复后运行 publisher channels 确认。",
            "admin/channels",
        )
        written += queue(conn, event, admins, now)
    return written


@dataclass(frozen=True)
class RegisterDeadline:
    """An open request (依申请公开) or complaint (举报/投诉) near or past its deadline."""

    #: "request" or "complaint"
    register: str
    entry_id: int
    who: str
    subject: str
    due_on: Any
    working_days_left: int
    late: bool


#: where the register keepers act on an entry: its card on the register's page (admins, docs/web.md)
REGISTER_LINKS = {"request": "registers/requests#r{id}", "complaint": "registers/complaints#r{id}"}
_REGISTER_NAMES = {"request": "信息公开申请", "complaint": "举报投诉"}


def on_register_deadlines(conn: sa.Connection, entries: Sequence[RegisterDeadline], keepers: Sequence[str]) -> int:
    """Register entries due soon or late: the keepers (user names; the admins when none is named), once
    per entry, due date and state — an extension that moves the date is told again."""
    if not entries:
        return 0
    who = U.c.name.in_(list(keepers)) if keepers else U.c.role == Role.ADMIN.value
    recipients = _recipients(conn, who)
    written = 0
    for e in entries:
        name, subject = _REGISTER_NAMES[e.register], _title(e.subject)
        if e.late:
            kind, head = REGISTER_LATE, f"{name}已逾期"
            when = f"答复期限 {e.due_on:%Y-%m-%d} 已过（逾期 {-e.working_days_left} 个工作日）"
        else:
            kind, head = REGISTER_DUE, f"{name}即将到期"
            left = "今天到期" if e.working_days_left == 0 else f"还剩 {e.working_days_left} 个工作日"
            when = f"答复期限 {e.due_on:%Y-%m-%d}（{left}）"
        event = Event(
            kind,
            f"{e.register}{e.entry_id}:due{e.due_on:%Y-%m-%d}",
            None,
            f"{head}：第 {e.entry_id} 号",
            f"{name}第 {e.entry_id} 号（{e.who}：{subject}）{when}。\n"
            "请及时答复并在登记簿中办结，需要延期的请登记延期理由。",
            REGISTER_LINKS[e.register].format(id=e.entry_id),
        )
        written += queue(conn, event, recipients)
    return written


# ------------------------------------------------------------------------------- each person's choice
def _clock(value: str) -> str:
    try:
        h, m = value.split(":")
        if not (0 <= int(h) <= 23 and 0 <= int(m) <= 59 and len(m) == 2):
            raise ValueError
    except ValueError:
        raise InvalidInput(f"quiet hours: {value!r} is not a local time HH:MM (e.g. 22:00)") from None
    return f"{int(h):02d}:{m}"


def set_pref(
    session: Session,
    *,
    user: str,
    transport: str,
    address: str = "",
    mode: str = NotifyMode.IMMEDIATE,
    quiet: str | None = None,
    known: Collection[str] = (),
    actor: str = SYSTEM,
) -> NotifyPref:
    """How ``user`` is told: a transport of ``known`` (the configured ones) or "none", their address
    on it, immediate or a daily digest, and quiet hours "HH:MM-HH:MM" (local). Audited."""
    person = session.exec(select(User).where(User.name == user)).first()
    if person is None:
        raise NotFound(f"no user {user!r}")
    if transport != NO_TRANSPORT and transport not in known:
        choices = ", ".join([*sorted(known), NO_TRANSPORT])
        raise InvalidInput(
            f"transport {transport!r} is not configured; one of: {choices} (see [notify.transports] in settings.toml)"
        )
    if transport != NO_TRANSPORT and not address.strip():
        raise InvalidInput(f"transport {transport!r} needs --address (an e-mail address, a 企业微信 or 钉钉 userid)")
    try:
        mode_ = NotifyMode(mode)
    except ValueError:
        raise InvalidInput(f"mode {mode!r}: one of {', '.join(m.value for m in NotifyMode)}") from None
    start = end = None
    if quiet:
        if "-" not in quiet:
            raise InvalidInput(f"quiet hours {quiet!r}: write START-END in local time, e.g. 22:00-07:30")
        start, end = (_clock(p.strip()) for p in quiet.split("-", 1))
        if start == end:
            raise InvalidInput(f"quiet hours {quiet!r}: the start and the end are the same time")
    pref = session.get(NotifyPref, person.id) or NotifyPref(user_id=person.id, transport=transport)
    pref.transport, pref.address, pref.mode = transport, address.strip(), mode_.value
    pref.quiet_start, pref.quiet_end = start, end
    session.add(pref)
    audit(
        session,
        actor=actor,
        entity="user",
        entity_id=person.id,
        action="notify preference",
        transport=transport,
        mode=mode_.value,
        quiet=quiet,
    )
    return pref


def pref_of(session: Session, *, user: str) -> NotifyPref | None:
    """``user``'s choice, or None when they never made one (they are not told)."""
    person = session.exec(select(User).where(User.name == user)).first()
    if person is None:
        raise NotFound(f"no user {user!r}")
    return session.get(NotifyPref, person.id)
