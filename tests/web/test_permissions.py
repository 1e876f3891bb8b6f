"""Who may use which route: the role table of docs/web.md, read here and tried cell by cell.

The table (section "Who may use which route") has one row per route and one column per caller: nobody
logged in, a user of each role in 校长办公室, and an editor and a head of 人事处. This module parses it
and, for every row, asks the running app as every caller. A caller the table refuses gets 403 (401 or
a redirect to the log-in page when not logged in) and nothing changes; a caller it allows gets a
success, each on a fresh item so one caller's change never hides another's. A ``404`` cell is a caller
who passes the role gate but may not see the item (another department's): they are told exactly what a
missing item tells, since ids are sequential and a 403 would tell who has what.

A route of the app that is in neither table of that section fails ``test_every_route_is_in_the_table``,
so a new route cannot be forgotten. ``SETUP`` says how to ask a row (its URL, the item it acts on, its
form or JSON body); a plain route without path parameters needs none.
Role gating does not depend on the database engine, so this runs on SQLite only.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from publisher import accounts
from publisher.models import AuditLog, Delivery, DeliveryStatus
from publisher.pipeline import workflow
from tests.web.conftest import make_item

on_sqlite = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)

DOC = Path(__file__).resolve().parents[2] / "docs" / "web.md"
SECTION = "## Who may use which route"
#: the table's columns → the user tried for it (None: not logged in); ed2 and head2 are of 人事处
COLUMNS = {
    "anonymous": None,
    "viewer": "viewer",
    "editor": "ed",
    "department_head": "head",
    "confidentiality_reviewer": "sec",
    "admin": "admin",
    "editor, other department": "ed2",
    "department_head, other department": "head2",
}
CELLS = {"✓", "403", "404", "login"}
_ROUTE = re.compile(r"`([A-Z]+) (/[^`]*)`")


@dataclass(frozen=True)
class Row:
    """One row of the role table: ``name`` is the route as written, with its variant in brackets."""

    name: str
    method: str
    path: str
    cells: dict[str | None, str] = field(hash=False)

    @property
    def allowed(self) -> set[str | None]:
        return {who for who, cell in self.cells.items() if cell == "✓"}

    @property
    def hidden(self) -> set[str | None]:
        return {who for who, cell in self.cells.items() if cell == "404"}


def _tables(text: str) -> list[list[list[str]]]:
    """The Markdown tables of the role section, each a list of rows of cells (header first, no rule)."""
    start = text.index(SECTION)
    end = text.find("\n## ", start + 1)
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in text[start : end if end > 0 else None].splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= set("-: ") for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def _route_names(cell: str) -> list[tuple[str, str, str]]:
    """(name, method, path) of each route a first cell names; a variant in brackets ends the name."""
    found = _ROUTE.findall(cell)
    assert found, f"docs/web.md role table: {cell!r} names no route (write it as `METHOD /path`)"
    variant = re.search(r"\(([^)]*)\)\s*$", cell)
    suffix = f" ({variant.group(1)})" if variant and len(found) == 1 else ""
    return [(f"{m} {p}{suffix}", m, p) for m, p in found]


def read_table(text: str) -> tuple[list[Row], set[tuple[str, str]]]:
    """The role table's rows, and the (method, path) of the routes with no role check."""
    gated, public = _tables(text)[:2]
    header = gated[0][1:]
    assert header == list(COLUMNS), f"docs/web.md role table columns are {header}, expected {list(COLUMNS)}"
    rows = []
    for cells in gated[1:]:
        assert len(cells) == len(COLUMNS) + 1, f"docs/web.md role table: {cells[0]} has {len(cells) - 1} cells"
        bad = [c for c in cells[1:] if c not in CELLS]
        assert not bad, f"docs/web.md role table: {cells[0]} has {bad}; a cell is one of {sorted(CELLS)}"
        for name, method, path in _route_names(cells[0]):
            rows.append(Row(name, method, path, dict(zip(COLUMNS.values(), cells[1:], strict=True))))
    names = [r.name for r in rows]
    assert len(names) == len(set(names)), f"docs/web.md role table: a row twice in {names}"
    return rows, {(m, p) for cells in public[1:] for _, m, p in _route_names(cells[0])}


ROWS, PUBLIC = read_table(DOC.read_text(encoding="utf-8"))


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def _failed_delivery(app: Any) -> dict[str, Any]:
    item = make_item(app, stage="scheduled")
    with app.session() as s:
        d = s.exec(select(Delivery).where(Delivery.item_id == item)).one()
        d.status, d.last_error = DeliveryStatus.FAILED, "scripted"
        return {"item": item, "delivery": d.id}


def _media(app: Any, who: str) -> dict[str, Any]:
    from publisher.pipeline import content

    path = app.settings.media_dir.parent / "upload.png"
    path.write_bytes(_png())
    stored = content.store_file(path, media_dir=app.settings.media_dir, role="image", max_bytes=10**6)
    if who:  # a fresh upload is its uploader's department's (the writers'; the others cannot upload)
        from publisher.web import compose

        with app.session() as s:
            compose.record_upload(app.ctx, stored.sha256, workflow.get_user(s, who))
    return {"sha": stored.sha256}


def _feed(app: Any, who: str) -> dict[str, Any]:
    if not who:
        return {"token": ""}
    with app.session() as s:  # the feed takes its own read-only token, never an API token
        return {"token": accounts.new_feed_token(s, user=workflow.get_user(s, who))}


def _user(app: Any, who: str) -> dict[str, Any]:
    """A user of its own for the routes that change one (deactivated by the first caller allowed)."""
    name = f"target.{uuid.uuid4().hex[:8]}"
    with app.session() as s:
        workflow.add_user(s, name=name, role="viewer", department=None)
    return {"name": name}


@dataclass
class Setup:
    """How to ask a row: ``url`` (and the form's texts) formatted with what ``setup(app, caller)`` returns."""

    url: str
    setup: Callable[[Any, str], dict[str, Any]] = lambda app, who: {}
    data: Any = None
    json: Any = None
    files: Any = None
    ok: tuple[int, ...] = (200, 201, 303)
    #: fields a page hands out before its form is sent (a public form's token), read with the client
    prepare: Callable[[Any], dict[str, str]] | None = None


def _item(stage: str) -> Callable[[Any, str], dict[str, Any]]:
    return lambda app, who: {"item": make_item(app, stage=stage)}


#: a body the privacy check has one finding in (a mobile number): finding 1 of its version
PRIVATE = "联系人：张老师，手机 13912345678"


def _private(stage: str, *, unchecked: bool = False) -> Callable[[Any, str], dict[str, Any]]:
    """An item with a privacy finding; ``unchecked``: as if stored before the check existed."""

    def setup(app: Any, who: str) -> dict[str, Any]:
        from publisher.models import ItemVersion, PrivacyFinding

        item = make_item(app, stage=stage, body=PRIVATE)
        if unchecked:
            with app.session() as s:
                for f in s.exec(select(PrivacyFinding).where(PrivacyFinding.item_id == item)):
                    s.delete(f)
                for v in s.exec(select(ItemVersion).where(ItemVersion.item_id == item)):
                    v.privacy_checked_at = None
        return {"item": item}

    return setup


def _token_of(app: Any, who: str) -> dict[str, Any]:
    with app.session() as s:
        tok, row = accounts.create_token(s, user=workflow.get_user(s, who), name="matrix")
    return {"token": tok, "token_id": row.id}


COMPOSE_FORM = {
    "title": "矩阵测试",
    "body_markdown": "正文",
    "category": "公告公示",
    "department": "校长办公室",
    "channels": "mem",
    "when": "none",
    "action": "draft",
}
API_ITEM = {
    "title": "矩阵测试",
    "body_markdown": "正文",
    "category": "公告公示",
    "channels": ["mem"],
    "department": "校长办公室",
}
REASON = "联系人本人同意公开"


#: a one-row ledger CSV (row 2) that the default test app accepts
LEDGER_CSV = (
    "title,category,department,channel,published_at,url\r\n矩阵导入,公告公示,校长办公室,mem,2026-01-05 09:00,\r\n"
).encode("utf-8-sig")


def _kept_csv(app: Any, who: str) -> dict[str, Any]:
    from publisher.counting import imports

    return {"sha": imports.keep(app.settings, LEDGER_CSV)}


def _request(app: Any, who: str) -> dict[str, Any]:
    from publisher.counting import registers

    with app.session() as s:
        r = registers.add_request(s, app.settings, applicant="张三", subject="招生计划", via="email", actor="admin")
        return {"request": r.id}


def _complaint(app: Any, who: str) -> dict[str, Any]:
    from publisher.counting import registers

    with app.session() as s:
        c = registers.add_complaint(s, app.settings, complainant="王五", subject="未公开", via="phone", actor="admin")
        return {"complaint": c.id}


def _apply_token(client: Any) -> dict[str, str]:
    """The public form's token, from the form (its cookie stays in the client)."""
    page = client.get("/apply")
    return {"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)}  # type: ignore[union-attr]


APPLY_FORM = {"applicant": "赵六", "contact": "zhao@example.com", "subject": "招生计划"}

#: keyed by the role table's route names; a row without path parameters and body needs no entry
SETUP: dict[str, Setup] = {
    "POST /items/new (for 校长办公室)": Setup("/items/new", data=COMPOSE_FORM),
    "POST /preview": Setup("/preview", data=COMPOSE_FORM),
    "POST /upload": Setup("/upload", files={"file": ("a.png", _png(), "image/png")}),
    "GET /items/{item_id}": Setup("/items/{item}", _item("draft")),
    "GET /items/{item_id}/edit": Setup("/items/{item}/edit", _item("draft")),
    "POST /items/{item_id}/edit": Setup("/items/{item}/edit", _item("draft"), data=COMPOSE_FORM),
    "POST /items/{item_id}/submit": Setup("/items/{item}/submit", _item("draft")),
    "POST /items/{item_id}/recall": Setup("/items/{item}/recall", _item("submitted")),
    "POST /items/{item_id}/review (first review)": Setup(
        "/items/{item}/review", _item("submitted"), data={"decision": "approve"}
    ),
    "POST /items/{item_id}/review (second review)": Setup(
        "/items/{item}/review", _item("dept_approved"), data={"decision": "approve"}
    ),
    "POST /items/{item_id}/schedule": Setup("/items/{item}/schedule", _item("draft"), data={"at": "2099-01-01T09:00"}),
    "POST /items/{item_id}/withdraw": Setup("/items/{item}/withdraw", _item("scheduled")),
    "POST /deliveries/{delivery_id}/retry": Setup(
        "/deliveries/{delivery}/retry", lambda app, who: _failed_delivery(app)
    ),
    # the privacy check: clearing is the confidentiality reviewer's or an admin's, masking the item's
    # editors', an admin's or the confidentiality reviewer's (the service functions' own rules)
    "POST /items/{item_id}/privacy/{number}/clear": Setup(
        "/items/{item}/privacy/1/clear", _private("dept_approved"), data={"reason": REASON}
    ),
    "POST /items/{item_id}/mask": Setup("/items/{item}/mask", _private("dept_approved")),
    "POST /items/{item_id}/privacy/recheck": Setup(
        "/items/{item}/privacy/recheck", _private("submitted", unchecked=True)
    ),
    "GET /media/{sha} (one's department's upload)": Setup("/media/{sha}", _media),
    # the iCalendar feed authenticates by the token in its URL (calendar apps send no cookies)
    "GET /calendar/{channel}.ics (with one's feed token)": Setup("/calendar/mem.ics?token={token}", _feed),
    "GET /dashboard.csv": Setup("/dashboard.csv?table=category"),
    "POST /tokens": Setup("/tokens", data={"name": "script"}),
    "POST /tokens/{token_id}/revoke (one's own)": Setup(
        "/tokens/{token_id}/revoke", lambda app, who: _token_of(app, who or "admin")
    ),
    "GET /notify (another person's)": Setup("/notify?user={name}", _user),
    "POST /notify": Setup("/notify", data={"transport": "none"}),
    "POST /notify (another person's)": Setup("/notify", _user, data={"user": "{name}", "transport": "none"}),
    "POST /admin/users": Setup(
        "/admin/users", data={"name": "new.user", "role": "viewer", "password": "a long password"}
    ),
    "POST /admin/users/{name}/password": Setup(
        "/admin/users/viewer/password", data={"password": "another long password"}
    ),
    "POST /admin/users/{name}/set": Setup(
        "/admin/users/{name}/set", _user, data={"role": "editor", "department": "人事处"}
    ),
    "POST /admin/users/{name}/deactivate": Setup("/admin/users/{name}/deactivate", _user),
    # the annual report, its template, the CSV import and the audit export (docs/web.md)
    "GET /report/download": Setup("/report/download?format=md"),
    "POST /report/template": Setup("/report/template", data={"text": "# {{ org }}\n"}),
    "POST /import": Setup("/import", files={"file": ("ledger.csv", LEDGER_CSV, "text/csv")}),
    "GET /import/{sha}": Setup("/import/{sha}", _kept_csv),
    "POST /import/{sha}": Setup("/import/{sha}", _kept_csv, data={"name": "ledger.csv", "rows": "2"}),
    # coverage and the registers
    "POST /coverage/{number}/rule": Setup("/coverage/19/rule", data={"rule": "monthly"}),
    "POST /registers/requests": Setup(
        "/registers/requests", data={"applicant": "李四", "subject": "工资", "via": "letter"}
    ),
    "POST /registers/requests/{request_id}/extend": Setup(
        "/registers/requests/{request}/extend", _request, data={"reason": "需要会商"}
    ),
    "POST /registers/requests/{request_id}/close": Setup(
        "/registers/requests/{request}/close", _request, data={"outcome": "disclosed"}
    ),
    "POST /registers/complaints": Setup(
        "/registers/complaints", data={"complainant": "王五", "subject": "未公开", "via": "phone"}
    ),
    "POST /registers/complaints/{complaint_id}/close": Setup(
        "/registers/complaints/{complaint}/close", _complaint, data={"outcome": "upheld", "resolution": "已补充公开"}
    ),
    # the website's public request form (anyone, signed in or not)
    "POST /apply": Setup("/apply", data=APPLY_FORM, prepare=_apply_token),
    # the JSON API, with bearer tokens
    "POST /api/items (for 校长办公室)": Setup("/api/items", json=API_ITEM),
    "GET /api/items/{item_id}": Setup("/api/items/{item}", _item("draft")),
    "PATCH /api/items/{item_id}": Setup("/api/items/{item}", _item("draft"), json={"title": "改"}),
    "POST /api/items/{item_id}/submit": Setup("/api/items/{item}/submit", _item("draft")),
    "POST /api/items/{item_id}/review (first review)": Setup(
        "/api/items/{item}/review", _item("submitted"), json={"approve": True}
    ),
    "POST /api/items/{item_id}/review (second review)": Setup(
        "/api/items/{item}/review", _item("dept_approved"), json={"approve": True}
    ),
    "POST /api/items/{item_id}/schedule": Setup(
        "/api/items/{item}/schedule", _item("draft"), json={"at": "2099-01-01T09:00+08:00"}
    ),
    "POST /api/items/{item_id}/withdraw": Setup("/api/items/{item}/withdraw", _item("scheduled"), json={}),
    "GET /api/items/{item_id}/deliveries": Setup("/api/items/{item}/deliveries", _item("scheduled")),
    "GET /api/items/{item_id}/privacy": Setup("/api/items/{item}/privacy", _private("draft")),
    "POST /api/items/{item_id}/privacy/{no}/clear": Setup(
        "/api/items/{item}/privacy/1/clear", _private("dept_approved"), json={"reason": REASON}
    ),
    "POST /api/items/{item_id}/mask": Setup("/api/items/{item}/mask", _private("dept_approved")),
    "POST /api/items/{item_id}/privacy/recheck": Setup(
        "/api/items/{item}/privacy/recheck", _private("submitted", unchecked=True)
    ),
    "POST /api/deliveries/{delivery_id}/retry": Setup(
        "/api/deliveries/{delivery}/retry", lambda app, who: _failed_delivery(app)
    ),
}


def setup_of(row: Row) -> Setup:
    s = SETUP.get(row.name)
    if s is None:
        assert "{" not in row.path, (
            f"the role table's {row.name!r} has path parameters: add a SETUP entry for it in {__name__}"
        )
        return Setup(row.path)
    return s


def _app_routes(webapp: Any) -> set[tuple[str, str]]:
    """(method, path) of every route (FastAPI keeps an included router as one entry; ours have no prefix)."""
    found = set()
    for r in webapp.routes:
        inner = getattr(r, "original_router", None)
        for route in inner.routes if inner is not None else [r]:
            for method in getattr(route, "methods", None) or ():
                if method not in ("HEAD", "OPTIONS"):
                    found.add((method, route.path))
    return found


def _audit_count(app: Any) -> int:
    with app.session() as s:
        return len(s.exec(select(AuditLog.id)).all())


@on_sqlite
def test_every_route_is_in_the_table(webapp: Any) -> None:
    """Both ways: no route of the app is left out of docs/web.md, no row names a route the app lacks."""
    app_routes = _app_routes(webapp)
    documented = {(r.method, r.path) for r in ROWS} | PUBLIC
    missing = sorted(f"{m} {p}" for m, p in app_routes - documented)
    assert not missing, f"routes with no row in the role table of docs/web.md ({SECTION!r}): {missing}"
    stale = sorted(f"{m} {p}" for m, p in documented - app_routes)
    assert not stale, f"the role table of docs/web.md names routes the app does not have: {stale}"
    orphans = sorted(set(SETUP) - {r.name for r in ROWS})
    assert not orphans, f"SETUP entries that match no row of the role table: {orphans}"
    for row in ROWS:
        setup_of(row)
        assert row.cells[None] in ("login", "✓"), f"{row.name}: someone not logged in is sent to log in (or served)"
        assert not row.hidden & {"ed", "head", "sec", "admin", "viewer"}, f"{row.name}: 404 is for other departments"


def test_the_table_can_fail() -> None:
    """The parser refuses a table it cannot read rather than trying fewer cells."""
    text = DOC.read_text(encoding="utf-8")
    with pytest.raises(AssertionError, match="has \\['yes'\\]"):
        read_table(text.replace("| `GET /items` | login | 403 |", "| `GET /items` | login | yes |", 1))
    with pytest.raises(AssertionError, match="columns"):
        read_table(text.replace("| confidentiality_reviewer |", "| reviewer |", 1))


@on_sqlite
@pytest.mark.parametrize("public", sorted(f"{m} {p}" for m, p in PUBLIC if m == "GET" and "{" not in p))
def test_routes_without_a_role_check_do_not_ask_to_log_in(public: str, client: Any) -> None:
    r = client.get(public.split(" ", 1)[1])
    assert r.status_code not in (401, 403), f"{public}: {r.status_code}"
    assert not r.headers.get("location", "").startswith("/login?"), f"{public} sends to log in"


@on_sqlite
@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.name)
def test_role_matrix(row: Row, app: Any, client: Any, login: Any) -> None:
    from publisher.web.security import SESSION_COOKIE

    how = setup_of(row)
    api = row.path.startswith("/api/")
    # refused callers first: they must change nothing
    for who in sorted(row.cells, key=lambda w: (w in row.allowed, w or "")):
        client.cookies.clear()
        params = how.setup(app, who)
        url = how.url.format(**params)
        headers: dict[str, str] = {}
        data = (
            {k: v.format(**params) if isinstance(v, str) else v for k, v in how.data.items()}
            if how.data is not None
            else ({} if row.method == "POST" and not api else None)
        )
        if who is not None:
            if api:
                headers["Authorization"] = "Bearer " + _token_of(app, who)["token"]
            else:
                csrf = login(client, who)
                if row.method != "GET":
                    if how.files is not None:
                        headers["X-CSRF-Token"] = csrf
                    else:
                        data["csrf_token"] = csrf  # type: ignore[index]
        if how.prepare is not None:
            data.update(how.prepare(client))  # type: ignore[union-attr]
        before = _audit_count(app)
        r = client.request(row.method, url, data=data, json=how.json, files=how.files, headers=headers)
        cell = row.cells[who]
        if cell == "✓":
            assert r.status_code in how.ok, (
                f"{who} should be able to {row.method} {url}: {r.status_code} {r.text[:300]}"
            )
        elif cell == "login":
            assert r.status_code in (401, 303), f"anonymous {row.method} {url}: {r.status_code}"
            if r.status_code == 303:
                assert r.headers["location"].startswith("/login")
            assert _audit_count(app) == before
        else:
            assert r.status_code == int(cell), f"{who} must not {row.method} {url}: {r.status_code} {r.text[:300]}"
            assert _audit_count(app) == before, f"{who} was refused {url} but something changed"
        assert SESSION_COOKIE not in r.cookies or row.path == "/logout"


HIDDEN_ROWS = [r for r in ROWS if r.hidden]


@on_sqlite
@pytest.mark.parametrize("row", HIDDEN_ROWS, ids=lambda r: r.name)
def test_another_departments_item_answers_as_a_missing_one(row: Row, app: Any, client: Any, login: Any) -> None:
    """Same status, same body (but for the number asked), same headers; the department is never named."""
    how = setup_of(row)
    api = row.path.startswith("/api/")
    for who in sorted(w for w in row.hidden if w):
        client.cookies.clear()
        params = how.setup(app, who)
        key = "delivery" if "{delivery}" in how.url else "item"
        real = params[key]
        missing = real + 10_000
        # one session (its CSRF token is in every page) or one token for both questions
        headers: dict[str, str] = {}
        form = not api and row.method == "POST"
        data = dict(how.data) if how.data is not None else ({} if form else None)
        if api:
            headers["Authorization"] = "Bearer " + _token_of(app, who)["token"]
        else:
            csrf = login(client, who)
            if row.method != "GET":
                data["csrf_token"] = csrf  # type: ignore[index]
        answers = []
        for number in (real, missing):
            url = how.url.format(**{**params, key: number})
            before = _audit_count(app)
            r = client.request(row.method, url, data=data, json=how.json, headers=headers)
            assert _audit_count(app) == before
            answers.append(
                (
                    r.status_code,
                    r.text.replace(f"{key} {number}", f"{key} N"),
                    {k: v for k, v in r.headers.items() if k != "content-length"},
                )
            )
        (code, body, headers_), gone = answers
        assert code == 404, f"{who} {row.method} {how.url}: {code} {body[:300]}"
        assert answers[0] == gone, f"{who}: another department's item differs from a missing one"
        assert "校长办公室" not in body


@on_sqlite
def test_an_image_is_as_visible_as_the_items_that_hold_it(app: Any, client: Any, login: Any) -> None:
    """Another department's draft's image answers exactly as a missing image does (404): nothing is told."""
    from publisher.pipeline import content

    path = app.settings.media_dir.parent / "seal.png"
    path.write_bytes(_png())
    stored = content.store_file(path, media_dir=app.settings.media_dir, role="image", max_bytes=10**6)
    with app.session() as s:
        draft = content.ItemDraft(
            title="校长办公室的草稿",
            body_markdown=f"![](asset://{stored.sha256})",
            fields={"category": "公告公示", "channels": ["mem"]},
            assets=[stored],
        )
        item = workflow.create_item(app.ctx, s, author=workflow.get_user(s, "ed"), draft=draft)
        item_id = item.id
    missing = "0" * 64

    def get(who: str, sha: str, *more: str) -> Any:
        client.cookies.clear()
        login(client, who)
        answers = [client.get(f"/media/{h}") for h in (sha, *more)]
        return answers if more else answers[0]

    for who in ("ed", "head", "sec", "admin"):
        r = get(who, stored.sha256)
        assert r.status_code == 200 and r.content == _png(), who
    for who in ("ed2", "head2"):
        r, gone = get(who, stored.sha256, missing)
        assert r.status_code == 404, who
        assert (r.text, dict(r.headers)) == (gone.text, dict(gone.headers)), "a hidden image differs from a missing one"
    # the same picture in an item of 人事处 is theirs too
    with app.session() as s:
        draft = content.ItemDraft(
            title="人事处的草稿",
            body_markdown=f"![](asset://{stored.sha256})",
            fields={"category": "公告公示", "channels": ["mem"]},
            assets=[stored],
        )
        workflow.create_item(app.ctx, s, author=workflow.get_user(s, "ed2"), draft=draft)
    assert get("ed2", stored.sha256).status_code == 200
    assert get("ed", stored.sha256).status_code == 200
    assert item_id
