"""Purging a CDN's cached copies after the site changed (``[channels.X.cdn]``).

A CDN in front of the bucket (or the folder) keeps a page for its cache time; a withdrawn page — a
number that should not have been published, a 公示期 that ended — would stay up until then. So after
a change commits, the website asks the CDN to drop the URLs it wrote or deleted. The interface is
:class:`CdnPurger`; the one implementation is 腾讯云 CDN's ``PurgeUrlsCache`` (:class:`TencentCdn`),
signed with TC3-HMAC-SHA256; ``channels.sandbox.tencent_cdn`` emulates it.

The purge itself is made durable by the site's state (``site_purge``, channels.website.store): the
URLs are queued in the change's own transaction and removed only once the CDN accepted them, so a
crash between the commit and the purge, or a CDN that refuses, loses nothing (see
docs/channels/website.md, "CDN purge").

Errors are publisher.channel's: :class:`CredentialsRefused` (the key is wrong or lacks the right),
:class:`QuotaExceeded` (the day's or the second's quota), :class:`TransientChannelError` (network,
5xx, the service's internal errors), :class:`PermanentChannelError` (anything else the service
refused: a URL of a domain not on the CDN, a malformed request). Each carries the service's code.
"""

from __future__ import annotations

import abc
import hashlib
import hmac
import json
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Literal
from urllib.parse import urlsplit

import requests
from pydantic import BaseModel, ConfigDict, Field

from channels._http import send
from publisher.channel import (
    ChannelError,
    CredentialsRefused,
    PermanentChannelError,
    QuotaExceeded,
    TransientChannelError,
)
from publisher.errors import MissingSecret


class CdnConfig(BaseModel):
    """``[channels.X.cdn]``: the CDN in front of the site; the keys are the secrets' variable names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["tencent"] = "tencent"
    #: the API's endpoint (腾讯云: ``https://cdn.tencentcloudapi.com``; the sandbox's address in tests)
    endpoint: str = "https://cdn.tencentcloudapi.com"
    #: purge only the 境内 (``mainland``) or 境外 (``overseas``) nodes; none: the domain's own region
    area: Literal["mainland", "overseas"] | None = None
    secret_id_env: str = "PUBLISHER_CDN_SECRET_ID"
    secret_key_env: str = "PUBLISHER_CDN_SECRET_KEY"
    #: URLs in one request (the API takes at most 1,000)
    batch: int = Field(default=1000, ge=1, le=1000)
    #: failed attempts of one URL after which the admins are told (channel_problem, once a day)
    alert_after: int = Field(default=3, ge=1, le=100)
    timeout_seconds: float = Field(default=10, gt=0, le=120)


class CdnPurger(abc.ABC):
    """Asks a CDN to drop its cached copies of some URLs."""

    #: the most URLs :meth:`purge` takes at once
    batch: int = 1000

    @abc.abstractmethod
    def purge(self, urls: Sequence[str]) -> str:
        """Purge ``urls`` (at most :attr:`batch`, each with its scheme); returns the service's task id.

        Raises CredentialsRefused, QuotaExceeded, TransientChannelError or PermanentChannelError
        (each with the service's ``code``); nothing was purged when it raises.
        """


# ---------------------------------------------------------------------------------- TC3-HMAC-SHA256
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def tc3_signature(
    *, secret_key: str, service: str, host: str, action: str, payload: bytes, timestamp: int, content_type: str
) -> tuple[str, str]:
    """The TC3-HMAC-SHA256 signature of a POST to ``/`` with a JSON ``payload`` (腾讯云 API 3.0,
    "签名方法 v3"): returns (credential scope, hex signature). Signed headers: content-type, host and
    x-tc-action (the action in lower case). Used by the client and by the sandbox that checks it."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical_headers = f"content-type:{content_type}\nhost:{host}\nx-tc-action:{action.lower()}\n"
    canonical = "\n".join(["POST", "/", "", canonical_headers, SIGNED_HEADERS, _sha256(payload)])
    scope = f"{date}/{service}/tc3_request"
    to_sign = "\n".join([ALGORITHM, str(timestamp), scope, _sha256(canonical.encode("utf-8"))])
    key = _hmac(_hmac(_hmac(("TC3" + secret_key).encode("utf-8"), date), service), "tc3_request")
    return scope, hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


ALGORITHM = "TC3-HMAC-SHA256"
SIGNED_HEADERS = "content-type;host;x-tc-action"
CONTENT_TYPE = "application/json; charset=utf-8"
VERSION = "2018-06-06"

#: 腾讯云's error codes (公共错误码 and PurgeUrlsCache's own) by what the publisher does about them
_CREDENTIALS = ("AuthFailure", "UnauthorizedOperation")
_QUOTA = ("RequestLimitExceeded", "LimitExceeded")
_TRANSIENT = ("InternalError", "ResourceUnavailable", "FailedOperation.CdnSystemError")


#: the day of the purge quota: 腾讯云 counts it by Beijing time
QUOTA_DAY = timezone(timedelta(hours=8))


def translate(code: str, message: str, now: datetime) -> ChannelError:
    """The publisher's error for a 腾讯云 API error ``code``: the family (the part before the first
    dot) decides, except for AuthFailure.SignatureExpire (the clock: worth a retry). A quota says
    until when: the next Beijing midnight for the day's URLs, a second for the request rate."""
    text = f"腾讯云 CDN refused the purge: {code} {message}".strip()
    family = code.split(".", 1)[0]
    if code == "AuthFailure.SignatureExpire":
        return TransientChannelError(text + "; check this host's clock", code=code)
    if family in _CREDENTIALS:
        return CredentialsRefused(text + "; check the key and its CDN permissions", code=code)
    if family in _QUOTA:
        if "Day" in code:
            local = now.astimezone(QUOTA_DAY)
            until = datetime.combine(local.date() + timedelta(days=1), time(), QUOTA_DAY)
        else:
            until = now + timedelta(seconds=1)
        return QuotaExceeded(text, until=until, code=code)
    if code in _TRANSIENT or family in _TRANSIENT:
        return TransientChannelError(text + "; will retry", code=code)
    return PermanentChannelError(text, code=code)


class TencentCdn(CdnPurger):
    """腾讯云 CDN ``PurgeUrlsCache`` (API 3.0, version 2018-06-06): POST JSON ``{"Urls": [...]}`` to the
    endpoint, signed with TC3-HMAC-SHA256; the answer is ``{"Response": {"TaskId", "RequestId"}}`` or
    ``{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`` (HTTP 200 either way)."""

    service = "cdn"
    action = "PurgeUrlsCache"

    def __init__(
        self,
        config: CdnConfig,
        *,
        environ: Mapping[str, str] | None = None,
        session: requests.Session | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.secret_id = env.get(config.secret_id_env, "")
        self.secret_key = env.get(config.secret_key_env, "")
        if not self.secret_id or not self.secret_key:
            missing = config.secret_id_env if not self.secret_id else config.secret_key_env
            raise MissingSecret(f"the CDN purge: environment variable {missing} is not set")
        self.config = config
        self.batch = config.batch
        self.endpoint = config.endpoint.rstrip("/") + "/"
        self.host = urlsplit(self.endpoint).netloc
        self.session = session or requests.Session()
        self._now = clock or (lambda: datetime.now(UTC))

    def purge(self, urls: Sequence[str]) -> str:
        if not urls:
            return ""
        if len(urls) > self.batch:
            raise ValueError(f"at most {self.batch} URLs at once, not {len(urls)}")
        body: dict[str, object] = {"Urls": list(urls)}
        if self.config.area:
            body["Area"] = self.config.area
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        now = self._now()
        timestamp = int(now.timestamp())
        scope, signature = tc3_signature(
            secret_key=self.secret_key,
            service=self.service,
            host=self.host,
            action=self.action,
            payload=payload,
            timestamp=timestamp,
            content_type=CONTENT_TYPE,
        )
        headers = {
            "Authorization": f"{ALGORITHM} Credential={self.secret_id}/{scope}, "
            f"SignedHeaders={SIGNED_HEADERS}, Signature={signature}",
            "Content-Type": CONTENT_TYPE,
            "Host": self.host,
            "X-TC-Action": self.action,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Version": VERSION,
        }
        r = send(
            self.session,
            "POST",
            self.endpoint,
            what="腾讯云 CDN purge",
            data=payload,
            headers=headers,
            timeout=self.config.timeout_seconds,
            secrets=(self.secret_key,),
        )
        if r.status_code >= 500:
            raise TransientChannelError(
                f"腾讯云 CDN answered HTTP {r.status_code}; will retry", code=str(r.status_code)
            )
        try:
            answer = r.json()["Response"]
        except (ValueError, KeyError, TypeError) as exc:
            raise TransientChannelError(
                f"腾讯云 CDN answered HTTP {r.status_code} without a Response; will retry", code=str(r.status_code)
            ) from exc
        error = answer.get("Error")
        if error:
            raise translate(str(error.get("Code") or ""), str(error.get("Message") or ""), now)
        return str(answer.get("TaskId") or "")


def open_purger(config: CdnConfig, *, environ: Mapping[str, str] | None = None) -> CdnPurger:
    """The purger a ``cdn`` table names."""
    return TencentCdn(config, environ=environ)
