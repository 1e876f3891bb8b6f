"""``kill -9`` of the notification sender mid-send of a new event (register deadlines, docs/notify.md),
over the 企业微信 corp-app transport, then a restart.

The keepers are told of late requests through the corp API sandbox. The sender is killed while one
request hangs: a gettoken that never answers (``stall``: nothing was sent) or a message/send the
service took and whose answer was lost (``taken_then_stall``). A new sender on the same host takes
the dead one's claim up at once and sends what is left. Unlike the robots, the corp API's
``enable_duplicate_check`` drops the repeat of the taken message: each keeper reads each message
exactly once in both cases.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from channels.sandbox.wecom_app import WecomAppSandbox
from publisher.counting import registers
from publisher.notification import Notification
from publisher.pipeline.workflow import outbox
from tests.test_notify import declared_notifiers  # noqa: F401  (a fixture: this tree's declared transports)
from tests.test_notify_crash import LEASE, _env

pytestmark = pytest.mark.slow

N = Notification.__table__  # type: ignore[attr-defined]
SECRET = "crash-app-secret"


def _settings(tmp_path: Path, store_url: str, corp: WecomAppSandbox) -> Path:
    p = tmp_path / "settings.toml"
    p.write_text(
        f"""\
data_dir = "{tmp_path}"
database_url = "{store_url}"
[channels.mem]
type = "memory"
[registers]
keepers = ["admin", "sec2"]
[notify]
lease_seconds = {LEASE}
poll_seconds = 0.05
[notify.transports.wecom_app]
api_base = "{corp.base_url}"
corpid = "{corp.corpid}"
agentid = {corp.agentid}
secret_env = "T_WECOM_APP_SECRET"
rate_per_minute = 6000
""",
        encoding="utf-8",
    )
    return p


@pytest.mark.parametrize("fault", ["stall", "taken_then_stall"])
def test_kill_9_mid_send_of_register_reminders(make_app, store_url: str, tmp_path: Path, monkeypatch, fault) -> None:
    monkeypatch.setenv("T_WECOM_APP_SECRET", SECRET)
    corp = WecomAppSandbox(secret=SECRET, users=("zhaoadmin", "qianbaomi"), stall_seconds=60)
    corp.start()
    try:
        settings = _settings(tmp_path, store_url, corp)
        from publisher.settings import load_settings

        loaded = load_settings(settings)
        a = make_app(
            channels={"mem": {"type": "memory"}},
            notify=loaded.notify.model_dump(),
            registers=loaded.registers.model_dump(),
        )
        with a.session() as s:
            for user, userid in (("admin", "zhaoadmin"), ("sec2", "qianbaomi")):
                outbox.set_pref(s, user=user, transport="wecom_app", address=userid, known=a.settings.notify.transports)
            for n in range(4):  # received in January: late whatever today is
                registers.add_request(
                    s,
                    a.settings,
                    applicant=f"申请人{n}",
                    subject=f"事项{n}",
                    via="web",
                    received=date(2026, 1, 5),
                    actor="admin",
                )
        with a.session() as s:
            assert registers.remind_deadlines(s, a.settings) == 8

        corp.fail_next(fault)
        env = {**_env(), "T_WECOM_APP_SECRET": SECRET}
        cmd = [sys.executable, "-m", "publisher.cli", "--settings", str(settings), "notify", "run"]
        sender = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not any(e["action"] == "stalled" for e in corp.ledger):
            assert sender.poll() is None, sender.communicate()
            assert time.monotonic() < deadline, "the sender never reached the corp API"
            time.sleep(0.01)
        os.kill(sender.pid, signal.SIGKILL)
        sender.communicate()

        with a.engine.connect() as conn:
            claimed = conn.execute(sa.select(N.c.id, N.c.lease_owner).where(N.c.status == "claimed")).all()
        assert len(claimed) == 1 and claimed[0].lease_owner.split(":")[1] == str(sender.pid)

        # `notify run --once` stops when the next message is held by the transport's pace beyond its
        # horizon (a loaded machine gets there): run it again until nothing is left, as cron would
        for _ in range(5):
            r = subprocess.run([*cmd, "--once"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, r.stderr
            with a.engine.connect() as conn:
                rows = conn.execute(sa.select(N.c.event, N.c.status)).all()
            if all(status == "sent" for _, status in rows):
                break
        assert Counter(tuple(r) for r in rows) == {("register_late", "sent"): 8}

        delivered = Counter((m["touser"][0], m["title"]) for m in corp.messages)
        assert len(delivered) == 8 and set(delivered.values()) == {1}, delivered
        duplicates = [e for e in corp.ledger if e["action"] == "duplicate"]
        # taken, answer lost: sent again after the restart, and the service's duplicate check dropped it
        assert len(duplicates) == (1 if fault == "taken_then_stall" else 0)
    finally:
        corp.stop()
