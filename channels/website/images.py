"""The files of an item on the site: images re-encoded (upright, at most so wide, no metadata), attachments as they are.

``media/<sha256>-<w>.<ext>`` and ``files/<sha256><.ext>`` are content-addressed, so two writers racing
on the same file write the same bytes.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from publisher.channel import Asset, ObjectStore, PermanentChannelError, Post

#: image content type -> (Pillow format, file extension); anything else is re-encoded as PNG
_IMAGE_FORMATS = {
    "image/jpeg": ("JPEG", "jpg"),
    "image/jpg": ("JPEG", "jpg"),
    "image/png": ("PNG", "png"),
    "image/gif": ("GIF", "gif"),
    "image/webp": ("WEBP", "webp"),
}


_SUFFIX_RE = re.compile(r"^\.[a-z0-9]{1,10}$")


def attachment_name(asset: Asset) -> str:
    suffix = Path(asset.filename).suffix.lower()
    return f"files/{asset.sha256}{suffix if _SUFFIX_RE.match(suffix) else ''}"


def is_image(asset: Asset) -> bool:
    return asset.role != "attachment" and asset.content_type.lower().startswith("image/")


def prepare_assets(files: ObjectStore, post: Post, max_width: int) -> dict[str, str]:
    """Each asset's site-relative path (sha256 -> path), creating the file when missing."""
    out: dict[str, str] = {}
    for asset in post.assets:
        if not asset.path.is_file():
            raise PermanentChannelError(
                f"file {asset.filename!r} of item {post.item_id} is missing ({asset.path}); upload it again"
            )
        if is_image(asset):
            out[asset.sha256] = ensure_image(files, asset, max_width)
        else:
            rel = attachment_name(asset)
            if not files.exists(rel):
                files.put_file(rel, asset.path)
            out[asset.sha256] = rel
    return out


def ensure_image(files: ObjectStore, asset: Asset, max_width: int) -> str:
    max_w = max_width
    fmt, ext = _IMAGE_FORMATS.get(asset.content_type.lower(), ("PNG", "png"))
    rel = f"media/{asset.sha256}-{max_w}.{ext}"
    if files.exists(rel):
        return rel
    try:
        data = render_image(asset.path, fmt, max_w)
    except OSError as exc:
        if getattr(exc, "errno", None) is not None:
            raise  # a real I/O failure, mapped by translate_errors
        raise PermanentChannelError(f"image {asset.filename!r} cannot be read: {exc}") from exc
    except (Image.DecompressionBombError, ValueError, SyntaxError) as exc:
        raise PermanentChannelError(f"image {asset.filename!r} cannot be processed: {exc}") from exc
    files.put(rel, data)
    return rel


def render_image(path: Path, fmt: str, max_width: int) -> bytes:
    """Re-encode an image upright, at most ``max_width`` wide, with no EXIF/XMP/comments."""
    with Image.open(path) as src:
        src.load()
        if fmt == "GIF" and getattr(src, "n_frames", 1) > 1 and src.width <= max_width:
            # re-encoding would drop the animation; GIF carries no EXIF, so the bytes can stay
            return path.read_bytes()
        im = ImageOps.exif_transpose(src) or src
        if im.width > max_width:
            if im.mode not in ("RGB", "RGBA", "L", "LA"):
                im = im.convert("RGBA" if "transparency" in im.info or im.mode in ("P", "PA") else "RGB")
            height = max(1, round(im.height * max_width / im.width))
            im = im.resize((max_width, height), Image.Resampling.LANCZOS)
        icc = src.info.get("icc_profile")
        params: dict[str, Any] = {}
        if fmt == "JPEG":
            if im.mode not in ("RGB", "L", "CMYK"):
                im = _flatten(im)
            params = {"quality": 85, "optimize": True, "progressive": True}
        elif fmt == "WEBP":
            params = {"quality": 85}
        elif fmt == "PNG":
            params = {"optimize": True}
        # colour profiles are colour data, not personal metadata; keep them so colours stay right
        if icc and fmt in ("JPEG", "PNG", "WEBP"):
            params["icc_profile"] = icc
        clean = im.copy()
        clean.info = {k: v for k, v in im.info.items() if k in ("transparency",)}
        buf = io.BytesIO()
        clean.save(buf, format=fmt, **params)
        return buf.getvalue()


def _flatten(im: Image.Image) -> Image.Image:
    rgba = im.convert("RGBA")
    back = Image.new("RGB", rgba.size, (255, 255, 255))
    back.paste(rgba, mask=rgba.getchannel("A"))
    return back
