"""WeChat Official Account (微信公众号): the channel, see :mod:`channels.wechat.channel`."""

from __future__ import annotations

from channels.wechat.channel import WeChatChannel
from channels.wechat.config import WeChatConfig

__all__ = ["WeChatChannel", "WeChatConfig"]
