"""Deliveries and the places they go: the delivery list, retry, the worker, channel checks, and the
queue of posts made by hand."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Annotated

import typer

from publisher.cli.common import Table, err, out, show_time, state
from publisher.errors import PublisherError
from publisher.models import Delivery, DeliveryStatus, Item
from publisher.pipeline import workflow

manual_app = typer.Typer(help="The to-post-by-hand queue for places with no API.", no_args_is_help=True)


def retry(delivery_id: int) -> None:
    """Queue one failed delivery (one item on one channel) again."""
    a = state.app()
    with a.session() as s:
        d = workflow.retry_delivery(a.ctx, s, delivery_id=delivery_id, actor="cli")
    out.print(f"delivery {d.id} ({d.channel}) queued again")


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
            show_time(a, datetime.fromisoformat(r["due_at"])),
            str(r["attempts"]),
            r["url"] or r["last_error"] or r["note"] or "",
        )
    out.print(t)


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
    from publisher.pipeline.notify import open_sender
    from publisher.pipeline.worker import Dispatcher, make_worker_id
    from publisher.scheduler import Clock

    if log_json:
        use_json_logs()
    a = state.app()
    a.require_channels(paused=False)  # a channel's secret is checked by what uses it: here, before any claim
    # people told when work waits: a thread of its own, with its own connections (docs/notify.md); a
    # transport's missing secret stops the start here, as a channel's does
    sender = None if once else open_sender(a.engine, a.settings, make_worker_id())
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
    if sender is not None:
        sender.start()
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
        if sender is not None:
            sender.close()
        if metrics_server is not None:
            metrics_server.close()
        a.close()


def channels(
    check: Annotated[bool, typer.Option(help="check credentials and quota of each configured channel")] = True,
) -> None:
    """List installed channel types and configured channels; check each without publishing (a failing
    check tells the admins, once a day per channel: docs/notify.md)."""
    from sqlalchemy.exc import SQLAlchemyError

    from publisher.channel import CredentialsRefused, QuotaExceeded, available_channel_types
    from publisher.errors import MissingSecret
    from publisher.pipeline.workflow import outbox

    a = state.app()
    types = available_channel_types()
    t = Table("channel", "type", "state", "check")
    problems: list[outbox.ChannelProblem] = []
    for name, spec in a.channels.items():
        st = "paused" if spec.paused else ("disabled" if not spec.enabled else "active")
        if check:
            try:
                h = spec.channel.check_health()
                note = ("ok" if h.ok else "FAILED") + (f": {h.detail}" if h.detail else "")
                if h.warnings:
                    note += " (" + "; ".join(h.warnings) + ")"
                if not h.ok:
                    problems.append(outbox.ChannelProblem(name, spec.label, outbox.CHECK, h.detail or "FAILED"))
            except PublisherError as exc:
                note = f"FAILED: {exc}"
                kind = (
                    outbox.QUOTA
                    if isinstance(exc, QuotaExceeded)
                    else outbox.CREDENTIALS
                    if isinstance(exc, CredentialsRefused | MissingSecret)
                    else outbox.CHECK
                )
                problems.append(outbox.ChannelProblem(name, spec.label, kind, str(exc)))
        else:
            note = "-"
        t.add_row(name, spec.type_name, st, note)
    out.print(t)
    out.print("installed types: " + ", ".join(sorted(types)))
    if problems:
        try:
            with a.engine.begin() as conn:
                told = outbox.on_channel_problems(conn, problems, a.settings.zone)
        except SQLAlchemyError as exc:  # the check's answer above still stands
            err.print(f"warning: the admins cannot be told through the store: {type(exc).__name__}")
        else:
            if told:
                err.print(f"the admins will be told of {len(problems)} failing channel(s) ({told} message(s) queued)")
        raise typer.Exit(1)


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
            t.add_row(str(d.id), str(i.id), d.channel, show_time(a, due), i.title, note)
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
        item = workflow.get_item(s, d.item_id)
        kit = spec.channel.copy_kit(workflow.build_post(a.ctx, s, item, d.channel)) if spec else None
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
