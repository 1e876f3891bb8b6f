"""What goes wrong in a WeChat API call, as the pipeline's channel errors.

An errcode names a quota (retry after it resets), a busy system or a rejected token (transient), or
a refusal (permanent, with a hint for the operator where the cause is known). A timeout or a broken
connection during a call that may take effect without our hearing of it is AmbiguousOutcome.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import requests
from wechatpy.exceptions import WeChatClientException

from channels.wechat.config import BEIJING
from publisher.channel import (
    AmbiguousOutcome,
    CredentialsRefused,
    PermanentChannelError,
    QuotaExceeded,
    TransientChannelError,
)

TOKEN_ERRORS = frozenset({40001, 40014, 42001})
#: the appid, the app secret or this server's IP refused: the admins are told (CredentialsRefused)
CREDENTIAL_ERRORS = frozenset({40013, 40125, 40164})

PUBLISH_STATUS = {
    2: "the originality check failed (原创校验不通过)",
    3: "publishing failed (常规失败)",
    4: "the platform audit rejected it (平台审核不通过)",
    5: "it was deleted on the account after publishing (已被用户删除)",
    6: "it was banned by the platform (已被系统封禁)",
}
PERMANENT_HINTS = {
    40013: "the appid is wrong — check appid in settings",
    40125: "the app secret is wrong — check the environment variable named by secret_env",
    40164: "this server's IP is not on the account's IP whitelist — add it in the MP console (基本配置)",
    48001: "the account may not use this API — freepublish needs a verified (认证) account",
    50007: "the account is frozen",
    53503: "the draft failed WeChat's publish check — review the content",
    53504: "WeChat requires this draft to be published from the MP web console",
    53505: "WeChat requires this draft to be published from the MP web console",
}

_CREDENTIAL_RE = re.compile(r"(access_token|secret)=[^&\s)'\"]+")


def redacted(exc: Exception) -> Exception:
    """The same kind of error with access tokens and secrets in its message masked (it gets logged)."""
    try:
        return type(exc)(_CREDENTIAL_RE.sub(r"\1=***", str(exc)))
    except Exception:  # an exception type with an unusual constructor: keep only its name
        return RuntimeError(type(exc).__name__)


def _clean_errmsg(msg: Any) -> str:
    return re.sub(r"\s*(rid|hint): ?\S.*$", "", str(msg or "")).strip()


def _next_beijing_midnight(now: datetime) -> datetime:
    local = now.astimezone(BEIJING)
    return datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), BEIJING)


def _next_minute(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0) + timedelta(minutes=1)


def translate(what: str, exc: Exception, ambiguous: bool, *, clock: Callable[[], datetime], api_base: str) -> Exception:
    """The channel error for ``exc``, raised by a call doing ``what``; a bug of ours is raised as itself."""
    if isinstance(exc, WeChatClientException):
        return _map(what, exc, ambiguous, clock)
    if isinstance(exc, requests.Timeout):
        if ambiguous:
            return AmbiguousOutcome(f"WeChat did not answer {what} in time; it may have taken effect")
        return TransientChannelError(f"WeChat did not answer {what} in time")
    if isinstance(exc, requests.ConnectionError):
        if ambiguous:
            return AmbiguousOutcome(f"the connection broke during {what}; it may have taken effect")
        return TransientChannelError(f"cannot reach WeChat ({api_base}) for {what}")
    if isinstance(exc, requests.RequestException):
        return TransientChannelError(f"HTTP trouble during {what}: {type(exc).__name__}")
    if isinstance(exc, TypeError | KeyError | ValueError):
        return TransientChannelError(f"WeChat gave an unexpected answer to {what}")
    raise exc  # a bug of ours: let it surface as itself


def _map(what: str, exc: WeChatClientException, ambiguous: bool, clock: Callable[[], datetime]) -> Exception:
    code = exc.errcode
    msg = _clean_errmsg(exc.errmsg)
    if code is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        text = f"WeChat answered HTTP {status} to {what}"
        if ambiguous and (status is None or status >= 500):
            return AmbiguousOutcome(text + "; it may have taken effect")
        if status is None or status >= 500 or status in (408, 429):
            return TransientChannelError(text)
        return PermanentChannelError(text, code=status)
    now = clock()
    if code == 45009:
        return QuotaExceeded(
            f"WeChat's daily quota for {what} is used up (45009); it resets at midnight Beijing time",
            until=_next_beijing_midnight(now),
            code=code,
        )
    if code == 45028:  # no mass-send quota left: subscription accounts get one a day
        return QuotaExceeded(
            "the account's mass-send quota is used up (45028); it resets at midnight Beijing time",
            until=_next_beijing_midnight(now),
            code=code,
        )
    if code == 45011:
        return QuotaExceeded(
            f"WeChat's per-minute quota for {what} is used up (45011)", until=_next_minute(now), code=code
        )
    if code == -1 or code in TOKEN_ERRORS:
        extra = " even after a fresh access token" if code in TOKEN_ERRORS else " (system busy)"
        return TransientChannelError(f"WeChat refused {what}{extra}: {msg} (errcode {code})", code=code)
    hint = PERMANENT_HINTS.get(code)
    refusal = CredentialsRefused if code in CREDENTIAL_ERRORS else PermanentChannelError
    return refusal(f"WeChat refused {what}: {msg} (errcode {code})" + (f" — {hint}" if hint else ""), code=code)
