"""Crash recovery: ``kill -9`` of ``publisher run`` mid-batch, then a restart.

The channel is tests/plugins' FileLogChannel (registered through a dist-info folder on PYTHONPATH),
observable across processes: one marker file per delivery created with O_EXCL, one ledger line per
first publication, one recall line when a delivery is sent again (the only legitimate case: the
worker died after the channel took the item but before the store recorded it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from publisher.app import open_app
from publisher.db import make_engine, migrate
from publisher.pipeline import content, workflow
from publisher.settings import load_settings
from tests.clirun import PLUGINS, Cli, setup_store

pytestmark = pytest.mark.slow

N = 300
LEASE = 300  # seconds: far longer than the test, so only an immediate release lets the restart finish


def _lines(p: Path) -> list[str]:
    return p.read_text().splitlines() if p.exists() else []


def test_kill_9_mid_batch_then_restart_delivers_each_exactly_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(PLUGINS))  # this process builds the channel too (to queue the items)
    out = tmp_path / "out"
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    eng = make_engine(url)
    migrate(eng)
    eng.dispose()
    cli = Cli(
        tmp_path,
        url,
        settings_text=f"""\
data_dir = "{tmp_path}"
[worker]
threads = 8
lease_seconds = {LEASE}
poll_seconds = 0.05
[channels.flog]
type = "filelog"
folder = "{out}"
delay = 0.05
max_concurrency = 8
""",
    )
    setup_store(cli)
    settings = load_settings(cli.settings)
    settings.database_url = url
    a = open_app(settings)
    with a.session() as s:
        ed, head, sec = (workflow.get_user(s, n) for n in ("ed", "head", "sec"))
        for n in range(N):
            draft = content.ItemDraft(
                title=f"通知 {n}", body_markdown="正文", fields={"category": "公告公示", "channels": ["flog"]}
            )
            item = workflow.create_item(a.ctx, s, author=ed, draft=draft)
            workflow.submit(a.ctx, s, item_id=item.id, actor=ed)
            workflow.review(a.ctx, s, item_id=item.id, actor=head, approve=True)
            workflow.review(a.ctx, s, item_id=item.id, actor=sec, approve=True)
            workflow.schedule(a.ctx, s, item_id=item.id, at=datetime.now(UTC))
    a.close()

    env = {**cli.env}
    worker = subprocess.Popen(
        [sys.executable, "-m", "publisher.cli", "--settings", str(cli.settings), "run"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    ledger = out / "ledger.log"
    deadline = time.monotonic() + 30
    while len(_lines(ledger)) < N // 4:
        assert worker.poll() is None, worker.communicate()
        assert time.monotonic() < deadline, "the worker published nothing in 30 s"
        time.sleep(0.01)
    os.kill(worker.pid, signal.SIGKILL)
    worker.communicate()  # reap it: a zombie still answers kill(pid, 0)
    done_before = len(_lines(ledger))
    assert done_before < N, "the worker finished before it could be killed; make the channel slower"

    eng = make_engine(url)
    with eng.connect() as conn:
        claimed = conn.execute(sa.text("SELECT id, lease_owner FROM delivery WHERE status = 'claimed'")).all()
        conn.rollback()
    assert claimed, "killed between batches: nothing was in flight"
    assert {o.split(":")[1] for _, o in claimed} == {str(worker.pid)}

    started = time.monotonic()
    r = cli.ok("run", "--once", timeout=60)
    took = time.monotonic() - started
    assert took < LEASE / 5, f"the restart took {took:.0f} s: it waited for the dead worker's leases to expire"

    with eng.connect() as conn:
        states = dict(conn.execute(sa.text("SELECT status, count(*) FROM delivery GROUP BY status")).all())
        items = dict(conn.execute(sa.text("SELECT status, count(*) FROM item GROUP BY status")).all())
        attempts_of_claimed = conn.execute(
            sa.text("SELECT count(*) FROM delivery_attempt WHERE delivery_id IN :ids AND worker LIKE :w").bindparams(
                sa.bindparam("ids", expanding=True)
            ),
            {"ids": [i for i, _ in claimed], "w": f"%:{worker.pid}:%"},
        ).scalar_one()
        conn.rollback()
    eng.dispose()
    assert states == {"done": N}, r.out
    assert items == {"published": N}
    assert attempts_of_claimed == 0, "the dead worker recorded outcomes for deliveries it still held"

    published = [line.split()[0] for line in _lines(ledger)]
    twice = {d: n for d, n in Counter(published).items() if n > 1}
    assert not twice, f"published twice: {twice}"
    assert len(published) == N
    markers = os.listdir(out / "published")
    assert len(markers) == N
    # a delivery is sent again only if it was in flight when the worker died
    recalls = [line.split()[0] for line in _lines(out / "recalls.log")]
    assert set(recalls) <= {str(i) for i, _ in claimed}, (recalls, claimed)
    assert len(recalls) <= len(claimed)
    print(f"killed after {done_before}/{N}; {len(claimed)} in flight, {len(recalls)} sent again; restart {took:.1f} s")
