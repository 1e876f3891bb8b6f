"""The annual report, CSV import and audit export pages over HTTP, on both engines: the same service
functions as `publisher report`, `publisher import` and `publisher audit export`."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from publisher.counting import ledger, registers, report
from publisher.models import AuditLog, Delivery, Item
from tests.web.conftest import make_item

# the office's day (the settings' default zone), not the machine's: from 16:00 UTC they differ
TODAY = datetime.now(ZoneInfo("Asia/Shanghai")).date()
YESTERDAY = (TODAY - timedelta(days=1)).isoformat()
HEADER = "title,category,department,channel,published_at,url,checklist_item"
GOOD = (
    f"{HEADER}\r\n"
    f"关于2026年寒假放假的通知,公告公示,校长办公室,mem,{YESTERDAY} 09:00,https://www.example.edu.cn/a/1.html,\r\n"
    f"关于2026年寒假放假的通知,公告公示,校长办公室,mem2,{YESTERDAY} 10:00,,\r\n"
    f"人事处招聘公告,公告公示,人事处,mem,{YESTERDAY},https://www.example.edu.cn/a/2.html,\r\n"
)
# row 3 has a date Excel likes and we do not
BAD = GOOD.replace(f"mem2,{YESTERDAY} 10:00", "mem2,2026/01/05")


def _period() -> dict[str, str]:
    return {"period": "custom", "from": (TODAY - timedelta(days=30)).isoformat(), "to": TODAY.isoformat()}


def _upload(client: Any, csrf: str, text: str, name: str = "ledger.csv", **form: str) -> Any:
    r = client.post(
        "/import",
        data={"csrf_token": csrf, **form},
        files={"file": (name, text.encode("utf-8-sig"), "text/csv")},
    )
    assert r.status_code == 303, r.text[:500]
    return r.headers["location"]


def _count(app: Any, model: Any) -> int:
    with app.session() as s:
        return len(s.exec(select(model.id)).all())


# ------------------------------------------------------------------------------------------ import
def test_import_preview_lists_errors_by_excel_row_and_writes_nothing(app: Any, client: Any, login: Any) -> None:
    csrf = login(client, "admin")
    before = (_count(app, Item), _count(app, Delivery), _count(app, AuditLog))
    where = _upload(client, csrf, BAD)
    r = client.get(where)
    assert r.status_code == 422
    assert "row 3: published_at &#39;2026/01/05&#39; is not YYYY-MM-DD" in r.text
    assert 'id="import-confirm"' not in r.text  # nothing to confirm
    assert (_count(app, Item), _count(app, Delivery), _count(app, AuditLog)) == before


def test_preview_then_confirm_imports_exactly_what_was_previewed(app: Any, client: Any, login: Any) -> None:
    # one of the rows is recorded already: the preview says it is skipped
    with app.session() as s:
        ledger.import_csv(app.ctx, s, data=(HEADER + "\n" + GOOD.splitlines()[3]).encode(), source="old.csv", actor="t")
    csrf = login(client, "admin")
    where = _upload(client, csrf, GOOD)
    sha = where.split("/import/")[1].split("?")[0]
    assert (app.settings.path("imports") / f"{sha}.csv").read_bytes() == GOOD.encode("utf-8-sig")
    r = client.get(where)
    assert r.status_code == 200, r.text[:500]
    assert "would add 1 items and 2 publications; 1 rows already recorded" in client.get(where + "&lang=en").text
    assert 'name="rows" value="2,3"' in r.text
    items_before = _count(app, Item)
    r = client.post(f"/import/{sha}", data={"csrf_token": csrf, "name": "ledger.csv", "rows": "2,3"})
    assert r.status_code == 200 and 'id="import-done"' in r.text, r.text[:500]
    assert _count(app, Item) == items_before + 1
    with app.session() as s:
        item = s.exec(select(Item).where(Item.title == "关于2026年寒假放假的通知")).one()
        chans = sorted(d.channel for d in s.exec(select(Delivery).where(Delivery.item_id == item.id)))
        assert chans == ["mem", "mem2"]
        row = s.exec(select(AuditLog).where(AuditLog.action == "import_csv")).one()
        assert row.actor == "admin" and row.detail["sha256"] == sha and row.detail["rows"] == [2, 3]
    # confirmed again: the ledger now holds those rows, so the file adds other rows (none) than previewed
    again = client.post(f"/import/{sha}", data={"csrf_token": csrf, "name": "ledger.csv", "rows": "2,3"})
    assert again.status_code == 422 and "the ledger changed since the preview" in again.text
    assert _count(app, Item) == items_before + 1


def test_a_confirm_that_no_longer_matches_the_preview_writes_nothing(app: Any, client: Any, login: Any) -> None:
    csrf = login(client, "admin")
    sha = _upload(client, csrf, GOOD).split("/import/")[1].split("?")[0]
    assert 'value="2,3,4"' in client.get(f"/import/{sha}").text
    # meanwhile someone records row 4's publication: the same file would now add rows 2 and 3 only
    with app.session() as s:
        ledger.import_csv(app.ctx, s, data=(HEADER + "\n" + GOOD.splitlines()[3]).encode(), source="cli", actor="t")
    before = (_count(app, Item), _count(app, Delivery), _count(app, AuditLog))
    r = client.post(f"/import/{sha}", data={"csrf_token": csrf, "name": "ledger.csv", "rows": "2,3,4"})
    assert r.status_code == 422
    assert "would now add rows 2, 3 instead of 2, 3, 4" in r.text
    assert (_count(app, Item), _count(app, Delivery), _count(app, AuditLog)) == before
    assert 'value="2,3"' in r.text  # the fresh preview, to confirm again


def test_an_unknown_or_altered_upload_is_not_found(app: Any, client: Any, login: Any) -> None:
    csrf = login(client, "admin")
    sha = _upload(client, csrf, GOOD).split("/import/")[1].split("?")[0]
    (app.settings.path("imports") / f"{sha}.csv").write_bytes(BAD.encode())
    assert client.get(f"/import/{sha}").status_code == 404
    assert client.get("/import/" + "0" * 64).status_code == 404
    r = client.post("/import/../settings", data={"csrf_token": csrf, "rows": "2"})
    assert r.status_code == 404


def test_a_new_department_only_when_asked(app: Any, client: Any, login: Any) -> None:
    csrf = login(client, "admin")
    text = GOOD.replace("人事处", "图书馆")
    r = client.get(_upload(client, csrf, text))
    assert r.status_code == 422 and "unknown department &#39;图书馆&#39;" in r.text
    where = _upload(client, csrf, text, create_departments="true")
    r = client.get(where)
    assert r.status_code == 200 and "图书馆" in r.text
    sha = where.split("/import/")[1].split("?")[0]
    r = client.post(
        f"/import/{sha}", data={"csrf_token": csrf, "name": "x.csv", "rows": "2,3,4", "create_departments": "true"}
    )
    assert r.status_code == 200, r.text[:500]
    with app.session() as s:
        assert s.exec(select(Item).where(Item.department == "图书馆")).first() is not None


# ------------------------------------------------------------------------------------------ report
@pytest.fixture
def recorded(app: Any) -> Any:
    with app.session() as s:
        ledger.import_csv(app.ctx, s, data=GOOD.encode(), source="seed.csv", actor="admin")
    return app


def test_report_page_shows_each_figure_with_its_rows(recorded: Any, client: Any, login: Any) -> None:
    login(client, "viewer")
    r = client.get("/report", params=_period())
    assert r.status_code == 200
    assert 'data-figure="channel:mem"' in r.text and "人事处招聘公告" in r.text
    assert "https://www.example.edu.cn/a/1.html" in r.text
    assert 'href="/items/' not in r.text  # a viewer opens no item page
    login(client, "ed")
    r = client.get("/report", params=_period())
    assert 'href="/items/' in r.text  # its own department's imported item


def test_downloads_are_the_cli_report(recorded: Any, client: Any, login: Any, tmp_path: Any) -> None:
    from docx import Document

    login(client, "viewer")
    r = client.get("/report/download", params={**_period(), "format": "docx"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in r.headers["content-disposition"]
    doc = Document(io.BytesIO(r.content))
    text = "\n".join(p.text for p in doc.paragraphs)
    assert "信息公开" in text and len(doc.tables) == 1
    md = client.get("/report/download", params={**_period(), "format": "md"})
    rep = report.build(
        recorded.engine,
        recorded.settings,
        start=_period()["from"],
        end=_period()["to"],
        channel_labels={n: sp.label for n, sp in recorded.channels.items()},
    )
    assert md.text == report.to_markdown(rep, report.render_text(rep))
    f = client.get("/report/figures.csv", params={**_period(), "figure": "channel:mem"})
    assert f.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(f.text.lstrip("\ufeff"))))
    assert {x["title"] for x in rows} == {"关于2026年寒假放假的通知", "人事处招聘公告"}
    assert client.get("/report/download", params={"format": "pdf"}).status_code == 422
    assert client.get("/report/figures.csv", params={"figure": "nope"}).status_code == 422


def test_register_rows_are_for_admins(recorded: Any, client: Any, login: Any) -> None:
    with recorded.session() as s:
        registers.add_request(
            s, recorded.settings, applicant="张三", subject="申请公开招生计划的明细", via="email", actor="admin"
        )
    login(client, "viewer")
    r = client.get("/report", params=_period())
    assert "申请公开招生计划的明细" not in r.text and 'data-figure="requests_received"' in r.text
    csv_text = client.get("/report/figures.csv", params=_period()).text
    assert "申请公开招生计划的明细" not in csv_text
    login(client, "admin")
    page = client.get("/report", params=_period()).text
    assert "申请公开招生计划的明细" in page and "rep_" not in page  # every heading has its words
    assert "申请公开招生计划的明细" in client.get("/report/figures.csv", params=_period()).text


# ------------------------------------------------------------------------------------------ template
def test_a_broken_template_is_refused_with_its_line_and_the_old_copy_kept(app: Any, client: Any, login: Any) -> None:
    csrf = login(client, "admin")
    path = report.office_template_path(app.settings)
    good = report.default_template().replace("一、概述", "一、概述（本校修订）")
    r = client.post("/report/template", data={"csrf_token": csrf, "text": good})
    assert r.status_code == 303 and path.read_text(encoding="utf-8") == good
    lines = good.splitlines()
    lines.insert(19, "收到申请 {{ f.requests_received + }} 件")  # line 20: an expression cut short
    r = client.post("/report/template", data={"csrf_token": csrf, "text": "\n".join(lines)})
    assert r.status_code == 422
    assert "report template, line 20: unexpected &#39;end of print statement&#39;" in r.text
    assert path.read_text(encoding="utf-8") == good
    unknown = good + "\n{{ f.no_such_figure }}\n"
    r = client.post("/report/template", data={"csrf_token": csrf, "text": unknown})
    assert r.status_code == 422 and "no_such_figure" in r.text
    sandbox = good + "\n{{ ''.__class__.__mro__[1].__subclasses__() }}\n"
    assert client.post("/report/template", data={"csrf_token": csrf, "text": sandbox}).status_code == 422
    assert path.read_text(encoding="utf-8") == good
    # the office's copy is what the downloads and the CLI use
    md = client.get("/report/download", params={**_period(), "format": "md"}).text
    assert "一、概述（本校修订）" in md
    assert report.load_template(app.settings, None) == good
    with app.session() as s:
        saves = s.exec(select(AuditLog).where(AuditLog.entity == "report_template")).all()
        assert [x.action for x in saves] == ["save"]


# ------------------------------------------------------------------------------------------ audit
def test_audit_export_over_a_period_with_filters(app: Any, client: Any, login: Any) -> None:
    mine = make_item(app, stage="scheduled")  # 校长办公室's, by ed: created, submitted, reviewed twice, queued
    theirs = make_item(app, author="ed2", title="人事处的通知")
    login(client, "admin")
    r = client.get("/audit.csv", params={"from": TODAY.isoformat(), "to": TODAY.isoformat()})
    assert r.status_code == 200 and r.content.startswith("\ufeff".encode())
    assert r.headers["content-disposition"].startswith("attachment")
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    ids = {x["item_id"] for x in rows}
    assert {str(mine), str(theirs)} <= ids
    with app.session() as s:
        total = len(s.exec(select(AuditLog.id)).all())
    assert len(rows) == total
    one = list(csv.DictReader(io.StringIO(client.get("/audit.csv", params={"item": mine}).text.lstrip("\ufeff"))))
    assert one and {x["item_id"] for x in one} == {str(mine)}
    assert {"delivery"} <= {x["entity"] for x in one}  # its deliveries' rows too
    dept = client.get("/audit.csv", params={"department": "人事处"}).text.lstrip("\ufeff")
    assert {x["item_id"] for x in csv.DictReader(io.StringIO(dept))} == {str(theirs)}
    by = list(csv.DictReader(io.StringIO(client.get("/audit.csv", params={"user": "head"}).text.lstrip("\ufeff"))))
    assert by and {x["actor"] for x in by} == {"head"}
    # a period that ended yesterday has none of today's rows
    old = client.get("/audit.csv", params={"from": "2020-01-01", "to": YESTERDAY}).text.lstrip("\ufeff")
    assert list(csv.DictReader(io.StringIO(old))) == []
    page = client.get("/audit", params={"item": mine})
    assert page.status_code == 200 and f"{len(one)} rows" in client.get(f"/audit?item={mine}&lang=en").text
    assert client.get("/audit", params={"item": "abc"}).status_code == 422
    assert client.get("/audit.csv", params={"from": "2026-02-30"}).status_code == 422


def test_cli_audit_export_and_template_use_what_the_pages_use(
    app: Any, client: Any, login: Any, store_url: str, tmp_path: Any
) -> None:
    from typer.testing import CliRunner

    from publisher.cli import app as cli

    make_item(app, stage="submitted")
    settings = tmp_path / "settings.toml"
    settings.write_text(
        f'database_url = "{store_url}"\ndata_dir = "{tmp_path}"\n[channels.mem]\ntype = "memory"\n'
        '[channels.mem2]\ntype = "memory"\n',
        encoding="utf-8",
    )
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        from publisher.cli.common import state

        try:
            return runner.invoke(cli, ["--settings", str(settings), *args])
        finally:  # each run opens its own App (its own engine): close it, PostgreSQL counts connections
            if state._app is not None:
                state._app.close()
                state._app = None

    day = TODAY.isoformat()
    out = tmp_path / "audit.csv"
    r = invoke("audit", "export", "--from", day, "--to", day, "-o", str(out))
    assert r.exit_code == 0, r.output
    login(client, "admin")
    assert out.read_bytes() == client.get("/audit.csv", params={"from": day, "to": day}).content
    r = invoke("audit", "export", "--from", day, "--to", "2020-01-01")
    assert r.exit_code != 0 and "before it starts" in str(r.exception)
    # `report template` without -o writes the office's copy, the one the page edits, once
    r = invoke("report", "template")
    assert r.exit_code == 0, r.output
    assert report.office_template_path(app.settings).read_text(encoding="utf-8") == report.default_template()
    assert "report-template.md.j2" in client.get("/report/template").text
    r = invoke("report", "template")
    assert r.exit_code != 0 and "exists already" in str(r.exception)


def test_a_gbk_file_from_excel_is_read_and_said_so(app: Any, client: Any, login: Any) -> None:
    csrf = login(client, "admin")
    r = client.post(
        "/import",
        data={"csrf_token": csrf},
        files={"file": ("台账.csv", GOOD.encode("gb18030"), "text/csv")},
    )
    page = client.get(r.headers["location"] + "&lang=en")
    assert page.status_code == 200 and "read as gb18030" in page.text
    assert "关于2026年寒假放假的通知" in page.text


def test_the_report_period_is_the_dashboards(app: Any, client: Any, login: Any) -> None:
    from publisher.counting import dashboard

    login(client, "viewer")
    _, s, e = dashboard.resolve_period("report", None, None, app.settings.zone)
    first = s.astimezone(app.settings.zone).date().isoformat()
    r = client.get("/report")
    assert r.status_code == 200 and f'value="{first}"' in r.text and first.endswith("-10-01")
    assert client.get("/report", params={"period": "custom", "from": "2026-02-01"}).status_code == 422
    assert (
        client.get("/report", params={"period": "custom", "from": "2026-03-01", "to": "2026-02-01"}).status_code == 422
    )


def test_two_confirms_at_once_import_the_file_once(app: Any) -> None:
    """Two admins confirm the same preview at the same moment: one imports, the other is refused."""
    import threading

    from publisher.counting import imports
    from publisher.errors import InvalidInput

    sha = imports.keep(app.settings, GOOD.encode())
    gate = threading.Barrier(2)
    outcomes: list[str] = []

    def confirm(who: str) -> None:
        try:
            with app.session() as s:
                gate.wait()
                imports.confirm(app.ctx, s, sha=sha, name="same.csv", actor=who, rows="2,3,4")
            outcomes.append("imported")
        except InvalidInput as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=confirm, args=(who,)) for who in ("admin", "admin2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes, key=len)[0] == "imported" and "changed since the preview" in sorted(outcomes, key=len)[1]
    with app.session() as s:
        assert len(s.exec(select(Delivery.id)).all()) == 3
        assert len(s.exec(select(AuditLog).where(AuditLog.action == "import_csv")).all()) == 1


def test_a_confirm_the_file_no_longer_passes_lists_its_errors_and_writes_nothing(
    app: Any, client: Any, login: Any
) -> None:
    csrf = login(client, "admin")
    text = GOOD.replace("人事处", "图书馆")
    sha = _upload(client, csrf, text, create_departments="true").split("/import/")[1].split("?")[0]
    before = (_count(app, Item), _count(app, Delivery), _count(app, AuditLog))
    # the confirm without the preview's "add the new departments": the file fails as it stands
    r = client.post(f"/import/{sha}", data={"csrf_token": csrf, "name": "x.csv", "rows": "2,3,4"})
    assert r.status_code == 422
    assert "row 4: unknown department &#39;图书馆&#39;" in r.text and 'id="import-confirm"' not in r.text
    assert (_count(app, Item), _count(app, Delivery), _count(app, AuditLog)) == before
    bad = client.post(f"/import/{sha}", data={"csrf_token": csrf, "name": "x.csv", "rows": "2,x"})
    assert bad.status_code == 422 and "is not a list of row numbers" in bad.text
