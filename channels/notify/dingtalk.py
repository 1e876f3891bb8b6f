"""钉钉 custom robot (自定义机器人) with the signed webhook (加签).

``POST https://oapi.dingtalk.com/robot/send?access_token=TOKEN&timestamp=T&sign=S`` where ``T`` is
the current time in milliseconds and ``S`` is ``urlencode(base64(HMAC-SHA256(key=secret,
msg=f"{T}\\n{secret}")))``. The robot refuses a timestamp more than an hour from its clock and a
sign that does not match (errcode 310000), an unknown token (300001), and more than 20 messages a
minute (130101, "send too fast": the robot then refuses for 10 minutes). The body is
``{"msgtype": "text", "text": {"content": ...}, "at": {"atUserIds": [userid]}}`` or markdown
``{"msgtype": "markdown", "markdown": {"title": ..., "text": ...}, "at": ...}``. The person's
address is their 钉钉 userid, @-mentioned in the group.

Settings: ``[notify.transports.dingtalk]`` with ``token_env`` and ``secret_env`` (the variables
holding the access_token and the SEC… secret), ``msgtype``, ``url`` (the sandbox's in tests and the
demo) and ``rate_per_minute`` (20, paced across senders).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Literal

from publisher.notifier import (
    Message,
    NotifierConfig,
    NotifyError,
    NotifyPermanent,
    NotifyRateLimited,
    NotifyTransient,
    secret_from_env,
)

from ._robot import RobotNotifier

SIGN_REFUSED, TOKEN_UNKNOWN, TOO_FAST = 310000, 300001, 130101
#: how long the robot refuses after "send too fast" (its documentation: 限流10分钟)
PENALTY = timedelta(minutes=10)


def sign(timestamp_ms: int, secret: str) -> str:
    """The documented sign: base64 of HMAC-SHA256 over "timestamp\\nsecret", URL-encoded."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest))


class DingtalkConfig(NotifierConfig):
    token_env: str = "PUBLISHER_DINGTALK_TOKEN"
    secret_env: str = "PUBLISHER_DINGTALK_SECRET"
    msgtype: Literal["text", "markdown"] = "text"
    url: str = "https://oapi.dingtalk.com/robot/send"
    rate_per_minute: int | None = 20


class DingtalkNotifier(RobotNotifier):
    name: ClassVar[str] = "dingtalk"
    Config: ClassVar[type[NotifierConfig]] = DingtalkConfig
    config: DingtalkConfig

    def __init__(self, config: DingtalkConfig) -> None:
        super().__init__(config)
        self.token = secret_from_env(config.token_env, self.name)
        self.secret = secret_from_env(config.secret_env, self.name)

    def secrets(self) -> tuple[str, ...]:
        return (self.token, self.secret)

    def body(self, message: Message) -> dict:
        at = {"atUserIds": [message.address], "isAtAll": False}
        if self.config.msgtype == "markdown":
            text = f"### {message.subject}\n\n@{message.address}\n\n{message.text}"
            return {"msgtype": "markdown", "markdown": {"title": message.subject, "text": text}, "at": at}
        return {"msgtype": "text", "text": {"content": f"【{message.subject}】\n{message.text}"}, "at": at}

    def url(self, now_ms: int | None = None) -> str:
        ts = int(time.time() * 1000) if now_ms is None else now_ms
        # the sign is already URL-encoded, as the documentation builds it
        return f"{self.config.url}?access_token={self.token}&timestamp={ts}&sign={sign(ts, self.secret)}"

    def send(self, message: Message) -> None:
        self.post(self.url(), self.body(message))

    def refusal(self, code: int, errmsg: str) -> NotifyError:
        if code == TOO_FAST:
            until = datetime.now(UTC) + PENALTY
            return NotifyRateLimited(f"dingtalk robot: errcode {code} {errmsg}", until=until)
        if code in (SIGN_REFUSED, TOKEN_UNKNOWN):
            return NotifyPermanent(
                f"dingtalk robot: errcode {code} {errmsg} (check the token, the secret and this machine's clock)"
            )
        return NotifyTransient(f"dingtalk robot: errcode {code} {errmsg}")
