"""Running the real ``publisher`` command in a subprocess against a test store, and dumping the store.

The CLI is a face: the tests that use this check what a user sees (exit code, stdout, the one
stderr line) and what the store holds afterwards, never the functions behind it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

PLUGINS = Path(__file__).parent / "plugins"
#: the tree these tests belong to goes first on the subprocess's path, so a worktree's CLI runs its own
#: code rather than the editable install's
ROOT = Path(__file__).resolve().parent.parent

SETTINGS = """\
data_dir = "{data_dir}"
[worker]
threads = 4
poll_seconds = 0.05
backoff_base_seconds = 0.01
backoff_cap_seconds = 0.05
[channels.mem]
type = "memory"
[channels.mem2]
type = "memory"
"""


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def last_line(self) -> str:
        return self.out.strip().splitlines()[-1] if self.out.strip() else ""


class Cli:
    """``cli("item", "add", ...)`` runs ``python -m publisher.cli --settings PATH item add ...``."""

    def __init__(self, workdir: Path, store_url: str, settings_text: str | None = None) -> None:
        self.workdir = workdir
        self.store_url = store_url
        #: put before the command, e.g. ["setpriv", "--reuid=nobody", ...] to run it as another user
        self.prefix: list[str] = []
        self.settings = workdir / "settings.toml"
        self.settings.write_text(settings_text or SETTINGS.format(data_dir=workdir), encoding="utf-8")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
        self.env.update(
            PUBLISHER_DATABASE_URL=store_url,
            PYTHONPATH=os.pathsep.join((str(ROOT), str(PLUGINS))),
            COLUMNS="200",
            NO_COLOR="1",
            PYTHONWARNINGS="error",
        )

    def __call__(
        self, *args: str, settings: bool = True, env: dict[str, str] | None = None, timeout: float = 120
    ) -> Result:
        cmd = [sys.executable, "-m", "publisher.cli"]
        if settings:
            cmd += ["--settings", str(self.settings)]
        p = subprocess.run(
            [*self.prefix, *cmd, *args],
            cwd=self.workdir,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Result(p.returncode, p.stdout, p.stderr)

    def ok(self, *args: str, **kw: Any) -> Result:
        r = self(*args, **kw)
        assert r.code == 0, f"publisher {' '.join(args)} failed ({r.code}): {r.err or r.out}"
        return r


def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, ordered, for before/after comparisons."""
    from publisher.db import make_engine

    eng = make_engine(url)
    try:
        out: dict[str, list[tuple[Any, ...]]] = {}
        with eng.connect() as conn:
            for table in sorted(sa.inspect(conn).get_table_names()):
                t = sa.Table(table, sa.MetaData(), autoload_with=conn)
                rows = conn.execute(sa.select(t).order_by(*t.primary_key.columns or t.columns)).all()
                out[table] = [tuple(str(v) for v in r) for r in rows]
            conn.rollback()
        return out
    finally:
        eng.dispose()


def setup_store(cli: Cli) -> None:
    """Departments and the standard users, through the real service functions."""
    from publisher.app import open_app
    from publisher.pipeline import workflow
    from tests.conftest import STANDARD_USERS

    a = open_app(_settings_for(cli))
    try:
        with a.session() as s:
            for d in a.settings.departments:
                workflow.add_department(s, d)
            for name, role, dept in STANDARD_USERS:
                workflow.add_user(s, name=name, role=role, department=dept)
    finally:
        a.close()


def _settings_for(cli: Cli) -> Any:
    from publisher.settings import load_settings

    s = load_settings(cli.settings)
    s.database_url = cli.store_url
    return s
