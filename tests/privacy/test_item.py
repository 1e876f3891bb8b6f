"""check_item: an item file's front matter, body lines, images and attachments."""

from __future__ import annotations

import json
import random

import pytest

from publisher.errors import InvalidInput
from publisher.pipeline.content import read_item_file, read_item_source
from publisher.pipeline.privacy import check_item, findings_json
from tests.privacy.makers import docx_file, make_id, make_mobile, xlsx_file

RNG = random.Random(5)
ID = make_id(RNG)
MOBILE = make_mobile(RNG)

ITEM = """---
title: 关于2026年国家助学金评审结果的公示
category: 公告公示
attachments:
  - 名单.xlsx
  - 说明.docx
---
# 关于2026年国家助学金评审结果的公示

经学院推荐、学校审核，现将名单予以公示（教财厅函〔2017〕28号）。

联系人：王老师，电话 0452-2712345，手机 {mobile}

![照片](photo.png)
"""


def _item(tmp_path, body: str = ITEM):
    xlsx_file(
        tmp_path / "名单.xlsx",
        {"公示": [["姓名", "等级"], ["张三", "一等"]], "Sheet2": [["身份证"], [ID]]},
        states={"Sheet2": "hidden"},
    )
    docx_file(tmp_path / "说明.docx", ["说明"])
    (tmp_path / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    path = tmp_path / "item.md"
    path.write_text(body.format(mobile=MOBILE), encoding="utf-8")
    return path


def test_an_item_with_its_attachments(tmp_path):
    found = [(f.kind, f.where) for f in check_item(_item(tmp_path))]
    assert found == [
        ("mobile", "body:12"),  # the line in the item file, front matter counted
        ("hidden_content", "名单.xlsx:Sheet2"),
        ("id_card", "名单.xlsx:Sheet2!A2"),
    ]
    text = (tmp_path / "item.md").read_text(encoding="utf-8").splitlines()
    assert MOBILE in text[11]


def test_title_and_summary_are_checked(tmp_path):
    path = tmp_path / "item.md"
    path.write_text(f"---\ntitle: 秘密★1年 通知\nsummary: 电话{MOBILE}\n---\n正文\n", encoding="utf-8")
    assert [(f.kind, f.where) for f in check_item(path)] == [("classification_mark", "title"), ("mobile", "summary")]


def test_a_missing_attachment_is_a_finding(tmp_path):
    path = tmp_path / "item.md"
    path.write_text("---\ntitle: t\nattachments: [gone.xlsx]\n---\n正文\n", encoding="utf-8")
    [f] = check_item(path)
    assert (f.kind, f.where) == ("uninspectable", "gone.xlsx") and "does not exist" in f.masked


def test_a_bad_item_file_is_invalid_input(tmp_path):
    path = tmp_path / "item.md"
    path.write_text("---\ntitle: [unclosed\n---\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        check_item(path)


def test_the_output_never_holds_the_raw_numbers(tmp_path):
    out = findings_json(check_item(_item(tmp_path)))
    assert MOBILE not in out and ID not in out
    assert all(set(f) == {"kind", "where", "masked", "rule"} for f in json.loads(out)["findings"])


def test_read_item_file_still_reads_items(tmp_path):
    path = _item(tmp_path, ITEM.replace("![照片](photo.png)", ""))
    draft = read_item_file(path, media_dir=tmp_path / "media", max_body_bytes=100_000, max_asset_bytes=1_000_000)
    assert draft.title == "关于2026年国家助学金评审结果的公示"
    assert draft.body_markdown.startswith("# 关于2026年")  # a title from front matter leaves the heading
    assert [a.filename for a in draft.assets] == ["名单.xlsx", "说明.docx"]
    assert draft.fields == {"category": "公告公示"}
    source = read_item_source(path, max_body_bytes=100_000)
    assert source.body_line == 8


def test_read_item_file_without_front_matter(tmp_path):
    path = tmp_path / "item.md"
    path.write_text("# 标题\n\n正文\n", encoding="utf-8")
    draft = read_item_file(path, media_dir=tmp_path / "media", max_body_bytes=100_000, max_asset_bytes=1_000_000)
    assert (draft.title, draft.body_markdown) == ("标题", "正文\n")
    assert read_item_source(path, max_body_bytes=100_000).body_line == 1
