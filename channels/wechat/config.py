"""``[channels.<name>]`` for ``type = "wechat"``, and the limits WeChat sets on an article."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator

from publisher.channel import ChannelConfig

#: WeChat's days (quotas, the datacube) run on Beijing time
BEIJING = ZoneInfo("Asia/Shanghai")
TITLE_MAX, AUTHOR_MAX, DIGEST_MAX = 32, 16, 128
CONTENT_MAX_CHARS, CONTENT_MAX_BYTES = 20_000, 1024 * 1024


class WeChatConfig(ChannelConfig):
    """``[channels.<name>]`` for ``type = "wechat"``."""

    #: the Official Account's AppID (公众号 开发者ID), e.g. "wx5a9d0c0e0c0ffee0"
    appid: str = Field(pattern=r"^\S{3,64}$")
    #: NAME of the environment variable holding the AppSecret (the secret itself never enters settings)
    secret_env: str = "PUBLISHER_WECHAT_SECRET"
    #: NAME of the env var holding the server-configuration Token (callbacks); None = no callbacks, poll
    callback_token_env: str | None = None
    #: NAME of the env var holding the EncodingAESKey (safe mode callbacks); None = plain mode only
    encoding_aes_key_env: str | None = None
    #: where the API lives: the sandbox (``http://127.0.0.1:N``) or a forward proxy in production
    api_base: str = "https://api.weixin.qq.com"
    #: seconds a callback's timestamp may be away from now (replay guard); 0 disables the check
    callback_max_age: float = Field(default=300.0, ge=0)
    #: "token" (GET /cgi-bin/token) or "stable_token" (POST, keeps the AppSecret out of URLs and logs)
    token_endpoint: Literal["token", "stable_token"] = "token"
    #: seconds per HTTP call
    timeout: float = Field(default=20.0, gt=0)
    #: title length the account takes (32 is documented; some accounts are reported to take 64)
    title_max: int = Field(default=TITLE_MAX, ge=1, le=64)
    #: author shown on the article when the item has none (≤ 16 characters)
    author: str = Field(default="", max_length=AUTHOR_MAX)
    #: use the item's author (falls back to ``author``); False always shows ``author``
    author_from_item: bool = True
    #: image used as the cover when an item has none (e.g. the school emblem); None = a cover is required
    default_cover: str | None = None
    #: the school's internal domains (e.g. "oa.example.edu.cn"): links to them are refused at review
    intranet_domains: list[str] = Field(default_factory=list)
    #: link the article's 阅读原文 to the item's page on the website
    link_to_site: bool = True
    need_open_comment: bool = False
    only_fans_can_comment: bool = False
    #: mass-send (群发) instead of freepublish: followers are notified; needs the account's mass quota
    mass_send: bool = False
    #: mass-send to one tag instead of all followers
    mass_send_tag_id: int | None = None
    #: seconds between successive freepublish/get polls (the last one repeats)
    poll_intervals: list[float] = Field(default_factory=lambda: [15.0, 30.0, 60.0, 120.0, 300.0, 600.0])
    #: seconds to look for the article of a submit whose outcome is unknown before re-submitting
    reconcile_grace: float = Field(default=900.0, ge=0)

    @field_validator("poll_intervals")
    @classmethod
    def _intervals(cls, v: list[float]) -> list[float]:
        if not v or any(x <= 0 for x in v):
            raise ValueError("poll_intervals must be a non-empty list of positive seconds")
        return v

    @field_validator("api_base")
    @classmethod
    def _base(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("api_base must be an http(s) URL")
        return v.rstrip("/")
