"""A 企业微信 corp API sandbox for application messages (应用消息), as the API documents them.

* ``GET /cgi-bin/gettoken?corpid=ID&corpsecret=SECRET``: a wrong corpid is 40013, a wrong secret
  40001, a caller outside the trusted IPs (``trusted=False``) 60020; else ``{"errcode": 0,
  "access_token": …, "expires_in": ttl}``. Within a token's validity gettoken returns the same token.
* ``POST /cgi-bin/message/send?access_token=T``: no token 41001, an unknown one 40014, an expired one
  42001 (:meth:`WecomAppSandbox.expire_tokens` ends every token now, as the 7200 s do); a wrong
  ``agentid`` 40056 (the secret is that app's); msgtype ``text`` (``content``, cut at 2048 bytes) or
  ``textcard`` (``title`` cut at 128 bytes, ``description`` at 512, ``url`` required) else 40008;
  empty content 44004. ``touser`` is "|"-separated userids, matched without regard to case: none
  valid → 81013, empty → 82001; some valid → ``errcode`` 0 with the others, lower-cased, in
  ``invaliduser``; a member without a licence (``unlicensed``) is not reached and is listed in
  ``unlicenseduser``. More than ``per_minute`` sends a minute → 45009.
* ``enable_duplicate_check: 1`` with ``duplicate_check_interval`` (seconds, default 1800, at most
  14400): a message with the same recipients, msgtype and content as one taken within the interval is
  answered ok and not delivered again (kept in the ledger as "duplicate").

Every delivered message is kept in :attr:`messages` (``touser`` the valid userids). Faults as the
robots' (:mod:`channels.sandbox._robot`): ``transient``, ``ambiguous``, ``stall``,
``taken_then_stall``. ``python -m channels.sandbox.wecom_app --port N``.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

from channels.sandbox._http import DROP, Late, Reply, Request, serve_main
from channels.sandbox._robot import RobotSandbox
from publisher.channel import SandboxHandle

TEXT_LIMIT, TITLE_LIMIT, DESCRIPTION_LIMIT = 2048, 128, 512


def _err(code: int, msg: str) -> Reply:
    return Reply(200, {"errcode": code, "errmsg": f"{msg}, hint: [sandbox]"})


def _cut(text: str, limit: int) -> str:
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


class WecomAppSandbox(RobotSandbox):
    def __init__(
        self,
        *,
        corpid: str = "ww-sandbox-corp",
        secret: str = "sandbox-app-secret",
        agentid: int = 1000002,
        users: tuple[str, ...] = (),
        unlicensed: tuple[str, ...] = (),
        token_ttl: int = 7200,
        trusted: bool = True,
        **kw: Any,
    ) -> None:
        kw.setdefault("per_minute", 600)
        super().__init__(**kw)
        self.corpid, self.secret, self.agentid = corpid, secret, agentid
        #: the members (userids, as typed in the console; matched without regard to case)
        self.users = {u.lower(): u for u in users}
        #: members without the basic interface licence (基础接口许可): listed in ``unlicenseduser``, not reached
        self.unlicensed = {u.lower() for u in unlicensed}
        self.token_ttl = token_ttl
        #: False: this caller's IP is not among the app's 企业可信IP (60020)
        self.trusted = trusted
        #: token -> monotonic expiry
        self.tokens: dict[str, float] = {}
        #: (recipients, msgtype, content) -> monotonic time taken, for enable_duplicate_check
        self._recent: dict[tuple[str, str, str], float] = {}

    def expire_tokens(self) -> None:
        """Every token issued so far expires now (42001 from here on), as after 7200 s."""
        with self.lock:
            self.tokens = {t: 0.0 for t in self.tokens}

    def handle(self, req: Request) -> Reply | object:
        if req.method == "GET" and req.path == "/cgi-bin/gettoken":
            return self._gettoken(req)
        if req.method == "POST" and req.path == "/cgi-bin/message/send":
            return self._send(req)
        return Reply(404, {"errcode": 404, "errmsg": f"no route {req.method} {req.path}"})

    def _gettoken(self, req: Request) -> Reply:
        self.ledger.append({"action": "gettoken"})
        if not self.trusted:
            return _err(60020, "not allow to access from your ip")
        if req.query.get("corpid") != self.corpid:
            return _err(40013, "invalid corpid")
        if req.query.get("corpsecret") != self.secret:
            return _err(40001, "invalid credential")
        now = time.monotonic()
        live = [t for t, until in self.tokens.items() if until > now]
        token = live[0] if live else secrets.token_urlsafe(24)
        if not live:
            self.tokens[token] = now + self.token_ttl
        left = int(self.tokens[token] - now)
        return Reply(200, {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": left})

    def _send(self, req: Request) -> Reply | object:
        token = req.query.get("access_token", "")
        if not token:
            return _err(41001, "access_token missing")
        if token not in self.tokens:
            self.ledger.append({"action": "refused", "errcode": 40014})
            return _err(40014, "invalid access_token")
        if self.tokens[token] <= time.monotonic():
            self.ledger.append({"action": "refused", "errcode": 42001})
            return _err(42001, "access_token expired")
        try:
            body = req.json()
        except (ValueError, UnicodeDecodeError):
            return _err(40058, "invalid json")
        if not isinstance(body, dict):
            return _err(40058, "invalid json")
        if body.get("agentid") != self.agentid:
            return _err(40056, "invalid agentid")
        msgtype = body.get("msgtype")
        part = body.get(msgtype) if isinstance(body.get(msgtype), dict) else {}
        if msgtype == "text":
            content = {"content": _cut(str(part.get("content") or ""), TEXT_LIMIT)}
            if not content["content"]:
                return _err(44004, "empty content")
        elif msgtype == "textcard":
            content = {
                "title": _cut(str(part.get("title") or ""), TITLE_LIMIT),
                "description": _cut(str(part.get("description") or ""), DESCRIPTION_LIMIT),
                "url": str(part.get("url") or ""),
                "btntxt": str(part.get("btntxt") or "详情"),
            }
            if not content["title"] or not content["description"]:
                return _err(44004, "empty content")
            if not content["url"]:
                return _err(40058, "textcard url missing")
        else:
            return _err(40008, "invalid message type")
        asked = [u for u in str(body.get("touser") or "").split("|") if u]
        if not asked:
            return _err(82001, "All touser & toparty & totag invalid")
        valid = [self.users[u.lower()] for u in asked if u.lower() in self.users and u.lower() not in self.unlicensed]
        invalid = [u.lower() for u in asked if u.lower() not in self.users]
        unlicensed = [u.lower() for u in asked if u.lower() in self.unlicensed]
        if unlicensed and not valid:
            return self._answer(invalid, unlicensed)
        if not valid:
            self.ledger.append({"action": "refused", "errcode": 81013, "touser": asked})
            return _err(81013, "user & party & tag all invalid")
        if self.over_limit(f"agent{self.agentid}"):
            self.ledger.append({"action": "refused", "errcode": 45009})
            return _err(45009, "api freq out of limit")
        now = time.monotonic()
        key = ("|".join(sorted(valid)), msgtype, json.dumps(content, ensure_ascii=False, sort_keys=True))
        if body.get("enable_duplicate_check") == 1:
            interval = min(int(body.get("duplicate_check_interval") or 1800), 14400)
            if now - self._recent.get(key, -1e18) < interval:
                self.ledger.append({"action": "duplicate", "touser": valid, "msgtype": msgtype})
                return self._answer(invalid, unlicensed)
        fault = self.take_fault()
        if fault == "transient":
            return Reply(502, "<html><body>502 Bad Gateway</body></html>")
        self._recent[key] = now
        self.messages.append({"touser": valid, "msgtype": msgtype, **content})
        self.ledger.append({"action": "send", "touser": valid, "msgtype": msgtype})
        if fault == "ambiguous":
            return DROP
        if fault == "taken_then_stall":
            self.ledger.append({"action": "stalled", "touser": valid})
            return Late(DROP, self.stall_seconds)
        return self._answer(invalid, unlicensed)

    def _answer(self, invalid: list[str], unlicensed: list[str]) -> Reply:
        return Reply(
            200,
            {
                "errcode": 0,
                "errmsg": "ok",
                "invaliduser": "|".join(invalid),
                "invalidparty": "",
                "invalidtag": "",
                "unlicenseduser": "|".join(unlicensed),
                "msgid": secrets.token_hex(8),
            },
        )


def demo_sandbox(workdir: Path) -> SandboxHandle:
    """The ``publisher.sandboxes`` entry point: the corp API with the demo's people as members."""
    sandbox = WecomAppSandbox(
        corpid="ww-demo-corp", secret="demo-wecom-app-secret", users=("wangzhuren", "zhangshencha", "libianji")
    )
    base = sandbox.start()
    return SandboxHandle(
        config={},  # no channel: the [notify.transports] table below
        notify={
            "wecom_app": {
                "type": "wecom_app",
                "api_base": base,
                "corpid": "ww-demo-corp",
                "agentid": sandbox.agentid,
                "secret_env": "PUBLISHER_DEMO_WECOM_APP_SECRET",
                "rate_per_minute": 600,
            }
        },
        environ={"PUBLISHER_DEMO_WECOM_APP_SECRET": "demo-wecom-app-secret"},
        stop=sandbox.stop,
        describe=f"the 企业微信 corp API (application messages) at {base}/cgi-bin/",
    )


def main() -> None:
    def add_args(p):
        p.add_argument("--corpid", default="ww-sandbox-corp")
        p.add_argument("--secret", default="sandbox-app-secret")
        p.add_argument("--agentid", type=int, default=1000002)
        p.add_argument("--users", default="", help="comma-separated userids of the members")
        p.add_argument("--token-ttl", type=int, default=7200)

    serve_main(
        lambda a: WecomAppSandbox(
            corpid=a.corpid,
            secret=a.secret,
            agentid=a.agentid,
            users=tuple(u for u in a.users.split(",") if u),
            token_ttl=a.token_ttl,
            host=a.host,
            port=a.port,
        ),
        add_args,
        "企业微信 corp API sandbox (application messages)",
    )


if __name__ == "__main__":
    main()
