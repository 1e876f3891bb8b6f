"""Classification marks and the sensitive-word list."""

from __future__ import annotations

import pytest

from publisher.errors import ConfigError
from publisher.pipeline.privacy import WordList, check_text, load_word_list, words_for
from publisher.settings import Settings


def marks(text: str) -> list[str]:
    return [f.masked for f in check_text(text) if f.kind == "classification_mark"]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("秘密★1年\n关于……的通知", ["秘密★1年"]),
        ("机密★5年", ["机密★5年"]),
        ("绝密★长期", ["绝密★长期"]),
        ("机密 ★ 十年", ["机密 ★ 十年"]),
        ("秘密★", ["秘密★"]),
        ("【机密】关于……", ["【机密】"]),
        ("（秘密）", ["（秘密）"]),
        ("  秘密  \n正文", ["秘密"]),
        ("机密 5年\n正文", ["机密 5年"]),
        ("本文件为内部资料，不得外传。", ["内部资料", "不得外传"]),
        ("注意保密", ["注意保密"]),
        ("内部文件 请勿外传", ["内部文件", "请勿外传"]),
    ],
)
def test_marks_as_found(text, found):
    assert marks(text) == found


@pytest.mark.parametrize(
    "text",
    [
        "全体教职工要保守国家秘密，不得泄露商业秘密。",
        "严禁携带机密文件外出",
        "宇宙的秘密讲座",
        "绝密档案展映活动",
    ],
)
def test_the_words_in_ordinary_sentences_are_not_marks(text):
    assert marks(text) == []


def test_marks_name_their_line():
    found = check_text("标题\n\n秘密★1年\n", first_line=5)
    assert [(f.kind, f.where) for f in found] == [("classification_mark", "body:7")]


def test_word_list_file(tmp_path):
    f = tmp_path / "words.txt"
    f.write_text("# 敏感词\n\n涉密人员\t名单不公开\n考生成绩\t个人信息：只公示等级\n", encoding="utf-8")
    words = load_word_list(f)
    assert len(words) == 2
    found = check_text("附件为涉密人员与考生成绩", words=words)
    assert [(x.kind, x.masked) for x in found] == [("sensitive_word", "涉密人员"), ("sensitive_word", "考生成绩")]
    assert found[0].rule.endswith("名单不公开") and "只公示等级" in found[1].rule


def test_the_longest_word_wins():
    words = WordList.of([("成绩", "a"), ("考生成绩", "b")])
    assert [f.masked for f in check_text("考生成绩与成绩", words=words)] == ["考生成绩", "成绩"]


@pytest.mark.parametrize("line", ["涉密人员", "涉密人员\t", "\t原因", "涉密人员 原因"])
def test_a_word_without_a_reason_is_refused_with_the_line(tmp_path, line):
    f = tmp_path / "words.txt"
    f.write_text(f"# comment\n{line}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 2"):
        load_word_list(f)


def test_a_missing_or_non_utf8_list_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_word_list(tmp_path / "none.txt")
    (tmp_path / "gbk.txt").write_bytes("涉密\t原因\n".encode("gbk"))
    with pytest.raises(ConfigError, match="UTF-8"):
        load_word_list(tmp_path / "gbk.txt")


def test_the_settings_value(tmp_path):
    (tmp_path / "words.txt").write_text("涉密\t原因\n", encoding="utf-8")
    s = Settings(data_dir=str(tmp_path), privacy={"words_file": "words.txt"})
    assert len(words_for(s)) == 1
    assert len(words_for(Settings(data_dir=str(tmp_path)))) == 0
