"""A CMS with a REST API, the WordPress REST API (``/wp-json/wp/v2``) as the reference.

Authentication is an *application password* (WordPress ≥ 5.6: Users → Profile → Application
Passwords) sent as HTTP Basic with the user name; the password comes from the environment.

Never two posts for one delivery
    The post is created with the slug ``publisher-d<delivery id>`` and ``create_started`` is saved
    before the POST. A later attempt that finds ``create_started`` but no post id looks the slug up
    (``?slug=...&status=any``) before creating, so a lost answer never becomes a second post. Once
    the id is known it lives in ``ctx.state["post_id"]`` (and the core stores it as the remote id):
    edits update that post in place, and a repeated publish returns it unchanged. A put-back after
    a take-down is a new post with a slug of its own, ``publisher-d<delivery id>-g<generation>``.

Images are uploaded once to the media library and reused: uploads are cached by content hash in the
shared key/value store, so an item's second version (or another item with the same picture) does
not upload again.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import requests
from pydantic import Field, field_validator

from channels._http import retry_after_seconds, send
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
    RemotePublication,
    TransientChannelError,
    env_secret,
)

#: what WordPress accepts in the media library by default (wp_get_mime_types, images only)
ALLOWED_IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}


class CmsConfig(ChannelConfig):
    #: the site root, e.g. "https://xxgk.example.edu.cn" (the API is at <base_url>/wp-json/wp/v2)
    base_url: str
    username: str
    password_env: str = "PUBLISHER_CMS_APP_PASSWORD"
    #: what withdrawing does: back to "draft", to the "trash" (restorable), or "delete" for good
    withdraw_to: Literal["draft", "trash", "delete"] = "draft"
    #: our category (e.g. "公告公示") -> the WordPress category id
    categories: dict[str, int] = Field(default_factory=dict)
    #: look an unmapped category up by name on the CMS, creating it when missing
    create_categories: bool = False
    #: used when the category is unmapped and create_categories is off (None = refuse at review)
    default_category: int | None = None
    #: the upload limit of the site (WordPress: upload_max_filesize in php.ini)
    max_upload_bytes: int = 8 * 1024 * 1024
    #: set the cover as the post's featured image
    featured_cover: bool = True
    timeout: float = 20.0

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL of the site root")
        return v.rstrip("/")


class CmsChannel(Channel):
    type_name = "cms"
    label = "CMS (WordPress REST API)"
    Config = CmsConfig
    supports_update = True
    supports_withdraw = True
    supports_listing = True
    default_max_concurrency = 2

    config: CmsConfig

    def __init__(self, name: str, config: CmsConfig, env: ChannelEnv) -> None:
        super().__init__(name, config, env)
        password = env_secret(config.password_env, what=f"channel {name}: the CMS application password")
        self._api = f"{config.base_url}/wp-json/wp/v2"
        self._session = requests.Session()
        self._session.auth = (config.username, password.replace(" ", ""))
        self._session.headers["User-Agent"] = "publisher (+cms channel)"

    def close(self) -> None:
        self._session.close()

    # -- review time --------------------------------------------------------------------------------------
    def validate(self, post: Post) -> list[str]:
        problems = []
        if not post.title.strip():
            problems.append("the title is empty; the CMS needs one")
        for a in post.referenced_assets() + ([post.cover] if post.cover and self.config.featured_cover else []):
            if a.content_type not in ALLOWED_IMAGE_TYPES:
                problems.append(f"image {a.filename} is {a.content_type}; the CMS takes JPEG, PNG, GIF or WebP")
            elif a.path.exists() and a.path.stat().st_size > self.config.max_upload_bytes:
                problems.append(
                    f"image {a.filename} is {a.path.stat().st_size // 1024} KB; the CMS takes at "
                    f"most {self.config.max_upload_bytes // 1024} KB — make it smaller"
                )
        if (
            post.category not in self.config.categories
            and not self.config.create_categories
            and self.config.default_category is None
        ):
            problems.append(
                f"category {post.category!r} has no CMS category: add it to "
                f"[channels.{self.name}].categories (or set default_category)"
            )
        return problems

    # -- delivery -------------------------------------------------------------------------------------------
    def _slug(self, ctx: DeliveryContext) -> str:
        # a put-back is a new post: its own slug, so a lookup never finds the old copy (left a draft)
        return f"publisher-d{ctx.delivery_id}" + (f"-g{ctx.generation}" if ctx.generation else "")

    def publish(self, post: Post, ctx: DeliveryContext) -> Published:
        if ctx.state.get("post_id"):
            return Published(url=ctx.state.get("link"), remote_id=str(ctx.state["post_id"]))
        if ctx.state.get("create_started"):
            found = self._find_by_slug(ctx.state.get("slug") or self._slug(ctx))
            if found is not None:
                ctx.save_state(post_id=found["id"], link=found["link"])
                if found["status"] != "publish":  # created but the publish step was lost
                    self._write_post(found["id"], {"status": "publish"}, what="publish the post")
                return Published(url=found["link"], remote_id=str(found["id"]))
        fields = self._fields(post)
        fields.update(status="publish", slug=self._slug(ctx))
        ctx.save_state(create_started=True, slug=fields["slug"])
        resp = send(
            self._session,
            "POST",
            f"{self._api}/posts",
            json=fields,
            timeout=self.config.timeout,
            what="create the post",
            creates=True,
        )
        data = self._check(resp, "create the post")
        ctx.save_state(post_id=data["id"], link=data["link"])
        return Published(url=data["link"], remote_id=str(data["id"]))

    def update(self, post: Post, ctx: DeliveryContext) -> Published:
        pid = self._post_id(ctx)
        fields = self._fields(post)
        fields["status"] = "publish"
        data = self._write_post(pid, fields, what="update the post")
        ctx.save_state(post_id=data["id"], link=data["link"])
        return Published(url=data["link"], remote_id=str(data["id"]))

    def withdraw(self, post: Post, ctx: DeliveryContext) -> None:
        pid = self._post_id(ctx)
        what = f"withdraw the post (to {self.config.withdraw_to})"
        if self.config.withdraw_to == "draft":
            self._write_post(pid, {"status": "draft"}, what=what)
            return
        params = {"force": "true"} if self.config.withdraw_to == "delete" else {}
        resp = send(
            self._session,
            "DELETE",
            f"{self._api}/posts/{pid}",
            params=params,
            timeout=self.config.timeout,
            what=what,
        )
        if resp.status_code in (404, 410):  # already gone or already in the trash: the goal is met
            return
        self._check(resp, what)

    # -- helpers --------------------------------------------------------------------------------------------
    def _post_id(self, ctx: DeliveryContext) -> int:
        pid = ctx.state.get("post_id") or ctx.remote_id
        if not pid:
            raise PermanentChannelError(f"channel {self.name!r}: this delivery has no CMS post id; publish it first")
        return int(pid)

    def _write_post(self, pid: int, fields: dict[str, Any], *, what: str) -> dict[str, Any]:
        resp = send(
            self._session,
            "POST",
            f"{self._api}/posts/{pid}",
            json=fields,
            timeout=self.config.timeout,
            what=what,
        )
        if resp.status_code == 404:
            raise PermanentChannelError(
                f"{what}: post #{pid} no longer exists on the CMS (deleted by hand?)",
                code="rest_post_invalid_id",
            )
        return self._check(resp, what)

    def _fields(self, post: Post) -> dict[str, Any]:
        content = post.html_with_assets(lambda a: self._media(a)["source_url"])
        fields: dict[str, Any] = {
            "title": post.title,
            "content": content,
            "excerpt": post.summary,
            "categories": [self._category_id(post.category)],
        }
        if self.config.featured_cover and post.cover is not None:
            fields["featured_media"] = self._media(post.cover)["id"]
        return fields

    def _find_by_slug(self, slug: str) -> dict[str, Any] | None:
        resp = send(
            self._session,
            "GET",
            f"{self._api}/posts",
            params={"slug": slug, "status": "any"},
            timeout=self.config.timeout,
            what="look the post up",
        )
        found = self._check(resp, "look the post up")
        return found[0] if found else None

    def _media(self, asset: Asset) -> dict[str, Any]:
        key = f"cms:{self.name}:media:{asset.sha256}"
        cached = self.env.kv.get(key)
        if cached:
            media = json.loads(cached)
            if asset.alt and media.get("alt_text") != asset.alt:
                media = self._describe(media, asset)
            return media
        resp = send(
            self._session,
            "POST",
            f"{self._api}/media",
            data=asset.path.read_bytes(),
            headers={
                "Content-Type": asset.content_type,
                "Content-Disposition": f'attachment; filename="{_ascii_filename(asset)}"',
            },
            timeout=max(self.config.timeout, 60),
            what=f"upload image {asset.filename}",
        )
        data = self._check(resp, f"upload image {asset.filename}")
        media = {"id": data["id"], "source_url": data["source_url"]}
        self.env.kv.set(key, json.dumps(media))
        if asset.alt:
            media = self._describe(media, asset)
        return media

    def _describe(self, media: dict[str, Any], asset: Asset) -> dict[str, Any]:
        """Give an uploaded picture its alt text (the cover's, required at submit): the upload sends
        the file's bytes alone, so the text goes in an update of the media item (``alt_text``)."""
        what = f"set the alt text of image {asset.filename}"
        resp = send(
            self._session,
            "POST",
            f"{self._api}/media/{media['id']}",
            json={"alt_text": asset.alt},
            timeout=self.config.timeout,
            what=what,
        )
        self._check(resp, what)
        media = {**media, "alt_text": asset.alt}
        self.env.kv.set(f"cms:{self.name}:media:{asset.sha256}", json.dumps(media))
        return media

    def _category_id(self, category: str) -> int:
        if category in self.config.categories:
            return self.config.categories[category]
        if not self.config.create_categories:
            if self.config.default_category is not None:
                return self.config.default_category
            raise PermanentChannelError(
                f"category {category!r} has no CMS category id in [channels.{self.name}].categories"
            )
        key = f"cms:{self.name}:category:{category}"
        if (cached := self.env.kv.get(key)) is not None:
            return int(cached)
        resp = send(
            self._session,
            "GET",
            f"{self._api}/categories",
            params={"search": category, "per_page": 100},
            timeout=self.config.timeout,
            what="look the category up",
        )
        cid = next((c["id"] for c in self._check(resp, "look the category up") if c["name"] == category), None)
        if cid is None:
            resp = send(
                self._session,
                "POST",
                f"{self._api}/categories",
                json={"name": category},
                timeout=self.config.timeout,
                what="create the category",
            )
            if resp.status_code == 400 and _wp_code(resp) == "term_exists":
                cid = resp.json()["data"]["term_id"]
            else:
                cid = self._check(resp, "create the category")["id"]
        self.env.kv.set(key, str(cid))
        return int(cid)

    def _check(self, resp: requests.Response, what: str) -> Any:
        """The JSON body of a successful answer; WordPress's error shape translated otherwise."""
        if resp.status_code < 300:
            try:
                return resp.json()
            except ValueError as exc:
                raise TransientChannelError(
                    f"{what}: the CMS answered {resp.status_code} without JSON (a proxy or maintenance page?)"
                ) from exc
        code = _wp_code(resp)
        message = _wp_message(resp)
        if resp.status_code == 429:
            raise QuotaExceeded(
                f"{what}: the CMS is rate limiting us",
                until=self.env.clock() + timedelta(seconds=retry_after_seconds(resp)),
                code=429,
            )
        if resp.status_code >= 500 or resp.status_code == 408:
            raise TransientChannelError(
                f"{what}: the CMS answered {resp.status_code}" + (f" ({code}: {message})" if code else ""),
                code=code or resp.status_code,
            )
        hint, refusal = "", PermanentChannelError
        if resp.status_code == 401:
            hint = (
                f" — check the user name {self.config.username!r} and the application password in "
                f"${self.config.password_env}"
            )
            refusal = CredentialsRefused
        elif resp.status_code == 403:
            hint = f" — the CMS user {self.config.username!r} lacks the right; give it the Editor role"
        raise refusal(
            f"{what}: the CMS refused ({resp.status_code} {code}: {message}){hint}",
            code=code or resp.status_code,
        )

    # -- after publication ----------------------------------------------------------------------------
    def list_publications(self, since: datetime | None = None) -> list[RemotePublication]:
        params: dict[str, Any] = {"per_page": 100}
        if since is not None:
            params["after"] = since.astimezone(self.env.timezone).replace(tzinfo=None).isoformat()
        resp = send(
            self._session,
            "GET",
            f"{self._api}/posts",
            params=params,
            timeout=self.config.timeout,
            what="list the posts",
        )
        out = []
        for p in self._check(resp, "list the posts"):
            published = datetime.fromisoformat(p["date_gmt"]).replace(tzinfo=UTC)
            out.append(
                RemotePublication(
                    remote_id=str(p["id"]),
                    title=p["title"]["rendered"],
                    url=p["link"],
                    published_at=published,
                )
            )
        return out

    def check_health(self) -> HealthReport:
        try:
            resp = send(
                self._session,
                "GET",
                f"{self._api}/users/me",
                params={"context": "edit"},
                timeout=self.config.timeout,
                what="check the login",
            )
            me = self._check(resp, "check the login")
        except (TransientChannelError, PermanentChannelError) as exc:
            return HealthReport(ok=False, detail=str(exc))
        caps = me.get("capabilities") or {}
        missing = [c for c in ("publish_posts", "upload_files") if not caps.get(c)]
        warnings = tuple(f"the CMS user lacks the {c} capability" for c in missing)
        if self.config.create_categories and not caps.get("manage_categories"):
            warnings += ("create_categories is on but the CMS user cannot manage categories",)
        return HealthReport(
            ok="publish_posts" not in missing,
            detail=f"logged in to {self.config.base_url} as {me.get('name', self.config.username)}",
            warnings=warnings,
        )


def _ascii_filename(asset: Asset) -> str:
    """A header-safe file name: HTTP headers are Latin-1, and Chinese file names are common."""
    name = asset.filename.encode("ascii", "ignore").decode().replace('"', "").strip()
    suffix = asset.path.suffix or ("." + asset.content_type.split("/")[-1])
    return name if name and name != suffix else f"{asset.sha256[:16]}{suffix}"


def _wp_code(resp: requests.Response) -> str | None:
    try:
        body = resp.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


def _wp_message(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.reason or ""
    return str(body.get("message", "")) if isinstance(body, dict) else ""
