"""Attachments built as real files: what each format hides, and files that cannot be read."""

from __future__ import annotations

import random
import zipfile

import pytest

from publisher.pipeline.privacy import check_file, findings_json
from tests.privacy.makers import (
    docx_file,
    encrypted_office,
    encrypted_pdf,
    image_pdf,
    make_card,
    make_id,
    make_mobile,
    pdf_file,
    xlsx_file,
)

RNG = random.Random(7)
ID = make_id(RNG)
MOBILE = make_mobile(RNG)
CARD = make_card(RNG, 19)


def found(path, **kw) -> list[tuple[str, str, str]]:
    return [(f.kind, f.where, f.masked) for f in check_file(path, **kw)]


def masked(number: str, head: int = 4) -> str:
    return number[:head] + "*" * (len(number) - head - 4) + number[-4:]


# ------------------------------------------------------------------------------------------ DOCX
def test_a_clean_docx_has_no_findings(tmp_path):
    path = docx_file(tmp_path / "通知.docx", ["关于2022年国家奖学金评审结果的公示", "办公电话：0452-2712345"])
    assert found(path) == []


def test_docx_body_table_and_header(tmp_path):
    path = docx_file(
        tmp_path / "名单.docx",
        [f"身份证号 {ID}"],
        table=[["姓名", "卡号"], ["张三", CARD]],
        header="秘密★1年",
    )
    assert found(path) == [
        ("id_card", "名单.docx:paragraph 1", masked(ID)),
        ("bank_card", "名单.docx:table 1 row 2 cell 2", masked(CARD)),
        ("classification_mark", "名单.docx:header 1", "秘密★1年"),
    ]


def test_docx_comment_is_hidden_content_and_its_text_is_checked(tmp_path):
    path = docx_file(tmp_path / "a.docx", ["正文"], comment=f"联系人手机 {MOBILE}")
    assert found(path) == [
        ("hidden_content", "a.docx:comment 1", "comment"),
        ("mobile", "a.docx:comment 1", masked(MOBILE, 3)),
    ]


def test_docx_tracked_deletion_keeps_the_number_in_the_file(tmp_path):
    path = docx_file(tmp_path / "a.docx", [], deleted=ID)
    assert found(path) == [
        ("id_card", "a.docx:paragraph 1", masked(ID)),
        ("hidden_content", "a.docx:paragraph 1", "tracked change (deleted text kept in the file)"),
    ]


def test_docx_tracked_insertion(tmp_path):
    path = docx_file(tmp_path / "a.docx", [], inserted="补充说明")
    assert found(path) == [("hidden_content", "a.docx:paragraph 1", "tracked change (insertion not accepted)")]


def test_docx_hidden_text(tmp_path):
    path = docx_file(tmp_path / "a.docx", [], hidden=f"卡号{CARD}")
    assert found(path) == [
        ("bank_card", "a.docx:paragraph 1", masked(CARD)),
        ("hidden_content", "a.docx:paragraph 1", "hidden text (w:vanish)"),
    ]


def test_docx_author_metadata(tmp_path):
    path = docx_file(tmp_path / "a.docx", ["正文"], author="张三")
    assert found(path) == [("hidden_content", "a.docx:properties", "author metadata (dc:creator)")]
    assert "张三" not in findings_json(check_file(path))


def test_docx_text_in_a_structure_the_walk_does_not_know_is_still_checked(tmp_path):
    import docx
    from docx.oxml import OxmlElement

    path = docx_file(tmp_path / "a.docx", [], table=[["姓名", "手机"], ["张三", MOBILE]])
    d = docx.Document(path)
    row = d.tables[0]._tbl.tr_lst[1]
    sdt, content = OxmlElement("w:sdt"), OxmlElement("w:sdtContent")
    row.addprevious(sdt)
    sdt.append(content)
    content.append(row)  # a repeating-section content control around the row, as Word writes it
    d.save(path)
    assert found(path) == [("mobile", "a.docx:other text", masked(MOBILE, 3))]


def test_docx_number_split_across_runs(tmp_path):
    path = docx_file(tmp_path / "a.docx", [], split_runs=MOBILE)
    assert found(path) == [("mobile", "a.docx:paragraph 1", masked(MOBILE, 3))]


# ------------------------------------------------------------------------------------------ XLSX
def test_a_clean_xlsx_has_no_findings(tmp_path):
    path = xlsx_file(tmp_path / "名单.xlsx", {"公示": [["姓名", "学院", "等级"], ["张三", "数学学院", "一等"]]})
    assert found(path) == []


def test_xlsx_hidden_sheet_and_its_contents(tmp_path):
    path = xlsx_file(
        tmp_path / "名单.xlsx",
        {"公示": [["姓名"], ["张三"]], "Sheet2": [["姓名", "学院", "身份证"], ["张三", "数学", ID]]},
        states={"Sheet2": "hidden"},
    )
    assert found(path) == [
        ("hidden_content", "名单.xlsx:Sheet2", "hidden sheet"),
        ("id_card", "名单.xlsx:Sheet2!C2", masked(ID)),
    ]


def test_xlsx_very_hidden_sheet(tmp_path):
    path = xlsx_file(tmp_path / "x.xlsx", {"公示": [["姓名"]], "底稿": [[MOBILE]]}, states={"底稿": "veryHidden"})
    assert found(path) == [
        ("hidden_content", "x.xlsx:底稿", "very hidden sheet (only VBA can show it)"),
        ("mobile", "x.xlsx:底稿!A1", masked(MOBILE, 3)),
    ]


def test_xlsx_hidden_column_and_row(tmp_path):
    rows = [["姓名", "等级", "卡号"], ["张三", "一等", CARD], ["李四", "二等", f"手机{MOBILE}"]]
    path = xlsx_file(tmp_path / "x.xlsx", {"公示": rows}, hidden_cols={"公示": ["C"]}, hidden_rows={"公示": [3]})
    assert found(path) == [
        ("bank_card", "x.xlsx:公示!C2", masked(CARD)),
        ("mobile", "x.xlsx:公示!C3", masked(MOBILE, 3)),
        ("hidden_content", "x.xlsx:公示!row 3", "hidden row 3"),
        ("hidden_content", "x.xlsx:公示!C", "hidden column C"),
    ]


def test_xlsx_numbers_stored_as_numbers(tmp_path):
    path = xlsx_file(tmp_path / "x.xlsx", {"公示": [["手机"], [int(MOBILE)], [13812345678.0]]})
    assert [f[0] for f in found(path)] == ["mobile", "mobile"]


def test_xlsx_an_id_excel_rounded_to_15_digits(tmp_path):
    # what Excel stores when an ID is typed without a leading ': 2.30203199001011E+17
    rounded = float(ID[:15] + "000")
    path = xlsx_file(tmp_path / "x.xlsx", {"公示": [["身份证"], [rounded], [2.02611010001e17]]})
    [(kind, where, text)] = found(path)
    assert (kind, where, text) == ("id_card", "x.xlsx:公示!A2", ID[:4] + "*" * 10 + ID[14] + "000")


def test_xlsx_comment_and_author(tmp_path):
    path = xlsx_file(tmp_path / "x.xlsx", {"公示": [["姓名"]]}, comments={"公示": {"A1": f"身份证{ID}"}}, author="王五")
    assert found(path) == [
        ("hidden_content", "x.xlsx:公示!A1 comment", "comment"),
        ("id_card", "x.xlsx:公示!A1 comment", masked(ID)),
        ("hidden_content", "x.xlsx:properties", "author metadata (dc:creator)"),
    ]


def test_xlsx_print_header_mark(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.title = "公示"
    wb.active.oddHeader.center.text = "秘密★1年"
    wb.properties.creator = ""
    wb.save(tmp_path / "x.xlsx")
    assert found(tmp_path / "x.xlsx") == [("classification_mark", "x.xlsx:公示!oddHeader", "秘密★1年")]


# ------------------------------------------------------------------------------------------- PDF
def test_pdf_text_layer_by_page(tmp_path):
    path = pdf_file(tmp_path / "x.pdf", ["Notice, tel 0452-2712345", f"ID {ID}, mobile +86 {MOBILE}"])
    assert found(path) == [("id_card", "x.pdf:page 2", masked(ID)), ("mobile", "x.pdf:page 2", masked(MOBILE, 3))]


def test_pdf_with_cjk_text_and_a_mark(tmp_path):
    path = pdf_file(tmp_path / "x.pdf", [f"秘密★1年\n身份证号：{ID}"])
    assert found(path) == [("id_card", "x.pdf:page 1", masked(ID)), ("classification_mark", "x.pdf:page 1", "秘密★1年")]


def test_pdf_author(tmp_path):
    path = pdf_file(tmp_path / "x.pdf", ["Notice"], author="Zhang San")
    assert found(path) == [("hidden_content", "x.pdf:properties", "author metadata (/Author)")]


# ------------------------------------------------------------------------------ cannot be read
def _uninspectable(path) -> str:
    [(kind, where, text)] = found(path)
    assert kind == "uninspectable" and where == path.name
    return text


def test_image_only_pdf(tmp_path):
    assert "no text layer" in _uninspectable(image_pdf(tmp_path / "scan.pdf"))


def test_encrypted_pdf(tmp_path):
    assert "encrypted" in _uninspectable(encrypted_pdf(tmp_path / "e.pdf", f"ID {ID}"))


@pytest.mark.parametrize("name", ["e.docx", "e.xlsx"])
def test_password_protected_office_files(tmp_path, name):
    assert "password-protected" in _uninspectable(encrypted_office(tmp_path / name))


@pytest.mark.parametrize("name", ["bad.docx", "bad.xlsx", "bad.pdf"])
def test_corrupt_files(tmp_path, name):
    (tmp_path / name).write_bytes(b"PK\x03\x04 this is not really a zip file" + bytes(100))
    assert "cannot be inspected" in _uninspectable(tmp_path / name)


def test_a_zip_without_the_document_part(tmp_path):
    with zipfile.ZipFile(tmp_path / "x.docx", "w") as z:
        z.writestr("hello.txt", "hi")
    assert "word/document.xml" in _uninspectable(tmp_path / "x.docx")


@pytest.mark.parametrize(("name", "why"), [("a.doc", ".doc"), ("a.zip", ".zip"), ("gone.pdf", "exist")])
def test_formats_not_read_are_reported(tmp_path, name, why):
    if name != "gone.pdf":
        (tmp_path / name).write_bytes(b"\x89PNG....")
    assert why in _uninspectable(tmp_path / name)


@pytest.mark.parametrize("name", ["a.png", "photo.JPG", "scan.tiff"])
def test_images_are_not_findings(tmp_path, name):
    """Text in images is not read, and a news photo must not block every approval: the reviewer looks
    at every image (docs/privacy.md, what is not checked)."""
    (tmp_path / name).write_bytes(b"\x89PNG....")
    assert check_file(tmp_path / name) == []


def test_a_stored_copy_takes_its_format_from_its_name(tmp_path):
    (tmp_path / "abc123").write_text(f"张三,{MOBILE}\n", encoding="utf-8")
    assert found(tmp_path / "abc123", name="名单.csv") == [("mobile", "名单.csv:1", masked(MOBILE, 3))]


def test_text_attachments_by_line(tmp_path):
    (tmp_path / "名单.csv").write_text(f"姓名,手机\n张三,{MOBILE}\n", encoding="gb18030")
    assert found(tmp_path / "名单.csv") == [("mobile", "名单.csv:2", masked(MOBILE, 3))]


# ---------------------------------------------------------------------------------- hostile files
def test_zip_bomb_is_refused_before_it_is_read(tmp_path, monkeypatch):
    from publisher.pipeline.privacy import archive

    monkeypatch.setattr(archive, "MAX_UNCOMPRESSED", 5_000_000)
    path = tmp_path / "bomb.docx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/document.xml", b"<a>" + b" " * 20_000_000 + b"</a>")
    assert "ZIP bomb" in _uninspectable(path)


def test_a_lying_zip_size_is_capped_while_reading(tmp_path, monkeypatch):
    from publisher.pipeline.privacy import archive

    monkeypatch.setattr(archive, "MAX_UNCOMPRESSED", 1_000)
    path = docx_file(tmp_path / "x.docx", ["正文" * 2000])
    assert "cannot be inspected" in _uninspectable(path)


def test_xml_entities_are_not_expanded(tmp_path):
    good = docx_file(tmp_path / "good.docx", ["x"])
    path = tmp_path / "laughs.docx"
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY a "13812345678"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY ext SYSTEM "file:///etc/passwd">]>'
        b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
        b"<w:p><w:r><w:t>&b;&ext;</w:t></w:r></w:p></w:body></w:document>"
    )
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, laughs if info.filename == "word/document.xml" else src.read(info))
    assert [f for f in check_file(path) if f.kind == "mobile"] == []


def _add_part(path, name: str, data: bytes) -> None:
    with zipfile.ZipFile(path, "a") as z:
        z.writestr(name, data)


def test_chart_caches_are_checked(tmp_path):
    chart = (
        b'<c:chartSpace xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart"><c:strCache><c:pt idx="0">'
        b"<c:v>" + ID.encode() + b"</c:v></c:pt></c:strCache></c:chartSpace>"
    )
    x = xlsx_file(tmp_path / "x.xlsx", {"公示": [["姓名"]]})
    _add_part(x, "xl/charts/chart1.xml", chart)
    d = docx_file(tmp_path / "d.docx", ["正文"])
    _add_part(d, "word/charts/chart2.xml", chart)
    assert found(x) == [("id_card", "x.xlsx:chart 1", masked(ID))]
    assert found(d) == [("id_card", "d.docx:chart 2", masked(ID))]


def test_embedded_objects_are_reported_not_passed(tmp_path):
    d = docx_file(tmp_path / "d.docx", ["正文"])
    _add_part(d, "word/embeddings/Microsoft_Excel_Worksheet.xlsx", b"PK")
    _add_part(d, "word/afchunk.mht", b"MIME-Version: 1.0")
    assert [(k, w) for k, w, _ in found(d)] == [
        ("uninspectable", "d.docx:word/afchunk.mht"),
        ("uninspectable", "d.docx:word/embeddings/Microsoft_Excel_Worksheet.xlsx"),
    ]
