"""A 钉钉 custom-robot sandbox with the signed webhook (加签): ``POST /robot/send``, as documented.

* ``access_token`` must be the robot's, else errcode 300001 ("token is not exist");
* ``timestamp`` (milliseconds) more than an hour from the sandbox's clock: 310000 ("invalid
  timestamp"); ``sign`` not ``urlencode(base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}")))``:
  310000 ("sign not match");
* the body is JSON: ``msgtype`` "text" (``text.content``) or "markdown" (``markdown.title`` and
  ``markdown.text``), ``at.atUserIds`` / ``at.atMobiles``; another msgtype or empty content: 40035;
* more than 20 messages a minute: 130101 ("send too fast, exceed 20 times per minute"), and the
  robot refuses for 10 minutes after (``penalty_seconds``);
* answers ``{"errcode": 0, "errmsg": "ok"}``.

Faults: see :mod:`channels.sandbox._robot`. ``python -m channels.sandbox.dingtalk --port N``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from pathlib import Path
from typing import Any

from channels.sandbox._http import Reply, Request, serve_main
from channels.sandbox._robot import RobotSandbox
from publisher.channel import SandboxHandle


def _err(code: int, msg: str) -> Reply:
    return Reply(200, {"errcode": code, "errmsg": msg})


class DingtalkSandbox(RobotSandbox):
    def __init__(
        self,
        *,
        token: str = "sandbox-dingtalk-token",
        secret: str = "SECsandbox-dingtalk-secret",
        penalty_seconds: float = 600.0,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.token = token
        self.secret = secret
        self.penalty_seconds = penalty_seconds

    def expected_sign(self, timestamp: str) -> str:
        digest = hmac.new(self.secret.encode(), f"{timestamp}\n{self.secret}".encode(), hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    def _refuse(self, code: int, msg: str) -> Reply:
        self.ledger.append({"action": "refused", "errcode": code, "errmsg": msg})
        return _err(code, msg)

    def handle(self, req: Request) -> Reply | object:
        if req.method != "POST" or req.path != "/robot/send":
            return Reply(404, {"errcode": 404, "errmsg": f"no route {req.method} {req.path}"})
        if req.query.get("access_token") != self.token:
            return self._refuse(300001, "token is not exist")
        ts = req.query.get("timestamp", "")
        if not ts.isdigit() or abs(time.time() * 1000 - int(ts)) > 3600 * 1000:
            return self._refuse(310000, "invalid timestamp")
        # the query was URL-decoded by the server (parse_qs), as DingTalk decodes it
        if not hmac.compare_digest(req.query.get("sign", ""), self.expected_sign(ts)):
            return self._refuse(310000, "sign not match")
        try:
            body = req.json()
        except (ValueError, UnicodeDecodeError):
            return self._refuse(40035, "缺少参数 json")
        msgtype = body.get("msgtype") if isinstance(body, dict) else None
        if msgtype == "text":
            content = str((body.get("text") or {}).get("content") or "")
        elif msgtype == "markdown":
            md = body.get("markdown") or {}
            content = str(md.get("text") or "") if md.get("title") else ""
        else:
            return self._refuse(40035, "不合法的参数 msgtype")
        if not content:
            return self._refuse(40035, "缺少参数 content")
        if self.over_limit(self.token, penalty=self.penalty_seconds):
            return self._refuse(130101, "send too fast, exceed 20 times per minute")
        at = body.get("at") or {}
        mentioned = [str(u) for u in at.get("atUserIds") or []] + [str(m) for m in at.get("atMobiles") or []]
        return self.take(self.token, msgtype, content, mentioned)


def demo_sandbox(workdir: Path) -> SandboxHandle:
    """The ``publisher.sandboxes`` entry point: a running 钉钉 robot and the transport table for it."""
    # the robot's 20 a minute does not bind the demo's own sandbox (as the Weibo sandbox's hourly cap)
    sandbox = DingtalkSandbox(token="demo-dingtalk-token", secret="SECdemo-dingtalk-secret", per_minute=600)
    base = sandbox.start()
    return SandboxHandle(
        config={},  # no channel: the [notify.transports] table below
        notify={
            "dingtalk": {
                "type": "dingtalk",
                "url": f"{base}/robot/send",
                "token_env": "PUBLISHER_DEMO_DINGTALK_TOKEN",
                "secret_env": "PUBLISHER_DEMO_DINGTALK_SECRET",
                "rate_per_minute": 600,
            }
        },
        environ={
            "PUBLISHER_DEMO_DINGTALK_TOKEN": "demo-dingtalk-token",
            "PUBLISHER_DEMO_DINGTALK_SECRET": "SECdemo-dingtalk-secret",
        },
        stop=sandbox.stop,
        describe=f"a 钉钉 custom robot at {base}/robot/send (signed)",
    )


def main() -> None:
    def add_args(p):
        p.add_argument("--token", default="sandbox-dingtalk-token")
        p.add_argument("--secret", default="SECsandbox-dingtalk-secret")
        p.add_argument("--per-minute", type=int, default=20)

    serve_main(
        lambda a: DingtalkSandbox(token=a.token, secret=a.secret, per_minute=a.per_minute, host=a.host, port=a.port),
        add_args,
        "钉钉 custom robot sandbox (signed webhook)",
    )


if __name__ == "__main__":
    main()
