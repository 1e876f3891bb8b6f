"""The ``publisher`` command: a thin face over the service functions in publisher.pipeline.workflow & co.

Every command that changes something is one transaction: it either happens whole or, on an error,
prints one line saying what is wrong and exits non-zero with the store unchanged.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import table as _rich_table
from rich.console import Console
from sqlalchemy import exc as sa_exc

from publisher.app import App, open_app
from publisher.counting import periods, stats
from publisher.errors import PublisherError
from publisher.models import Delivery, DeliveryStatus, Item, ItemStatus, User
from publisher.pipeline import content, workflow

app = typer.Typer(
    help="Publish approved items to the website, WeChat and every other channel, and count them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
user_app = typer.Typer(help="Manage users and their roles.", no_args_is_help=True)
item_app = typer.Typer(help="Write, list and show items.", no_args_is_help=True)
review_app = typer.Typer(
    help="First review (department head) and 保密审查 (confidentiality review).", no_args_is_help=True
)
dept_app = typer.Typer(help="Manage departments.", no_args_is_help=True)
manual_app = typer.Typer(help="The to-post-by-hand queue for places with no API.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(item_app, name="item")
app.add_typer(review_app, name="review")
app.add_typer(dept_app, name="department")
app.add_typer(manual_app, name="manual")

# markup off: titles, reasons and JSON are user text, and "[/x]" in a title crashed the command
# (after its transaction had committed) while "[b]" vanished from --json output
# piped into a file or a mail from cron, rich would assume 80 columns: give tables room instead
_piped_width = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160
out = Console(highlight=False, soft_wrap=True, markup=False, width=_piped_width)
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


class Table(_rich_table.Table):
    """Cells wrap instead of ending in "…": a Chinese title has no spaces to wrap at, and piped
    output is 80 columns wide, so titles, URLs and dates were cut to a few characters."""

    def add_column(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("overflow", "fold")
        super().add_column(*args, **kwargs)


class State:
    settings_path: Path | None = None
    _app: App | None = None

    def app(self) -> App:
        if self._app is None:
            self._app = open_app(self.settings_path)
        return self._app


state = State()


@app.callback()
def _root(
    settings: Annotated[
        Path | None,
        typer.Option("--settings", help="settings file (default ./settings.toml or $PUBLISHER_SETTINGS)"),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log what the worker does")] = False,
) -> None:
    state.settings_path = settings
    state._app = None
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _show_time(a: App, dt: datetime | None) -> str:
    return dt.astimezone(a.settings.zone).strftime("%Y-%m-%d %H:%M") if dt else "-"


# -------------------------------------------------------------------------------------------- init
@app.command()
def init(
    force: Annotated[bool, typer.Option(help="overwrite an existing settings.toml")] = False,
) -> None:
    """Create settings.toml if absent and bring the database to the newest schema."""
    from publisher.settings import SETTINGS_TEMPLATE

    path = state.settings_path or Path("settings.toml")
    if force or not path.exists():
        path.write_text(SETTINGS_TEMPLATE, encoding="utf-8")
        out.print(f"wrote {path}")
    a = open_app(path, run_migrations=True)
    with a.session() as s:
        for d in a.settings.departments:
            workflow.add_department(s, d)
    out.print(f"database ready: {a.engine.url.render_as_string()}")
    out.print(f"channels: {', '.join(a.channels) or 'none configured'}")


# ------------------------------------------------------------------------------------------- users
@dept_app.command("add")
def department_add(name: str) -> None:
    """Add a department (部门)."""
    a = state.app()
    with a.session() as s:
        known = name.strip() in workflow.departments(s)
        workflow.add_department(s, name, actor="cli")
    # adding is idempotent (init and the demo rely on it), but "added" about an old one misleads
    out.print(f"department {name.strip()} already exists" if known else f"department {name.strip()} added")


@dept_app.command("list")
def department_list() -> None:
    """List departments."""
    a = state.app()
    with a.session() as s:
        for d in workflow.departments(s):
            out.print(d)


@user_app.command("add")
def user_add(
    name: str,
    role: Annotated[str, typer.Option(help="editor | department_head | confidentiality_reviewer | admin | viewer")],
    department: Annotated[str | None, typer.Option(help="the user's department (部门)")] = None,
    display_name: Annotated[str, typer.Option(help="name shown on pages")] = "",
) -> None:
    """Add a user with a role."""
    a = state.app()
    with a.session() as s:
        u = workflow.add_user(s, name=name, role=role, department=department, display_name=display_name, actor="cli")
    out.print(f"user {u.name} ({u.role}{', ' + u.department if u.department else ''}) added")


@user_app.command("list")
def user_list() -> None:
    """List users."""
    from sqlmodel import select

    a = state.app()
    t = Table("name", "role", "department")
    with a.session() as s:
        for u in s.exec(select(User).order_by(User.name)):
            t.add_row(u.name, u.role, u.department or "")
    out.print(t)


# ---------------------------------------------------------------------------- web log-in (issue 4)
@user_app.command("passwd")
def user_passwd(
    name: str,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from standard input")
    ] = False,
) -> None:
    """Set a user's password for the web workspace (ends the user's open sessions)."""
    from publisher import accounts

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("new password", hide_input=True, confirmation_prompt=True)
    a = state.app()
    with a.session() as s:
        accounts.set_password(s, name=name, password=password, actor="cli")
    out.print(f"password of {name} set")


# ------------------------------------------------------------------------------------------- items
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
    }
    if full:
        from sqlmodel import select

        from publisher.models import AuditLog, DeliveryAttempt, Review

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


@item_app.command("add")
def item_add(
    file: Annotated[Path, typer.Argument(help="Markdown file with YAML front matter")],
    as_user: Annotated[str, typer.Option("--as", help="the author (an editor)")],
) -> None:
    """Store a new item (a draft) from FILE.md; prints the new id last."""
    a = state.app()
    with a.session() as s:
        author = workflow.get_user(s, as_user)
        draft = content.read_item_file(
            file,
            media_dir=a.settings.media_dir,
            max_body_bytes=a.settings.review.max_body_bytes,
            max_asset_bytes=a.settings.review.max_asset_bytes,
            max_image_pixels=a.settings.review.max_image_pixels,
        )
        item = workflow.create_item(a.ctx, s, author=author, draft=draft)
    out.print(f"draft {item.id}: {item.title}")
    out.print(str(item.id))


@item_app.command("edit")
def item_edit(
    item_id: int,
    file: Annotated[Path, typer.Argument(help="Markdown file with the new text and front matter")],
    as_user: Annotated[str, typer.Option("--as", help="who edits")],
) -> None:
    """Replace an item's text and fields; an approved item goes back to review."""
    a = state.app()
    with a.session() as s:
        user = workflow.get_user(s, as_user)
        draft = content.read_item_file(
            file,
            media_dir=a.settings.media_dir,
            max_body_bytes=a.settings.review.max_body_bytes,
            max_asset_bytes=a.settings.review.max_asset_bytes,
            max_image_pixels=a.settings.review.max_image_pixels,
        )
        before = set(workflow.get_item(s, item_id).channels)
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
    said = f"item {item.id} is now version {item.version}, {item.status}"
    if removed:
        said += f"; removed from {', '.join(removed)}" + _take_down_said(owed, item.id)
    out.print(said)


@item_app.command("list")
def item_list(
    status: Annotated[str | None, typer.Option(help="only items in this state")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """List items, newest first."""
    from sqlmodel import col, select

    a = state.app()
    with a.session() as s:
        q = select(Item).order_by(col(Item.id).desc())
        if status:
            if status not in {x.value for x in ItemStatus}:
                raise PublisherError(f"unknown status {status!r}; one of {', '.join(x.value for x in ItemStatus)}")
            q = q.where(Item.status == status)
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
            _show_time(a, at),
            ",".join(i["channels"]),
            i["title"],
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
    for r in d["reviews"]:
        out.print(
            f"review L{r['level']} v{r['version']}: {'approved' if r['approved'] else 'rejected'} by "
            f"{r['reviewer']}" + (f" — {r['reason']}" if r["reason"] else "")
        )
    if d["publish_at"]:
        out.print(f"publish at {_show_time(a, datetime.fromisoformat(d['publish_at']))}")
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
                when = _show_time(a, datetime.fromisoformat(h["at"]))
                out.print(
                    f"  delivery {x['id']} {h['op']} attempt {h['n']}: {h['outcome']} {when}"
                    + (f" — {h['message']}" if h["message"] else "")
                )
    if d["audit"]:
        out.print("audit trail:")
        for x in d["audit"]:
            change = f"{x['from'] or ''} → {x['to']}".strip() if x["to"] else ""
            out.print(
                f"  {_show_time(a, datetime.fromisoformat(x['at']))}  {x['actor']}  {x['action']}"
                + (f"  {change}" if change else "")
                + (f" — {x['reason']}" if x["reason"] else "")
            )


# ---------------------------------------------------------------------------------------- workflow
@app.command()
def submit(item_id: int, as_user: Annotated[str, typer.Option("--as", help="the author or an editor")]) -> None:
    """Send a draft to the department head."""
    a = state.app()
    with a.session() as s:
        item = workflow.submit(a.ctx, s, item_id=item_id, actor=workflow.get_user(s, as_user))
    out.print(f"item {item.id} submitted; waiting for the head of {item.department}")


def _review(item_id: int, as_user: str, approve: bool, reason: str | None) -> None:
    a = state.app()
    with a.session() as s:
        item = workflow.review(
            a.ctx, s, item_id=item_id, actor=workflow.get_user(s, as_user), approve=approve, reason=reason
        )
    nxt = {
        ItemStatus.DEPT_APPROVED: "waiting for 保密审查 (confidentiality review)",
        ItemStatus.APPROVED: "approved; set a time with `publisher schedule`",
        ItemStatus.SCHEDULED: f"scheduled for {_show_time(a, item.publish_at)}",
        ItemStatus.DRAFT: "returned to the author",
    }.get(ItemStatus(item.status), item.status)
    out.print(f"item {item.id}: {nxt}")


@review_app.command("approve")
def review_approve(
    item_id: int,
    as_user: Annotated[str, typer.Option("--as", help="the reviewer")],
    reason: Annotated[str | None, typer.Option(help="optional remark")] = None,
) -> None:
    """Approve at the level the item is waiting for."""
    _review(item_id, as_user, True, reason)


@review_app.command("reject")
def review_reject(
    item_id: int,
    as_user: Annotated[str, typer.Option("--as", help="the reviewer")],
    reason: Annotated[str | None, typer.Option(help="why (required): the author sees it")] = None,
) -> None:
    """Return the item to its author with a reason."""
    _review(item_id, as_user, False, reason)


@app.command()
def schedule(
    item_id: int,
    at: Annotated[str, typer.Option("--at", help="ISO time with zone, e.g. 2026-12-01T09:00+08:00, or 'now'")],
    as_user: Annotated[str | None, typer.Option("--as", help="who schedules (checked against their role)")] = None,
) -> None:
    """Set the publish time; an approved item is queued for every target channel."""
    a = state.app()
    when: Any = datetime.now(a.settings.zone) if at.strip().lower() == "now" else at
    with a.session() as s:
        user = workflow.get_user(s, as_user) if as_user else None
        item = workflow.schedule(a.ctx, s, item_id=item_id, at=when, actor=as_user or "cli", user=user)
    when_s = f"{_show_time(a, item.publish_at)} ({a.settings.timezone})"
    if item.status in (ItemStatus.DRAFT, ItemStatus.SUBMITTED, ItemStatus.DEPT_APPROVED):
        # only the time is set: nothing is queued until both reviews approve, and the user should know
        out.print(f"item {item.id} is {item.status}: it will publish at {when_s} once both reviews approve it")
    else:
        out.print(f"item {item.id} {item.status}, publish at {when_s}")


@app.command()
def withdraw(
    item_id: int,
    reason: Annotated[str | None, typer.Option(help="why it is withdrawn (kept in the audit log)")] = None,
    as_user: Annotated[str | None, typer.Option("--as", help="who withdraws")] = None,
) -> None:
    """Take an item down from every channel that supports it; cancel what has not gone out."""
    a = state.app()
    with a.session() as s:
        user = workflow.get_user(s, as_user) if as_user else None
        item = workflow.withdraw(a.ctx, s, item_id=item_id, actor=as_user or "cli", reason=reason, user=user)
        owed = workflow.withdrawals(s, item)
    # say what is left to do: "run the worker" for an item that never went out sends people looking
    said = f"item {item.id} withdrawn" + _take_down_said(owed, item.id)
    if not owed.queued and not owed.by_hand and not owed.in_flight:
        said += "; it had not gone out anywhere, so there is nothing to take down"
    out.print(said)


@app.command()
def recall(
    item_id: int,
    as_user: Annotated[str, typer.Option("--as", help="the author or an editor of their department")],
    reason: Annotated[str | None, typer.Option(help="why (kept in the audit log)")] = None,
) -> None:
    """Take a submitted item back to draft (撤回), to change it and submit again; not a take-down."""
    a = state.app()
    with a.session() as s:
        item = workflow.recall(a.ctx, s, item_id=item_id, actor=workflow.get_user(s, as_user), reason=reason)
    out.print(f"item {item.id} recalled: a draft again; `publisher submit {item.id}` sends it to both reviews again")


def _take_down_said(owed: workflow.Withdrawals, item_id: int) -> str:
    said = ""
    if owed.queued:
        said += f"; run the worker to take it down from {', '.join(owed.queued)}"
    if owed.in_flight:
        said += (
            f"; being sent to {', '.join(owed.in_flight)} right now: nothing more goes there, and it is "
            "taken down as soon as that call returns if it went out"
        )
    if owed.by_hand:
        said += f"; take it down by hand on {', '.join(owed.by_hand)} (`publisher item show {item_id}` says why)"
    return said


@app.command()
def retry(delivery_id: int) -> None:
    """Queue one failed delivery (one item on one channel) again."""
    a = state.app()
    with a.session() as s:
        d = workflow.retry_delivery(a.ctx, s, delivery_id=delivery_id, actor="cli")
    out.print(f"delivery {d.id} ({d.channel}) queued again")


@app.command()
def deliveries(
    status: Annotated[str | None, typer.Option(help="pending | claimed | waiting | done | failed | cancelled")] = None,
    channel: Annotated[str | None, typer.Option(help="only this channel")] = None,
    limit: Annotated[int, typer.Option(help="at most this many rows")] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List deliveries (newest first) with their state and the reason of the last failure."""
    from sqlmodel import col, select

    a = state.app()
    with a.session() as s:
        q = select(Delivery).order_by(col(Delivery.id).desc()).limit(limit)
        if status:
            q = q.where(Delivery.status == status)
        if channel:
            q = q.where(Delivery.channel == channel)
        rows = [
            {
                "id": d.id,
                "item_id": d.item_id,
                "channel": d.channel,
                "op": d.op,
                "status": d.status,
                "due_at": d.due_at.isoformat(),
                "attempts": d.attempts,
                "url": d.url,
                "last_error": d.last_error,
                "note": d.note,
            }
            for d in s.exec(q)
        ]
    if as_json:
        out.print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    t = Table("id", "item", "channel", "op", "status", "due", "tries", "url / reason")
    for r in rows:
        t.add_row(
            str(r["id"]),
            str(r["item_id"]),
            r["channel"],
            r["op"],
            r["status"],
            _show_time(a, datetime.fromisoformat(r["due_at"])),
            str(r["attempts"]),
            r["url"] or r["last_error"] or r["note"] or "",
        )
    out.print(t)


# ------------------------------------------------------------------------------------------ worker
@app.command()
def run(
    once: Annotated[bool, typer.Option("--once", help="deliver all that is due, then exit")] = False,
    threads: Annotated[int | None, typer.Option(help="delivery threads (default: worker.threads)")] = None,
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", help="serve Prometheus /metrics on this port")
    ] = None,
    metrics_addr: Annotated[str, typer.Option("--metrics-addr", help="address for --metrics-port")] = "127.0.0.1",
    log_json: Annotated[
        bool, typer.Option("--log-json", help="log one JSON object per line (with item and delivery ids) to stderr")
    ] = False,
) -> None:
    """The worker: publishes due deliveries, retries, and runs the periodic jobs (weekly sync)."""
    from publisher.metrics import WorkerMetrics, serve, use_json_logs
    from publisher.pipeline.worker import Dispatcher
    from publisher.scheduler import Clock

    if log_json:
        use_json_logs()
    a = state.app()
    a.require_channels(paused=False)  # a channel's secret is checked by what uses it: here, before any claim
    wm = WorkerMetrics()
    d = Dispatcher(engine=a.engine, ctx=a.ctx, threads=threads, on_outcome=wm.on_outcome, on_start=wm.on_start)
    metrics_server = serve(a.engine, wm, metrics_port, metrics_addr) if metrics_port is not None else None
    if metrics_server is not None:
        err.print(f"metrics on http://{metrics_addr}:{metrics_server.port}/metrics")
    if once:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with a.engine.connect() as conn:
            import sqlalchemy as sa

            due = conn.execute(
                sa.select(sa.func.count())
                .select_from(Delivery.__table__)
                .where(  # type: ignore[attr-defined]
                    Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.WAITING, DeliveryStatus.CLAIMED]),  # type: ignore[attr-defined]
                    Delivery.due_at <= datetime.now(a.settings.zone),  # type: ignore[operator]
                )
            ).scalar_one()
        with Progress(
            TextColumn("delivering"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=not sys.stderr.isatty(),
            disable=not sys.stderr.isatty(),
        ) as bar:
            task = bar.add_task("deliver", total=due or None)
            summary = d.run(once=True, progress=lambda _o: bar.advance(task))
        parts = ", ".join(f"{k} {v}" for k, v in sorted(summary.outcomes.items())) or "nothing was due"
        out.print(f"worker {d.worker_id}: {parts}")
        if metrics_server is not None:
            metrics_server.close()
        a.close()
        return
    clock = Clock(a, wake=d.wake, owner=d.worker_id)
    clock.start()
    out.print(
        f"worker {d.worker_id} running with {d.threads} threads on {a.engine.url.render_as_string()}; Ctrl-C stops it"
    )
    import signal

    signal.signal(signal.SIGTERM, lambda *_: d.stop.set())
    try:
        d.run()
    except KeyboardInterrupt:
        d.stop.set()
    finally:
        clock.stop()
        if metrics_server is not None:
            metrics_server.close()
        a.close()


@app.command()
def doctor() -> None:
    """Check the database, the migrations, each channel's settings and credentials, and the clock."""
    from publisher.doctor import run_checks

    checks = run_checks(state.settings_path)
    table = Table("check", "", "detail", show_lines=False)
    for c in checks:
        mark = "ok" if c.ok and not c.warning else ("warn" if c.ok else "FAIL")
        table.add_row(c.name, mark, c.detail)
    out.print(table)
    failed = [c.name for c in checks if not c.ok]
    if failed:
        err.print(f"{len(failed)} check(s) failed: {', '.join(failed)}")
        raise typer.Exit(1)


# ------------------------------------------------------------------------------------------- stats
@app.command("stats")
def stats_cmd(
    from_: Annotated[str | None, typer.Option("--from", help="first day, YYYY-MM-DD (default 1 January)")] = None,
    to: Annotated[str | None, typer.Option("--to", help="last day, YYYY-MM-DD (default today)")] = None,
    by: Annotated[str, typer.Option(help=f"comma-separated: {', '.join(periods.DIMENSIONS)}")] = "channel",
    fmt: Annotated[str, typer.Option("--format", help="table | csv | json")] = "table",
) -> None:
    """Per-channel counts: published (and distinct items), failed and pending, by any dimensions."""
    a = state.app()
    start, end = periods.period(from_, to, a.settings.zone)
    dims = tuple(x.strip() for x in by.split(",") if x.strip())
    rows = stats.counts(a.engine, stats.StatsQuery(start=start, end=end, by=dims, tz=a.settings.zone))
    if fmt != "table":
        out.print(stats.render(rows, dims, fmt), end="" if fmt == "csv" else "\n")
        return
    t = Table(
        *dims,
        "published",
        "items",
        "failed",
        "pending",
        title=f"{start.date()} – {(end.date() - __import__('datetime').timedelta(days=1))} ({a.settings.timezone})",
    )
    for r in rows:
        t.add_row(*(str(r[k]) for k in dims), str(r["published"]), str(r["items"]), str(r["failed"]), str(r["pending"]))
    if not rows:
        t.caption = "nothing published, failed or pending in this period"
    out.print(t)


# ---------------------------------------------------------------------------------------- channels
@app.command()
def channels(
    check: Annotated[bool, typer.Option(help="check credentials and quota of each configured channel")] = True,
) -> None:
    """List installed channel types and configured channels; check each without publishing."""
    from publisher.channel import available_channel_types

    a = state.app()
    types = available_channel_types()
    t = Table("channel", "type", "state", "check")
    bad = False
    for name, spec in a.channels.items():
        st = "paused" if spec.paused else ("disabled" if not spec.enabled else "active")
        if check:
            try:
                h = spec.channel.check_health()
                note = ("ok" if h.ok else "FAILED") + (f": {h.detail}" if h.detail else "")
                if h.warnings:
                    note += " (" + "; ".join(h.warnings) + ")"
                bad |= not h.ok
            except PublisherError as exc:
                note, bad = f"FAILED: {exc}", True
        else:
            note = "-"
        t.add_row(name, spec.type_name, st, note)
    out.print(t)
    out.print("installed types: " + ", ".join(sorted(types)))
    if bad:
        raise typer.Exit(1)


@app.command("checklist")
def checklist_cmd(
    search: Annotated[str | None, typer.Argument(help="show only items whose name contains this")] = None,
) -> None:
    """The 50 items of the national disclosure checklist (高等学校信息公开事项清单)."""
    from publisher.checklist import checklist

    for n, c in checklist().items():
        if search is None or search in c.name or search in c.category:
            out.print(f"{n:>2}  [{c.category}] {c.name}")


# ------------------------------------------------------------------------------------------ manual
@manual_app.command("list")
def manual_list() -> None:
    """Deliveries waiting to be posted by hand, oldest first (overdue ones flagged)."""
    from sqlmodel import col, select

    a = state.app()
    manual = [n for n, sp in a.channels.items() if sp.channel.manual]
    t = Table("delivery", "item", "channel", "due", "title", "note")
    with a.session() as s:
        q = (
            select(Delivery, Item)
            .join(Item, col(Item.id) == Delivery.item_id)
            .where(
                col(Delivery.channel).in_(manual),
                col(Delivery.status).in_([DeliveryStatus.WAITING, DeliveryStatus.PENDING]),
            )
            .order_by(Delivery.due_at)
        )
        now = datetime.now(a.settings.zone)
        for d, i in s.exec(q):
            # a waiting delivery's due_at is the next reminder, not when it fell due: show the latter
            since = d.state.get("waiting_since")
            due = datetime.fromisoformat(since) if since else d.due_at
            note = d.note or ""
            if d.status == DeliveryStatus.PENDING and d.due_at > now:
                note = "not due yet: do not post before this time"
            t.add_row(str(d.id), str(i.id), d.channel, _show_time(a, due), i.title, note)
    out.print(t)


@manual_app.command("show")
def manual_show(delivery_id: int) -> None:
    """Print what a person needs to post one delivery by hand: text, summary, files to upload."""
    a = state.app()
    with a.session() as s:
        d = s.get(Delivery, delivery_id)
        if d is None:
            raise PublisherError(f"no delivery {delivery_id}")
        spec = a.channels.get(d.channel)
        kit = spec.channel.copy_kit(workflow.build_post(a.ctx, s, workflow.get_item(s, d.item_id))) if spec else None
    if kit is None:
        raise PublisherError(f"delivery {delivery_id} is on {d.channel}, which is not posted by hand")
    out.print(kit, markup=False)
    out.print(f"\nthen: publisher manual record {delivery_id} URL   (or --not-applicable REASON)")


@manual_app.command("record")
def manual_record(
    delivery_id: int,
    url: Annotated[str | None, typer.Argument(help="where it was published")] = None,
    not_applicable: Annotated[str | None, typer.Option("--not-applicable", help="reason it does not apply")] = None,
    as_user: Annotated[str, typer.Option("--as", help="who posted it")] = "cli",
) -> None:
    """Record that a person posted the item (its URL), so it counts like any other channel."""
    a = state.app()
    with a.session() as s:
        d = workflow.record_manual(
            a.ctx, s, delivery_id=delivery_id, actor=as_user, url=url, not_applicable=not_applicable
        )
    out.print(f"delivery {d.id} on {d.channel} recorded" + (f": {d.url}" if d.url else f" ({d.note})"))


# ------------------------------------------------------------------- ledger, sync, coverage, registers, report
coverage_app = typer.Typer(
    help="Checklist coverage (50 items) and per-department timeliness.", invoke_without_command=True
)
request_app = typer.Typer(help="The register of requests for disclosure (依申请公开).", no_args_is_help=True)
complaint_app = typer.Typer(help="The register of complaints and reports (举报/投诉).", no_args_is_help=True)
report_app = typer.Typer(help="The annual information-disclosure report (信息公开年度报告).", no_args_is_help=True)
app.add_typer(coverage_app, name="coverage")
app.add_typer(request_app, name="request")
app.add_typer(complaint_app, name="complaint")
app.add_typer(report_app, name="report")


@app.command("import")
def import_cmd(
    file: Annotated[
        Path, typer.Argument(help="CSV: title,category,department,channel,published_at,url[,checklist_item]")
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="check every row and say what would be added")] = False,
    encoding: Annotated[str | None, typer.Option(help="the file's encoding when not UTF-8 or GBK")] = None,
    create_departments: Annotated[bool, typer.Option(help="add departments the file names but we lack")] = False,
    as_user: Annotated[str, typer.Option("--as", help="who is recording these")] = "cli",
) -> None:
    """Record publications made elsewhere (by hand, or before this system): all rows or none."""
    from publisher.counting import ledger

    a = state.app()
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise PublisherError(f"cannot read {file}: {exc.strerror}") from exc
    with a.session() as s:
        r = ledger.import_csv(
            a.ctx,
            s,
            data=data,
            source=file.name,
            actor=as_user,
            dry_run=dry_run,
            encoding=encoding,
            create_departments=create_departments,
        )
        if dry_run:
            s.rollback()
    verb = "would add" if dry_run else "added"
    note = f" (read as {r.encoding})" if r.encoding != "utf-8" else ""
    out.print(
        f"{file.name}{note}: {r.rows} rows; {verb} {r.items_added} items and {r.publications_added} "
        f"publications; {r.already_present} already recorded"
    )
    if r.departments_added:
        out.print(f"departments {verb}: {', '.join(r.departments_added)}")


@app.command("export")
def export_cmd(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="file to write (default: stdout)")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="first day, YYYY-MM-DD")] = None,
    to: Annotated[str | None, typer.Option("--to", help="last day, YYYY-MM-DD")] = None,
) -> None:
    """Every publication, in the import format (UTF-8 with BOM, opens in Excel)."""
    from publisher.counting import ledger

    a = state.app()
    start = end = None
    if from_ or to:
        start, end = periods.period(from_ or "2000-01-01", to, a.settings.zone)
    text = ledger.export_csv(a.engine, a.settings.zone, start=start, end=end)
    if output is None:
        sys.stdout.write(text.lstrip("\ufeff"))
    else:
        output.write_text(text, encoding="utf-8", newline="")
        out.print(f"wrote {output} ({text.count(chr(10)) - 1} publications)")


@app.command("sync")
def sync_cmd(
    show: Annotated[bool, typer.Option(help="only show the last sync and the pages found taken down")] = False,
) -> None:
    """Pull engagement figures, check every published URL, pick up posts made outside the pipeline."""
    from rich.progress import Progress

    from publisher.counting import sync

    a = state.app()
    if not show:
        a.require_channels()
        with Progress(console=err, transient=True) as bar:
            tasks: dict[str, Any] = {}

            def progress(label: str, done: int, total: int) -> None:
                if label not in tasks:
                    tasks[label] = bar.add_task(label, total=total)
                bar.update(tasks[label], completed=done, total=total)

            summary = sync.run_sync(a, actor="cli", progress=progress)
        t = Table(
            "channel",
            "stats changed",
            "links checked",
            "taken down",
            "restored",
            "found",
            "errors",
            title=f"sync run {summary.run_id}",
        )
        for c in summary.channels.values():
            t.add_row(
                c.channel,
                str(c.stats_changed),
                str(c.links_checked),
                str(len(c.taken_down)),
                str(len(c.restored)),
                str(len(c.remote_added)),
                "; ".join(c.errors) or "-",
            )
        out.print(t)
        out.print("changed: " + ("yes" if summary.changed else "nothing"))
    last = sync.latest_sync(a)
    if last is not None and show:
        out.print(
            f"last sync {last.id} at {_show_time(a, last.started_at)}: {last.taken_down} taken down, "
            f"{last.restored} restored, {last.remote_added} found, {last.errors} errors"
        )
    down = sync.taken_down(a)
    if down:
        t = Table("delivery", "item", "channel", "taken down", "url", title="pages that no longer answer")
        for d in down:
            t.add_row(str(d.id), str(d.item_id), d.channel, _show_time(a, d.taken_down_at), d.url or "")
        out.print(t)


@coverage_app.callback()
def coverage_cmd(
    ctx: typer.Context,
    from_: Annotated[str | None, typer.Option("--from", help="timeliness period start, YYYY-MM-DD")] = None,
    to: Annotated[str | None, typer.Option("--to", help="timeliness period end, YYYY-MM-DD")] = None,
) -> None:
    """Each checklist item: latest publication, where, and current / stale / never; then timeliness."""
    if ctx.invoked_subcommand is not None:
        return
    from publisher.counting import coverage
    from publisher.counting.workdays import Calendar

    a = state.app()
    t = Table("#", "checklist item", "rule", "status", "latest", "where")
    for c in coverage.coverage(a.engine, a.settings):
        where = ", ".join(ch + (f" {u}" if u else "") for ch, u in c.places)
        t.add_row(str(c.number), c.name[:40], c.rule, c.status, _show_time(a, c.latest_at), where)
    out.print(t)
    start, end = periods.period(from_, to, a.settings.zone)
    cal = Calendar()
    rows = coverage.timeliness(a.engine, a.settings, start, end, cal)
    limit = a.settings.report.timeliness_working_days
    t = Table(
        "department",
        "items",
        "on time",
        "late",
        "median",
        "max",
        title=f"creation → publication, Chinese working days (limit {limit})",
    )
    for r in rows:
        t.add_row(r.department, str(r.items), str(r.on_time), str(r.late), f"{r.median_days:g}", str(r.max_days))
    if not rows:
        t.caption = "no pipeline items published in this period"
    out.print(t)
    if cal.note:
        err.print("note: " + cal.note)


@coverage_app.command("rule")
def coverage_rule(
    number: Annotated[int, typer.Argument(help="checklist item, 1-50")],
    rule: Annotated[str, typer.Argument(help="annual | semester | quarterly | monthly | on_change")],
    as_user: Annotated[str, typer.Option("--as")] = "cli",
) -> None:
    """Set how often checklist item N must be republished to stay current."""
    from publisher.counting import coverage

    a = state.app()
    with a.session() as s:
        r = coverage.set_rule(s, number=number, rule=rule, actor=as_user)
    out.print(f"checklist item {r.number}: {r.rule}")


def _show_day(d: Any) -> str:
    return d.isoformat() if d else "-"


@request_app.command("add")
def request_add(
    applicant: Annotated[str, typer.Option(help="who asked")],
    subject: Annotated[str, typer.Option(help="what was asked")],
    via: Annotated[str, typer.Option(help="letter | email | web | in_person | phone | fax | other")],
    received: Annotated[str | None, typer.Option(help="when, YYYY-MM-DD [HH:MM] office time (default now)")] = None,
    as_user: Annotated[str, typer.Option("--as")] = "cli",
) -> None:
    """Record a request for disclosure; its deadline is 15 working days after receipt."""
    from publisher.counting import registers

    a = state.app()
    with a.session() as s:
        r = registers.add_request(
            s, a.settings, applicant=applicant, subject=subject, via=via, received=received, actor=as_user
        )
    out.print(f"request {r.id} recorded; answer due by {r.due_on}")


@request_app.command("extend")
def request_extend(
    request_id: int,
    reason: Annotated[str, typer.Option(help="why more time is needed (tell the applicant)")],
    days: Annotated[int | None, typer.Option(help="working days (default the most allowed, 15)")] = None,
    as_user: Annotated[str, typer.Option("--as")] = "cli",
) -> None:
    """The one extension allowed."""
    from publisher.counting import registers

    a = state.app()
    with a.session() as s:
        r = registers.extend_request(s, a.settings, request_id=request_id, reason=reason, days=days, actor=as_user)
    out.print(f"request {r.id} extended; answer due by {r.due_on}")


@request_app.command("close")
def request_close(
    request_id: int,
    outcome: Annotated[str, typer.Option(help="disclosed | partly | not_disclosed | not_held")],
    reason: Annotated[
        str | None,
        typer.Option(
            help="legal reason when not (wholly) disclosed: state_secret | trade_secret | privacy | other_law | text"
        ),
    ] = None,
    note: Annotated[str | None, typer.Option(help="anything else worth keeping")] = None,
    answered: Annotated[str | None, typer.Option(help="when answered, YYYY-MM-DD [HH:MM] (default now)")] = None,
    as_user: Annotated[str, typer.Option("--as")] = "cli",
) -> None:
    """Record the answer."""
    from publisher.counting import registers

    a = state.app()
    with a.session() as s:
        r = registers.close_request(
            s,
            a.settings,
            request_id=request_id,
            outcome=outcome,
            legal_reason=reason,
            note=note,
            answered=answered,
            actor=as_user,
        )
    late = r.answered_at is not None and r.answered_at.astimezone(a.settings.zone).date() > r.due_on
    out.print(f"request {r.id} closed: {r.outcome}" + (" (answered after the deadline)" if late else ""))


@request_app.command("list")
def request_list(open_only: Annotated[bool, typer.Option("--open", help="only unanswered ones")] = False) -> None:
    """Requests, with deadlines and overdue warnings."""
    from publisher.counting import registers

    a = state.app()
    t = Table("#", "received", "applicant", "via", "subject", "due", "outcome")
    overdue = 0
    with a.session() as s:
        for r in registers.list_requests(s, open_only=open_only):
            dl = registers.deadline_state(r.due_on, a.settings)
            flag = ""
            if r.outcome == "open":
                flag = " OVERDUE" if dl.overdue else f" ({dl.working_days_left} working days left)"
                overdue += dl.overdue
            t.add_row(
                str(r.id),
                _show_time(a, r.received_at),
                r.applicant,
                r.via,
                r.subject[:40],
                _show_day(r.due_on) + (" ext." if r.extended else "") + flag,
                r.outcome,
            )
    out.print(t)
    if overdue:
        err.print(f"warning: {overdue} request(s) past their deadline")


@complaint_app.command("add")
def complaint_add(
    complainant: Annotated[str, typer.Option(help="who complained")],
    subject: Annotated[str, typer.Option(help="what about")],
    via: Annotated[str, typer.Option(help="letter | email | web | in_person | phone | fax | other")],
    received: Annotated[str | None, typer.Option(help="when, YYYY-MM-DD [HH:MM] (default now)")] = None,
    as_user: Annotated[str, typer.Option("--as")] = "cli",
) -> None:
    """Record a complaint or report about the disclosure work."""
    from publisher.counting import registers

    a = state.app()
    with a.session() as s:
        c = registers.add_complaint(
            s, a.settings, complainant=complainant, subject=subject, via=via, received=received, actor=as_user
        )
    out.print(f"complaint {c.id} recorded; settle by {c.due_on}")


@complaint_app.command("close")
def complaint_close(
    complaint_id: int,
    outcome: Annotated[str, typer.Option(help="upheld | partly_upheld | rejected")],
    resolution: Annotated[str, typer.Option(help="how it was settled")],
    closed: Annotated[str | None, typer.Option(help="when, YYYY-MM-DD [HH:MM] (default now)")] = None,
    as_user: Annotated[str, typer.Option("--as")] = "cli",
) -> None:
    """Record how a complaint was settled."""
    from publisher.counting import registers

    a = state.app()
    with a.session() as s:
        c = registers.close_complaint(
            s,
            a.settings,
            complaint_id=complaint_id,
            outcome=outcome,
            resolution=resolution,
            closed=closed,
            actor=as_user,
        )
    out.print(f"complaint {c.id} closed: {c.outcome}")


@complaint_app.command("list")
def complaint_list(open_only: Annotated[bool, typer.Option("--open", help="only open ones")] = False) -> None:
    """Complaints, with deadlines and overdue warnings."""
    from publisher.counting import registers

    a = state.app()
    t = Table("#", "received", "complainant", "via", "subject", "due", "outcome")
    overdue = 0
    with a.session() as s:
        for c in registers.list_complaints(s, open_only=open_only):
            dl = registers.deadline_state(c.due_on, a.settings)
            flag = " OVERDUE" if c.outcome == "open" and dl.overdue else ""
            overdue += bool(flag)
            t.add_row(
                str(c.id),
                _show_time(a, c.received_at),
                c.complainant,
                c.via,
                c.subject[:40],
                _show_day(c.due_on) + flag,
                c.outcome,
            )
    out.print(t)
    if overdue:
        err.print(f"warning: {overdue} complaint(s) past their deadline")


def _labels(a: App) -> dict[str, str]:
    return {n: sp.label for n, sp in a.channels.items()}


@report_app.command("annual")
def report_annual(
    from_: Annotated[str, typer.Option("--from", help="first day of the period, YYYY-MM-DD")],
    to: Annotated[str, typer.Option("--to", help="last day of the period, YYYY-MM-DD")],
    output: Annotated[Path, typer.Option("-o", "--output", help="file to write")],
    fmt: Annotated[str, typer.Option("--format", help="md | docx")] = "docx",
    template: Annotated[Path | None, typer.Option(help="the office's edited template (Jinja2)")] = None,
) -> None:
    """Write the annual report; every figure from the ledger, listed row by row in FILE.figures.csv."""
    from publisher.counting import report

    a = state.app()
    rep = report.build(a.engine, a.settings, start=from_, end=to, channel_labels=_labels(a))
    path, csv_path = report.write_report(
        rep, a.settings, fmt=fmt, out=output, template=report.load_template(a.settings, template)
    )
    for w in rep.warnings:
        err.print(f"warning: {w}")
    f = rep.figures
    out.print(f"wrote {path} and {csv_path}")
    out.print(
        f"site items {f['site_items'].value} (rules {f['site_rules'].value}, recruitment "
        f"{f['site_recruitment'].value}, announcements {f['site_announcements'].value}); WeChat "
        f"{f['wechat_posts'].value}; media {f['media_items'].value}; journal {f['journal_issues'].value}; "
        f"tenders {f['tenders'].value}; requests {f['requests_received'].value}; complaints "
        f"{f['complaints_received'].value}"
    )


@report_app.command("explain")
def report_explain(
    figure: Annotated[
        str | None, typer.Argument(help="e.g. site_items, wechat_posts, channel:website (none: list)")
    ] = None,
    from_: Annotated[str | None, typer.Option("--from", help="first day, YYYY-MM-DD")] = None,
    to: Annotated[str | None, typer.Option("--to", help="last day, YYYY-MM-DD")] = None,
) -> None:
    """The ledger rows behind a figure of the report (CSV on stdout)."""
    from publisher.counting import report

    a = state.app()
    rep = report.build(
        a.engine,
        a.settings,
        start=from_ or f"{datetime.now(a.settings.zone).year}-01-01",
        end=to or datetime.now(a.settings.zone).date().isoformat(),
        channel_labels=_labels(a),
    )
    if figure is None:
        for k, f in rep.figures.items():
            out.print(f"{k:<28} {f.value:>6}  {f.label}")
        return
    if figure not in rep.figures:
        raise PublisherError(f"no figure {figure!r}; run `publisher report explain` to list them")
    sys.stdout.write(report.figures_csv(rep, a.settings, keys=[figure]).lstrip("\ufeff"))


@report_app.command("template")
def report_template(
    output: Annotated[Path, typer.Option("-o", "--output", help="where to write the template to edit")],
) -> None:
    """Write the shipped report template (last year's text) for the office to edit."""
    from publisher.counting import report

    output.write_text(report.default_template(), encoding="utf-8")
    out.print(f'wrote {output}; set [report] template = "{output}" in settings.toml or pass --template')


# ------------------------------------------------------------------------------------------ serve
@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
) -> None:
    """Serve the web workspace, the JSON API (/api/docs) and the generated website (/site/)."""
    from publisher.web import serve as _serve

    _serve(state.app(), host=host, port=port)


@app.command()
def demo(
    items: Annotated[int, typer.Option(help="how many sample items")] = 6,
) -> None:
    """Show the whole job in this folder with no credentials: sample items, two reviews, publishing to
    the website and sandbox copies of the other channels, then the per-channel counts."""
    from publisher.demo import run_demo

    run_demo(state.settings_path, items=items, console=out)


# typer >= 0.2x carries its own copy of click: its usage error class is reached through a public name
UsageError: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def _placeholder(param: Any) -> str:
    """What a value is called in a usage line: ITEM_ID, FILE; --as USER (``as_user``), --role ROLE."""
    name = param.name.removeprefix("as_") if param.param_type_name == "option" else param.name
    return name.strip("_").upper()


def _spelled(param: Any) -> str:
    if param.param_type_name != "option":
        return _placeholder(param) + ("..." if param.nargs == -1 else "")
    flag = max(param.opts, key=len)
    return flag if getattr(param, "is_flag", False) else f"{flag} {_placeholder(param)}"


def _synopsis(command: Any, path: str) -> str:
    """``publisher submit ITEM_ID --as USER``: the command with what it needs, [OPTIONS] if it takes more."""
    if hasattr(command, "commands"):
        return f"{path} COMMAND ... ({path} --help lists the commands)"
    params = [
        p for p in command.get_params(typer.Context(command)) if p.name != "help" and not getattr(p, "hidden", False)
    ]
    needed = [_spelled(p) if p.required else f"[{_spelled(p)}]" for p in params if p.param_type_name != "option"]
    needed += [_spelled(p) for p in params if p.param_type_name == "option" and p.required]
    more = any(p.param_type_name == "option" and not p.required for p in params)
    return " ".join([path, *needed] + (["[OPTIONS]"] if more else []))


def _where(ctx: Any, argv: list[str]) -> tuple[Any, str]:
    """The command the error is about and how a user types it (``publisher item show``, however it was run).

    click names no command for an option missing its value (``--status`` at the end): that one is found
    by following the command names in ARGV.
    """
    if ctx is not None:
        command, names = ctx.command, []
        while ctx.parent is not None:  # the root's own name is how python was started: left out
            names.insert(0, ctx.info_name)
            ctx = ctx.parent
        return command, " ".join(["publisher", *names])
    command, path = typer.main.get_command(app), ["publisher"]
    for word in argv:
        sub = getattr(command, "commands", {}).get(word)
        if sub is not None:
            command, path = sub, [*path, word]
    return command, " ".join(path)


def _wants_number(param: Any) -> bool:
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)  # typer's own click
    return annotation is int or getattr(getattr(param, "type", None), "name", "") == "integer"  # click's


def usage_error_line(exc: Any, argv: list[str]) -> str:
    """click's usage error (missing argument, bad value, unknown option or command) as one line:
    what is wrong, then how the command is called."""
    param = getattr(exc, "param", None)
    label = (_spelled(param) if param.param_type_name == "option" else _placeholder(param)) if param else ""
    message = " ".join(exc.format_message().split()).rstrip(".")
    if param is not None and type(exc).__name__ == "MissingParameter":
        what = f"missing {param.param_type_name} {label}"
    elif param is not None and _wants_number(param):
        what = f"{label.split()[0]} must be a whole number, such as 7"
    elif param is not None:
        what = f"{label}: {message[:1].lower()}{message[1:]}"
    elif (option := getattr(exc, "option_name", None)) and type(exc).__name__ == "NoSuchOption":
        what = f"no such option {option}"
        if hints := getattr(exc, "possibilities", None):
            what += f" (did you mean {' or '.join(sorted(hints))}?)"
    elif option and "requires an argument" in message:
        what = f"option {option} needs a value"
    else:
        what = message[:1].lower() + message[1:]
    return f"error: {what} — usage: {_synopsis(*_where(exc.ctx, argv))}"


def _failure_line(exc: BaseException) -> str:
    """An unexpected database or system failure, without the statement and parameters."""
    orig = getattr(exc, "orig", None)
    if orig is not None:
        return f"the database refused: {type(orig).__name__}: {(str(orig).strip().splitlines() or [''])[0][:300]}"
    if isinstance(exc, OSError):
        return f"the system refused: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    return str(exc)


def main() -> None:
    try:
        # not standalone: click's usage errors come here instead of being printed as its usage box
        code = app(standalone_mode=False)
    except UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `publisher item` alone: the group's help, as before
            exc.show()  # type: ignore[attr-defined]
        else:
            err.print(usage_error_line(exc, sys.argv[1:]), markup=False)
        sys.exit(exc.exit_code)  # type: ignore[attr-defined]
    except typer.Abort:
        err.print("Aborted!", markup=False)
        sys.exit(1)
    except PublisherError as exc:
        # one line, whatever the message holds: scripts and people read the first line only
        err.print("error: " + " ".join(str(exc).split()), markup=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except (OSError, sa_exc.DBAPIError) as exc:
        # the store or the disk failed: one line, never SQLAlchemy's, which quotes the item's text
        from publisher.db import explain_store_error

        explained = explain_store_error(exc, state._app.engine.url if state._app is not None else None)
        if explained is None:
            explained = PublisherError(_failure_line(exc))
        err.print("error: " + " ".join(str(explained).split()), markup=False)
        sys.exit(1)
    finally:
        # give pooled connections back before exit: on an error path nothing else closes them
        if state._app is not None:
            state._app.close()
            state._app = None
    # commands return None; outside standalone mode click hands back typer.Exit's code (and --help's 0)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
