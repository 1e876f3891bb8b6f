"""The catalogue on the website, end to end on both engines: the service functions, the real
Dispatcher and the website channel writing a real site folder — the catalogue table with the 索引号,
related items linked both ways, a repealed rule marked on its page and in listings, and the
现行有效规章制度库 holding only the rules in force."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from channels.website import category_slug
from publisher.models import ItemStatus
from publisher.pipeline import content, workflow
from publisher.pipeline.worker import Dispatcher

ORG = "12230000MB0000000X"


def new_item(app: Any, title: str, **fields: Any) -> int:
    with app.session() as s:
        draft = content.ItemDraft(
            title=title,
            body_markdown="全文如下。",
            fields={"category": "规章制度", "channels": ["website"], **fields},
        )
        return workflow.create_item(app.ctx, s, author=workflow.get_user(s, "ed"), draft=draft).id  # type: ignore[return-value]


def approve(app: Any, item: int) -> None:
    with app.session() as s:
        if workflow.get_item(s, item).status == ItemStatus.DRAFT:
            workflow.submit(app.ctx, s, item_id=item, actor=workflow.get_user(s, "ed"))
        workflow.review(app.ctx, s, item_id=item, actor=workflow.get_user(s, "head"), approve=True)
        workflow.review(app.ctx, s, item_id=item, actor=workflow.get_user(s, "sec"), approve=True)
        if workflow.get_item(s, item).status == ItemStatus.APPROVED:
            workflow.schedule(app.ctx, s, item_id=item, at=datetime.now(UTC))


def publish(app: Any, item: int) -> None:
    approve(app, item)
    assert dict(Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True).outcomes) == {"done": 1}


def test_catalogue_table_related_links_repealed_rules_and_the_rules_library(make_app: Any, tmp_path: Path) -> None:
    app = make_app(
        channels={"website": {"type": "website", "folder": "site", "title": "信息公开网"}},
        catalogue={"org_code": ORG},
    )
    site = tmp_path / "site"
    rule = new_item(
        app,
        "学生管理规定",
        doc_number="齐高师专发[2022]12号",
        written_on="2022-03-01",
        topic="学生管理",
        validity="现行有效",
    )
    publish(app, rule)
    with app.session() as s:
        number = workflow.get_item(s, rule).index_no
    assert number and number.startswith(f"{ORG}/")
    page = (site / f"items/{rule}.html").read_text("utf-8")
    for cell in (
        f'<th scope="row">索引号</th><td data-search-meta="index_no">{number}</td>',
        '<td data-search-meta="doc_number">齐高师专发〔2022〕12号</td>',
        "<td>2022-03-01</td>",
        "<td>学生管理</td>",
        "<td>主动公开</td>",
        "<td>现行有效</td>",
    ):
        assert cell in page
    assert f'href="items/{rule}.html"' in (site / "rules.html").read_text("utf-8")

    reading = new_item(app, "《学生管理规定》政策解读", interprets=rule)
    publish(app, reading)
    reading_page = (site / f"items/{reading}.html").read_text("utf-8")
    assert f'解读的文件：<a href="../items/{rule}.html">学生管理规定</a>' in reading_page
    # the rule's page links its 解读 at once, not at the rule's own next update
    assert f'政策解读：<a href="../items/{reading}.html">《学生管理规定》政策解读</a>' in (
        site / f"items/{rule}.html"
    ).read_text("utf-8")

    revised = new_item(app, "学生管理规定（2024年修订）", revises=rule, validity="现行有效")
    publish(app, revised)
    with app.session() as s:  # the old rule repealed: an edit, so both reviews again, then the update
        workflow.edit_item(
            app.ctx,
            s,
            item_id=rule,
            actor=workflow.get_user(s, "ed"),
            changes={"validity": "已废止", "replaced_by": revised},
        )
    publish(app, rule)
    with app.session() as s:
        assert workflow.get_item(s, rule).index_no == number  # the edit kept it

    page = (site / f"items/{rule}.html").read_text("utf-8")
    assert "本文件已废止" in page
    assert f'<a href="../items/{revised}.html">替代文件</a>' in page
    # the rule's page now links back to what relates to it
    assert f'政策解读：<a href="../items/{reading}.html">' in page
    assert f'修订版本：<a href="../items/{revised}.html">' in page
    listing = (site / f"categories/{category_slug('规章制度')}.html").read_text("utf-8")
    line = next(li for li in listing.split("<li>") if f'items/{rule}.html"' in li)
    assert "（已废止）" in line
    assert not any("（已废止）" in li for li in listing.split("<li>") if f'items/{revised}.html"' in li)
    library = (site / "rules.html").read_text("utf-8")
    assert f'href="items/{revised}.html"' in library
    assert f'href="items/{rule}.html"' not in library
    assert f'href="items/{reading}.html"' not in library  # a 解读 names no validity: not a rule in force

    # the 解读 withdrawn: its link leaves the rule's page (the revision's stays)
    with app.session() as s:
        workflow.withdraw(app.ctx, s, item_id=reading, reason="解读有误")
    assert dict(Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True).outcomes) == {"done": 1}
    page = (site / f"items/{rule}.html").read_text("utf-8")
    assert f"items/{reading}.html" not in page
    assert f'修订版本：<a href="../items/{revised}.html">' in page
    assert not (site / f"items/{reading}.html").exists()
