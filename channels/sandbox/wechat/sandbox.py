"""A WeChat Official Account API emulator on loopback, written from WeChat's documentation.

What it emulates (paths as on ``https://api.weixin.qq.com``):

* ``GET /cgi-bin/token`` and ``POST /cgi-bin/stable_token``: tokens expire (``token_ttl``) and each
  ``/token`` fetch invalidates the previous token after an overlap (``token_overlap``, 5 minutes as
  documented). Business calls answer 41001 (missing), 40001 (not the latest / unknown) or 42001
  (expired).
* ``media/uploadimg`` (jpg/png, < 1 MB), ``material/add_material`` (``image`` ≤ 10 MB
  bmp/png/jpeg/gif; ``thumb`` ≤ 64 KB JPG), multipart field ``media``.
* ``draft/add|get|update|delete|count|batchget``: title ≤ 32 (45003), author ≤ 16 (45110), digest
  ≤ 128 (45004), content < 20,000 characters and < 1 MB (45002), thumb must be permanent material
  (40007); ``<script>`` and images not hosted by WeChat are stripped from the stored content.
* ``freepublish/submit|get|delete|getarticle|batchget``: a submitted job finishes after
  ``publish_delay`` seconds; the draft leaves the box when published; a signed PUBLISHJOBFINISH
  event is POSTed to ``callback_url`` (plain or AES safe mode), retried 3 times like WeChat. A
  deleted article stays in ``getarticle`` and ``batchget`` with ``is_deleted`` true on its items.
* ``message/mass/sendall`` with ``clientmsgid`` de-duplication (45065).
* ``/datacube/getarticlesummary|getarticletotal`` (1-day span) and ``getusersummary|getusercumulate``
  (7-day span), ``end_date`` ≤ yesterday in Beijing time (61501), deterministic plausible numbers.

Bodies are parsed whatever the Content-Type says (wechatpy sends none with its JSON).

Each API area is a mixin in its own module (``tokens``, ``media``, ``drafts``, ``publish``,
``datacube``); :class:`WeChatSandbox` composes them and holds the state, the steering and the
dispatch. ``server`` is the HTTP handler, ``__main__`` runs the sandbox as a process.

Steering (Python: :meth:`WeChatSandbox.inject`, ``ledger()``, ``backdate()``; HTTP for a separate
process: ``POST /__sandbox__/faults`` with the same JSON, ``GET /__sandbox__/ledger``,
``POST /__sandbox__/backdate``, ``POST /__sandbox__/config``, ``POST /__sandbox__/reset``).

Fault kinds: ``errcode`` (any code, e.g. -1, 45009, 45011, 48001, 53503, 40001), aliases ``busy``,
``quota_daily``, ``quota_minute``; ``timeout`` (the call takes effect, then the answer waits
``seconds`` — longer than the client's timeout, it is the ambiguous case); ``lost_answer`` (the
call takes effect, then the connection is closed with no answer at all: the same ambiguity at once,
without waiting out a timeout); ``http500``;
``expire_token`` (every live token expires now); ``audit`` (the next publish job ends with
``status``, default 4 = rejected by the platform audit).

Chaos runs draw faults at random instead (``fault_rate``, ``fault_mix``; ``--fault-rate`` and
``--fault-mix`` for a process, or ``POST /__sandbox__/config``): with no fault queued, that share of
the business calls (never the token endpoints) gets a kind from the mix, ``errcode:N`` included; a
drawn ``timeout`` waits ``hang_seconds``. What was served is in the ledger's ``faults_served``.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from channels.sandbox._http import QuietServer
from channels.sandbox.wechat.datacube import DatacubeMixin
from channels.sandbox.wechat.drafts import DraftsMixin
from channels.sandbox.wechat.media import MediaMixin
from channels.sandbox.wechat.publish import PublishMixin
from channels.sandbox.wechat.server import Handler
from channels.sandbox.wechat.state import (
    BEIJING,
    DEFAULT_FAULT_MIX,
    DROP,
    ERRMSG,
    FAULT_ALIASES,
    Answer,
    Fault,
    State,
    rid,
)
from channels.sandbox.wechat.tokens import TokensMixin
from publisher.channel import SandboxHandle


class WeChatSandbox(TokensMixin, MediaMixin, DraftsMixin, PublishMixin, DatacubeMixin):
    """One emulated Official Account (``appid``/``secret``) served over real HTTP on loopback."""

    def __init__(
        self,
        appid: str = "wx5a9d0c0e0c0ffee0",
        secret: str = "sandbox-app-secret-0123456789abcd",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token_ttl: int = 7200,
        token_overlap: float = 300.0,
        publish_delay: float = 0.3,
        callback_url: str | None = None,
        callback_token: str | None = None,
        encoding_aes_key: str | None = None,
        callback_mode: str = "plain",
        callback_timeout: float = 5.0,
        verified: bool = True,
        original_id: str = "gh_5a9d0c0e0c0f",
        daily_quotas: dict[str, int] | None = None,
        fault_rate: float = 0.0,
        fault_mix: tuple[str, ...] = DEFAULT_FAULT_MIX,
        hang_seconds: float = 3.0,
        seed: int | None = None,
    ) -> None:
        self.appid = appid
        self.secret = secret
        self.host = host
        self.port = port
        self.token_ttl = token_ttl
        self.token_overlap = token_overlap
        self.publish_delay = publish_delay
        self.callback_url = callback_url
        self.callback_token = callback_token
        self.encoding_aes_key = encoding_aes_key
        self.callback_mode = callback_mode
        self.callback_timeout = callback_timeout
        self.verified = verified
        self.original_id = original_id
        #: calls allowed per path per Beijing day before 45009 (WeChat publishes no exact figures)
        self.daily_quotas = dict(daily_quotas or {})
        #: with no fault queued, the share of business calls that get a fault drawn from fault_mix
        self.fault_rate = fault_rate
        self.fault_mix = tuple(fault_mix)
        #: how long a drawn ``timeout`` holds its answer back
        self.hang_seconds = hang_seconds
        self._rng = random.Random(seed)
        for kind in self.fault_mix:
            self._drawn(kind)  # refuse an unknown kind now, not on the first draw
        self._lock = threading.RLock()
        self._s = State()
        self._ids = itertools.count(2247483647)
        self._server: QuietServer | None = None
        self._thread: threading.Thread | None = None
        self._timers: list[threading.Timer] = []

    # ------------------------------------------------------------------------------ lifecycle
    def start(self) -> str:
        handler = type("_Handler", (Handler,), {"sandbox": self})
        self._server = QuietServer((self.host, self.port), handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="wechat-sandbox", daemon=True)
        self._thread.start()
        return self.base_url

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        for t in self._timers:
            t.cancel()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> WeChatSandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------------- steering
    def _drawn(self, kind: str) -> Fault:
        """The fault a random draw of ``kind`` serves (``busy``, ``errcode:40001``, ``timeout``...)."""
        if kind in FAULT_ALIASES:
            return Fault("errcode", errcode=FAULT_ALIASES[kind])
        if kind.startswith("errcode:"):
            return Fault("errcode", errcode=int(kind.split(":", 1)[1]))
        if kind == "timeout":
            return Fault("timeout", seconds=self.hang_seconds)
        if kind in ("http500", "expire_token", "lost_answer"):
            return Fault(kind)
        raise ValueError(f"unknown fault kind {kind!r} for a random draw")

    def inject(self, kind: str, *, path: str | None = None, times: int = 1, **params: Any) -> None:
        """Queue a fault; see the module docstring for the kinds."""
        with self._lock:
            if kind in FAULT_ALIASES:
                self._s.faults.append(Fault("errcode", path, times, errcode=FAULT_ALIASES[kind]))
            elif kind == "errcode":
                self._s.faults.append(Fault("errcode", path, times, errcode=int(params["errcode"])))
            elif kind == "timeout":
                self._s.faults.append(Fault("timeout", path, times, seconds=float(params.get("seconds", 3))))
            elif kind in ("http500", "lost_answer"):
                self._s.faults.append(Fault(kind, path, times))
            elif kind == "expire_token":
                now = time.time()
                for tok in self._s.tokens.values():
                    tok.expires_at = min(tok.expires_at, now)
            elif kind == "audit":
                self._s.pending_audit.extend([int(params.get("status", 4))] * times)
            else:
                raise ValueError(f"unknown fault kind {kind!r}")

    def configure(self, **values: Any) -> None:
        allowed = {
            "callback_url",
            "callback_token",
            "encoding_aes_key",
            "callback_mode",
            "publish_delay",
            "verified",
            "daily_quotas",
            "token_overlap",
            "token_ttl",
            "callback_timeout",
            "fault_rate",
            "fault_mix",
            "hang_seconds",
        }
        with self._lock:
            for k, v in values.items():
                if k not in allowed:
                    raise ValueError(f"cannot configure {k!r}")
                if k == "fault_mix":
                    v = tuple(v)
                    for kind in v:
                        self._drawn(kind)
                setattr(self, k, v)

    def reset(self) -> None:
        with self._lock:
            self._s = State()

    def backdate(self, article_id: str, days: int) -> None:
        """Pretend an article went out ``days`` days earlier (datacube only reports up to yesterday)."""
        with self._lock:
            art = self._s.articles[article_id]
            art["publish_time"] -= days * 86400

    def ledger(self) -> dict[str, Any]:
        """What was published, uploaded and called — for "each item exactly once" assertions."""
        with self._lock:
            return json.loads(
                json.dumps(
                    {
                        "articles": [
                            {k: v for k, v in a.items() if k != "news_item"}
                            | {
                                "title": a["news_item"][0]["title"],
                                "content": a["news_item"][0]["content"],
                                "thumb_media_id": a["news_item"][0]["thumb_media_id"],
                            }
                            for a in sorted(self._s.articles.values(), key=lambda a: a["seq"])
                        ],
                        "jobs": list(self._s.jobs.values()),
                        "drafts": {k: v["news_item"] for k, v in self._s.drafts.items()},
                        "uploads": self._s.uploads,
                        "materials": self._s.materials,
                        "mass": list(self._s.mass.values()),
                        "calls": self._s.calls,
                        "callbacks": self._s.callbacks,
                        "tokens_issued": len(self._s.tokens),
                        "faults_served": self._s.faults_served,
                        "datacube": self._s.datacube,
                    }
                )
            )

    def live_articles(self) -> list[dict]:
        return [a for a in self.ledger()["articles"] if not a["deleted"]]

    # ---------------------------------------------------------------------------- dispatching
    # the routes of each API area are in its mixin (tokens, media, drafts, publish, datacube)
    def handle(
        self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes
    ) -> tuple[int, bytes, str]:
        if path.startswith("/__sandbox__/"):
            return self._admin(method, path, body)
        with self._lock:
            self._s.calls[path] = self._s.calls.get(path, 0) + 1
            fault = self._take_fault(path)
            day_key = f"{datetime.now(BEIJING).date()}:{path}"
            used = self._s.day_calls[day_key] = self._s.day_calls.get(day_key, 0) + 1
        if fault is None and path in self.daily_quotas and used > self.daily_quotas[path]:
            return self._json({"errcode": 45009, "errmsg": f"{ERRMSG[45009]} {rid()}"})
        if fault is not None:
            if fault.kind == "http500":
                return 500, b"<html><body>500 Internal Server Error</body></html>", "text/html"
            if fault.kind == "errcode":
                return self._json({"errcode": fault.errcode, "errmsg": f"{ERRMSG.get(fault.errcode, 'error')} {rid()}"})
        try:
            route = _ROUTES.get(path)
            if route is None:
                return 404, b"Not Found", "text/plain"
            answer = self._json(route(self, method, query, headers, body))
        except Answer as ans:
            answer = self._json(
                {"errcode": ans.errcode, "errmsg": f"{ERRMSG.get(ans.errcode, 'error')} {rid()}"} | ans.extra
            )
        if fault is not None and fault.kind == "timeout":
            time.sleep(fault.seconds)  # the call took effect; only its answer is late (or never read)
        if fault is not None and fault.kind == "lost_answer":
            return DROP  # the call took effect; the connection closes before any answer
        return answer

    def _take_fault(self, path: str) -> Fault | None:
        token_paths = ("/cgi-bin/token", "/cgi-bin/stable_token")
        for f in self._s.faults:
            if f.path is None and path in token_paths:
                continue
            if f.path is not None and not path.endswith(f.path):
                continue
            f.times -= 1
            if f.times <= 0:
                self._s.faults.remove(f)
            return f
        if not self.fault_rate or path in token_paths or self._rng.random() >= self.fault_rate:
            return None
        kind = self._rng.choice(self.fault_mix)
        self._s.faults_served[kind] = self._s.faults_served.get(kind, 0) + 1
        fault = self._drawn(kind)
        if fault.kind == "expire_token":
            now = time.time()
            for tok in self._s.tokens.values():
                tok.expires_at = min(tok.expires_at, now)
            return None  # this very call now meets the expired token (42001) like any other
        return fault

    @staticmethod
    def _json(obj: dict) -> tuple[int, bytes, str]:
        return 200, json.dumps(obj, ensure_ascii=False).encode("utf-8"), "application/json; encoding=utf-8"

    def _admin(self, method: str, path: str, body: bytes) -> tuple[int, bytes, str]:
        try:
            data = json.loads(body.decode("utf-8")) if body.strip() else {}
            if path == "/__sandbox__/ledger" and method == "GET":
                return self._json(self.ledger())
            if path == "/__sandbox__/faults" and method == "POST":
                kind = data.pop("kind")
                self.inject(kind, **data)
                return self._json({"ok": True})
            if path == "/__sandbox__/config" and method == "POST":
                self.configure(**data)
                return self._json({"ok": True})
            if path == "/__sandbox__/backdate" and method == "POST":
                self.backdate(data["article_id"], int(data["days"]))
                return self._json({"ok": True})
            if path == "/__sandbox__/reset" and method == "POST":
                self.reset()
                return self._json({"ok": True})
        except (KeyError, ValueError, TypeError) as exc:
            return 400, json.dumps({"error": str(exc)}).encode(), "application/json"
        return 404, b"Not Found", "text/plain"

    @staticmethod
    def _body_json(body: bytes) -> dict:
        if not body.strip():
            raise Answer(44002)
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise Answer(47001) from exc
        if not isinstance(data, dict):
            raise Answer(47001)
        return data


_ROUTES = {
    "/cgi-bin/token": WeChatSandbox.r_token,
    "/cgi-bin/stable_token": WeChatSandbox.r_stable_token,
    "/cgi-bin/media/uploadimg": WeChatSandbox.r_uploadimg,
    "/cgi-bin/material/add_material": WeChatSandbox.r_add_material,
    "/cgi-bin/draft/add": WeChatSandbox.r_draft_add,
    "/cgi-bin/draft/get": WeChatSandbox.r_draft_get,
    "/cgi-bin/draft/update": WeChatSandbox.r_draft_update,
    "/cgi-bin/draft/delete": WeChatSandbox.r_draft_delete,
    "/cgi-bin/draft/count": WeChatSandbox.r_draft_count,
    "/cgi-bin/draft/batchget": WeChatSandbox.r_draft_batchget,
    "/cgi-bin/freepublish/submit": WeChatSandbox.r_submit,
    "/cgi-bin/freepublish/get": WeChatSandbox.r_publish_get,
    "/cgi-bin/freepublish/delete": WeChatSandbox.r_publish_delete,
    "/cgi-bin/freepublish/getarticle": WeChatSandbox.r_getarticle,
    "/cgi-bin/freepublish/batchget": WeChatSandbox.r_publish_batchget,
    "/cgi-bin/message/mass/sendall": WeChatSandbox.r_sendall,
    "/cgi-bin/openapi/quota/get": WeChatSandbox.r_quota_get,
    "/datacube/getarticlesummary": WeChatSandbox.r_articlesummary,
    "/datacube/getarticletotal": WeChatSandbox.r_articletotal,
    "/datacube/getusersummary": WeChatSandbox.r_usersummary,
    "/datacube/getusercumulate": WeChatSandbox.r_usercumulate,
}


def demo_sandbox(workdir: Path) -> SandboxHandle:
    """The ``publisher.sandboxes`` entry point: a running WeChat API and the wechat table pointing at it."""
    secret = "demo-" + os.urandom(12).hex()
    sandbox = WeChatSandbox(secret=secret, publish_delay=0.5)
    base = sandbox.start()
    return SandboxHandle(
        config={
            "type": "wechat",
            "appid": sandbox.appid,
            "secret_env": "PUBLISHER_DEMO_WECHAT_SECRET",
            "api_base": base,
            # the sandbox finishes a publish job in half a second: poll it soon
            "poll_intervals": [1.0, 2.0, 5.0],
        },
        environ={"PUBLISHER_DEMO_WECHAT_SECRET": secret},
        stop=sandbox.stop,
        describe=f"a WeChat Official Account API at {base} (draft → freepublish, images re-hosted)",
    )
