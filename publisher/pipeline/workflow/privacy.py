"""The privacy check in the workflow (issue 12): each version's findings, stored masked, and the
decision on each — **cleared** by the 保密审查 reviewer with a written reason, or **masked** by the
masking action (:mod:`.masking`), which makes a new version with the numbers masked.

The gate itself is a rule of the level-2 approve row of the workflow table
(:func:`publisher.pipeline.workflow.states._privacy_resolved`). Every version decides afresh: a
finding cleared on version 3 is a new, undecided finding on version 4.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterable
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, col, select

from publisher.channel import Post
from publisher.errors import InvalidInput, NotAllowed, NotFound
from publisher.models import Asset, Item, ItemVersion, PrivacyDecision, PrivacyFinding, Role, User, utcnow
from publisher.pipeline import content
from publisher.pipeline.privacy import Finding, WordList, check_file, check_text, words_for
from publisher.pipeline.privacy.check import COVER_ALT, scan_text, summary_findings
from publisher.pipeline.privacy.numbers import find_numbers
from publisher.pipeline.workflow import wording
from publisher.pipeline.workflow.audit import audit
from publisher.pipeline.workflow.context import Context
from publisher.pipeline.workflow.states import get_item

#: the roles that may clear a finding: the confidentiality reviewer decides what may be published
CLEARERS = (Role.CONFIDENTIALITY_REVIEWER, Role.ADMIN)


def assets_of(session: Session, item_id: int | None) -> list[Asset]:
    return list(session.exec(select(Asset).where(Asset.item_id == item_id).order_by(col(Asset.id))))


def item_findings(ctx: Context, session: Session, item: Item) -> list[Finding]:
    """Every finding in what the item would publish: title, summary, body (``body:LINE``, the line of
    the stored body, its images' alt text included), the cover's alt text (``cover.alt``), each stored
    image and attachment (``where`` starts with its file name), then the per-channel wording
    (``CHANNEL.title``, ``CHANNEL.body:LINE``, ``CHANNEL.cover_alt``…)."""
    words = words_for(ctx.settings)
    remote = ctx.settings.media_store()
    assets = assets_of(session, item.id)
    files = [(content.local_media(ctx.settings.media_dir, a.sha256, remote), a.filename) for a in assets]
    cover_alt = next((a.alt for a in assets if a.role == "cover"), None)
    # a summary made from the body's start (create_item) would repeat the body's findings
    derived = item.summary == content.plain_text(item.body_markdown, 120)
    summary = None if derived else item.summary
    found = version_findings(item.title, summary, item.body_markdown, cover_alt, files, words, check_file)
    # the per-channel wording is published text too: ``wechat.title``, ``weibo.body:LINE``… (issue 14)
    return found + wording.findings(item.overrides or {}, words)


def version_findings(
    title: str | None,
    summary: str | None,
    body: str,
    cover_alt: str | None,
    files: Iterable[tuple[Path, str]],
    words: WordList | None,
    read_file: Callable[..., Iterable[Finding]],
) -> list[Finding]:
    """The findings of a version's title, summary, body (``body:LINE``), cover's alt text
    (``cover.alt``) and attachments (``where`` starts with the file's name), in that order, as the gate
    numbers them, the worker's re-check matches them and ``publisher check --all`` reads a publication."""
    found = scan_text(title, "title", words) if title else []
    if summary:
        found += scan_text(summary, "summary", words)
    found += check_text(body, "body", words=words)
    if cover_alt:
        found += scan_text(cover_alt, COVER_ALT, words)
    for path, name in files:
        found += read_file(path, words=words, name=name)
    return found


def unresolved_in_post(post: Post, cleared: Collection[tuple[str, str, str]], words: WordList | None) -> list[Finding]:
    """The worker's re-check (issue 12): the findings in what ``post`` would publish that no *cleared*
    decision of its version covers. ``cleared`` holds (kind, where, masked) of those decisions.

    The title, the body (``body:LINE``), the item's cover's alt text (``cover.alt``) and each attachment
    are checked as :func:`item_findings` does, so the same text gives the same ``where``, and a finding
    matches only a decision with the same kind, place and masked value: a body changed without a new
    version puts its numbers on other lines or holds new ones, and is refused. The summary and the
    stored HTML body (what a website or a webhook actually shows) are checked too, matched on kind and
    masked value only: a summary cut from the body's start repeats body findings under another place,
    and the HTML has no lines of the Markdown.
    """
    exact = set(cleared)
    loose = {(kind, masked) for kind, _, masked in cleared}
    files = [(a.path, a.filename) for a in post.assets]
    cover = post.cover  # the item's own: a channel's cover and its cover_alt are the wording's to check
    cover_alt = cover.alt if cover is not None else None
    found = version_findings(post.title, None, post.body_markdown, cover_alt, files, words, _file_findings)
    out = [f for f in found if (f.kind, f.where, f.masked) not in exact]
    seen = loose | {(f.kind, f.masked) for f in out}  # a number already counted is not counted again
    summary = scan_text(post.summary, "summary", words) if post.summary else []
    if any((f.kind, f.masked) not in seen for f in summary):
        # a summary cut from the body is judged as part of it, not as a number cut in two (the body is
        # rendered for that only here, when the summary holds something the body's findings do not cover)
        summary = summary_findings(post.summary, post.body_markdown, words)
    html = scan_text(post.body_html, "body_html", words) if post.body_html else []
    for found_in in (summary, html):
        for f in found_in:
            if (f.kind, f.masked) not in seen:
                seen.add((f.kind, f.masked))
                out.append(f)
    return out


def _file_findings(path: Path, *, words: WordList | None, name: str) -> list[Finding]:
    """check_file, remembered for a file unchanged on disk: a delivery retried, or an item on several
    channels read again in the next claim's batch, does not read a 10,000-row workbook again."""
    try:
        st = path.stat()
    except OSError:
        return check_file(path, words=words, name=name)  # the missing file is a finding
    return list(_file_findings_cached(str(path), name, st.st_mtime_ns, st.st_size, words))


@functools.lru_cache(maxsize=256)
def _file_findings_cached(
    path: str, name: str, mtime_ns: int, size: int, words: WordList | None
) -> tuple[Finding, ...]:
    return tuple(check_file(path, words=words, name=name))


def record_findings(ctx: Context, session: Session, item: Item) -> list[PrivacyFinding]:
    """Check the item's current version and store its findings (masked only), numbered from 1."""
    rows = [
        PrivacyFinding(
            item_id=item.id,
            item_version=item.version,
            number=n,
            kind=f.kind,
            where=f.where,
            masked=f.masked,
            rule=f.rule,
        )
        for n, f in enumerate(item_findings(ctx, session, item), 1)
    ]
    session.add_all(rows)
    version = session.exec(
        select(ItemVersion).where(ItemVersion.item_id == item.id, ItemVersion.version == item.version)
    ).first()
    if version is None:  # an item older than item_version (0003): its version is recorded now
        version = ItemVersion(item_id=item.id, version=item.version, title=item.title, body_markdown=item.body_markdown)
        session.add(version)
    version.privacy_checked_at = utcnow()
    session.flush()
    return rows


def was_checked(session: Session, item: Item, version: int | None = None) -> bool:
    """Whether a version (default the current one) had its findings recorded: one stored before the
    check existed has none recorded, which is not the same as none."""
    return (
        session.exec(
            select(ItemVersion.privacy_checked_at).where(
                ItemVersion.item_id == item.id, ItemVersion.version == (version or item.version)
            )
        ).first()
        is not None
    )


def recheck(ctx: Context, session: Session, *, item_id: int, actor: User) -> list[PrivacyFinding]:
    """Run the check on the current version of an item stored before the check existed (its findings
    were never recorded). A version already checked is refused: its decisions stand, and every new
    version is checked when it is made."""
    if actor.role == Role.VIEWER:
        raise NotAllowed(f"{actor.name} is a viewer and changes nothing")
    item = get_item(session, item_id, lock=True)
    if was_checked(session, item):
        raise NotAllowed(
            f"item {item.id} version {item.version} was checked when it was made; "
            f"`publisher privacy list {item.id}` shows its findings"
        )
    rows = record_findings(ctx, session, item)
    audit(
        session,
        actor=actor.name,
        entity="item",
        entity_id=item.id,
        action="privacy check",
        version=item.version,
        privacy_findings=len(rows),
    )
    return rows


def findings_of(session: Session, item: Item, version: int | None = None) -> list[PrivacyFinding]:
    """The stored findings of a version of the item (default its current one), in order."""
    return list(
        session.exec(
            select(PrivacyFinding)
            .where(PrivacyFinding.item_id == item.id, PrivacyFinding.item_version == (version or item.version))
            .order_by(col(PrivacyFinding.number))
        )
    )


def unresolved(session: Session, item: Item) -> list[PrivacyFinding]:
    return [f for f in findings_of(session, item) if f.decision is None]


def unresolved_counts(session: Session, items: Collection[Item]) -> dict[int, int]:
    """Each item's count of undecided findings on its current version (items with none are left out),
    in one statement, for lists of items."""
    if not items:
        return {}
    rows = session.exec(
        select(PrivacyFinding.item_id, sa.func.count())
        .join(Item, sa.and_(col(Item.id) == PrivacyFinding.item_id, Item.version == PrivacyFinding.item_version))
        .where(col(Item.id).in_([i.id for i in items]), col(PrivacyFinding.decision).is_(None))
        .group_by(PrivacyFinding.item_id)
    )
    return {item_id: n for item_id, n in rows}


def may_clear(actor: User) -> bool:
    """Whether :func:`clear_finding` lets ``actor`` clear findings at all (it then checks the rest)."""
    return actor.role in CLEARERS


def _holds_a_number(text: str) -> bool:
    return bool(find_numbers(text))


def clear_finding(
    ctx: Context, session: Session, *, item_id: int, number: int, actor: User, reason: str | None
) -> PrivacyFinding:
    """Clear finding ``number`` of the item's current version: it may be published as it is, for ``reason``."""
    if not may_clear(actor):
        raise NotAllowed(
            f"{actor.name} is {actor.role}; only the confidentiality reviewer (保密审查) or an admin clears a finding"
        )
    reason = " ".join((reason or "").split())
    if not reason:
        raise InvalidInput('clearing a finding needs a written reason: --reason "联系人手机号，本人同意公开"')
    if _holds_a_number(reason):
        # the reason goes into the audit trail, which must never hold the raw number
        raise InvalidInput("the reason contains an ID, mobile or card number: say why without writing the number")
    item = get_item(session, item_id, lock=True)
    row = session.exec(
        select(PrivacyFinding).where(
            PrivacyFinding.item_id == item.id,
            PrivacyFinding.item_version == item.version,
            PrivacyFinding.number == number,
        )
    ).first()
    if row is None:
        count = len(findings_of(session, item))
        raise NotFound(
            f"item {item.id} version {item.version} has no finding {number} "
            f"({count} finding{'s' if count != 1 else ''}; `publisher privacy list {item.id}` lists them)"
        )
    if row.decision is not None:
        raise NotAllowed(
            f"finding {number} of item {item.id} version {item.version} was already {row.decision} by {row.decided_by}"
        )
    decide(row, PrivacyDecision.CLEARED, actor.name, reason)
    audit(
        session,
        actor=actor.name,
        entity="item",
        entity_id=item.id,
        action="privacy clear",
        reason=reason,
        version=item.version,
        finding=number,
        kind=row.kind,
        where=row.where,
        masked=row.masked,
    )
    return row


def decide(row: PrivacyFinding, decision: PrivacyDecision, actor: str, reason: str) -> None:
    row.decision = decision
    row.reason = reason
    row.decided_by = actor
    row.decided_at = utcnow()
