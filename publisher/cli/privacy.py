"""The privacy and secrecy check (隐私/保密检查): ``publisher check`` on an item file, the findings of a
stored item (``publisher privacy list``), clearing one (``publisher privacy clear``) and masking
(``publisher mask``). Findings are only ever shown masked."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer

from publisher.cli.common import Table, err, out, show_time, state
from publisher.pipeline import workflow

privacy_app = typer.Typer(
    help="The privacy check's findings on stored items (隐私/保密检查): list and clear them.", no_args_is_help=True
)

#: the kinds as the office calls them
KIND_NAMES = {
    "id_card": "身份证号 ID number",
    "mobile": "手机号 mobile",
    "bank_card": "银行卡号 bank card",
    "classification_mark": "密级标志 classification mark",
    "sensitive_word": "敏感词 sensitive word",
    "hidden_content": "隐藏内容 hidden content",
    "uninspectable": "无法检查 cannot be inspected",
}
#: exit code of `publisher check` when there are findings (1 and 2 are errors, as everywhere)
FINDINGS_EXIT = 3
FORMATS = ("text", "json")


def findings_table(rows: Iterable[Any], *, decisions: bool = False) -> Table:
    """Findings (``Finding`` or stored ``PrivacyFinding``) as a table; ``decisions`` adds their decision."""
    cols = ["no.", "kind 类别", "where 位置", "masked 内容（已遮蔽）", "rule 规则"]
    t = Table(*cols, *(["decision 处理"] if decisions else []))
    for n, f in enumerate(rows, 1):
        cells = [str(getattr(f, "number", n)), KIND_NAMES.get(f.kind, f.kind), f.where, f.masked, f.rule]
        if decisions:
            cells.append(
                f"{f.decision} by {f.decided_by}" + (f": {f.reason}" if f.reason else "")
                if f.decision
                else "open 待处理"
            )
        t.add_row(*cells)
    return t


def say_findings(item_id: int | None, version: int, rows: list[Any]) -> None:
    """What the author sees after writing or submitting: this version's findings, masked."""
    if not rows:
        return
    open_ = sum(1 for r in rows if r.decision is None)
    out.print(f"privacy check (隐私/保密检查), version {version}: {len(rows)} finding{'s' if len(rows) != 1 else ''}")
    out.print(findings_table(rows, decisions=True))
    if open_:
        out.print(
            f"{open_} unresolved: the 保密审查 approval waits until each is masked (`publisher mask {item_id}`) "
            f"or cleared (`publisher privacy clear {item_id} NO --reason ...`)"
        )


def check(
    file: Annotated[
        Path | None, typer.Argument(help="the item's Markdown file; its images and attachments are read too")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="text | json")] = "text",
    all_: Annotated[
        bool, typer.Option("--all", help="check what is already published: every live publication of the ledger")
    ] = False,
    channel: Annotated[str | None, typer.Option(help="with --all: only the publications on this channel")] = None,
) -> None:
    """Check an item file and its attachments for ID, mobile and card numbers, classification marks,
    sensitive words and hidden content (隐私/保密检查); stores nothing. Exit 0 clean, 3 findings.
    With --all, check what is already published instead (exit 3: something is exposed)."""
    from publisher.pipeline.privacy import check_item, findings_json, words_for
    from publisher.settings import load_settings

    if fmt not in FORMATS:
        raise typer.BadParameter(f"{fmt!r} is not one of {', '.join(FORMATS)}", param_hint="--format")
    if all_ and file is not None:
        raise typer.BadParameter(
            "--all checks what is published and takes no file: give ITEM.md or --all, not both", param_hint="--all"
        )
    if channel is not None and not all_:
        raise typer.BadParameter("--channel only goes with --all", param_hint="--channel")
    if all_:
        return check_published(channel, fmt)
    if file is None:
        raise typer.BadParameter("give the item's Markdown file (ITEM.md), or --all", param_hint="FILE")
    # no store is opened: a file can be checked on any machine with the settings (for the word list)
    settings = load_settings(state.settings_path)
    found = check_item(file, words=words_for(settings), max_body_bytes=settings.review.max_body_bytes)
    if fmt == "json":
        out.print(findings_json(found, indent=1))
    elif found:
        out.print(findings_table(found))
        out.print(
            f"{len(found)} finding{'s' if len(found) != 1 else ''} (发现 {len(found)} 项): mask the numbers or "
            "explain each to the 保密审查 reviewer; images were not read: look at each one"
        )
    else:
        out.print(f"{file.name}: no findings (未发现问题); images were not read: look at each one")
    if found:
        raise typer.Exit(FINDINGS_EXIT)


def check_published(channel: str | None, fmt: str) -> None:
    """``publisher check --all``: every live publication checked again (publisher.counting.exposures);
    reads the store and the site (its folder or its bucket), writes nothing."""
    import json
    import sys

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from publisher.counting import exposures
    from publisher.pipeline.privacy import words_for

    a = state.app()
    if channel is not None:
        known = sorted(set(a.channels) | set(exposures.ledger_channels(a.engine)))
        if channel not in known:
            raise typer.BadParameter(
                f"unknown channel {channel!r} (known: {', '.join(known) or 'none'})", param_hint="--channel"
            )
    words = words_for(a.settings)  # a broken word list is an error before anything is read
    total = exposures.count_live(a.engine, channel=channel)
    checked = exposed = cleared_only = recorded = 0
    documents: list[dict[str, Any]] = []
    cleared: list[dict[str, Any]] = []
    shown: list[exposures.CheckedPublication] = []
    with Progress(
        TextColumn("checking what is published"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not sys.stderr.isatty(),
    ) as bar:
        task = bar.add_task("check", total=total or None)
        for p in exposures.scan_live(a.ctx, a.engine, channel=channel, words=words):
            checked += 1
            bar.advance(task)
            recorded += p.origin != "pipeline"
            if p.exposed:
                exposed += 1
                documents.append(exposure_document(a, p))
            elif p.cleared:
                cleared_only += 1
                cleared.append(exposure_document(a, p, p.cleared))
            # only what a person must look at is kept (masked values only): findings, or a note about
            # a page of ours (a recorded row's note is said once, in the summary)
            if fmt == "text" and (p.findings or p.cleared or (p.notes and p.origin == "pipeline")):
                shown.append(p)
    if fmt == "json":
        doc = {"exposures": documents, "cleared": cleared, "checked": checked}
        out.print(json.dumps(doc, ensure_ascii=False, indent=1))
    else:
        for p in shown:
            say_publication(a, p)
        where = f" on {channel}" if channel else ""
        out.print(
            f"checked {checked} live publication{'s' if checked != 1 else ''}{where}: {exposed} exposed (暴露), "
            f"{cleared_only} with cleared findings only (已核准公开)"
        )
        if recorded:
            out.print(
                f"{recorded} of them were recorded, not published here (imported or found by the sync): only their "
                "titles and URLs could be checked; look at those pages themselves"
            )
        if exposed:
            out.print(
                "take each exposed page down (`publisher withdraw ITEM_ID --as USER`) or mask it "
                "(`publisher mask ITEM_ID --as USER`, reviewed again, then the update goes out)"
            )
    if exposed:
        raise typer.Exit(FINDINGS_EXIT)


def exposure_document(a: Any, p: Any, findings: Any = None) -> dict[str, Any]:
    """One publication of ``check --all --format json``: exactly item_id, channel, url, published_at
    (ISO 8601 in the office's time zone) and its findings (kind, where, masked, rule): the exposed ones
    (under ``exposures``), or ``findings`` given (the cleared ones of a publication under ``cleared``)."""
    return {
        "item_id": p.item_id,
        "channel": p.channel,
        "url": p.url,
        "published_at": p.published_at.astimezone(a.settings.zone).isoformat(),
        "findings": [f.to_dict() for f in (p.findings if findings is None else findings)],
    }


def say_publication(a: Any, p: Any) -> None:
    """One publication of the text form: a heading line, a table of its findings, its notes."""
    state_ = "exposed 暴露" if p.exposed else "cleared only 已核准公开" if p.cleared else "no findings 未发现问题"
    version = f" version {p.version}" if p.version is not None else f" ({p.origin})"
    out.print(
        f"item {p.item_id}{version} on {p.channel}, published {show_time(a, p.published_at)}: {state_}"
        f" — {p.url or '(no URL)'}"
    )
    if p.findings or p.cleared:
        t = Table("kind 类别", "where 位置", "masked 内容（已遮蔽）", "status 状态")
        for f in p.findings:
            t.add_row(KIND_NAMES.get(f.kind, f.kind), f.where, f.masked, "exposed 暴露")
        for f in p.cleared:
            t.add_row(KIND_NAMES.get(f.kind, f.kind), f.where, f.masked, "cleared 已核准")
        out.print(t)
    for note in p.notes:
        out.print(f"  note: {note}")


@privacy_app.command("list")
def privacy_list(
    item_id: int,
    version: Annotated[int | None, typer.Option(help="an earlier version (default: the current one)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """List a stored item's findings on its current version, with each decision."""
    import json

    a = state.app()
    with a.session() as s:
        item = workflow.get_item(s, item_id)
        v = version or item.version
        rows = workflow.findings_of(s, item, v)
        data = [
            {
                "number": r.number,
                "kind": r.kind,
                "where": r.where,
                "masked": r.masked,
                "rule": r.rule,
                "decision": r.decision,
                "reason": r.reason,
                "decided_by": r.decided_by,
                "decided_at": r.decided_at.isoformat() if r.decided_at else None,
            }
            for r in rows
        ]
        if not as_json:
            table = findings_table(rows, decisions=True)
            when = {r.number: show_time(a, r.decided_at) for r in rows if r.decided_at}
    if as_json:
        out.print(json.dumps({"item": item_id, "version": v, "findings": data}, ensure_ascii=False, indent=2))
        return
    if not data:
        out.print(f"item {item_id} version {v}: no findings (未发现问题)")
        return
    out.print(table)
    if when:
        out.print("decided: " + ", ".join(f"no. {n} at {t}" for n, t in sorted(when.items())))
    open_ = sum(1 for d in data if d["decision"] is None)
    out.print(f"item {item_id} version {v}: {len(data)} findings, {open_} unresolved (待处理)")


@privacy_app.command("clear")
def privacy_clear(
    item_id: int,
    finding_no: Annotated[int, typer.Argument(help="the finding's no. in `publisher privacy list ITEM_ID`")],
    reason: Annotated[str, typer.Option(help="why it may be published, e.g. 联系人手机号，本人同意公开")],
    as_user: Annotated[str, typer.Option("--as", help="the confidentiality reviewer (保密审查) or an admin")],
) -> None:
    """Clear one finding of the item's current version: it may be published as it is (audited)."""
    a = state.app()
    with a.session() as s:
        user = workflow.get_user(s, as_user)
        row = workflow.clear_finding(a.ctx, s, item_id=item_id, number=finding_no, actor=user, reason=reason)
        left = len(workflow.unresolved(s, workflow.get_item(s, item_id)))
        said = f"item {item_id} version {row.item_version}: finding {row.number} ({row.kind} {row.masked}) cleared"
    out.print(said + (f"; {left} still unresolved" if left else "; none unresolved: 保密审查 may approve"))


@privacy_app.command("recheck")
def privacy_recheck(
    item_id: int,
    as_user: Annotated[str, typer.Option("--as", help="who asks (recorded in the audit trail)")],
) -> None:
    """Check an item stored before the privacy check existed (the 保密审查 approval waits for it)."""
    a = state.app()
    with a.session() as s:
        rows = workflow.recheck(a.ctx, s, item_id=item_id, actor=workflow.get_user(s, as_user))
        version = workflow.get_item(s, item_id).version
    say_findings(item_id, version, rows)
    out.print(f"item {item_id} version {version} checked: {len(rows)} finding{'s' if len(rows) != 1 else ''}")


def mask(
    item_id: int,
    as_user: Annotated[str, typer.Option("--as", help="an editor of the item, an admin or the 保密审查 reviewer")],
) -> None:
    """Mask ID, mobile and card numbers into a new version (cleaned copies of DOCX/XLSX attachments);
    it goes back to review like any edit. Prints the body's diff."""
    a = state.app()
    with a.session() as s:
        done = workflow.mask_item(a.ctx, s, item_id=item_id, actor=workflow.get_user(s, as_user))
        item = done.item
        rows = workflow.findings_of(s, item)
        version, status = item.version, item.status
    out.print(done.diff.rstrip("\n") if done.diff else "(the body is unchanged)")
    if done.cleaned:
        out.print(f"cleaned copies replace: {', '.join(done.cleaned)} (look at each copy before publishing it)")
    say_findings(item_id, version, rows)
    out.print(
        f"item {item_id} is now version {version}, {status}: {done.masked_findings} findings masked; "
        f"{as_user} made this version and so may not review it (两人审核: another person must)"
    )
