"""What the WeChat sandbox holds and shares between its API areas: errcodes, faults, tokens, the account's state."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

BEIJING = ZoneInfo("Asia/Shanghai")
WECHAT_IMAGE_HOSTS = ("mmbiz.qpic.cn", "mmbiz.qlogo.cn")

ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40005: "invalid file type",
    40007: "invalid media_id",
    40009: "invalid image size",
    40013: "invalid appid",
    40014: "invalid access_token",
    40125: "invalid appsecret",
    41001: "access_token missing",
    42001: "access_token expired",
    44002: "empty post data",
    44003: "empty news data",
    45002: "content size out of limit",
    45003: "title size out of limit",
    45004: "description size out of limit",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    45065: "clientmsgid exist",
    45110: "author size out of limit",
    47001: "data format error",
    48001: "api unauthorized",
    53503: "该草稿未通过发布检查",
    53600: "Article ID 无效",
    61500: "date format error",
    61501: "date range error",
}


FAULT_ALIASES = {"busy": -1, "quota_daily": 45009, "quota_minute": 45011}
#: what ``handle`` returns for a ``lost_answer`` fault: the server closes the connection unanswered
DROP: tuple[int, bytes, str] = (0, b"", "")
#: what a chaos run draws: system busy, the per-minute quota ("api freq"), HTTP 500, a late answer,
#: and the access token expiring under the caller (42001, 40001 for a token no longer the latest)
DEFAULT_FAULT_MIX = ("busy", "quota_minute", "http500", "timeout", "lost_answer", "expire_token")


def magic_type(data: bytes) -> str | None:
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] in (b"GIF8",):
        return "gif"
    if data[:2] == b"BM":
        return "bmp"
    return None


def rid() -> str:
    return f"rid: {secrets.token_hex(4)}-{secrets.token_hex(4)}"


class Answer(Exception):
    """Raised inside a route to answer with an errcode."""

    def __init__(self, errcode: int, extra: dict | None = None):
        super().__init__(errcode)
        self.errcode = errcode
        self.extra = extra or {}


@dataclass
class Fault:
    kind: str
    path: str | None = None
    times: int = 1
    errcode: int | None = None
    seconds: float = 0.0
    status: int = 4


@dataclass
class Token:
    value: str
    expires_at: float


@dataclass
class State:
    tokens: dict[str, Token] = field(default_factory=dict)
    latest_token: str | None = None
    uploads: dict[str, dict] = field(default_factory=dict)  # url -> {sha256, type, size}
    materials: dict[str, dict] = field(default_factory=dict)  # media_id -> {type, size, url, sha256}
    drafts: dict[str, dict] = field(default_factory=dict)  # media_id -> {news_item, update_time}
    jobs: dict[str, dict] = field(default_factory=dict)  # publish_id -> job
    articles: dict[str, dict] = field(default_factory=dict)  # article_id -> article
    mass: dict[str, dict] = field(default_factory=dict)  # clientmsgid -> send
    faults: list[Fault] = field(default_factory=list)
    pending_audit: list[int] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    day_calls: dict[str, int] = field(default_factory=dict)
    callbacks: list[dict] = field(default_factory=list)
    faults_served: dict[str, int] = field(default_factory=dict)
    datacube: list[dict] = field(default_factory=list)  # {path, begin_date, end_date} of each datacube call


_IMG_RE = re.compile(r"<img\b[^>]*>", re.I)
_SRC_RE = re.compile(r"""\bsrc\s*=\s*["']?([^"'\s>]+)""", re.I)


def strip_content(content: str) -> tuple[str, list[str]]:
    """Drop scripts and images not hosted by WeChat, as the platform does with article content."""
    content = re.sub(r"<script\b.*?</script\s*>", "", content, flags=re.I | re.S)
    stripped: list[str] = []

    def keep(m: re.Match) -> str:
        src = _SRC_RE.search(m.group(0))
        host = urlsplit(src.group(1)).hostname if src else None
        if host in WECHAT_IMAGE_HOSTS:
            return m.group(0)
        stripped.append(src.group(1) if src else "")
        return ""

    return _IMG_RE.sub(keep, content), stripped
