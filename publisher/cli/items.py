"""``publisher item …``: write, edit, list and show items."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from publisher.app import App
from publisher.catalogue import Validity
from publisher.cli.common import Table, out, show_time, state
from publisher.cli.privacy import say_findings
from publisher.cli.reviews import take_down_said
from publisher.errors import PublisherError
from publisher.models import Delivery, Item, ItemStatus, User
from publisher.pipeline import content, workflow
from publisher.pipeline.workflow import wording

item_app = typer.Typer(help="Write, list and show items.", no_args_is_help=True)


def _item_dict(a: App, s: Any, item: Item, full: bool = False) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": item.id,
        "title": item.title,
        "status": item.status,
        "category": item.category,
        "department": item.department,
        "checklist_item": item.checklist_item,
        "channels": item.channels,
        "version": item.version,
        "publish_at": item.publish_at.isoformat() if item.publish_at else None,
        "display": _display_dict(a, item),
        "index_no": item.index_no,
        "topic": item.topic,
        "validity": item.validity,
        "overrides": wording.public(item.overrides),
    }
    if full:
        from sqlmodel import select

        from publisher.models import AuditLog, DeliveryAttempt, Review

        d["catalogue"] = workflow.catalogue_of(s, item)
        d["related"] = [
            {"label": r.label, "item_id": r.item_id, "title": r.title, "status": r.status}
            for r in workflow.related_of(s, item.id)  # type: ignore[arg-type]
        ]
        d["summary"] = item.summary
        d["return_reason"] = item.return_reason
        d["reviews"] = [
            {
                "level": r.level,
                "reviewer": s.get(User, r.reviewer_id).name,
                "approved": r.approved,
                "reason": r.reason,
                "version": r.item_version,
                "at": r.at.isoformat(),
            }
            for r in s.exec(select(Review).where(Review.item_id == item.id).order_by(Review.id))
        ]
        d["deliveries"] = []
        for dl in s.exec(select(Delivery).where(Delivery.item_id == item.id).order_by(Delivery.id)):
            attempts = s.exec(
                select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == dl.id).order_by(DeliveryAttempt.id)
            ).all()
            d["deliveries"].append(
                {
                    "id": dl.id,
                    "channel": dl.channel,
                    "op": dl.op,
                    "status": dl.status,
                    "url": dl.url,
                    "due_at": dl.due_at.isoformat(),
                    "attempts": dl.attempts,
                    "published_at": dl.published_at.isoformat() if dl.published_at else None,
                    "last_error": dl.last_error,
                    "last_error_kind": dl.last_error_kind,
                    "note": dl.note,
                    "history": [
                        {
                            "n": x.number,
                            "op": x.op,
                            "outcome": x.outcome,
                            "message": x.message,
                            "at": x.finished_at.isoformat(),
                        }
                        for x in attempts
                    ],
                }
            )
        d["audit"] = [
            {
                "at": x.at.isoformat(),
                "actor": x.actor,
                "action": x.action,
                "from": x.from_state,
                "to": x.to_state,
                "reason": x.reason,
            }
            for x in s.exec(
                select(AuditLog).where(AuditLog.entity == "item", AuditLog.entity_id == item.id).order_by(AuditLog.id)
            )
        ]
    return d


def _display_dict(a: App, item: Item) -> dict[str, Any] | None:
    """The item's 公示期 (None: it has none): what it asks for, its end (known or planned), whether it ended."""
    d = workflow.display_of(a.ctx, item)
    if d is None:
        return None

    def iso(t: datetime | None) -> str | None:
        return t.isoformat() if t else None

    return {
        "until": iso(d.until),
        "working_days": d.working_days,
        "ends_at": iso(d.ends_at),
        "planned": d.planned,
        "ended_at": iso(d.ended_at),
        "problem": d.problem,
    }


def _display_said(a: App, d: dict[str, Any]) -> str:
    asked = f"{d['working_days']} working days" if d["working_days"] else "until the time given"
    if d["ended_at"]:
        return f"公示期 ({asked}) ended; taken down at {show_time(a, datetime.fromisoformat(d['ended_at']))}"
    if d["problem"]:
        return f"公示期 ({asked}): WARNING the end cannot be computed, the item stays up: {d['problem']}"
    if not d["ends_at"]:
        return f"公示期 ({asked}): the end is counted from when it goes live"
    when = show_time(a, datetime.fromisoformat(d["ends_at"]))
    return f"公示期 ({asked}) ends {when}" + (" (planned from the publish time)" if d["planned"] else "")


#: the catalogue's fields as ``item show`` names them (the users' words first)
_CATALOGUE_NAMES = (
    ("index_no", "索引号 index_no"),
    ("doc_number", "发文字号 doc_number"),
    ("written_on", "成文日期 written_on"),
    ("topic", "主题分类 topic"),
    ("disclosure_mode", "公开方式 disclosure_mode"),
    ("disclosure_scope", "公开范围 disclosure_scope"),
    ("validity", "有效性 validity"),
    ("replaced_by", "replaced by item"),
)


def _catalogue_said(d: dict[str, Any]) -> list[str]:
    """``item show``'s catalogue lines: the fields that are set, then the related items both ways."""
    cat = d["catalogue"]
    lines = [f"{name}: {cat[key]}" for key, name in _CATALOGUE_NAMES if cat[key] not in (None, "")]
    if not cat["index_no"]:
        lines.insert(0, "索引号 index_no: (given when the item is queued to go out)")
    lines += [f"{r['label']}: item {r['item_id']} {r['title']} ({r['status']})" for r in d["related"]]
    return lines


def _override_covers(a: App, overrides: Any) -> list[content.StoredAsset]:
    """The cover files ``--override CHANNEL.cover=FILE`` names (relative to the current folder), stored."""
    return content.store_channel_covers(
        overrides,
        Path.cwd(),
        media_dir=a.settings.media_dir,
        max_bytes=a.settings.review.max_asset_bytes,
        max_pixels=a.settings.review.max_image_pixels,
        remote=a.settings.media_store(),
    )


OverrideOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--override",
        metavar="CHANNEL.FIELD=TEXT",
        help="one channel's own title, summary, body or cover, e.g. wechat.title=短标题 (repeat it; an empty "
        "TEXT drops the field); added to the front matter's `overrides:`",
    ),
]


@item_app.command("add")
def item_add(
    file: Annotated[Path, typer.Argument(help="Markdown file with YAML front matter")],
    as_user: Annotated[str, typer.Option("--as", help="the author (an editor)")],
    override: OverrideOpt = None,
) -> None:
    """Store a new item (a draft) from FILE.md; prints the new id last.

    Per-channel wording (渠道专用标题/摘要): ``overrides: {wechat: {title: …, summary: …, cover: file.jpg}}``
    in the front matter, or ``--override wechat.title=…``; each channel judges its wording at save time.
    """
    a = state.app()
    with a.session() as s:
        author = workflow.get_user(s, as_user)
        draft = content.read_item_file(
            file,
            media_dir=a.settings.media_dir,
            max_body_bytes=a.settings.review.max_body_bytes,
            max_asset_bytes=a.settings.review.max_asset_bytes,
            max_image_pixels=a.settings.review.max_image_pixels,
            remote=a.settings.media_store(),
        )
        if override:
            draft.fields["overrides"] = wording.merge(draft.fields.get("overrides") or {}, override)
            draft.assets += _override_covers(a, draft.fields["overrides"])
        item = workflow.create_item(a.ctx, s, author=author, draft=draft)
        found = workflow.findings_of(s, item)
    out.print(f"draft {item.id}: {item.title}")
    say_findings(item.id, item.version, found)
    out.print(str(item.id))


@item_app.command("edit")
def item_edit(
    item_id: int,
    file: Annotated[Path, typer.Argument(help="Markdown file with the new text and front matter")],
    as_user: Annotated[str, typer.Option("--as", help="who edits")],
    override: OverrideOpt = None,
) -> None:
    """Replace an item's text and fields; an approved item goes back to review.

    The per-channel wording stays as it is unless the file has ``overrides:`` (``overrides: {}`` removes
    it all) or ``--override`` changes a field of it.
    """
    a = state.app()
    with a.session() as s:
        user = workflow.get_user(s, as_user)
        draft = content.read_item_file(
            file,
            media_dir=a.settings.media_dir,
            max_body_bytes=a.settings.review.max_body_bytes,
            max_asset_bytes=a.settings.review.max_asset_bytes,
            max_image_pixels=a.settings.review.max_image_pixels,
            remote=a.settings.media_store(),
        )
        current = workflow.get_item(s, item_id)
        before = set(current.channels)
        if override:
            given = draft.fields.get("overrides", current.overrides)
            draft.fields["overrides"] = wording.merge(given or {}, override)
            draft.assets += _override_covers(a, draft.fields["overrides"])
        item = workflow.edit_item(
            a.ctx,
            s,
            item_id=item_id,
            actor=user,
            changes={**draft.fields, "title": draft.title},
            body_markdown=draft.body_markdown,
            new_assets=draft.assets,
        )
        removed = sorted(before - set(item.channels))
        owed = workflow.withdrawals(s, item, channels=removed)
        found = workflow.findings_of(s, item)
    say_findings(item.id, item.version, found)
    said = f"item {item.id} is now version {item.version}, {item.status}"
    if removed:
        said += f"; removed from {', '.join(removed)}" + take_down_said(owed, item.id)
    out.print(said)


@item_app.command("list")
def item_list(
    status: Annotated[str | None, typer.Option(help="only items in this state")] = None,
    expiring: Annotated[
        bool, typer.Option("--expiring", help="only items whose 公示期 ends in the next 7 days, soonest first")
    ] = False,
    topic: Annotated[str | None, typer.Option(help="only items of this 主题分类")] = None,
    validity: Annotated[
        str | None, typer.Option(help="only rules with this 有效性 (现行有效 / 已修订 / 已废止)")
    ] = None,
    index_no: Annotated[str | None, typer.Option("--index-no", help="only the item with this 索引号")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """List items, newest first."""
    from sqlmodel import col, select

    a = state.app()
    if expiring:
        return _list_expiring(a, status, as_json)
    with a.session() as s:
        q = select(Item).order_by(col(Item.id).desc())
        if status:
            if status not in {x.value for x in ItemStatus}:
                raise PublisherError(f"unknown status {status!r}; one of {', '.join(x.value for x in ItemStatus)}")
            q = q.where(Item.status == status)
        if topic is not None:
            if topic not in a.settings.catalogue.topics:
                raise PublisherError(f"unknown topic {topic!r}; one of {', '.join(a.settings.catalogue.topics)}")
            q = q.where(Item.topic == topic)
        if validity is not None:
            if validity not in {v.value for v in Validity}:
                raise PublisherError(f"unknown validity {validity!r}; one of {' / '.join(v.value for v in Validity)}")
            q = q.where(Item.validity == validity)
        if index_no is not None:
            q = q.where(Item.index_no == index_no.strip())
        items = [_item_dict(a, s, i) for i in s.exec(q)]
    if as_json:
        out.print(json.dumps(items, ensure_ascii=False, indent=2))
        return
    t = Table("id", "status", "category", "department", "publish at", "channels", "title")
    for i in items:
        at = datetime.fromisoformat(i["publish_at"]) if i["publish_at"] else None
        t.add_row(
            str(i["id"]),
            i["status"],
            i["category"],
            i["department"],
            show_time(a, at),
            ",".join(i["channels"]),
            i["title"],
        )
    out.print(t)


def _list_expiring(a: App, status: str | None, as_json: bool) -> None:
    """``item list --expiring``: the 公示期 that end within a week (known ends, or planned from publish_at)."""
    import sqlalchemy as sa
    from sqlmodel import col, select

    from publisher.models import DISPLAY_OPEN, utcnow

    now = utcnow()
    week = now + timedelta(days=7)
    with a.session() as s:
        q = select(Item).where(sa.text(DISPLAY_OPEN), col(Item.status) != ItemStatus.WITHDRAWN)
        if status:
            q = q.where(Item.status == status)
        rows = []
        for item in s.exec(q):
            d = _item_dict(a, s, item)
            ends = d["display"]["ends_at"]
            if ends and now <= datetime.fromisoformat(ends) < week:
                rows.append(d)
    rows.sort(key=lambda d: (d["display"]["ends_at"], d["id"]))
    if as_json:
        out.print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        out.print("no 公示期 ends in the next 7 days")
        return
    t = Table("id", "公示期 ends", "", "status", "channels", "title")
    for d in rows:
        disp = d["display"]
        t.add_row(
            str(d["id"]),
            show_time(a, datetime.fromisoformat(disp["ends_at"])),
            "planned" if disp["planned"] else "",
            d["status"],
            ",".join(d["channels"]),
            d["title"],
        )
    out.print(t)


@item_app.command("show")
def item_show(
    item_id: int,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Show one item: reviews, each channel's delivery with its attempts and reasons, the audit trail."""
    a = state.app()
    with a.session() as s:
        d = _item_dict(a, s, workflow.get_item(s, item_id), full=True)
    if as_json:
        out.print(json.dumps(d, ensure_ascii=False, indent=2))
        return
    out.print(f"{d['id']}  {d['title']}", style="bold")
    out.print(
        f"{d['status']} · {d['category']} · {d['department']} · version {d['version']}"
        + (f" · checklist {d['checklist_item']}" if d["checklist_item"] else "")
    )
    if d["return_reason"]:
        out.print(f"returned: {d['return_reason']}")
    for line in _catalogue_said(d):
        out.print(line)
    for line in wording.diff_lines(d["overrides"]):
        out.print(f"wording {line}")
    for r in d["reviews"]:
        out.print(
            f"review L{r['level']} v{r['version']}: {'approved' if r['approved'] else 'rejected'} by "
            f"{r['reviewer']}" + (f" — {r['reason']}" if r["reason"] else "")
        )
    if d["publish_at"]:
        out.print(f"publish at {show_time(a, datetime.fromisoformat(d['publish_at']))}")
    if d["display"]:
        out.print(_display_said(a, d["display"]))
    if d["deliveries"]:
        t = Table("delivery", "channel", "op", "status", "attempts", "url / reason")
        t.columns[-1].overflow = "fold"  # a URL cut with … cannot be copied
        for x in d["deliveries"]:
            t.add_row(
                str(x["id"]),
                x["channel"],
                x["op"],
                x["status"],
                str(x["attempts"]),
                x["url"] or x["last_error"] or x["note"] or "",
            )
        out.print(t)
        for x in d["deliveries"]:
            for h in x["history"]:
                when = show_time(a, datetime.fromisoformat(h["at"]))
                out.print(
                    f"  delivery {x['id']} {h['op']} attempt {h['n']}: {h['outcome']} {when}"
                    + (f" — {h['message']}" if h["message"] else "")
                )
    if d["audit"]:
        out.print("audit trail:")
        for x in d["audit"]:
            change = f"{x['from'] or ''} → {x['to']}".strip() if x["to"] else ""
            out.print(
                f"  {show_time(a, datetime.fromisoformat(x['at']))}  {x['actor']}  {x['action']}"
                + (f"  {change}" if change else "")
                + (f" — {x['reason']}" if x["reason"] else "")
            )
