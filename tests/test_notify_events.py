"""The notification events of issue 13 beyond the review moves (docs/notify.md): a by-hand post overdue,
a channel's credentials or quota failing (in the worker and in ``publisher channels``), a register
entry due soon or late. Each reaches a transport's sandbox once per event and person; running its
code path again queues nothing. SQLite and PostgreSQL (the ``store_url`` fixture).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from channels.sandbox.dingtalk import DingtalkSandbox
from channels.sandbox.smtp import SmtpSandbox
from channels.sandbox.wecom import WecomSandbox
from publisher.counting import registers
from publisher.counting.workdays import Calendar
from publisher.notification import NotificationStatus
from publisher.pipeline.notify import open_sender
from publisher.pipeline.worker import Dispatcher
from publisher.pipeline.workflow import outbox
from publisher.scheduler import periodic_jobs, run_once_per_period
from publisher.testing import MemoryChannel
from tests.test_notify import (
    DD_SECRET,
    DD_TOKEN,
    WECOM_KEY,
    _act,
    _item,
    _prefs,
    _rows,
    declared_notifiers,  # noqa: F401  (a fixture: this tree's declared transports)
    transports,
)

NO_PACE = {"rate_per_minute": None}


@pytest.fixture
def robots(monkeypatch: pytest.MonkeyPatch):
    """The 企业微信 and 钉钉 robot sandboxes and the SMTP sandbox (as tests/test_notify.py's)."""
    monkeypatch.setenv("T_WECOM_KEY", WECOM_KEY)
    monkeypatch.setenv("T_DD_TOKEN", DD_TOKEN)
    monkeypatch.setenv("T_DD_SECRET", DD_SECRET)
    found = (
        WecomSandbox(keys=(WECOM_KEY,)),
        DingtalkSandbox(token=DD_TOKEN, secret=DD_SECRET),
        SmtpSandbox(security="none"),
    )
    for s in found:
        s.start()
    yield found
    for s in found:
        s.stop()


def _send_all(a: Any) -> dict[str, int]:
    sender = open_sender(a.engine, a.settings, "test-sender:0:ev")
    assert sender is not None
    try:
        return sender.run(once=True)
    finally:
        sender.close()


def test_a_by_hand_post_overdue_tells_the_departments_editors_once(make_app, robots) -> None:
    wecom, dd, smtp = robots
    # the manual channel's own deadline (overdue_after_hours), made seconds: 1.4 s, asked again every 2.2 s
    city = {"type": "manual", "place": "city_portal", "overdue_after_hours": 0.0004, "remind_after_hours": 0.0006}
    a = make_app(
        channels={"city": city},
        notify={"transports": transports(wecom, dd, smtp), "web_base_url": "https://xxgk.example.edu.cn/"},
    )
    _prefs(a, ed=("email", "ed@example.edu.cn"), ed2=("email", "ed2@example.edu.cn"))
    item = _item(a, "招聘公告", ["city"])
    _act(a, item, "submit", "approve:head", "approve:sec", "now")
    Dispatcher(engine=a.engine, ctx=a.ctx).run(once=True, horizon=timedelta(seconds=0))
    assert Counter(r.event for r in _rows(a)) == {"by_hand": 1}  # waiting, not yet overdue
    # two reminders after the deadline: each says overdue, one event
    for _ in range(2):
        time.sleep(2.3)
        Dispatcher(engine=a.engine, ctx=a.ctx).run(once=True, horizon=timedelta(seconds=0))
    with a.engine.connect() as conn:
        note = conn.execute(sa.text("SELECT note FROM delivery")).scalar_one()
    assert note.startswith("OVERDUE")
    rows = _rows(a)
    assert Counter((r.event, r.address) for r in rows) == {
        ("by_hand", "ed@example.edu.cn"): 1,
        ("by_hand_overdue", "ed@example.edu.cn"): 1,
    }  # ed2 is of another department
    assert _send_all(a) == {"sent": 2}
    mails = {m["message"]["Subject"]: m["message"].get_content() for m in smtp.messages}
    text = mails["手工发布已逾期：《招聘公告》→ 齐齐哈尔市人民政府网站"]
    with a.engine.connect() as conn:
        since = conn.execute(sa.text("SELECT state FROM delivery")).scalar_one()
    since = json.loads(since) if isinstance(since, str) else since
    local = datetime.fromisoformat(since["waiting_since"]).astimezone(a.settings.zone)
    assert f"自 {local:%Y-%m-%d %H:%M} 起等待手工发布" in text and "publisher manual record" in text
    assert f"https://xxgk.example.edu.cn/items/{item}" in text


def test_credentials_and_quota_failures_tell_the_admins_once_per_channel_and_day(make_app, robots) -> None:
    wecom, dd, smtp = robots
    a = make_app(notify={"transports": transports(wecom, dd, smtp, wecom=NO_PACE)})
    _prefs(a, admin=("wecom", "zhao.admin"), ed=("email", "ed@example.edu.cn"), sec=("dingtalk", "zhang.sec"))
    MemoryChannel.script("mem", "c", "c", "c")  # the token expired: every call refused
    MemoryChannel.script("mem2", "q", "q", "q")  # the day's quota used up
    items = [_item(a, f"通知 {n}", ["mem", "mem2"]) for n in range(3)]
    for i in items:
        _act(a, i, "submit", "approve:head", "approve:sec", "now")
    Dispatcher(engine=a.engine, ctx=a.ctx).run(once=True, horizon=timedelta(seconds=0))
    rows = [r for r in _rows(a) if r.event == "channel_problem"]
    # three refused deliveries per channel, one message per channel and problem
    assert sorted((r.address, r.subject) for r in rows) == [
        ("zhao.admin", "渠道凭据失效：In-memory (tests)（mem）"),
        ("zhao.admin", "渠道配额用尽：In-memory (tests)（mem2）"),
    ]
    assert all(r.item_id is None and r.link == "admin/channels" for r in rows)
    # each refused delivery still tells the item's editors it failed (a different event, a different person)
    assert Counter(r.event for r in _rows(a) if r.address == "ed@example.edu.cn") == {"delivery_failed": 3}

    # the same problem again the same day (a worker restarted, a retried delivery): nothing more
    with a.engine.begin() as conn:
        problem = outbox.ChannelProblem("mem", "mem", outbox.CREDENTIALS, "again")
        assert outbox.on_channel_problems(conn, [problem], a.settings.zone) == 0
        # still there tomorrow: told again
        tomorrow = datetime.now(UTC) + timedelta(days=1)
        assert outbox.on_channel_problems(conn, [problem], a.settings.zone, tomorrow) == 1

    # all but tomorrow's (due tomorrow): 2 to the admin, 3 failures to ed, 3 first approvals to sec
    assert _send_all(a) == {"sent": len(_rows(a)) - 1} == {"sent": 8}
    to_admin = [m for m in wecom.messages if m["mentioned"] == ["zhao.admin"]]
    assert len(to_admin) == 2
    first = next(m["content"] for m in to_admin if "凭据失效" in m["content"])
    assert "scripted credentials refused" in first and first.rstrip().endswith("/admin/channels")


def test_publisher_channels_tells_the_admins_of_a_failing_check_once(tmp_path, store_url, robots) -> None:
    from tests.clirun import SETTINGS, Cli, setup_store

    wecom, dd, smtp = robots
    settings = SETTINGS.format(data_dir=tmp_path) + (
        # its signing secret's variable is unset: the check fails on the credentials
        '[channels.hook]\ntype = "webhook"\nurl = "http://127.0.0.1:1/receive"\n'
        f'[notify.transports.wecom]\nurl = "{wecom.base_url}/cgi-bin/webhook/send"\nkey_env = "T_WECOM_KEY"\n'
    )
    cli = Cli(tmp_path, store_url, settings_text=settings)
    setup_store(cli)
    cli.env["T_WECOM_KEY"] = os.environ["T_WECOM_KEY"]
    cli.ok("notify", "set", "admin", "--transport", "wecom", "--address", "zhao.admin")
    r = cli("channels")
    assert r.code == 1 and "FAILED" in r.out, r
    assert "the admins will be told of 1 failing channel(s) (1 message(s) queued)" in r.err
    r = cli("channels")  # again the same day: still failing, nothing more queued
    assert r.code == 1 and "FAILED" in r.out and "queued" not in r.err, r
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT event, address, subject FROM notification")).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("channel_problem", "zhao.admin", "渠道凭据失效：Webhook（签名 JSON 推送）（hook）")
    ]


def _request(a: Any, received: date, subject: str = "2025年学费收支明细") -> int:
    with a.session() as s:
        r = registers.add_request(
            s, a.settings, applicant="张三", subject=subject, via="web", received=received, actor="admin"
        )
        return r.id


def _working_days_before(day: date, n: int) -> date:
    cal, d = Calendar(), day
    while cal.between(d, day) < n:
        d -= timedelta(days=1)
    return d


def test_register_deadlines_tell_the_keepers_once_per_due_date_and_state(make_app, robots) -> None:
    wecom, dd, smtp = robots
    a = make_app(
        notify={"transports": transports(wecom, dd, smtp)},
        registers={"keepers": ["sec2"], "remind_working_days": 2},
    )
    _prefs(a, sec2=("email", "sec2@example.edu.cn"), admin=("email", "admin@example.edu.cn"))
    near = _request(a, date(2026, 11, 2))
    far = _request(a, date(2026, 11, 20), "招生录取名单")
    with a.session() as s:
        complaint = registers.add_complaint(
            s,
            a.settings,
            complainant="李四",
            subject="网站未公开收费标准",
            via="email",
            received=date(2026, 11, 2),
            actor="admin",
        ).id
        due = registers.get_request(s, near).due_on
        far_due = registers.get_request(s, far).due_on

    def remind(today: date) -> int:
        with a.session() as s:
            return registers.remind_deadlines(s, a.settings, today)

    three_before = _working_days_before(due, 3)
    assert three_before < _working_days_before(far_due, 3)
    assert remind(three_before) == 0  # 3 working days left: not yet
    two_before = _working_days_before(due, 2)
    assert remind(two_before) == 2  # the request and the complaint (same day received, same deadline)
    assert remind(two_before) == 0 and remind(due) == 0  # the same due date and state: told once
    assert remind(due + timedelta(days=1)) == 2  # late now: told again, once
    assert remind(due + timedelta(days=5)) == 0

    # an extension moves the deadline: the new one is told when it nears
    with a.session() as s:
        registers.extend_request(s, a.settings, request_id=near, reason="需要会商相关部门", days=3, actor="admin")
        new_due = registers.get_request(s, near).due_on
    assert remind(_working_days_before(new_due, 1)) == 1
    with a.session() as s:
        registers.close_complaint(
            s,
            a.settings,
            complaint_id=complaint,
            outcome="upheld",
            resolution="已补充公开",
            closed=new_due,
            actor="admin",
        )
    rows = _rows(a)
    assert {r.address for r in rows} == {"sec2@example.edu.cn"}  # the keeper, not the admin
    assert Counter(r.event for r in rows) == {"register_due": 3, "register_late": 2}
    assert all(r.item_id is None for r in rows)

    assert _send_all(a) == {"sent": 5}
    subjects = sorted(m["message"]["Subject"] for m in smtp.messages)
    assert subjects.count(f"信息公开申请即将到期：第 {near} 号") == 2
    assert f"信息公开申请已逾期：第 {near} 号" in subjects and f"举报投诉已逾期：第 {complaint} 号" in subjects
    late = next(
        m["message"].get_content() for m in smtp.messages if m["message"]["Subject"].startswith("信息公开申请已逾期")
    )
    assert "张三" in late and f"{due:%Y-%m-%d}" in late and f"registers/requests#r{near}" in late


def test_register_deadlines_run_once_per_hour_across_workers_and_default_to_the_admins(make_app, robots) -> None:
    wecom, dd, smtp = robots
    a = make_app(notify={"transports": transports(wecom, dd, smtp)})
    _prefs(a, admin=("email", "admin@example.edu.cn"), sec=("email", "sec@example.edu.cn"))
    # received long ago: late today, whatever today is
    with a.session() as s:
        registers.add_request(
            s, a.settings, applicant="王五", subject="校车线路", via="letter", received=date(2026, 1, 5), actor="admin"
        )
    (job,) = [j for j in periodic_jobs(a) if j.name == "register-deadlines"]
    fire = job.trigger.get_next_fire_time(None, datetime.now(a.settings.zone))
    assert fire.minute == 7
    # two workers fire the same hour: one runs it
    assert [run_once_per_period(a, job, owner, fire) for owner in ("w1", "w2")] == [True, False]
    rows = _rows(a)
    assert [(r.event, r.address, r.status) for r in rows] == [
        ("register_late", "admin@example.edu.cn", NotificationStatus.PENDING)
    ]
    # the next hour runs it again and queues nothing new
    assert run_once_per_period(a, job, "w1", fire + timedelta(hours=1)) is True
    assert len(_rows(a)) == 1


def test_doctor_names_a_register_keeper_who_is_no_user(make_app, tmp_path) -> None:
    from publisher.doctor import run_checks

    a = make_app()
    f = tmp_path / "settings.toml"
    body = f'database_url = "{a.settings.database_url}"\n[registers]\nkeepers = '
    f.write_text(body + '["sec2", "liu.xxgk"]\n', encoding="utf-8")
    check = {c.name: c for c in run_checks(f)}["register keepers"]
    assert not check.ok and "names no active user: liu.xxgk" in check.detail
    f.write_text(body + '["sec2"]\n', encoding="utf-8")
    check = {c.name: c for c in run_checks(f)}["register keepers"]
    assert check.ok and check.warning and "sec2 told of deadlines but not admins" in check.detail
    f.write_text(body + '["admin"]\n', encoding="utf-8")
    check = {c.name: c for c in run_checks(f)}["register keepers"]
    assert check.ok and not check.warning
