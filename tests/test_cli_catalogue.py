"""``publisher item add/edit/show/list`` with the catalogue fields, through the real command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clirun import Cli, setup_store


@pytest.fixture
def cli(tmp_path: Path, store_url: str) -> Cli:
    c = Cli(tmp_path, store_url)
    setup_store(c)
    return c


def item_file(folder: Path, name: str, front: str) -> Path:
    p = folder / f"{name}.md"
    p.write_text(f"---\ncategory: 规章制度\nchannels: [mem]\n{front}---\n全文如下。\n", encoding="utf-8")
    return p


def test_catalogue_fields_through_the_cli(cli: Cli, tmp_path: Path) -> None:
    front = (
        "title: 学生管理规定\ndoc_number: 齐高师专发【2022】12号\nwritten_on: 2022-03-01\ntopic: 学生管理\n"
        "validity: 现行有效\n"
    )
    rule = cli.ok("item", "add", str(item_file(tmp_path, "rule", front)), "--as", "ed").last_line
    reading = cli.ok(
        "item", "add", str(item_file(tmp_path, "reading", f"title: 政策解读\ninterprets: {rule}\n")), "--as", "ed"
    ).last_line
    for who in ("ed", "head", "sec"):
        if who == "ed":
            cli.ok("submit", rule, "--as", who)
        else:
            cli.ok("review", "approve", rule, "--as", who)
    cli.ok("schedule", rule, "--at", "now", "--as", "ed")
    d = json.loads(cli.ok("item", "show", rule, "--json").out)
    cat = d["catalogue"]
    assert cat["doc_number"] == "齐高师专发〔2022〕12号" and cat["written_on"] == "2022-03-01"
    assert (cat["topic"], cat["validity"], cat["disclosure_mode"]) == ("学生管理", "现行有效", "主动公开")
    number = cat["index_no"]
    assert number and number.endswith("-00001")
    assert d["related"] == [{"label": "政策解读", "item_id": int(reading), "title": "政策解读", "status": "draft"}]
    text = cli.ok("item", "show", rule).out
    assert f"索引号 index_no: {number}" in text and "发文字号 doc_number: 齐高师专发〔2022〕12号" in text
    assert f"政策解读: item {reading} 政策解读 (draft)" in text

    def ids(*args: str) -> list[int]:
        return [i["id"] for i in json.loads(cli.ok("item", "list", "--json", *args).out)]

    assert ids("--topic", "学生管理") == [int(rule)]
    assert ids("--validity", "现行有效") == [int(rule)]
    assert ids("--index-no", number) == [int(rule)]
    assert ids("--validity", "已废止") == []

    r = cli("item", "list", "--topic", "财务")
    assert r.code != 0 and "unknown topic '财务'; one of" in r.err
    r = cli("item", "list", "--validity", "有效")
    assert r.code != 0 and "现行有效 / 已修订 / 已废止" in r.err
    # a bad value in the front matter: refused, with the fix, and nothing stored
    bad = item_file(tmp_path, "bad", "title: 坏文号\ndoc_number: 第十二号\n")
    r = cli("item", "add", str(bad), "--as", "ed")
    assert r.code != 0 and "e.g. 齐高师专发〔2022〕12号" in r.err
    r = cli(
        "item", "edit", rule, str(item_file(tmp_path, "renumber", f"title: 改号\nindex_no: {number}X\n")), "--as", "ed"
    )
    assert r.code != 0 and "given by the system" in r.err
    # an edit keeps the number
    cli.ok("item", "edit", rule, str(item_file(tmp_path, "edit", front.replace("现行有效", "已修订"))), "--as", "ed")
    assert json.loads(cli.ok("item", "show", rule, "--json").out)["catalogue"]["index_no"] == number
