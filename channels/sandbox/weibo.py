"""A Weibo open-API sandbox (api.weibo.com): ``2/statuses/share.json`` and what the channel needs.

Follows the Weibo API documentation (open.weibo.com/wiki):

* ``POST /2/statuses/share.json`` (form or multipart with ``pic``): ``status`` must contain a link
  on the app's *safe domain* (安全域名) and be at most 140 characters, counted as Weibo does: a
  CJK/full-width character is 1, two ASCII characters are 1, and each link counts as a fixed
  length (the t.cn short link it becomes; ``url_weight``, default 12). Links in the stored text are
  replaced by ``http://t.cn/...`` short links as Weibo does. ``pic`` is JPEG/GIF/PNG under 5 MB.
* ``POST /2/statuses/destroy.json`` (``id``), ``GET /2/statuses/user_timeline.json`` (the posts made
  through this app), ``GET /2/account/rate_limit_status.json``, ``POST /oauth2/get_token_info``.
* errors are ``{"error", "error_code", "request"}``: 10014 no permission, 10023 user rate limit,
  20012 text too long, 20019 repeated content, 21327 expired token, 21332 invalid token...

Faults (``fail_next``): ``transient`` (10001 system error, HTTP 500), ``permanent`` (10014 no
permission), ``ambiguous`` (posts, then closes the connection), ``quota`` (10023), ``repeat``
(20019), ``expired`` (21327).
"""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from channels.sandbox._http import DROP, HttpSandbox, Reply, Request, serve_main
from publisher.channel import SandboxHandle

URL_RE = re.compile(r"https?://[^\s\u3000-\u303f\uff00-\uffef]+")
PIC_TYPES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG": "image/png", b"GIF8": "image/gif"}


def weibo_length(text: str, url_weight: int = 12) -> int:
    """Weibo's count: links fixed, ASCII half, everything else one; rounded up."""
    halves = 0
    for part in re.split(f"({URL_RE.pattern})", text):
        if URL_RE.fullmatch(part):
            halves += 2 * url_weight
        else:
            halves += sum(1 if ord(ch) < 128 else 2 for ch in part)
    return (halves + 1) // 2


class WeiboSandbox(HttpSandbox):
    fault_kinds = ("transient", "permanent", "ambiguous", "quota", "repeat", "expired")

    def __init__(
        self,
        *,
        access_token: str = "sandbox-weibo-token",
        safe_domain: str = "127.0.0.1",
        token_lifetime: timedelta = timedelta(days=30),
        hourly_limit: int = 30,
        uid: int = 7001234567,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.access_token = access_token
        self.safe_domain = safe_domain
        self.token_created = datetime.now(UTC)
        self.token_expires = self.token_created + token_lifetime
        self.hourly_limit = hourly_limit
        self.uid = uid
        self.statuses: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count(4_900_000_000_000_001)
        self._hits: list[datetime] = []

    def live_count(self) -> int:
        with self.lock:
            return sum(1 for s in self.statuses.values() if not s["deleted"])

    def _error(self, req: Request, status: int, code: int, error: str) -> Reply:
        return Reply(status, {"error": error, "error_code": code, "request": req.path})

    def handle(self, req: Request) -> Reply | object:
        m = re.fullmatch(rf"/{self.uid}/(\d+)", req.path)
        if m and req.method == "GET":
            s = self.statuses.get(int(m.group(1)))
            ok = s is not None and not s["deleted"]
            return Reply(200 if ok else 404, f"<html><body>{s['text'] if ok else '微博不存在'}</body></html>")
        params = {**req.query, **(req.form() if req.method == "POST" else {})}
        token = params.get("access_token") or req.headers.get("authorization", "").removeprefix("OAuth2 ")
        if req.path == "/oauth2/get_token_info":
            if token != self.access_token:
                return self._error(req, 403, 21332, "invalid_access_token")
            left = int((self.token_expires - datetime.now(UTC)).total_seconds())
            if left <= 0:
                return self._error(req, 403, 21327, "expired_token")
            return Reply(
                200,
                {
                    "uid": self.uid,
                    "appkey": "1234567890",
                    "scope": "",
                    "create_at": int(self.token_created.timestamp()),
                    "expire_in": left,
                },
            )
        if token != self.access_token:
            return self._error(req, 403, 21332, "invalid_access_token")
        if datetime.now(UTC) >= self.token_expires:
            return self._error(req, 403, 21327, "expired_token")
        if req.path == "/2/account/rate_limit_status.json":
            used = self._used()
            reset = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            return Reply(
                200,
                {
                    "ip_limit": 10000,
                    "limit_time_unit": "HOURS",
                    "remaining_ip_hits": 10000,
                    "remaining_user_hits": max(self.hourly_limit - used, 0),
                    "user_limit": self.hourly_limit,
                    "reset_time_in_seconds": int((reset - datetime.now(UTC)).total_seconds()),
                },
            )
        if req.path == "/2/statuses/user_timeline.json":
            count = int(params.get("count", 20))
            live = [s for s in sorted(self.statuses.values(), key=lambda s: -s["id"]) if not s["deleted"]]
            return Reply(200, {"statuses": [self._json(s) for s in live[:count]], "total_number": len(live)})
        if req.method != "POST":
            return self._error(req, 405, 10021, "HTTP method is not suported for this request")
        fault = self.take_fault()
        if fault == "transient":
            return self._error(req, 500, 10001, "System error")
        if fault == "permanent":
            return self._error(req, 403, 10014, "Insufficient app permissions")
        if fault == "quota":
            return self._error(req, 403, 10023, "User requests out of rate limit!")
        if fault == "repeat":
            return self._error(req, 400, 20019, "Repeat content!")
        if fault == "expired":
            return self._error(req, 403, 21327, "expired_token")
        if req.path == "/2/statuses/share.json":
            reply = self._share(req, params)
        elif req.path == "/2/statuses/destroy.json":
            reply = self._destroy(req, params)
        else:
            return self._error(req, 404, 10020, "Request api not found!")
        return DROP if fault == "ambiguous" else reply

    def _used(self) -> int:
        hour_ago = datetime.now(UTC) - timedelta(hours=1)
        self._hits = [t for t in self._hits if t > hour_ago]
        return len(self._hits)

    def _share(self, req: Request, params: dict[str, str]) -> Reply:
        text = params.get("status", "")
        if not text:
            return self._error(req, 400, 10016, "Miss required parameter (status) , see doc for more info.")
        if self._used() >= self.hourly_limit:
            return self._error(req, 403, 10023, "User requests out of rate limit!")
        links = URL_RE.findall(text)
        if not any(_on_domain(u, self.safe_domain) for u in links):
            return self._error(
                req,
                400,
                10017,
                "Parameter (status)'s value invalid, expect (text with a link of "
                "the app's safe domain), but get (" + text[:20] + "), see doc for more info.",
            )
        if weibo_length(text) > 140:
            return self._error(req, 400, 20012, "Text too long, please input text less than 140 characters!")
        pic = req.files().get("pic")
        if pic is not None:
            if len(pic[1]) >= 5 * 1024 * 1024:
                return self._error(req, 400, 20006, "Image size too large.")
            if not any(pic[1].startswith(magic) for magic in PIC_TYPES):
                return self._error(req, 400, 20005, "Unsupported image type, only suport JPG, GIF, PNG!")
        stored = URL_RE.sub(lambda m: f"http://t.cn/A6{abs(hash(m.group(0))) % 10**6:06d}", text)
        day_ago = datetime.now(UTC) - timedelta(hours=24)
        if any(s["text"] == stored and not s["deleted"] and s["created"] > day_ago for s in self.statuses.values()):
            return self._error(req, 400, 20019, "Repeat content!")
        self._hits.append(datetime.now(UTC))
        sid = next(self._ids)
        self.statuses[sid] = {
            "id": sid,
            "text": stored,
            "sent": text,
            "pic": pic is not None,
            "created": datetime.now(UTC),
            "deleted": False,
        }
        self.record("share", id=sid, text=text, pic=pic is not None)
        return Reply(200, self._json(self.statuses[sid]))

    def _destroy(self, req: Request, params: dict[str, str]) -> Reply:
        s = self.statuses.get(int(params.get("id", "0") or 0))
        if s is None or s["deleted"]:
            return self._error(req, 400, 20101, "Target weibo does not exist!")
        s["deleted"] = True
        self.record("destroy", id=s["id"])
        return Reply(200, self._json(s))

    def _json(self, s: dict[str, Any]) -> dict[str, Any]:
        return {
            "created_at": s["created"].strftime("%a %b %d %H:%M:%S +0000 %Y"),
            "id": s["id"],
            "idstr": str(s["id"]),
            "mid": str(s["id"]),
            "text": s["text"],
            "user": {"id": self.uid, "idstr": str(self.uid), "screen_name": "示范大学"},
        }


def _on_domain(url: str, domain: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host == domain or host.endswith("." + domain)


def main() -> None:
    def add_args(p):
        p.add_argument("--access-token", default="sandbox-weibo-token")
        p.add_argument("--safe-domain", default="127.0.0.1")

    serve_main(
        lambda a: WeiboSandbox(access_token=a.access_token, safe_domain=a.safe_domain, host=a.host, port=a.port),
        add_args,
        "Weibo open API sandbox",
    )


if __name__ == "__main__":
    main()


def demo_sandbox(workdir: Path) -> SandboxHandle:
    """The ``publisher.sandboxes`` entry point: a running Weibo API and the weibo table for it."""
    sandbox = WeiboSandbox(access_token="demo-weibo-token", safe_domain="127.0.0.1")
    base = sandbox.start()
    return SandboxHandle(
        config={
            "type": "weibo",
            "api_base": base,
            "web_base": base,
            "safe_domain": "127.0.0.1",
            "access_token_env": "PUBLISHER_DEMO_WEIBO_TOKEN",
            "rate_per_minute": 600,
        },  # the real API's hourly cap does not apply to the sandbox
        environ={"PUBLISHER_DEMO_WEIBO_TOKEN": "demo-weibo-token"},
        stop=sandbox.stop,
        describe=f"a Weibo API at {base}/2/statuses/share.json",
    )
