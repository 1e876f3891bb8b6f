"""Writing an item from the browser or the API: drafts, uploads, the per-channel preview, the diff."""

from __future__ import annotations

import difflib
import re
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from publisher.channel import Asset as PostAsset
from publisher.channel import Post
from publisher.checklist import checklist_name
from publisher.errors import InvalidInput
from publisher.models import Asset, Item, ItemVersion, Review, Role, User, utcnow
from publisher.pipeline import content, workflow
from publisher.pipeline.workflow import Context, wording
from publisher.pipeline.workflow.catalogue import KEYS as CATALOGUE_KEYS

_ASSET = re.compile(r"asset://([0-9a-f]{64})")


class UploadTooLarge(InvalidInput):
    """The file is larger than review.max_asset_bytes (or has more pixels than review.max_image_pixels)."""


class NotAnImage(InvalidInput):
    """The file is not an image we can read (JPEG, PNG, GIF, WebP)."""


def store_upload(ctx: Context, data_chunks: Any, filename: str) -> content.StoredAsset:
    """Spool an uploaded image to a temporary file, check it really is an image, store it by hash."""
    limit = ctx.settings.review.max_asset_bytes
    suffix = Path(filename or "upload").suffix.lower()[:10]
    with tempfile.TemporaryDirectory(dir=ctx.settings.media_dir) as tmp:
        path = Path(tmp) / f"upload{suffix}"
        size = 0
        try:
            with path.open("wb") as f:
                for chunk in data_chunks:
                    size += len(chunk)
                    if size > limit:
                        raise UploadTooLarge(f"the file is larger than {limit / 1e6:.0f} MB (review.max_asset_bytes)")
                    f.write(chunk)
        except OSError as exc:
            raise content.disk_error(exc, ctx.settings.media_dir) from exc
        try:
            stored = content.store_file(
                path,
                media_dir=ctx.settings.media_dir,
                role="image",
                max_bytes=limit,
                max_pixels=ctx.settings.review.max_image_pixels,
                remote=ctx.settings.media_store(),
            )
        except content.TooManyPixels as exc:
            raise UploadTooLarge(f"{filename} {exc.detail}") from exc
        except content.NotAcceptedFormat as exc:
            raise NotAnImage(f"{filename} {exc.detail}") from exc
        except InvalidInput as exc:
            raise NotAnImage(f"{filename}: not a readable image; upload a JPEG, PNG, GIF or WebP") from exc
    if stored.content_type not in content.IMAGE_TYPES:
        raise NotAnImage(f"{filename}: {stored.content_type} is not an image type we publish")
    stored.filename = Path(filename).name[:200] or stored.filename
    return stored


def _uploaders_path(ctx: Context, sha: str) -> Path:
    return content.media_path(ctx.settings.media_dir, sha).with_name(f"{sha}.uploaders")


def _uploader_line(user: User) -> str:
    return f"department:{user.department}\n" if user.department else f"user:{user.name}\n"


def record_upload(ctx: Context, sha: str, user: User) -> None:
    """Note beside the stored file who uploaded it: their department (or their name, when they have none).

    An upload belongs to no item until a save attaches it; until then this is what says whose it is
    (:func:`may_use`). One short line per department, appended (O_APPEND: concurrent uploads interleave whole).
    """
    path = _uploaders_path(ctx, sha)
    line = _uploader_line(user)
    if path.is_file() and line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        return
    with path.open("a", encoding="utf-8") as f:
        f.write(line)


def uploaded_by(ctx: Context, sha: str, user: User) -> bool:
    path = _uploaders_path(ctx, sha)
    return path.is_file() and _uploader_line(user) in path.read_text(encoding="utf-8").splitlines(keepends=True)


def may_use(ctx: Context, session: Session, user: User, sha: str) -> bool:
    """Whether ``user`` may put image ``sha`` in an item (and see it): an admin, one their department
    uploaded, or one already attached to an item they may view. Not whether it exists."""
    from publisher.web.common import can_view

    if user.role == Role.ADMIN or uploaded_by(ctx, sha, user):
        return True
    holders = session.exec(select(Item).join(Asset, col(Asset.item_id) == Item.id).where(Asset.sha256 == sha))
    return any(can_view(user, item) for item in holders)


def referenced_assets(
    ctx: Context, body: str, known: Collection[str] = (), *, session: Session, user: User
) -> list[content.StoredAsset]:
    """The uploaded images a body refers to (asset://<sha>), re-checked from the media store.

    Another department's image is refused with the very words a missing one gets: the answer must
    tell neither its bytes nor that it exists.
    """
    out = []
    for sha in dict.fromkeys(_ASSET.findall(body)):
        if sha in known:
            continue
        path = content.local_media(ctx.settings.media_dir, sha, ctx.settings.media_store())
        if not path.is_file() or not may_use(ctx, session, user, sha):
            raise InvalidInput(
                f"image asset://{sha[:12]}… is not among the images you uploaded or may see: insert it again"
            )
        a = content.store_file(
            path,
            media_dir=ctx.settings.media_dir,
            role="image",
            max_bytes=ctx.settings.review.max_asset_bytes,
            max_pixels=ctx.settings.review.max_image_pixels,
        )
        a.filename = f"{sha[:12]}{_ext(a.content_type)}"
        out.append(a)
    return out


def _ext(content_type: str) -> str:
    return {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp"}.get(content_type, "")


def check_body_size(ctx: Context, body: str) -> None:
    if len(body.encode()) > ctx.settings.review.max_body_bytes:
        raise InvalidInput("the body is larger than review.max_body_bytes")


def draft_from_fields(ctx: Context, fields: Mapping[str, Any], *, session: Session, user: User) -> content.ItemDraft:
    body = str(fields.get("body_markdown") or "")
    check_body_size(ctx, body)
    keep = {
        k: fields[k]
        for k in (
            "summary",
            "category",
            "department",
            "checklist_item",
            "channels",
            "publish_at",
            "display_until",
            "display_working_days",
            "overrides",
            *CATALOGUE_KEYS,
        )
        if fields.get(k) not in (None, "", [])
    }
    assets = referenced_assets(ctx, body, session=session, user=user)
    if keep.get("overrides"):
        known = {a.sha256 for a in assets}
        assets += wording_assets(ctx, keep["overrides"], known, session=session, user=user)
    return content.ItemDraft(title=str(fields.get("title") or ""), body_markdown=body, fields=keep, assets=assets)


def wording_assets(
    ctx: Context, overrides: Any, known: Collection[str], *, session: Session, user: User
) -> list[content.StoredAsset]:
    """The uploaded images the per-channel wording uses that the item does not hold yet: those of each
    channel's body, and each channel's cover (kept as an asset no other channel's post carries)."""
    out: list[content.StoredAsset] = []
    seen = set(known)
    for given in overrides.values() if isinstance(overrides, Mapping) else ():
        if not isinstance(given, Mapping):
            continue  # the service names what is wrong with it
        for key in ("body", "cover"):
            for a in referenced_assets(ctx, str(given.get(key) or ""), seen, session=session, user=user):
                if key == "cover":
                    a.role = wording.CHANNEL_COVER
                seen.add(a.sha256)
                out.append(a)
    return out


#: the live preview renders at most this much of the body: it runs on typing, and markdown-it-py
#: takes seconds over a megabyte (bench/render_bench.py); the page says when it showed less
PREVIEW_MAX_BYTES = 200_000


def preview_part(body: str) -> tuple[str, bool]:
    """The part of ``body`` the preview renders (whole lines, at most PREVIEW_MAX_BYTES), and whether it is cut."""
    raw = body.encode()
    if len(raw) <= PREVIEW_MAX_BYTES:
        return body, False
    part = raw[:PREVIEW_MAX_BYTES].decode(errors="ignore")
    return part[: part.rfind("\n") + 1] or part, True


@dataclass
class ChannelPreview:
    name: str
    label: str
    type_name: str
    html: str
    problems: list[str]
    next_slot: datetime | None
    #: the title this channel shows (its own wording's, or the item's)
    title: str = ""
    #: the fields this channel has its own wording for
    wording: tuple[str, ...] = ()
    #: the cover picked for this channel (its sha256) and its alt text
    cover: str | None = None
    cover_alt: str = ""


def preview_wording(ctx: Context, fields: Mapping[str, Any]) -> tuple[dict[str, dict[str, str]], str | None]:
    """The per-channel wording the compose form holds, checked as a save would (except each channel's
    judgement, which the preview shows per channel), and what is wrong with it (None: nothing)."""
    names = [c for c in (fields.get("channels") or []) if c in ctx.channels]
    try:
        return wording.check(
            fields.get("overrides"), channels=names, max_body_bytes=ctx.settings.review.max_body_bytes
        ), None
    except InvalidInput as exc:
        return {}, str(exc)


def usable_assets(ctx: Context, session: Session, user: User, body: str) -> set[str]:
    """The images ``body`` refers to that ``user`` may use (:func:`may_use`) and that exist."""
    found = [
        sha
        for sha in dict.fromkeys(_ASSET.findall(body))
        if content.local_media(ctx.settings.media_dir, sha, ctx.settings.media_store()).is_file()
    ]
    return {sha for sha in found if may_use(ctx, session, user, sha)}


def preview(
    ctx: Context,
    fields: Mapping[str, Any],
    *,
    author: str,
    usable: Collection[str] | None = None,
    words: Mapping[str, Mapping[str, str]] | None = None,
) -> list[ChannelPreview]:
    """Render the body and ask each target channel what it thinks, without storing anything; each
    channel judges the post it would receive, with its wording (``words``, :func:`preview_wording`).

    Only the first PREVIEW_MAX_BYTES of the body (:func:`preview_part`): the channels judge that part.
    """
    body, _ = preview_part(str(fields.get("body_markdown") or ""))
    html = content.render_markdown(body)
    words = words or {}
    assets = []
    extra = " ".join(f"{w.get('body', '')} asset://{w.get('cover', '')}" for w in words.values())
    covers = {w["cover"] for w in words.values() if w.get("cover")}
    for sha in dict.fromkeys(_ASSET.findall(body + " " + extra)):
        path = content.local_media(ctx.settings.media_dir, sha, ctx.settings.media_store())
        # another department's image is left out: the channels then say what they say of a missing one
        if path.is_file() and (usable is None or sha in usable):
            role = wording.CHANNEL_COVER if sha in covers else "image"
            assets.append(PostAsset(sha256=sha, path=path, filename=sha[:12], content_type="image/png", role=role))
    now = utcnow()
    number = fields.get("checklist_item")
    post = Post(
        item_id=0,
        title=str(fields.get("title") or ""),
        body_markdown=body,
        body_html=html,
        summary=str(fields.get("summary") or "") or content.plain_text(body, 120),
        category=str(fields.get("category") or ""),
        department=str(fields.get("department") or ""),
        author=author,
        publish_at=now,
        updated_at=now,
        checklist_item=number if isinstance(number, int) else None,
        checklist_name=checklist_name(number if isinstance(number, int) else None),
        assets=tuple(assets),
        channels=tuple(fields.get("channels") or ()),
        site_url=None,
    )
    names = [c for c in (fields.get("channels") or []) if c in ctx.channels] or [
        n for n, s in ctx.channels.items() if s.enabled
    ]
    out = []
    for name in names:
        spec = ctx.channels[name]
        # a channel whose secret this server lacks says so here instead of failing the whole preview
        mine = wording.for_channel(post, words.get(name))
        problems = [str(spec.unavailable)] if spec.unavailable is not None else list(spec.channel.validate(mine))
        if post.title and len(post.title) > 500:
            problems.append(f"the title is {len(post.title)} characters; at most 500")
        cover = mine.cover
        if cover is not None:  # the submit refuses a channel's cover without alt text: said as it is picked
            fix = f"`{name}.cover_alt` (the field under the picture)"
            problems += workflow.alt_text_problems("", cover=cover, cover_fix=fix)
        out.append(
            ChannelPreview(
                name=name,
                label=spec.label,
                type_name=spec.type_name,
                html=mine.body_html,
                problems=problems,
                next_slot=spec.next_slot(now, ctx.settings.zone),
                title=mine.title,
                wording=tuple(sorted(mine.wording)),
                cover=cover.sha256 if cover is not None else None,
                cover_alt=cover.alt if cover is not None else "",
            )
        )
    return out


@dataclass
class CoverChoice:
    """An image the compose page offers as a channel's cover: its hash and the name shown under it."""

    sha256: str
    name: str


def cover_choices(
    ctx: Context, session: Session, user: User, item_id: int | None, values: Mapping[str, Any]
) -> list[CoverChoice]:
    """The images a channel's cover may be picked from on the compose page: the item's own pictures
    (its images, its cover, the channels' covers), then those the form refers to that ``user`` may use
    (uploaded since, in the body, a channel's body or cover). Attachments are no covers."""
    out: dict[str, str] = {}
    if item_id is not None:
        rows = session.exec(
            select(Asset.sha256, Asset.filename)
            .where(Asset.item_id == item_id, col(Asset.role).in_(("image", "cover", wording.CHANNEL_COVER)))
            .order_by(col(Asset.id))
        )
        for sha, filename in rows:
            out.setdefault(sha, filename)
    words = values.get("overrides") if isinstance(values.get("overrides"), Mapping) else {}
    text = " ".join(
        [
            str(values.get("body_markdown") or ""),
            *(f"{w.get('body', '')} {w.get('cover', '')}" for w in words.values() if isinstance(w, Mapping)),
        ]
    )
    usable = usable_assets(ctx, session, user, text)
    for sha in dict.fromkeys(_ASSET.findall(text)):
        if sha in usable:
            out.setdefault(sha, sha[:12])
    return [CoverChoice(sha, name) for sha, name in out.items()]


def known_assets(session: Session, item_id: int) -> set[str]:
    return set(session.exec(select(Asset.sha256).where(Asset.item_id == item_id)))


@dataclass
class DiffLine:
    kind: str  # "add" | "del" | "ctx" | "hunk"
    text: str


def changes_since_approval(session: Session, item: Item) -> tuple[int, list[DiffLine]] | None:
    """If an earlier version of ``item`` was approved, the diff from that version to the current one."""
    last = session.exec(
        select(Review)
        .where(Review.item_id == item.id, Review.approved == True, Review.item_version < item.version)  # noqa: E712
        .order_by(col(Review.item_version).desc())
    ).first()
    if last is None:
        return None
    versions = {
        v.version: v
        for v in session.exec(
            select(ItemVersion).where(
                ItemVersion.item_id == item.id, col(ItemVersion.version).in_([last.item_version, item.version])
            )
        )
    }
    old = versions.get(last.item_version)
    if old is None:
        return None
    # the per-channel wording follows the body: it is part of the version the reviewers approve
    a = [f"# {old.title}", "", *old.body_markdown.splitlines(), *wording.diff_lines(old.overrides)]
    b = [f"# {item.title}", "", *item.body_markdown.splitlines(), *wording.diff_lines(item.overrides)]
    lines = []
    for ln in list(difflib.unified_diff(a, b, f"v{old.version}", f"v{item.version}", lineterm="", n=2))[2:]:
        kind = {"+": "add", "-": "del", "@": "hunk"}.get(ln[:1], "ctx")
        # a removed line is text no longer in the item, such as a number masked since the approval: it
        # shows as its kind ([mobile]), never the number (issue 12)
        lines.append(DiffLine(kind, workflow.tag_numbers(ln) if kind == "del" else ln))
    return last.item_version, lines


def versions_of(session: Session, item_id: int) -> list[ItemVersion]:
    return list(session.exec(select(ItemVersion).where(ItemVersion.item_id == item_id).order_by(ItemVersion.version)))
