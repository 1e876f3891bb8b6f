"""Campus sign-in in Debian's Chromium: the full redirect walk through the CAS and OIDC sandboxes, the
log-out that also ends the CAS session, and a refusal as the user sees it. Screenshots go to
/tmp/web-shots/ (20-… to 25-…)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from channels.sandbox.campus import DEMO_PASSWORD
from channels.sandbox.cas import CasServer
from channels.sandbox.oidc import Client, OidcProvider
from publisher import accounts
from tests.web.conftest import PASSWORD
from tests.web.signin_helpers import MAPPING, free_socket, live_server
from tests.web.test_browser import SHOTS
from tests.web.test_browser import browser as browser  # the journey test's Chromium

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)]


@pytest.fixture
def campus(make_app: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, CasServer, OidcProvider, Any]]:
    sock = free_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("PUBLISHER_OIDC_CLIENT_SECRET", "browser-test-secret")
    cas, provider = (
        CasServer(),
        OidcProvider(clients={"publisher": Client((f"{base}/login/oidc/callback",), "browser-test-secret")}),
    )
    cas.start()
    provider.start()
    app = make_app(
        auth={
            "cas": {"server_url": cas.cas_url, "version": 3, "service_base_url": base},
            "oidc": {"issuer": provider.issuer, "client_id": "publisher", "redirect_base_url": base},
            "mapping": {**MAPPING, "display_name": ""},
        }
    )
    with live_server(app, sock):
        yield base, cas, provider, app
    cas.stop()
    provider.stop()


def _campus_form(page: Any, uid: str) -> None:
    page.fill('input[name="username"]', uid)
    page.fill('input[name="password"]', DEMO_PASSWORD)
    page.click("#campus-login")
    page.wait_for_load_state()


def test_cas_sign_in_and_out_in_chromium(campus, browser):
    base, cas, _, _ = campus
    page = browser.new_page()
    page.goto(f"{base}/login")
    page.screenshot(path=str(SHOTS / "20-login-campus.png"))
    page.click("#sso-cas")
    page.wait_for_url(f"{cas.cas_url}/login?service=*")
    page.screenshot(path=str(SHOTS / "21-cas-login.png"))
    _campus_form(page, "zhang.san")
    page.wait_for_url(f"{base}/items")  # an editor of 人事处 lands on the items list
    assert "zhang.san" in page.inner_text("header")
    page.screenshot(path=str(SHOTS / "22-cas-signed-in.png"))
    # a second visit to /login/cas signs straight in: the CAS server remembers the browser (CASTGC)
    page.goto(f"{base}/login/cas")
    page.wait_for_url(f"{base}/items")  # no form on the way
    page.goto(f"{base}/items")
    page.click("header form button")  # 退出: ends our session, then the CAS server's
    page.wait_for_url(f"{base}/login")
    assert [e["action"] for e in cas.ledger if e["action"] == "single_logout"]
    page.goto(f"{base}/login/cas")
    page.wait_for_url(f"{cas.cas_url}/login?service=*")  # the CAS session ended: the form again
    assert page.locator('input[name="password"]').count() == 1


def test_oidc_sign_in_in_chromium_and_a_refusal_as_the_user_sees_it(campus, browser):
    base, _, provider, _ = campus
    page = browser.new_page()
    page.goto(f"{base}/login")
    page.click("#sso-oidc")
    page.wait_for_url(f"{provider.issuer}/authorize?*")
    page.screenshot(path=str(SHOTS / "23-oidc-login.png"))
    _campus_form(page, "li.si")
    page.wait_for_url(f"{base}/review")  # a department head lands on the review queue
    assert "li.si" in page.inner_text("header")
    page.screenshot(path=str(SHOTS / "24-oidc-signed-in.png"))

    other = browser.new_page()
    other.context.clear_cookies()
    provider.fail_next("wrong_nonce")
    other.goto(f"{base}/login")
    other.click("#sso-oidc")
    _campus_form(other, "zhao.liu")
    alert = other.inner_text('[role="alert"]')
    assert "统一身份认证登录被拒绝" in alert and "nonce" in alert
    other.screenshot(path=str(SHOTS / "25-oidc-refused.png"))


def test_the_admin_overrides_a_campus_users_role_in_chromium(campus, browser):
    base, _, _, app = campus
    page = browser.new_page()
    page.goto(f"{base}/login/cas")
    _campus_form(page, "zhang.san")
    page.wait_for_url(f"{base}/items")
    page.click("header form button")
    page.wait_for_url(f"{base}/login")
    # the office's admin keeps a local password (docs/auth.md)
    with app.session() as s:
        accounts.set_password(s, name="admin", password=PASSWORD, actor="test")
    page.fill('input[name="username"]', "admin")
    page.fill('input[name="password"]', PASSWORD)
    page.click('form[action="/login"] button[type="submit"]')
    page.goto(f"{base}/admin/users")
    assert "zhang.san" in page.inner_text("#sign-ins")
    row = page.locator('tr[data-user="zhang.san"]')
    assert "统一身份认证" in row.inner_text()
    row.locator('select[name="role"]').select_option("viewer")
    row.locator("form.set-user button").click()
    page.wait_for_url(f"{base}/admin/users")
    row = page.locator('tr[data-user="zhang.san"]')
    assert "管理员设置" in row.inner_text() and "查看者" in row.inner_text()
    page.screenshot(path=str(SHOTS / "26-admin-users.png"), full_page=True)
