"""Douyin (抖音) image-text posts through the Douyin open platform.

Endpoints used (open.douyin.com, scope ``video.create``, ``open_id`` and ``access_token`` as query
parameters — the documented "图片" API of the open platform):

1. ``POST /image/upload/`` (multipart ``image``, JPEG or PNG) → ``image_id``;
2. ``POST /image/create/`` (JSON ``image_id``, ``text``) → ``item_id``;
3. ``GET /video/list/`` to find a post again, ``POST /video/delete/`` to withdraw,
   ``POST /oauth/userinfo/`` for the health check.

The newer ``/api/douyin/v1/video/upload_image/`` + ``create_image_text/`` pair (header
``access-token``, several images) does the same job for accounts moved to it; switching means
changing the paths in ``_call``. Douyin posts one image per item here: the cover, or else the first
image in the body. An account without API access is configured as a ``manual`` channel with
``place = "douyin"`` instead.

Never two posts for one delivery: the ``image_id`` is saved after the upload (a retry does not
upload again), ``create_started`` and the text before the create call; a later attempt that finds
``create_started`` but no item id looks through the account's recent posts for the same text first.

Errors arrive as ``{"data": {"error_code", "description"}}`` or, from the newer gateway,
``{"err_no", "err_msg"}``; both are mapped (codes from the open platform's common error list):
2100004 busy → transient; 2190001 quota used up → quota until midnight Beijing time; 2190002
invalid / 2190008 expired token / 2190015 token and open_id mismatch → permanent, "re-authorise";
2190004 capability not granted, 2100005 bad parameter, anything else → permanent.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import requests
from pydantic import AwareDatetime, Field

from channels._http import send
from publisher.channel import (
    Asset,
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
)

IMAGE_TYPES = {"image/jpeg", "image/png"}
TRANSIENT_CODES = {2100004, 2190011}  # system busy / service unavailable
QUOTA_CODES = {2190001}
TOKEN_CODES = {2190002, 2190008, 2190015}


class DouyinConfig(ChannelConfig):
    api_base: str = "https://open.douyin.com"
    access_token_env: str = "PUBLISHER_DOUYIN_ACCESS_TOKEN"
    open_id_env: str = "PUBLISHER_DOUYIN_OPEN_ID"
    #: when the user access token lapses (Douyin: 15 days; refresh it before); shown by check_health
    token_expires_at: AwareDatetime | None = None
    warn_before_days: int = 3
    #: topics appended to the text as "#topic"
    topics: list[str] = Field(default_factory=list)
    text_max: int = 1000
    max_image_bytes: int = 20 * 1024 * 1024
    note_url_template: str = "https://www.douyin.com/note/{item_id}"
    timeout: float = 30.0


class DouyinChannel(Channel):
    type_name = "douyin"
    label = "抖音 (Douyin)"
    Config = DouyinConfig
    supports_withdraw = True
    default_max_concurrency = 1

    config: DouyinConfig

    def __init__(self, name: str, config: DouyinConfig, env: ChannelEnv) -> None:
        super().__init__(name, config, env)
        self._token = env_secret(config.access_token_env, what=f"channel {name}: the Douyin access token")
        self._open_id = env_secret(config.open_id_env, what=f"channel {name}: the Douyin open_id")
        self._session = requests.Session()
        self._api = config.api_base.rstrip("/")

    def close(self) -> None:
        self._session.close()

    # -- content ------------------------------------------------------------------------------------------
    @staticmethod
    def image_for(post: Post) -> Asset | None:
        return post.cover or (post.images[0] if post.images else None)

    def text_for(self, post: Post) -> str:
        text = post.title if not post.summary or post.summary in post.title else f"{post.title}\n{post.summary}"
        tags = " ".join(f"#{t.lstrip('#')}" for t in self.config.topics)
        room = self.config.text_max - (len(tags) + 1 if tags else 0)
        if len(text) > room:
            text = text[: room - 1] + "…"
        return f"{text} {tags}" if tags else text

    def validate(self, post: Post) -> list[str]:
        image = self.image_for(post)
        if image is None:
            return ["a Douyin image post needs a picture: give the item a cover or an image in the body"]
        if image.content_type not in IMAGE_TYPES:
            return [f"the picture {image.filename} is {image.content_type}; Douyin takes JPEG or PNG"]
        if image.path.exists() and image.path.stat().st_size > self.config.max_image_bytes:
            return [
                f"the picture {image.filename} is {image.path.stat().st_size / 2**20:.1f} MB; Douyin takes "
                f"at most {self.config.max_image_bytes / 2**20:.0f} MB"
            ]
        return []

    # -- delivery -------------------------------------------------------------------------------------------
    def publish(self, post: Post, ctx: DeliveryContext) -> Published:
        if ctx.state.get("item_id"):
            return self._published(ctx.state["item_id"])
        text = ctx.state.get("text") or self.text_for(post)
        if ctx.state.get("create_started") and (found := self._find(text)):
            ctx.save_state(item_id=found["item_id"])
            return self._published(found["item_id"])
        if not ctx.state.get("image_id"):
            image = self.image_for(post)
            if image is None:
                raise PermanentChannelError("a Douyin image post needs a picture: the item has no cover or image")
            data = self._call(
                "POST",
                "/image/upload/",
                what="upload the picture",
                files={"image": (image.path.name, image.path.read_bytes(), image.content_type)},
            )
            ctx.save_state(image_id=data["image"]["image_id"])
        ctx.save_state(create_started=True, text=text)
        data = self._call(
            "POST",
            "/image/create/",
            what="create the Douyin post",
            creates=True,
            json={"image_id": ctx.state["image_id"], "text": text},
        )
        ctx.save_state(item_id=str(data["item_id"]))
        return self._published(str(data["item_id"]))

    def withdraw(self, post: Post, ctx: DeliveryContext) -> None:
        item_id = ctx.state.get("item_id") or ctx.remote_id
        if not item_id:
            raise PermanentChannelError("this delivery has no Douyin item id; nothing to withdraw")
        self._call("POST", "/video/delete/", what="delete the Douyin post", json={"item_id": item_id})

    def _published(self, item_id: str) -> Published:
        return Published(url=self.config.note_url_template.format(item_id=item_id), remote_id=item_id)

    def _find(self, text: str) -> dict[str, Any] | None:
        data = self._call("GET", "/video/list/", what="look for the post on Douyin", params={"cursor": 0, "count": 20})
        return next((i for i in data.get("list", []) if i.get("title") == text), None)

    def _call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        creates: bool = False,
        params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        query = {"open_id": self._open_id, "access_token": self._token, **(params or {})}
        resp = send(
            self._session,
            method,
            f"{self._api}{path}",
            params=query,
            timeout=self.config.timeout,
            what=what,
            creates=creates,
            secrets=(self._token,),
            **kwargs,
        )
        if resp.status_code >= 500:
            raise TransientChannelError(f"{what}: Douyin answered {resp.status_code}", code=resp.status_code)
        try:
            body = resp.json()
        except ValueError as exc:
            raise TransientChannelError(f"{what}: Douyin answered {resp.status_code} without JSON") from exc
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        code = body.get("err_no") if body.get("err_no") else data.get("error_code", 0)
        message = body.get("err_msg") or data.get("description") or ""
        if resp.status_code >= 400 and not code:
            code = resp.status_code
        if not code:
            return data
        code = int(code)
        if code in TRANSIENT_CODES:
            raise TransientChannelError(f"{what}: Douyin is busy ({code} {message})", code=code)
        if code in QUOTA_CODES:
            now = self.env.clock().astimezone(self.env.timezone)
            midnight = (now + timedelta(days=1)).replace(hour=0, minute=5, second=0, microsecond=0)
            raise QuotaExceeded(
                f"{what}: the Douyin quota is used up for today ({code} {message})", until=midnight, code=code
            )
        if code in TOKEN_CODES:
            raise CredentialsRefused(
                f"{what}: the Douyin access token is invalid or expired ({code} {message}); re-authorise the "
                f"account and update ${self.config.access_token_env} / ${self.config.open_id_env}",
                code=code,
            )
        raise PermanentChannelError(f"{what}: Douyin refused it ({code} {message})", code=code)

    # -- health ---------------------------------------------------------------------------------------------
    def check_health(self) -> HealthReport:
        try:
            me = self._call(
                "POST",
                "/oauth/userinfo/",
                what="check the account",
                data={"access_token": self._token, "open_id": self._open_id},
            )
        except (TransientChannelError, PermanentChannelError, QuotaExceeded) as exc:
            return HealthReport(ok=False, detail=str(exc))
        warnings: list[str] = []
        detail = f"authorised as {me.get('nickname', '?')}"
        expires: datetime | None = self.config.token_expires_at
        if expires is not None:
            left = expires - self.env.clock()
            shown = expires.astimezone(self.env.timezone).strftime("%Y-%m-%d %H:%M")
            if left <= timedelta(0):
                return HealthReport(ok=False, detail=f"the Douyin access token expired on {shown}; re-authorise")
            detail += f"; token valid until {shown}"
            if left < timedelta(days=self.config.warn_before_days):
                warnings.append(f"the Douyin access token expires on {shown}: refresh or re-authorise before then")
        return HealthReport(ok=True, detail=detail, warnings=tuple(warnings))
