"""Shared set-up for the benchmarks: a fresh store, approved items with deliveries, a sink."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

SECRET = "bench-secret-not-a-real-one"
ROOT = Path(__file__).resolve().parent.parent

BODY_MD = (
    "## 关于2026年度教职工招聘拟聘用人员的公示\n\n"
    "根据《事业单位公开招聘人员暂行规定》及学校招聘工作方案，经笔试、面试、考察和体检，"
    "现将拟聘用人员名单予以公示。公示期为5个工作日。\n\n"
    "| 姓名 | 岗位 | 学历 |\n|---|---|---|\n| 张三 | 专任教师 | 博士研究生 |\n| 李四 | 辅导员 | 硕士研究生 |\n\n"
    "如有异议，请在公示期内以书面形式向学校纪委反映。联系电话：0000-00000000。\n"
) * 3
BODY_HTML = "<h2>关于2026年度教职工招聘拟聘用人员的公示</h2>" + "<p>根据《事业单位公开招聘人员暂行规定》</p>" * 12


def pg_database(url: str) -> str:
    """Create a fresh database next to ``url``'s server; return its URL."""
    name = f"publisher_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def settings_data(
    tmp: Path, db_url: str | None, channels: dict[str, dict[str, Any]], threads: int = 1, **worker: Any
) -> dict[str, Any]:
    return {
        "database_url": db_url or f"sqlite:///{tmp / 'queue.db'}",
        "data_dir": str(tmp),
        "channels": channels,
        "site_base_url": "http://127.0.0.1:9/site/",
        "worker": {
            "threads": threads,
            "poll_seconds": 0.2,
            "backoff_base_seconds": 0.2,
            "backoff_cap_seconds": 2.0,
            **worker,
        },
    }


def fresh_store(
    tmp: Path, db_url: str | None, channels: dict[str, dict[str, Any]], threads: int = 1, **worker: Any
) -> Any:
    """A migrated store with departments and the reviewers; returns the App."""
    from publisher.app import open_app
    from publisher.pipeline import workflow
    from publisher.settings import Settings

    if db_url and db_url.startswith("postgresql") and not db_url.rsplit("/", 1)[1].startswith("publisher_bench_"):
        db_url = pg_database(db_url)
    app = open_app(Settings(**settings_data(tmp, db_url, channels, threads, **worker)), run_migrations=True)
    with app.session() as s:
        workflow.add_department(s, "人事处")
        for name, role, dept in [
            ("ed", "editor", "人事处"),
            ("head", "department_head", "人事处"),
            ("sec", "confidentiality_reviewer", None),
        ]:
            workflow.add_user(s, name=name, role=role, department=dept)
    return app


def seed_deliveries(
    app: Any, n: int, channels: list[str], due_at: datetime | None = None, start: int = 0
) -> list[dict[str, Any]]:
    """``n`` items approved twice and scheduled on ``channels``, written straight into the tables.

    Returns, for the first channel, the documents the webhook channel sends, so a bare loop can post
    the very same payloads.
    """
    from publisher.channel import DeliveryContext, Post
    from publisher.models import Delivery, Item, Review, User

    now = datetime.now(UTC)
    due = due_at or now - timedelta(seconds=1)
    it, rv, dl = Item.__table__, Review.__table__, Delivery.__table__  # type: ignore[attr-defined]
    with app.engine.begin() as conn:
        users = dict(conn.execute(sa.select(User.__table__.c.name, User.__table__.c.id)).all())  # type: ignore[attr-defined]
        first = (conn.execute(sa.select(sa.func.max(it.c.id))).scalar() or 0) + 1
        items = [
            dict(
                id=first + i,
                title=f"拟聘用人员公示（第{start + i + 1}号）",
                summary="公示期为5个工作日",
                body_markdown=BODY_MD,
                body_html=BODY_HTML,
                category="招聘信息",
                department="人事处",
                author_id=users["ed"],
                checklist_item=None,
                channels=channels,
                status="scheduled",
                version=1,
                publish_at=due,
                created_at=now,
                updated_at=now,
                return_reason=None,
                idempotency_key=None,
            )
            for i in range(n)
        ]
        for chunk in range(0, n, 2000):
            conn.execute(sa.insert(it), items[chunk : chunk + 2000])
            conn.execute(
                sa.insert(rv),
                [
                    dict(
                        item_id=x["id"],
                        item_version=1,
                        level=lvl,
                        approved=True,
                        reviewer_id=users["head" if lvl == 1 else "sec"],
                        reason=None,
                        at=now,
                    )
                    for x in items[chunk : chunk + 2000]
                    for lvl in (1, 2)
                ],
            )
            conn.execute(
                sa.insert(dl),
                [
                    dict(
                        item_id=x["id"],
                        channel=ch,
                        op="publish",
                        status="pending",
                        due_at=due,
                        item_version=1,
                        attempts=0,
                        state={},
                        created_at=now,
                        updated_at=now,
                    )
                    for x in items[chunk : chunk + 2000]
                    for ch in channels
                ],
            )
        if app.engine.dialect.name == "postgresql":
            for table in ("item", "review", "delivery"):
                conn.execute(
                    sa.text(f"select setval(pg_get_serial_sequence('{table}', 'id'), (select max(id) from {table}))")
                )
            conn.execute(sa.text("analyze"))
        ids = dict(
            conn.execute(
                sa.select(dl.c.item_id, dl.c.id).where(dl.c.channel == channels[0], dl.c.item_id >= first)
            ).all()
        )
    spec = app.channels.get(channels[0])
    if spec is None or not hasattr(spec.channel, "payload"):
        return []
    docs = []
    for x in items:
        post = Post(
            item_id=x["id"],
            title=x["title"],
            body_markdown=BODY_MD,
            body_html=BODY_HTML,
            summary=x["summary"],
            category=x["category"],
            department=x["department"],
            author="ed",
            publish_at=due,
            updated_at=now,
            channels=tuple(channels),
            site_url=f"{app.settings.site_base_url}items/{x['id']}.html",
        )
        docs.append(
            spec.channel.payload(post, DeliveryContext(delivery_id=ids[x["id"]], attempt=1, state={}), "publish")
        )
    return docs


class ProcessSink:
    """The same sink run as its own process (``python -m channels.sandbox.sink``), same interface."""

    def __init__(self, latency_ms: float = 0.0) -> None:
        env = {**os.environ, "PUBLISHER_WEBHOOK_SECRET": SECRET}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "channels.sandbox.sink", "--port", "0", "--latency-ms", str(latency_ms)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        self.url = line.split("listening on ", 1)[1].split()[0]
        self.hook_url = self.url + "/hook"

    def ledger(self) -> dict[str, Any]:
        return requests.get(self.url + "/__sink__/ledger", timeout=30).json()

    def reset(self) -> None:
        requests.post(self.url + "/__sink__/reset", json={}, timeout=30).raise_for_status()

    def fail_next(self, kind: str, count: int = 1, **kw: Any) -> None:
        requests.post(
            self.url + "/__sink__/faults", json={"kind": kind, "count": count, **kw}, timeout=30
        ).raise_for_status()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


class SandboxProcess:
    """``python -m <module> --port 0 ARGS`` (a sandbox with a ``__main__``), steered over its HTTP admin."""

    def __init__(self, module: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "--port", "0", *args], stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        found = re.search(r"(http://[^\s)]+)", line)
        if found is None:
            self.proc.kill()
            raise RuntimeError(f"{module} did not say where it listens: {line!r}")
        self.url = found.group(1)

    def get(self, path: str) -> Any:
        resp = requests.get(self.url + path, timeout=60)
        resp.raise_for_status()
        return resp.json()

    def post(self, path: str, data: dict[str, Any]) -> Any:
        resp = requests.post(self.url + path, json=data, timeout=60)
        resp.raise_for_status()
        return resp.json()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()  # type: ignore[union-attr]


def start_sink(kind: str, latency_ms: float = 0.0) -> Any:
    if kind == "process":
        return ProcessSink(latency_ms)
    from channels.sandbox.sink import Sink

    sink = Sink(secret=SECRET, latency_ms=latency_ms)
    sink.start()
    return sink


# ------------------------------------------------------------------------- worker processes
def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):  # an inline table: a channel's [channels.NAME.s3]
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_settings(path: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` (settings_data()'s shape) as settings.toml for ``publisher --settings``."""
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    for k, v in data.items():
        if isinstance(v, dict):
            if k == "channels":
                tables.extend((f"channels.{n}", t) for n, t in v.items())
            else:
                tables.append((k, v))
        else:
            lines.append(f"{k} = {_toml_value(v)}")
    for name, table in tables:
        lines.append(f"\n[{name}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in table.items())
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def start_worker(settings: Path, *args: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    """``publisher --settings FILE run ARGS`` as its own process (the real CLI, as systemd runs it)."""
    env = {**os.environ, "PUBLISHER_WEBHOOK_SECRET": SECRET}
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - handed to the child, closed below
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "publisher.cli", "--settings", str(settings), "run", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    finally:
        if log:
            out.close()  # type: ignore[union-attr]


def terminate_backends(db_url: str) -> int:
    """``pg_terminate_backend`` every other connection to ``db_url``'s database (only that one)."""
    eng = sa.create_engine(db_url, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as c:
            return len(
                c.execute(
                    sa.text(
                        "select pg_terminate_backend(pid) from pg_stat_activity "
                        "where datname = current_database() and pid <> pg_backend_pid()"
                    )
                ).all()
            )
    finally:
        eng.dispose()


def counts(engine: Any) -> dict[str, int]:
    with engine.connect() as c:
        return dict(c.execute(sa.text("select status, count(*) from delivery group by status")).all())
