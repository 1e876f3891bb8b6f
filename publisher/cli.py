"""The ``publisher`` command: a thin face over the service functions in publisher.workflow & co.

Every command that changes something is one transaction: it either happens whole or, on an error,
prints one line saying what is wrong and exits non-zero with the store unchanged.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from publisher import content, stats, workflow
from publisher.app import App, open_app
from publisher.errors import PublisherError
from publisher.models import Delivery, DeliveryStatus, Item, ItemStatus, Role, User

app = typer.Typer(
    help="Publish approved items to the website, WeChat and every other channel, and count them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
user_app = typer.Typer(help="Manage users and their roles.", no_args_is_help=True)
item_app = typer.Typer(help="Write, list and show items.", no_args_is_help=True)
review_app = typer.Typer(help="First review (department head) and 保密审查 (confidentiality review).",
                         no_args_is_help=True)  # fmt: skip
dept_app = typer.Typer(help="Manage departments.", no_args_is_help=True)
manual_app = typer.Typer(help="The to-post-by-hand queue for places with no API.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(item_app, name="item")
app.add_typer(review_app, name="review")
app.add_typer(dept_app, name="department")
app.add_typer(manual_app, name="manual")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


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
        Path | None, typer.Option("--settings", help="settings file (default ./settings.toml or $PUBLISHER_SETTINGS)")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log what the worker does")] = False,
) -> None:
    state.settings_path = settings
    state._app = None
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip


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
        workflow.add_department(s, name, actor="cli")
    out.print(f"department {name} added")


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


# ------------------------------------------------------------------------------------------- items
def _item_dict(a: App, s: Any, item: Item, full: bool = False) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": item.id, "title": item.title, "status": item.status, "category": item.category,
        "department": item.department, "checklist_item": item.checklist_item, "channels": item.channels,
        "version": item.version,
        "publish_at": item.publish_at.isoformat() if item.publish_at else None,
    }  # fmt: skip
    if full:
        from sqlmodel import select

        from publisher.models import AuditLog, DeliveryAttempt, Review

        d["summary"] = item.summary
        d["return_reason"] = item.return_reason
        d["reviews"] = [
            {"level": r.level, "reviewer": s.get(User, r.reviewer_id).name, "approved": r.approved,
             "reason": r.reason, "version": r.item_version, "at": r.at.isoformat()}
            for r in s.exec(select(Review).where(Review.item_id == item.id).order_by(Review.id))
        ]  # fmt: skip
        d["deliveries"] = []
        for dl in s.exec(select(Delivery).where(Delivery.item_id == item.id).order_by(Delivery.id)):
            attempts = s.exec(select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == dl.id)
                              .order_by(DeliveryAttempt.id)).all()  # fmt: skip
            d["deliveries"].append({
                "id": dl.id, "channel": dl.channel, "op": dl.op, "status": dl.status, "url": dl.url,
                "due_at": dl.due_at.isoformat(), "attempts": dl.attempts,
                "published_at": dl.published_at.isoformat() if dl.published_at else None,
                "last_error": dl.last_error, "last_error_kind": dl.last_error_kind, "note": dl.note,
                "history": [{"n": x.number, "outcome": x.outcome, "message": x.message,
                             "at": x.finished_at.isoformat()} for x in attempts],
            })  # fmt: skip
        d["audit"] = [
            {"at": x.at.isoformat(), "actor": x.actor, "action": x.action, "from": x.from_state,
             "to": x.to_state, "reason": x.reason}
            for x in s.exec(select(AuditLog).where(AuditLog.entity == "item", AuditLog.entity_id == item.id)
                            .order_by(AuditLog.id))
        ]  # fmt: skip
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
            file, media_dir=a.settings.media_dir, max_body_bytes=a.settings.review.max_body_bytes,
            max_asset_bytes=a.settings.review.max_asset_bytes,
        )  # fmt: skip
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
            file, media_dir=a.settings.media_dir, max_body_bytes=a.settings.review.max_body_bytes,
            max_asset_bytes=a.settings.review.max_asset_bytes,
        )  # fmt: skip
        item = workflow.edit_item(a.ctx, s, item_id=item_id, actor=user, changes={**draft.fields, "title": draft.title},
                                  body_markdown=draft.body_markdown, new_assets=draft.assets)  # fmt: skip
    out.print(f"item {item.id} is now version {item.version}, {item.status}")


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
        t.add_row(str(i["id"]), i["status"], i["category"], i["department"], _show_time(a, at),
                  ",".join(i["channels"]), i["title"])  # fmt: skip
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
    out.print(f"[bold]{d['id']}  {d['title']}[/bold]")
    out.print(f"{d['status']} · {d['category']} · {d['department']} · version {d['version']}"
              + (f" · checklist {d['checklist_item']}" if d["checklist_item"] else ""))  # fmt: skip
    if d["return_reason"]:
        out.print(f"returned: {d['return_reason']}")
    for r in d["reviews"]:
        out.print(f"review L{r['level']} v{r['version']}: {'approved' if r['approved'] else 'rejected'} by "
                  f"{r['reviewer']}" + (f" — {r['reason']}" if r["reason"] else ""))  # fmt: skip
    if d["deliveries"]:
        t = Table("delivery", "channel", "op", "status", "attempts", "url / reason")
        for x in d["deliveries"]:
            t.add_row(str(x["id"]), x["channel"], x["op"], x["status"], str(x["attempts"]),
                      x["url"] or x["last_error"] or x["note"] or "")  # fmt: skip
        out.print(t)


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
        item = workflow.review(a.ctx, s, item_id=item_id, actor=workflow.get_user(s, as_user), approve=approve,
                               reason=reason)  # fmt: skip
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
    out.print(f"item {item.id} {item.status}, publish at {_show_time(a, item.publish_at)} ({a.settings.timezone})")


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
    out.print(f"item {item.id} withdrawn; run the worker to take it down from the channels")


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
            {"id": d.id, "item_id": d.item_id, "channel": d.channel, "op": d.op, "status": d.status,
             "due_at": d.due_at.isoformat(), "attempts": d.attempts, "url": d.url, "last_error": d.last_error,
             "note": d.note}
            for d in s.exec(q)
        ]  # fmt: skip
    if as_json:
        out.print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    t = Table("id", "item", "channel", "op", "status", "due", "tries", "url / reason")
    for r in rows:
        t.add_row(str(r["id"]), str(r["item_id"]), r["channel"], r["op"], r["status"],
                  _show_time(a, datetime.fromisoformat(r["due_at"])), str(r["attempts"]),
                  r["url"] or r["last_error"] or r["note"] or "")  # fmt: skip
    out.print(t)


# ------------------------------------------------------------------------------------------ worker
@app.command()
def run(
    once: Annotated[bool, typer.Option("--once", help="deliver all that is due, then exit")] = False,
    threads: Annotated[int | None, typer.Option(help="delivery threads (default: worker.threads)")] = None,
    metrics_port: Annotated[int | None, typer.Option("--metrics-port",
                                                     help="serve Prometheus /metrics on this port")] = None,
    metrics_addr: Annotated[str, typer.Option("--metrics-addr", help="address for --metrics-port")] = "127.0.0.1",
    log_json: Annotated[bool, typer.Option("--log-json", help="log one JSON object per line (with item and "
                                                              "delivery ids) to stderr")] = False,
) -> None:
    """The worker: publishes due deliveries, retries, and runs the periodic jobs (weekly sync)."""
    from publisher.dispatch import Dispatcher
    from publisher.metrics import WorkerMetrics, serve, use_json_logs
    from publisher.scheduler import Clock

    if log_json:
        use_json_logs()
    a = state.app()
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
                sa.select(sa.func.count()).select_from(Delivery.__table__).where(  # type: ignore[attr-defined]
                    Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.WAITING, DeliveryStatus.CLAIMED]),  # type: ignore[attr-defined]
                    Delivery.due_at <= datetime.now(a.settings.zone),  # type: ignore[operator]
                )
            ).scalar_one()
        with Progress(TextColumn("delivering"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err, transient=not sys.stderr.isatty(), disable=not sys.stderr.isatty()) as bar:  # fmt: skip
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
    out.print(f"worker {d.worker_id} running with {d.threads} threads on {a.engine.url.render_as_string()}; "
              "Ctrl-C stops it")  # fmt: skip
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
    by: Annotated[str, typer.Option(help=f"comma-separated: {', '.join(stats.DIMENSIONS)}")] = "channel",
    fmt: Annotated[str, typer.Option("--format", help="table | csv | json")] = "table",
) -> None:
    """Per-channel counts: published (and distinct items), failed and pending, by any dimensions."""
    a = state.app()
    start, end = stats.period(from_, to, a.settings.zone)
    dims = tuple(x.strip() for x in by.split(",") if x.strip())
    rows = stats.counts(a.engine, stats.StatsQuery(start=start, end=end, by=dims, tz=a.settings.zone))
    if fmt != "table":
        out.print(stats.render(rows, dims, fmt), end="" if fmt == "csv" else "\n")
        return
    t = Table(*dims, "published", "items", "failed", "pending",
              title=f"{start.date()} – {(end.date() - __import__('datetime').timedelta(days=1))} ({a.settings.timezone})")  # fmt: skip
    for r in rows:
        t.add_row(*(str(r[k]) for k in dims), str(r["published"]), str(r["items"]), str(r["failed"]),
                  str(r["pending"]))  # fmt: skip
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
    t = Table("delivery", "item", "channel", "due", "title")
    now = datetime.now(a.settings.zone)
    with a.session() as s:
        q = (select(Delivery, Item).join(Item, col(Item.id) == Delivery.item_id)
             .where(col(Delivery.channel).in_(manual),
                    col(Delivery.status).in_([DeliveryStatus.WAITING, DeliveryStatus.PENDING]))
             .order_by(Delivery.due_at))  # fmt: skip
        for d, i in s.exec(q):
            overdue = " OVERDUE" if d.due_at < now and d.status == DeliveryStatus.WAITING and d.attempts > 1 else ""
            t.add_row(str(d.id), str(i.id), d.channel, _show_time(a, d.due_at) + overdue, i.title)
    out.print(t)


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
        d = workflow.record_manual(a.ctx, s, delivery_id=delivery_id, actor=as_user, url=url,
                                   not_applicable=not_applicable)  # fmt: skip
    out.print(f"delivery {d.id} on {d.channel} recorded" + (f": {d.url}" if d.url else f" ({d.note})"))


# ------------------------------------------------------------------------------------------ serve
@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
) -> None:
    """Serve the generated website (and the web workspace) on http://HOST:PORT/."""
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


def main() -> None:
    try:
        app()
    except PublisherError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
