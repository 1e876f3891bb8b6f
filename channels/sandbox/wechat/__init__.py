"""The WeChat Official Account API sandbox, see :mod:`channels.sandbox.wechat.sandbox`."""

from __future__ import annotations

from channels.sandbox.wechat.publish import aes_encrypt
from channels.sandbox.wechat.sandbox import WeChatSandbox, demo_sandbox

__all__ = ["WeChatSandbox", "aes_encrypt", "demo_sandbox"]
