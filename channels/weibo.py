"""Weibo (新浪微博) through the open API's ``statuses/share`` — a title and a link to the item's page.

Since 2017 third-party apps may only post with ``POST https://api.weibo.com/2/statuses/share.json``,
and the text must contain a link on the app's *safe domain* (安全域名, set on open.weibo.com). So a
Weibo post here is: the title, a space, and the link to the item's page on the website
(``post.site_url``), with the cover as ``pic`` when there is one.

The 140-character rule as implemented (``weibo_length``)
    a CJK or other non-ASCII character counts 1, an ASCII character counts ½, and every link counts
    a fixed ``url_weight`` (default 12: Weibo turns each link into a t.cn short link and counts that),
    the total rounded up. A title that does not fit is shortened: cut at the last character that
    fits, followed by "…", the link always kept whole (``compose_status``).

Never two posts for one delivery
    ``share_started`` and the exact text are saved before the call. A later attempt that finds them
    but no Weibo id looks through the app's recent posts (``statuses/user_timeline``) for the same
    text (links compared loosely, as Weibo rewrites them) before posting. Weibo itself refuses the
    same text twice in a short time (20019 "Repeat content"): that answer also triggers the look-up.

The access token (OAuth2, from the environment) expires — 30 days for an ordinary app, longer for an
audited one. ``check_health`` warns ``warn_before_days`` before it lapses, from ``token_expires_at``
when set or else from ``oauth2/get_token_info``; an expired token (21327) fails deliveries
permanently with "re-authorise" in the reason.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from pydantic import AwareDatetime

from channels._http import send
from publisher.channel import (
    Channel,
    ChannelConfig,
    ChannelEnv,
    CredentialsRefused,
    DeliveryContext,
    HealthReport,
    PermanentChannelError,
    Post,
    Published,
    QuotaExceeded,
    TransientChannelError,
    env_secret,
    site_page_path,
)

URL_RE = re.compile(r"https?://[^\s\u3000-\u303f\uff00-\uffef]+")
PIC_TYPES = {"image/jpeg", "image/gif", "image/png"}
PIC_MAX_BYTES = 5 * 1024 * 1024  # "小于5M"

#: error codes (open.weibo.com/wiki/Error_code) and what they mean for a delivery
QUOTA_CODES = {10022, 10023, 10024, 20016}  # IP / user / per-interface rate limits, "posting too much"
TRANSIENT_CODES = {10001, 10002, 10003, 10009, 10010, 10011, 20032}
TOKEN_CODES = {21301, 21314, 21315, 21316, 21317, 21319, 21327, 21332}  # auth failed, token expired/revoked
REPEAT_CODES = {20017, 20019}  # "repeated weibo text" / "Repeat content!"


def weibo_length(text: str, url_weight: int = 12) -> int:
    """How long Weibo counts ``text``: links fixed, ASCII half, everything else one; rounded up."""
    halves = 0
    pos = 0
    for m in URL_RE.finditer(text):
        halves += sum(1 if ord(ch) < 128 else 2 for ch in text[pos : m.start()]) + 2 * url_weight
        pos = m.end()
    halves += sum(1 if ord(ch) < 128 else 2 for ch in text[pos:])
    return (halves + 1) // 2


def compose_status(title: str, url: str, *, max_length: int = 140, url_weight: int = 12) -> str:
    """``"<title> <url>"``, the title cut with "…" when the whole would exceed ``max_length``."""
    title = " ".join(title.split())
    text = f"{title} {url}"
    if weibo_length(text, url_weight) <= max_length:
        return text
    cut = len(title)
    while cut > 0 and weibo_length(f"{title[:cut]}… {url}", url_weight) > max_length:
        cut -= 1
    return f"{title[:cut].rstrip()}… {url}"


def _loose(text: str) -> str:
    return " ".join(URL_RE.sub("<link>", text).split())


class WeiboConfig(ChannelConfig):
    api_base: str = "https://api.weibo.com"
    access_token_env: str = "PUBLISHER_WEIBO_ACCESS_TOKEN"
    #: the app's safe domain (安全域名): the item link must be on it or a subdomain
    safe_domain: str
    #: when the access token lapses (shown by check_health); None = ask oauth2/get_token_info
    token_expires_at: AwareDatetime | None = None
    warn_before_days: int = 7
    #: how many characters Weibo counts for a link
    url_weight: int = 12
    max_length: int = 140
    #: attach the item's cover as the picture
    with_cover: bool = True
    #: where a post is shown: <web_base>/<uid>/<id>
    web_base: str = "https://weibo.com"
    timeout: float = 20.0


class WeiboChannel(Channel):
    type_name = "weibo"
    label = "微博 (Weibo)"
    Config = WeiboConfig
    supports_withdraw = True
    default_max_concurrency = 1
    default_rate_per_minute = 5

    config: WeiboConfig

    def __init__(self, name: str, config: WeiboConfig, env: ChannelEnv) -> None:
        super().__init__(name, config, env)
        self._token = env_secret(config.access_token_env, what=f"channel {name}: the Weibo access token")
        self._session = requests.Session()
        self._api = config.api_base.rstrip("/")

    def close(self) -> None:
        self._session.close()

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        return send(self._session, method, url, secrets=(self._token,), **kwargs)

    # -- review time --------------------------------------------------------------------------------------
    def _link(self, post: Post) -> str:
        return post.site_url or self.env.site_base_url.rstrip("/") + "/" + site_page_path(post.item_id)

    def _pic(self, post: Post):
        return post.cover if self.config.with_cover else None

    def validate(self, post: Post) -> list[str]:
        problems = []
        host = (urlsplit(self._link(post)).hostname or "").lower()
        domain = self.config.safe_domain.lower()
        if not (host == domain or host.endswith("." + domain)):
            problems.append(
                f"the item's page {self._link(post)} is not on Weibo's safe domain {domain}; Weibo "
                "only takes links on it (set the site's base URL, or the app's safe domain)"
            )
        if not post.title.strip():
            problems.append("the title is empty; a Weibo post is the title and a link")
        elif "title" in post.wording:  # a text written for Weibo is refused when too long, not cut
            status = f"{' '.join(post.title.split())} {self._link(post)}"
            count = weibo_length(status, self.config.url_weight)
            if count > self.config.max_length:
                problems.append(
                    f"the Weibo text (its title and the link) counts {count} of {self.config.max_length} "
                    "characters — shorten the title"
                )
        pic = self._pic(post)
        if pic is not None:
            if pic.content_type not in PIC_TYPES:
                problems.append(f"the cover {pic.filename} is {pic.content_type}; Weibo takes JPEG, GIF or PNG")
            elif pic.path.exists() and pic.path.stat().st_size >= PIC_MAX_BYTES:
                problems.append(
                    f"the cover {pic.filename} is {pic.path.stat().st_size / 2**20:.1f} MB; Weibo "
                    "takes pictures under 5 MB"
                )
        return problems

    # -- delivery -------------------------------------------------------------------------------------------
    def publish(self, post: Post, ctx: DeliveryContext) -> Published:
        if ctx.state.get("weibo_id"):
            return Published(url=ctx.state.get("url"), remote_id=ctx.state["weibo_id"])
        if ctx.state.get("share_started") and (found := self._find(ctx.state["status_text"])):
            return self._done(ctx, found)
        text = compose_status(
            post.title, self._link(post), max_length=self.config.max_length, url_weight=self.config.url_weight
        )
        data = {"access_token": self._token, "status": text}
        files = None
        pic = self._pic(post)
        if pic is not None:
            files = {"pic": (pic.path.name, pic.path.read_bytes(), pic.content_type)}
        ctx.save_state(share_started=self.env.clock().isoformat(), status_text=text)
        resp = self._send(
            "POST",
            f"{self._api}/2/statuses/share.json",
            data=data,
            files=files,
            timeout=self.config.timeout,
            what="post to Weibo",
            creates=True,
        )
        body = _json(resp)
        if resp.status_code == 200 and "id" in body:
            return self._done(ctx, body)
        if body.get("error_code") is not None and int(body["error_code"]) in REPEAT_CODES:
            if found := self._find(text):
                return self._done(ctx, found)
            raise PermanentChannelError(
                f"Weibo refused the post as repeated content ({body['error_code']}): the same text was "
                "posted recently, by hand or for another item; change the title, or delete the other "
                "post first",
                code=body["error_code"],
            )
        raise self._error(resp, body, "post to Weibo")

    def withdraw(self, post: Post, ctx: DeliveryContext) -> None:
        wid = ctx.state.get("weibo_id") or ctx.remote_id
        if not wid:
            raise PermanentChannelError("this delivery has no Weibo id; nothing to withdraw")
        resp = self._send(
            "POST",
            f"{self._api}/2/statuses/destroy.json",
            data={"access_token": self._token, "id": wid},
            timeout=self.config.timeout,
            what="delete the Weibo post",
        )
        body = _json(resp)
        if resp.status_code == 200 or body.get("error_code") in (20101, "20101"):  # gone already: goal met
            return
        raise self._error(resp, body, "delete the Weibo post")

    def _done(self, ctx: DeliveryContext, status: dict[str, Any]) -> Published:
        uid = (status.get("user") or {}).get("idstr") or str((status.get("user") or {}).get("id", ""))
        wid = str(status.get("idstr") or status["id"])
        url = f"{self.config.web_base.rstrip('/')}/{uid}/{wid}" if uid else None
        ctx.save_state(weibo_id=wid, url=url)
        return Published(url=url, remote_id=wid)

    def _find(self, text: str) -> dict[str, Any] | None:
        """The app's recent post with this text, if Weibo has it (links compared loosely)."""
        resp = self._send(
            "GET",
            f"{self._api}/2/statuses/user_timeline.json",
            params={"access_token": self._token, "count": 50, "trim_user": 0},
            timeout=self.config.timeout,
            what="look for the post on Weibo",
        )
        body = _json(resp)
        if resp.status_code != 200:
            raise self._error(resp, body, "look for the post on Weibo")
        return next((s for s in body.get("statuses", []) if _loose(s.get("text", "")) == _loose(text)), None)

    def _error(self, resp: requests.Response, body: dict[str, Any], what: str) -> Exception:
        code = body.get("error_code")
        message = body.get("error") or resp.reason or f"HTTP {resp.status_code}"
        if code is None:
            if resp.status_code >= 500:
                return TransientChannelError(f"{what}: Weibo answered {resp.status_code}", code=resp.status_code)
            return PermanentChannelError(f"{what}: Weibo answered {resp.status_code} {message}", code=resp.status_code)
        code = int(code)
        if code in QUOTA_CODES:
            # Weibo's limits are hourly; the next hour starts the count again
            now = self.env.clock()
            until = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1, minutes=1)
            return QuotaExceeded(f"{what}: Weibo rate limit reached ({code} {message})", until=until, code=code)
        if code in TRANSIENT_CODES:
            return TransientChannelError(f"{what}: Weibo is busy ({code} {message})", code=code)
        if code in TOKEN_CODES:
            return CredentialsRefused(
                f"{what}: the Weibo access token is expired or invalid ({code} {message}); re-authorise "
                f"the app and put the new token in ${self.config.access_token_env}",
                code=code,
            )
        if code == 10014:
            return PermanentChannelError(
                f"{what}: the app may not use statuses/share ({code} {message}); "
                "apply for the permission on open.weibo.com",
                code=code,
            )
        if code == 20012:
            return PermanentChannelError(
                f"{what}: Weibo says the text is longer than 140 characters ({code}); "
                "lower url_weight or max_length in the settings",
                code=code,
            )
        return PermanentChannelError(f"{what}: Weibo refused it ({code} {message})", code=code)

    # -- health ---------------------------------------------------------------------------------------------
    def token_expiry(self) -> datetime:
        """When the access token lapses: from the settings, else from ``oauth2/get_token_info``."""
        if self.config.token_expires_at is not None:
            return self.config.token_expires_at
        resp = self._send(
            "POST",
            f"{self._api}/oauth2/get_token_info",
            data={"access_token": self._token},
            timeout=self.config.timeout,
            what="check the token",
        )
        body = _json(resp)
        if resp.status_code != 200 or "expire_in" not in body:
            raise self._error(resp, body, "check the token")
        return self.env.clock() + timedelta(seconds=int(body["expire_in"]))

    def check_health(self) -> HealthReport:
        try:
            expires = self.token_expiry()
        except (PermanentChannelError, TransientChannelError, QuotaExceeded) as exc:
            return HealthReport(ok=False, detail=str(exc))
        shown = expires.astimezone(self.env.timezone).strftime("%Y-%m-%d %H:%M")
        left = expires - self.env.clock()
        if left <= timedelta(0):
            return HealthReport(
                ok=False,
                detail=f"the Weibo access token expired on {shown}; re-authorise "
                f"the app and put the new token in ${self.config.access_token_env}",
            )
        warnings: list[str] = []
        if left < timedelta(days=self.config.warn_before_days):
            warnings.append(
                f"the Weibo access token expires on {shown} (in {left.days} days, "
                f"{left.seconds // 3600} hours): re-authorise the app before then"
            )
        detail = f"token valid until {shown}"
        resp = self._send(
            "GET",
            f"{self._api}/2/account/rate_limit_status.json",
            params={"access_token": self._token},
            timeout=self.config.timeout,
            what="check the quota",
        )
        body = _json(resp)
        if resp.status_code == 200 and "remaining_user_hits" in body:
            detail += f"; {body['remaining_user_hits']} of {body.get('user_limit', '?')} calls left this hour"
            if int(body["remaining_user_hits"]) == 0:
                warnings.append("no Weibo calls left this hour; deliveries wait for the next hour")
        elif body.get("error_code") is not None and int(body["error_code"]) in TOKEN_CODES:
            return HealthReport(ok=False, detail=str(self._error(resp, body, "check the quota")))
        else:
            warnings.append(f"could not read the quota ({body.get('error_code')} {body.get('error')})")
        return HealthReport(ok=True, detail=detail, warnings=tuple(warnings))


def _json(resp: requests.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
