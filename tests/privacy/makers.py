"""Real DOCX/XLSX/PDF files for the privacy tests and bench/privacy_corpus.py, and valid numbers to plant."""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

from publisher.pipeline import content
from publisher.pipeline.privacy.numbers import PROVINCES, classify, id_check_char, luhn_ok

AREAS = ["230203", "230204", "110101", "310104", "440305", "510107", "230102", "370202"]


def make_id(rng: random.Random, *, x: bool | None = None) -> str:
    """A resident ID with a valid check character (``x=True``: one whose check character is X)."""
    while True:
        born = date(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 55))
        first17 = rng.choice(AREAS) + born.strftime("%Y%m%d") + f"{rng.randrange(1000):03d}"
        check = id_check_char(first17)
        if x is None or (check == "X") == x:
            return first17 + check


def make_legacy_id(rng: random.Random) -> str:
    born = date(1930, 1, 1) + timedelta(days=rng.randrange(0, 365 * 69))
    return rng.choice(AREAS) + born.strftime("%y%m%d") + f"{rng.randrange(1000):03d}"


def make_mobile(rng: random.Random) -> str:
    return f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"


def make_card(rng: random.Random, length: int | None = None) -> str:
    length = length or rng.choice([16, 16, 19, 19, 17, 18, 13])
    prefix = rng.choice(["62", "6222", "6228", "4367", "5187", "9558", "6217"])
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    for d in "0123456789":
        if luhn_ok(body + d):
            return body + d
    raise AssertionError("unreachable")


def wrong_check(number: str) -> str:
    """The same number with its last character changed so that the check fails."""
    last = number[-1]
    for c in "0123456789X":
        if c != last:
            candidate = number[:-1] + c
            if len(number) == 18 and id_check_char(candidate[:17]) != c:
                return candidate
            if len(number) != 18 and not luhn_ok(candidate):
                return candidate
    raise AssertionError("unreachable")


assert "23" in PROVINCES


def cut_id() -> tuple[str, int]:
    """An ID whose first 13-17 digits pass on their own as a card or a legacy ID, and that many digits."""
    rng = random.Random(3)
    while True:
        number = make_id(rng)
        for length in range(13, 18):
            if classify(number[:length]):
                return number, length


def body_cut_after(shown: str, before: str = "学生甲身份证号 ", after: str = "，家庭经济困难。") -> str:
    """A body whose 120-character summary ends with ``shown`` (the start of what follows ``before``) and "…"."""
    for n in range(200):
        body = "现将拟资助学生名单公示如下。" + "联" * n + f"\n\n{before}{shown}{after}\n"
        at = content.plain_text(body).index(before + shown) + len(before)
        if at + len(shown) >= 119:
            assert at + len(shown) == 119, "no padding puts the cut there"
            return body
    raise AssertionError("unreachable")


# ------------------------------------------------------------------------------------------ DOCX
def _w(tag: str):
    from docx.oxml.ns import qn

    return qn(f"w:{tag}")


def docx_file(
    path: Path,
    paragraphs: list[str] = (),
    *,
    table: list[list[str]] | None = None,
    comment: str | None = None,
    deleted: str | None = None,
    inserted: str | None = None,
    hidden: str | None = None,
    header: str | None = None,
    author: str = "",
    split_runs: str | None = None,
) -> Path:
    """A DOCX made with python-docx; tracked changes are written as the XML Word writes."""
    import docx
    from docx.oxml import OxmlElement

    d = docx.Document()
    d.core_properties.author = author
    d.core_properties.last_modified_by = ""
    for text in paragraphs:
        d.add_paragraph(text)
    if table:
        t = d.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                t.cell(r, c).text = value
    if comment is not None:
        p = d.add_paragraph()
        run = p.add_run("见附件")
        d.add_comment(runs=[run], text=comment, author="审核人")
    if split_runs is not None:  # a number typed in pieces: Word splits runs at every edit
        p = d.add_paragraph("号码：")
        half = len(split_runs) // 2
        p.add_run(split_runs[:half]).bold = True
        p.add_run(split_runs[half:])
    for text, tag, text_tag in ((deleted, "del", "delText"), (inserted, "ins", "t")):
        if text is None:
            continue
        p = d.add_paragraph("修改：")
        change = OxmlElement(f"w:{tag}")
        change.set(_w("id"), "7" if tag == "del" else "8")
        change.set(_w("author"), "审核人")
        change.set(_w("date"), "2026-11-01T00:00:00Z")
        run = OxmlElement("w:r")
        t = OxmlElement(f"w:{text_tag}")
        t.text = text
        run.append(t)
        change.append(run)
        p._p.append(change)
    if hidden is not None:
        d.add_paragraph("正文").add_run(hidden).font.hidden = True
    if header is not None:
        d.sections[0].header.paragraphs[0].text = header
    d.save(path)
    return path


# ------------------------------------------------------------------------------------------ XLSX
def xlsx_file(
    path: Path,
    sheets: dict[str, list[list[object]]],
    *,
    states: dict[str, str] | None = None,
    hidden_cols: dict[str, list[str]] | None = None,
    hidden_rows: dict[str, list[int]] | None = None,
    comments: dict[str, dict[str, str]] | None = None,
    author: str = "",
) -> Path:
    import openpyxl
    from openpyxl.comments import Comment

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
        ws.sheet_state = (states or {}).get(name, "visible")
        for col in (hidden_cols or {}).get(name, []):
            ws.column_dimensions[col].hidden = True
        for r in (hidden_rows or {}).get(name, []):
            ws.row_dimensions[r].hidden = True
        for ref, text in (comments or {}).get(name, {}).items():
            ws[ref].comment = Comment(text, "审核人")
    wb.properties.creator = author
    wb.properties.lastModifiedBy = ""
    wb.save(path)
    return path


def big_xlsx(path: Path, rows: int, rng: random.Random, *, hidden_id_column: bool = True) -> Path:
    """A 名单 of ``rows`` rows: name, college, grade, level visible; IDs and cards in hidden columns."""
    import openpyxl

    wb = openpyxl.Workbook(write_only=False)
    ws = wb.active
    ws.title = "名单"
    ws.append(["姓名", "学院", "年级", "等级", "身份证号", "银行卡号"])
    for i in range(rows):
        ws.append([f"学生{i}", "数学学院", "2024级", "一等", make_id(rng), make_card(rng)])
    if hidden_id_column:
        ws.column_dimensions["E"].hidden = True
        ws.column_dimensions["F"].hidden = True
    wb.save(path)
    return path


# ------------------------------------------------------------------------------------------- PDF
def pdf_file(path: Path, pages: list[str], *, author: str = "") -> Path:
    """A PDF with a text layer (Helvetica: digits and ASCII; Noto Sans CJK for other text)."""
    from fpdf import FPDF

    pdf = FPDF()
    cjk = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
    font = "helvetica"
    if cjk.exists() and any(not c.isascii() for page in pages for c in page):
        pdf.add_font("noto", fname=str(cjk))
        font = "noto"
    if author:
        pdf.set_author(author)
    for text in pages:
        pdf.add_page()
        pdf.set_font(font, size=11)
        pdf.multi_cell(0, 8, text=text)
    pdf.output(str(path))
    return path


def image_pdf(path: Path) -> Path:
    """A scan: one page holding only an image."""
    from fpdf import FPDF
    from PIL import Image

    img = Image.new("RGB", (200, 100), "white")
    pdf = FPDF()
    pdf.add_page()
    pdf.image(img, x=10, y=10, w=100)
    pdf.output(str(path))
    return path


def encrypted_pdf(path: Path, text: str, password: str = "secret") -> Path:
    from pypdf import PdfReader, PdfWriter

    plain = pdf_file(path.with_name("plain-" + path.name), [text])
    writer = PdfWriter(clone_from=PdfReader(plain))
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="AES-128")
    with open(path, "wb") as f:
        writer.write(f)
    plain.unlink()
    return path


def encrypted_office(path: Path) -> Path:
    """What Office writes for a password-protected .docx/.xlsx: a CFB (OLE2) container, not a ZIP."""
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504) + b"EncryptedPackage" + bytes(1000))
    return path
