"""The draft box of the WeChat sandbox: ``draft/add|get|update|delete|count|batchget``."""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from channels.sandbox.wechat.state import Answer, strip_content


class DraftsMixin:
    """Keeps drafts as WeChat does: fields checked against its limits, content cleaned of what it strips."""

    def _clean_article(self, art: Any) -> dict:
        if not isinstance(art, dict):
            raise Answer(47001)
        title = art.get("title")
        content = art.get("content")
        if not title or not content:
            raise Answer(44003)
        if len(title) > 32:
            raise Answer(45003)
        if len(art.get("author") or "") > 16:
            raise Answer(45110)
        if len(art.get("digest") or "") > 128:
            raise Answer(45004)
        if len(content) >= 20000 or len(content.encode("utf-8")) >= 1024 * 1024:
            raise Answer(45002)
        if len((art.get("content_source_url") or "").encode()) > 1024:
            raise Answer(45005)
        article_type = art.get("article_type") or "news"
        thumb = art.get("thumb_media_id")
        with self._lock:
            mat = self._s.materials.get(thumb or "")
        if article_type == "news" and (mat is None):
            raise Answer(40007)
        cleaned, stripped = strip_content(content)
        digest = art.get("digest") or re.sub(r"<[^>]+>", "", cleaned)[:54]
        return {
            "title": title,
            "author": art.get("author") or "",
            "digest": digest,
            "content": cleaned,
            "content_source_url": art.get("content_source_url") or "",
            "thumb_media_id": thumb or "",
            "thumb_url": mat["url"] if mat else "",
            "need_open_comment": int(art.get("need_open_comment") or 0),
            "only_fans_can_comment": int(art.get("only_fans_can_comment") or 0),
            "pic_crop_235_1": art.get("pic_crop_235_1") or "",
            "pic_crop_1_1": art.get("pic_crop_1_1") or "",
            "article_type": article_type,
            "show_cover_pic": 0,
            "stripped_images": stripped,
        }

    def r_draft_add(self, method, query, headers, body):
        self._require_token(query)
        data = self._body_json(body)
        arts = data.get("articles")
        if not isinstance(arts, list) or not arts:
            raise Answer(44003)
        items = [self._clean_article(a) for a in arts]
        media_id = secrets.token_urlsafe(32)
        with self._lock:
            self._s.drafts[media_id] = {
                "news_item": items,
                "update_time": int(time.time()),
                "create_time": int(time.time()),
                "seq": next(self._ids),
            }
        return {"media_id": media_id}

    def _public_items(self, items: list[dict], with_content: bool = True) -> list[dict]:
        out = []
        for it in items:
            d = {k: v for k, v in it.items() if k != "stripped_images"}
            if not with_content:
                d.pop("content", None)
            out.append(d)
        return out

    def r_draft_get(self, method, query, headers, body):
        self._require_token(query)
        data = self._body_json(body)
        with self._lock:
            d = self._s.drafts.get(data.get("media_id") or "")
            if d is None:
                raise Answer(40007)
            return {"news_item": self._public_items(d["news_item"])}

    def r_draft_update(self, method, query, headers, body):
        self._require_token(query)
        data = self._body_json(body)
        with self._lock:
            d = self._s.drafts.get(data.get("media_id") or "")
            if d is None:
                raise Answer(40007)
            idx = int(data.get("index", 0))
            if not 0 <= idx < len(d["news_item"]):
                raise Answer(40007)
        item = self._clean_article(data.get("articles"))
        with self._lock:
            d["news_item"][idx] = item
            d["update_time"] = int(time.time())
        return {"errcode": 0, "errmsg": "ok"}

    def r_draft_delete(self, method, query, headers, body):
        self._require_token(query)
        data = self._body_json(body)
        with self._lock:
            if self._s.drafts.pop(data.get("media_id") or "", None) is None:
                raise Answer(40007)
        return {"errcode": 0, "errmsg": "ok"}

    def r_draft_count(self, method, query, headers, body):
        self._require_token(query)
        with self._lock:
            return {"total_count": len(self._s.drafts)}

    def _page(self, body: bytes) -> tuple[int, int, bool]:
        data = self._body_json(body)
        offset, count = int(data.get("offset", 0)), int(data.get("count", 0))
        if offset < 0 or not 1 <= count <= 20:
            raise Answer(40007 if count else 47001)
        return offset, count, bool(int(data.get("no_content", 0)))

    def r_draft_batchget(self, method, query, headers, body):
        self._require_token(query)
        offset, count, no_content = self._page(body)
        with self._lock:
            # newest first by creation (what WeChat's listing is reported to do; it takes no order)
            rows = sorted(self._s.drafts.items(), key=lambda kv: kv[1]["seq"], reverse=True)
            page = rows[offset : offset + count]
            return {
                "total_count": len(rows),
                "item_count": len(page),
                "item": [
                    {
                        "media_id": mid,
                        "content": {
                            "news_item": self._public_items(d["news_item"], not no_content),
                            "create_time": d["create_time"],
                            "update_time": d["update_time"],
                        },
                        "update_time": d["update_time"],
                    }
                    for mid, d in page
                ],
            }
