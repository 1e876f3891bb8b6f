"""Shared fixtures: one store fixture over both engines (SQLite file, PostgreSQL server).

``store_url`` is parametrised over ``sqlite`` and ``postgres``; a test that takes it (directly or
through ``make_app``/``app``) runs on both. PostgreSQL tests are marked ``postgres`` and use a fresh
database cloned from a migrated template, so each test starts empty. Where the server is not
reachable the PostgreSQL variants are skipped with the reason printed (never silently), unless
PUBLISHER_REQUIRE_POSTGRES=1 (set by .ci/run), where that is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from publisher.testing import MemoryChannel

PG_ADMIN_URL = os.environ.get("PUBLISHER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
_TEMPLATE = f"publisher_tpl_{os.getpid()}"
_pg_state: dict[str, Any] = {}


def _pg_admin():
    import sqlalchemy as sa

    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def _pg_template() -> str:
    """Create (once per test session) a migrated template database; return its name."""
    if "template" in _pg_state:
        return _pg_state["template"]
    if "error" in _pg_state:
        raise _pg_state["error"]
    import sqlalchemy as sa

    from publisher.db import make_engine, migrate

    try:
        admin = _pg_admin()
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{_TEMPLATE}"'))
            c.execute(sa.text(f'CREATE DATABASE "{_TEMPLATE}"'))
        admin.dispose()
        eng = make_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{_TEMPLATE}")
        migrate(eng)
        eng.dispose()
    except Exception as exc:  # server down: record why, skip the postgres variants
        _pg_state["error"] = exc
        raise
    _pg_state["template"] = _TEMPLATE
    return _TEMPLATE


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if "template" in _pg_state:
        import sqlalchemy as sa

        admin = _pg_admin()
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{_TEMPLATE}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated, empty store: a SQLite file or a PostgreSQL database."""
    if request.param == "sqlite":
        from publisher.db import make_engine, migrate

        url = f"sqlite:///{tmp_path / 'queue.db'}"
        eng = make_engine(url)
        migrate(eng)
        eng.dispose()
        yield url
        return
    import sqlalchemy as sa

    try:
        template = _pg_template()
    except Exception as exc:
        if os.environ.get("PUBLISHER_REQUIRE_POSTGRES") == "1":
            raise
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    name = f"publisher_t_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    admin.dispose()
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def make_app(store_url: str, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Build an App on the fresh store with the given channels (default: two memory channels).

    ``make_app(channels={"mem": {"type": "memory"}}, **settings_overrides)``; departments and the
    five standard users (ed, ed2, head, head2, sec, sec2, admin, viewer) are created.
    """
    from publisher.app import open_app
    from publisher.pipeline import workflow
    from publisher.settings import Settings

    apps = []
    MemoryChannel.reset()

    def _make(channels: dict[str, dict[str, Any]] | None = None, users: bool = True, **overrides: Any) -> Any:
        data: dict[str, Any] = {
            "database_url": store_url,
            "data_dir": str(tmp_path),
            "channels": channels if channels is not None else {"mem": {"type": "memory"}, "mem2": {"type": "memory"}},
            "worker": {"threads": 4, "poll_seconds": 0.05, "backoff_base_seconds": 0.01, "backoff_cap_seconds": 0.05},
        }
        for k, v in overrides.items():
            if isinstance(v, dict) and isinstance(data.get(k), dict):
                data[k] = {**data[k], **v}
            else:
                data[k] = v
        a = open_app(Settings(**data))
        apps.append(a)
        with a.session() as s:
            for d in a.settings.departments:
                workflow.add_department(s, d)
            if users:
                for name, role, dept in STANDARD_USERS:
                    workflow.add_user(s, name=name, role=role, department=dept)
        return a

    yield _make
    for a in apps:
        a.close()
    MemoryChannel.reset()


@pytest.fixture
def app(make_app: Callable[..., Any]) -> Any:
    return make_app()


STANDARD_USERS = [
    ("ed", "editor", "校长办公室"),
    ("ed2", "editor", "人事处"),
    ("head", "department_head", "校长办公室"),
    ("head2", "department_head", "人事处"),
    ("sec", "confidentiality_reviewer", None),
    ("sec2", "confidentiality_reviewer", None),
    ("admin", "admin", None),
    ("viewer", "viewer", None),
]
