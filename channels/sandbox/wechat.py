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

import argparse
import base64
import email
import email.policy
import hashlib
import itertools
import json
import os
import random
import re
import secrets
import struct
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from zoneinfo import ZoneInfo

import requests

from channels.sandbox._http import QuietServer
from publisher.channel import SandboxHandle

BEIJING = ZoneInfo("Asia/Shanghai")
WECHAT_IMAGE_HOSTS = ("mmbiz.qpic.cn", "mmbiz.qlogo.cn")

ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40005: "invalid file type",
    40007: "invalid media_id",
    40009: "invalid image size",
    40013: "invalid appid",
    40014: "invalid access_token",
    40125: "invalid appsecret",
    41001: "access_token missing",
    42001: "access_token expired",
    44002: "empty post data",
    44003: "empty news data",
    45002: "content size out of limit",
    45003: "title size out of limit",
    45004: "description size out of limit",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    45065: "clientmsgid exist",
    45110: "author size out of limit",
    47001: "data format error",
    48001: "api unauthorized",
    53503: "该草稿未通过发布检查",
    53600: "Article ID 无效",
    61500: "date format error",
    61501: "date range error",
}


FAULT_ALIASES = {"busy": -1, "quota_daily": 45009, "quota_minute": 45011}
#: what ``handle`` returns for a ``lost_answer`` fault: the server closes the connection unanswered
DROP: tuple[int, bytes, str] = (0, b"", "")
#: what a chaos run draws: system busy, the per-minute quota ("api freq"), HTTP 500, a late answer,
#: and the access token expiring under the caller (42001, 40001 for a token no longer the latest)
DEFAULT_FAULT_MIX = ("busy", "quota_minute", "http500", "timeout", "lost_answer", "expire_token")


def _magic_type(data: bytes) -> str | None:
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] in (b"GIF8",):
        return "gif"
    if data[:2] == b"BM":
        return "bmp"
    return None


def _rid() -> str:
    return f"rid: {secrets.token_hex(4)}-{secrets.token_hex(4)}"


class _Answer(Exception):
    """Raised inside a route to answer with an errcode."""

    def __init__(self, errcode: int, extra: dict | None = None):
        super().__init__(errcode)
        self.errcode = errcode
        self.extra = extra or {}


@dataclass
class _Fault:
    kind: str
    path: str | None = None
    times: int = 1
    errcode: int | None = None
    seconds: float = 0.0
    status: int = 4


@dataclass
class _Token:
    value: str
    expires_at: float


@dataclass
class _State:
    tokens: dict[str, _Token] = field(default_factory=dict)
    latest_token: str | None = None
    uploads: dict[str, dict] = field(default_factory=dict)  # url -> {sha256, type, size}
    materials: dict[str, dict] = field(default_factory=dict)  # media_id -> {type, size, url, sha256}
    drafts: dict[str, dict] = field(default_factory=dict)  # media_id -> {news_item, update_time}
    jobs: dict[str, dict] = field(default_factory=dict)  # publish_id -> job
    articles: dict[str, dict] = field(default_factory=dict)  # article_id -> article
    mass: dict[str, dict] = field(default_factory=dict)  # clientmsgid -> send
    faults: list[_Fault] = field(default_factory=list)
    pending_audit: list[int] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    day_calls: dict[str, int] = field(default_factory=dict)
    callbacks: list[dict] = field(default_factory=list)
    faults_served: dict[str, int] = field(default_factory=dict)
    datacube: list[dict] = field(default_factory=list)  # {path, begin_date, end_date} of each datacube call


class WeChatSandbox:
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
        self._s = _State()
        self._ids = itertools.count(2247483647)
        self._server: QuietServer | None = None
        self._thread: threading.Thread | None = None
        self._timers: list[threading.Timer] = []

    # ------------------------------------------------------------------------------ lifecycle
    def start(self) -> str:
        handler = type("_Handler", (_Handler,), {"sandbox": self})
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
    def _drawn(self, kind: str) -> _Fault:
        """The fault a random draw of ``kind`` serves (``busy``, ``errcode:40001``, ``timeout``...)."""
        if kind in FAULT_ALIASES:
            return _Fault("errcode", errcode=FAULT_ALIASES[kind])
        if kind.startswith("errcode:"):
            return _Fault("errcode", errcode=int(kind.split(":", 1)[1]))
        if kind == "timeout":
            return _Fault("timeout", seconds=self.hang_seconds)
        if kind in ("http500", "expire_token", "lost_answer"):
            return _Fault(kind)
        raise ValueError(f"unknown fault kind {kind!r} for a random draw")

    def inject(self, kind: str, *, path: str | None = None, times: int = 1, **params: Any) -> None:
        """Queue a fault; see the module docstring for the kinds."""
        with self._lock:
            if kind in FAULT_ALIASES:
                self._s.faults.append(_Fault("errcode", path, times, errcode=FAULT_ALIASES[kind]))
            elif kind == "errcode":
                self._s.faults.append(_Fault("errcode", path, times, errcode=int(params["errcode"])))
            elif kind == "timeout":
                self._s.faults.append(_Fault("timeout", path, times, seconds=float(params.get("seconds", 3))))
            elif kind in ("http500", "lost_answer"):
                self._s.faults.append(_Fault(kind, path, times))
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
            self._s = _State()

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
            return self._json({"errcode": 45009, "errmsg": f"{ERRMSG[45009]} {_rid()}"})
        if fault is not None:
            if fault.kind == "http500":
                return 500, b"<html><body>500 Internal Server Error</body></html>", "text/html"
            if fault.kind == "errcode":
                return self._json(
                    {"errcode": fault.errcode, "errmsg": f"{ERRMSG.get(fault.errcode, 'error')} {_rid()}"}
                )
        try:
            route = _ROUTES.get(path)
            if route is None:
                return 404, b"Not Found", "text/plain"
            answer = self._json(route(self, method, query, headers, body))
        except _Answer as ans:
            answer = self._json(
                {"errcode": ans.errcode, "errmsg": f"{ERRMSG.get(ans.errcode, 'error')} {_rid()}"} | ans.extra
            )
        if fault is not None and fault.kind == "timeout":
            time.sleep(fault.seconds)  # the call took effect; only its answer is late (or never read)
        if fault is not None and fault.kind == "lost_answer":
            return DROP  # the call took effect; the connection closes before any answer
        return answer

    def _take_fault(self, path: str) -> _Fault | None:
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

    # ------------------------------------------------------------------------------- helpers
    def _require_token(self, query: dict[str, str]) -> None:
        value = query.get("access_token")
        if not value:
            raise _Answer(41001)
        with self._lock:
            tok = self._s.tokens.get(value)
            if tok is None:
                raise _Answer(40001)
            if tok.expires_at <= time.time():
                raise _Answer(42001 if value == self._s.latest_token else 40001)

    @staticmethod
    def _body_json(body: bytes) -> dict:
        if not body.strip():
            raise _Answer(44002)
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise _Answer(47001) from exc
        if not isinstance(data, dict):
            raise _Answer(47001)
        return data

    @staticmethod
    def _media_part(headers: Any, body: bytes) -> tuple[str, bytes]:
        ctype = headers.get("Content-Type", "") or ""
        m = re.search(r'boundary="?([^";]+)"?', ctype)
        if m:
            boundary = m.group(1).encode()
        else:
            first = body.split(b"\r\n", 1)[0]
            if not first.startswith(b"--"):
                raise _Answer(41005 if not body else 40005)
            boundary = first[2:].strip()
        msg = email.message_from_bytes(
            b"Content-Type: multipart/form-data; boundary=" + boundary + b"\r\n\r\n" + body,
            policy=email.policy.HTTP,
        )
        for part in msg.iter_parts():
            if part.get_param("name", header="content-disposition") == "media":
                return part.get_filename() or "", part.get_payload(decode=True) or b""
        raise _Answer(41005)

    def _new_token(self) -> _Token:
        now = time.time()
        with self._lock:
            for tok in self._s.tokens.values():
                tok.expires_at = min(tok.expires_at, now + self.token_overlap)
            tok = _Token("SBX_" + secrets.token_urlsafe(48), now + self.token_ttl)
            self._s.tokens[tok.value] = tok
            self._s.latest_token = tok.value
            return tok

    def _check_credentials(self, appid: str | None, secret: str | None) -> None:
        if appid != self.appid:
            raise _Answer(40013)
        if secret != self.secret:
            raise _Answer(40125)

    # ------------------------------------------------------------------------------- routes
    def r_token(self, method, query, headers, body):
        if query.get("grant_type") != "client_credential":
            raise _Answer(40002)
        self._check_credentials(query.get("appid"), query.get("secret"))
        tok = self._new_token()
        return {"access_token": tok.value, "expires_in": self.token_ttl}

    def r_stable_token(self, method, query, headers, body):
        data = self._body_json(body)
        if data.get("grant_type") != "client_credential":
            raise _Answer(40002)
        self._check_credentials(data.get("appid"), data.get("secret"))
        with self._lock:
            latest = self._s.tokens.get(self._s.latest_token or "")
            if not data.get("force_refresh") and latest is not None and latest.expires_at > time.time():
                return {"access_token": latest.value, "expires_in": int(latest.expires_at - time.time())}
        tok = self._new_token()
        return {"access_token": tok.value, "expires_in": self.token_ttl}

    def r_uploadimg(self, method, query, headers, body):
        self._require_token(query)
        _name, data = self._media_part(headers, body)
        kind = _magic_type(data)
        if kind not in ("jpg", "png"):
            raise _Answer(40005)
        if len(data) >= 1024 * 1024:
            raise _Answer(40009)
        sha = hashlib.sha256(data).hexdigest()
        fmt = "jpeg" if kind == "jpg" else "png"
        url = f"http://mmbiz.qpic.cn/sz_mmbiz_{kind}/{sha[:32]}/0?wx_fmt={fmt}"
        with self._lock:
            self._s.uploads[url] = {"sha256": sha, "type": kind, "size": len(data)}
        return {"url": url}

    def r_add_material(self, method, query, headers, body):
        self._require_token(query)
        mtype = query.get("type")
        _name, data = self._media_part(headers, body)
        kind = _magic_type(data)
        if mtype == "thumb":
            if kind != "jpg":
                raise _Answer(40005)
            if len(data) > 64 * 1024:
                raise _Answer(40009)
        elif mtype == "image":
            if kind not in ("jpg", "png", "gif", "bmp"):
                raise _Answer(40005)
            if len(data) > 10 * 1024 * 1024:
                raise _Answer(40009)
        else:
            raise _Answer(40004 if mtype else 40005)
        media_id = secrets.token_urlsafe(32)
        sha = hashlib.sha256(data).hexdigest()
        url = f"http://mmbiz.qpic.cn/sz_mmbiz_{kind}/{sha[:32]}/0?wx_fmt={'jpeg' if kind == 'jpg' else kind}"
        with self._lock:
            self._s.materials[media_id] = {
                "type": mtype,
                "size": len(data),
                "url": url,
                "sha256": sha,
                "format": kind,
            }
        return {"media_id": media_id, "url": url}

    def _clean_article(self, art: Any) -> dict:
        if not isinstance(art, dict):
            raise _Answer(47001)
        title = art.get("title")
        content = art.get("content")
        if not title or not content:
            raise _Answer(44003)
        if len(title) > 32:
            raise _Answer(45003)
        if len(art.get("author") or "") > 16:
            raise _Answer(45110)
        if len(art.get("digest") or "") > 128:
            raise _Answer(45004)
        if len(content) >= 20000 or len(content.encode("utf-8")) >= 1024 * 1024:
            raise _Answer(45002)
        if len((art.get("content_source_url") or "").encode()) > 1024:
            raise _Answer(45005)
        article_type = art.get("article_type") or "news"
        thumb = art.get("thumb_media_id")
        with self._lock:
            mat = self._s.materials.get(thumb or "")
        if article_type == "news" and (mat is None):
            raise _Answer(40007)
        cleaned, stripped = _strip_content(content)
        digest = art.get("digest") or re.sub(r"<[^>]+>", "", cleaned)[:54]
        return {
            "title": title,
            "author": art.get("author") or "",
            "digest": digest,
            "content": cleaned,
            "content_source_url": art.get("content_source_url") or "",
            "thumb_media_id": thumb or "",
            "thumb_url": mat["url"] if mat else "",
            "need_open_comment": int(art.get("need_open_comment") or 0),
            "only_fans_can_comment": int(art.get("only_fans_can_comment") or 0),
            "pic_crop_235_1": art.get("pic_crop_235_1") or "",
            "pic_crop_1_1": art.get("pic_crop_1_1") or "",
            "article_type": article_type,
            "show_cover_pic": 0,
            "stripped_images": stripped,
        }

    def r_draft_add(self, method, query, headers, body):
        self._require_token(query)
        data = self._body_json(body)
        arts = data.get("articles")
        if not isinstance(arts, list) or not arts:
            raise _Answer(44003)
        items = [self._clean_article(a) for a in arts]
        media_id = secrets.token_urlsafe(32)
        with self._lock:
            self._s.drafts[media_id] = {
                "news_item": items,
                "update_time": int(time.time()),
                "create_time": int(time.time()),
                "seq": next(self._ids),
            }
        return {"media_id": media_id}

    def _public_items(self, items: list[dict], with_content: bool = True) -> list[dict]:
        out = []
        for it in items:
            d = {k: v for k, v in it.items() if k != "stripped_images"}
            if not with_content:
                d.pop("content", None)
            out.append(d)
        return out

    def r_draft_get(self, method, query, headers, body):
        self._require_token(query)
        data = self._body_json(body)
        with self._lock:
            d = self._s.drafts.get(data.get("media_id") or "")
            if d is None:
                raise _Answer(40007)
            return {"news_item": self._public_items(d["news_item"])}

    def r_draft_update(self, method, query, headers, body):
        self._require_token(query)
        data = self._body_json(body)
        with self._lock:
            d = self._s.drafts.get(data.get("media_id") or "")
            if d is None:
                raise _Answer(40007)
            idx = int(data.get("index", 0))
            if not 0 <= idx < len(d["news_item"]):
                raise _Answer(40007)
        item = self._clean_article(data.get("articles"))
        with self._lock:
            d["news_item"][idx] = item
            d["update_time"] = int(time.time())
        return {"errcode": 0, "errmsg": "ok"}

    def r_draft_delete(self, method, query, headers, body):
        self._require_token(query)
        data = self._body_json(body)
        with self._lock:
            if self._s.drafts.pop(data.get("media_id") or "", None) is None:
                raise _Answer(40007)
        return {"errcode": 0, "errmsg": "ok"}

    def r_draft_count(self, method, query, headers, body):
        self._require_token(query)
        with self._lock:
            return {"total_count": len(self._s.drafts)}

    def _page(self, body: bytes) -> tuple[int, int, bool]:
        data = self._body_json(body)
        offset, count = int(data.get("offset", 0)), int(data.get("count", 0))
        if offset < 0 or not 1 <= count <= 20:
            raise _Answer(40007 if count else 47001)
        return offset, count, bool(int(data.get("no_content", 0)))

    def r_draft_batchget(self, method, query, headers, body):
        self._require_token(query)
        offset, count, no_content = self._page(body)
        with self._lock:
            # newest first by creation (what WeChat's listing is reported to do; it takes no order)
            rows = sorted(self._s.drafts.items(), key=lambda kv: kv[1]["seq"], reverse=True)
            page = rows[offset : offset + count]
            return {
                "total_count": len(rows),
                "item_count": len(page),
                "item": [
                    {
                        "media_id": mid,
                        "content": {
                            "news_item": self._public_items(d["news_item"], not no_content),
                            "create_time": d["create_time"],
                            "update_time": d["update_time"],
                        },
                        "update_time": d["update_time"],
                    }
                    for mid, d in page
                ],
            }

    def r_submit(self, method, query, headers, body):
        self._require_token(query)
        if not self.verified:
            raise _Answer(48001)
        data = self._body_json(body)
        media_id = data.get("media_id") or ""
        with self._lock:
            draft = self._s.drafts.get(media_id)
            if draft is None:
                raise _Answer(40007)
            if any(j["media_id"] == media_id and j["publish_status"] == 1 for j in self._s.jobs.values()):
                raise _Answer(40007)
            publish_id = str(next(self._ids))
            msg_data_id = str(next(self._ids))
            outcome = self._s.pending_audit.pop(0) if self._s.pending_audit else 0
            self._s.jobs[publish_id] = {
                "publish_id": publish_id,
                "msg_data_id": msg_data_id,
                "media_id": media_id,
                "publish_status": 1,
                "outcome": outcome,
                "article_id": None,
                "submitted_at": time.time(),
            }
        t = threading.Timer(self.publish_delay, self._finish_job, args=(publish_id,))
        t.daemon = True
        self._timers.append(t)
        t.start()
        return {"errcode": 0, "errmsg": "ok", "publish_id": publish_id, "msg_data_id": msg_data_id}

    def _finish_job(self, publish_id: str) -> None:
        with self._lock:
            job = self._s.jobs.get(publish_id)
            if job is None or job["publish_status"] != 1:
                return
            draft = self._s.drafts.get(job["media_id"])
            if job["outcome"] != 0 or draft is None:
                job["publish_status"] = job["outcome"] or 3
                job["fail_idx"] = [1]
            else:
                article_id = secrets.token_urlsafe(33)
                urls = [f"https://mp.weixin.qq.com/s/{secrets.token_urlsafe(16)}" for _ in draft["news_item"]]
                items = [dict(it, url=u, is_deleted=False) for it, u in zip(draft["news_item"], urls, strict=True)]
                self._s.articles[article_id] = {
                    "article_id": article_id,
                    "publish_id": publish_id,
                    "msg_data_id": job["msg_data_id"],
                    "draft_media_id": job["media_id"],
                    "url": urls[0],
                    "urls": urls,
                    "news_item": items,
                    "deleted": False,
                    "publish_time": int(time.time()),
                    "seq": len(self._s.articles),
                }
                del self._s.drafts[job["media_id"]]
                job.update(publish_status=0, article_id=article_id, urls=urls, fail_idx=[])
            event = dict(job)
        self._send_callback(event)

    def _event_xml(self, job: dict) -> str:
        if job["publish_status"] == 0:
            items = "".join(
                f"<item><idx>{i}</idx><article_url><![CDATA[{u}]]></article_url></item>"
                for i, u in enumerate(job["urls"], start=1)
            )
            info = (
                f"<publish_id>{job['publish_id']}</publish_id><publish_status>0</publish_status>"
                f"<article_id><![CDATA[{job['article_id']}]]></article_id>"
                f"<article_detail><count>{len(job['urls'])}</count>{items}</article_detail>"
            )
        else:
            fails = "".join(f"<fail_idx>{i}</fail_idx>" for i in job.get("fail_idx", [1]))
            info = (
                f"<publish_id>{job['publish_id']}</publish_id>"
                f"<publish_status>{job['publish_status']}</publish_status>{fails}"
            )
        return (
            "<xml>"
            f"<ToUserName><![CDATA[{self.original_id}]]></ToUserName>"
            "<FromUserName><![CDATA[oV5CrjpxgaGXNHIQigzNlgLTnwic]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime>"
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[PUBLISHJOBFINISH]]></Event>"
            f"<PublishEventInfo>{info}</PublishEventInfo></xml>"
        )

    def _send_callback(self, job: dict) -> None:
        url, token = self.callback_url, self.callback_token
        if not url or not token:
            return
        xml = self._event_xml(job)
        timestamp, nonce = str(int(time.time())), str(secrets.randbelow(10**10))
        params = {
            "signature": _sha1(token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "openid": "oV5CrjpxgaGXNHIQigzNlgLTnwic",
        }
        body = xml
        if self.callback_mode == "aes":
            encrypt = aes_encrypt(self.encoding_aes_key or "", self.appid, xml)
            params |= {"encrypt_type": "aes", "msg_signature": _sha1(token, timestamp, nonce, encrypt)}
            body = (
                f"<xml><ToUserName><![CDATA[{self.original_id}]]></ToUserName>"
                f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
            )
        record = {"publish_id": job["publish_id"], "attempts": 0, "status": None}
        with self._lock:
            self._s.callbacks.append(record)
        sep = "&" if "?" in url else "?"
        for _ in range(3):  # WeChat retries three times when it gets no answer in time
            record["attempts"] += 1
            try:
                r = requests.post(
                    f"{url}{sep}{urlencode(params)}",
                    data=body.encode("utf-8"),
                    timeout=self.callback_timeout,
                    headers={"Content-Type": "text/xml"},
                )
                record["status"] = r.status_code
                if r.status_code == 200:
                    return
            except requests.RequestException as exc:
                record["status"] = type(exc).__name__

    def r_publish_get(self, method, query, headers, body):
        self._require_token(query)
        data = self._body_json(body)
        with self._lock:
            job = self._s.jobs.get(str(data.get("publish_id") or ""))
            if job is None:
                raise _Answer(40007)
            out: dict[str, Any] = {"publish_id": job["publish_id"], "publish_status": job["publish_status"]}
            if job["publish_status"] in (0, 5) and job.get("article_id"):
                out["article_id"] = job["article_id"]
                out["article_detail"] = {
                    "count": len(job["urls"]),
                    "item": [{"idx": i, "article_url": u} for i, u in enumerate(job["urls"], start=1)],
                }
            out["fail_idx"] = job.get("fail_idx", [])
            return out

    def r_publish_delete(self, method, query, headers, body):
        self._require_token(query)
        data = self._body_json(body)
        with self._lock:
            art = self._s.articles.get(data.get("article_id") or "")
            if art is None:
                raise _Answer(53600)
            index = int(data.get("index", 0))
            if index == 0:
                for it in art["news_item"]:
                    it["is_deleted"] = True
            elif 1 <= index <= len(art["news_item"]):
                art["news_item"][index - 1]["is_deleted"] = True
            else:
                raise _Answer(53600)
            art["deleted"] = all(it["is_deleted"] for it in art["news_item"])
            if art["deleted"]:
                self._s.jobs[art["publish_id"]]["publish_status"] = 5
        return {"errcode": 0, "errmsg": "ok"}

    def r_getarticle(self, method, query, headers, body):
        self._require_token(query)
        data = self._body_json(body)
        with self._lock:
            art = self._s.articles.get(data.get("article_id") or "")
            if art is None:
                raise _Answer(53600)
            return {"news_item": self._public_items(art["news_item"])}

    def r_publish_batchget(self, method, query, headers, body):
        self._require_token(query)
        offset, count, no_content = self._page(body)
        with self._lock:
            # as WeChat does: a deleted article stays listed, its news items marked is_deleted
            rows = sorted(self._s.articles.values(), key=lambda a: a["seq"], reverse=True)
            page = rows[offset : offset + count]
            return {
                "total_count": len(rows),
                "item_count": len(page),
                "item": [
                    {
                        "article_id": a["article_id"],
                        "content": {
                            "news_item": self._public_items(a["news_item"], not no_content),
                            "create_time": a["publish_time"],
                            "update_time": a["publish_time"],
                        },
                        "update_time": a["publish_time"],
                    }
                    for a in page
                ],
            }

    def r_sendall(self, method, query, headers, body):
        self._require_token(query)
        if not self.verified:
            raise _Answer(48001)
        data = self._body_json(body)
        if data.get("msgtype") != "mpnews":
            raise _Answer(40008)
        cid = str(data.get("clientmsgid") or "")
        if len(cid.encode()) > 64:
            raise _Answer(45067)
        with self._lock:
            if cid and cid in self._s.mass:
                prev = self._s.mass[cid]
                raise _Answer(45065, {"msg_id": prev["msg_id"]})
            media_id = (data.get("mpnews") or {}).get("media_id") or ""
            if media_id not in self._s.drafts:
                raise _Answer(40007)
            send = {
                "msg_id": next(self._ids),
                "msg_data_id": next(self._ids),
                "media_id": media_id,
                "clientmsgid": cid,
                "filter": data.get("filter"),
                "time": time.time(),
            }
            self._s.mass[cid or str(send["msg_id"])] = send
        return {
            "errcode": 0,
            "errmsg": "send job submission success",
            "msg_id": send["msg_id"],
            "msg_data_id": send["msg_data_id"],
        }

    # ------------------------------------------------------------------------------ datacube
    def _span(self, body: bytes, max_days: int, path: str = "") -> list[date]:
        data = self._body_json(body)
        try:
            begin = date.fromisoformat(str(data["begin_date"]))
            end = date.fromisoformat(str(data["end_date"]))
        except (KeyError, ValueError) as exc:
            raise _Answer(61500) from exc
        yesterday = datetime.now(BEIJING).date() - timedelta(days=1)
        if end < begin or end > yesterday or (end - begin).days + 1 > max_days:
            raise _Answer(61501)
        with self._lock:
            self._s.datacube.append({"path": path, "begin_date": begin.isoformat(), "end_date": end.isoformat()})
        return [begin + timedelta(days=i) for i in range((end - begin).days + 1)]

    def _article_counts(self, art: dict, day: date) -> dict[str, int]:
        published = datetime.fromtimestamp(art["publish_time"], BEIJING).date()
        age = (day - published).days
        if age < 0:
            return {}
        seed = int(hashlib.sha256(f"{art['article_id']}:{day}".encode()).hexdigest()[:8], 16)
        base = 200 + int(hashlib.sha256(art["article_id"].encode()).hexdigest()[:4], 16) % 800
        reads = max(0, int(base / (1 + age) ** 1.5) + seed % 17)
        users = max(0, int(reads * 0.8))
        shares = reads // 25 + seed % 3
        favs = reads // 40 + seed % 2
        return {
            "int_page_read_user": users,
            "int_page_read_count": reads,
            "ori_page_read_user": users // 10,
            "ori_page_read_count": reads // 10,
            "share_user": shares,
            "share_count": shares + shares // 5,
            "add_to_fav_user": favs,
            "add_to_fav_count": favs,
        }

    def r_articlesummary(self, method, query, headers, body):
        self._require_token(query)
        days = self._span(body, 1, "getarticlesummary")
        rows = []
        with self._lock:
            for day in days:
                for art in sorted(self._s.articles.values(), key=lambda a: a["seq"]):
                    c = self._article_counts(art, day)
                    if not c or c["int_page_read_count"] + c["share_count"] + c["add_to_fav_count"] < 3:
                        continue
                    rows.append(
                        {
                            "ref_date": day.isoformat(),
                            "msgid": f"{art['msg_data_id']}_1",
                            "title": art["news_item"][0]["title"],
                        }
                        | c
                    )
        return {"list": rows}

    def r_articletotal(self, method, query, headers, body):
        self._require_token(query)
        days = self._span(body, 1, "getarticletotal")
        yesterday = datetime.now(BEIJING).date() - timedelta(days=1)
        rows = []
        with self._lock:
            for day in days:
                for art in sorted(self._s.articles.values(), key=lambda a: a["seq"]):
                    if datetime.fromtimestamp(art["publish_time"], BEIJING).date() != day:
                        continue
                    details, acc = [], dict.fromkeys(self._article_counts(art, day), 0)
                    for i in range(7):
                        stat = day + timedelta(days=i)
                        if stat > yesterday:
                            break
                        for k, v in self._article_counts(art, stat).items():
                            acc[k] += v
                        details.append({"stat_date": stat.isoformat(), "target_user": 1000} | acc)
                    rows.append(
                        {
                            "ref_date": day.isoformat(),
                            "msgid": f"{art['msg_data_id']}_1",
                            "title": art["news_item"][0]["title"],
                            "details": details,
                        }
                    )
        return {"list": rows}

    def _followers(self, day: date) -> tuple[int, int, int]:
        seed = int(hashlib.sha256(f"{self.appid}:{day}".encode()).hexdigest()[:8], 16)
        new, cancel = 20 + seed % 60, seed % 9
        cumulate = 12000 + (day.toordinal() - 738000) * 35
        return new, cancel, cumulate

    def r_usersummary(self, method, query, headers, body):
        self._require_token(query)
        rows = []
        for day in self._span(body, 7, "getusersummary"):
            new, cancel, _ = self._followers(day)
            rows.append({"ref_date": day.isoformat(), "user_source": 0, "new_user": new, "cancel_user": cancel})
        return {"list": rows}

    def r_usercumulate(self, method, query, headers, body):
        self._require_token(query)
        return {
            "list": [
                {"ref_date": d.isoformat(), "user_source": 0, "cumulate_user": self._followers(d)[2]}
                for d in self._span(body, 7, "getusercumulate")
            ]
        }

    def r_quota_get(self, method, query, headers, body):
        self._require_token(query)
        data = self._body_json(body)
        with self._lock:
            used = self._s.calls.get(str(data.get("cgi_path")), 0)
        return {
            "errcode": 0,
            "errmsg": "ok",
            "quota": {"daily_limit": 100000, "used": used, "remain": 100000 - used},
        }


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

_IMG_RE = re.compile(r"<img\b[^>]*>", re.I)
_SRC_RE = re.compile(r"""\bsrc\s*=\s*["']?([^"'\s>]+)""", re.I)


def _strip_content(content: str) -> tuple[str, list[str]]:
    """Drop scripts and images not hosted by WeChat, as the platform does with article content."""
    content = re.sub(r"<script\b.*?</script\s*>", "", content, flags=re.I | re.S)
    stripped: list[str] = []

    def keep(m: re.Match) -> str:
        src = _SRC_RE.search(m.group(0))
        host = urlsplit(src.group(1)).hostname if src else None
        if host in WECHAT_IMAGE_HOSTS:
            return m.group(0)
        stripped.append(src.group(1) if src else "")
        return ""

    return _IMG_RE.sub(keep, content), stripped


def _sha1(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def aes_encrypt(encoding_aes_key: str, appid: str, xml: str) -> str:
    """WeChat's safe-mode encryption, written from the documentation (not shared with the client)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = base64.b64decode(encoding_aes_key + "=")
    raw = xml.encode("utf-8")
    plain = os.urandom(16) + struct.pack(">I", len(raw)) + raw + appid.encode("utf-8")
    pad = 32 - len(plain) % 32
    plain += bytes([pad]) * pad
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode("ascii")


class _Handler(BaseHTTPRequestHandler):
    sandbox: WeChatSandbox
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            status, payload, ctype = self.sandbox.handle(method, parts.path, query, self.headers, body)
        except Exception as exc:  # an emulator bug must show as a 500, not a hung connection
            status, payload, ctype = 500, f"sandbox error: {exc!r}".encode(), "text/plain"
        if (status, payload, ctype) == DROP:
            self.close_connection = True  # no status line at all: the client sees the connection end
            return
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout fault): nothing to answer

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        self._serve("POST")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="WeChat Official Account API sandbox")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--appid", default="wx5a9d0c0e0c0ffee0")
    p.add_argument("--secret", default=os.environ.get("PUBLISHER_WECHAT_SECRET", "sandbox-app-secret-0123456789abcd"))
    p.add_argument("--publish-delay", type=float, default=2.0)
    p.add_argument("--callback-url")
    p.add_argument("--callback-token")
    p.add_argument("--encoding-aes-key")
    p.add_argument("--callback-mode", choices=["plain", "aes"], default="plain")
    p.add_argument("--token-ttl", type=int, default=7200)
    p.add_argument("--unverified", action="store_true", help="answer 48001 to freepublish and mass send")
    p.add_argument("--fault-rate", type=float, default=0.0, help="share of business calls answered with a fault")
    p.add_argument(
        "--fault-mix",
        default=",".join(DEFAULT_FAULT_MIX),
        help="comma-separated kinds drawn at --fault-rate (busy, quota_minute, quota_daily, errcode:N, lost_answer, "
        "http500, timeout, expire_token)",
    )
    p.add_argument("--hang-seconds", type=float, default=3.0, help="how long a drawn timeout holds its answer")
    p.add_argument("--seed", type=int, default=None, help="seed of the fault draw")
    p.add_argument(
        "--daily-quota",
        action="append",
        default=[],
        metavar="PATH=N",
        help="e.g. /cgi-bin/freepublish/get=100 (repeatable)",
    )
    args = p.parse_args(argv)
    quotas = {k: int(v) for k, v in (q.rsplit("=", 1) for q in args.daily_quota)}
    sb = WeChatSandbox(
        args.appid,
        args.secret,
        host=args.host,
        port=args.port,
        publish_delay=args.publish_delay,
        callback_url=args.callback_url,
        callback_token=args.callback_token,
        encoding_aes_key=args.encoding_aes_key,
        callback_mode=args.callback_mode,
        token_ttl=args.token_ttl,
        verified=not args.unverified,
        daily_quotas=quotas,
        fault_rate=args.fault_rate,
        fault_mix=tuple(k for k in args.fault_mix.split(",") if k),
        hang_seconds=args.hang_seconds,
        seed=args.seed,
    )
    url = sb.start()
    print(f"WeChat sandbox for appid {args.appid} on {url} (admin: {url}/__sandbox__/ledger)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        sb.stop()


if __name__ == "__main__":
    main()


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
