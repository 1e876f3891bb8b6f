"""The check: a text, a file, or an item file with its images and attachments → a list of Findings.

Nothing here raises on a hostile or unreadable attachment: such a file is an ``uninspectable`` finding,
because a file that was not read must not pass as a file that was clean.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from publisher.errors import InvalidInput

from .archive import Uninspectable, open_package
from .docx import inspect_docx
from .findings import Finding, finding
from .marks import MARK_HINTS, WordList, mark_findings, mark_findings_whole
from .numbers import CANDIDATE_FIRST, CANDIDATE_REST, LineIndex, number_findings, number_findings_whole
from .pdf import inspect_pdf
from .xlsx import inspect_xlsx

DOCX = {".docx", ".docm", ".dotx"}
XLSX = {".xlsx", ".xlsm", ".xltx"}
TEXT = {".txt", ".csv", ".tsv", ".md", ".markdown"}
IMAGES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"}
OLD_OFFICE = {".doc", ".xls", ".ppt", ".wps", ".et", ".dps", ".rtf"}
#: front matter keys whose text is published
PUBLISHED_KEYS = ("title", "summary")
#: where the alt text (替代文本) of the item's own cover is found: it is the cover's ``<img alt>`` on the
#: website and its ``alt_text`` in the CMS, so it is published text like the title
COVER_ALT = "cover.alt"
#: the largest text attachment read
MAX_TEXT_BYTES = 50_000_000


#: what every number or classification mark holds (a numbers candidate, or one of marks.MARK_HINTS), as
#: one search that stops only at 1-9, 密, 内 and 外: a text without it (most of what the worker re-checks
#: before each post goes out) is done after one pass instead of one of the number finder and one of the
#: mark scanner. The pattern starts with one character class, so the regex engine skips to those
#: characters; written as a plain alternation it tries every position and costs ~3× as much.
_HINT = re.compile(
    f"[{CANDIDATE_FIRST}{''.join(h[0] for h in MARK_HINTS)}]"
    f"(?:(?<=[{CANDIDATE_FIRST}]){CANDIDATE_REST}|"
    + "|".join(f"(?<={re.escape(h[0])}){re.escape(h[1:])}" for h in MARK_HINTS)
    + ")"
)


def scan_text(text: str, where: str, words: WordList | None = None, lines: LineIndex | None = None) -> list[Finding]:
    """Numbers, classification marks and sensitive words in one piece of text, all at ``where``."""
    hint = _HINT.search(text)
    out: list[Finding] = []
    if hint is not None:  # no number candidate starts before the first hint: the number finder goes on from it
        out = number_findings(text, where, lines, hint.start()) + mark_findings(text, where, lines)
    if words:
        out += words.findings(text, where, lines)
    return out


def scan_text_whole(
    text: str, where: str, words: WordList | None = None, lines: LineIndex | None = None
) -> list[Finding]:
    """:func:`scan_text` without any shortcut, every scanner over the whole text: the reference that
    tests/privacy/test_fast_path.py holds the shortcuts to."""
    out = number_findings_whole(text, where, lines) + mark_findings_whole(text, where, lines)
    if words:
        out += words.findings(text, where, lines)
    return out


def check_text(text: str, where: str = "body", *, words: WordList | None = None, first_line: int = 1) -> list[Finding]:
    """Findings in a text, each at ``WHERE:LINE`` (lines counted from ``first_line``), in line order."""
    lines = LineIndex(text, first_line)
    found = scan_text(text, where, words, lines)
    return sorted(found, key=lambda f: int(f.where.rpartition(":")[2]))


class _Offsets(LineIndex):
    """Gives each finding of a scan the offset where it starts in place of a line (:func:`summary_findings`)."""

    def __init__(self) -> None:
        super().__init__("")

    def line(self, offset: int) -> int:
        return offset


def summary_findings(summary: str, body_markdown: str, words: WordList | None = None) -> list[Finding]:
    """The findings of a post's summary, at ``summary``.

    A summary made from the body — the start of its plain text, cut with "…" (``content.plain_text``, as
    ``create_item`` and the compose page make it when the author writes none) — is judged as part of that
    text: the cut can fall inside a number or a mark, and 15-17 digits of an ID left before the "…" pass
    as a card or a legacy ID, or 秘密★1年 becomes 秘密★. Such a summary's findings are those of the whole
    plain text that start in the part it shows: a number it cuts counts as the number it was cut from (or
    as nothing, when that run is none), and nothing it shows is missed, a number the plain text joins
    across lines or table cells included. The body is rendered only when the summary holds something.
    """
    found = scan_text(summary, "summary", words)
    if not found or not summary.endswith("…"):
        return found  # not cut: what it shows is all there is to judge
    from publisher.pipeline.content import plain_text

    shown = summary[:-1]
    text = plain_text(body_markdown)
    if len(text) <= len(shown) or not text.startswith(shown):
        return found  # written by the author (or from another body): judged as it is
    return [
        replace(f, where="summary")
        for f in scan_text(text, "summary", words, _Offsets())
        if int(f.where.rpartition(":")[2]) < len(shown)
    ]


def wording_findings(channel: str, wording: Mapping[str, Any], words: WordList | None = None) -> list[Finding]:
    """The findings of one channel's wording: ``CHANNEL.title``, ``CHANNEL.summary``,
    ``CHANNEL.body:LINE`` (lines of the wording's body) and ``CHANNEL.cover_alt``, in that order."""
    found: list[Finding] = []
    for key in ("title", "summary"):
        if isinstance(value := wording.get(key), str) and value:
            found += scan_text(value, f"{channel}.{key}", words)
    if isinstance(body := wording.get("body"), str) and body:
        found += check_text(body, f"{channel}.body", words=words)
    if isinstance(alt := wording.get("cover_alt"), str) and alt:
        found += scan_text(alt, f"{channel}.cover_alt", words)
    return found


def _uninspectable(where: str, why: str) -> Finding:
    return finding("uninspectable", where, f"cannot be inspected: {why}")


def _read_text_file(path: Path) -> str:
    if path.stat().st_size > MAX_TEXT_BYTES:
        raise Uninspectable(f"over {MAX_TEXT_BYTES // 1_000_000} MB: too large to inspect")
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise Uninspectable("neither UTF-8 nor GB18030 text")


def check_file(path: str | Path, *, words: WordList | None = None, name: str | None = None) -> list[Finding]:
    """Findings in one attachment (DOCX, XLSX, PDF, text; an image gives none, as its text is not read);
    ``name`` (default the file name) starts each ``where`` and gives the format."""
    path = Path(path)
    name = name or path.name
    # the format comes from the name a person gave the file: a stored copy in the media store has none
    suffix = Path(name).suffix.lower() or path.suffix.lower()

    def scan(text: str, where: str) -> list[Finding]:
        return scan_text(text, where, words)

    try:
        if not path.is_file():
            raise Uninspectable("the file does not exist")
        if suffix in DOCX:
            with open_package(path, "docx") as pkg:
                return inspect_docx(pkg, name, scan)
        if suffix in XLSX:
            with open_package(path, "xlsx") as pkg:
                return inspect_xlsx(pkg, name, scan)
        if suffix == ".pdf":
            return inspect_pdf(path, name, scan)
        if suffix in TEXT:
            text = _read_text_file(path)
            return check_text(text, name, words=words) if text else []
        if suffix in IMAGES:
            # not a finding: every news photo would then block its approval; docs/privacy.md tells the
            # reviewer to look at every image themselves (text inside images is not read)
            return []
        if suffix in OLD_OFFICE:
            raise Uninspectable(f"{suffix} files are not read: save it as .docx/.xlsx/.pdf")
        raise Uninspectable(f"{suffix or 'files without an extension'} files are not read")
    except Uninspectable as exc:
        return [_uninspectable(name, str(exc))]
    except KeyError as exc:  # a package without a required part (word/document.xml, xl/workbook.xml)
        return [_uninspectable(name, f"a required part is missing ({exc.args[0] if exc.args else '?'})")]
    except Exception as exc:  # noqa: BLE001 - a hostile file must give a finding, never a crash or a pass
        return [_uninspectable(name, f"it could not be read ({type(exc).__name__})")]


def check_item(
    markdown_path: str | Path, *, words: WordList | None = None, max_body_bytes: int = 2_000_000
) -> list[Finding]:
    """Findings in an item file: its title and summary, its body (``body:LINE``, the line of the file, the
    images' alt text included), its cover's alt text (``cover.alt``), each local image, cover and
    attachment it names (relative to its folder), then each channel's wording (``overrides``:
    :func:`wording_findings`)."""
    from publisher.pipeline.content import local_image_targets, read_item_source

    path = Path(markdown_path)
    source = read_item_source(path, max_body_bytes=max_body_bytes)
    out: list[Finding] = []
    for key in PUBLISHED_KEYS:
        value = source.fields.get(key)
        if isinstance(value, str) and value:
            out.extend(scan_text(value, key, words))
    out.extend(check_text(source.body, "body", words=words, first_line=source.body_line))
    cover_alt = source.fields.get("cover_alt")
    if isinstance(cover_alt, str) and cover_alt:
        out.extend(scan_text(cover_alt, COVER_ALT, words))
    files = [*local_image_targets(source.body)]
    if source.fields.get("cover"):
        files.append(str(source.fields["cover"]))
    attachments = source.fields.get("attachments") or []
    if not isinstance(attachments, list):
        raise InvalidInput(f"{path.name}: attachments must be a list of file names")
    files.extend(str(a) for a in attachments)
    for name in dict.fromkeys(files):
        out.extend(check_file(path.parent / name, words=words, name=name))
    overrides = source.fields.get("overrides")
    for channel, wording in (
        sorted(overrides.items(), key=lambda kv: str(kv[0])) if isinstance(overrides, Mapping) else ()
    ):
        if isinstance(wording, Mapping):
            out.extend(wording_findings(str(channel), wording, words))
    return out
