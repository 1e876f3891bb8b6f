"""DOCX attachments: every text a reader could reach, and what Word hides.

Read from the package's XML parts (not python-docx's object model, which shows neither deleted text,
nor comments' anchors, nor hidden runs): the body paragraph by paragraph and table cell by cell,
headers, footers, foot- and endnotes, comments, tracked changes (insertions, deletions, moves), hidden
text (``w:vanish``), author metadata, and embedded objects (reported: their contents are not read).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lxml import etree

from .archive import Package, main_part, part_text, people_properties
from .findings import Finding, finding

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
NS = {"w": W}
_T = {f"{{{W}}}t", f"{{{W}}}delText", f"{{{W}}}instrText"}
_TAB_BR = {f"{{{W}}}tab": "\t", f"{{{W}}}br": "\n", f"{{{W}}}cr": "\n"}
_OFF = {"0", "false", "off"}
_PART = re.compile(r"word/(header|footer)(\d*)\.xml$")
_SEEN = "{urn:publisher:privacy}seen"
_CHART = re.compile(r"word/charts/chart(\d+)\.xml$")
#: an altChunk: HTML, MHT, RTF or text Word merges in when it opens the file
_ALT_CHUNK = re.compile(r"word/[^/]+\.(mht|mhtml|html?|rtf|txt)$", re.I)

Scan = Callable[[str, str], list[Finding]]


def paragraph_text(p: etree._Element) -> str:
    """The text of a paragraph, deleted and hidden runs included (they are in the file)."""
    out = []
    for el in p.iter(*_T, *_TAB_BR):
        out.append(_TAB_BR.get(el.tag) or el.text or "")
    return "".join(out)


def _is_on(el: etree._Element) -> bool:
    return el.get(f"{{{W}}}val", "true").lower() not in _OFF


def hidden_marks(p: etree._Element) -> list[str]:
    """What this paragraph hides: tracked changes, hidden text."""
    found = []
    if p.find(".//w:del", NS) is not None or p.find(".//w:moveFrom", NS) is not None:
        found.append("tracked change (deleted text kept in the file)")
    if p.find(".//w:ins", NS) is not None or p.find(".//w:moveTo", NS) is not None:
        found.append("tracked change (insertion not accepted)")
    if any(_is_on(v) for v in p.iterfind(".//w:r/w:rPr/w:vanish", NS)):
        found.append("hidden text (w:vanish)")
    return found


def _blocks(container: etree._Element, counters: dict[str, int]):  # noqa: ANN202 - a generator of (where, element)
    """(place, paragraph-or-cell) in document order: ``paragraph N`` and ``table T row R cell C``."""
    for child in container:
        tag = etree.QName(child).localname if isinstance(child.tag, str) else ""
        if tag == "p":
            counters["p"] += 1
            yield f"paragraph {counters['p']}", [child]
        elif tag == "tbl":
            counters["t"] += 1
            t = counters["t"]
            for r, row in enumerate(child.iterfind("w:tr", NS), 1):
                for c, cell in enumerate(row.iterfind("w:tc", NS), 1):
                    yield f"table {t} row {r} cell {c}", list(cell.iter(f"{{{W}}}p"))
        elif tag in ("sdt", "sdtContent", "customXml", "smartTag"):
            yield from _blocks(child, counters)


def _check_paragraphs(paras: list[etree._Element], where: str, scan: Scan) -> list[Finding]:
    out = scan("\n".join(paragraph_text(p) for p in paras), where)
    seen = set()
    for p in paras:
        for what in hidden_marks(p):
            if what not in seen:
                seen.add(what)
                out.append(finding("hidden_content", where, what))
    return out


def inspect_docx(pkg: Package, name: str, scan: Scan) -> list[Finding]:
    out: list[Finding] = []
    body = pkg.xml(main_part(pkg, "word/document.xml")).find("w:body", NS)
    any_text = False
    if body is not None:
        counters = {"p": 0, "t": 0}
        for place, paras in _blocks(body, counters):
            out.extend(_check_paragraphs(paras, f"{name}:{place}", scan))
            any_text = any_text or any(p.find(".//w:t", NS) is not None for p in paras)
            for p in paras:
                for q in p.iter(f"{{{W}}}p"):
                    q.set(_SEEN, "")  # the tree is this check's own copy, parsed for it
        # paragraphs in a structure the walk does not know (a table row inside a content control…)
        other = [p for p in body.iter(f"{{{W}}}p") if p.get(_SEEN) is None]
        if other:
            out.extend(_check_paragraphs(other, f"{name}:other text", scan))
            any_text = True
    for part in sorted(pkg.names()):
        m = _PART.match(part)
        if m:
            label = m.group(1) + (f" {m.group(2)}" if m.group(2) else "")
            out.extend(_check_paragraphs(list(pkg.xml(part).iter(f"{{{W}}}p")), f"{name}:{label}", scan))
        elif part in ("word/footnotes.xml", "word/endnotes.xml"):
            label = part[5:-5]
            out.extend(_check_paragraphs(list(pkg.xml(part).iter(f"{{{W}}}p")), f"{name}:{label}", scan))
        elif part == "word/glossary/document.xml":  # building blocks: text Word keeps for insertion
            out.extend(_check_paragraphs(list(pkg.xml(part).iter(f"{{{W}}}p")), f"{name}:glossary", scan))
        elif _CHART.match(part):  # a chart keeps a cache of the numbers it draws
            out.extend(scan(part_text(pkg, part), f"{name}:chart {_CHART.match(part).group(1)}"))
        elif part.startswith("word/embeddings/") or _ALT_CHUNK.match(part):
            out.append(finding("uninspectable", f"{name}:{part}", "embedded object", "its contents are not read"))
    if pkg.has("word/comments.xml"):
        for n, comment in enumerate(pkg.xml("word/comments.xml").iterfind("w:comment", NS), 1):
            where = f"{name}:comment {n}"
            out.append(finding("hidden_content", where, "comment"))
            out.extend(scan("\n".join(paragraph_text(p) for p in comment.iter(f"{{{W}}}p")), where))
    for prop in people_properties(pkg):
        out.append(finding("hidden_content", f"{name}:properties", f"author metadata ({prop})"))
    if not any_text and any(n.startswith("word/media/") for n in pkg.names()):
        out.append(finding("uninspectable", name, "images only", "the document has no text, only images (a scan?)"))
    return out
