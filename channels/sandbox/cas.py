"""A CAS server as the Apereo CAS Protocol 3.0 specification describes it, for tests and the demo.

``/cas/login`` (a log-in form; a ``CASTGC`` cookie for single sign-on), ``/cas/serviceValidate``
(CAS 2.0: the user only) and ``/cas/p3/serviceValidate`` (3.0: with ``<cas:attributes>``),
``/cas/logout`` (ends the SSO session and POSTs a SAML ``logoutRequest`` to every service it gave a
ticket to, the back-channel single logout of spec section 2.3.3 / Apereo's SLO).

Service tickets are ``ST-`` plus random data, valid for one validation attempt only, successful or
not (spec 3.5), and for ``ticket_seconds`` (Apereo's default: 10 s). Failures carry the spec's codes:
``INVALID_REQUEST``, ``INVALID_TICKET`` (unknown, used or expired), ``INVALID_SERVICE`` (the ticket was
issued for another service; the ticket is spent all the same).
"""

from __future__ import annotations

import argparse
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode
from xml.sax.saxutils import escape

import requests

from channels.sandbox._http import HttpSandbox, Reply, Request, serve_main
from channels.sandbox.campus import DEMO_PASSWORD, Account, demo_accounts, login_page
from publisher.channel import SandboxHandle

CAS_NS = "http://www.yale.edu/tp/cas"
TGC = "CASTGC"


@dataclass
class _Ticket:
    service: str
    uid: str
    tgt: str
    expires: float


@dataclass
class _Sso:
    uid: str
    #: (service, ticket) of every ticket this SSO session issued: the single logout tells each
    services: list[tuple[str, str]] = field(default_factory=list)


class CasServer(HttpSandbox):
    """The CAS server; ``accounts`` default to :func:`channels.sandbox.campus.demo_accounts`."""

    fault_kinds = ("transient",)

    def __init__(self, *, accounts: dict[str, Account] | None = None, ticket_seconds: float = 10.0, **kw: Any) -> None:
        super().__init__(**kw)
        self.accounts = accounts if accounts is not None else demo_accounts()
        self.ticket_seconds = ticket_seconds
        self.tickets: dict[str, _Ticket] = {}
        self.sessions: dict[str, _Sso] = {}

    @property
    def cas_url(self) -> str:
        return self.base_url + "/cas"

    # -- requests -------------------------------------------------------------------------------------
    def handle(self, req: Request) -> Reply:
        routes = {
            ("GET", "/cas/login"): self._login_form,
            ("POST", "/cas/login"): self._login,
            ("GET", "/cas/serviceValidate"): lambda r: self._validate(r, attributes=False),
            ("GET", "/cas/p3/serviceValidate"): lambda r: self._validate(r, attributes=True),
            ("GET", "/cas/logout"): self._logout,
        }
        route = routes.get((req.method, req.path))
        if route is None:
            return Reply(404, "no such CAS endpoint", content_type="text/plain; charset=utf-8")
        return route(req)

    def _cookie(self, req: Request) -> str | None:
        for part in req.headers.get("cookie", "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == TGC and v in self.sessions:
                return v
        return None

    def _login_form(self, req: Request) -> Reply:
        service = req.query.get("service", "")
        tgt = self._cookie(req)
        if tgt and service and req.query.get("renew") != "true":
            return self._to_service(tgt, service)
        return Reply(200, login_page(action="/cas/login", hidden={"service": service}, title="统一身份认证 CAS"))

    def _login(self, req: Request) -> Reply:
        form = req.form()
        service = form.get("service", "")
        account = self.accounts.get(form.get("username", ""))
        if account is None or not secrets.compare_digest(account.password, form.get("password", "")):
            self.record("login_failed", username=form.get("username", ""))
            page = login_page(
                action="/cas/login", hidden={"service": service}, title="统一身份认证 CAS", error="用户名或密码错误"
            )
            return Reply(401, page)
        tgt = "TGT-" + secrets.token_urlsafe(32)
        self.sessions[tgt] = _Sso(uid=account.uid)
        self.record("login", uid=account.uid)
        if not service:
            return Reply(200, "<!doctype html><p>已登录 / Logged in</p>", headers=self._set_tgc(tgt))
        return self._to_service(tgt, service)

    def _set_tgc(self, tgt: str) -> dict[str, str]:
        return {"Set-Cookie": f"{TGC}={tgt}; Path=/cas; HttpOnly; SameSite=Lax"}

    def _to_service(self, tgt: str, service: str) -> Reply:
        st = "ST-" + secrets.token_urlsafe(32)
        sso = self.sessions[tgt]
        self.tickets[st] = _Ticket(
            service=service, uid=sso.uid, tgt=tgt, expires=time.monotonic() + self.ticket_seconds
        )
        sso.services.append((service, st))
        self.record("ticket", uid=sso.uid, service=service)
        target = service + ("&" if "?" in service else "?") + urlencode({"ticket": st})
        return Reply(302, "", headers={"Location": target, **self._set_tgc(tgt)})

    def _validate(self, req: Request, *, attributes: bool) -> Reply:
        service, st = req.query.get("service"), req.query.get("ticket")
        if not service or not st:
            return self._failure("INVALID_REQUEST", "service and ticket parameters are both required")
        ticket = self.tickets.pop(st, None)  # one validation attempt, whatever its outcome
        if ticket is None:
            self.record("validate_refused", code="INVALID_TICKET", reason="unknown")
            return self._failure("INVALID_TICKET", f"Ticket {st} not recognized")
        if time.monotonic() > ticket.expires:
            self.record("validate_refused", code="INVALID_TICKET", reason="expired")
            return self._failure("INVALID_TICKET", f"Ticket {st} expired")
        if service != ticket.service:
            self.record("validate_refused", code="INVALID_SERVICE", service=service)
            return self._failure("INVALID_SERVICE", f"Ticket {st} does not match supplied service {service}")
        self.record("validate", uid=ticket.uid, service=service, attributes=attributes)
        xml = f"<cas:user>{escape(ticket.uid)}</cas:user>"
        if attributes:
            attrs = "".join(
                f"<cas:{name}>{escape(v)}</cas:{name}>"
                for name, values in self.accounts[ticket.uid].attributes.items()
                for v in values
            )
            when = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
            xml += (
                f"<cas:attributes><cas:authenticationDate>{when}</cas:authenticationDate>"
                f"<cas:isFromNewLogin>true</cas:isFromNewLogin>{attrs}</cas:attributes>"
            )
        return self._xml(f"<cas:authenticationSuccess>{xml}</cas:authenticationSuccess>")

    def _failure(self, code: str, text: str) -> Reply:
        return self._xml(f'<cas:authenticationFailure code="{code}">{escape(text)}</cas:authenticationFailure>')

    def _xml(self, inner: str) -> Reply:
        body = f"<cas:serviceResponse xmlns:cas='{CAS_NS}'>{inner}</cas:serviceResponse>"
        return Reply(200, body.encode("utf-8"), content_type="application/xml; charset=UTF-8")

    def _logout(self, req: Request) -> Reply:
        tgt = self._cookie(req)
        sso = self.sessions.pop(tgt, None) if tgt else None
        for service, st in sso.services if sso else []:
            self._single_logout(service, st)
        clear = {"Set-Cookie": f"{TGC}=; Path=/cas; Max-Age=0"}
        target = req.query.get("service")
        if target:
            return Reply(302, "", headers={"Location": target, **clear})
        return Reply(200, "<!doctype html><p>已退出 / Logged out</p>", headers=clear)

    def _single_logout(self, service: str, st: str) -> None:
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        xml = (
            '<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
            f'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="LR-{secrets.token_hex(8)}" Version="2.0" '
            f'IssueInstant="{now}"><saml:NameID>@NOT_USED@</saml:NameID>'
            f"<samlp:SessionIndex>{escape(st)}</samlp:SessionIndex></samlp:LogoutRequest>"
        )
        try:
            r = requests.post(service.split("?")[0], data={"logoutRequest": xml}, timeout=5)
            self.record("single_logout", service=service, status=r.status_code)
        except requests.RequestException as exc:  # a service that is down misses its logout, as with Apereo
            self.record("single_logout", service=service, error=type(exc).__name__)

    # -- tests ----------------------------------------------------------------------------------------
    def ticket_for(self, uid: str, service: str) -> str:
        """Sign ``uid`` in as the form would and return the service ticket (for HTTP tests)."""
        with self.lock:
            tgt = "TGT-" + secrets.token_urlsafe(32)
            self.sessions[tgt] = _Sso(uid=uid)
            location = self._to_service(tgt, service).headers["Location"]
        return parse_qs(location.split("?", 1)[1])["ticket"][0]


def demo_sandbox(workdir: Path) -> SandboxHandle:
    """The ``publisher.sandboxes`` entry point: a running CAS server and the ``[auth.cas]`` table for it."""
    server = CasServer()
    server.start()
    return SandboxHandle(
        config={},
        auth={"cas": {"server_url": server.cas_url, "version": 3, "service_base_url": "http://127.0.0.1:8000"}},
        stop=server.stop,
        describe=f"a campus CAS server at {server.cas_url}/login (account zhang.san, password {DEMO_PASSWORD})",
    )


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ticket-seconds", type=float, default=10.0)


if __name__ == "__main__":
    serve_main(lambda a: CasServer(host=a.host, port=a.port, ticket_seconds=a.ticket_seconds), _args, __doc__ or "")
