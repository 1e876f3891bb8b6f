"""The CSV import in two steps, as the web page runs it: a dry-run preview, then the import confirmed.

The uploaded file is kept by its SHA-256 (``imports/<sha256>.csv`` in data_dir) between the two, so
the confirm imports the very bytes that were previewed, checked again by :func:`ledger.import_csv`
(the same parser and validator as ``publisher import``). The preview's list of rows to add travels
with the confirm; when the ledger changed in between (another import, the weekly sync) so that the
same file would now add other rows, the confirm is refused and nothing is written.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session

from publisher.counting import ledger
from publisher.errors import InvalidInput, NotFound
from publisher.pipeline.workflow import Context, audit
from publisher.settings import Settings

_SHA = re.compile(r"[0-9a-f]{64}")
#: what a file name shown and recorded as the import's source may hold (the rest becomes _)
_NAME = re.compile(r"[^\w.\- ()（）]", re.UNICODE)


@dataclass
class Preview:
    sha256: str
    name: str
    create_departments: bool
    #: the dry run's outcome, or None when the file was refused
    result: ledger.ImportResult | None = None
    #: every problem, each naming its row as Excel numbers it (the header is row 1)
    errors: list[str] = field(default_factory=list)

    @property
    def rows(self) -> str:
        """The rows the import will add, as the confirm form carries them: ``"2,3,7"``."""
        return ",".join(str(n) for n in added_rows(self.result)) if self.result else ""


def added_rows(result: ledger.ImportResult) -> list[int]:
    return sorted(r.row for r in result.added)


def folder(settings: Settings) -> Path:
    return settings.path("imports")


def safe_name(name: str) -> str:
    """The uploaded file's own name, without folders, as the audit trail and the delivery notes name it."""
    base = re.split(r"[\\/]", name or "")[-1].strip() or "upload.csv"
    return _NAME.sub("_", base)[:100]


def keep(settings: Settings, data: bytes) -> str:
    """Store the upload under its SHA-256 (once: the same bytes are the same file) and return the hash."""
    if not data:
        raise InvalidInput("the file is empty; choose the CSV to import")
    sha = hashlib.sha256(data).hexdigest()
    d = folder(settings)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{sha}.csv"
    if not path.exists():
        tmp = d / f".{sha}.{os.getpid()}.tmp"
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return sha


def load(settings: Settings, sha: str) -> bytes:
    """The kept upload, whose bytes must still hash to ``sha``; NotFound otherwise."""
    if not _SHA.fullmatch(sha):
        raise NotFound(f"no uploaded file {sha[:64]!r}: upload the CSV again")
    try:
        data = (folder(settings) / f"{sha}.csv").read_bytes()
    except FileNotFoundError:
        raise NotFound(f"no uploaded file {sha}: upload the CSV again") from None
    if hashlib.sha256(data).hexdigest() != sha:
        raise NotFound(f"the uploaded file {sha} changed on disk: upload the CSV again")
    return data


def preview(
    ctx: Context, session: Session, *, sha: str, name: str, actor: str, create_departments: bool = False
) -> Preview:
    """The dry run of the kept file: what would be added and what is already recorded, or every error.

    Writes nothing (the caller rolls the session back, as ``publisher import --dry-run`` does)."""
    p = Preview(sha256=sha, name=safe_name(name), create_departments=create_departments)
    data = load(ctx.settings, sha)
    try:
        p.result = ledger.import_csv(
            ctx,
            session,
            data=data,
            source=p.name,
            actor=actor,
            dry_run=True,
            create_departments=create_departments,
        )
    except ledger.ImportRejected as exc:
        p.errors = exc.errors
    except InvalidInput as exc:  # not readable as text at all: the encoding
        p.errors = [str(exc)]
    return p


def confirm(
    ctx: Context,
    session: Session,
    *,
    sha: str,
    name: str,
    actor: str,
    rows: str,
    create_departments: bool = False,
) -> ledger.ImportResult:
    """Import the kept file, all rows or none, if it adds exactly the rows the preview showed (``rows``:
    ``"2,3,7"``); InvalidInput (and nothing written, the caller's transaction rolled back) otherwise."""
    try:
        expected = sorted(int(n) for n in rows.split(",") if n.strip())
    except ValueError:
        raise InvalidInput(f"rows {rows[:100]!r} is not a list of row numbers: preview the file again") from None
    source = safe_name(name)
    result = ledger.import_csv(
        ctx,
        session,
        data=load(ctx.settings, sha),
        source=source,
        actor=actor,
        create_departments=create_departments,
    )
    got = added_rows(result)
    if got != expected:
        raise InvalidInput(
            f"the ledger changed since the preview: the file would now add rows {_span(got)} instead of "
            f"{_span(expected)}; nothing was imported, preview the file again"
        )
    audit(
        session,
        actor=actor,
        entity="import",
        entity_id=None,
        action="import_csv",
        source=source,
        sha256=sha,
        rows=got,
        items_added=result.items_added,
        publications_added=result.publications_added,
        already_present=result.already_present,
    )
    return result


def _span(rows: list[int]) -> str:
    if not rows:
        return "(none)"
    shown = ", ".join(str(n) for n in rows[:20])
    return shown + (f" … ({len(rows)} rows)" if len(rows) > 20 else "")
