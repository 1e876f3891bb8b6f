"""Item content: Markdown files with YAML front matter, rendering, sanitising and the media store.

Rendering is markdown-it-py (CommonMark + tables); sanitising is nh3 (Ammonia) with an allow-list,
so no ``<script>``, event handler or ``javascript:`` URL survives into any page. Images and
attachments are stored once by content hash under ``media/`` and referred to as ``asset://<sha256>``
in the stored HTML; each channel substitutes its own hosted URL.
"""

from __future__ import annotations

import functools
import hashlib
import mimetypes
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import nh3
import yaml
from markdown_it import MarkdownIt

from publisher.errors import ConfigError, InvalidInput, StorageFull
from publisher.objectstore import ObjectStore, ObjectStoreError

_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.S)
#: a code span on one line (`![](x.png)` written as an example is text, not an image)
_CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)")
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")

ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "del",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
    "span",
    "div",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"align", "colspan", "rowspan"},
    "th": {"align", "colspan", "rowspan"},
    "ol": {"start"},
}
ALLOWED_SCHEMES = {"http", "https", "mailto", "asset"}
IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
#: the formats every channel takes (Pillow's names); a BMP or TIFF is refused with these named
IMAGE_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}
#: the role of an asset that is one channel's own cover (publisher.pipeline.workflow.wording)
CHANNEL_COVER = "channel_cover"
#: the pixel limit when the caller names none (the setting review.max_image_pixels)
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000

FRONT_MATTER_KEYS = {
    "title",
    "summary",
    "category",
    "department",
    "checklist_item",
    "channels",
    "publish_at",
    "cover",
    # the cover's alt text (替代文本): what the picture shows, for readers who cannot see it
    "cover_alt",
    "attachments",
    "author",
    "display_until",
    "display_working_days",
    # the disclosure catalogue (docs/catalogue.md); index_no (索引号) is known so that the service
    # refuses it saying why: the system gives it
    "index_no",
    "doc_number",
    "written_on",
    "topic",
    "disclosure_mode",
    "disclosure_scope",
    "validity",
    "replaced_by",
    "interprets",
    "revises",
    "awards",
    # the per-channel wording (publisher.pipeline.workflow.wording): {channel: {title, summary, body, cover}}
    "overrides",
}


class _FrontMatterLoader(yaml.SafeLoader):
    """safe_load without aliases: nine levels of nine ``*ref`` fit in 600 bytes and expand to 9**9 values
    (the "billion laughs"), and an item's front matter has no use for them."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in front matter; write the value out", event.start_mark
            )
        return super().compose_node(parent, index)


def _markdown() -> MarkdownIt:
    # html=False: raw HTML in the Markdown is shown as text, never passed through
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").enable("strikethrough")


@functools.lru_cache(maxsize=4)
def _rendered(markdown: str) -> str:
    """markdown-it's HTML (not yet sanitised), kept for the last few bodies.

    markdown-it-py is pure Python and linear but slow: ~3 s a megabyte of table rows on the shared
    machine (bench/render_bench.py). A save needs the body twice (the HTML, and the plain text its
    summary is cut from) and a submit or a preview again; each body is parsed once, not each time.
    """
    return _markdown().render(markdown)


def sanitize_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_SCHEMES,
        link_rel="noopener noreferrer",
    )


def render_markdown(markdown: str) -> str:
    """Markdown → sanitised HTML."""
    return sanitize_html(_rendered(markdown))


def plain_text(markdown: str, limit: int | None = None) -> str:
    """A plain-text rendering (for summaries and digests)."""
    text = nh3.clean(_rendered(markdown), tags=set())
    import html as _html

    text = re.sub(r"\s+", " ", _html.unescape(text)).strip()
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------------------------------ media
@dataclass
class StoredAsset:
    sha256: str
    filename: str
    content_type: str
    role: str
    size: int
    width: int | None = None
    height: int | None = None
    #: alt text (替代文本); set for a cover (front matter ``cover_alt``), body images carry theirs inline
    alt: str | None = None


def media_path(media_dir: Path, sha256: str) -> Path:
    return media_dir / sha256[:2] / sha256


def media_key(sha256: str) -> str:
    """The file's key in the media bucket (``[media] storage = "s3"``): as under media/."""
    return f"{sha256[:2]}/{sha256}"


def local_media(media_dir: Path, sha256: str, remote: ObjectStore | None) -> Path:
    """The stored file on this host: from ``media_dir``, fetched from the bucket first when another
    host stored it (checked against its hash, written atomically). The path may not exist: no such file."""
    path = media_path(media_dir, sha256)
    if remote is None or path.is_file():
        return path
    data = remote.get(media_key(sha256))
    if data is None:
        return path
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ObjectStoreError(f"the media bucket's {media_key(sha256)} does not match its hash; upload the file again")
    try:
        _write_atomically(path, data)
    except OSError as exc:
        raise disk_error(exc, media_dir) from exc
    return path


def _write_atomically(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class TooManyPixels(InvalidInput):
    """The image has more pixels than review.max_image_pixels."""

    def __init__(self, message: str, *, detail: str) -> None:
        self.detail = detail
        super().__init__(message)


class NotAcceptedFormat(InvalidInput):
    """The image is in a format the channels do not take (JPEG, PNG, GIF and WebP are taken)."""

    def __init__(self, message: str, *, detail: str) -> None:
        self.detail = detail
        super().__init__(message)


def _check_image(path: Path, *, role: str, max_pixels: int) -> tuple[int, int, str]:
    """Width, height and type of an image; InvalidInput when it is unreadable, of a format channels do
    not take, or larger than ``max_pixels`` (checked from the header, before any pixel is decoded)."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    limit = f"the limit is {max_pixels / 1e6:g} megapixels (review.max_image_pixels): scale it down and export it again"
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb check warns above 89 and refuses above 179 megapixels; ours is lower
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                fmt = im.format or ""
                if width * height > max_pixels:
                    detail = f"is {width}×{height} pixels ({width * height / 1e6:g} megapixels); {limit}"
                    raise TooManyPixels(f"{role} {path.name} {detail}", detail=detail)
                if fmt not in IMAGE_FORMATS:
                    detail = f"is a {fmt or 'unknown'} image; channels take JPEG, PNG, GIF or WebP: export it as one"
                    raise NotAcceptedFormat(f"{role} {path.name} {detail}", detail=detail)
                im.verify()
            with Image.open(path) as im:
                im.load()
    except Image.DecompressionBombError as exc:  # a header claiming more than Pillow will even open
        count = re.search(r"\((\d+) pixels\)", str(exc))
        detail = (f"is {int(count.group(1)) / 1e6:g} megapixels" if count else "has far too many pixels") + f"; {limit}"
        raise TooManyPixels(f"{role} {path.name} {detail}", detail=detail) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput(
            f"{role} {path.name} is not a readable image ({exc}); export it again as JPEG or PNG"
        ) from exc
    return width, height, IMAGE_FORMATS[fmt]


def store_file(
    path: Path,
    *,
    media_dir: Path,
    role: str,
    max_bytes: int,
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    remote: ObjectStore | None = None,
) -> StoredAsset:
    """Check a file and copy it into the media store (atomically, once per content), and into the
    media bucket when there is one (``remote``; ObjectStoreError when it refuses)."""
    if path.is_dir():
        raise InvalidInput(f"{role} {path} is a folder; name a file")
    if not path.is_file():
        raise InvalidInput(
            f"{role} file {path} does not exist (a name in an item file is relative to that file's folder)"
        )
    size = path.stat().st_size
    if size > max_bytes:
        raise InvalidInput(
            f"{role} file {path.name} is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB "
            "(review.max_asset_bytes)"
        )
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    width = height = None
    if role in ("image", "cover"):
        width, height, content_type = _check_image(path, role=role, max_pixels=max_pixels)
    target = media_path(media_dir, sha)
    if not target.exists():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        except OSError as exc:
            raise disk_error(exc, media_dir) from exc
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise disk_error(exc, media_dir) from exc
            raise
    if remote is not None and not remote.exists(media_key(sha)):
        remote.put_file(media_key(sha), target)
    return StoredAsset(sha, path.name, content_type, role, size, width, height)


def disk_error(exc: OSError, media_dir: Path) -> Exception:
    """A failed write to the media store as one line naming the folder (the error itself if not the disk's)."""
    import errno

    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(
            f"the disk holding {media_dir} is full: free space there, then try again; nothing was stored"
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ConfigError(
            f"cannot write to the media store {media_dir} ({exc.strerror}): make it writable for the "
            "user who runs publisher"
        )
    return exc


# ------------------------------------------------------------------------------------- item files
@dataclass
class ItemDraft:
    """An item as read from a Markdown file, before it is stored."""

    title: str
    body_markdown: str
    fields: dict[str, Any] = field(default_factory=dict)
    assets: list[StoredAsset] = field(default_factory=list)


@dataclass
class ItemSource:
    """An item file split into its front matter and Markdown body, nothing stored yet."""

    fields: dict[str, Any]
    body: str
    #: the line of the file on which the body starts (1-based), so a body line can be named in the file
    body_line: int = 1


def read_item_source(path: Path, *, max_body_bytes: int) -> ItemSource:
    """Read FILE.md into front matter and body (the checks of read_item_file, without the media store).

    Raises InvalidInput naming the problem (not UTF-8, too large, bad front matter).
    """
    if path.is_dir():
        raise InvalidInput(f"{path} is a folder; give the item's .md file")
    if not path.is_file():
        raise InvalidInput(f"{path} does not exist")
    size = path.stat().st_size
    if size > max_body_bytes:
        raise InvalidInput(
            f"{path.name} is {size / 1e6:.1f} MB; an item may be at most {max_body_bytes / 1e6:.1f} MB "
            "(put large documents in as attachments)"
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        hint = ""
        try:
            raw.decode("gb18030")
            hint = " (it looks like GBK/GB18030: save it as UTF-8)"
        except UnicodeDecodeError:
            pass
        raise InvalidInput(f"{path.name} is not UTF-8 text at byte {exc.start}{hint}") from exc
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        raise InvalidInput(
            f"{path.name} contains the NUL character (0x00) on line {line}: remove it (is it a text file?)"
        )
    fields: dict[str, Any] = {}
    body = text
    m = _FRONT_MATTER.match(text)
    if m:
        try:
            loaded = yaml.load(m.group(1), Loader=_FrontMatterLoader) or {}
        except yaml.YAMLError as exc:
            # str(exc) spans several lines with a caret drawing; the CLI shows one line
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 2}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
            raise InvalidInput(f"{path.name}: the front matter is not valid YAML{where}: {problem}") from exc
        if not isinstance(loaded, dict):
            raise InvalidInput(f"{path.name}: the front matter must be key: value lines")
        unknown = set(loaded) - FRONT_MATTER_KEYS
        if unknown:
            raise InvalidInput(
                f"{path.name}: unknown front matter key(s) {', '.join(sorted(map(str, unknown)))}; "
                f"known: {', '.join(sorted(FRONT_MATTER_KEYS))}"
            )
        fields = loaded
        body = text[m.end() :]
    body_line = text.count("\n", 0, m.end()) + 1 if m else 1
    return ItemSource(fields=fields, body=body, body_line=body_line)


def read_item_file(
    path: Path,
    *,
    media_dir: Path,
    max_body_bytes: int,
    max_asset_bytes: int,
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    remote: ObjectStore | None = None,
) -> ItemDraft:
    """Read FILE.md: YAML front matter + Markdown body; local images are copied into the media store.

    Raises InvalidInput naming the problem (not UTF-8, too large, bad front matter, missing image).
    """
    source = read_item_source(path, max_body_bytes=max_body_bytes)
    fields, body = source.fields, source.body
    title = str(fields.pop("title", "") or "").strip()
    if not title:
        heading = re.match(r"\s*#\s+(.+)", body)
        if heading:
            title = heading.group(1).strip()
            body = body[heading.end() :].lstrip("\n")
    if not title:
        raise InvalidInput(f"{path.name}: no title (add `title:` to the front matter or a `# heading`)")
    base = path.parent
    assets: list[StoredAsset] = []

    def _image(m: re.Match[str]) -> str:
        alt, target = m.group(1), m.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
            return m.group(0)  # a remote URL: channels decide (WeChat refuses them at review)
        stored = store_file(
            base / target,
            media_dir=media_dir,
            role="image",
            max_bytes=max_asset_bytes,
            max_pixels=max_image_pixels,
            remote=remote,
        )
        assets.append(stored)
        return f"![{alt}](asset://{stored.sha256})"

    body = _MD_IMAGE.sub(_image, body)
    cover_alt = str(fields.pop("cover_alt", None) or "").strip()
    if len(cover_alt) > 500:
        raise InvalidInput(
            f"{path.name}: cover_alt is {len(cover_alt)} characters; at most 500 — say what the picture shows"
        )
    if fields.get("cover"):
        cover = store_file(
            base / str(fields.pop("cover")),
            media_dir=media_dir,
            role="cover",
            max_bytes=max_asset_bytes,
            max_pixels=max_image_pixels,
            remote=remote,
        )
        cover.alt = cover_alt or None
        assets.append(cover)
    elif cover_alt:
        raise InvalidInput(f"{path.name}: cover_alt is set but there is no cover; add `cover: FILE` or drop cover_alt")
    for a in fields.pop("attachments", None) or []:
        assets.append(
            store_file(base / str(a), media_dir=media_dir, role="attachment", max_bytes=max_asset_bytes, remote=remote)
        )
    for wording in (fields.get("overrides") or {}).values() if isinstance(fields.get("overrides"), dict) else ():
        if isinstance(wording, dict) and isinstance(wording.get("body"), str):
            wording["body"] = _MD_IMAGE.sub(_image, wording["body"])
    assets += store_channel_covers(
        fields.get("overrides"),
        base,
        media_dir=media_dir,
        max_bytes=max_asset_bytes,
        max_pixels=max_image_pixels,
        remote=remote,
    )
    return ItemDraft(title=title, body_markdown=body, fields=fields, assets=assets)


def store_channel_covers(
    overrides: Any,
    base: Path,
    *,
    media_dir: Path,
    max_bytes: int,
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    remote: ObjectStore | None = None,
) -> list[StoredAsset]:
    """Store each cover file the per-channel wording names (relative to ``base``) as an asset no other
    channel's post carries (:data:`CHANNEL_COVER`), and put its hash in its place. A cover already
    stored (``asset://<sha256>`` or the hash) is left; a malformed wording is left to the service to name."""
    stored = []
    for wording in overrides.values() if isinstance(overrides, dict) else ():
        if not isinstance(wording, dict) or not wording.get("cover"):
            continue
        if re.fullmatch(r"(asset://)?[0-9a-f]{64}", str(wording["cover"])):
            continue
        cover = store_file(
            base / str(wording["cover"]),
            media_dir=media_dir,
            role="cover",
            max_bytes=max_bytes,
            max_pixels=max_pixels,
            remote=remote,
        )
        cover.role = CHANNEL_COVER
        stored.append(cover)
        wording["cover"] = cover.sha256
    return stored


def images_without_alt(markdown: str) -> list[tuple[int, str]]:
    """The images of a Markdown body with no alt text (替代文本): (line, the image as written), line 1-based.

    markdown-it decides what is an image (one in a code block or code span is text); the line and the
    Markdown as written come from the lines of the block it sits in.
    """
    if "![" not in markdown:
        return []
    lines = markdown.splitlines()
    found: list[tuple[int, str]] = []
    for tok in _markdown().parse(markdown):
        if tok.type != "inline" or tok.map is None:
            continue
        missing = sum(1 for c in tok.children or () if c.type == "image" and not c.content.strip())
        if not missing:
            continue
        start, end = tok.map
        written = [
            (n + 1, m.group(0))
            for n in range(start, end)
            for m in _MD_IMAGE.finditer(_CODE_SPAN.sub(lambda c: " " * len(c.group(0)), lines[n]))
            if not m.group(1).strip()
        ]
        found.extend((written + [(start + 1, "![]")] * missing)[:missing])
    return found


def local_image_targets(markdown: str) -> list[str]:
    """The local files a Markdown body shows as images (remote URLs and ``asset://`` left out)."""
    return [m.group(2) for m in _MD_IMAGE.finditer(markdown) if not re.match(r"^[a-z][a-z0-9+.-]*:", m.group(2), re.I)]


def copy_media(src_dir: Path, dst_dir: Path) -> None:
    """Copy a media store (used by the demo)."""
    shutil.copytree(src_dir, dst_dir, dirs_exist_ok=True)


def parse_time(value: Any, *, what: str = "time") -> datetime:
    """An aware datetime from ISO text or a datetime; naive values are refused with the fix."""
    if isinstance(value, datetime):
        dt = value
    else:
        text = str(value).strip()
        try:
            dt = datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text and " " in text else text)
        except ValueError as exc:
            raise InvalidInput(
                f"{what} {text!r} is not a date-time; write it as ISO 8601 with a zone, e.g. 2026-12-01T09:00+08:00"
            ) from exc
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise InvalidInput(f"{what} {value!s} has no time zone; add one, e.g. {dt.isoformat(timespec='minutes')}+08:00")
    return dt
