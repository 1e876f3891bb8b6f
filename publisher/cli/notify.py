"""``publisher notify …``: how each person is told that work waits, the outbox, and its sender."""

from __future__ import annotations

import signal
from typing import Annotated

import sqlalchemy as sa
import typer

from publisher.cli.common import Table, out, state
from publisher.notification import Notification, NotifyMode
from publisher.pipeline.workflow import outbox

notify_app = typer.Typer(
    help="Notifications: who is told when work waits, and how (docs/notify.md).", no_args_is_help=True
)


@notify_app.command("set")
def notify_set(
    user: str,
    transport: Annotated[str, typer.Option(help="a transport of [notify.transports] (email, wecom, dingtalk) or none")],
    address: Annotated[str, typer.Option(help="e-mail address, or the person's 企业微信 / 钉钉 userid")] = "",
    digest: Annotated[
        bool, typer.Option("--digest/--immediate", help="one message a day (notify.digest_hour)")
    ] = False,
    quiet: Annotated[
        str | None, typer.Option(help="quiet hours in local time, e.g. 22:00-07:30 (held until they end)")
    ] = None,
) -> None:
    """Choose how USER is told: transport, address, immediate or daily digest, quiet hours."""
    a = state.app()
    mode = NotifyMode.DIGEST if digest else NotifyMode.IMMEDIATE
    with a.session() as s:
        p = outbox.set_pref(
            s,
            user=user,
            transport=transport,
            address=address,
            mode=mode,
            quiet=quiet,
            known=a.settings.notify.transports.keys(),
            actor="cli",
        )
    q = f", quiet {p.quiet_start}-{p.quiet_end}" if p.quiet_start else ""
    out.print(f"{user}: {p.transport}{' ' + p.address if p.address else ''}, {p.mode}{q}")


@notify_app.command("list")
def notify_list(
    status: Annotated[str | None, typer.Option(help="pending | claimed | sent | failed")] = None,
    limit: Annotated[int, typer.Option(help="newest first, at most this many")] = 50,
) -> None:
    """The outbox: each message, to whom, over what, and how it went."""
    a = state.app()
    n = Notification.__table__  # type: ignore[attr-defined]
    q = sa.select(n).order_by(n.c.id.desc()).limit(limit)
    if status:
        q = q.where(n.c.status == status)
    t = Table("id", "event", "to", "transport", "status", "attempts", "due", "subject", "last error")
    zone = a.settings.zone
    with a.engine.connect() as conn:
        for r in conn.execute(q):
            due = r.due_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
            t.add_row(
                str(r.id),
                r.event,
                r.address,
                r.transport,
                r.status,
                str(r.attempts),
                due,
                r.subject,
                r.last_error or "",
            )
    out.print(t)


@notify_app.command("run")
def notify_run(
    once: Annotated[bool, typer.Option("--once", help="send what is due now, then exit")] = False,
) -> None:
    """Send due notifications (``publisher run`` does this too, on a thread of its own)."""
    from publisher.pipeline.notify import open_sender
    from publisher.pipeline.worker import make_worker_id

    a = state.app()
    sender = open_sender(a.engine, a.settings, make_worker_id())
    if sender is None:
        out.print("no [notify.transports] configured: nothing to send")
        return
    signal.signal(signal.SIGTERM, lambda *_: sender.stop.set())
    try:
        counts = sender.run(once=once)
    except KeyboardInterrupt:
        counts = {}
    finally:
        sender.close()
        a.close()
    out.print(", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing was due")
