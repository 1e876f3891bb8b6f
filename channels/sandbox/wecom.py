"""A 企业微信 group-robot sandbox: ``POST /cgi-bin/webhook/send?key=KEY``, as the robot documents it.

* ``key`` must be one of the robot keys the sandbox was made with, else errcode 93000
  ("invalid webhook url");
* the body is JSON: ``msgtype`` "text" (``text.content`` at most 2048 bytes, ``mentioned_list``,
  ``mentioned_mobile_list``) or "markdown" (``markdown.content`` at most 4096 bytes; ``<@userid>``
  mentions inside); another msgtype is 40008, empty content 44004, too long 40058;
* more than 20 messages a minute from one robot: 45009 ("api freq out of limit");
* answers ``{"errcode": 0, "errmsg": "ok"}``.

Faults: see :mod:`channels.sandbox._robot`. ``python -m channels.sandbox.wecom --port N``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from channels.sandbox._http import Reply, Request, serve_main
from channels.sandbox._robot import RobotSandbox
from publisher.channel import SandboxHandle

LIMITS = {"text": 2048, "markdown": 4096}


def _err(code: int, msg: str) -> Reply:
    return Reply(200, {"errcode": code, "errmsg": msg})


class WecomSandbox(RobotSandbox):
    def __init__(self, *, keys: tuple[str, ...] = ("sandbox-wecom-key",), **kw: Any) -> None:
        super().__init__(**kw)
        self.keys = set(keys)

    def handle(self, req: Request) -> Reply | object:
        if req.method != "POST" or req.path != "/cgi-bin/webhook/send":
            return Reply(404, {"errcode": 404, "errmsg": f"no route {req.method} {req.path}"})
        key = req.query.get("key", "")
        if key not in self.keys:
            self.ledger.append({"action": "refused", "errcode": 93000})
            return _err(93000, "invalid webhook url, hint: [sandbox]")
        try:
            body = req.json()
        except (ValueError, UnicodeDecodeError):
            return _err(40058, "invalid json, hint: [sandbox]")
        msgtype = body.get("msgtype") if isinstance(body, dict) else None
        if msgtype not in LIMITS:
            return _err(40008, "invalid message type, hint: [sandbox]")
        part = body.get(msgtype) or {}
        content = str(part.get("content") or "")
        if not content:
            return _err(44004, "empty content, hint: [sandbox]")
        if len(content.encode("utf-8")) > LIMITS[msgtype]:
            return _err(40058, f"content exceed max length {LIMITS[msgtype]}, hint: [sandbox]")
        if self.over_limit(key):
            self.ledger.append({"action": "refused", "errcode": 45009})
            return _err(45009, "api freq out of limit, hint: [sandbox]")
        if msgtype == "text":
            mentioned = [str(u) for u in part.get("mentioned_list") or []]
        else:
            mentioned = re.findall(r"<@([^>]+)>", content)
        return self.take(key, msgtype, content, mentioned)


def demo_sandbox(workdir: Path) -> SandboxHandle:
    """The ``publisher.sandboxes`` entry point: a running 企业微信 robot and the transport table for it."""
    # the robot's 20 a minute does not bind the demo's own sandbox (as the Weibo sandbox's hourly cap)
    sandbox = WecomSandbox(keys=("demo-wecom-key",), per_minute=600)
    base = sandbox.start()
    return SandboxHandle(
        config={},  # no channel: the [notify.transports] table below
        notify={
            "wecom": {
                "type": "wecom",
                "url": f"{base}/cgi-bin/webhook/send",
                "key_env": "PUBLISHER_DEMO_WECOM_KEY",
                "rate_per_minute": 600,
            }
        },
        environ={"PUBLISHER_DEMO_WECOM_KEY": "demo-wecom-key"},
        stop=sandbox.stop,
        describe=f"a 企业微信 group robot at {base}/cgi-bin/webhook/send",
    )


def main() -> None:
    def add_args(p):
        p.add_argument("--key", default="sandbox-wecom-key")
        p.add_argument("--per-minute", type=int, default=20)

    serve_main(
        lambda a: WecomSandbox(keys=(a.key,), per_minute=a.per_minute, host=a.host, port=a.port),
        add_args,
        "企业微信 group robot sandbox",
    )


if __name__ == "__main__":
    main()
