"""``kill -9`` of the notification sender mid-send, then a restart (docs/notify.md).

The sender (``publisher notify run``) runs as its own process against the store, the SMTP, 企业微信
and 钉钉 sandboxes run in this one. A robot sandbox stalls one request; the sender is killed while it
waits for the answer; a new sender on the same host takes the dead one's claim up at once (the owner's
process is gone) and sends what is left.

Two cases: the stalled request was never taken (a proxy that hung): every message reaches its sandbox
exactly once. The stalled request was taken and only the answer was lost: nobody can know it went
out, so that one message is sent again — at most once per kill, as docs/notify.md says; the robots
have no idempotency key.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from channels.sandbox.dingtalk import DingtalkSandbox
from channels.sandbox.smtp import SmtpSandbox
from channels.sandbox.wecom import WecomSandbox
from publisher.notification import Notification
from publisher.pipeline import content, workflow
from publisher.pipeline.workflow import outbox
from tests.clirun import PLUGINS, ROOT
from tests.test_notify import declared_notifiers  # noqa: F401  (a fixture: this tree's declared transports)

pytestmark = pytest.mark.slow

N = Notification.__table__  # type: ignore[attr-defined]
LEASE = 300  # far longer than the test: only the immediate release of a dead owner lets the restart finish
SECRETS = {"T_WECOM_KEY": "crash-wecom-key", "T_DD_TOKEN": "crash-dd-token", "T_DD_SECRET": "SECcrash"}


def _settings(tmp_path: Path, store_url: str, wx: Any, dd: Any, smtp: Any) -> Path:
    p = tmp_path / "settings.toml"
    p.write_text(
        f"""\
data_dir = "{tmp_path}"
database_url = "{store_url}"
[channels.mem]
type = "memory"
[notify]
lease_seconds = {LEASE}
poll_seconds = 0.05
[notify.transports.email]
host = "{smtp.host}"
port = {smtp.port}
security = "none"
sender = "xxgk@example.edu.cn"
[notify.transports.wecom]
url = "{wx.base_url}/cgi-bin/webhook/send"
key_env = "T_WECOM_KEY"
rate_per_minute = 6000
[notify.transports.dingtalk]
url = "{dd.base_url}/robot/send"
token_env = "T_DD_TOKEN"
secret_env = "T_DD_SECRET"
rate_per_minute = 6000
""",
        encoding="utf-8",
    )
    return p


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    # this tree first (as tests/clirun's Cli), then the plugins, then what the test run adds (its declared
    # transports: tests/declared.py)
    path = (str(ROOT), str(PLUGINS), os.environ.get("PYTHONPATH"))
    env.update(SECRETS, PYTHONPATH=os.pathsep.join(p for p in path if p))
    return env


def _queue(a: Any, per_transport: int) -> int:
    """Submitted items of two departments (heads on wecom and dingtalk), half approved once (reviewer on
    e-mail): ``per_transport`` messages for each transport. Returns the rows queued."""
    with a.session() as s:
        outbox.set_pref(s, user="head", transport="wecom", address="wang.head", known=a.settings.notify.transports)
        outbox.set_pref(s, user="head2", transport="dingtalk", address="li.head2", known=a.settings.notify.transports)
        outbox.set_pref(
            s, user="sec", transport="email", address="sec@example.edu.cn", known=a.settings.notify.transports
        )
    for n in range(per_transport):
        for author, head in (("ed", "head"), ("ed2", "head2")):
            with a.session() as s:
                draft = content.ItemDraft(
                    title=f"通知 {n}", body_markdown="正文", fields={"category": "公告公示", "channels": ["mem"]}
                )
                item = workflow.create_item(a.ctx, s, author=workflow.get_user(s, author), draft=draft)
                workflow.submit(a.ctx, s, item_id=item.id, actor=workflow.get_user(s, author))
                if author == "ed":  # the first approval: the reviewer (sec, by e-mail) is told
                    workflow.review(a.ctx, s, item_id=item.id, actor=workflow.get_user(s, head), approve=True)
    with a.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(N)).scalar_one()


@pytest.mark.parametrize("fault", ["stall", "taken_then_stall"])
def test_kill_9_mid_send_then_restart(make_app, store_url: str, tmp_path: Path, monkeypatch, fault: str) -> None:
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    wx = WecomSandbox(keys=(SECRETS["T_WECOM_KEY"],), stall_seconds=60)
    dd = DingtalkSandbox(token=SECRETS["T_DD_TOKEN"], secret=SECRETS["T_DD_SECRET"])
    smtp = SmtpSandbox(security="none")
    for sb in (wx, dd, smtp):
        sb.start()
    try:
        settings = _settings(tmp_path, store_url, wx, dd, smtp)
        from publisher.settings import load_settings

        a = make_app(channels={"mem": {"type": "memory"}}, notify=load_settings(settings).notify.model_dump())
        total = _queue(a, per_transport=4)
        assert total == 12
        wx.fail_next(fault)  # the first 企业微信 message stalls
        cmd = [sys.executable, "-m", "publisher.cli", "--settings", str(settings), "notify", "run"]
        sender = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not any(e["action"] == "stalled" for e in wx.ledger):
            assert sender.poll() is None, sender.communicate()
            assert time.monotonic() < deadline, "the sender never reached the 企业微信 robot"
            time.sleep(0.01)
        os.kill(sender.pid, signal.SIGKILL)
        sender.communicate()  # reap it: a zombie still answers kill(pid, 0)

        with a.engine.connect() as conn:
            claimed = conn.execute(sa.select(N.c.id, N.c.lease_owner).where(N.c.status == "claimed")).all()
        assert len(claimed) == 1 and claimed[0].lease_owner.split(":")[1] == str(sender.pid)

        started = time.monotonic()
        r = subprocess.run([*cmd, "--once"], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
        took = time.monotonic() - started
        assert r.returncode == 0, r.stderr
        assert took < LEASE / 5, f"the restart took {took:.0f} s: it waited for the dead sender's lease"

        with a.engine.connect() as conn:
            rows = conn.execute(sa.select(N.c.id, N.c.status, N.c.attempts).order_by(N.c.id)).all()
        assert {r.status for r in rows} == {"sent"}, rows
        # the claim the dead sender held counted its attempt; the restart's is the second
        assert {r.id: r.attempts for r in rows if r.attempts != 1} == {claimed[0].id: 2}

        wecom = Counter(m["content"].split("\n")[0] for m in wx.messages)
        ding = Counter(m["content"].split("\n")[0] for m in dd.messages)
        mail = Counter(m["message"]["Subject"] for m in smtp.messages)
        assert len(ding) == 4 and set(ding.values()) == {1}
        assert len(mail) == 4 and set(mail.values()) == {1}
        assert len(wecom) == 4
        if fault == "stall":  # never taken: exactly once each
            assert set(wecom.values()) == {1}, wecom
        else:  # taken, answer lost: that one message again, and no other
            assert sorted(wecom.values()) == [1, 1, 1, 2], wecom
    finally:
        for sb in (wx, dd, smtp):
            sb.stop()


def test_publisher_run_sends_on_a_thread_of_its_own(make_app, store_url: str, tmp_path: Path, monkeypatch) -> None:
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    wx = WecomSandbox(keys=(SECRETS["T_WECOM_KEY"],))
    dd = DingtalkSandbox(token=SECRETS["T_DD_TOKEN"], secret=SECRETS["T_DD_SECRET"])
    smtp = SmtpSandbox(security="none")
    for sb in (wx, dd, smtp):
        sb.start()
    worker = None
    try:
        settings = _settings(tmp_path, store_url, wx, dd, smtp)
        from publisher.settings import load_settings

        a = make_app(channels={"mem": {"type": "memory"}}, notify=load_settings(settings).notify.model_dump())
        cmd = [sys.executable, "-m", "publisher.cli", "--settings", str(settings), "run"]
        worker = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert _queue(a, per_transport=1) == 3  # queued while the worker runs
        deadline = time.monotonic() + 60
        while len(wx.messages) + len(dd.messages) + len(smtp.messages) < 3:
            assert worker.poll() is None, worker.communicate()
            assert time.monotonic() < deadline, "publisher run sent no notification in 60 s"
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
        assert worker.returncode == 0, err
        assert [len(wx.messages), len(dd.messages), len(smtp.messages)] == [1, 1, 1]
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
            worker.communicate()
        for sb in (wx, dd, smtp):
            sb.stop()
