"""Masking a body and writing cleaned copies of attachments.

A cleaned DOCX has its tracked changes accepted (deletions dropped, insertions kept), hidden text,
comments and their anchors removed, every ID/mobile/card number masked in place, and the author
properties emptied. A cleaned XLSX has its hidden and very hidden sheets, hidden rows and hidden
columns deleted, comments, pivot caches and external links dropped, numbers masked and properties
emptied. Classification marks and sensitive words are left for the reviewer: whether a marked
document may go out at all is their decision, not a thing to paint over.
"""

from __future__ import annotations

import re
import zipfile
from decimal import Decimal
from pathlib import Path

from lxml import etree

from publisher.errors import InvalidInput

from .archive import CORE_NS, Package, Uninspectable, open_package
from .docx import NS as W_NS
from .docx import W, _is_on
from .numbers import find_numbers, is_rounded_id, mask_number, mask_numbers

_COMMENT_PARTS = re.compile(r"word/(comments\w*|people)\.xml$")
_COMMENT_FILE = re.compile(r"(comments\w*|people)\.xml")
_TEXT_PARTS = re.compile(r"word/(document|header\d*|footer\d*|footnotes|endnotes)\.xml$")
_SEGMENT_TAGS = {f"{{{W}}}t": None, f"{{{W}}}instrText": None, f"{{{W}}}tab": "\t", f"{{{W}}}br": "\n"}


def mask_text(text: str) -> str:
    """``text`` with every resident ID, mobile and bank card number masked in place."""
    return mask_numbers(text)


def _unwrap(el: etree._Element) -> None:
    parent = el.getparent()
    index = parent.index(el)
    for child in reversed(list(el)):
        parent.insert(index, child)
    parent.remove(el)


def _drop(el: etree._Element) -> None:
    parent = el.getparent()
    if parent is not None:
        parent.remove(el)


def _mask_paragraph(p: etree._Element) -> None:
    segments = [(el, _SEGMENT_TAGS[el.tag] or el.text or "") for el in p.iter(*_SEGMENT_TAGS)]
    text = "".join(s for _, s in segments)
    if not find_numbers(text):
        return
    masked = mask_numbers(text)
    pos = 0
    for el, s in segments:
        if _SEGMENT_TAGS[el.tag] is None:
            el.text = masked[pos : pos + len(s)]
        pos += len(s)


def clean_docx_part(root: etree._Element) -> None:
    """Accept tracked changes, drop hidden runs and comment anchors, mask numbers (in place)."""
    for tag in ("del", "moveFrom", "commentRangeStart", "commentRangeEnd", "rPrChange", "pPrChange", "sectPrChange"):
        for el in list(root.iter(f"{{{W}}}{tag}")):
            _drop(el)
    for tag in ("tblPrChange", "trPrChange", "tcPrChange", "numberingChange", "moveFromRangeStart", "moveFromRangeEnd"):
        for el in list(root.iter(f"{{{W}}}{tag}")):
            _drop(el)
    for tag in ("ins", "moveTo"):
        for el in list(root.iter(f"{{{W}}}{tag}")):
            _unwrap(el)
    for ref in list(root.iter(f"{{{W}}}commentReference")):
        run = ref.getparent()
        _drop(run if run is not None and run.tag == f"{{{W}}}r" else ref)
    for vanish in list(root.iterfind(".//w:r/w:rPr/w:vanish", W_NS)):
        if _is_on(vanish):
            _drop(vanish.getparent().getparent())
    for p in root.iter(f"{{{W}}}p"):
        _mask_paragraph(p)


def _empty_properties(root: etree._Element) -> None:
    for el in root:
        if etree.QName(el).localname not in ("created", "modified"):
            el.text = ""
            for child in list(el):
                el.remove(child)


def _serialise(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)


def _copy_package(pkg: Package, dst: Path, rewrite) -> None:  # noqa: ANN001 - (name, bytes) -> bytes | None
    tmp = dst.with_name(dst.name + ".part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as out:
        for info in pkg.zf.infolist():
            data = rewrite(info.filename, pkg.read(info.filename))
            if data is not None:
                out.writestr(info.filename, data)
    tmp.replace(dst)


def clean_docx(src: str | Path, dst: str | Path) -> Path:
    """Write a cleaned copy of a DOCX to ``dst``; Uninspectable-derived InvalidInput if it cannot be read."""
    src, dst = Path(src), Path(dst)

    def rewrite(name: str, data: bytes) -> bytes | None:
        if _COMMENT_PARTS.match(name):
            return None
        if _TEXT_PARTS.match(name):
            root = pkg.xml(name)
            clean_docx_part(root)
            return _serialise(root)
        if name in ("docProps/core.xml", "docProps/app.xml"):
            root = pkg.xml(name)
            if name.endswith("core.xml"):
                _empty_properties(root)
            else:
                for prop in ("Company", "Manager"):
                    for el in root.iterfind(f"ep:{prop}", CORE_NS):
                        el.text = ""
            return _serialise(root)
        if name == "word/settings.xml":
            root = pkg.xml(name)
            for el in list(root.iter(f"{{{W}}}trackRevisions")):
                _drop(el)
            return _serialise(root)
        if name in ("[Content_Types].xml", "word/_rels/document.xml.rels"):
            root = pkg.xml(name)
            for el in list(root):
                ref = el.get("PartName", "") or el.get("Target", "")
                if _COMMENT_FILE.fullmatch(ref.rpartition("/")[2]):
                    _drop(el)
            return _serialise(root)
        return data

    try:
        with open_package(src, "docx") as pkg:
            _copy_package(pkg, dst, rewrite)
    except Uninspectable as exc:
        raise InvalidInput(f"{src.name} cannot be cleaned: {exc}") from None
    return dst


def _hidden_indices(dimensions, size_attr: str) -> list[int]:  # noqa: ANN001 - openpyxl's DimensionHolder
    out = []
    for key, dim in dimensions.items():
        size = getattr(dim, size_attr, None)
        if dim.hidden or (size is not None and float(size) == 0.0 and getattr(dim, "customWidth", True)):
            if size_attr == "width":
                out.extend(range(dim.min or 1, (dim.max or dim.min or 1) + 1))
            else:
                out.append(int(key))
    return sorted(set(out))


def _mask_cell(cell) -> None:  # noqa: ANN001 - an openpyxl cell
    value = cell.value
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int | float) and float(value).is_integer():
        text = str(int(Decimal(repr(value))))  # as written in the file: 1.10101199001014e17 → …014000
        if find_numbers(text):
            cell.value = mask_numbers(text)
        elif is_rounded_id(text):
            cell.value = mask_number("id_card", text)
    elif isinstance(value, str) and find_numbers(value):
        cell.value = mask_numbers(value)
    if cell.comment is not None:
        cell.comment = None


def clean_xlsx(src: str | Path, dst: str | Path) -> Path:
    """Write a cleaned copy of an XLSX to ``dst`` (openpyxl: the workbook is rebuilt, formatting kept)."""
    import openpyxl

    src, dst = Path(src), Path(dst)
    try:
        with open_package(src, "xlsx"):
            pass  # the ZIP caps before openpyxl reads it (openpyxl parses XML through defusedxml)
    except Uninspectable as exc:
        raise InvalidInput(f"{src.name} cannot be cleaned: {exc}") from None
    wb = openpyxl.load_workbook(src)
    for ws in list(wb.worksheets):
        if ws.sheet_state != "visible":
            wb.remove(ws)
    if not wb.worksheets:
        raise InvalidInput(f"{src.name}: every sheet is hidden; nothing would be left to publish")
    for ws in wb.worksheets:
        for col in reversed(_hidden_indices(ws.column_dimensions, "width")):
            ws.delete_cols(col)
        for row in reversed(_hidden_indices(ws.row_dimensions, "ht")):
            ws.delete_rows(row)
        for dim in list(ws.column_dimensions.values()) + list(ws.row_dimensions.values()):
            dim.hidden = False
        ws.sheet_format.zeroHeight = False
        ws._pivots = []
        for row in ws.iter_rows():
            for cell in row:
                _mask_cell(cell)
    wb._external_links = []
    props = wb.properties
    for attr in ("creator", "lastModifiedBy", "title", "subject", "description", "keywords", "category"):
        setattr(props, attr, None)
    tmp = dst.with_name(dst.name + ".part")
    wb.save(tmp)
    tmp.replace(dst)
    return dst


def clean_file(src: str | Path, dst: str | Path) -> Path:
    """A cleaned copy of a DOCX or XLSX; InvalidInput for other formats (a PDF or image must be redone)."""
    suffix = Path(src).suffix.lower()
    if suffix in (".docx", ".docm"):
        return clean_docx(src, dst)
    if suffix in (".xlsx", ".xlsm"):
        return clean_xlsx(src, dst)
    raise InvalidInput(f"{Path(src).name}: only DOCX and XLSX copies can be cleaned; export the source again")
