"""The static information-disclosure website (信息公开网), see :mod:`channels.website.channel`."""

from __future__ import annotations

from channels.website.channel import WebsiteChannel, WebsiteConfig
from channels.website.pages import category_slug

__all__ = ["WebsiteChannel", "WebsiteConfig", "category_slug"]
