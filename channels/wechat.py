"""WeChat Official Account (微信公众号): draft → freepublish, with the outcome from the callback or polling.

The steps of one delivery, each recorded with ``ctx.save_state`` before the next is taken::

    (validate) → thumb (permanent material, cached by hash) → content images (uploadimg, cached by hash)
      → step=drafting, draft_adds+1 → draft/add → draft_media_id, step=drafted
      → (draft_adds > 1: delete our other drafts; once more after publication) → step=submitting
      → freepublish/submit → publish_id, step=submitted   ──(InProgress)──┐
      → PUBLISHJOBFINISH callback (kv) or freepublish/get  → article_id, url, step=published ◄┘

``draft/add`` has no idempotency key either. Before each request the state counts it
(``draft_adds``) and keeps what the draft will carry (``draft_marks``: title, thumb, author,
digest, 阅读原文 link) and since when (``drafting_since``). An attempt that finds ``step=drafting``
searches the whole draft box for a draft with those marks and adopts it; only when there is none
does it add another. When more than one request may have made a draft, every other draft of ours
is deleted (``draft/delete``) before the draft is submitted, and once more after publication (a
request held up on the way may reach WeChat late), so a late or lost answer leaves no orphan draft.

``freepublish/submit`` has no idempotency key. When an attempt dies (or times out) after
``step=submitting`` was saved but before ``publish_id`` was, the next call *reconciles*: it looks for
the article in ``freepublish/batchget`` (same title and thumb, published since the attempt), waits
while the draft may still be in a running job, and re-submits only when the draft is still in the
draft box after ``reconcile_grace`` seconds — WeChat removes a draft once it is published, so a
draft still there means no article came of it. No article is ever published twice.

With ``mass_send`` the draft is sent with ``message/mass/sendall`` instead of freepublish; its
``clientmsgid`` (derived from the delivery) makes a repeated send after a crash a no-op (45065).

wechatpy is used with ``auto_retry=False`` (its own retry recurses without limit on a bad token); a
rejected token is refreshed once here, and only when no other process already replaced it. The
token lives in ``env.kv`` through a wechatpy session-storage adapter, so all workers share one.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qs, urlsplit
from xml.parsers.expat import ExpatError
from zoneinfo import ZoneInfo

import requests
import xmltodict
from pydantic import Field, field_validator
from wechatpy import WeChatClient
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException, WeChatClientException
from wechatpy.session import SessionStorage

from channels import wechat_format, wechat_media
from publisher.channel import (
    AmbiguousOutcome,
    Asset,
    CallbackReply,
    Channel,
    ChannelConfig,
    ChannelEnv,
    ChannelError,
    DeliveryContext,
    HealthReport,
    InProgress,
    LinkStatus,
    PermanentChannelError,
    Post,
    Published,
    QuotaExceeded,
    RemotePublication,
    StatRow,
    TransientChannelError,
    env_secret,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

BEIJING = ZoneInfo("Asia/Shanghai")
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
TITLE_MAX, AUTHOR_MAX, DIGEST_MAX = 32, 16, 128
CONTENT_MAX_CHARS, CONTENT_MAX_BYTES = 20_000, 1024 * 1024
#: the length of a re-hosted image URL, used to measure content at review time (before uploading)
_URL_ALLOWANCE = 160  # real mmbiz.qpic.cn URLs run to ~130 characters
_ASSET_RE = re.compile(r"asset://([0-9a-f]{64})")

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


# --------------------------------------------------------------------------------- token storage
class KVSessionStorage(SessionStorage):
    """wechatpy session storage over ``env.kv``: one access token for every worker process."""

    def __init__(self, kv: Any, prefix: str, clock: Callable[[], datetime]) -> None:
        self.kv, self.prefix, self.clock = kv, prefix, clock

    def get(self, key: str, default: Any = None) -> Any:
        raw = self.kv.get(self.prefix + key)
        return default if raw is None else json.loads(raw)

    def set(self, key: str, value: Any, ttl: int | None = None) -> None:
        if value is None:
            return
        expires = self.clock() + timedelta(seconds=int(ttl)) if ttl else None
        self.kv.set(self.prefix + key, json.dumps(value), expires_at=expires)

    def delete(self, key: str) -> None:
        self.kv.delete(self.prefix + key)


class _Client(WeChatClient):
    """wechatpy's client pointed at ``api_base``, with a timeout and no secret in errors on token fetch."""

    def __init__(
        self,
        *,
        api_base: str,
        appid: str,
        secret: str,
        session: SessionStorage,
        timeout: float,
        endpoint: str,
    ):
        super().__init__(appid, secret, session=session, timeout=timeout, auto_retry=False)
        self.API_BASE_URL = f"{api_base}/cgi-bin/"
        self.datacube.API_BASE_URL = f"{api_base}/datacube/"
        self._endpoint = endpoint
        self._token_url = f"{api_base}/cgi-bin/{endpoint}"
        #: set after a rejection so that stable_token hands out a new token, not the rejected one
        self.force_refresh = False

    def fetch_access_token(self) -> dict:
        try:
            if self._endpoint == "stable_token":
                body = {
                    "grant_type": "client_credential",
                    "appid": self.appid,
                    "secret": self.secret,
                    "force_refresh": self.force_refresh,
                }
                res = self._http.post(self._token_url, data=json.dumps(body).encode(), timeout=self.timeout)
            else:
                params = {"grant_type": "client_credential", "appid": self.appid, "secret": self.secret}
                res = self._http.get(self._token_url, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            # requests puts the URL (with ?secret=...) in its message: raise a same-kind error without it
            raise type(exc)(f"{type(exc).__name__} while fetching an access token from {self._token_url}") from None
        self.force_refresh = False
        if res.status_code >= 400:
            raise WeChatClientException(None, None, client=self, response=res)
        result = res.json()
        if result.get("errcode"):
            raise WeChatClientException(result["errcode"], result.get("errmsg"), client=self, response=res)
        expires_in = int(result.get("expires_in", 7200))
        # stored for a little less than its life, so no call goes out with a token about to lapse;
        # the margin shrinks with short-lived tokens instead of refetching on every call
        keep = max(1, expires_in - min(60, expires_in // 10))
        self.session.set(self.access_token_key, result["access_token"], keep)
        self.expires_at = int(time.time()) + keep
        return result

    @property
    def access_token(self) -> str:
        """The shared token while the store holds it (the store expires it), else a fresh one."""
        token = self.session.get(self.access_token_key)
        if token:
            return token
        return self.fetch_access_token()["access_token"]


_CREDENTIAL_RE = re.compile(r"(access_token|secret)=[^&\s)'\"]+")


def _redacted(exc: Exception) -> Exception:
    """The same kind of error with access tokens and secrets in its message masked (it gets logged)."""
    try:
        return type(exc)(_CREDENTIAL_RE.sub(r"\1=***", str(exc)))
    except Exception:  # an exception type with an unusual constructor: keep only its name
        return RuntimeError(type(exc).__name__)


def _named(data: bytes, filename: str) -> tuple[str, io.BytesIO, str]:
    """The multipart ``media`` part: named (raw bytes give errcode 40005) and typed like a browser's."""
    ctype = "image/png" if filename.endswith(".png") else "image/jpeg"
    return filename, io.BytesIO(data), ctype


def _clean_errmsg(msg: Any) -> str:
    return re.sub(r"\s*(rid|hint): ?\S.*$", "", str(msg or "")).strip()


def _next_beijing_midnight(now: datetime) -> datetime:
    local = now.astimezone(BEIJING)
    return datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), BEIJING)


def _next_minute(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0) + timedelta(minutes=1)


def _publish_event(msg: Any) -> dict[str, Any] | None:
    """The PUBLISHJOBFINISH event in ``freepublish/get``'s shape, or None for any other message.

    wechatpy has no class for this event; xmltodict gives a single ``item``/``fail_idx`` as a plain
    value and several as a list.
    """
    if not isinstance(msg, dict):
        raise ValueError("not an XML message")
    if msg.get("MsgType") != "event" or msg.get("Event") != "PUBLISHJOBFINISH":
        return None
    info = msg.get("PublishEventInfo") or {}
    items = (info.get("article_detail") or {}).get("item") or []
    if isinstance(items, dict):
        items = [items]
    fails = info.get("fail_idx") or []
    if not isinstance(fails, list):
        fails = [fails]
    return {
        "publish_id": str(info["publish_id"]),
        "publish_status": int(info["publish_status"]),
        "article_id": info.get("article_id"),
        "article_detail": {"item": [{"idx": int(i.get("idx", 0)), "article_url": i.get("article_url")} for i in items]},
        "fail_idx": [int(f) for f in fails],
    }


#: pages of the draft listing overlap by this many drafts (see WeChatChannel._draft_box)
_PAGE_OVERLAP = 5
#: a search of the draft box reads at most this many drafts
_DRAFT_SCAN_MAX = 2000
#: the state of a delivery that starts over from a new draft
_NEW_DRAFT: dict[str, Any] = {
    "draft_adds": 0,
    "draft_marks": None,
    "drafting_since": None,
    "drafts_swept": None,
    "last_sweep": None,
    "unconfirmed_since": None,
}
#: the fields of a draft that identify the delivery's draft/add (WeChat lists them back as sent)
_MARK_FIELDS = ("title", "thumb_media_id", "author", "digest", "content_source_url")


def _draft_mark(article: Mapping[str, Any]) -> dict[str, str]:
    """What one ``draft/add`` request sent that WeChat gives back unchanged in ``draft/batchget``."""
    return {k: str(article.get(k) or "") for k in _MARK_FIELDS}


def _carries(news: Mapping[str, Any], mark: Mapping[str, str]) -> bool:
    """Whether a listed draft's first article carries ``mark`` (a field left out is not held against it)."""
    if news.get("title") != mark["title"] or news.get("thumb_media_id") != mark["thumb_media_id"]:
        return False
    return all(news.get(k) is None or str(news.get(k) or "") == mark[k] for k in _MARK_FIELDS[2:])


# ------------------------------------------------------------------------------------- channel
class WeChatChannel(Channel):
    """Publishes an item as a WeChat Official Account article (freepublish, optionally mass send)."""

    type_name = "wechat"
    label = "微信公众号"
    Config = WeChatConfig
    supports_withdraw = True
    supports_stats = True
    supports_listing = True
    default_max_concurrency = 1
    default_rate_per_minute = 20

    author_max = AUTHOR_MAX
    digest_max = DIGEST_MAX

    def __init__(self, name: str, config: WeChatConfig, env: ChannelEnv) -> None:
        super().__init__(name, config, env)
        self.config: WeChatConfig = config
        secret = env_secret(config.secret_env, what=f"WeChat channel {name!r}: the AppSecret")
        self._callback_token = (
            env_secret(config.callback_token_env, what=f"WeChat channel {name!r}: the callback Token")
            if config.callback_token_env
            else None
        )
        self._aes_key = (
            env_secret(config.encoding_aes_key_env, what=f"WeChat channel {name!r}: the EncodingAESKey")
            if config.encoding_aes_key_env
            else None
        )
        self._prefix = f"wechat:{config.appid}:"
        # uploaded media belong to one API host: the sandbox's ids mean nothing to WeChat and back
        self._media_prefix = f"{self._prefix}{hashlib.sha256(config.api_base.encode()).hexdigest()[:8]}:"
        self._session = KVSessionStorage(env.kv, self._prefix, env.clock)
        self._scanned_at: float | None = None  # when the whole listing was last read (monotonic)
        self.client = _Client(
            api_base=config.api_base,
            appid=config.appid,
            secret=secret,
            session=self._session,
            timeout=config.timeout,
            endpoint=config.token_endpoint,
        )

    def close(self) -> None:
        self.client._http.close()

    # ============================================================================ the boundary
    def _call(self, what: str, fn: Callable[..., T], *args: Any, ambiguous: bool = False, **kw: Any) -> T:
        """Call wechatpy and translate what goes wrong; refresh a rejected token once, not forever.

        ``ambiguous`` marks calls that may take effect without our hearing of it (submit, mass send):
        a timeout or broken connection there is AmbiguousOutcome, never a plain retry.
        """
        refreshed = False
        while True:
            try:
                # the token is fetched outside the ambiguous part: failing to get one sent nothing
                used = self.client.access_token
            except Exception as exc:  # noqa: BLE001 - translated below, never swallowed
                raise self._translate("fetching an access token", exc, ambiguous=False) from _redacted(exc)
            try:
                result = fn(*args, **kw)
            except WeChatClientException as exc:
                if exc.errcode in TOKEN_ERRORS and not refreshed:
                    refreshed = True
                    self._refresh_token(rejected=used)
                    continue
                raise self._translate(what, exc, ambiguous) from exc
            except Exception as exc:  # noqa: BLE001 - translated below, never swallowed
                raise self._translate(what, exc, ambiguous) from _redacted(exc)
            if not isinstance(result, dict | str | list):
                raise TransientChannelError(f"WeChat gave a non-JSON answer to {what}")
            return result

    def _translate(self, what: str, exc: Exception, ambiguous: bool) -> Exception:
        if isinstance(exc, WeChatClientException):
            return self._map(what, exc, ambiguous)
        if isinstance(exc, requests.Timeout):
            if ambiguous:
                return AmbiguousOutcome(f"WeChat did not answer {what} in time; it may have taken effect")
            return TransientChannelError(f"WeChat did not answer {what} in time")
        if isinstance(exc, requests.ConnectionError):
            if ambiguous:
                return AmbiguousOutcome(f"the connection broke during {what}; it may have taken effect")
            return TransientChannelError(f"cannot reach WeChat ({self.config.api_base}) for {what}")
        if isinstance(exc, requests.RequestException):
            return TransientChannelError(f"HTTP trouble during {what}: {type(exc).__name__}")
        if isinstance(exc, TypeError | KeyError | ValueError):
            return TransientChannelError(f"WeChat gave an unexpected answer to {what}")
        raise exc  # a bug of ours: let it surface as itself

    def _refresh_token(self, rejected: str | None) -> None:
        """Fetch a new token unless another worker already stored one since ours was rejected."""
        current = self._session.get(self.client.access_token_key)
        if current is not None and rejected is not None and current != rejected:
            return
        self._session.delete(self.client.access_token_key)
        self._session.delete(self.client.access_token_expires_at_key)
        self.client.force_refresh = True
        log.info("wechat %s: access token rejected, fetching a new one", self.name)

    def _map(self, what: str, exc: WeChatClientException, ambiguous: bool) -> Exception:
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
        now = self.env.clock()
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
        return PermanentChannelError(
            f"WeChat refused {what}: {msg} (errcode {code})" + (f" — {hint}" if hint else ""), code=code
        )

    # ============================================================================ review time
    def _author(self, post: Post) -> str:
        if self.config.author_from_item and post.author.strip():
            return post.author.strip()
        return self.config.author

    def validate(self, post: Post) -> list[str]:
        problems: list[str] = []
        title = post.title.strip()
        if not title:
            problems.append("the title is empty")
        elif len(title) > self.config.title_max:
            problems.append(
                f"the title is {len(title)} characters; WeChat takes at most {self.config.title_max} — shorten it"
            )
        author = self._author(post)
        if len(author) > self.author_max:
            problems.append(
                f"the author {author!r} is {len(author)} characters; WeChat takes at most "
                f"{self.author_max} — shorten it or set the channel's author"
            )
        cover = self._cover(post)
        if cover is None:
            problems.append("a cover image is required for WeChat (it becomes the article's thumbnail) — add one")
        else:
            reason = wechat_media.inspect(cover.path, "cover")
            if reason:
                problems.append(reason)
        rendered = wechat_format.render(post.body_html, intranet_domains=tuple(self.config.intranet_domains))
        for ref in dict.fromkeys(rendered.images):
            try:
                asset = post.asset(ref.removeprefix("asset://"))
            except KeyError:
                problems.append(f"the body shows an image that is not attached to the item ({ref[:20]}…)")
                continue
            reason = wechat_media.inspect(asset.path, "image")
            if reason:
                problems.append(reason)
        for src in dict.fromkeys(rendered.external_images):
            problems.append(
                f"the image {src or '(no address)'} is hosted elsewhere and WeChat strips such "
                "images — attach the picture to the item instead"
            )
        for href, reason in dict.fromkeys(rendered.bad_links):
            problems.append(
                f"the link {href} {reason}; WeChat readers outside the campus network cannot open "
                "it — link to a public page or remove it"
            )
        measured = _ASSET_RE.sub("x" * _URL_ALLOWANCE, rendered.html)
        if not rendered.html.strip():
            problems.append("the body is empty")
        elif len(measured) >= CONTENT_MAX_CHARS:
            problems.append(
                f"the body is {len(measured):,} characters once formatted for WeChat; WeChat takes "
                f"fewer than {CONTENT_MAX_CHARS:,} — shorten it or split it into several articles"
            )
        elif len(measured.encode()) >= CONTENT_MAX_BYTES:
            problems.append("the body is over 1 MB once formatted for WeChat — shorten it")
        return problems

    # ================================================================================ media
    def _thumb(self, cover: Asset) -> dict[str, str]:
        key = f"{self._media_prefix}thumb:{cover.sha256}"
        cached = self.env.kv.get(key)
        if cached:
            return json.loads(cached)
        try:
            thumb = wechat_media.prepare_thumb(cover.path, cover.sha256[:16])
        except wechat_media.ImageRefused as exc:
            raise PermanentChannelError(str(exc)) from exc
        # a fresh file object per call: a retry after a token refresh must not send a drained one
        res = self._call(
            "uploading the cover", lambda: self.client.material.add("thumb", _named(thumb.data, thumb.filename))
        )
        entry = {
            "media_id": res["media_id"],
            "url": res.get("url", ""),
            "crop_235_1": thumb.crop_235_1,
            "crop_1_1": thumb.crop_1_1,
        }
        self.env.kv.set(key, json.dumps(entry))
        return entry

    def _content_image(self, asset: Asset) -> str:
        key = f"{self._media_prefix}img:{asset.sha256}"
        cached = self.env.kv.get(key)
        if cached:
            return cached
        try:
            img = wechat_media.prepare_content_image(asset.path, asset.sha256[:16])
        except wechat_media.ImageRefused as exc:
            raise PermanentChannelError(str(exc)) from exc
        url = self._call("uploading an image", lambda: self.client.media.upload_image(_named(img.data, img.filename)))
        self.env.kv.set(key, url)
        return url

    def _cover(self, post: Post) -> Asset | None:
        if post.cover is not None:
            return post.cover
        if not self.config.default_cover:
            return None
        path = Path(self.config.default_cover)
        try:
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            return Asset(sha256="0" * 64, path=path, filename=path.name, content_type="", role="cover")
        return Asset(sha256=sha, path=path, filename=path.name, content_type="image/*", role="cover")

    def _article(self, post: Post) -> dict[str, Any]:
        cover = self._cover(post)
        assert cover is not None  # validate() refused the item otherwise
        thumb = self._thumb(cover)
        rendered = wechat_format.render(post.body_html, intranet_domains=tuple(self.config.intranet_domains))
        urls = {
            ref.removeprefix("asset://"): self._content_image(post.asset(ref.removeprefix("asset://")))
            for ref in dict.fromkeys(rendered.images)
        }
        content = _ASSET_RE.sub(lambda m: urls[m.group(1)], rendered.html)
        source = post.site_url if self.config.link_to_site and post.site_url else ""
        return {
            "title": post.title.strip(),
            "author": self._author(post),
            "digest": wechat_format.make_digest(post.summary, rendered.text, self.digest_max),
            "content": content,
            "content_source_url": source if len(source.encode()) <= 1024 else "",
            "thumb_media_id": thumb["media_id"],
            "need_open_comment": int(self.config.need_open_comment),
            "only_fans_can_comment": int(self.config.only_fans_can_comment),
            # wechatpy's draft.add drops these two, hence client.post("draft/add") below
            "pic_crop_235_1": thumb["crop_235_1"],
            "pic_crop_1_1": thumb["crop_1_1"],
        }

    # ============================================================================== publish
    def publish(self, post: Post, ctx: DeliveryContext) -> Published | InProgress:
        st = ctx.state
        if st.get("article_id") or st.get("mass_msg_id"):
            self._last_sweep(ctx)  # in case the worker died between recording the article and sweeping
            return Published(url=st.get("url"), remote_id=st.get("article_id") or f"mass-{st.get('msg_data_id')}")
        if st.get("publish_id"):
            return self._follow(post, ctx)
        if st.get("step") == "submitting":
            outcome = self._reconcile(post, ctx)
            if outcome is not None:
                return outcome
        if st.get("step") == "sending":
            return self._mass_send(post, ctx)
        problems = self.validate(post)
        if problems:
            raise PermanentChannelError("WeChat cannot take this item: " + "; ".join(problems))
        article = self._article(post)
        media_id = st.get("draft_media_id")
        if not media_id and st.get("step") == "drafting":
            # a draft/add went out and its answer was never recorded: the draft may be in the box
            found = self._our_drafts(ctx, article)
            if found:
                # the thumb it carries (the cache may hold another id by now) is what reconcile looks for
                media_id, thumb = found[0]
                ctx.save_state(draft_media_id=media_id, step="drafted", thumb_media_id=thumb)
        if not media_id:
            # thumb_media_id is the thumb of the draft to be submitted: set here, when a draft is made,
            # and never from the cache for a draft made earlier (another worker may have replaced it)
            ctx.save_state(thumb_media_id=article["thumb_media_id"])
            media_id = self._add_draft(post, article, ctx)
        if int(st.get("draft_adds") or 0) > 1 and not st.get("drafts_swept"):
            self._sweep_drafts(ctx, article, keep=media_id)  # before the submit: retried until it is done
        if self.config.mass_send:
            ctx.save_state(step="sending")
            return self._mass_send(post, ctx)
        return self._submit(ctx)

    def _submit(self, ctx: DeliveryContext) -> InProgress:
        media_id = ctx.state["draft_media_id"]
        ctx.save_state(step="submitting", submitting_since=self.env.clock().isoformat())
        try:
            res = self._call(
                "submitting the draft for publication",
                self.client.freepublish.submit,
                media_id,
                ambiguous=True,
            )
        except AmbiguousOutcome:
            raise  # step stays "submitting": the next attempt reconciles before any re-submit
        except PermanentChannelError as exc:
            if exc.code == 40007 and ctx.state.get("unconfirmed_since"):
                # a re-submit after an unconfirmed one: the draft may be in that submit's job still
                # running (WeChat refuses it then), so look for that article again, never a new draft
                ctx.save_state(step="submitting", submitting_since=ctx.state["unconfirmed_since"])
                return InProgress(
                    check_again_in=timedelta(seconds=self.config.poll_intervals[0]),
                    note="WeChat refused a re-submit of the draft; looking for the article of the first submit",
                )
            if exc.code == 40007:  # the draft left the box without a submit of ours: make it again
                ctx.save_state(step=None, draft_media_id=None, **_NEW_DRAFT)
                raise TransientChannelError(
                    "the WeChat draft disappeared before it was submitted; it will be made again"
                ) from exc
            ctx.save_state(step="drafted")
            raise
        except (TransientChannelError, QuotaExceeded):
            ctx.save_state(step="drafted")  # WeChat answered with an error: nothing was submitted
            raise
        ctx.save_state(
            step="submitted",
            publish_id=str(res["publish_id"]),
            msg_data_id=str(res.get("msg_data_id") or ""),
            polls=0,
        )
        return InProgress(
            check_again_in=timedelta(seconds=self.config.poll_intervals[0]),
            note=f"WeChat publish job {res['publish_id']} accepted",
        )

    def _follow(self, post: Post, ctx: DeliveryContext) -> Published | InProgress:
        st = ctx.state
        pid = st["publish_id"]
        event = self._event(pid)
        if event is None:
            event = self._call("checking the publish job", self.client.freepublish.get, pid)
        status = int(event.get("publish_status", 1))
        if status == 1:
            polls = int(st.get("polls", 0)) + 1
            ctx.save_state(polls=polls)
            wait = self.config.poll_intervals[min(polls, len(self.config.poll_intervals) - 1)]
            return InProgress(check_again_in=timedelta(seconds=wait), note=f"WeChat is publishing (job {pid})")
        if status == 0:
            items = (event.get("article_detail") or {}).get("item") or []
            url = items[0].get("article_url") if items else None
            if not url:
                url = self._article_url(str(event["article_id"]))
            return self._done(ctx, str(event["article_id"]), url)
        # definitive: nothing is live. Forget the job so that a deliberate retry starts from a new draft.
        failed = [*st.get("failed_publish_ids", []), pid]
        # the draft of a failed job stays in the box (for the editor to look at): never adopt it again
        failed_drafts = [*st.get("failed_drafts", []), st.get("draft_media_id")]
        ctx.save_state(
            step=None,
            publish_id=None,
            draft_media_id=None,
            failed_drafts=[d for d in failed_drafts if d],
            **_NEW_DRAFT,
            polls=0,
            failed_publish_ids=failed,
            publish_status=status,
        )
        reason = PUBLISH_STATUS.get(status, f"publishing failed with status {status}")
        raise PermanentChannelError(
            f"WeChat did not publish the article: {reason} (publish_id {pid}, "
            f"publish_status {status}); see the MP console for details",
            code=f"publish_status={status}",
        )

    def _article_url(self, article_id: str) -> str | None:
        res = self._call("looking up the article", self.client.freepublish.getarticle, article_id)
        items = res.get("news_item") or []
        return items[0].get("url") if items else None

    def _done(self, ctx: DeliveryContext, article_id: str, url: str | None) -> Published:
        ctx.save_state(step="published", article_id=article_id, url=url)
        self.env.kv.set(
            f"{self._prefix}art:{article_id}",
            json.dumps({"msg_data_id": ctx.state.get("msg_data_id") or "", "url": url}),
        )
        if url:
            self.env.kv.set(f"{self._prefix}url:{url}", article_id)
        self._last_sweep(ctx)
        return Published(url=url, remote_id=article_id)

    # ------------------------------------------------------------------------------ drafts
    def _add_draft(self, post: Post, article: dict[str, Any], ctx: DeliveryContext) -> str:
        """``draft/add``, counted in the state *before* it goes out, with the marks the draft will carry.

        ``draft/add`` has no idempotency key: an answer lost on the way back (timeout, broken
        connection, HTTP 5xx, the worker killed) leaves a draft we do not know the id of.
        ``draft_adds`` counts the requests that may have made a draft (an answered refusal made none
        and is taken back); ``draft_marks`` keeps what each one carried, so that a later search
        finds them even after the cached thumb has changed; ``drafting_since`` bounds the search.
        """
        st = ctx.state
        adds = int(st.get("draft_adds") or 0)
        if st.get("step") == "drafting" and "draft_adds" not in st:
            adds = 1  # saved before draft_adds was counted: one request went out unanswered
        for n in range(2):
            marks = [m for m in (st.get("draft_marks") or []) if m != _draft_mark(article)]
            ctx.save_state(
                step="drafting",
                draft_adds=adds + 1,
                draft_marks=[*marks, _draft_mark(article)],
                drafting_since=st.get("drafting_since") or self.env.clock().isoformat(),
            )
            try:
                res = self._call(
                    "adding the draft",
                    self.client.post,
                    "draft/add",
                    data={"articles": [article]},
                    ambiguous=True,
                )
            except AmbiguousOutcome:
                raise  # step stays "drafting": the next attempt looks for the draft before adding one
            except PermanentChannelError as exc:
                ctx.save_state(draft_adds=adds)  # WeChat refused it: no draft was made
                if exc.code != 40007 or n > 0:
                    raise
                # the cached thumb is gone on WeChat's side (deleted in the console): upload it again, once
                self.env.kv.delete(f"{self._media_prefix}thumb:{self._cover(post).sha256}")
                article = self._article(post)
                ctx.save_state(thumb_media_id=article["thumb_media_id"])
                continue
            except QuotaExceeded:
                ctx.save_state(draft_adds=adds)  # answered with a quota errcode: no draft was made
                raise
            except TransientChannelError as exc:
                if exc.code is not None:  # an errcode (busy, a token refused twice): no draft was made
                    ctx.save_state(draft_adds=adds)
                raise  # otherwise (an unreadable answer, HTTP trouble) a draft may have been made
            media_id = str(res["media_id"])
            ctx.save_state(draft_media_id=media_id, step="drafted", draft_adds=adds + 1)
            return media_id
        raise AssertionError("unreachable")

    def _our_drafts(self, ctx: DeliveryContext, article: dict[str, Any] | None) -> list[tuple[str, str]]:
        """(media_id, thumb_media_id) of the drafts in the box this delivery's ``draft/add`` calls made.

        A draft is ours when it carries the title, thumb, author, digest and 阅读原文 link one of our
        requests sent (``draft_marks``) and was made since the first of them (less two minutes for
        the clocks). The whole box is read (``draft/batchget``, 20 a page): other deliveries add
        drafts all the time, so ours is not necessarily among the newest.
        """
        st = ctx.state
        marks = list(st.get("draft_marks") or []) or ([_draft_mark(article)] if article else [])
        if not marks:
            return []
        since = st.get("drafting_since")
        after = datetime.fromisoformat(since).timestamp() - 120 if since else None
        failed = set(st.get("failed_drafts") or [])
        found: dict[str, str] = {}
        for media_id, news, stamp in self._draft_box(after):
            if media_id in failed or media_id in found:
                continue
            if after is not None and stamp is not None and stamp < after:
                continue
            if any(_carries(news, m) for m in marks):
                found[media_id] = str(news.get("thumb_media_id"))
        return list(found.items())

    def _sweep_drafts(
        self, ctx: DeliveryContext, article: dict[str, Any] | None, keep: str | None, done: str = "drafts_swept"
    ) -> None:
        """More than one ``draft/add`` may have made a draft: delete each one of ours but ``keep``.

        Done before the draft is submitted (``drafts_swept``), so a failure here is retried like any
        other and the delivery does not go on with a stray draft of its own left in the box; and once
        more after publication (``last_sweep``, see :meth:`_last_sweep`).
        """
        strays = [m for m, _thumb in self._our_drafts(ctx, article) if m != keep]
        for media_id in strays:
            for n in range(1, 4):
                try:
                    self._call("deleting a surplus draft", self.client.draft.delete, media_id)
                except PermanentChannelError as exc:
                    if exc.code != 40007:  # 40007: already gone
                        raise
                except TransientChannelError:
                    if n == 3:
                        raise
                    time.sleep(0.2 * n)
                    continue
                break
            log.info("wechat %s: delivery %s deleted its surplus draft %s", self.name, ctx.delivery_id, media_id)
        ctx.save_state(
            **{done: True}, stray_drafts_deleted=int(ctx.state.get("stray_drafts_deleted") or 0) + len(strays)
        )

    def _last_sweep(self, ctx: DeliveryContext) -> None:
        """After publication, when more than one ``draft/add`` went out: delete a draft of ours that
        reached WeChat only after the sweep before the submit (a request held up on the way).

        Our own draft has left the box by now (published or mass-sent). This never changes the
        outcome: the article is live, so a failure is logged for the operator, not retried.
        """
        st = ctx.state
        if int(st.get("draft_adds") or 0) <= 1 or st.get("last_sweep") or not st.get("draft_marks"):
            return
        try:
            self._sweep_drafts(ctx, None, keep=st.get("draft_media_id"), done="last_sweep")
        except (ChannelError, OSError) as exc:
            log.warning(
                "wechat %s: delivery %s is published, but its surplus drafts could not be looked for (%s); "
                "delete drafts titled %r from the MP console's draft box (草稿箱) if any are left",
                self.name,
                ctx.delivery_id,
                exc,
                (st.get("draft_marks") or [{}])[0].get("title"),
            )

    def _draft_box(self, after: float | None) -> Iterable[tuple[str, dict[str, Any], int | None]]:
        """Every draft in the box as (media_id, first news item, update_time), read page by page.

        Pages overlap by ``_PAGE_OVERLAP``: a draft published by another worker between two pages
        moves everything after it up one place, and without the overlap the draft at the page
        boundary would be skipped. When more drafts than that left the box during a pass, the box is
        read once more. The listing's order is not documented (it is newest first in practice): the
        reading stops early only once it has been newest first so far and has passed ``after``.
        """
        for _pass in range(3):
            offset, first_total, low_total, newest_first, prev = 0, None, None, True, None
            while offset < _DRAFT_SCAN_MAX:
                res = self._draft_page(offset)
                items = res.get("item") or []
                total = int(res.get("total_count") or 0)
                first_total = total if first_total is None else first_total
                low_total = total if low_total is None else min(low_total, total)
                stamp = None
                for it in items:
                    content = it.get("content") or {}
                    raw = it.get("update_time") or content.get("update_time") or content.get("create_time")
                    stamp = int(raw) if raw else None
                    if stamp is not None and prev is not None and stamp > prev:
                        newest_first = False
                    prev = stamp if stamp is not None else prev
                    news = (content.get("news_item") or [{}])[0]
                    yield str(it.get("media_id")), news, stamp
                if not items or offset + len(items) >= total:
                    break
                if newest_first and after is not None and stamp is not None and stamp < after:
                    return  # newest first: everything further down is older than our first draft/add
                offset += max(1, len(items) - _PAGE_OVERLAP)
            else:
                log.warning(
                    "wechat %s: the draft box holds over %d drafts; only those were searched",
                    self.name,
                    _DRAFT_SCAN_MAX,
                )
            if first_total is None or low_total is None or first_total - low_total <= _PAGE_OVERLAP:
                return

    def _draft_page(self, offset: int, tries: int = 3) -> dict[str, Any]:
        """One page of ``draft/batchget`` (no content), read again at once after a transient failure."""
        for n in range(1, tries + 1):
            try:
                return self._call("listing drafts", self.client.draft.batchget, offset, 20, 1)
            except TransientChannelError:
                if n == tries:
                    raise
                time.sleep(0.2 * n)
        raise AssertionError("unreachable")

    def _reconcile(self, post: Post, ctx: DeliveryContext) -> Published | InProgress | None:
        """After an unknown submit: find the article, or wait, or (draft still there) allow a re-submit.

        WeChat takes a draft out of the box when its article is published, so while the draft is
        there and the grace has not run out there is nothing to look for yet: one ``draft/get`` per
        check instead of paging through the published list (several calls on a busy account, each
        one a chance to fail and use up an attempt). Before any re-submit the list is searched.
        """
        st = ctx.state
        since = datetime.fromisoformat(st.get("submitting_since") or self.env.clock().isoformat())
        try:
            self._call("looking up the draft", self.client.draft.get, st["draft_media_id"])
            draft_present = True
        except PermanentChannelError as exc:
            if exc.code != 40007:
                raise
            draft_present = False
        waited = (self.env.clock() - since).total_seconds()
        found = None
        if not draft_present or waited >= self.config.reconcile_grace:
            found = self._find_published(post.title.strip(), st.get("thumb_media_id"), since - timedelta(minutes=2))
        if found is not None:
            log.info("wechat %s: delivery %s reconciled to article %s", self.name, ctx.delivery_id, found[0])
            return self._done(ctx, found[0], found[1])
        if waited < self.config.reconcile_grace:
            checks = int(st.get("reconcile_checks", 0)) + 1
            ctx.save_state(reconcile_checks=checks)
            wait = self.config.poll_intervals[min(checks - 1, len(self.config.poll_intervals) - 1)]
            return InProgress(
                check_again_in=timedelta(seconds=wait),
                note="looking for the article of an unconfirmed submit",
            )
        if draft_present:
            log.warning(
                "wechat %s: no article for delivery %s after %.0fs and the draft is still there; submitting again",
                self.name,
                ctx.delivery_id,
                waited,
            )
            ctx.save_state(step="drafted", reconcile_checks=0, unconfirmed_since=since.isoformat())
            return None
        ctx.save_state(step="unknown")
        raise PermanentChannelError(
            "WeChat took the draft but no published article can be found; it may have failed review. "
            "Check 发表记录 in the MP console before publishing this item again"
        )

    def _find_published(self, title: str, thumb: str | None, since: datetime) -> tuple[str, str | None] | None:
        offset = 0
        while True:
            res = self._list_page(offset)
            items = res.get("item") or []
            for it in items:
                content = it.get("content") or {}
                stamp = it.get("update_time") or content.get("update_time") or content.get("create_time")
                if stamp and int(stamp) < since.timestamp():
                    return None  # newest first: everything further down is older than our submit
                for news in content.get("news_item") or []:
                    same_thumb = not thumb or not news.get("thumb_media_id") or news["thumb_media_id"] == thumb
                    if news.get("title") == title and same_thumb and not news.get("is_deleted"):
                        return str(it["article_id"]), news.get("url")
            offset += len(items)
            if not items or offset >= int(res.get("total_count") or 0) or offset >= 200:
                return None

    def _list_page(self, offset: int, tries: int = 3) -> dict[str, Any]:
        """One page of ``freepublish/batchget``, read again at once after a transient failure.

        A search may need several pages on a busy account; starting it over for one failed page
        would need every page to succeed in a single attempt.
        """
        for n in range(1, tries + 1):
            try:
                return self._call("listing published articles", self.client.freepublish.batchget, offset, 20, 1)
            except TransientChannelError:
                if n == tries:
                    raise
                time.sleep(0.2 * n)
        raise AssertionError("unreachable")

    def _mass_send(self, post: Post, ctx: DeliveryContext) -> Published:
        """群发: ``clientmsgid`` makes a repeated send a no-op (45065 names the earlier message)."""
        st = ctx.state
        client_msg_id = f"publisher-{self.config.appid}-{ctx.idempotency_key}"[:64]
        tag = self.config.mass_send_tag_id
        try:
            res = self._call(
                "mass-sending the article",
                self.client.message.send_mass_article,
                st["draft_media_id"],
                tag,
                is_to_all=tag is None,
                client_msg_id=client_msg_id,
                ambiguous=True,
            )
        except PermanentChannelError as exc:
            if exc.code != 45065:
                raise
            res = {"msg_id": "existing", "msg_data_id": st.get("msg_data_id") or ""}
        ctx.save_state(step="published", mass_msg_id=str(res.get("msg_id")), msg_data_id=str(res.get("msg_data_id")))
        self._last_sweep(ctx)
        return Published(url=None, remote_id=f"mass-{res.get('msg_data_id')}")

    # ============================================================================== callback
    def _event(self, publish_id: str) -> dict[str, Any] | None:
        raw = self.env.kv.get(f"{self._prefix}event:{publish_id}")
        return json.loads(raw) if raw else None

    def handle_callback(
        self, method: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> CallbackReply:
        from wechatpy.utils import check_signature

        if not self._callback_token:
            return CallbackReply(status=404, body=b"callbacks are not configured for this channel")
        q = {k: (v if isinstance(v, str) else v[0]) for k, v in query.items()}
        safe_mode = method.upper() == "POST" and q.get("encrypt_type") == "aes"
        if not safe_mode:  # in safe mode msg_signature (over token and ciphertext) is what authenticates
            try:
                check_signature(
                    self._callback_token, q.get("signature", ""), q.get("timestamp", ""), q.get("nonce", "")
                )
            except InvalidSignatureException:
                log.warning("wechat %s: callback with a wrong signature refused", self.name)
                return CallbackReply(status=403, body=b"invalid signature")
        if method.upper() == "GET":
            return CallbackReply(body=q.get("echostr", "").encode())
        # a plain-mode signature covers only token, timestamp and nonce, not the body: refuse old
        # timestamps and a nonce seen before, so a captured signature cannot carry another body
        now = self.env.clock()
        max_age = self.config.callback_max_age
        try:
            age = abs(now.timestamp() - int(q.get("timestamp", "")))
        except ValueError:
            return CallbackReply(status=400, body=b"bad timestamp")
        if max_age and age > max_age:
            log.warning("wechat %s: callback with a timestamp %.0fs away refused", self.name, age)
            return CallbackReply(status=403, body=b"stale timestamp")
        seen_key = f"{self._prefix}cb:{q.get('timestamp')}:{q.get('nonce', '')}"
        if self.env.kv.get(seen_key):
            return CallbackReply(body=b"success")  # WeChat's retry of a request already handled
        try:
            xml = self._decrypt(q, body) if safe_mode else body.decode("utf-8")
            msg = xmltodict.parse(xml)["xml"]
            event = _publish_event(msg)
        except InvalidSignatureException:
            log.warning("wechat %s: callback with a wrong msg_signature refused", self.name)
            return CallbackReply(status=403, body=b"invalid signature")
        except (InvalidAppIdException, ExpatError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("wechat %s: unreadable callback (%s)", self.name, type(exc).__name__)
            return CallbackReply(status=400, body=b"bad message")
        self.env.kv.set(seen_key, "1", expires_at=now + timedelta(seconds=2 * (max_age or 300) + 60))
        if event is not None:
            # storing is idempotent, so a repeated event does no harm
            self.env.kv.set(
                f"{self._prefix}event:{event['publish_id']}",
                json.dumps(event),
                expires_at=now + timedelta(days=7),
            )
        return CallbackReply(body=b"success")

    def _decrypt(self, q: Mapping[str, str], body: bytes) -> str:
        from wechatpy.crypto import WeChatCrypto

        if not self._aes_key:
            raise ValueError("safe-mode callback but no EncodingAESKey configured")
        crypto = WeChatCrypto(self._callback_token, self._aes_key, self.config.appid)
        return crypto.decrypt_message(
            body.decode("utf-8"), q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", "")
        )

    # ============================================================================== after
    def withdraw(self, post: Post, ctx: DeliveryContext) -> None:
        article_id = ctx.remote_id or ctx.state.get("article_id")
        if not article_id:
            raise PermanentChannelError("nothing to withdraw: this delivery has no WeChat article id")
        try:
            self._call("deleting the article", self.client.freepublish.delete, article_id, 0)
        except PermanentChannelError as exc:
            if exc.code != 53600:
                raise
            log.info("wechat %s: article %s was already gone", self.name, article_id)

    def check_url(self, url: str) -> LinkStatus:
        """Ask the API, not the page: WeChat serves a deleted article's page with 200.

        A verdict comes only from WeChat's answer: the article's ``is_deleted`` (410) or no such
        article (53600, 404). A call that fails, or a URL no article of the account is known to have,
        is no verdict (``status`` None): the sync leaves the article as it was.
        """
        if urlsplit(url).hostname != "mp.weixin.qq.com":
            return super().check_url(url)
        try:
            article_id = self._article_for_url(url)
            if not article_id:
                return LinkStatus(ok=False, reason="no article of this account is known to have this URL")
            res = self._call("looking up the article", self.client.freepublish.getarticle, article_id)
        except PermanentChannelError as exc:
            if exc.code == 53600:
                return LinkStatus(ok=False, status=404, reason=f"WeChat has no such article: {exc}")
            return LinkStatus(ok=False, reason=f"could not check with WeChat: {exc}")
        except ChannelError as exc:
            return LinkStatus(ok=False, reason=f"could not check with WeChat: {exc}")
        items = res.get("news_item") or []
        items = [it for it in items if it.get("url") == url] or items
        if not items:
            return LinkStatus(ok=False, reason="WeChat gave the article without its news items")
        if all(it.get("is_deleted") for it in items):
            return LinkStatus(ok=False, status=410, reason="deleted on WeChat")
        return LinkStatus(ok=True, status=200, reason="published on WeChat")

    def _known(self, article_id: str) -> dict[str, Any]:
        raw = self.env.kv.get(f"{self._prefix}art:{article_id}")
        return json.loads(raw) if raw else {}

    def _remember(self, it: Mapping[str, Any]) -> None:
        """Keep what a listing says of an article: its URLs (for check_url), title and day (for stats)."""
        article_id = str(it["article_id"])
        content = it.get("content") or {}
        news = content.get("news_item") or []
        # the day it went out (getarticletotal's ref_date): created, not last updated, when both are given
        stamp = content.get("create_time") or it.get("update_time") or 0
        day = datetime.fromtimestamp(int(stamp), BEIJING).date().isoformat()
        known = self._known(article_id)
        first = news[0] if news else {}
        seen = {"day": day, "title": first.get("title", ""), "url": known.get("url") or first.get("url")}
        if any(known.get(k) != v for k, v in seen.items()):
            self.env.kv.set(f"{self._prefix}art:{article_id}", json.dumps(known | seen))
        for n in news:
            if n.get("url") and self.env.kv.get(f"{self._prefix}url:{n['url']}") != article_id:
                self.env.kv.set(f"{self._prefix}url:{n['url']}", article_id)

    def _listing(self) -> Iterable[dict[str, Any]]:
        """Every article ``freepublish/batchget`` lists, newest first, deleted ones included."""
        offset = 0
        while True:
            res = self._call("listing published articles", self.client.freepublish.batchget, offset, 20, 1)
            items = res.get("item") or []
            yield from items
            offset += len(items)
            if not items or offset >= int(res.get("total_count") or 0):
                return

    def _scan_listing(self) -> None:
        """Remember every listed article, at most once every ten minutes (a URL or day not on record)."""
        if self._scanned_at is not None and time.monotonic() - self._scanned_at < 600:
            return
        for it in self._listing():
            self._remember(it)
        self._scanned_at = time.monotonic()

    def _article_for_url(self, url: str) -> str | None:
        article_id = self.env.kv.get(f"{self._prefix}url:{url}")
        if not article_id:
            self._scan_listing()
            article_id = self.env.kv.get(f"{self._prefix}url:{url}")
        return article_id

    def _msg_data_id(self, article_id: str, until: date) -> str | None:
        """The ``msg_data_id`` the datacube names an article by (``msgid`` "<msg_data_id>_<index>").

        Kept when the pipeline published it; otherwise read from the URL (``mid=``) or learnt once
        from ``getarticletotal`` on its day, where it must be the only article of that title: two
        weekly posts with the same title are told apart by their day, never matched by title alone.
        """
        known = self._known(article_id)
        if known.get("msg_data_id"):
            return str(known["msg_data_id"])
        if not known.get("day"):
            self._scan_listing()
            known = self._known(article_id)
        mid = parse_qs(urlsplit(known.get("url") or "").query).get("mid")
        found: str | None = mid[0] if mid else None
        if found is None and known.get("day") and date.fromisoformat(known["day"]) <= until:
            day = date.fromisoformat(known["day"])
            rows = self._call("reading article totals", self.client.datacube.get_article_total, day, day)
            ids = {str(r.get("msgid", "")).split("_")[0] for r in rows if r.get("title") == known.get("title")}
            if len(ids) == 1:
                found = ids.pop()
            elif ids:
                log.warning(
                    "wechat %s: %d articles titled %r on %s; article %s gets no stats",
                    self.name,
                    len(ids),
                    known.get("title"),
                    day,
                    article_id,
                )
        if found:
            self.env.kv.set(f"{self._prefix}art:{article_id}", json.dumps(known | {"msg_data_id": found}))
        return found

    def stats_final_through(self, now: datetime) -> date:
        """Yesterday (Beijing), once it is past 08:00 there: the datacube has nothing for today."""
        local = now.astimezone(BEIJING)
        return local.date() - timedelta(days=1 if local.hour >= 8 else 2)

    def fetch_stats(self, remote_ids: Iterable[str], since: date, until: date) -> list[StatRow]:
        until = min(until, self.stats_final_through(self.env.clock()))
        by_msg: dict[str, str] = {}
        for rid in remote_ids:
            if rid.startswith("mass-"):
                by_msg[rid.removeprefix("mass-")] = rid
            elif since <= until and (msg := self._msg_data_id(rid, until)):
                by_msg[msg] = rid
        rows: list[StatRow] = []
        day = since
        while by_msg and day <= until:
            sums: dict[tuple[str, str], int] = {}
            for r in self._call("reading article statistics", self.client.datacube.get_article_summary, day, day):
                rid = by_msg.get(str(r.get("msgid", "")).split("_")[0])
                if rid is None:
                    continue
                # one row per news item of a post: the post's figures are their sum
                for metric, field in (
                    ("reads", "int_page_read_count"),
                    ("readers", "int_page_read_user"),
                    ("shares", "share_count"),
                    ("favourites", "add_to_fav_count"),
                ):
                    sums[(rid, metric)] = sums.get((rid, metric), 0) + int(r.get(field) or 0)
            rows += [StatRow(day=day, metric=m, value=v, remote_id=rid) for (rid, m), v in sums.items()]
            day += timedelta(days=1)
        start = since
        while start <= until:
            end = min(start + timedelta(days=6), until)
            per_day: dict[date, list[int]] = {}
            for r in self._call("reading follower statistics", self.client.datacube.get_user_summary, start, end):
                d = date.fromisoformat(r["ref_date"])
                acc = per_day.setdefault(d, [0, 0])
                acc[0] += int(r.get("new_user") or 0)
                acc[1] += int(r.get("cancel_user") or 0)
            for d, (new, cancel) in sorted(per_day.items()):
                rows.append(StatRow(day=d, metric="new_followers", value=new))
                rows.append(StatRow(day=d, metric="unfollows", value=cancel))
            for r in self._call("reading follower totals", self.client.datacube.get_user_cumulate, start, end):
                rows.append(
                    StatRow(
                        day=date.fromisoformat(r["ref_date"]),
                        metric="followers",
                        value=int(r.get("cumulate_user") or 0),
                    )
                )
            start = end + timedelta(days=1)
        return rows

    def list_publications(self, since: datetime | None = None) -> list[RemotePublication]:
        """The articles ``freepublish/batchget`` lists, less the deleted ones (WeChat keeps listing
        those, their news items marked ``is_deleted``)."""
        found: list[RemotePublication] = []
        for it in self._listing():
            when = datetime.fromtimestamp(int(it.get("update_time") or 0), UTC)
            if since is not None and when < since:
                break
            self._remember(it)
            live = [n for n in (it.get("content") or {}).get("news_item") or [{}] if not n.get("is_deleted")]
            if live:
                found.append(
                    RemotePublication(
                        remote_id=str(it["article_id"]),
                        title=live[0].get("title", ""),
                        url=live[0].get("url"),
                        published_at=when,
                    )
                )
        return found

    def check_health(self) -> HealthReport:
        warnings: list[str] = []
        if not self._callback_token:
            warnings.append("no callback Token configured: publish results are found by polling freepublish/get")
        try:
            self._call("checking the access token", self.client.draft.count)
        except QuotaExceeded as exc:
            return HealthReport(ok=False, detail=str(exc), warnings=tuple(warnings))
        except (TransientChannelError, PermanentChannelError) as exc:
            return HealthReport(ok=False, detail=str(exc), warnings=tuple(warnings))
        return HealthReport(ok=True, detail=f"access token valid for {self.config.appid}", warnings=tuple(warnings))
