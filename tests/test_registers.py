"""Requests for disclosure (依申请公开) and complaints: deadlines in Chinese working days, outcomes."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import select

from publisher.counting import registers
from publisher.errors import InvalidInput, NotAllowed, NotFound
from publisher.models import AuditLog


def test_request_deadline_extension_and_outcome(app):
    with app.session() as s:
        # received Wednesday 28 September 2022: 29-30 Sep, the worked weekend 8-9 Oct, then 10-24 Oct
        r = registers.add_request(
            s,
            app.settings,
            applicant="张三",
            subject="2022年招生计划",
            via="email",
            received="2022-09-28 16:00",
            actor="admin",
        )
        assert r.due_on == date(2022, 10, 24)
        with pytest.raises(InvalidInput, match="1 to 15 working days"):
            registers.extend_request(s, app.settings, request_id=r.id, reason="需要会商", days=16, actor="admin")
        with pytest.raises(InvalidInput, match="say why"):
            registers.extend_request(s, app.settings, request_id=r.id, reason=" ", actor="admin")
        registers.extend_request(s, app.settings, request_id=r.id, reason="需要征求第三方意见", actor="admin")
        assert r.due_on == date(2022, 11, 14) and r.extended
        with pytest.raises(NotAllowed, match="only one extension"):
            registers.extend_request(s, app.settings, request_id=r.id, reason="again", days=1, actor="admin")
        with pytest.raises(InvalidInput, match="needs the legal reason"):
            registers.close_request(s, app.settings, request_id=r.id, outcome="not_disclosed", actor="admin")
        with pytest.raises(InvalidInput, match="outcome 'maybe'"):
            registers.close_request(s, app.settings, request_id=r.id, outcome="maybe", actor="admin")
        registers.close_request(
            s,
            app.settings,
            request_id=r.id,
            outcome="partly",
            legal_reason="privacy",
            answered="2022-11-10",
            actor="admin",
        )
        assert (r.outcome, r.legal_reason) == ("partly", "privacy")
        with pytest.raises(NotAllowed, match="already closed"):
            registers.close_request(s, app.settings, request_id=r.id, outcome="disclosed", actor="admin")
        actions = [a.action for a in s.exec(select(AuditLog).where(AuditLog.entity == "disclosure_request"))]
        assert actions == ["create", "extend", "close"]


def test_overdue_and_bad_input(app):
    with app.session() as s:
        r = registers.add_request(
            s, app.settings, applicant="李四", subject="工资", via="letter", received="2022-03-01", actor="admin"
        )
        assert registers.overdue_requests(s, app.settings, today=date(2022, 3, 10)) == []
        assert [x.id for x in registers.overdue_requests(s, app.settings, today=date(2022, 3, 30))] == [r.id]
        state = registers.deadline_state(r.due_on, app.settings, today=date(2022, 3, 30))
        assert state.overdue and state.working_days_left < 0
        with pytest.raises(InvalidInput, match="received through 'pigeon'"):
            registers.add_request(s, app.settings, applicant="x", subject="y", via="pigeon", actor="admin")
        with pytest.raises(InvalidInput, match="in the future"):
            registers.add_request(
                s, app.settings, applicant="x", subject="y", via="web", received="2099-01-01", actor="admin"
            )
        with pytest.raises(InvalidInput, match="'2022/3/1' is not a date"):
            registers.add_request(
                s, app.settings, applicant="x", subject="y", via="web", received="2022/3/1", actor="admin"
            )
        with pytest.raises(NotFound):
            registers.extend_request(s, app.settings, request_id=999, reason="x", actor="admin")


def test_complaints(app):
    with app.session() as s:
        c = registers.add_complaint(
            s,
            app.settings,
            complainant="王五",
            subject="招聘公告未按时公开",
            via="phone",
            received="2022-06-01",
            actor="admin",
        )
        assert c.due_on == date(2022, 6, 23)  # 3 June (Dragon Boat Festival) is off
        with pytest.raises(InvalidInput, match="say how it was settled"):
            registers.close_complaint(
                s, app.settings, complaint_id=c.id, outcome="upheld", resolution="", actor="admin"
            )
        registers.close_complaint(
            s,
            app.settings,
            complaint_id=c.id,
            outcome="upheld",
            resolution="已补充公开",
            closed="2022-06-10",
            actor="admin",
        )
        assert registers.list_complaints(s, open_only=True) == []
        assert [x.outcome for x in registers.list_complaints(s)] == ["upheld"]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_cli(make_app, store_url, tmp_path):
    from typer.testing import CliRunner

    from publisher.cli import app as cli

    make_app()
    settings = tmp_path / "settings.toml"
    settings.write_text(f'database_url = "{store_url}"\ndata_dir = "{tmp_path}"\n', encoding="utf-8")
    base = ["--settings", str(settings)]
    run = CliRunner().invoke
    r = run(
        cli,
        [
            *base,
            "request",
            "add",
            "--applicant",
            "张三",
            "--subject",
            "招生计划",
            "--via",
            "web",
            "--received",
            "2022-03-01",
        ],
    )
    assert r.exit_code == 0 and "request 1 recorded; answer due by 2022-03-22" in r.output, r.output
    r = run(cli, [*base, "request", "list"])
    assert "OVERDUE" in r.output and "past their deadline" in r.output
    r = run(cli, [*base, "request", "extend", "1", "--reason", "会商", "--days", "5"])
    assert r.exit_code == 0 and "2022-03-29" in r.output, r.output
    r = run(cli, [*base, "request", "close", "1", "--outcome", "not_held", "--answered", "2022-03-25"])
    assert r.exit_code == 0 and "closed: not_held" in r.output, r.output
    r = run(cli, [*base, "complaint", "add", "--complainant", "王五", "--subject", "未公开", "--via", "letter"])
    assert r.exit_code == 0, r.output
    r = run(cli, [*base, "complaint", "close", "1", "--outcome", "rejected", "--resolution", "已公开，经核查不属实"])
    assert r.exit_code == 0 and "closed: rejected" in r.output, r.output
    r = run(cli, [*base, "complaint", "list"])
    assert "rejected" in r.output
