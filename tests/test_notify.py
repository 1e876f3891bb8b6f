"""Notifications (docs/notify.md): each workflow event reaches each transport's sandbox once per person.

The transports talk to their sandboxes over real sockets: the SMTP sandbox (aiosmtpd), the 企业微信
and 钉钉 robot sandboxes (HTTP, with their documented errors and rate limits). The kill -9 test is in
tests/test_notify_crash.py.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from channels.notify.dingtalk import sign
from channels.sandbox.dingtalk import DingtalkSandbox
from channels.sandbox.smtp import SmtpSandbox
from channels.sandbox.wecom import WecomSandbox
from publisher.models import ItemStatus, User
from publisher.notification import Notification, NotificationStatus
from publisher.notifier import available_notifiers
from publisher.pipeline import content, workflow
from publisher.pipeline.notify import NotificationSender, digest_slot, open_sender, quiet_until
from publisher.pipeline.worker import Dispatcher
from publisher.pipeline.workflow import outbox
from publisher.testing import MemoryChannel
from tests.declared import declared, entry_points_folder

N = Notification.__table__  # type: ignore[attr-defined]
WECOM_KEY, DD_TOKEN, DD_SECRET = "test-wecom-key", "test-dd-token", "SECtest-dd-secret"


@pytest.fixture(autouse=True)
def declared_notifiers(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> str:
    """The transports of this tree's pyproject.toml, whatever the installed metadata says (tests/declared.py)."""
    folder = str(entry_points_folder(tmp_path_factory.mktemp("declared")))
    monkeypatch.syspath_prepend(folder)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (folder, os.environ.get("PYTHONPATH")) if p))
    return folder


def test_the_transports_are_declared_and_installed() -> None:
    assert declared() == {
        "email": "channels.notify.email:EmailNotifier",
        "wecom": "channels.notify.wecom:WecomNotifier",
        "dingtalk": "channels.notify.dingtalk:DingtalkNotifier",
        "wecom_app": "channels.notify.wecom_app:WecomAppNotifier",
    }
    assert {n: f"{c.__module__}:{c.__name__}" for n, c in available_notifiers().items()} == declared()


@pytest.fixture
def sandboxes(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("T_WECOM_KEY", WECOM_KEY)
    monkeypatch.setenv("T_DD_TOKEN", DD_TOKEN)
    monkeypatch.setenv("T_DD_SECRET", DD_SECRET)
    wecom, dd, smtp = WecomSandbox(keys=(WECOM_KEY,)), DingtalkSandbox(token=DD_TOKEN, secret=DD_SECRET), None
    smtp = SmtpSandbox(security="none")
    wecom.start(), dd.start(), smtp.start()
    yield wecom, dd, smtp
    for s in (wecom, dd, smtp):
        s.stop()


def transports(wx: Any, dd: Any, smtp: Any, **over: Any) -> dict[str, Any]:
    """The three transports' tables pointing at the sandboxes; ``over``: keys to change per transport."""
    t = {
        "email": {"host": smtp.host, "port": smtp.port, "security": "none", "sender": "xxgk@example.edu.cn"},
        "wecom": {"url": f"{wx.base_url}/cgi-bin/webhook/send", "key_env": "T_WECOM_KEY"},
        "dingtalk": {"url": f"{dd.base_url}/robot/send", "token_env": "T_DD_TOKEN", "secret_env": "T_DD_SECRET"},
    }
    for name, table in over.items():
        t[name] = {**t[name], **table}
    return t


def _prefs(a: Any, **who: tuple[str, str]) -> None:
    with a.session() as s:
        for user, (transport, address) in who.items():
            outbox.set_pref(s, user=user, transport=transport, address=address, known=a.settings.notify.transports)


def _item(a: Any, title: str, channels: list[str], author: str = "ed") -> int:
    with a.session() as s:
        draft = content.ItemDraft(
            title=title, body_markdown="正文", fields={"category": "公告公示", "channels": channels}
        )
        return workflow.create_item(a.ctx, s, author=workflow.get_user(s, author), draft=draft).id


def _act(a: Any, item_id: int, *steps: str, reason: str = "请补充附件") -> None:
    """Each step its own transaction, as a person's actions are: submit, approve:USER, reject:USER, now."""
    for step in steps:
        with a.session() as s:
            verb, _, who = step.partition(":")
            if verb == "submit":  # by its author
                author = s.get(User, workflow.get_item(s, item_id).author_id)
                workflow.submit(a.ctx, s, item_id=item_id, actor=author)
            elif verb in ("approve", "reject"):
                actor = workflow.get_user(s, who)
                workflow.review(a.ctx, s, item_id=item_id, actor=actor, approve=verb == "approve", reason=reason)
            elif verb == "now":
                workflow.schedule(a.ctx, s, item_id=item_id, at=datetime.now(UTC))


def _rows(a: Any) -> list[Any]:
    with a.engine.connect() as conn:
        return conn.execute(sa.select(N).order_by(N.c.id)).all()


def test_each_event_reaches_each_transport_once_per_person(make_app, sandboxes, monkeypatch) -> None:
    wecom, dd, smtp = sandboxes
    a = make_app(
        channels={
            "mem": {"type": "memory"},
            "bad": {"type": "memory"},
            "city": {"type": "manual", "place": "city_portal"},
        },
        # no pacing here (20 a minute evenly spread is one every 3 s): test_the_robot_rate_limit_is_respected
        notify={
            "transports": transports(
                wecom, dd, smtp, wecom={"rate_per_minute": None}, dingtalk={"rate_per_minute": None}
            ),
            "web_base_url": "https://xxgk.example.edu.cn/",
        },
    )
    _prefs(
        a,
        head=("wecom", "wang.head"),
        sec=("dingtalk", "zhang.sec"),
        sec2=("email", "sec2@example.edu.cn"),
        ed=("email", "ed@example.edu.cn"),
    )
    MemoryChannel.script("bad", "p")  # fails for good
    published = _item(a, "关于2026年寒假放假安排的通知", ["mem"])
    failing = _item(a, "校园网络维护公告", ["bad"])
    by_hand = _item(a, "招聘公告", ["city"])
    rejected = _item(a, "征求意见稿", ["mem"])
    for i in (published, failing, by_hand):
        _act(a, i, "submit", "approve:head", "approve:sec2", "now")
    _act(a, rejected, "submit", "reject:head")
    Dispatcher(engine=a.engine, ctx=a.ctx).run(once=True, horizon=timedelta(seconds=0))
    # the manual channel reminds again: the same by-hand event, not queued twice
    Dispatcher(engine=a.engine, ctx=a.ctx).run(once=True, horizon=timedelta(seconds=3))
    with a.session() as s:
        assert workflow.get_item(s, published).status == ItemStatus.PUBLISHED
        assert workflow.get_item(s, failing).status == ItemStatus.FAILED

    events = Counter((r.event, r.item_id, r.address) for r in _rows(a))
    submitted = {("submitted", i, "wang.head") for i in (published, failing, by_hand, rejected)}
    level1 = {(ev, i, who) for i in (published, failing, by_hand) for ev, who in [("approved_level1", "zhang.sec")]}
    level1 |= {("approved_level1", i, "sec2@example.edu.cn") for i in (published, failing, by_hand)}
    expected = submitted | level1
    # sec2 approved those three themselves: the approver of a move is not told of it, but sec2 is a
    # reviewer told of the first approval, which came before its own
    expected |= {
        ("rejected", rejected, "ed@example.edu.cn"),
        ("published", published, "ed@example.edu.cn"),
        ("delivery_failed", failing, "ed@example.edu.cn"),
        ("by_hand", by_hand, "ed@example.edu.cn"),
    }
    assert set(events) == expected
    assert all(n == 1 for n in events.values()), events

    # the code paths that queue run again: nothing more is queued
    with a.engine.begin() as conn:
        assert outbox.on_rollups(conn, [published]) == 0

    sender = open_sender(a.engine, a.settings, "test-sender:0:x")
    assert sender is not None
    counts = sender.run(once=True)
    assert counts == {"sent": len(expected)}, counts
    assert sender.run(once=True) == {}
    sender.close()

    assert all(r.status == NotificationStatus.SENT for r in _rows(a))
    wx = Counter(tuple(m["mentioned"]) for m in wecom.messages)
    assert wx == {("wang.head",): 4}
    assert all(
        "待审核" in m["content"] and "https://xxgk.example.edu.cn/items/" in m["content"] for m in wecom.messages
    )
    assert Counter(tuple(m["mentioned"]) for m in dd.messages) == {("zhang.sec",): 3}
    mails = Counter((m["rcpt_tos"][0], m["message"]["Subject"].split("：")[0]) for m in smtp.messages)
    assert mails == {
        ("sec2@example.edu.cn", "待保密审查"): 3,
        ("ed@example.edu.cn", "已退回"): 1,
        ("ed@example.edu.cn", "已发布"): 1,
        ("ed@example.edu.cn", "发布失败"): 1,
        ("ed@example.edu.cn", "待手工发布"): 1,
    }
    by_subject = {m["message"]["Subject"].split("：")[0]: m["message"].get_content() for m in smtp.messages}
    assert "请补充附件" in by_subject["已退回"]  # the reason
    assert "mem：" in by_subject["已发布"]  # the links, per channel
    assert f"https://xxgk.example.edu.cn/items/{published}" in by_subject["已发布"]
    assert "scripted permanent failure" in by_subject["发布失败"]


def test_a_transport_down_is_retried_with_backoff_and_the_pipeline_goes_on(make_app, sandboxes) -> None:
    wecom, dd, smtp = sandboxes
    smtp.stop()  # the mail server is down
    a = make_app(
        notify={
            "transports": transports(wecom, dd, smtp),
            "backoff_base_seconds": 30,
            "backoff_cap_seconds": 60,
            "poll_seconds": 0.05,
        }
    )
    _prefs(a, head=("email", "head@example.edu.cn"), ed=("email", "ed@example.edu.cn"))
    items = [_item(a, f"通知 {n}", ["mem", "mem2"]) for n in range(3)]
    for i in items:
        _act(a, i, "submit", "approve:head", "approve:sec", "now")
    sender = open_sender(a.engine, a.settings, "test-sender:0:y")
    assert sender is not None
    sender.start()  # its own thread, as in `publisher run`
    try:
        summary = Dispatcher(engine=a.engine, ctx=a.ctx).run(once=True)
        assert summary.outcomes["done"] == 6  # every delivery went out while the mail server was down
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        while datetime.now(UTC) < deadline:
            rows = _rows(a)
            if rows and all(r.attempts >= 1 and r.status == NotificationStatus.PENDING for r in rows):
                break
            sender.stop.wait(0.05)
    finally:
        sender.close()
    rows = _rows(a)
    assert len(rows) == 6  # 3 × submitted → head, 3 × published → ed
    now = datetime.now(UTC)
    for r in rows:
        assert r.status == NotificationStatus.PENDING and r.attempts == 1
        assert "cannot reach the SMTP server" in r.last_error
        assert now + timedelta(seconds=5) < r.due_at <= now + timedelta(seconds=31)  # backed off, with jitter
    with a.session() as s:
        assert all(workflow.get_item(s, i).status == ItemStatus.PUBLISHED for i in items)

    # the server is back (same port); once the back-off is over, each goes out once
    smtp.start()
    later = NotificationSender(
        engine=a.engine,
        settings=a.settings,
        notifiers=sender.notifiers,
        owner="test-sender:0:z",
        clock=lambda: datetime.now(UTC) + timedelta(minutes=2),
    )
    assert later.run(once=True) == {"sent": 6}
    assert len(smtp.messages) == 6


def test_gives_up_after_max_attempts_with_the_error_kept(make_app, sandboxes) -> None:
    wecom, dd, smtp = sandboxes
    a = make_app(notify={"transports": transports(wecom, dd, smtp), "max_attempts": 2})
    _prefs(a, head=("wecom", "wang.head"))
    _act(a, _item(a, "通知", ["mem"]), "submit")
    wecom.fail_next("transient", 2)
    clock = [datetime.now(UTC)]
    s = open_sender(a.engine, a.settings, "test-sender:0:g")
    assert s is not None
    s.clock = lambda: clock[0]
    assert s.run(once=True) == {"retry": 1}
    clock[0] += timedelta(hours=2)
    assert s.run(once=True) == {"failed": 1}
    (row,) = _rows(a)
    assert row.status == NotificationStatus.FAILED and row.attempts == 2
    assert "HTTP 502" in row.last_error and "gave up after 2 attempts" in row.last_error
    assert wecom.messages == []


def test_the_robot_rate_limit_is_respected(make_app, sandboxes) -> None:
    wecom, dd, smtp = sandboxes
    wecom.per_minute = 3  # the documented 20 a minute, made small
    # no pacing of our own: the sandbox's 45009 answer is what holds the sender back
    a = make_app(notify={"transports": transports(wecom, dd, smtp, wecom={"rate_per_minute": None})})
    _prefs(a, head=("wecom", "wang.head"))
    for n in range(5):
        _act(a, _item(a, f"通知 {n}", ["mem"]), "submit")
    s = open_sender(a.engine, a.settings, "test-sender:0:r")
    assert s is not None
    assert s.run(once=True) == {"sent": 3, "rate-limited": 1}
    assert len(wecom.messages) == 3
    assert [e["errcode"] for e in wecom.ledger if e["action"] == "refused"] == [45009]  # asked once, then waited
    held = [r for r in _rows(a) if r.status == NotificationStatus.PENDING]
    assert len(held) == 2 and all(r.attempts == 0 for r in held)  # a rate limit uses no attempt
    assert all(r.due_at > datetime.now(UTC) + timedelta(seconds=50) for r in held if r.last_error)


def test_the_transports_own_pace_never_asks_the_robot_too_fast(make_app, sandboxes) -> None:
    wecom, dd, smtp = sandboxes
    # the robot's 20 a minute, scaled down so the test runs in real time: one per 0.45 s at most;
    # the transport paces itself at 120 a minute (one per 0.5 s, across every sender of the store)
    wecom.per_minute, wecom.window = 1, 0.45
    a = make_app(
        notify={"transports": transports(wecom, dd, smtp, wecom={"rate_per_minute": 120}), "poll_seconds": 0.05}
    )
    _prefs(a, head=("wecom", "wang.head"))
    for n in range(5):
        _act(a, _item(a, f"通知 {n}", ["mem"]), "submit")
    s = open_sender(a.engine, a.settings, "test-sender:0:p")
    assert s is not None
    started = time.monotonic()
    assert s.run(once=True) == {"sent": 5}  # --once waits for a slot a few seconds away
    assert time.monotonic() - started >= 4 * 0.5 - 0.1  # one now, then one every half second
    s.close()
    assert len(wecom.messages) == 5
    assert not [e for e in wecom.ledger if e["action"] == "refused"]  # never asked too fast


def test_dingtalk_refuses_a_wrong_sign_and_an_old_timestamp(make_app, sandboxes, monkeypatch) -> None:
    wecom, dd, smtp = sandboxes
    monkeypatch.setenv("T_DD_SECRET", "SECnot-the-robots-secret")
    a = make_app(notify={"transports": transports(wecom, dd, smtp)})
    _prefs(a, sec=("dingtalk", "zhang.sec"))
    _act(a, _item(a, "通知", ["mem"]), "submit", "approve:head")
    s = open_sender(a.engine, a.settings, "test-sender:0:d")
    assert s is not None
    assert s.run(once=True) == {"failed": 1}  # a refused sign is permanent: not retried
    (row,) = _rows(a)
    assert "310000" in row.last_error and "sign not match" in row.last_error
    assert "SECnot-the-robots-secret" not in row.last_error and DD_TOKEN not in row.last_error
    assert dd.messages == []

    # the right sign an hour and a bit old: refused as well
    old = int((datetime.now(UTC) - timedelta(minutes=61)).timestamp() * 1000)
    url = f"{dd.base_url}/robot/send?access_token={DD_TOKEN}&timestamp={old}&sign={sign(old, DD_SECRET)}"
    answer = requests.post(url, json={"msgtype": "text", "text": {"content": "x"}}, timeout=10).json()
    assert answer == {"errcode": 310000, "errmsg": "invalid timestamp"}
    now = int(datetime.now(UTC).timestamp() * 1000)
    url = f"{dd.base_url}/robot/send?access_token={DD_TOKEN}&timestamp={now}&sign={sign(now, DD_SECRET)}"
    answer = requests.post(url, json={"msgtype": "text", "text": {"content": "x"}}, timeout=10).json()
    assert answer == {"errcode": 0, "errmsg": "ok"}


def test_quiet_hours_hold_a_message_until_they_end(make_app, sandboxes) -> None:
    wecom, dd, smtp = sandboxes
    a = make_app(notify={"transports": transports(wecom, dd, smtp)})
    with a.session() as s:
        outbox.set_pref(s, user="head", transport="wecom", address="wang.head", quiet="22:00-07:30", known={"wecom": 1})
    _act(a, _item(a, "通知", ["mem"]), "submit")
    zone = a.settings.zone
    # the next 23:10 in the office's zone: after the message was queued (a fixed date would be in the
    # past one day, and a message is never due before it is queued)
    now = datetime.now(zone)
    night = now.replace(hour=23, minute=10, second=0, microsecond=0)
    night += timedelta(days=1) if night <= now else timedelta(0)
    morning = (night + timedelta(days=1)).replace(hour=7, minute=30)
    s = open_sender(a.engine, a.settings, "test-sender:0:q")
    assert s is not None
    s.clock = lambda: night
    assert s.run(once=True) == {"held": 1}
    (row,) = _rows(a)
    assert row.due_at == morning and row.attempts == 0
    assert wecom.messages == []
    s.clock = lambda: morning + timedelta(minutes=1)
    assert s.run(once=True) == {"sent": 1}
    assert len(wecom.messages) == 1


def test_quiet_until_and_digest_slot() -> None:
    from zoneinfo import ZoneInfo

    z = ZoneInfo("Asia/Shanghai")
    assert quiet_until(datetime(2026, 1, 1, 6, 0, tzinfo=z), "22:00", "07:30", z) == datetime(
        2026, 1, 1, 7, 30, tzinfo=z
    )
    assert quiet_until(datetime(2026, 1, 1, 12, 0, tzinfo=z), "22:00", "07:30", z) is None
    assert quiet_until(datetime(2026, 1, 1, 12, 30, tzinfo=z), "12:00", "13:00", z) == datetime(
        2026, 1, 1, 13, 0, tzinfo=z
    )
    last, nxt = digest_slot(datetime(2026, 1, 1, 7, 0, tzinfo=z), 8, z)
    assert (last, nxt) == (datetime(2025, 12, 31, 8, tzinfo=z), datetime(2026, 1, 1, 8, tzinfo=z))


def test_a_daily_digest_groups_the_days_events_in_one_message(make_app, sandboxes) -> None:
    wecom, dd, smtp = sandboxes
    a = make_app(notify={"transports": transports(wecom, dd, smtp), "digest_hour": 8})
    with a.session() as s:
        outbox.set_pref(
            s, user="head", transport="email", address="head@example.edu.cn", mode="digest", known={"email": 1}
        )
    for n in range(3):
        _act(a, _item(a, f"通知 {n}", ["mem"]), "submit")
    zone = a.settings.zone
    created = _rows(a)[0].created_at.astimezone(zone)
    s = open_sender(a.engine, a.settings, "test-sender:0:dg")
    assert s is not None
    s.clock = lambda: created + timedelta(minutes=1)
    assert s.run(once=True) == {"held": 3}
    _, nxt = digest_slot(created, 8, zone)
    assert {r.due_at for r in _rows(a)} == {nxt}
    assert smtp.messages == []
    s.clock = lambda: nxt + timedelta(minutes=5)
    assert s.run(once=True) == {"sent": 1}  # one message for the three
    assert all(r.status == NotificationStatus.SENT for r in _rows(a))
    (mail,) = smtp.messages
    assert "3 项" in mail["message"]["Subject"]
    text = mail["message"].get_content()
    assert all(f"通知 {n}" in text for n in range(3))


def test_choices_are_checked(app) -> None:
    from publisher.errors import InvalidInput, NotFound

    with app.session() as s:
        with pytest.raises(InvalidInput, match="not configured"):
            outbox.set_pref(s, user="head", transport="wecom", address="x", known=())
        with pytest.raises(InvalidInput, match="needs --address"):
            outbox.set_pref(s, user="head", transport="wecom", known={"wecom"})
        with pytest.raises(InvalidInput, match="HH:MM"):
            outbox.set_pref(s, user="head", transport="wecom", address="x", quiet="22-7", known={"wecom"})
        with pytest.raises(NotFound):
            outbox.set_pref(s, user="nobody", transport="none")
        outbox.set_pref(s, user="head", transport="none")


def test_the_cli_sets_a_choice_lists_the_outbox_and_refuses_bad_input(
    tmp_path, store_url, sandboxes, declared_notifiers
) -> None:
    from tests.clirun import SETTINGS, Cli, setup_store

    wecom, dd, smtp = sandboxes
    settings = SETTINGS.format(data_dir=tmp_path) + (
        f'[notify.transports.wecom]\nurl = "{wecom.base_url}/cgi-bin/webhook/send"\nkey_env = "T_WECOM_KEY"\n'
    )
    cli = Cli(tmp_path, store_url, settings_text=settings)
    cli.env["T_WECOM_KEY"] = WECOM_KEY
    cli.env["PYTHONPATH"] += os.pathsep + declared_notifiers
    setup_store(cli)

    r = cli.ok("notify", "set", "head", "--transport", "wecom", "--address", "wang.head", "--quiet", "22:00-7:30")
    assert r.last_line == "head: wecom wang.head, immediate, quiet 22:00-07:30"
    for args, says in [
        (("--transport", "dingtalk", "--address", "x"), "transport 'dingtalk' is not configured; one of: wecom, none"),
        (("--transport", "wecom"), "transport 'wecom' needs --address"),
        (("--transport", "wecom", "--address", "x", "--quiet", "late"), "write START-END in local time"),
    ]:
        r = cli("notify", "set", "head", *args)
        assert r.code != 0 and says in r.err and len(r.err.strip().splitlines()) == 1, r
    r = cli("notify", "set", "nobody", "--transport", "none")
    assert r.code != 0 and "no user 'nobody'" in r.err

    cli.ok("item", "add", str(_md(tmp_path)), "--as", "ed")
    cli.ok("submit", "1", "--as", "ed")
    r = cli.ok("notify", "list")
    assert "待审核：《通知》" in r.out and "wang.head" in r.out and "pending" in r.out
    r = cli.ok("notify", "run", "--once")
    assert r.last_line in ("sent 1", "held 1")  # held: the test ran inside the quiet hours
    r = cli("notify", "run", "--once", env={"T_WECOM_KEY": ""})
    assert r.code != 0 and "T_WECOM_KEY is not set" in r.err


def _md(folder):
    p = folder / "item.md"
    p.write_text("---\ntitle: 通知\ncategory: 公告公示\nchannels: [mem]\n---\n正文\n", encoding="utf-8")
    return p


def test_doctor_checks_the_transports_without_sending(make_app, sandboxes, tmp_path, monkeypatch) -> None:
    from publisher.doctor import run_checks

    wecom, dd, smtp = sandboxes
    a = make_app()
    f = tmp_path / "settings.toml"
    f.write_text(
        f'database_url = "{a.settings.database_url}"\n'
        f'[notify.transports.wecom]\nurl = "{wecom.base_url}/cgi-bin/webhook/send"\nkey_env = "T_WECOM_KEY"\n',
        encoding="utf-8",
    )
    check = {c.name: c for c in run_checks(f)}["notify"]
    assert check.ok and "wecom" in check.detail
    monkeypatch.delenv("T_WECOM_KEY")
    check = {c.name: c for c in run_checks(f)}["notify"]
    assert not check.ok and "T_WECOM_KEY is not set" in check.detail
    assert wecom.ledger == []  # nothing was sent


def test_the_demo_tells_its_people_through_the_robot_sandboxes(tmp_path, monkeypatch) -> None:
    from tests.declared import declared_sandboxes, run_demo

    # the transports' sandboxes as this tree declares them
    text = run_demo(tmp_path, monkeypatch, declared_sandboxes("wecom", "dingtalk", "wecom_app"))
    assert "channels: website\n" in text or "channels: website " in text, text  # the robots are no channels
    # 王主任 (submitted, 企业微信 robot), 张审查 (first approval, 钉钉), 李编辑 (published, 企业微信 app message)
    assert "notifications: sent: 3" in text, text
    assert "a 钉钉 custom robot at http://127.0.0.1:" in text


def test_two_senders_share_the_outbox_and_send_each_message_once(make_app, sandboxes) -> None:
    wecom, dd, smtp = sandboxes
    no_pace = {"rate_per_minute": None}
    a = make_app(notify={"transports": transports(wecom, dd, smtp, wecom=no_pace), "poll_seconds": 0.02})
    _prefs(a, head=("wecom", "wang.head"), head2=("email", "head2@example.edu.cn"))
    for n in range(15):
        _act(a, _item(a, f"通知 {n}", ["mem"]), "submit")
        _act(a, _item(a, f"人事通知 {n}", ["mem"], author="ed2"), "submit")
    senders = [open_sender(a.engine, a.settings, f"test-sender:0:two{n}") for n in range(2)]
    counts = []
    import threading

    def run(s: Any) -> None:
        counts.append(s.run(once=True))

    threads = [threading.Thread(target=run, args=(s,)) for s in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sum(c.get("sent", 0) for c in counts) == 30, counts
    assert all(c.get("sent", 0) > 0 for c in counts), counts  # both took part
    assert sorted(m["content"].split("\n")[0] for m in wecom.messages) == sorted(
        f"【待审核：《通知 {n}》】" for n in range(15)
    )
    assert sorted(m["message"]["Subject"] for m in smtp.messages) == sorted(
        f"待审核：《人事通知 {n}》" for n in range(15)
    )
