"""PDF attachments, through their text layer (pypdf).

A page with images but no text is a scan: its text cannot be read here, so it is reported as
uninspectable rather than passed. An encrypted PDF that opens with the empty password (owner-password
only: "no printing") is read; one that needs a password is uninspectable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from .archive import Uninspectable
from .findings import Finding, finding

Scan = Callable[[str, str], list[Finding]]
#: the most pages read; a longer PDF is reported as uninspectable
MAX_PAGES = 5_000


def _has_images(page) -> bool:  # noqa: ANN001 - pypdf's PageObject
    try:
        resources = page.get("/Resources") or {}
        xobjects = resources.get("/XObject") or {}
        return any(xobjects[k].get_object().get("/Subtype") == "/Image" for k in xobjects)
    except Exception:  # noqa: BLE001 - a broken resource dictionary: assume it may hold an image
        return True


def inspect_pdf(path: Path, name: str, scan: Scan) -> list[Finding]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings about odd files are not findings
    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise Uninspectable("encrypted: it needs a password to open; attach it without one")
        pages = reader.pages
        if len(pages) > MAX_PAGES:
            raise Uninspectable(f"{len(pages)} pages, more than {MAX_PAGES}: too long to inspect")
        out: list[Finding] = []
        texts = 0
        scanned: list[int] = []
        for n, page in enumerate(pages, 1):
            # NULs: pypdf decodes some CID fonts' text as UTF-16 code units, leaving a NUL before each character
            text = (page.extract_text() or "").replace("\x00", "")
            if text.strip():
                texts += 1
                out.extend(scan(text, f"{name}:page {n}"))
            elif _has_images(page):
                scanned.append(n)
        meta = reader.metadata or {}
        if any(str(meta.get(k) or "").strip() for k in ("/Author",)):
            out.append(finding("hidden_content", f"{name}:properties", "author metadata (/Author)"))
    except Uninspectable:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
        raise Uninspectable(f"not a readable PDF ({type(exc).__name__})") from None
    except Exception as exc:  # noqa: BLE001 - pypdf raises many things on hostile files; none may pass silently
        raise Uninspectable(f"not a readable PDF ({type(exc).__name__})") from None
    if texts == 0:
        raise Uninspectable("no text layer (a scanned image?): its text cannot be checked; a person must read it")
    for n in scanned:
        out.append(finding("uninspectable", f"{name}:page {n}", "image-only page", "a scanned page: read it"))
    return out
