"""A 腾讯云 CDN sandbox: ``PurgeUrlsCache`` (API 3.0, version 2018-06-06) as its documentation describes it.

* ``POST /`` with ``X-TC-Action: PurgeUrlsCache``, ``X-TC-Version: 2018-06-06``, ``X-TC-Timestamp``
  and an ``Authorization: TC3-HMAC-SHA256 Credential=<SecretId>/<date>/cdn/tc3_request,
  SignedHeaders=…, Signature=…`` header, the body JSON ``{"Urls": [...], "Area"?, "UrlEncode"?}``;
* the signature is recomputed (channels.website.cdn.tc3_signature; content-type, host and
  x-tc-action signed) with the key of the SecretId: an unknown SecretId is
  ``AuthFailure.SecretIdNotFound``, a wrong signature (or a credential date or service that does not
  match) ``AuthFailure.SignatureFailure``, a timestamp more than 5 minutes from the sandbox's clock
  ``AuthFailure.SignatureExpire``, a malformed header ``AuthFailure.InvalidAuthorization``;
* another action is ``InvalidAction``, another version ``NoSuchVersion``; no ``Urls``
  ``MissingParameter``; a URL without ``http://``/``https://`` ``InvalidParameter``; a URL of a domain
  the sandbox does not accelerate ``ResourceNotFound.CdnHostNotExists``;
* quotas as documented: at most 1,000 URLs a request (``LimitExceeded.CdnPurgeUrlExceedBatchLimit``),
  10,000 a day (Beijing time; ``LimitExceeded.CdnPurgeUrlExceedDayLimit``), 20 requests a second
  (``RequestLimitExceeded``);
* answers HTTP 200 with ``{"Response": {"TaskId", "RequestId"}}`` or ``{"Response": {"Error": {"Code",
  "Message"}, "RequestId"}}``.

Faults (:meth:`fail_next`): ``internal`` (``InternalError``), ``rate`` (``RequestLimitExceeded``),
``unavailable`` (HTTP 503, no JSON). ``purged`` lists every URL accepted, in order.
``python -m channels.sandbox.tencent_cdn --port N``; the ``publisher.sandboxes`` entry point
(:func:`demo_sandbox`) starts one for ``publisher demo``, whose website purges through it.
"""

from __future__ import annotations

import argparse
import re
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from channels.sandbox._http import HttpSandbox, Reply, Request, serve_main
from channels.website.cdn import ALGORITHM, CONTENT_TYPE, QUOTA_DAY, VERSION, tc3_signature
from publisher.channel import SandboxHandle

_AUTH = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/,\s]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[a-z]+)/tc3_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})$"
)
BATCH, PER_DAY, PER_SECOND, SKEW = 1000, 10_000, 20, timedelta(minutes=5)


class TencentCdnSandbox(HttpSandbox):
    fault_kinds = ("internal", "rate", "unavailable")

    def __init__(
        self,
        *,
        keys: dict[str, str] | None = None,
        domains: tuple[str, ...] | None = ("xxgk.example.edu.cn",),
        per_day: int = PER_DAY,
        clock: Callable[[], datetime] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        #: SecretId -> SecretKey
        self.keys = dict(keys or {"AKIDsandbox": "sandbox-secret-key"})
        #: the domains (``host[:port]``) this CDN accelerates; None: any (the demo's site is wherever its
        #: settings put it)
        self.domains = None if domains is None else {d.lower() for d in domains}
        self.per_day = per_day
        self.clock = clock or (lambda: datetime.now(UTC))
        #: every URL accepted, in order
        self.purged: list[str] = []
        self._day: dict[str, int] = {}
        self._recent: deque[datetime] = deque()

    def handle(self, req: Request) -> Reply:
        if req.method != "POST" or req.path != "/":
            return Reply(404, {"error": f"no route {req.method} {req.path}"})
        now = self.clock()
        refused = self._authenticate(req, now)
        if refused:
            return self._error(*refused)
        action = req.headers.get("x-tc-action", "")
        if action != "PurgeUrlsCache":
            return self._error("InvalidAction", f"the action {action!r} is not supported by this sandbox")
        if req.headers.get("x-tc-version") != VERSION:
            return self._error("NoSuchVersion", f"version {req.headers.get('x-tc-version')!r} does not exist")
        while self._recent and now - self._recent[0] >= timedelta(seconds=1):
            self._recent.popleft()
        if len(self._recent) >= PER_SECOND:
            return self._error("RequestLimitExceeded", "请求的次数超过了频率限制 (20 per second)")
        self._recent.append(now)
        fault = self.take_fault()
        if fault == "unavailable":
            return Reply(503, b"service unavailable", content_type="text/plain")
        if fault == "internal":
            return self._error("InternalError", "内部错误 (sandbox fault)")
        if fault == "rate":
            return self._error("RequestLimitExceeded", "请求的次数超过了频率限制 (sandbox fault)")
        try:
            body = req.json()
        except (ValueError, UnicodeDecodeError):
            return self._error("InvalidParameter", "the body is not JSON")
        urls = body.get("Urls") if isinstance(body, dict) else None
        if not urls:
            return self._error("MissingParameter", "the parameter Urls is missing")
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            return self._error("InvalidParameter", "Urls must be an array of strings")
        if len(urls) > BATCH:
            return self._error("LimitExceeded.CdnPurgeUrlExceedBatchLimit", f"at most {BATCH} URLs a request")
        for url in urls:
            m = re.match(r"^https?://([^/?#]+)", url)
            if m is None:
                return self._error("InvalidParameter", f"the URL {url!r} has no http:// or https://")
            if self.domains is not None and m.group(1).lower() not in self.domains:
                return self._error("ResourceNotFound.CdnHostNotExists", f"the domain {m.group(1)} is not on this CDN")
        day = now.astimezone(QUOTA_DAY).date().isoformat()
        if self._day.get(day, 0) + len(urls) > self.per_day:
            return self._error("LimitExceeded.CdnPurgeUrlExceedDayLimit", f"at most {self.per_day} URLs a day")
        self._day[day] = self._day.get(day, 0) + len(urls)
        task = f"{int(now.timestamp())}-{uuid.uuid4().hex[:8]}"
        self.purged.extend(urls)
        self.ledger.append({"action": "purge", "urls": list(urls), "task": task})
        return Reply(200, {"Response": {"TaskId": task, "RequestId": str(uuid.uuid4())}})

    def _authenticate(self, req: Request, now: datetime) -> tuple[str, str] | None:
        m = _AUTH.match(req.headers.get("authorization", ""))
        if m is None:
            return "AuthFailure.InvalidAuthorization", f"the Authorization header is not {ALGORITHM} …"
        secret = self.keys.get(m["id"])
        if secret is None:
            self.ledger.append({"action": "refused", "code": "AuthFailure.SecretIdNotFound"})
            return "AuthFailure.SecretIdNotFound", "the SecretId does not exist"
        try:
            stamp = int(req.headers.get("x-tc-timestamp", ""))
        except ValueError:
            return "MissingParameter", "X-TC-Timestamp is missing"
        if abs(now - datetime.fromtimestamp(stamp, UTC)) > SKEW:
            return "AuthFailure.SignatureExpire", "the signature expired: the timestamp is more than 5 minutes off"
        ctype = req.headers.get("content-type", "")
        if m["signed"] != "content-type;host;x-tc-action" or ctype != CONTENT_TYPE:
            return "AuthFailure.SignatureFailure", "this sandbox checks SignedHeaders=content-type;host;x-tc-action"
        scope, expected = tc3_signature(
            secret_key=secret,
            service="cdn",
            host=req.headers.get("host", ""),
            action=req.headers.get("x-tc-action", ""),
            payload=req.body,
            timestamp=stamp,
            content_type=ctype,
        )
        if m["service"] != "cdn" or scope.split("/", 1)[0] != m["date"] or m["sig"] != expected:
            self.ledger.append({"action": "refused", "code": "AuthFailure.SignatureFailure"})
            return "AuthFailure.SignatureFailure", "the signature does not match"
        return None

    def _error(self, code: str, message: str) -> Reply:
        return Reply(200, {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": str(uuid.uuid4())}})

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {**super().snapshot(), "purged": list(self.purged)}


def demo_sandbox(workdir: Path) -> SandboxHandle:
    """The ``publisher.sandboxes`` entry point: a running CDN API and the ``[channels.X.cdn]`` table
    that points a website's purges at it (``publisher demo`` gives it to each website it runs)."""
    import secrets

    secret_id, secret_key = f"AKIDdemo{secrets.token_hex(8)}", secrets.token_hex(16)
    # any domain: the demo's site is at its settings' site_base_url (127.0.0.1:8000 unless changed)
    sandbox = TencentCdnSandbox(keys={secret_id: secret_key}, domains=None)
    base = sandbox.start()
    return SandboxHandle(
        config={},  # no channel: the cdn table below goes into the website's
        cdn={
            "type": "tencent",
            "endpoint": base,
            "secret_id_env": "PUBLISHER_DEMO_CDN_SECRET_ID",
            "secret_key_env": "PUBLISHER_DEMO_CDN_SECRET_KEY",
        },
        environ={"PUBLISHER_DEMO_CDN_SECRET_ID": secret_id, "PUBLISHER_DEMO_CDN_SECRET_KEY": secret_key},
        stop=sandbox.stop,
        describe=f"腾讯云 CDN PurgeUrlsCache at {base}/; the website's pages were purged through it after each change",
    )


def _build(args: argparse.Namespace) -> HttpSandbox:
    keys = {args.secret_id: args.secret_key}
    return TencentCdnSandbox(keys=keys, domains=tuple(args.domain) or None, host=args.host, port=args.port)


def _args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--secret-id", default="AKIDsandbox")
    parser.add_argument("--secret-key", default="sandbox-secret-key")
    parser.add_argument("--domain", action="append", default=[], help="a domain it accelerates (repeat; default: any)")


if __name__ == "__main__":
    serve_main(_build, _args, "腾讯云 CDN PurgeUrlsCache sandbox")
