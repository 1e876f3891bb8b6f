"""The counting side: stats, the ledger's import and export, sync, checklist coverage, the annual report."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from publisher.app import App
from publisher.cli.common import Table, err, out, show_time, state
from publisher.counting import periods, stats
from publisher.errors import PublisherError

coverage_app = typer.Typer(
    help="Checklist coverage (50 items) and per-department timeliness.", invoke_without_command=True
)
report_app = typer.Typer(help="The annual information-disclosure report (信息公开年度报告).", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail (操作记录) for inspections.", no_args_is_help=True)


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
            f"last sync {last.id} at {show_time(a, last.started_at)}: {last.taken_down} taken down, "
            f"{last.restored} restored, {last.remote_added} found, {last.errors} errors"
        )
    down = sync.taken_down(a)
    if down:
        t = Table("delivery", "item", "channel", "taken down", "url", title="pages that no longer answer")
        for d in down:
            t.add_row(str(d.id), str(d.item_id), d.channel, show_time(a, d.taken_down_at), d.url or "")
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
        t.add_row(str(c.number), c.name[:40], c.rule, c.status, show_time(a, c.latest_at), where)
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


def _labels(a: App) -> dict[str, str]:
    return {n: sp.label for n, sp in a.channels.items()}


@report_app.command("annual")
def report_annual(
    from_: Annotated[str, typer.Option("--from", help="first day of the period, YYYY-MM-DD")],
    to: Annotated[str, typer.Option("--to", help="last day of the period, YYYY-MM-DD")],
    output: Annotated[Path, typer.Option("-o", "--output", help="file to write")],
    fmt: Annotated[str, typer.Option("--format", help="md | docx")] = "docx",
    template: Annotated[Path | None, typer.Option(help="the office's edited template (Jinja2)")] = None,
    as_item: Annotated[
        bool,
        typer.Option(
            "--item",
            help="with --format md: an item file (front matter: title, category 年度报告, the site channels) "
            "for `publisher item add`, so the report goes through review onto the website's 年度报告 page",
        ),
    ] = False,
) -> None:
    """Write the annual report; every figure from the ledger, listed row by row in FILE.figures.csv."""
    from publisher.counting import report

    a = state.app()
    rep = report.build(a.engine, a.settings, start=from_, end=to, channel_labels=_labels(a))
    path, csv_path = report.write_report(
        rep, a.settings, fmt=fmt, out=output, template=report.load_template(a.settings, template), as_item=as_item
    )
    for w in rep.warnings:
        err.print(f"warning: {w}")
    f = rep.figures
    out.print(f"wrote {path} and {csv_path}")
    if as_item:
        out.print(f"file it for review: publisher item add {path} --as EDITOR")
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
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="where to write it (default: the office's copy, if it has none yet)"),
    ] = None,
) -> None:
    """Write the shipped report template (last year's text) for the office to edit.

    Without -o it becomes the office's copy ([report] template, else report-template.md.j2 in data_dir),
    the file `report annual` and the web page's template editor use."""
    from publisher.counting import report

    if output is not None:
        output.write_text(report.default_template(), encoding="utf-8")
        out.print(f'wrote {output}; set [report] template = "{output}" in settings.toml or pass --template')
        return
    a = state.app()
    path = report.office_template_path(a.settings)
    if path.exists():
        raise PublisherError(f"the office's copy {path} exists already: edit it, or write the shipped one with -o FILE")
    path.write_text(report.default_template(), encoding="utf-8")
    out.print(f"wrote {path}: the office's copy, used by `publisher report annual` and the web page")


@audit_app.command("export")
def audit_export(
    from_: Annotated[str, typer.Option("--from", help="first day, YYYY-MM-DD (office time)")],
    to: Annotated[str, typer.Option("--to", help="last day, YYYY-MM-DD (office time)")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="file to write (default: stdout)")] = None,
    item: Annotated[int | None, typer.Option(help="only this item's rows and its deliveries'")] = None,
    department: Annotated[str | None, typer.Option(help="only the rows of this department's items")] = None,
    actor: Annotated[str | None, typer.Option("--user", help="only what this user did")] = None,
) -> None:
    """Every audit row of the period as CSV (UTF-8 with BOM, opens in Excel), oldest first."""
    from publisher.counting import audit_export as ax

    a = state.app()
    start, end = periods.period(from_, to, a.settings.zone)
    found = ax.rows(a.engine, ax.AuditQuery(start, end, item_id=item, department=department, actor=actor))
    text = ax.to_csv(found, a.settings.zone)
    if output is None:
        sys.stdout.write(text.lstrip("\ufeff"))
    else:
        output.write_text(text, encoding="utf-8", newline="")
        out.print(f"wrote {output} ({len(found)} audit rows)")
