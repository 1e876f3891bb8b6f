"""What is already out there, checked again (issue 12): ``publisher check --all``.

The ledger (:mod:`publisher.counting.ledger`) knows every live publication: a delivery with
``published_at`` and no ``withdrawn_at``, whatever its origin. :func:`scan_live` walks them in
delivery order, a batch at a time (keyset pages of :data:`BATCH`, each read in its own short read
transaction), so a store of 100,000 publications is never held in memory, and runs the privacy check
(:mod:`publisher.pipeline.privacy`) on what each one actually published:

* a **pipeline** item: the version that delivery sent — its title and body from ``item_version``
  (the current version's summary from the item row), its images and attachments from the media
  store — checked as the gate checks a version, so each finding has the place ``publisher privacy
  list`` gives it and is matched against that version's **cleared** decisions (kind, where, masked;
  a summary's finding on kind and masked value only, as the worker's re-check does). Cleared findings
  are reported apart, not as exposures.
* on a channel that writes a **site** (it offers ``site_objects``, an :class:`ObjectStore`, as the
  website does: its folder or its bucket), also the page itself and each attachment file it links,
  read from there: the page is what the public reads, and a file changed on the server (or in the
  bucket) after publication is caught. A number of the page already found in the version is
  not reported twice; an attachment file byte-identical to one already read (its SHA-256, which a
  site file's name also carries) is not read twice. Reading one HTML file per page is cheap.
* an **imported** or **remote** row (recorded, not written here): only its title and URL are stored,
  so they are checked and the publication says the rest cannot be inspected.

Nothing is written: not the store, not the site.
"""

from __future__ import annotations

import functools
import hashlib
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from publisher.channel import FolderStore, ObjectStore, site_page_path
from publisher.models import (
    Asset,
    Delivery,
    DeliveryAttempt,
    DeliveryOp,
    DeliveryStatus,
    Item,
    ItemOrigin,
    ItemVersion,
    PrivacyDecision,
    PrivacyFinding,
    Review,
)
from publisher.pipeline import content
from publisher.pipeline.outcome import OutcomeKind
from publisher.pipeline.privacy import Finding, WordList, check_file, mask_text, words_for
from publisher.pipeline.privacy.check import scan_text
from publisher.pipeline.privacy.findings import finding
from publisher.pipeline.workflow import Context
from publisher.pipeline.workflow.privacy import version_findings

#: publications read per page (one short read transaction each)
BATCH = 200
#: what a site page links that is the site itself (other pages, the feed, the style), not a published file
SITE_PAGES = {".html", ".htm", ".xml", ".css", ".js"}

D = Delivery.__table__  # type: ignore[attr-defined]
I = Item.__table__  # type: ignore[attr-defined]  # noqa: E741
V = ItemVersion.__table__  # type: ignore[attr-defined]
A = Asset.__table__  # type: ignore[attr-defined]
F = PrivacyFinding.__table__  # type: ignore[attr-defined]
R = Review.__table__  # type: ignore[attr-defined]
T = DeliveryAttempt.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class CheckedPublication:
    """One live publication and what the check found in what it published.

    ``findings``: the exposures (no decision of the sent version cleared them); ``cleared``: findings
    the 保密审查 reviewer cleared on that version; ``notes``: what could not be inspected or was read
    other than from the sent version. ``url`` has any ID, mobile or card number in it masked.
    """

    delivery_id: int
    item_id: int
    channel: str
    url: str | None
    published_at: datetime
    origin: str
    version: int | None
    findings: tuple[Finding, ...] = ()
    cleared: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def exposed(self) -> bool:
        return bool(self.findings)


@dataclass
class _Pending:
    """A live delivery of the current page and what it takes to check it."""

    row: Any
    version: int | None = None
    title: str = ""
    summary: str | None = None
    body: str = ""
    assets: list[Any] = field(default_factory=list)
    #: (kind, where, masked) of the sent version's findings the 保密审查 reviewer cleared
    cleared: set[tuple[str, str, str]] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


def live_filter(channel: str | None) -> Any:
    cond = sa.and_(D.c.published_at.is_not(None), D.c.withdrawn_at.is_(None))
    return sa.and_(cond, D.c.channel == channel) if channel is not None else cond


def count_live(engine: Engine, *, channel: str | None = None) -> int:
    """How many publications are live (on ``channel`` when given): the progress bar's total."""
    with engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(D).where(live_filter(channel))).scalar_one()
        conn.rollback()
    return int(n)


def ledger_channels(engine: Engine) -> list[str]:
    """Every channel the ledger has a delivery on (imported rows may name one no longer configured)."""
    with engine.connect() as conn:
        names = conn.execute(sa.select(D.c.channel).distinct()).scalars().all()
        conn.rollback()
    return sorted(names)


def scan_live(
    ctx: Context,
    engine: Engine,
    *,
    channel: str | None = None,
    words: WordList | None = None,
    batch: int = BATCH,
    read_file: Callable[..., list[Finding]] = check_file,
) -> Iterator[CheckedPublication]:
    """Every live publication (on ``channel`` when given), oldest delivery first, with its findings.

    ``words`` defaults to the office's list (``privacy.words_file``). Streams: one page of ``batch``
    publications is read at a time, and a publication is yielded as soon as it is checked.
    """
    if words is None:
        words = words_for(ctx.settings)

    # an item on five channels is five publications of the same files, mostly on one page: read once
    @functools.lru_cache(maxsize=64)
    def read_once(path: Path, name: str) -> tuple[Finding, ...]:
        return tuple(read_file(path, words=words, name=name))

    def cached(path: Path, *, words: WordList | None, name: str) -> list[Finding]:
        return list(read_once(path, name))

    after = 0
    while True:
        with engine.connect() as conn:
            page = _read_page(conn, after, channel, batch)
            conn.rollback()
        if not page:
            return
        after = page[-1].row.id
        for p in page:
            yield _check(ctx, p, words, cached)


def _read_page(conn: sa.Connection, after: int, channel: str | None, batch: int) -> list[_Pending]:
    """One page of live deliveries with the version each sent, its text, assets and cleared findings."""
    rows = conn.execute(
        sa.select(
            D.c.id,
            D.c.item_id,
            D.c.channel,
            D.c.url,
            D.c.published_at,
            D.c.item_version,
            D.c.status,
            D.c.op,
            I.c.origin,
            I.c.version.label("item_current"),
            I.c.title,
            I.c.summary,
            I.c.body_markdown,
        )
        .select_from(D.join(I, I.c.id == D.c.item_id))
        .where(live_filter(channel), D.c.id > after)
        .order_by(D.c.id)
        .limit(batch)
    ).all()
    pending = [_Pending(r) for r in rows]
    ours = [p for p in pending if p.row.origin == ItemOrigin.PIPELINE]
    item_ids = sorted({p.row.item_id for p in ours})
    if not item_ids:
        return pending
    # which version is out there: the delivery row names the version it owes *now* (an update not yet
    # sent, or one superseded by a later edit before it went out, leaves it naming a version that never
    # went out). The worker only sends the item's version of the moment its call starts, so the version
    # out there is the newest one made before the start of the delivery's last call that published
    versions: dict[int, list[tuple[datetime, int]]] = {}
    texts: dict[tuple[int, int], Any] = {}
    for v in conn.execute(
        sa.select(V.c.item_id, V.c.version, V.c.at, V.c.title, V.c.body_markdown).where(V.c.item_id.in_(item_ids))
    ):
        versions.setdefault(v.item_id, []).append((v.at, v.version))
        texts[(v.item_id, v.version)] = v
    published = dict(
        conn.execute(
            sa.select(T.c.delivery_id, sa.func.max(T.c.started_at))
            .where(
                T.c.delivery_id.in_([p.row.id for p in ours]),
                T.c.outcome == OutcomeKind.DONE.value,
                T.c.op.in_([DeliveryOp.PUBLISH.value, DeliveryOp.UPDATE.value]),
            )
            .group_by(T.c.delivery_id)
        ).all()
    )
    approved: dict[int, list[int]] = {}
    for item_id, v in conn.execute(
        sa.select(R.c.item_id, R.c.item_version)
        .where(R.c.item_id.in_(item_ids), R.c.level == 2, R.c.approved.is_(True))
        .distinct()
    ):
        approved.setdefault(item_id, []).append(v)
    for p in ours:
        p.version = _sent_version(
            p, published.get(p.row.id), versions.get(p.row.item_id, []), approved.get(p.row.item_id, [])
        )
    assets: dict[int, list[Any]] = {}
    for a in conn.execute(
        sa.select(A.c.item_id, A.c.sha256, A.c.filename, A.c.role, A.c.alt).where(A.c.item_id.in_(item_ids))
    ):
        assets.setdefault(a.item_id, []).append(a)
    cleared: dict[tuple[int, int], set[tuple[str, str, str]]] = {}
    for f in conn.execute(
        sa.select(F.c.item_id, F.c.item_version, F.c.kind, F.c.where, F.c.masked).where(
            F.c.item_id.in_(item_ids), F.c.decision == PrivacyDecision.CLEARED.value
        )
    ):
        cleared.setdefault((f.item_id, f.item_version), set()).add((f.kind, f.where, f.masked))
    for p in ours:
        r = p.row
        if p.version == r.item_current:
            p.title, p.body = r.title, r.body_markdown
            # as the gate: a summary made from the body's start would repeat the body's findings
            p.summary = None if r.summary == content.plain_text(r.body_markdown, 120) else r.summary
        elif (old := texts.get((r.item_id, p.version))) is not None:
            p.title, p.body = old.title, old.body_markdown
            p.notes.append(
                f"version {p.version} is out there (the item is at version {r.item_current}): its title and body "
                "were checked from the version history; its summary is not kept, and its files are the ones "
                "stored now"
            )
        else:
            p.title, p.body = r.title, r.body_markdown
            p.notes.append(f"version {p.version} is not in the version history: the current text was checked")
        p.assets = assets.get(r.item_id, [])
        p.cleared = cleared.get((r.item_id, p.version), set())
    return pending


def _sent_version(
    p: _Pending, last_call: datetime | None, versions: list[tuple[datetime, int]], approved: list[int]
) -> int:
    """The version a live delivery put out: the newest version made before its last publishing call
    started; without such a call (a by-hand place's recorded URL, a store older than the version
    history), the version it names, or — while an update is still owed — the newest one approved
    below it."""
    r = p.row
    if last_call is not None:
        made = [v for at, v in versions if at <= last_call]
        if made:
            return max(made)
    if r.status == DeliveryStatus.DONE or r.op != DeliveryOp.UPDATE:
        return r.item_version
    before = [v for v in approved if v < r.item_version]
    return max(before) if before else r.item_version


def _check(
    ctx: Context, p: _Pending, words: WordList | None, read_file: Callable[..., list[Finding]]
) -> CheckedPublication:
    r = p.row
    found: list[Finding] = scan_text(r.url, "url", words) if r.url else []
    cleared_keys: set[tuple[str, str, str]] = set()
    notes = list(p.notes)
    if r.origin != ItemOrigin.PIPELINE:
        found += scan_text(r.title, "title", words) if r.title else []
        notes.append(
            f"recorded, not published here ({r.origin}): only its title and URL are stored, the rest of what "
            "was published cannot be inspected here"
        )
    else:
        cleared_keys = p.cleared
        # the cover's alt text too: its <img alt> on the website, its alt_text in the CMS
        cover_alt = next((a.alt for a in p.assets if a.role == "cover"), None)
        media = ctx.settings.media_store()
        files = [(content.local_media(ctx.settings.media_dir, a.sha256, media), a.filename) for a in p.assets]
        found += version_findings(p.title, p.summary, p.body, cover_alt, files, words, read_file)
        read = {a.sha256 for a in p.assets}
        spec = ctx.channels.get(r.channel)
        site = getattr(spec.channel, "site_objects", None) if spec is not None else None
        if site is not None:
            on_site, why = _site_findings(site, r.item_id, words, read, read_file)
            seen = {(f.kind, f.masked) for f in found}
            for f in on_site:  # what the version already showed is not reported twice
                if (f.kind, f.masked) not in seen:
                    seen.add((f.kind, f.masked))
                    found.append(f)
            notes += why
    loose = {(kind, masked) for kind, _, masked in cleared_keys}
    exposed: list[Finding] = []
    ok: list[Finding] = []
    for f in found:
        by_place = (f.kind, f.where, f.masked) in cleared_keys
        # a summary, or the page's text, has no line of the body: matched on kind and value, as the worker does
        anywhere = not f.where.startswith(("title", "body:")) and (f.kind, f.masked) in loose
        (ok if by_place or anywhere else exposed).append(f)
    return CheckedPublication(
        delivery_id=r.id,
        item_id=r.item_id,
        channel=r.channel,
        url=mask_text(r.url) if r.url else None,
        published_at=r.published_at,
        origin=r.origin,
        version=p.version,
        findings=tuple(exposed),
        cleared=tuple(ok),
        notes=tuple(notes),
    )


def _site_findings(
    site: ObjectStore, item_id: int, words: WordList | None, read: set[str], read_file: Callable[..., list[Finding]]
) -> tuple[list[Finding], list[str]]:
    """The findings of the page the site serves for the item (from its folder or its bucket) and of each
    file it links that is not byte-identical to one already read; and a note when the page is missing.
    An unreachable bucket raises ObjectStoreError: a page that could not be read is never called clean."""
    import lxml.html

    rel = site_page_path(item_id)
    data = site.get(rel)
    if data is None:
        kind = "folder" if isinstance(site, FolderStore) else "bucket"
        return [], [f"the page {rel} is not in the site {kind} {site.where}: nothing of it was read there"]
    try:
        doc = lxml.html.fromstring(data)
    except ValueError as exc:  # lxml's ParserError is a ValueError
        return [finding("uninspectable", rel, f"cannot be inspected: {type(exc).__name__}")], []
    found = scan_text(doc.text_content(), rel, words)
    for img in doc.iter("img"):  # alt text is published text, though no text_content() of the page
        found += scan_text(img.get("alt") or "", rel, words)
    for link in doc.iter("a"):
        href = (link.get("href") or "").split("#", 1)[0].split("?", 1)[0]
        if not href or "://" in href or href.startswith(("/", "mailto:")):
            continue
        key = posixpath.normpath(posixpath.join(posixpath.dirname(rel), unquote(href)))
        if key.startswith("../") or key in ("..", ".") or PurePosixPath(key).suffix.lower() in SITE_PAGES:
            continue  # outside the site, or a page of the site itself
        with site.local_copy(key) as target:
            if target is None:
                continue
            digest = _sha256(target)
            if digest in read:
                continue
            read.add(digest)
            name = link.get("download") or (link.text_content() or "").strip() or PurePosixPath(key).name
            found += [replace(f, where=f"{rel} {f.where}") for f in read_file(target, words=words, name=name)]
    return found, []


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
