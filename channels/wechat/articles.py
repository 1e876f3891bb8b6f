"""The article a post becomes on WeChat: checked at review time, built (with its media uploaded) at publish time.

Images are uploaded once per API host and content hash (``env.kv`` keeps what WeChat gave back): the
cover as a permanent ``thumb`` material, content images through ``uploadimg``.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from channels.wechat import format as wechat_format
from channels.wechat import media
from channels.wechat.client import ApiClient, named
from channels.wechat.config import CONTENT_MAX_BYTES, CONTENT_MAX_CHARS, WeChatConfig
from publisher.channel import Asset, PermanentChannelError, Post

#: the length of a re-hosted image URL, used to measure content at review time (before uploading)
_URL_ALLOWANCE = 160  # real mmbiz.qpic.cn URLs run to ~130 characters
ASSET_RE = re.compile(r"asset://([0-9a-f]{64})")


class Articles:
    """Review and build WeChat articles for one channel; uploaded media are cached under ``media_prefix``."""

    def __init__(
        self,
        config: WeChatConfig,
        client: ApiClient,
        kv: Any,
        media_prefix: str,
        *,
        author_max: int,
        digest_max: int,
    ) -> None:
        self.config, self.client, self.kv, self.media_prefix = config, client, kv, media_prefix
        self.author_max, self.digest_max = author_max, digest_max

    def author(self, post: Post) -> str:
        if self.config.author_from_item and post.author.strip():
            return post.author.strip()
        return self.config.author

    def problems(self, post: Post) -> list[str]:
        problems: list[str] = []
        title = post.title.strip()
        if not title:
            problems.append("the title is empty")
        elif len(title) > self.config.title_max:
            problems.append(
                f"the title is {len(title)} characters; WeChat takes at most {self.config.title_max} — shorten it"
            )
        digest = post.summary.strip()
        if "summary" in post.wording and len(digest) > self.digest_max:
            # a digest written for WeChat is refused, not cut as the item's own summary is
            problems.append(
                f"the digest (摘要) is {len(digest)} characters; WeChat takes at most {self.digest_max} — shorten it"
            )
        author = self.author(post)
        if len(author) > self.author_max:
            problems.append(
                f"the author {author!r} is {len(author)} characters; WeChat takes at most "
                f"{self.author_max} — shorten it or set the channel's author"
            )
        cover = self.cover(post)
        if cover is None:
            problems.append("a cover image is required for WeChat (it becomes the article's thumbnail) — add one")
        else:
            reason = media.inspect(cover.path, "cover")
            if reason:
                problems.append(reason)
        rendered = wechat_format.render(post.body_html, intranet_domains=tuple(self.config.intranet_domains))
        for ref in dict.fromkeys(rendered.images):
            try:
                asset = post.asset(ref.removeprefix("asset://"))
            except KeyError:
                problems.append(f"the body shows an image that is not attached to the item ({ref[:20]}…)")
                continue
            reason = media.inspect(asset.path, "image")
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
        measured = ASSET_RE.sub("x" * _URL_ALLOWANCE, rendered.html)
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

    def thumb(self, cover: Asset) -> dict[str, str]:
        key = f"{self.media_prefix}thumb:{cover.sha256}"
        cached = self.kv.get(key)
        if cached:
            return json.loads(cached)
        try:
            thumb = media.prepare_thumb(cover.path, cover.sha256[:16])
        except media.ImageRefused as exc:
            raise PermanentChannelError(str(exc)) from exc
        # a fresh file object per call: a retry after a token refresh must not send a drained one
        res = self.client.call(
            "uploading the cover", lambda: self.client.material.add("thumb", named(thumb.data, thumb.filename))
        )
        entry = {
            "media_id": res["media_id"],
            "url": res.get("url", ""),
            "crop_235_1": thumb.crop_235_1,
            "crop_1_1": thumb.crop_1_1,
        }
        self.kv.set(key, json.dumps(entry))
        return entry

    def content_image(self, asset: Asset) -> str:
        key = f"{self.media_prefix}img:{asset.sha256}"
        cached = self.kv.get(key)
        if cached:
            return cached
        try:
            img = media.prepare_content_image(asset.path, asset.sha256[:16])
        except media.ImageRefused as exc:
            raise PermanentChannelError(str(exc)) from exc
        url = self.client.call(
            "uploading an image", lambda: self.client.media.upload_image(named(img.data, img.filename))
        )
        self.kv.set(key, url)
        return url

    def cover(self, post: Post) -> Asset | None:
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

    def build(self, post: Post) -> dict[str, Any]:
        cover = self.cover(post)
        assert cover is not None  # validate() refused the item otherwise
        thumb = self.thumb(cover)
        rendered = wechat_format.render(post.body_html, intranet_domains=tuple(self.config.intranet_domains))
        urls = {
            ref.removeprefix("asset://"): self.content_image(post.asset(ref.removeprefix("asset://")))
            for ref in dict.fromkeys(rendered.images)
        }
        content = ASSET_RE.sub(lambda m: urls[m.group(1)], rendered.html)
        source = post.site_url if self.config.link_to_site and post.site_url else ""
        return {
            "title": post.title.strip(),
            "author": self.author(post),
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

    def rebuild(self, post: Post) -> dict[str, Any]:
        """The article again, its cover uploaded anew: WeChat no longer has the cached thumb."""
        cover = self.cover(post)
        assert cover is not None  # validate() refused the item otherwise
        self.kv.delete(f"{self.media_prefix}thumb:{cover.sha256}")
        return self.build(post)
