"""Requests for disclosure (依申请公开) and complaints: deadlines in Chinese working days, outcomes."""

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime, timedelta

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

    app = make_app()
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
    with app.session() as s:  # one through the public form: the list shows its receipt number
        filed, _ = registers.file_public_request(s, app.settings, applicant="赵六", contact="z@ex.cn", subject="x")
        receipt = filed.receipt_no
    r = run(cli, [*base, "request", "list"])
    assert "OVERDUE" in r.output and "past their deadline" in r.output
    assert receipt in r.output.replace("\n", "").replace("│", "").replace(" ", ""), r.output
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


# ------------------------------------------------------------------------------------ the public form
def test_a_public_request_gets_a_receipt_and_the_same_one_when_sent_again(app):
    with app.session() as s:
        r, new = registers.file_public_request(
            s, app.settings, applicant=" 赵六 ", contact="zhao@example.com", subject="招生计划\n分专业"
        )
        assert new and r.applicant == "赵六" and r.via == "web" and r.recorded_by == registers.PUBLIC_FORM
        receipt = r.receipt_no
        day = r.received_at.astimezone(app.settings.zone).strftime("%Y%m%d")
        assert re.fullmatch(rf"YSQ{day}-[2-9A-HJKMNP-Z]{{6}}", receipt), receipt
    with app.session() as s:
        again, new = registers.file_public_request(
            s, app.settings, applicant="赵六", contact="zhao@example.com", subject="招生计划\n分专业"
        )
        assert not new and again.receipt_no == receipt
        other, new = registers.file_public_request(
            s, app.settings, applicant="赵六", contact="zhao@example.com", subject="另一项"
        )
        assert new and other.receipt_no != receipt
    with app.session() as s:
        assert len(registers.list_requests(s)) == 2
        assert [a.actor for a in s.exec(select(AuditLog).where(AuditLog.entity == "disclosure_request"))] == [
            "public-form",
            "public-form",
        ]


def test_receipt_numbers_are_unique_in_the_store(app):
    from sqlalchemy.exc import IntegrityError

    with app.session() as s:
        r, _ = registers.file_public_request(s, app.settings, applicant="a", contact="b", subject="c")
        receipt = r.receipt_no
    with pytest.raises(IntegrityError), app.session() as s:
        twin, _ = registers.file_public_request(s, app.settings, applicant="a", contact="b", subject="d")
        twin.receipt_no = receipt
        s.flush()


def test_submissions_are_counted_per_address_and_the_window_starts_again(make_app):
    app = make_app(registers={"apply_per_address": 2, "apply_window_minutes": 10})
    t0 = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)

    def hit(address, at):
        with app.session() as s:
            return registers.count_public_submission(s, app.settings, address=address, now=at)

    assert hit("10.0.0.1", t0) is None and hit("10.0.0.1", t0 + timedelta(minutes=1)) is None
    refused = hit("10.0.0.1", t0 + timedelta(minutes=9))
    assert isinstance(refused, registers.TooManySubmissions) and "more than 2 submissions" in str(refused)
    assert hit("10.0.0.2", t0 + timedelta(minutes=9)) is None  # another address has its own count
    assert hit("10.0.0.1", t0 + timedelta(minutes=10)) is None  # a new window


def test_simultaneous_submissions_are_each_counted_once(app):
    """Eight submissions at the same moment from one address, each in its own transaction: the counts
    they see are 1 to 8, none lost (the upsert locks the row on PostgreSQL; SQLite has one writer)."""
    from concurrent.futures import ThreadPoolExecutor

    from publisher.pipeline.store.rate import count_in_window

    now = datetime.now(UTC)
    start = threading.Barrier(8)

    def one(_):
        start.wait()
        with app.engine.begin() as conn:
            return count_in_window(conn, "apply:10.9.9.9", now, timedelta(minutes=60))

    with ThreadPoolExecutor(8) as pool:
        seen = sorted(pool.map(one, range(8)))
    assert seen == list(range(1, 9))
