"""The disclosure catalogue (政府信息公开目录) on both engines, through the service functions: the
fields and their refusals, related items both ways, and the 索引号 — given when the item is queued to
go out, kept by an edit and a withdrawal, and unique and increasing when several worker processes
queue items at once."""

from __future__ import annotations

import multiprocessing
import re
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from publisher.errors import InvalidInput
from publisher.models import ItemStatus
from publisher.pipeline import content, workflow
from publisher.pipeline.workflow.catalogue import allocate_index_no, catalogue_of, related_of

ORG = "12230000MB0000000X"
YEAR = datetime.now(UTC).astimezone().year


def _app(make_app: Any) -> Any:
    return make_app(catalogue={"org_code": ORG, "topics": ["规章制度", "招生考试", "其他"], "default_scope": "全校"})


def new_item(app: Any, **fields: Any) -> int:
    with app.session() as s:
        draft = content.ItemDraft(
            title="关于印发《学生管理规定》的通知",
            body_markdown="全文如下。",
            fields={"category": "规章制度", "channels": ["mem"], **fields},
        )
        return workflow.create_item(app.ctx, s, author=workflow.get_user(s, "ed"), draft=draft).id  # type: ignore[return-value]


def approve(app: Any, item: int) -> None:
    with app.session() as s:
        workflow.submit(app.ctx, s, item_id=item, actor=workflow.get_user(s, "ed"))
        workflow.review(app.ctx, s, item_id=item, actor=workflow.get_user(s, "head"), approve=True)
        workflow.review(app.ctx, s, item_id=item, actor=workflow.get_user(s, "sec"), approve=True)


def schedule_now(app: Any, item: int) -> str | None:
    with app.session() as s:
        return workflow.schedule(app.ctx, s, item_id=item, at=datetime.now(UTC)).index_no


def test_fields_are_checked_normalised_and_defaulted(make_app: Any) -> None:
    app = _app(make_app)
    item = new_item(
        app, doc_number="齐高师专发[2022]12号", written_on="2022-03-01", topic="规章制度", validity="现行有效"
    )
    with app.session() as s:
        got = catalogue_of(s, workflow.get_item(s, item))
    assert got["doc_number"] == "齐高师专发〔2022〕12号"
    assert got["written_on"] == "2022-03-01"
    assert (got["topic"], got["validity"]) == ("规章制度", "现行有效")
    # defaults: 主动公开 and the office's scope; no 索引号 before it is queued
    assert (got["disclosure_mode"], got["disclosure_scope"], got["index_no"]) == ("主动公开", "全校", None)
    assert new_item(app, doc_number="齐高师专发【2023】7号")  # 【】 are accepted too

    bad = {
        "doc_number": ("第12号文件", "〔"),
        "written_on": ("2022/03/01", "YYYY-MM-DD"),
        "topic": ("财务", "规章制度, 招生考试, 其他"),
        "disclosure_mode": ("公开", "主动公开 / 依申请公开"),
        "validity": ("有效", "现行有效 / 已修订 / 已废止"),
        "replaced_by": ("9999", "no item 9999"),
        "interprets": ("abc", "not an item id"),
        "index_no": (f"{ORG}/2022-00001", "given by the system"),
    }
    for key, (value, fix) in bad.items():
        with pytest.raises(InvalidInput, match=fix):
            new_item(app, **{key: value})


def test_a_repealed_rule_names_its_replacement_and_related_items_link_both_ways(make_app: Any) -> None:
    app = _app(make_app)
    rule = new_item(app, validity="现行有效")
    reading = new_item(app, interprets=rule)
    new_rule = new_item(app, revises=[rule], validity="现行有效")
    with pytest.raises(InvalidInput, match="已修订 or 已废止"), app.session() as s:  # refused: rolled back
        workflow.edit_item(
            app.ctx, s, item_id=rule, actor=workflow.get_user(s, "ed"), changes={"replaced_by": new_rule}
        )
    with app.session() as s:
        workflow.edit_item(
            app.ctx,
            s,
            item_id=rule,
            actor=workflow.get_user(s, "ed"),
            changes={"validity": "已废止", "replaced_by": new_rule},
        )
    with app.session() as s:
        assert workflow.get_item(s, rule).validity == "已废止"
        assert [(r.label, r.item_id) for r in related_of(s, rule)] == [("修订版本", new_rule), ("政策解读", reading)]
        assert [(r.label, r.item_id) for r in related_of(s, reading)] == [("解读的文件", rule)]
        with pytest.raises(InvalidInput, match="this item itself"):
            workflow.edit_item(
                app.ctx, s, item_id=reading, actor=workflow.get_user(s, "ed"), changes={"interprets": reading}
            )
    with app.session() as s:  # an empty value clears the relation
        workflow.edit_item(app.ctx, s, item_id=reading, actor=workflow.get_user(s, "ed"), changes={"interprets": ""})
    with app.session() as s:
        assert related_of(s, rule) == [r for r in related_of(s, rule) if r.item_id == new_rule]


def test_index_no_is_given_when_queued_and_never_changes(make_app: Any) -> None:
    app = _app(make_app)
    first, second = new_item(app), new_item(app)
    approve(app, first)
    approve(app, second)
    assert schedule_now(app, first) == f"{ORG}/{YEAR}-00001"
    assert schedule_now(app, second) == f"{ORG}/{YEAR}-00002"
    with app.session() as s:  # an edit after approval: back to review, same number
        item = workflow.edit_item(
            app.ctx, s, item_id=first, actor=workflow.get_user(s, "ed"), changes={"title": "修订后的通知"}
        )
        assert (item.status, item.index_no) == (ItemStatus.SUBMITTED, f"{ORG}/{YEAR}-00001")
    with app.session() as s:
        workflow.review(app.ctx, s, item_id=first, actor=workflow.get_user(s, "head"), approve=True)
        workflow.review(app.ctx, s, item_id=first, actor=workflow.get_user(s, "sec"), approve=True)
    assert schedule_now(app, first) == f"{ORG}/{YEAR}-00001"
    with app.session() as s:
        workflow.withdraw(app.ctx, s, item_id=second, actor="ed", user=workflow.get_user(s, "ed"))
    third = new_item(app)
    approve(app, third)
    assert schedule_now(app, third) == f"{ORG}/{YEAR}-00003"  # the withdrawn item's number is not reused
    with app.session() as s:
        assert workflow.get_item(s, second).index_no == f"{ORG}/{YEAR}-00002"


def test_a_rolled_back_number_goes_back_with_its_transaction(make_app: Any) -> None:
    app = _app(make_app)
    a, b = new_item(app), new_item(app)
    with pytest.raises(RuntimeError), app.session() as s:  # a number taken by a transaction that then failed...
        assert allocate_index_no(app.ctx, s, workflow.get_item(s, a, lock=True)) == f"{ORG}/{YEAR}-00001"
        raise RuntimeError("the queueing failed")
    with app.session() as s:
        assert workflow.get_item(s, a).index_no is None
        # ...went back with it (nobody ever held it): the next number follows the last committed one
        assert allocate_index_no(app.ctx, s, workflow.get_item(s, b, lock=True)) == f"{ORG}/{YEAR}-00001"
        # an imported item's number is skipped, never handed out twice
        workflow.get_item(s, a).index_no = f"{ORG}/{YEAR}-00002"
    c_item = new_item(app)
    with app.session() as s:
        assert allocate_index_no(app.ctx, s, workflow.get_item(s, c_item, lock=True)) == f"{ORG}/{YEAR}-00003"


def _queue_slice(url: str, data_dir: str, ids: list[int], out: Any) -> None:
    """One worker process: its own engine and connections, queueing its items one transaction each."""
    from publisher.app import open_app
    from publisher.settings import Settings

    app = open_app(
        Settings(
            database_url=url,
            data_dir=data_dir,
            channels={"mem": {"type": "memory"}},
            catalogue={"org_code": ORG},
        )
    )
    try:
        got = []
        for item in ids:
            with app.session() as s:
                got.append((item, workflow.schedule(app.ctx, s, item_id=item, at=datetime.now(UTC)).index_no))
        out.put(got)
    finally:
        app.close()


def test_several_processes_queueing_at_once_get_unique_increasing_numbers(
    make_app: Any, store_url: str, tmp_path: Any
) -> None:
    app = make_app(channels={"mem": {"type": "memory"}}, catalogue={"org_code": ORG})
    procs_n, per = 4, 12
    ids = [new_item(app) for _ in range(procs_n * per)]
    for item in ids:
        approve(app, item)
    mp = multiprocessing.get_context("spawn")
    out = mp.Queue()
    procs = [
        mp.Process(target=_queue_slice, args=(store_url, str(tmp_path), ids[n::procs_n], out)) for n in range(procs_n)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    numbers = [n for got in results for _, n in got]
    assert len(set(numbers)) == len(numbers) == len(ids)
    seqs = sorted(int(n.rsplit("-", 1)[1]) for n in numbers)
    assert seqs == list(range(1, len(ids) + 1))  # nothing failed, so no gap either
    for got in results:  # each process queued its items one after another: its numbers increase
        own = [int(n.rsplit("-", 1)[1]) for _, n in got]
        assert own == sorted(own)
    with app.engine.connect() as c:
        stored = dict(c.execute(sa.text("SELECT id, index_no FROM item")).all())
        counter = c.execute(sa.text("SELECT last_seq FROM catalogue_counter WHERE org_code = :o"), {"o": ORG}).scalar()
    assert {i: stored[i] for i, _ in [x for got in results for x in got]} == dict(x for got in results for x in got)
    assert counter == len(ids)


def test_settings_refuse_a_pattern_without_seq_and_a_bad_topic_list(tmp_path: Any) -> None:
    from publisher.errors import ConfigError
    from publisher.settings import load_settings

    for table, why in (
        ('index_pattern = "{org_code}/{year}"', "has no {seq}"),
        ('index_pattern = "{org}/{seq}"', "it may use {org_code}, {year} and {seq}"),
        ('topics = ["规章制度", "规章制度"]', "listed twice"),
        ("topics = []", "at least one topic"),
    ):
        path = tmp_path / "settings.toml"
        path.write_text(f"[catalogue]\n{table}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=re.escape(why)):
            load_settings(path)
