"""``publisher doctor``: is this installation able to publish? Database, migrations, channels, clock.

Each check says what it looked at and, when it fails, what to do. Channel checks call each
channel's ``check_health`` (credentials, reachability; never publishes). Nothing is changed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from publisher.errors import ConfigError, PublisherError
from publisher.notifier import NotifyError, build_notifiers
from publisher.settings import Settings

#: more than this between our clock and the database server's, and leases, schedules and rate limits drift
MAX_SKEW_SECONDS = 2.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    #: a problem that does not stop publishing (shown, exit status stays 0)
    warning: bool = False


def run_checks(settings_path: str | Path | None = None) -> list[Check]:
    from publisher.db import make_engine, schema_is_current
    from publisher.pipeline.registry import build_channels
    from publisher.settings import load_settings

    checks: list[Check] = []
    try:
        settings = load_settings(settings_path)
    except ConfigError as exc:
        return [Check("settings", False, str(exc))]
    checks.append(Check("settings", True, f"loaded {settings.source or '(defaults and environment)'}"))

    url = settings.resolved_database_url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).exists():
        checks.append(Check("database", False, f"no store at {url[len('sqlite:///') :]}: run `publisher init`"))
        return checks
    engine = make_engine(url)
    where = engine.url.render_as_string(hide_password=True)
    try:
        t = time.perf_counter()
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
            server_now = None
            if engine.dialect.name == "postgresql":
                server_now = conn.execute(sa.text("select now()")).scalar()
            conn.rollback()
        ms = (time.perf_counter() - t) * 1000
        checks.append(Check("database", True, f"{where} answers ({ms:.0f} ms)"))
    except Exception as exc:  # any driver error: report it, the remaining checks need the database
        checks.append(
            Check(
                "database",
                False,
                f"cannot reach {where}: {exc}. Is the server running, is the "
                "URL in database_url / PUBLISHER_DATABASE_URL right?",
            )
        )
        engine.dispose()
        return checks

    try:
        current = schema_is_current(engine)
        checks.append(
            Check(
                "migrations",
                current,
                "schema is at the newest migration"
                if current
                else "schema is not up to date: run `publisher init` (it migrates and keeps data)",
            )
        )
    except Exception as exc:
        checks.append(Check("migrations", False, f"cannot read the migration state: {exc}"))

    if checks[-1].ok:
        checks.append(_display_check(engine, settings))

    local_now = datetime.now(UTC)
    if server_now is not None:
        skew = abs((server_now - local_now).total_seconds())
        checks.append(
            Check(
                "clock",
                skew <= MAX_SKEW_SECONDS,
                f"this machine and the database server differ by {skew:.1f} s"
                + (
                    ""
                    if skew <= MAX_SKEW_SECONDS
                    else "; enable NTP (timedatectl set-ntp true) "
                    "on both: leases, schedules and rate limits depend on it"
                ),
            )
        )
    else:
        checks.append(
            Check(
                "clock",
                True,
                f"local time {local_now.astimezone(settings.zone):%Y-%m-%d %H:%M:%S %Z} "
                "(SQLite: one machine, no clock to compare with)",
                warning=False,
            )
        )

    try:
        channels = build_channels(settings, engine)
    except ConfigError as exc:
        checks.append(Check("channels", False, str(exc)))
        engine.dispose()
        return checks
    if not channels:
        checks.append(Check("channels", True, "no [channels.NAME] table: nothing will be published", warning=True))
    for name, spec in channels.items():
        if not spec.enabled:
            checks.append(Check(f"channel {name}", True, "disabled (enabled = false)", warning=True))
            continue
        try:
            report = spec.channel.check_health()
        except PublisherError as exc:  # e.g. its secret is not set in this environment
            checks.append(Check(f"channel {name}", False, str(exc)))
            continue
        except Exception as exc:  # a channel's health check must not hide the others
            checks.append(Check(f"channel {name}", False, f"health check raised {type(exc).__name__}: {exc}"))
            continue
        detail = report.detail + "".join(f"; warning: {w}" for w in report.warnings)
        if spec.paused:
            detail += " (paused)"
        checks.append(Check(f"channel {name}", report.ok, detail, warning=bool(report.warnings)))
        spec.channel.close()
    checks.append(_notify_check(settings))
    if settings.registers.keepers:
        checks.append(_keepers_check(engine, settings))
    engine.dispose()
    return checks


def _keepers_check(engine: sa.Engine, settings: Settings) -> Check:
    """``[registers] keepers`` name active users (a misspelt name would silently tell nobody), and
    admins: the register pages the messages link to are the admins' (docs/web.md)."""
    from publisher.models import Role, User

    u = User.__table__  # type: ignore[attr-defined]
    names = settings.registers.keepers
    with engine.connect() as conn:
        q = sa.select(u.c.name, u.c.role).where(u.c.name.in_(names), u.c.active.is_(True))
        roles = {r.name: r.role for r in conn.execute(q)}
    unknown = [n for n in names if n not in roles]
    if unknown:
        return Check(
            "register keepers",
            False,
            f"[registers] keepers names no active user: {', '.join(unknown)} (see publisher user list); "
            "they are not told of deadlines",
        )
    others = [n for n in names if roles[n] != Role.ADMIN.value]
    if others:
        return Check(
            "register keepers",
            True,
            f"{', '.join(others)} told of deadlines but not admins: the register pages are the admins' "
            "(publisher user set NAME --role admin)",
            warning=True,
        )
    return Check("register keepers", True, f"{', '.join(names)} told of request and complaint deadlines")


def _display_check(engine: sa.Engine, settings: Settings) -> Check:
    """公示期 whose end cannot be computed (a year the calendar does not know: the item stays up), or
    whose end passed minutes ago with no take-down (no worker runs the ``display-end`` job)."""
    from publisher.models import DISPLAY_OPEN, Item
    from publisher.pipeline.workflow.states import LIVE_STATES

    it = Item.__table__  # type: ignore[attr-defined]
    live = sa.and_(sa.text(DISPLAY_OPEN), it.c.status.in_([s.value for s in LIVE_STATES]))
    late = datetime.now(UTC) - timedelta(minutes=5)
    with engine.connect() as conn:
        stuck = conn.execute(
            sa.select(it.c.id, it.c.display_problem).where(live, it.c.display_problem.is_not(None)).order_by(it.c.id)
        ).all()
        overdue = conn.execute(sa.select(it.c.id).where(live, it.c.display_ends_at < late).order_by(it.c.id)).all()
    problems = []
    if stuck:
        ids = ", ".join(str(r.id) for r in stuck[:10])
        problems.append(
            f"items {ids}: the end of the 公示期 cannot be computed, so they stay up ({stuck[0].display_problem})"
        )
    if overdue:
        ids = ", ".join(str(r.id) for r in overdue[:10])
        problems.append(
            f"items {ids}: the 公示期 ended over 5 minutes ago and they are not taken down: is a worker "
            "(`publisher run`) running? Its display-end job takes them down every minute"
        )
    if not problems:
        return Check("display periods", True, "no 公示期 overdue or without a computable end")
    return Check("display periods", True, "; ".join(problems), warning=True)


def _notify_check(settings: Any) -> Check:
    """The notification transports build (their settings valid, their secrets set) and check what they
    can without sending (the corp app's gettoken; the robots have no call that checks a key without
    posting to the group)."""
    try:
        notifiers = build_notifiers(settings.notify.transports)
    except ConfigError as exc:
        return Check("notify", False, str(exc))
    if not notifiers:
        return Check("notify", True, "no [notify.transports.NAME] table: nobody is told when work waits", warning=True)
    said, bad = [], False
    for name, n in notifiers.items():
        try:
            said.append(f"{name}: {n.check()}")
        except NotifyError as exc:
            said.append(f"{name}: {exc}")
            bad = True
        finally:
            n.close()
    return Check("notify", not bad, "; ".join(said))
