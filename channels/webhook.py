"""A signed JSON webhook: POST each item to a URL the receiving system owns.

Signature scheme (docs/channels/webhook.md has the receiver's side)::

    X-Publisher-Timestamp: <unix seconds when sent>
    X-Publisher-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>

The timestamp is inside the signed material, so a captured request cannot be replayed after the
receiver's window (5 minutes is suggested) with a fresh timestamp. Within the window, replays and our
own retries are absorbed by ``Idempotency-Key``: ``delivery-<id>`` for a publish (the same on every
attempt of one publication), ``delivery-<id>:update:v<version>`` and ``delivery-<id>:withdraw`` for the
other events, so an update is never swallowed as a duplicate of the publish. A put-back after a
take-down is a new publication: ``ctx.idempotency_key`` is then ``delivery-<id>-g<n>``.

Retries are the core's job; this module only classifies. A read timeout after the request was sent
is reported as *transient*, not ambiguous: the retry carries the same Idempotency-Key, so a receiver
that did act the first time answers with its first response instead of acting again.

Speed: the benchmark holds the pipeline to 1.3x a bare ``requests.Session`` loop, so each worker
thread keeps its own pooled session (``requests.Session`` is not documented as thread-safe) and a
call costs one JSON dump and one HMAC on top of the request itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
from pydantic import Field, field_validator
from requests.adapters import HTTPAdapter

from publisher.channel import (
    Channel,
    ChannelConfig,
    ChannelEnv,
    DeliveryContext,
    HealthReport,
    PermanentChannelError,
    Post,
    Published,
    QuotaExceeded,
    TransientChannelError,
    env_secret,
)

SIGNATURE_HEADER = "X-Publisher-Signature"
TIMESTAMP_HEADER = "X-Publisher-Timestamp"
#: how long to wait after a 429 that names no Retry-After
DEFAULT_QUOTA_WAIT = timedelta(seconds=60)
#: the most of a response body an error message quotes
QUOTE = 300


def _http_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


class WebhookConfig(ChannelConfig):
    #: where publish events are POSTed
    url: str
    #: environment variable holding the shared signing secret
    secret_env: str = "PUBLISHER_WEBHOOK_SECRET"
    #: seconds, used for both connecting and waiting for the answer
    timeout: float = Field(default=10.0, gt=0, le=300)
    #: where update events go (default: url)
    update_url: str | None = None
    #: where withdraw events go (default: url), and with which method
    withdraw_url: str | None = None
    withdraw_method: Literal["POST", "PUT", "DELETE"] = "POST"
    verify_tls: bool = True
    #: pooled connections per worker thread and host
    pool_size: int = Field(default=4, ge=1, le=256)

    @field_validator("url", "update_url", "withdraw_url")
    @classmethod
    def _http_urls(cls, value: str | None) -> str | None:
        return _http_url(value)


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Publisher-Signature`` value for ``body`` sent at ``timestamp`` (unix seconds)."""
    return "sha256=" + hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


class WebhookChannel(Channel):
    """POSTs a signed JSON document per publish, update and withdraw."""

    type_name = "webhook"
    label = "Webhook（签名 JSON 推送）"
    Config = WebhookConfig
    supports_update = True
    supports_withdraw = True
    default_max_concurrency = 8

    def __init__(self, name: str, config: WebhookConfig, env: ChannelEnv) -> None:
        super().__init__(name, config, env)
        self._secret = env_secret(config.secret_env, what=f"webhook channel {name!r} signing secret").encode()
        # The environment's proxy and CA settings, read once per URL: requests reads them (and looks
        # for a .netrc) on every request by default, ~0.1 ms a call — a quarter of the dispatcher's own
        # work per delivery. HTTP(S)_PROXY, NO_PROXY and REQUESTS_CA_BUNDLE are honoured as requests
        # would; they are read when the channel is built (at worker start).
        self._proxies = {
            u: requests.utils.get_environ_proxies(u) for u in (config.url, config.update_url, config.withdraw_url) if u
        }
        #: how an error names each URL's receiver
        self._where = {u: f"webhook {name!r} ({urlsplit(u).netloc})" for u in self._proxies}
        self._verify: bool | str = config.verify_tls and (
            os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        )
        # Per URL, only what differs from a session's defaults is passed with each request: requests
        # merges every per-request setting with the session's (two runtime Protocol checks, ~10 µs, per
        # dict), and a CA bundle given as a path costs a stat() per request even for http://.
        self._request_kw: dict[str, dict[str, Any]] = {
            u: {"proxies": self._proxies[u] or None, "verify": self._verify if u.lower().startswith("https:") else True}
            for u in self._proxies
        }
        self._local = threading.local()
        #: every thread's session, so close() can close them and dead threads' sessions are closed
        self._sessions: list[tuple[threading.Thread, requests.Session]] = []
        self._sessions_lock = threading.Lock()

    # -- review time ------------------------------------------------------------------------------
    def validate(self, post: Post) -> list[str]:
        problems = []
        if not post.title.strip():
            problems.append("the title is empty; the webhook receiver needs one")
        if post.publish_at.tzinfo is None:
            problems.append("publish_at has no time zone; store aware UTC times")
        return problems

    # -- delivery ---------------------------------------------------------------------------------
    def publish(self, post: Post, ctx: DeliveryContext) -> Published:
        return self._deliver("POST", self.config.url, "publish", post, ctx, ctx.idempotency_key)

    def update(self, post: Post, ctx: DeliveryContext) -> Published:
        key = f"{ctx.idempotency_key}:update:v{post.version}"
        out = self._deliver("POST", self.config.update_url or self.config.url, "update", post, ctx, key)
        return Published(url=out.url or ctx.url, remote_id=out.remote_id or ctx.remote_id)

    def withdraw(self, post: Post, ctx: DeliveryContext) -> None:
        self._deliver(
            self.config.withdraw_method,
            self.config.withdraw_url or self.config.url,
            "withdraw",
            post,
            ctx,
            f"{ctx.idempotency_key}:withdraw",
        )

    # -- after publication -----------------------------------------------------------------------
    def check_health(self) -> HealthReport:
        """Whether the receiver's host accepts connections; sends no delivery."""
        parts = urlsplit(self.config.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with socket.create_connection((parts.hostname, port), timeout=min(self.config.timeout, 5)):
                pass
        except OSError as exc:
            return HealthReport(ok=False, detail=f"cannot connect to {parts.hostname}:{port}: {exc}")
        return HealthReport(ok=True, detail=f"{parts.hostname}:{port} accepts connections")

    def open_sessions(self) -> int:
        """How many pooled sessions are held (one per worker thread that delivered)."""
        with self._sessions_lock:
            return len(self._sessions)

    def close(self) -> None:
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
        for _, s in sessions:
            s.close()
        self._local = threading.local()

    # -- internals --------------------------------------------------------------------------------
    def payload(self, post: Post, ctx: DeliveryContext, event: str) -> dict[str, Any]:
        """The JSON document sent for ``event`` (documented field by field in docs/channels/webhook.md)."""
        return {
            "event": event,
            "item_id": post.item_id,
            "delivery_id": ctx.delivery_id,
            "version": post.version,
            "remote_id": ctx.remote_id,
            "title": post.title,
            "summary": post.summary,
            "category": post.category,
            "department": post.department,
            "author": post.author,
            "checklist_item": post.checklist_item,
            "checklist_name": post.checklist_name,
            "published_at": post.publish_at.astimezone(UTC).isoformat(),
            "updated_at": post.updated_at.astimezone(UTC).isoformat(),
            "body_markdown": post.body_markdown,
            "body_html": post.body_html,
            "site_url": post.site_url,
            "assets": [
                {
                    "ref": a.ref,
                    "sha256": a.sha256,
                    "filename": a.filename,
                    "content_type": a.content_type,
                    "role": a.role,
                }
                for a in post.assets
            ],
        }

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=2, pool_maxsize=self.config.pool_size, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.trust_env = False  # read once in __init__ (self._proxies, self._verify)
            session.verify = self._verify
            session.headers["User-Agent"] = "publisher-webhook/1"
            self._local.session = session
            with self._sessions_lock:
                # a worker pool that replaces its threads must not pile up idle connections
                dead = [s for t, s in self._sessions if not t.is_alive()]
                self._sessions = [(t, s) for t, s in self._sessions if t.is_alive()]
                self._sessions.append((threading.current_thread(), session))
            for s in dead:
                s.close()
        return session

    def _deliver(self, method: str, url: str, event: str, post: Post, ctx: DeliveryContext, key: str) -> Published:
        body = json.dumps(self.payload(post, ctx, event), ensure_ascii=False, separators=(",", ":")).encode()
        # wall-clock time, not env.clock: the receiver checks freshness against its own real clock
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            TIMESTAMP_HEADER: ts,
            SIGNATURE_HEADER: sign(self._secret, ts, body),
            "Idempotency-Key": key,
            "X-Publisher-Event": event,
        }
        where = self._where[url]
        timeout = self.config.timeout
        try:
            r = self._session().request(
                method,
                url,
                data=body,
                headers=headers,
                timeout=(timeout, timeout),
                allow_redirects=False,
                **self._request_kw[url],
            )
        except requests.ConnectTimeout as exc:
            raise TransientChannelError(f"{where}: no connection within {timeout:g} s") from exc
        except requests.ReadTimeout as exc:
            raise TransientChannelError(
                f"{where}: no answer within {timeout:g} s; it is sent again with the same Idempotency-Key"
            ) from exc
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise TransientChannelError(f"{where}: connection failed ({type(exc).__name__})") from exc
        except requests.RequestException as exc:
            raise PermanentChannelError(f"{where}: cannot send ({type(exc).__name__}: {exc})") from exc
        return self._outcome(r, where, event)

    def _outcome(self, r: requests.Response, where: str, event: str) -> Published:
        status = r.status_code
        if 200 <= status < 300:
            data: Any = {}
            if r.content:
                try:
                    data = json.loads(r.content)  # bytes: UTF-8/16/32 detected as RFC 8259 allows
                except ValueError:
                    data = {}
            if not isinstance(data, dict):
                data = {}
            url = data.get("url")
            rid = data.get("id")
            return Published(
                url=url if isinstance(url, str) and url.startswith(("http://", "https://")) else None,
                remote_id=str(rid)[:200] if rid not in (None, "") else None,
            )
        if event == "withdraw" and status == 410:
            return Published()  # already gone
        text = r.text[:QUOTE]
        if status == 429:
            raise QuotaExceeded(f"{where}: HTTP 429 rate limited: {text}", until=self._retry_after(r), code=status)
        if status >= 500 or status == 408:
            raise TransientChannelError(f"{where}: HTTP {status} {r.reason}: {text}", code=status)
        if 300 <= status < 400:
            raise PermanentChannelError(
                f"{where}: HTTP {status} redirect to {r.headers.get('Location')!r}; configure the final URL",
                code=status,
            )
        hint = " (check that both sides use the same secret and clocks are right)" if status == 401 else ""
        raise PermanentChannelError(f"{where}: HTTP {status} {r.reason}{hint}: {text}", code=status)

    def _retry_after(self, r: requests.Response) -> datetime:
        now = self.env.clock()
        value = (r.headers.get("Retry-After") or "").strip()
        if value.isdigit():
            return now + timedelta(seconds=int(value))
        if value:
            try:
                at = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                at = None
            if at is not None and at.tzinfo is not None:
                return max(at, now)
        return now + DEFAULT_QUOTA_WAIT
