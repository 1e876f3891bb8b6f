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

from publisher.errors import InvalidInput

_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.S)
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "i", "img", "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table", "tbody", "td", "th",
    "thead", "tr", "ul", "span", "div",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"align", "colspan", "rowspan"},
    "th": {"align", "colspan", "rowspan"},
    "ol": {"start"},
}
ALLOWED_SCHEMES = {"http", "https", "mailto", "asset"}
IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff"}

FRONT_MATTER_KEYS = {
    "title", "summary", "category", "department", "checklist_item", "channels", "publish_at", "cover",
    "attachments", "author",
}  # fmt: skip


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


def media_path(media_dir: Path, sha256: str) -> Path:
    return media_dir / sha256[:2] / sha256


def store_file(path: Path, *, media_dir: Path, role: str, max_bytes: int) -> StoredAsset:
    """Check a file and copy it into the media store (atomically, once per content)."""
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
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                im.verify()
            with Image.open(path) as im:
                im.load()
                width, height = im.size
                content_type = Image.MIME.get(im.format or "", content_type)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise InvalidInput(
                f"{role} {path.name} is not a readable image ({exc}); export it again as JPEG or PNG"
            ) from exc
    target = media_path(media_dir, sha)
    if not target.exists():
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
    return StoredAsset(sha, path.name, content_type, role, size, width, height)


# ------------------------------------------------------------------------------------- item files
@dataclass
class ItemDraft:
    """An item as read from a Markdown file, before it is stored."""

    title: str
    body_markdown: str
    fields: dict[str, Any] = field(default_factory=dict)
    assets: list[StoredAsset] = field(default_factory=list)


def read_item_file(path: Path, *, media_dir: Path, max_body_bytes: int, max_asset_bytes: int) -> ItemDraft:
    """Read FILE.md: YAML front matter + Markdown body; local images are copied into the media store.

    Raises InvalidInput naming the problem (not UTF-8, too large, bad front matter, missing image).
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
    fields: dict[str, Any] = {}
    body = text
    m = _FRONT_MATTER.match(text)
    if m:
        try:
            loaded = yaml.safe_load(m.group(1)) or {}
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
        stored = store_file((base / target), media_dir=media_dir, role="image", max_bytes=max_asset_bytes)
        assets.append(stored)
        return f"![{alt}](asset://{stored.sha256})"

    body = _MD_IMAGE.sub(_image, body)
    if fields.get("cover"):
        assets.append(
            store_file(
                base / str(fields.pop("cover")), media_dir=media_dir, role="cover", max_bytes=max_asset_bytes
            )
        )
    for a in fields.pop("attachments", None) or []:
        assets.append(
            store_file(base / str(a), media_dir=media_dir, role="attachment", max_bytes=max_asset_bytes)
        )
    return ItemDraft(title=title, body_markdown=body, fields=fields, assets=assets)


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
            dt = datetime.fromisoformat(
                text.replace(" ", "T", 1) if "T" not in text and " " in text else text
            )
        except ValueError as exc:
            raise InvalidInput(
                f"{what} {text!r} is not a date-time; write it as ISO 8601 with a zone, "
                "e.g. 2026-12-01T09:00+08:00"
            ) from exc
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise InvalidInput(
            f"{what} {value!s} has no time zone; add one, e.g. {dt.isoformat(timespec='minutes')}+08:00"
        )
    return dt
