"""Cleaned copies: checked again, they hold no number and nothing hidden; what was visible stays."""

from __future__ import annotations

import random
import zipfile

import docx
import openpyxl
import pytest

from publisher.errors import InvalidInput
from publisher.pipeline.privacy import check_file, clean_docx, clean_file, clean_xlsx
from publisher.pipeline.privacy.findings import NUMBER_KINDS
from tests.privacy.makers import docx_file, encrypted_office, make_card, make_id, make_mobile, pdf_file, xlsx_file

RNG = random.Random(3)
ID = make_id(RNG)
MOBILE = make_mobile(RNG)
CARD = make_card(RNG, 16)


def left(path) -> list[tuple[str, str]]:
    return [(f.kind, f.where) for f in check_file(path) if f.kind in (*NUMBER_KINDS, "hidden_content")]


def test_cleaned_docx(tmp_path):
    src = docx_file(
        tmp_path / "名单.docx",
        ["公示名单", f"张三 身份证 {ID} 电话 {MOBILE}"],
        table=[["姓名", "卡号"], ["张三", CARD]],
        comment=f"核对 {MOBILE}",
        deleted=f"卡号{CARD}",
        inserted="新增一行",
        hidden=f"身份证{ID}",
        author="张三",
        split_runs=MOBILE,
        header="秘密★1年",
    )
    assert len(left(src)) > 8
    dst = clean_docx(src, tmp_path / "clean.docx")
    assert left(dst) == []
    text = "\n".join(p.text for p in docx.Document(dst).paragraphs)
    assert "公示名单" in text and "新增一行" in text  # the visible text and the accepted insertion stay
    assert f"{ID[:4]}**********{ID[-4:]}" in text and f"{MOBILE[:3]}****{MOBILE[-4:]}" in text
    with zipfile.ZipFile(dst) as z:
        blob = b"".join(z.read(n) for n in z.namelist()).decode("utf-8", "replace")
        assert not any(n.startswith("word/comments") for n in z.namelist())
    for raw in (ID, MOBILE, CARD, "张三</dc:creator>", "审核人"):
        assert raw not in blob
    # the classification mark is left for the reviewer to decide on
    assert [f.kind for f in check_file(dst)] == ["classification_mark"]
    # Word-compatible: python-docx opens it and the comment part is gone from the relationships
    assert docx.Document(dst).core_properties.author == ""


def test_cleaned_xlsx(tmp_path):
    src = xlsx_file(
        tmp_path / "名单.xlsx",
        {
            "公示": [
                ["姓名", "等级", "卡号", "备注"],
                ["张三", "一等", CARD, f"手机{MOBILE}"],
                ["李四", "二等", CARD, "x"],
            ],
            "底稿": [["身份证"], [ID]],
            "vh": [[MOBILE]],
        },
        states={"底稿": "hidden", "vh": "veryHidden"},
        hidden_cols={"公示": ["C"]},
        hidden_rows={"公示": [3]},
        comments={"公示": {"A1": f"身份证{ID}"}},
        author="王五",
    )
    assert len(left(src)) >= 8
    dst = clean_xlsx(src, tmp_path / "clean.xlsx")
    assert left(dst) == []
    wb = openpyxl.load_workbook(dst)
    assert wb.sheetnames == ["公示"]
    rows = [[c.value for c in row] for row in wb["公示"].iter_rows()]
    assert rows == [["姓名", "等级", "备注"], ["张三", "一等", f"手机{MOBILE[:3]}****{MOBILE[-4:]}"]]


def test_xlsx_numbers_in_visible_cells_are_masked(tmp_path):
    rounded = float(ID[:15] + "000")  # an ID Excel rounded to 15 digits
    src = xlsx_file(tmp_path / "x.xlsx", {"公示": [["手机", "身份证", "数字"], [int(MOBILE), ID, rounded]]})
    dst = clean_file(src, tmp_path / "clean.xlsx")
    assert left(dst) == []
    values = [c.value for c in next(openpyxl.load_workbook(dst)["公示"].iter_rows(min_row=2))]
    assert values == [
        f"{MOBILE[:3]}****{MOBILE[-4:]}",
        f"{ID[:4]}**********{ID[-4:]}",
        f"{ID[:4]}{'*' * 10}{ID[14]}000",
    ]


def test_a_workbook_of_only_hidden_sheets_cannot_be_cleaned(tmp_path):
    src = xlsx_file(tmp_path / "x.xlsx", {"底稿": [[ID]]})
    path = tmp_path / "hidden.xlsx"
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(path, "w") as out:
        for info in z.infolist():
            data = z.read(info)
            if info.filename == "xl/workbook.xml":
                data = data.replace(b'state="visible"', b'state="hidden"')
            out.writestr(info, data)
    assert ("hidden_content", "hidden.xlsx:底稿") in left(path)
    with pytest.raises(InvalidInput, match="every sheet is hidden"):
        clean_xlsx(path, tmp_path / "clean.xlsx")


def test_other_formats_and_unreadable_files_are_refused(tmp_path):
    with pytest.raises(InvalidInput, match="only DOCX and XLSX"):
        clean_file(pdf_file(tmp_path / "x.pdf", ["x"]), tmp_path / "y.pdf")
    with pytest.raises(InvalidInput, match="cannot be cleaned"):
        clean_file(encrypted_office(tmp_path / "e.docx"), tmp_path / "y.docx")
