"""The masking action (issue 12): a new version of an item with every resident ID, mobile and bank
card number masked in its title, summary and body (its images' alt text included), in its cover's alt
text, in each channel's own wording (its title, summary, body and cover_alt, issue 14), and each
DOCX/XLSX attachment that has a finding replaced by a cleaned copy
(publisher.pipeline.privacy.clean_file). It is an edit: the item goes back to the first review, and
the new version is checked afresh.
"""

from __future__ import annotations

import difflib
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session

from publisher.errors import InvalidInput, NotAllowed
from publisher.models import Item, PrivacyDecision, Role, User
from publisher.pipeline import content
from publisher.pipeline.privacy import clean_file, mask_text
from publisher.pipeline.privacy.check import COVER_ALT, DOCX, XLSX
from publisher.pipeline.privacy.findings import NUMBER_KINDS
from publisher.pipeline.privacy.numbers import find_numbers
from publisher.pipeline.workflow.context import Context
from publisher.pipeline.workflow.items import apply_edit
from publisher.pipeline.workflow.privacy import assets_of, decide, findings_of
from publisher.pipeline.workflow.states import EDIT, allowed, get_item
from publisher.pipeline.workflow.wording import public as public_wording

#: the fields of a channel's wording that are text, and so masked (the cover is an image; its alt text
#: is published as the cover's ``<img alt>``/``alt_text``)
WORDING_TEXT = ("title", "summary", "body", "cover_alt")

#: the places in the item's own text (not an attachment) a finding can be
TEXT_PLACES = ("title", "summary", "body", COVER_ALT)
#: what a cleaned copy removes: numbers, and what the file hid
CLEANED_KINDS = (*NUMBER_KINDS, "hidden_content")


@dataclass
class Masked:
    """What the masking action did: the new version, the diff of the body, of the cover's alt text and of
    each channel's wording field it changed, the attachments cleaned."""

    item: Item
    diff: str
    cleaned: list[str] = field(default_factory=list)
    #: findings of the version before that the new version masked
    masked_findings: int = 0


def tag_numbers(text: str) -> str:
    """``text`` with each number replaced by its kind, for the removed side of a diff: the raw value
    must not be printed, and its masked form there would hide what changed."""
    out, pos = [], 0
    for hit in find_numbers(text):
        out += [text[pos : hit.start], f"[{hit.kind}]"]
        pos = hit.end
    return "".join([*out, text[pos:]])


def body_diff(before: str, after: str, version: int, name: str = "body") -> str:
    """A unified diff of the body (or of the text ``name``: ``wechat.summary``…); removed lines show
    ``[mobile]`` etc. where the number was."""
    if before and not before.endswith("\n"):
        before, after = before + "\n", after + "\n"  # a one-line title: no "no newline" marker in the diff
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"{name}, version {version}",
        tofile=f"{name}, version {version + 1} (masked)",
    )
    return "".join(tag_numbers(x) if x.startswith("-") and not x.startswith("---") else x for x in lines)


def mask_wording(overrides: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """Each channel's wording with the numbers in its title, summary, body and cover_alt masked; the
    cover and every other field as they were (the body's HTML is rendered again by the edit)."""
    return {
        ch: {k: mask_text(v) if k in WORDING_TEXT else v for k, v in fields.items()} for ch, fields in overrides.items()
    }


def _in_text(where: str, channels: Iterable[str]) -> bool:
    """Whether a finding's ``where`` is a place masking rewrites: the item's title, summary, body
    (``body:12``) or cover's alt text (``cover.alt``), or a channel's (``wechat.title``, ``email.body:3``,
    ``wechat.cover_alt``)."""
    place = where.split(":")[0]
    channel, dot, key = place.partition(".")
    return place in TEXT_PLACES or (bool(dot) and channel in channels and key in WORDING_TEXT)


def _owner(where: str, names: Iterable[str]) -> str | None:
    """The attachment a finding's ``where`` names (``名单.xlsx:Sheet2!C5`` → ``名单.xlsx``)."""
    return next((n for n in names if where == n or where.startswith(n + ":")), None)


def _masker(actor: User) -> User | None:
    """Whom the edit row's rule of who may edit is asked about: the 保密审查 reviewer is no editor of
    the department and may mask from the review; everyone else is asked about."""
    return None if actor.role == Role.CONFIDENTIALITY_REVIEWER else actor


def mask_refusal(session: Session, item: Item, actor: User) -> str | None:
    """Why :func:`mask_item` would refuse ``actor`` for who they are or the item's state (None: it
    would go on to look for something to mask), for a face that offers the button only where it works."""
    try:
        allowed(session, item, EDIT, user=_masker(actor))
    except NotAllowed as exc:
        return str(exc)
    return None


def mask_item(ctx: Context, session: Session, *, item_id: int, actor: User) -> Masked:
    """Mask the item into a new version. Who may: the item's editors, an admin, or the confidentiality
    reviewer (from the review); whoever masks made the new version and so may not review it."""
    item = get_item(session, item_id, lock=True)
    before = findings_of(session, item)
    who = _masker(actor)
    # asked first, as the edit's transition will: nothing is written for an edit that would be refused,
    # and a person who may not edit hears that, not what is in the item
    allowed(session, item, EDIT, user=who)
    assets = assets_of(session, item.id)
    dirty = {_owner(f.where, [a.filename for a in assets]) for f in before if f.kind in CLEANED_KINDS}
    to_clean = [
        a
        for a in assets
        if a.role == "attachment" and a.filename in dirty and Path(a.filename).suffix.lower() in DOCX | XLSX
    ]
    changes = {
        k: masked
        for k in ("title", "summary")
        if (masked := mask_text(getattr(item, k) or "")) != (getattr(item, k) or "")
    }
    old_body = item.body_markdown
    body = mask_text(old_body)
    old_wording = item.overrides or {}
    wording = mask_wording(old_wording)
    if wording != old_wording:
        changes["overrides"] = public_wording(wording)
    cover = next((a for a in assets if a.role == "cover"), None)
    old_alt = (cover.alt if cover is not None else None) or ""
    alt = mask_text(old_alt)
    if not changes and body == old_body and alt == old_alt and not to_clean:
        raise InvalidInput(
            f"item {item.id} version {item.version} has nothing to mask (no ID, mobile or card number in its "
            "text, its cover's alt text or its channels' wording, no DOCX/XLSX attachment with a finding): "
            "clear each finding with "
            f'`publisher privacy clear {item.id} NO --reason "…" --as USER` instead'
        )
    new_assets: list[content.StoredAsset] = []
    if cover is not None and alt != old_alt:
        # the same picture described with the number masked: the edit puts it in the old cover's place
        new_assets.append(
            content.StoredAsset(
                sha256=cover.sha256,
                filename=cover.filename,
                content_type=cover.content_type,
                role=cover.role,
                size=cover.size,
                width=cover.width,
                height=cover.height,
                alt=alt,
            )
        )
    with tempfile.TemporaryDirectory(prefix="publisher-mask-") as tmp:
        for a in to_clean:
            # the copy keeps the file's name: readers download it under the name they were shown
            # (the stored copy has no extension, and clean_file tells the format by it)
            src = Path(tmp) / str(a.id) / "original" / a.filename
            dst = Path(tmp) / str(a.id) / a.filename
            src.parent.mkdir(parents=True)
            shutil.copyfile(content.local_media(ctx.settings.media_dir, a.sha256, ctx.settings.media_store()), src)
            clean_file(src, dst)
            new_assets.append(
                content.store_file(
                    dst,
                    media_dir=ctx.settings.media_dir,
                    role="attachment",
                    max_bytes=ctx.settings.review.max_asset_bytes,
                    remote=ctx.settings.media_store(),
                )
            )
    version = item.version
    cleaned = {a.filename for a in to_clean}
    masked = 0
    for f in before:
        by_text = f.kind in NUMBER_KINDS and _in_text(f.where, old_wording)
        by_copy = f.kind in CLEANED_KINDS and _owner(f.where, cleaned) is not None
        if f.decision is None and (by_text or by_copy):
            decide(f, PrivacyDecision.MASKED, actor.name, f"masked into version {version + 1}")
            masked += 1
    item = apply_edit(
        ctx,
        session,
        item,
        actor=actor,
        who=who,
        changes=changes,
        body_markdown=body if body != old_body else None,
        new_assets=new_assets,
        drop_assets=[a.id for a in to_clean if a.id is not None],
        action_detail={"privacy_masked": masked, "cleaned": sorted(cleaned)},
    )
    diff = body_diff(old_body, item.body_markdown, version)
    if alt != old_alt:
        diff += body_diff(old_alt, alt, version, COVER_ALT)
    diff += "".join(
        body_diff(before_text, wording[ch][k], version, f"{ch}.{k}")
        for ch, fields in sorted(old_wording.items())
        for k, before_text in fields.items()
        if k in WORDING_TEXT and wording[ch][k] != before_text
    )
    return Masked(item, diff, sorted(cleaned), masked)
