"""The catalogue columns of the CSV import and export, on both engines: imported items keep their
索引号, a number another item holds is refused, and the generated numbers step over imported ones."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from publisher.counting import ledger
from publisher.pipeline import content, workflow

ORG = "12230000MB0000000X"
YEAR = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).year
HEADER = "title,category,department,channel,published_at,url,index_no,doc_number,written_on,topic,validity\n"


def run_import(app: Any, text: str) -> ledger.ImportResult:
    with app.session() as s:
        return ledger.import_csv(app.ctx, s, data=text.encode(), source="old.csv", actor="admin")


def test_import_keeps_numbers_export_carries_them_and_duplicates_are_refused(make_app: Any) -> None:
    app = make_app(catalogue={"org_code": ORG})
    text = HEADER + (
        f"学生管理规定,规章制度,校长办公室,mem,2022-03-02,,{ORG}/{YEAR}-00001,齐高师专发[2022]12号,2022-03-01,学生管理,现行有效\n"
        f"学生管理规定,规章制度,校长办公室,mem2,2022-03-02,,{ORG}/{YEAR}-00001,,,,\n"
        "校历,公告公示,校长办公室,mem,2022-03-05,,,,,,\n"
    )
    result = run_import(app, text)
    assert (result.items_added, result.publications_added) == (2, 3)
    with app.session() as s:
        rule = workflow.get_item(s, result.item_ids[0])
        assert (rule.index_no, rule.doc_number, rule.topic, rule.validity) == (
            f"{ORG}/{YEAR}-00001",
            "齐高师专发〔2022〕12号",
            "学生管理",
            "现行有效",
        )
    exported = ledger.export_csv(app.engine, ZoneInfo("Asia/Shanghai"))
    lines = exported.lstrip("\ufeff").splitlines()
    assert lines[0].endswith(",index_no,doc_number,written_on,topic,disclosure_mode,disclosure_scope,validity")
    # an imported item has only the cells it came with: no 公开方式 / 公开范围 is made up for it
    assert sum(f",{ORG}/{YEAR}-00001,齐高师专发〔2022〕12号,2022-03-01,学生管理,,,现行有效" in x for x in lines) == 2
    # the export imports again as nothing new (the same items, their own numbers)
    again = run_import(app, exported)
    assert (again.items_added, again.publications_added, again.already_present) == (0, 0, 3)

    refused = {
        f"另一个文件,规章制度,校长办公室,mem,2022-04-01,,{ORG}/{YEAR}-00001,,,,\n": "already item",
        "坏文号,规章制度,校长办公室,mem,2022-04-01,,,第十二号,,,\n": "发文字号 (doc_number)",
        "坏主题,规章制度,校长办公室,mem,2022-04-01,,,,,财务,\n": "主题分类 (topic)",
        (
            f"甲,规章制度,校长办公室,mem,2022-04-01,,{ORG}/{YEAR}-00009,,,,\n"
            f"乙,规章制度,校长办公室,mem,2022-04-01,,{ORG}/{YEAR}-00009,,,,\n"
        ): "also given to another item",
    }
    for rows, why in refused.items():
        with pytest.raises(ledger.ImportRejected, match=re.escape(why)):
            run_import(app, HEADER + rows)

    # a number written here steps over the imported one: never given twice
    with app.session() as s:
        draft = content.ItemDraft(
            title="新规定", body_markdown="全文。", fields={"category": "规章制度", "channels": ["mem"]}
        )
        item = workflow.create_item(app.ctx, s, author=workflow.get_user(s, "ed"), draft=draft).id
        workflow.submit(app.ctx, s, item_id=item, actor=workflow.get_user(s, "ed"))
        workflow.review(app.ctx, s, item_id=item, actor=workflow.get_user(s, "head"), approve=True)
        workflow.review(app.ctx, s, item_id=item, actor=workflow.get_user(s, "sec"), approve=True)
        assert workflow.schedule(app.ctx, s, item_id=item, at=datetime.now(UTC)).index_no == f"{ORG}/{YEAR}-00002"


def test_the_report_rows_name_the_items_index_numbers(make_app: Any) -> None:
    from publisher.counting import report

    app = make_app(catalogue={"org_code": ORG})
    run_import(app, HEADER + f"学生管理规定,规章制度,校长办公室,mem,2022-03-02,,{ORG}/2022-00007,,,,\n")
    rep = report.build(app.engine, app.settings, start="2022-01-01", end="2022-12-31", channel_labels={})
    rows = report.figures_csv(rep, app.settings).lstrip("\ufeff").splitlines()
    assert rows[0].endswith(",title,index_no")
    counted = [r for r in rows[1:] if ",publication," in r]
    assert counted and all(r.endswith(f",学生管理规定,{ORG}/2022-00007") for r in counted)
