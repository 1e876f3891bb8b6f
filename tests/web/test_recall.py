"""撤回 (recall): a submitted item goes back to its author's draft, to be changed and submitted again;
the final take-down is a different action with a different name (撤销发布)."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import col, select

from publisher.models import AuditLog, Item
from tests.clirun import Cli, setup_store
from tests.test_cli import write_item
from tests.web.conftest import make_item


def _status(app, item_id: int) -> str:  # type: ignore[no-untyped-def]
    with app.session() as s:
        return str(s.get(Item, item_id).status)


def test_recall_returns_a_submitted_item_to_draft_and_clears_the_review(app, client, login):
    item_id = make_item(app, stage="submitted")
    # not another department's (answered as a missing item), not a reviewer, not a viewer
    for who, code in (("ed2", 404), ("sec", 403), ("viewer", 403)):
        client.cookies.clear()
        csrf = login(client, who)
        assert client.post(f"/items/{item_id}/recall", data={"csrf_token": csrf}).status_code == code, who
    assert _status(app, item_id) == "submitted"
    client.cookies.clear()
    csrf = login(client, "ed")
    r = client.post(f"/items/{item_id}/recall", data={"csrf_token": csrf, "reason": "附件放错了"})
    assert r.status_code == 303
    assert _status(app, item_id) == "draft"
    with app.session() as s:
        last = s.exec(
            select(AuditLog)
            .where(AuditLog.entity_id == item_id, AuditLog.entity == "item")
            .order_by(col(AuditLog.id).desc())
        ).first()
        assert (last.actor, last.action, last.from_state, last.to_state, last.reason) == (
            "ed",
            "recall",
            "submitted",
            "draft",
            "附件放错了",
        )
    client.cookies.clear()
    login(client, "head")
    assert f'/items/{item_id}"' not in client.get("/review").text  # no longer waiting for the head
    # a draft cannot be recalled (nothing to recall) and says so
    client.cookies.clear()
    csrf = login(client, "ed")
    r = client.post(f"/items/{item_id}/recall", data={"csrf_token": csrf})
    assert r.status_code == 403 and "只有待审核的稿件可以撤回" in r.text


def test_recall_after_the_first_approval_needs_both_reviews_again(app, client, login):
    item_id = make_item(app, stage="dept_approved")
    csrf = login(client, "ed")
    assert client.post(f"/items/{item_id}/recall", data={"csrf_token": csrf}).status_code == 303
    client.cookies.clear()
    csrf = login(client, "sec")
    r = client.post(f"/items/{item_id}/review", data={"csrf_token": csrf, "decision": "approve"})
    assert r.status_code == 403
    assert _status(app, item_id) == "draft"
    client.cookies.clear()
    csrf = login(client, "ed")
    assert client.post(f"/items/{item_id}/submit", data={"csrf_token": csrf}).status_code == 303
    assert _status(app, item_id) == "submitted"  # the head reviews it again


def test_the_item_page_offers_recall_and_names_the_take_down_apart(app, client, login):
    login(client, "ed")
    submitted = client.get(f"/items/{make_item(app, stage='submitted')}").text
    assert "撤回审核" in submitted and "撤销发布" not in submitted
    draft = client.get(f"/items/{make_item(app, stage='draft')}").text
    assert "撤回" not in draft and "撤销发布" not in draft
    scheduled = client.get(f"/items/{make_item(app, stage='scheduled', publish_at=None)}").text
    assert "撤销发布" in scheduled and "撤回审核" not in scheduled
    en = client.get(f"/items/{make_item(app, stage='submitted')}?lang=en").text
    assert "Recall" in en


def test_recall_from_the_command_line(tmp_path: Path, store_url: str) -> None:
    cli = Cli(tmp_path, store_url)
    setup_store(cli)
    item_id = cli.ok("item", "add", str(write_item(tmp_path)), "--as", "ed").last_line
    r = cli("recall", item_id, "--as", "ed")
    assert r.code != 0 and len(r.err.strip().splitlines()) == 1 and "only a submitted item" in r.err, r.err
    cli.ok("submit", item_id, "--as", "ed")
    r = cli.ok("recall", item_id, "--as", "ed", "--reason", "改标题")
    assert f"item {item_id} recalled" in r.out
    assert cli.ok("item", "show", item_id, "--json").out.count('"action": "recall"') == 1
