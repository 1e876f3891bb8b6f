"""Uploads to the WeChat sandbox: ``media/uploadimg`` (content images) and ``material/add_material``."""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
import secrets
from typing import Any

from channels.sandbox.wechat.state import Answer, magic_type


class MediaMixin:
    """Takes multipart ``media`` uploads and checks their type and size as WeChat documents them."""

    @staticmethod
    def _media_part(headers: Any, body: bytes) -> tuple[str, bytes]:
        ctype = headers.get("Content-Type", "") or ""
        m = re.search(r'boundary="?([^";]+)"?', ctype)
        if m:
            boundary = m.group(1).encode()
        else:
            first = body.split(b"\r\n", 1)[0]
            if not first.startswith(b"--"):
                raise Answer(41005 if not body else 40005)
            boundary = first[2:].strip()
        msg = email.message_from_bytes(
            b"Content-Type: multipart/form-data; boundary=" + boundary + b"\r\n\r\n" + body,
            policy=email.policy.HTTP,
        )
        for part in msg.iter_parts():
            if part.get_param("name", header="content-disposition") == "media":
                return part.get_filename() or "", part.get_payload(decode=True) or b""
        raise Answer(41005)

    def r_uploadimg(self, method, query, headers, body):
        self._require_token(query)
        _name, data = self._media_part(headers, body)
        kind = magic_type(data)
        if kind not in ("jpg", "png"):
            raise Answer(40005)
        if len(data) >= 1024 * 1024:
            raise Answer(40009)
        sha = hashlib.sha256(data).hexdigest()
        fmt = "jpeg" if kind == "jpg" else "png"
        url = f"http://mmbiz.qpic.cn/sz_mmbiz_{kind}/{sha[:32]}/0?wx_fmt={fmt}"
        with self._lock:
            self._s.uploads[url] = {"sha256": sha, "type": kind, "size": len(data)}
        return {"url": url}

    def r_add_material(self, method, query, headers, body):
        self._require_token(query)
        mtype = query.get("type")
        _name, data = self._media_part(headers, body)
        kind = magic_type(data)
        if mtype == "thumb":
            if kind != "jpg":
                raise Answer(40005)
            if len(data) > 64 * 1024:
                raise Answer(40009)
        elif mtype == "image":
            if kind not in ("jpg", "png", "gif", "bmp"):
                raise Answer(40005)
            if len(data) > 10 * 1024 * 1024:
                raise Answer(40009)
        else:
            raise Answer(40004 if mtype else 40005)
        media_id = secrets.token_urlsafe(32)
        sha = hashlib.sha256(data).hexdigest()
        url = f"http://mmbiz.qpic.cn/sz_mmbiz_{kind}/{sha[:32]}/0?wx_fmt={'jpeg' if kind == 'jpg' else kind}"
        with self._lock:
            self._s.materials[media_id] = {
                "type": mtype,
                "size": len(data),
                "url": url,
                "sha256": sha,
                "format": kind,
            }
        return {"media_id": media_id, "url": url}
