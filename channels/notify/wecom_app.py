"""企业微信 application message (应用消息) through the corp API: one message to one member, by userid.

Unlike the group robot (:mod:`.wecom`), the message reaches the person in their own 企业微信 chat with
the office's self-built app (自建应用), not a group. Two calls, as the API documents them:

* ``GET /cgi-bin/gettoken?corpid=ID&corpsecret=SECRET`` → ``{"errcode": 0, "access_token": …,
  "expires_in": 7200}``. The token is cached and reused until shortly before it expires (the API
  limits gettoken calls; within its validity a repeated gettoken returns the same token, so several
  senders each caching one do not knock each other's out). A send answered 40014 (invalid token),
  42001 (token expired) or 41001 (no token) drops the cache, gets a new token and sends once more.
* ``POST /cgi-bin/message/send?access_token=TOKEN`` with ``{"touser": userid, "msgtype": "textcard",
  "agentid": N, "textcard": {"title", "description", "url", "btntxt"}}`` (or ``"text"`` with
  ``content``), and ``enable_duplicate_check`` / ``duplicate_check_interval``: the service drops a
  message identical to one sent to the same member within the interval (at most 4 hours), so a repeat
  after a sender was killed between the service's acceptance and our record does not reach the
  person twice. Limits: text ``content`` 2048 bytes; textcard ``title`` 128 and ``description`` 512
  (the service cuts longer ones; this transport clips them first, on a character boundary).

The answer: ``errcode`` 0, with ``invaliduser`` (lower-cased userids, "|"-separated) naming members
it could not reach when others were reached; when no recipient is valid the answer is 81013. A send
whose one recipient is in ``invaliduser`` (or ``unlicenseduser``) is refused for good.

What each errcode means here:

=============================  ===============================================================
40001, 40013, 40091            the secret or the corpid is wrong: permanent (check settings and env)
60020                          this server's IP is not among the app's 企业可信IP: permanent
40014, 42001, 41001            the token: a fresh one, once; again → transient
45009, 45033                   over the API's frequency or concurrency limit: wait a minute
81013, 82001                   the userid is not a member, or outside the app's 可见范围: permanent
40056, 301002, 48002           the agentid is wrong, or the secret is not this app's: permanent
-1, anything else              transient
=============================  ===============================================================

The person's address is their 企业微信 userid (账号, in the admin console's member page), set with
``publisher notify set NAME --transport wecom_app --address USERID``.

Settings: ``[notify.transports.wecom_app]`` with ``corpid`` (企业ID, not a secret), ``agentid``,
``secret_env`` (the variable holding the app's Secret), ``msgtype`` ("textcard" or "text"),
``api_base`` (the sandbox's in tests and the demo), ``duplicate_check_seconds`` (0 turns it off)
and ``rate_per_minute``.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

import requests
from pydantic import Field

from channels.notify.wecom import clip_utf8
from publisher.notifier import (
    Message,
    Notifier,
    NotifierConfig,
    NotifyError,
    NotifyPermanent,
    NotifyRateLimited,
    NotifyTransient,
    secret_from_env,
)

TEXT_LIMIT, TITLE_LIMIT, DESCRIPTION_LIMIT = 2048, 128, 512
TOKEN_ERRORS = frozenset({40014, 42001, 41001})
RATE_LIMITED = frozenset({45009, 45033})
PERMANENT = {
    40001: "the app's Secret is wrong — check the variable named by secret_env",
    40091: "the app's Secret is wrong — check the variable named by secret_env",
    40013: "the corpid (企业ID) is wrong — check corpid in settings",
    60020: "this server's IP is not among the app's trusted IPs (企业可信IP) — add it in the admin console",
    81013: "the userid is not a member, or outside the app's visible range (可见范围)",
    82001: "no recipient: the userid is empty",
    40056: "the agentid is wrong — check agentid in settings",
    301002: "the Secret is not this app's (agentid) — check agentid and secret_env",
    48002: "the app may not call this API",
    44004: "empty content",
}
#: a token is renewed this long before the service says it expires
EARLY = 300.0


class WecomAppConfig(NotifierConfig):
    corpid: str = Field(min_length=1)
    agentid: int
    secret_env: str = "PUBLISHER_WECOM_APP_SECRET"
    msgtype: Literal["textcard", "text"] = "textcard"
    api_base: str = "https://qyapi.weixin.qq.com"
    #: the service drops a message identical to one sent to the same member within this many seconds
    duplicate_check_seconds: int = Field(1800, ge=0, le=14400)
    #: paced across every sender of the store (the API limits each member to 30 app messages a minute)
    rate_per_minute: int | None = 30
    timeout: float = 10.0


class WecomAppNotifier(Notifier):
    name: ClassVar[str] = "wecom_app"
    Config: ClassVar[type[NotifierConfig]] = WecomAppConfig
    config: WecomAppConfig

    def __init__(self, config: WecomAppConfig) -> None:
        super().__init__(config)
        self.secret = secret_from_env(config.secret_env, self.name)
        self.session = requests.Session()
        self._lock = threading.Lock()
        #: (token, monotonic time after which it is not used)
        self._token: tuple[str, float] | None = None
        #: how many tokens were fetched (what the cache saves shows in the tests)
        self.token_fetches = 0

    # ------------------------------------------------------------------------------------ the calls
    def _mask(self, text: str) -> str:
        for s in (self.secret, self._token[0] if self._token else ""):
            if s:
                text = text.replace(s, "***")
        return text

    def _call(self, method: str, path: str, *, params: dict[str, Any], body: Any = None) -> dict[str, Any]:
        """One API call; its JSON answer (errcode not looked at), or NotifyTransient for no answer."""
        url = f"{self.config.api_base.rstrip('/')}{path}"
        try:
            resp = self.session.request(method, url, params=params, json=body, timeout=self.config.timeout)
        except requests.RequestException as exc:
            raise NotifyTransient(
                f"wecom app: cannot reach {self.config.api_base} ({type(exc).__name__}: {self._mask(str(exc))})"
            ) from None  # the URL holds the token or the secret: no chained traceback
        if resp.status_code >= 500:
            raise NotifyTransient(f"wecom app: {path} answered HTTP {resp.status_code}")
        try:
            answer = resp.json()
            int(answer.get("errcode", 0))
        except (ValueError, AttributeError, TypeError):
            raise NotifyTransient(
                f"wecom app: {path} answered HTTP {resp.status_code} without the API's JSON"
            ) from None
        return answer

    def token(self, *, fresh: bool = False) -> str:
        """The cached access_token, or a new one from gettoken (``fresh``: a new one in any case)."""
        with self._lock:
            if not fresh and self._token is not None and time.monotonic() < self._token[1]:
                return self._token[0]
            self._token = None
            answer = self._call(
                "GET", "/cgi-bin/gettoken", params={"corpid": self.config.corpid, "corpsecret": self.secret}
            )
            code = int(answer.get("errcode", 0))
            if code != 0 or not answer.get("access_token"):
                raise self.refusal(code, str(answer.get("errmsg", "")), "gettoken")
            self.token_fetches += 1
            ttl = float(answer.get("expires_in") or 7200)
            self._token = (str(answer["access_token"]), time.monotonic() + max(ttl - EARLY, ttl / 2))
            return self._token[0]

    def refusal(self, code: int, errmsg: str, what: str) -> NotifyError:
        """The error an errcode other than 0 means."""
        errmsg = self._mask(errmsg)
        if code in RATE_LIMITED:
            until = datetime.now(UTC) + timedelta(minutes=1)
            return NotifyRateLimited(f"wecom app: {what} errcode {code} {errmsg}", until=until)
        if code in PERMANENT:
            return NotifyPermanent(f"wecom app: {what} errcode {code} ({PERMANENT[code]}) {errmsg}")
        if code in TOKEN_ERRORS:
            return NotifyTransient(f"wecom app: {what} errcode {code} even with a fresh access_token: {errmsg}")
        return NotifyTransient(f"wecom app: {what} errcode {code} {errmsg}")

    # ----------------------------------------------------------------------------------- a message
    def body(self, message: Message) -> dict[str, Any]:
        out: dict[str, Any] = {"touser": message.address, "agentid": self.config.agentid, "safe": 0}
        if self.config.msgtype == "textcard":
            # the text ends with the link, which the card's button carries: not repeated in the description
            text = message.text.removesuffix(message.link).rstrip()
            out["msgtype"] = "textcard"
            out["textcard"] = {
                "title": clip_utf8(message.subject, TITLE_LIMIT),
                "description": clip_utf8(text, DESCRIPTION_LIMIT),
                "url": message.link,
                "btntxt": "去处理",
            }
        else:
            out["msgtype"] = "text"
            out["text"] = {"content": clip_utf8(f"【{message.subject}】\n{message.text}", TEXT_LIMIT)}
        if self.config.duplicate_check_seconds:
            out["enable_duplicate_check"] = 1
            out["duplicate_check_interval"] = self.config.duplicate_check_seconds
        return out

    def send(self, message: Message) -> None:
        if not message.address.strip() or "|" in message.address:
            raise NotifyPermanent(
                f"wecom app: {message.address!r} is not one userid "
                "(publisher notify set NAME --transport wecom_app --address USERID)"
            )
        body = self.body(message)
        answer = self._call("POST", "/cgi-bin/message/send", params={"access_token": self.token()}, body=body)
        code = int(answer.get("errcode", 0))
        if code in TOKEN_ERRORS:  # expired or revoked since it was cached: a fresh one, once
            fresh = self.token(fresh=True)
            answer = self._call("POST", "/cgi-bin/message/send", params={"access_token": fresh}, body=body)
            code = int(answer.get("errcode", 0))
        if code != 0:
            raise self.refusal(code, str(answer.get("errmsg", "")), "message/send")
        who = message.address.lower()  # the service answers the userids lower-cased
        for field in ("invaliduser", "unlicenseduser"):
            if who in str(answer.get(field) or "").lower().split("|"):
                raise NotifyPermanent(
                    f"wecom app: {message.address} is in the answer's {field}: not a member, outside the app's "
                    "visible range (可见范围), or without a licence — check the userid (publisher notify set)"
                )

    def check(self) -> str:
        """gettoken: the corpid, the Secret and this server's IP, without sending a message."""
        self.token(fresh=True)
        return f"gettoken ok for corpid {self.config.corpid} (agent {self.config.agentid}; nothing sent)"

    def close(self) -> None:
        self.session.close()
