"""Web fixtures: the FastAPI app over the shared ``app`` store fixture, and quick log-ins.

``client`` is a starlette TestClient; ``login(client, name)`` logs a standard user in by creating
a session directly (the log-in form itself is tested in test_auth.py), and returns the CSRF token.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

PASSWORD = "correct horse battery"


@pytest.fixture
def webapp(app: Any) -> Any:
    from publisher.web import create_app

    return create_app(app)


@pytest.fixture
def client(webapp: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(webapp, follow_redirects=False) as c:
        yield c


@pytest.fixture
def login(app: Any) -> Callable[[Any, str], str]:
    from publisher import accounts
    from publisher.pipeline import workflow
    from publisher.web.security import SESSION_COOKIE

    def _login(client: Any, name: str) -> str:
        with app.session() as s:
            user = workflow.get_user(s, name)
            token = accounts.start_session(s, user, app.settings.web)
        client.cookies.set(SESSION_COOKIE, token)
        with app.session() as s:
            caller = accounts.session_caller(s, token)
        return caller.csrf

    return _login


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf-token" content="([^"]*)"', html)
    assert m, "page has no CSRF meta tag"
    return m.group(1)


def make_item(
    app: Any,
    *,
    author: str = "ed",
    title: str = "关于寒假放假安排的通知",
    body: str = "正文内容",
    channels: tuple[str, ...] = ("mem",),
    stage: str = "draft",
    publish_at: Any = None,
) -> int:
    """An item at ``stage``: draft, submitted, dept_approved, scheduled (publish_at needed or now)."""
    from datetime import datetime, timedelta

    from publisher.pipeline import content, workflow

    with app.session() as s:
        ed = workflow.get_user(s, author)
        draft = content.ItemDraft(
            title=title, body_markdown=body, fields={"category": "公告公示", "channels": list(channels)}
        )
        item = workflow.create_item(app.ctx, s, author=ed, draft=draft)
        if stage == "draft":
            return item.id
        workflow.submit(app.ctx, s, item_id=item.id, actor=ed)
        if stage == "submitted":
            return item.id
        head = "head" if ed.department == "校长办公室" else "head2"
        workflow.review(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, head), approve=True)
        if stage == "dept_approved":
            return item.id
        workflow.review(app.ctx, s, item_id=item.id, actor=workflow.get_user(s, "sec"), approve=True)
        when = publish_at or datetime.now().astimezone() + timedelta(seconds=1)
        workflow.schedule(app.ctx, s, item_id=item.id, at=when)
        return item.id
