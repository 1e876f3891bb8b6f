"""Reading Office files (ZIP packages of XML parts) without trusting them.

Every entry is read through a cap (the sizes a ZIP declares can lie), the package's total is capped,
and XML is parsed by lxml with entities, DTD loading and network access off, so neither a ZIP bomb nor
an entity expansion ("billion laughs") nor an external entity reaches memory or the network.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

#: the most bytes all parts of one package may expand to, and the most entries it may have
MAX_UNCOMPRESSED = 300_000_000
MAX_ENTRIES = 10_000
#: the largest ratio of uncompressed to compressed size an entry may claim (text XML reaches ~50)
MAX_RATIO = 200

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

CORE_NS = {
    "cp": "http://schemas.openxmlformats.org/package/2006/metadata/core-properties",
    "dc": "http://purl.org/dc/elements/1.1/",
    "ep": "http://schemas.openxmlformats.org/officeDocument/2006/extended-properties",
}
#: core and extended properties that name a person or organisation
PEOPLE_PROPERTIES = ("dc:creator", "cp:lastModifiedBy", "ep:Manager", "ep:Company")


class Uninspectable(Exception):
    """The file cannot be inspected; the message says why (it never contains the file's contents)."""


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def parse_xml(data: bytes) -> etree._Element:
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise Uninspectable(f"a part is not well-formed XML ({exc.msg})") from None
    return root


def iterparse_xml(source, tag=None):  # noqa: ANN001, ANN201 - lxml's own types
    """lxml.etree.iterparse with the same protections (for sheets too large to hold as a tree)."""
    return etree.iterparse(
        source, events=("end",), tag=tag, resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )


@dataclass
class Package:
    """An open OOXML package whose parts are read through the caps."""

    path: Path
    zf: zipfile.ZipFile

    def names(self) -> list[str]:
        return self.zf.namelist()

    def has(self, name: str) -> bool:
        try:
            self.zf.getinfo(name)
        except KeyError:
            return False
        return True

    def read(self, name: str) -> bytes:
        info = self.zf.getinfo(name)
        with self.zf.open(info) as f:
            data = f.read(MAX_UNCOMPRESSED + 1)
        if len(data) > MAX_UNCOMPRESSED:
            raise Uninspectable(f"part {name} expands to more than {MAX_UNCOMPRESSED // 1_000_000} MB (a ZIP bomb?)")
        return data

    def xml(self, name: str) -> etree._Element:
        return parse_xml(self.read(name))

    def open(self, name: str):  # noqa: ANN201 - a zipfile stream
        return self.zf.open(name)

    def close(self) -> None:
        self.zf.close()

    def __enter__(self) -> Package:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_package(path: Path, kind: str) -> Package:
    """Open a .docx/.xlsx; Uninspectable when it is encrypted, not a ZIP, or expands too far."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head == _OLE_MAGIC:
        raise Uninspectable(
            f"password-protected (encrypted) or an old binary Office file: save it as a .{kind} without a password"
        )
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise Uninspectable(f"not a readable .{kind} file ({exc})") from None
    infos = zf.infolist()
    total = sum(i.file_size for i in infos)
    if len(infos) > MAX_ENTRIES or total > MAX_UNCOMPRESSED:
        zf.close()
        raise Uninspectable(f"expands to {len(infos)} parts / {total // 1_000_000} MB, over the limit (a ZIP bomb?)")
    for i in infos:
        if i.flag_bits & 0x1:
            zf.close()
            raise Uninspectable("its parts are encrypted")
        if i.compress_size and i.file_size / i.compress_size > MAX_RATIO and i.file_size > 10_000_000:
            zf.close()
            raise Uninspectable(f"part {i.filename} is compressed {i.file_size // i.compress_size}:1 (a ZIP bomb?)")
    return Package(path, zf)


def main_part(pkg: Package, default: str) -> str:
    """The package's main part (``word/document.xml``, ``xl/workbook.xml``) as its root relationship names it."""
    if pkg.has("_rels/.rels"):
        for rel in pkg.xml("_rels/.rels"):
            if rel.get("Type", "").endswith("/officeDocument"):
                target = rel.get("Target", "").lstrip("/")
                if target and pkg.has(target):
                    return target
    return default


def part_text(pkg: Package, part: str) -> str:
    """All text and ``v`` attributes of a part, a line each (pivot caches keep values as attributes)."""
    root = pkg.xml(part)
    bits = [el.text for el in root.iter() if isinstance(el.tag, str) and el.text and el.text.strip()]
    bits += [el.get("v") for el in root.iter() if isinstance(el.tag, str) and el.get("v")]
    return "\n".join(b for b in bits if b)


def people_properties(pkg: Package) -> list[str]:
    """The names of the person/organisation properties that are filled in (their values are not returned)."""
    found = []
    for part in ("docProps/core.xml", "docProps/app.xml"):
        if not pkg.has(part):
            continue
        root = pkg.xml(part)
        for prop in PEOPLE_PROPERTIES:
            for el in root.iterfind(prop, CORE_NS):
                if (el.text or "").strip():
                    found.append(prop)
    return found
