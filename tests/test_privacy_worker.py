"""The worker's privacy re-check (issue 12): just before a channel call, the post about to be sent is
checked again, and a finding no 保密审查 decision cleared on that version fails the delivery for good —
whatever the database says about approvals. A take-down is never refused.

Both engines (the ``app`` fixture), the real Dispatcher and MemoryChannel: nothing under test replaced.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from publisher.models import Asset, Delivery, DeliveryOp, DeliveryStatus, Item, PrivacyFinding
from publisher.pipeline import content, workflow
from publisher.pipeline.worker import Dispatcher
from publisher.testing import MemoryChannel
from tests.clirun import Cli, _settings_for, setup_store
from tests.privacy.makers import body_cut_after, cut_id, make_id, make_mobile, xlsx_file

RNG = random.Random(1212)
MOBILE = make_mobile(RNG)
ID = make_id(RNG)
MOBILE_MASKED = MOBILE[:3] + "****" + MOBILE[-4:]


def _user(s: Any, name: str) -> Any:
    return workflow.get_user(s, name)


def item_with_findings(app: Any, body: str, *, clear: bool = True) -> int:
    """An item whose findings the 保密审查 reviewer cleared, approved twice and scheduled now."""
    with app.session() as s:
        draft = content.ItemDraft(
            title="关于2026年国家助学金评审结果的公示",
            body_markdown=body,
            fields={"category": "公告公示", "channels": ["mem"]},
        )
        item_id = workflow.create_item(app.ctx, s, author=_user(s, "ed"), draft=draft).id
        workflow.submit(app.ctx, s, item_id=item_id, actor=_user(s, "ed"))
        workflow.review(app.ctx, s, item_id=item_id, actor=_user(s, "head"), approve=True)
        if not clear:  # left for the caller: the 保密审查 approval would be refused
            return item_id
        for f in workflow.unresolved(s, workflow.get_item(s, item_id)):
            workflow.clear_finding(
                app.ctx, s, item_id=item_id, number=f.number, actor=_user(s, "sec"), reason="本人同意公开"
            )
        workflow.review(app.ctx, s, item_id=item_id, actor=_user(s, "sec"), approve=True)
        workflow.schedule(app.ctx, s, item_id=item_id, at=datetime.now(UTC))
    return item_id


def run_once(app: Any) -> dict[str, int]:
    return dict(Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True).outcomes)


def delivery(app: Any, item_id: int) -> Delivery:
    with app.session() as s:
        return s.exec(select(Delivery).where(Delivery.item_id == item_id)).one()


def sent(item_id: int) -> list[int]:
    return [i for _, i, _ in MemoryChannel.ledger["mem"] if i == item_id]


def test_findings_all_cleared_go_out(app: Any) -> None:
    item_id = item_with_findings(app, f"联系人：张老师\n\n手机 {MOBILE}\n\n内部资料\n")
    with app.session() as s:
        rows = workflow.findings_of(s, workflow.get_item(s, item_id))
        assert {r.kind for r in rows} == {"mobile", "classification_mark"}
        assert all(r.decision == "cleared" for r in rows)
    assert run_once(app) == {"done": 1}
    assert sent(item_id) == [item_id]


def _refused(app: Any, item_id: int, kinds: tuple[str, ...], *raw: str) -> str:
    """Run the worker: the delivery failed for good, nothing reached the channel, and the reason names
    the findings' kinds without any raw number."""
    assert run_once(app) == {"permanent": 1}
    d = delivery(app, item_id)
    assert d.status == DeliveryStatus.FAILED
    why = d.last_error or ""
    assert why.startswith("refused: the post holds ") and f"publisher privacy list {item_id}" in why
    assert f"({', '.join(kinds)})" in why, why
    for value in raw:
        assert value not in why
    assert sent(item_id) == [] and not [c for c in MemoryChannel.calls if c[3] == item_id]
    return why


def test_cleared_rows_deleted_after_approval_are_refused(app: Any) -> None:
    item_id = item_with_findings(app, f"手机 {MOBILE}\n")
    with app.engine.begin() as conn:
        conn.execute(sa.delete(PrivacyFinding.__table__).where(PrivacyFinding.__table__.c.item_id == item_id))
    why = _refused(app, item_id, ("mobile",), MOBILE)
    assert "1 privacy finding nobody cleared" in why and MOBILE_MASKED in why


def test_body_changed_by_sql_after_approval_is_refused(app: Any) -> None:
    """The approvals and the cleared mobile stand; an ID number written straight into the row does not
    pass, nor a mobile the HTML alone holds, and the mobile that moved line no longer matches its decision."""
    item_id = item_with_findings(app, f"手机 {MOBILE}\n")
    it = Item.__table__
    body = f"名单如下。\n\n手机 {MOBILE}\n\n张三 {ID}\n"
    with app.engine.begin() as conn:
        conn.execute(sa.update(it).where(it.c.id == item_id).values(body_markdown=body))
    why = _refused(app, item_id, ("mobile", "id_card"), MOBILE, ID)
    assert "2 privacy findings" in why and f"{ID[:4]}{'*' * 10}{ID[-4:]}" in why


def test_html_body_changed_by_sql_is_refused(app: Any) -> None:
    item_id = item_with_findings(app, "正文，无个人信息。\n")
    it = Item.__table__
    with app.engine.begin() as conn:
        conn.execute(sa.update(it).where(it.c.id == item_id).values(body_html=f"<p>正文 {ID}</p>"))
    _refused(app, item_id, ("id_card",), ID)


def test_a_word_added_to_the_list_after_approval_is_refused(make_app: Any, tmp_path: Any) -> None:
    words = tmp_path / "words.txt"
    words.write_text("", encoding="utf-8")
    app = make_app(channels={"mem": {"type": "memory"}}, privacy={"words_file": str(words)})
    item_id = item_with_findings(app, "某前领导职务出席。\n")
    words.write_text("某前领导职务\t已不在任，不得出现\n", encoding="utf-8")
    _refused(app, item_id, ("sensitive_word",))


def test_an_id_cut_by_the_summary_goes_out_once_cleared(app: Any) -> None:
    """The summary made from the body ends in the middle of the cleared ID, leaving digits that pass on
    their own as a card or a legacy ID: judged as part of the body's text they are that ID, cleared."""
    number, length = cut_id()
    item_id = item_with_findings(app, body_cut_after(number[:length], after=number[length:] + "，家庭经济困难。"))
    with app.session() as s:
        item = workflow.get_item(s, item_id)
        assert item.summary.endswith(number[:length] + "…")
        assert [(r.kind, r.where) for r in workflow.findings_of(s, item)] == [("id_card", "body:3")]
    assert run_once(app) == {"done": 1}
    assert sent(item_id) == [item_id]


def test_a_number_only_the_summary_shows_is_refused(app: Any) -> None:
    """A mobile split over table cells is no number in the Markdown, so the gate has nothing to decide;
    the summary made from the body joins it, shows it, and the worker refuses the post."""
    cells = f"| 姓名 | 电话 | | |\n|---|---|---|---|\n| 张三 | {MOBILE[:3]} | {MOBILE[3:7]} | {MOBILE[7:]} |\n"
    item_id = item_with_findings(app, "名单如下。\n\n" + cells + "\n说明" + "：以上人员经学院评审" * 20 + "。\n")
    with app.session() as s:
        item = workflow.get_item(s, item_id)
        assert item.summary.endswith("…") and workflow.findings_of(s, item) == []
    why = _refused(app, item_id, ("mobile",), MOBILE)
    assert f"mobile {MOBILE_MASKED} at summary" in why


def test_withdraw_is_never_refused(app: Any) -> None:
    item_id = item_with_findings(app, f"手机 {MOBILE}\n")
    assert run_once(app) == {"done": 1}
    with app.engine.begin() as conn:  # the decision is gone: a new post would be refused ...
        conn.execute(sa.delete(PrivacyFinding.__table__).where(PrivacyFinding.__table__.c.item_id == item_id))
    with app.session() as s:
        workflow.withdraw(app.ctx, s, item_id=item_id, actor="sec", reason="公示期已结束")
    assert run_once(app) == {"done": 1}  # ... the take-down goes out all the same
    assert item_id in MemoryChannel.withdrawn["mem"]
    with app.session() as s:
        (d,) = s.exec(select(Delivery).where(Delivery.item_id == item_id)).all()
        assert d.op == DeliveryOp.WITHDRAW and d.status == DeliveryStatus.DONE and d.withdrawn_at is not None


def test_a_masked_version_goes_out(app: Any) -> None:
    item_id = item_with_findings(app, f"手机 {MOBILE}\n\n张三 {ID}\n", clear=False)
    with app.session() as s:
        workflow.mask_item(app.ctx, s, item_id=item_id, actor=_user(s, "ed"))
        item = workflow.get_item(s, item_id)
        assert item.version == 2 and workflow.findings_of(s, item) == []
        workflow.review(app.ctx, s, item_id=item_id, actor=_user(s, "head"), approve=True)
        workflow.review(app.ctx, s, item_id=item_id, actor=_user(s, "sec"), approve=True)
        workflow.schedule(app.ctx, s, item_id=item_id, at=datetime.now(UTC))
    assert run_once(app) == {"done": 1}
    assert sent(item_id) == [item_id]


# ------------------------------------------------------------------ attachments, through `publisher`
@pytest.fixture
def cli(tmp_path: Path, store_url: str) -> Cli:
    c = Cli(tmp_path, store_url)
    setup_store(c)
    return c


def _attached_item(cli: Cli, folder: Path) -> str:
    """An item whose attachment hides an ID number in a hidden sheet; both findings cleared, approved,
    scheduled now (through the real command)."""
    xlsx_file(
        folder / "名单.xlsx",
        {"公示": [["姓名", "等级"], ["张三", "一等"]], "Sheet2": [["身份证"], [ID]]},
        states={"Sheet2": "hidden"},
    )
    (folder / "item.md").write_text(
        "---\ntitle: 国家助学金评审结果公示\ncategory: 公告公示\nchannels: [mem]\n"
        "attachments: [名单.xlsx]\n---\n名单见附件。\n",
        encoding="utf-8",
    )
    item = cli.ok("item", "add", str(folder / "item.md"), "--as", "ed").last_line
    cli.ok("submit", item, "--as", "ed")
    cli.ok("review", "approve", item, "--as", "head")
    for no in ("1", "2"):
        cli.ok("privacy", "clear", item, no, "--reason", "资助中心核对，附件另行处理", "--as", "sec")
    cli.ok("review", "approve", item, "--as", "sec")
    cli.ok("schedule", item, "--at", "now", "--as", "ed")
    return item


def _delivery_of(cli: Cli, item: str) -> dict[str, Any]:
    (d,) = json.loads(cli.ok("item", "show", item, "--json").out)["deliveries"]
    return d


def test_an_attachment_with_cleared_findings_goes_out(cli: Cli, tmp_path: Path) -> None:
    item = _attached_item(cli, tmp_path)
    assert "done 1" in cli.ok("run", "--once").out
    assert _delivery_of(cli, item)["status"] == "done"


def test_an_attachment_changed_on_disk_after_approval_is_refused(cli: Cli, tmp_path: Path) -> None:
    """The media store's file is what goes out: a mobile written into it after approval is refused."""
    item = _attached_item(cli, tmp_path)
    settings = _settings_for(cli)
    from publisher.app import open_app

    a = open_app(settings)
    try:
        with a.session() as s:
            (asset,) = s.exec(select(Asset).where(Asset.item_id == int(item))).all()
            stored = content.media_path(settings.media_dir, asset.sha256)
    finally:
        a.close()
    xlsx_file(
        stored,
        {"公示": [["姓名", "手机"], ["张三", MOBILE]], "Sheet2": [["身份证"], [ID]]},
        states={"Sheet2": "hidden"},
    )
    r = cli.ok("run", "--once")
    assert "permanent 1" in r.out, r.out
    d = _delivery_of(cli, item)
    assert d["status"] == "failed" and d["last_error_kind"] == "permanent"
    assert d["last_error"].startswith("refused: the post holds 1 privacy finding nobody cleared (mobile)")
    assert f"{MOBILE_MASKED} at 名单.xlsx:公示!B2" in d["last_error"]
    assert MOBILE not in d["last_error"] + r.out + r.err and ID not in d["last_error"] + r.out + r.err
