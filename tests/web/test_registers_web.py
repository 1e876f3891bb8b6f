"""The coverage page, the registers of requests and complaints, and the public /apply form and /guide,
over HTTP on both engines: what each shows, every change through the service functions (audited), the
refusals with their messages, and the public form's defences (forged posts, hostile input, floods)."""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from publisher import accounts
from publisher.counting import ledger
from publisher.models import AuditLog, Complaint, DisclosureRequest
from publisher.pipeline import workflow
from publisher.pipeline.worker import Dispatcher
from publisher.web.security import SESSION_COOKIE
from tests.ledger_helpers import year_app
from tests.web.conftest import make_item


@contextmanager
def served(app):
    """A client of ``app`` (for tests whose app has settings of its own) and a log-in for it."""
    from fastapi.testclient import TestClient

    from publisher.web import create_app

    with TestClient(create_app(app), follow_redirects=False) as c:

        def login(name):
            c.cookies.clear()
            with app.session() as s:
                token = accounts.start_session(s, workflow.get_user(s, name), app.settings.web)
            c.cookies.set(SESSION_COOKIE, token)
            with app.session() as s:
                return accounts.session_caller(s, token).csrf

        yield c, login


RECEIPT = re.compile(r'id="receipt-no">(YSQ\d{8}-[2-9A-HJKMNP-Z]{6})<')


def _rows(app, table):
    with app.session() as s:
        return list(s.exec(select(table)))


def _audit(app, entity):
    with app.session() as s:
        return [(a.action, a.actor) for a in s.exec(select(AuditLog).where(AuditLog.entity == entity))]


def _row(html, anchor):
    """The HTML of one coverage row or register entry, by its id."""
    m = re.search(rf'<(tr|article)[^>]* id="{anchor}"[^>]*>.*?</\1>', html, re.S)
    assert m, f"no element #{anchor}"
    return m.group(0)


# ------------------------------------------------------------------------------------------- coverage
def test_coverage_shows_each_checklist_item_its_latest_and_the_admin_sets_a_rule(make_app):
    app = year_app(make_app)
    today = datetime.now(UTC).astimezone(app.settings.zone)
    recent, old = (today - timedelta(days=30)).strftime("%Y-%m-%d"), (today - timedelta(days=500)).strftime("%Y-%m-%d")
    csv = (
        "title,category,department,channel,published_at,url,checklist_item\n"
        f"学校章程,规章制度,校长办公室,website,{recent} 09:00,http://a.example.cn/1,2\n"
        f"学校章程,规章制度,校长办公室,city_portal,{recent} 10:00,http://b.example.cn/1,2\n"
        f"年度预算,公告公示,校长办公室,website,{old} 09:00,http://a.example.cn/2,19\n"
    )
    with app.session() as s:
        ledger.import_csv(app.ctx, s, data=csv.encode(), source="t.csv", actor="admin")
    # one item through the pipeline, for the timeliness table
    make_item(app, stage="scheduled", channels=("website",), title="放假通知")
    Dispatcher(engine=app.engine, ctx=app.ctx).run(once=True)

    with served(app) as (client, login):
        _coverage_as_viewer_then_admin(app, client, login)


def _coverage_as_viewer_then_admin(app, client, login):
    login("viewer")
    page = client.get("/coverage")
    assert page.status_code == 200
    assert len(re.findall(r'<tr id="c\d+"', page.text)) == 50
    two = _row(page.text, "c2")
    assert 'data-status="current"' in two and "学校章程" in two and "现行" in two
    # a viewer cannot open items: the latest links to where it is published, not to /items/
    assert 'href="http://a.example.cn/1" class="latest"' in two and "/items/" not in two
    assert 'data-status="stale"' in _row(page.text, "c19")
    assert 'data-status="never"' in _row(page.text, "c1") and "从未发布" in _row(page.text, "c1")
    assert "/coverage/2/rule" not in page.text  # the rule is the admin's
    dept = re.search(r'<tr data-department="校长办公室">(.*?)</tr>', page.text, re.S)
    assert dept and '<td data-label="稿件数">1</td>' in dept.group(1)
    never = client.get("/coverage?status=never")
    assert len(re.findall(r'<tr id="c\d+"', never.text)) == 48

    csrf = login("admin")
    page = client.get("/coverage?lang=en")
    assert "Never published" in page.text and re.search(r'<a href="/items/\d+" class="latest">学校章程', page.text)
    r = client.post("/coverage/19/rule", data={"csrf_token": csrf, "rule": "monthly"})
    assert r.status_code == 303 and r.headers["location"] == "/coverage#c19"
    row = _row(client.get("/coverage").text, "c19")
    assert '<option value="monthly" selected>' in row and 'data-status="stale"' in row
    r = client.post("/coverage/19/rule", data={"csrf_token": csrf, "rule": "weekly"})
    assert r.status_code == 422 and "unknown rule" in r.text
    r = client.post("/coverage/51/rule", data={"csrf_token": csrf, "rule": "annual"})
    assert r.status_code == 422
    assert _audit(app, "checklist_rule") == [("set_rule", "admin")]


# ------------------------------------------------------------------------------------------ registers
def test_a_request_is_added_extended_and_closed_in_the_register(app, client, login):
    csrf = login(client, "admin")
    form = {"csrf_token": csrf, "applicant": "张三", "subject": "2022年招生计划", "via": "email"}
    r = client.post("/registers/requests", data={**form, "received": "2022-09-28T16:00"})
    assert r.status_code == 303
    [req] = _rows(app, DisclosureRequest)
    assert str(req.due_on) == "2022-10-24"  # 15 working days, the National Day week and its make-up days
    page = client.get("/registers/requests")
    entry = _row(page.text, f"r{req.id}")
    assert "is-overdue" in entry and "已超期" in entry and "2022年10月24日" in entry
    assert 'id="overdue-count"' in page.text

    # an extension needs a reason: the page says so in Chinese, the English beside, and keeps the days
    r = client.post(f"/registers/requests/{req.id}/extend", data={"csrf_token": csrf, "reason": " ", "days": "10"})
    assert r.status_code == 422 and "请填写延期理由" in r.text and "say why the answer needs more time" in r.text
    assert 'value="10"' in _row(r.text, f"r{req.id}")
    r = client.post(f"/registers/requests/{req.id}/extend", data={"csrf_token": csrf, "reason": "需要征求第三方意见"})
    assert r.status_code == 303
    page = client.get("/registers/requests?state=all")
    entry = _row(page.text, f"r{req.id}")
    assert "2022年11月14日" in entry and "已延期" in entry and "需要征求第三方意见" in entry
    assert f"/registers/requests/{req.id}/extend" not in entry  # one extension only: no second form
    r = client.post(f"/registers/requests/{req.id}/extend", data={"csrf_token": csrf, "reason": "再次延期"})
    assert r.status_code == 403 and "只能延期一次" in r.text

    close = {"csrf_token": csrf, "outcome": "not_disclosed", "answered": "2022-11-10T09:00"}
    r = client.post(f"/registers/requests/{req.id}/close", data=close)
    assert r.status_code == 422 and "须写明依据" in r.text
    r = client.post(f"/registers/requests/{req.id}/close", data={**close, "legal_reason": "privacy"})
    assert r.status_code == 303
    [req] = _rows(app, DisclosureRequest)
    assert (req.outcome, req.legal_reason) == ("not_disclosed", "privacy")
    assert f'id="r{req.id}"' not in client.get("/registers/requests").text  # open only, by default
    closed = client.get("/registers/requests?state=closed&lang=en").text
    assert "Not disclosed" in closed and "Personal privacy" in closed
    assert _audit(app, "disclosure_request") == [("create", "admin"), ("extend", "admin"), ("close", "admin")]
    # a sentence of its own as the ground, and a request that does not exist
    r = client.post("/registers/requests", data=form)
    new = max(x.id for x in _rows(app, DisclosureRequest))
    other = {**close, "outcome": "partly", "legal_reason": "other", "legal_text": "涉及第三方合法权益", "answered": ""}
    assert client.post(f"/registers/requests/{new}/close", data=other).status_code == 303
    assert [x.legal_reason for x in _rows(app, DisclosureRequest) if x.id == new] == ["涉及第三方合法权益"]
    assert client.post("/registers/requests/99999/close", data=close).status_code == 404
    assert client.post(f"/registers/requests/{2**40}/extend", data={**close, "reason": "x"}).status_code in (404, 422)


def test_a_refused_add_keeps_what_was_typed_and_writes_nothing(app, client, login):
    csrf = login(client, "admin")
    r = client.post(
        "/registers/requests",
        data={"csrf_token": csrf, "applicant": "李四", "subject": "工资", "via": "web", "received": "2099-01-01T09:00"},
    )
    assert r.status_code == 422 and "收到时间不能晚于现在" in r.text
    assert 'value="李四"' in r.text and "工资</textarea>" in r.text
    r = client.post("/registers/requests", data={"csrf_token": csrf, "applicant": "李四", "subject": "x", "via": "x"})
    assert r.status_code == 422 and "请选择收到的途径" in r.text
    assert _rows(app, DisclosureRequest) == [] and _audit(app, "disclosure_request") == []


def test_complaints_are_added_and_closed_with_a_resolution(app, client, login):
    csrf = login(client, "admin")
    r = client.post(
        "/registers/complaints",
        data={"csrf_token": csrf, "complainant": "王五", "subject": "招生信息未公开", "via": "phone"},
    )
    assert r.status_code == 303
    [c] = _rows(app, Complaint)
    assert 'data-outcome="open"' in _row(client.get("/registers/complaints").text, f"r{c.id}")
    r = client.post(f"/registers/complaints/{c.id}/close", data={"csrf_token": csrf, "outcome": "upheld"})
    assert r.status_code == 422 and "请填写处理情况" in r.text
    r = client.post(
        f"/registers/complaints/{c.id}/close",
        data={"csrf_token": csrf, "outcome": "upheld", "resolution": "已补充公开"},
    )
    assert r.status_code == 303
    entry = _row(client.get("/registers/complaints?state=closed").text, f"r{c.id}")
    assert "属实" in entry and "已补充公开" in entry
    assert _audit(app, "complaint") == [("create", "admin"), ("close", "admin")]


# ------------------------------------------------------------------------------------ the public form
def _form(client):
    page = client.get("/apply")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


APPLICATION = {"applicant": "赵六", "contact": "zhao@example.com", "subject": "2023年本科招生计划分专业人数"}


def test_the_public_form_files_a_request_and_gives_a_receipt(app, client, login):
    token = _form(client)
    r = client.post("/apply", data={**APPLICATION, "csrf_token": token})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"  # it names the applicant
    receipt = RECEIPT.search(r.text).group(1)
    [req] = _rows(app, DisclosureRequest)
    assert (req.receipt_no, req.applicant, req.contact, req.via) == (receipt, "赵六", "zhao@example.com", "web")
    assert req.recorded_by == "public-form" and req.outcome == "open"
    d = req.due_on
    assert f'id="due-on">{d.year}年{d.month}月{d.day}日<' in r.text
    # pressed twice (or Back and send): the same request, the same receipt, not a second entry
    again = client.post("/apply", data={**APPLICATION, "csrf_token": token})
    assert RECEIPT.search(again.text).group(1) == receipt and "此前已经收到" in again.text
    assert len(_rows(app, DisclosureRequest)) == 1
    # the office sees it in its register, with the receipt and the contact
    client.cookies.clear()
    login(client, "admin")
    entry = _row(client.get("/registers/requests").text, f"r{req.id}")
    assert receipt in entry and "zhao@example.com" in entry and "网上申请表" in entry


def test_the_public_form_refuses_a_forged_post(app, client):
    # no token cookie (a post from another site's page carries none: the cookie is SameSite=Strict)
    r = client.post("/apply", data={**APPLICATION, "csrf_token": "x" * 32})
    assert r.status_code == 403 and "表单已过期或来自其他网站" in r.text
    assert 'value="赵六"' in r.text  # what was typed comes back, with a fresh token
    token = _form(client)
    assert client.post("/apply", data={**APPLICATION, "csrf_token": "y" * 32}).status_code == 403
    r = client.post("/apply", data={**APPLICATION, "csrf_token": token}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    assert _rows(app, DisclosureRequest) == []
    r = client.post("/apply", data={**APPLICATION, "csrf_token": token}, headers={"Origin": "http://testserver"})
    assert r.status_code == 200 and RECEIPT.search(r.text)
    # the cookie is the form's alone: strict, HttpOnly
    cookie = client.get("/apply").headers.get("set-cookie", "")
    assert "samesite=strict" in cookie.lower() and "httponly" in cookie.lower()


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("applicant", "  ", "请填写申请人姓名或单位名称"),
        ("contact", "", "请填写联系方式"),
        ("subject", "\n\t ", "请填写所需信息的内容描述"),
        ("subject", "长" * 2001, "内容描述超过 2000 字"),
        ("applicant", "张三\n李四", "申请人含有换行或控制字符"),
        ("contact", "138\x1b[2J", "联系方式含有换行或控制字符"),
        ("applicant", "张三\u202egnp.exe", "申请人含有换行或控制字符"),
    ],
)
def test_hostile_input_is_refused_with_the_reason_and_nothing_is_written(app, client, field, value, message):
    token = _form(client)
    r = client.post("/apply", data={**APPLICATION, field: value, "csrf_token": token})
    assert r.status_code == 422 and message in r.text, r.text[:2000]
    assert _rows(app, DisclosureRequest) == [] and _audit(app, "disclosure_request") == []


def test_markup_is_kept_as_text_and_a_nul_never_reaches_the_store(app, client, login):
    token = _form(client)
    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    r = client.post("/apply", data={**APPLICATION, "subject": evil, "csrf_token": token})
    assert r.status_code == 200 and "<script>alert(1)" not in r.text and "&lt;script&gt;" in r.text
    r = client.post(
        "/apply",
        content=f"csrf_token={token}&applicant=a%00b&contact=c&subject=d".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400
    [req] = _rows(app, DisclosureRequest)
    assert req.subject == evil
    client.cookies.clear()
    login(client, "admin")
    page = client.get("/registers/requests").text
    assert "<script>alert(1)" not in page and 'onerror="alert(2)"' not in page


def test_the_public_form_is_rate_limited_per_address_refusals_included(make_app):
    app = make_app(registers={"apply_per_address": 3})
    with served(app) as (c, _):
        token = _form(c)
        assert c.post("/apply", data={**APPLICATION, "applicant": "", "csrf_token": token}).status_code == 422
        for n in (1, 2):
            assert c.post("/apply", data={**APPLICATION, "subject": f"第{n}项", "csrf_token": token}).status_code == 200
        r = c.post("/apply", data={**APPLICATION, "subject": "第3项", "csrf_token": token})
        assert r.status_code == 429 and "同一网络地址 60 分钟内提交超过 3 次" in r.text and "第3项</textarea>" in r.text
    assert len(_rows(app, DisclosureRequest)) == 2


def test_the_guide_shows_the_offices_details_and_time_limits_from_settings(make_app):
    app = make_app(
        registers={"request_working_days": 10, "extension_working_days": 5},
        office={"name": "党政办公室（信息公开办公室）", "address": "行政楼201室", "phone": "0452-1234567"},
    )
    with served(app) as (c, _):
        page = c.get("/guide")
        assert page.status_code == 200
        for text in (
            "党政办公室（信息公开办公室）",
            "行政楼201室",
            "0452-1234567",
            "10 个工作日内答复",
            "最多 5 个工作日",
        ):
            assert text in page.text, text
        assert 'href="/apply"' in page.text and "电子邮箱" not in page.text  # no e-mail set: no line for it
        en = c.get("/guide?lang=en").text
        assert "within 10 working days" in en and "at most 5 working days" in en
        assert "10 个工作日内答复" in c.get("/apply?lang=zh").text  # the English choice was kept in a cookie


@contextmanager
def _uvicorn(app):
    """``publisher serve``'s server (its proxy options included) on a free port, in a thread."""
    import socket
    import threading
    import time

    import uvicorn

    from publisher.web import create_app, proxy_options

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    srv = uvicorn.Server(uvicorn.Config(create_app(app), log_level="warning", lifespan="off", **proxy_options(app)))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("trusted", [["127.0.0.1"], []], ids=["proxy-trusted", "no-proxy-trusted"])
def test_behind_a_trusted_proxy_each_client_is_counted_apart(make_app, trusted):
    """nginx in front passes the client in X-Forwarded-For and the Host it was asked for as its own: with
    the proxy listed in [web] forwarded_allow_ips each client has its own count, and the Origin of the
    workspace's public address ([notify] web_base_url) is this site's. Unlisted, the header is ignored."""
    import httpx

    app = make_app(
        registers={"apply_per_address": 1},
        web={"forwarded_allow_ips": trusted},
        notify={"web_base_url": "https://xxgk.example.edu.cn/"},
    )
    with _uvicorn(app) as base, httpx.Client(base_url=base) as c:
        token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/apply").text).group(1)
        headers = {"Origin": "https://xxgk.example.edu.cn", "X-Forwarded-Proto": "https"}

        def send(client_ip, n):
            data = {**APPLICATION, "subject": f"第{n}项", "csrf_token": token}
            return c.post("/apply", data=data, headers={**headers, "X-Forwarded-For": client_ip}).status_code

        assert send("203.0.113.5", 1) == 200
        assert send("203.0.113.5", 2) == 429
        assert send("203.0.113.6", 3) == (200 if trusted else 429)
