"""企业微信 group robot (群机器人): ``POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY``.

The body is ``{"msgtype": "text", "text": {"content": ..., "mentioned_list": [userid]}}`` (content at
most 2048 bytes, UTF-8) or ``{"msgtype": "markdown", "markdown": {"content": ...}}`` (at most 4096
bytes; a mention is ``<@userid>`` inside the content). The person's address is their 企业微信
userid, mentioned in the group the robot posts to. The answer is ``{"errcode": 0, "errmsg": "ok"}``;
refusals as documented: 45009 (more than 20 messages a minute from this robot: wait a minute),
93000 (the key is not a valid webhook), 40008 (unknown msgtype), 44004 (empty content), 40058 (a
parameter out of range, e.g. too long).

Settings: ``[notify.transports.wecom]`` with ``key_env`` (the variable holding the robot's key),
``msgtype`` ("text" or "markdown"), ``url`` (the API's address; the sandbox's in tests and the demo),
``rate_per_minute`` (20, the robot's documented limit, paced across senders).
"""

from __future__ import annotations

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

TEXT_LIMIT, MARKDOWN_LIMIT = 2048, 4096
RATE_LIMITED = 45009
PERMANENT = {
    93000: "the key is not a valid webhook",
    40008: "unknown msgtype",
    44004: "empty content",
    40058: "a parameter out of range",
}


class WecomConfig(NotifierConfig):
    key_env: str = "PUBLISHER_WECOM_ROBOT_KEY"
    msgtype: Literal["text", "markdown"] = "text"
    url: str = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
    rate_per_minute: int | None = 20


def clip_utf8(text: str, limit: int) -> str:
    """``text`` within ``limit`` UTF-8 bytes (企业微信 counts bytes), cut on a character with "…"."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", errors="ignore") + "…"


class WecomNotifier(RobotNotifier):
    name: ClassVar[str] = "wecom"
    Config: ClassVar[type[NotifierConfig]] = WecomConfig
    config: WecomConfig

    def __init__(self, config: WecomConfig) -> None:
        super().__init__(config)
        self.key = secret_from_env(config.key_env, self.name)

    def secrets(self) -> tuple[str, ...]:
        return (self.key,)

    def body(self, message: Message) -> dict:
        if self.config.msgtype == "markdown":
            content = f"**{message.subject}**\n<@{message.address}>\n{message.text}"
            return {"msgtype": "markdown", "markdown": {"content": clip_utf8(content, MARKDOWN_LIMIT)}}
        content = clip_utf8(f"【{message.subject}】\n{message.text}", TEXT_LIMIT)
        return {"msgtype": "text", "text": {"content": content, "mentioned_list": [message.address]}}

    def send(self, message: Message) -> None:
        self.post(f"{self.config.url}?key={self.key}", self.body(message))

    def refusal(self, code: int, errmsg: str) -> NotifyError:
        if code == RATE_LIMITED:
            until = datetime.now(UTC) + timedelta(minutes=1)
            return NotifyRateLimited(f"wecom robot: errcode {code} {errmsg}", until=until)
        if code in PERMANENT:
            return NotifyPermanent(f"wecom robot: errcode {code} ({PERMANENT[code]}) {errmsg}")
        return NotifyTransient(f"wecom robot: errcode {code} {errmsg}")
