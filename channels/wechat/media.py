"""Images for WeChat: what can be converted is converted, what cannot is refused with a reason.

The rule (also in docs/channels/wechat.md):

* Refused: a file that is not an image Pillow can read; an animated image (WeChat's content images are
  jpg/png stills, and picking one frame would silently change the picture); a source file above
  ``MAX_SOURCE_BYTES`` (20 MB) or ``MAX_PIXELS`` (40 megapixels) — shrink it before attaching it.
* Converted: any other still image (CMYK or 16-bit TIFF, BMP, WebP, a still GIF, a large JPEG...).
  EXIF orientation is applied, colours are converted to sRGB through an embedded ICC profile, then
  the picture is re-encoded from pixels only, so EXIF/GPS and other metadata never leave the
  building. Content images become PNG when they have transparency and that fits, else JPEG, under
  1 MB (quality ladder, then downscaling); the cover becomes a JPEG thumb ≤ 64 KB with the 2.35:1
  and 1:1 crop boxes WeChat's ``pic_crop_*`` fields take.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

MAX_SOURCE_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000
CONTENT_MAX_BYTES = 1024 * 1024 - 1  # uploadimg: "< 1 MB"
CONTENT_MAX_SIDE = 2000
THUMB_MAX_BYTES = 64 * 1024
THUMB_MAX_SIDE = 900
_QUALITIES = (88, 80, 72, 64, 55, 45, 35)


class ImageRefused(ValueError):
    """The image cannot be made into something WeChat takes."""


@dataclass(frozen=True)
class PreparedImage:
    data: bytes
    filename: str
    width: int
    height: int


@dataclass(frozen=True)
class PreparedThumb(PreparedImage):
    crop_235_1: str = ""
    crop_1_1: str = ""


def inspect(path: Path, label: str = "image") -> str | None:
    """The reason ``path`` cannot be used on WeChat, or None. Reads headers only (cheap)."""
    try:
        _open_checked(path, label).close()
    except ImageRefused as exc:
        return str(exc)
    return None


def _open_checked(path: Path, label: str) -> Image.Image:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageRefused(f"{label} {path.name}: the file cannot be read ({exc.strerror})") from exc
    if size > MAX_SOURCE_BYTES:
        raise ImageRefused(
            f"{label} {path.name} is {size / 1024 / 1024:.0f} MB; images up to "
            f"{MAX_SOURCE_BYTES // 1024 // 1024} MB are converted for WeChat — resize it before attaching it"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRefused(f"{label} {path.name} is not an image WeChat can take (not a readable picture)") from exc
    except OSError as exc:
        raise ImageRefused(f"{label} {path.name} cannot be read as an image: {exc}") from exc
    w, h = im.size
    if w * h > MAX_PIXELS:
        im.close()
        raise ImageRefused(
            f"{label} {path.name} is {w}×{h} pixels; at most {MAX_PIXELS // 1_000_000} megapixels are "
            "converted — resize it before attaching it"
        )
    if getattr(im, "is_animated", False) and getattr(im, "n_frames", 1) > 1:
        im.close()
        raise ImageRefused(
            f"{label} {path.name} is animated; WeChat article images must be still jpg/png — "
            "attach a still picture (or a video link) instead"
        )
    return im


def _load_rgb_or_rgba(path: Path, label: str) -> tuple[Image.Image, bool]:
    im = _open_checked(path, label)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im.load()
            icc = im.info.get("icc_profile")
            im = ImageOps.exif_transpose(im)
    except (OSError, ValueError, Image.DecompressionBombWarning) as exc:
        raise ImageRefused(f"{label} {path.name} is damaged and cannot be decoded: {exc}") from exc
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if icc and im.mode in ("RGB", "RGBA", "CMYK"):
        im = _to_srgb(im, icc, "RGBA" if im.mode == "RGBA" else "RGB")
    if im.mode == "CMYK":
        im = im.convert("RGB")
    elif im.mode in ("I;16", "I;16B", "I;16L", "I"):
        im = im.point(lambda v: v / 256).convert("L").convert("RGB")
    elif im.mode == "F":
        im = im.convert("L").convert("RGB")
    im = im.convert("RGBA" if has_alpha else "RGB")
    return im, has_alpha


def _to_srgb(im: Image.Image, icc: bytes, mode: str) -> Image.Image:
    """Convert through the embedded colour profile, since the profile itself is not sent along.

    Without this, a Display-P3 phone photo or a CMYK print file would lose its colours when the
    metadata is stripped. A profile LittleCMS cannot read leaves the pixels as they are.
    """
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode=mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return im


def _fit(im: Image.Image, max_side: int) -> Image.Image:
    if max(im.size) <= max_side:
        return im
    scale = max_side / max(im.size)
    return im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.LANCZOS)


def _jpeg(im: Image.Image, quality: int) -> bytes:
    if im.mode == "RGBA":
        bg = Image.new("RGB", im.size, (255, 255, 255))
        bg.paste(im, mask=im.getchannel("A"))
        im = bg
    buf = io.BytesIO()
    # no exif= / icc_profile= passed: the output carries pixels only, never the source's metadata
    im.save(buf, "JPEG", quality=quality, optimize=True, progressive=True)
    return buf.getvalue()


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def _encode_under(im: Image.Image, limit: int, allow_png: bool) -> tuple[bytes, str, Image.Image]:
    while True:
        if allow_png:
            data = _png(im)
            if len(data) <= limit:
                return data, "png", im
        for q in _QUALITIES:
            data = _jpeg(im, q)
            if len(data) <= limit:
                return data, "jpg", im
        if max(im.size) <= 64:
            raise ImageRefused("the image cannot be compressed under the size limit")
        im = im.resize((max(1, int(im.width * 0.75)), max(1, int(im.height * 0.75))), Image.LANCZOS)


def prepare_content_image(path: Path, stem: str) -> PreparedImage:
    """A jpg/png under 1 MB for ``media/uploadimg``."""
    im, has_alpha = _load_rgb_or_rgba(path, "image")
    im = _fit(im, CONTENT_MAX_SIDE)
    data, ext, im = _encode_under(im, CONTENT_MAX_BYTES, allow_png=has_alpha)
    return PreparedImage(data=data, filename=f"{stem}.{ext}", width=im.width, height=im.height)


def _box(w: int, h: int, ratio: float) -> tuple[float, float, float, float]:
    """The largest centred box of ``ratio`` (width/height) inside w×h, as fractions."""
    if w / h >= ratio:
        cw = h * ratio / w
        x1 = (1 - cw) / 2
        return x1, 0.0, x1 + cw, 1.0
    ch = w / ratio / h
    y1 = (1 - ch) / 2
    return 0.0, y1, 1.0, y1 + ch


def _crop_str(box: tuple[float, float, float, float]) -> str:
    return "_".join(f"{min(1.0, max(0.0, v)):.6f}".rstrip("0").rstrip(".") or "0" for v in box)


def prepare_thumb(path: Path, stem: str) -> PreparedThumb:
    """A JPG ≤ 64 KB for ``material/add_material?type=thumb`` plus its 2.35:1 and 1:1 crop boxes."""
    im, _ = _load_rgb_or_rgba(path, "cover")
    im = _fit(im, THUMB_MAX_SIDE)
    while True:
        for q in _QUALITIES:
            data = _jpeg(im, q)
            if len(data) <= THUMB_MAX_BYTES:
                return PreparedThumb(
                    data=data,
                    filename=f"{stem}.jpg",
                    width=im.width,
                    height=im.height,
                    crop_235_1=_crop_str(_box(im.width, im.height, 2.35)),
                    crop_1_1=_crop_str(_box(im.width, im.height, 1.0)),
                )
        im = im.resize((max(1, int(im.width * 0.8)), max(1, int(im.height * 0.8))), Image.LANCZOS)
