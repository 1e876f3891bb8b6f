"""WeChat's server-configuration callback (服务器配置): the PUBLISHJOBFINISH event, kept for the delivery to find.

Plain mode is authenticated by ``signature`` (token, timestamp and nonce — not the body), so old
timestamps and a nonce seen before are refused; safe mode (``encrypt_type=aes``) by ``msg_signature``
over the ciphertext.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException

from publisher.channel import CallbackReply

log = logging.getLogger(__name__)


def publish_event(msg: Any) -> dict[str, Any] | None:
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


class Callbacks:
    """The callbacks of one account: checked, and their publish events stored under ``prefix`` in ``kv``."""

    def __init__(
        self,
        *,
        token: str | None,
        aes_key: str | None,
        appid: str,
        max_age: float,
        kv: Any,
        prefix: str,
        clock: Callable[[], datetime],
        label: str,
    ) -> None:
        self.token, self.aes_key, self.appid, self.max_age = token, aes_key, appid, max_age
        self.kv, self.prefix, self.clock, self.label = kv, prefix, clock, label

    def event(self, publish_id: str) -> dict[str, Any] | None:
        raw = self.kv.get(f"{self.prefix}event:{publish_id}")
        return json.loads(raw) if raw else None

    def handle(self, method: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes) -> CallbackReply:
        from wechatpy.utils import check_signature

        if not self.token:
            return CallbackReply(status=404, body=b"callbacks are not configured for this channel")
        q = {k: (v if isinstance(v, str) else v[0]) for k, v in query.items()}
        safe_mode = method.upper() == "POST" and q.get("encrypt_type") == "aes"
        if not safe_mode:  # in safe mode msg_signature (over token and ciphertext) is what authenticates
            try:
                check_signature(self.token, q.get("signature", ""), q.get("timestamp", ""), q.get("nonce", ""))
            except InvalidSignatureException:
                log.warning("wechat %s: callback with a wrong signature refused", self.label)
                return CallbackReply(status=403, body=b"invalid signature")
        if method.upper() == "GET":
            return CallbackReply(body=q.get("echostr", "").encode())
        # a plain-mode signature covers only token, timestamp and nonce, not the body: refuse old
        # timestamps and a nonce seen before, so a captured signature cannot carry another body
        now = self.clock()
        max_age = self.max_age
        try:
            age = abs(now.timestamp() - int(q.get("timestamp", "")))
        except ValueError:
            return CallbackReply(status=400, body=b"bad timestamp")
        if max_age and age > max_age:
            log.warning("wechat %s: callback with a timestamp %.0fs away refused", self.label, age)
            return CallbackReply(status=403, body=b"stale timestamp")
        seen_key = f"{self.prefix}cb:{q.get('timestamp')}:{q.get('nonce', '')}"
        if self.kv.get(seen_key):
            return CallbackReply(body=b"success")  # WeChat's retry of a request already handled
        try:
            xml = self._decrypt(q, body) if safe_mode else body.decode("utf-8")
            msg = xmltodict.parse(xml)["xml"]
            event = publish_event(msg)
        except InvalidSignatureException:
            log.warning("wechat %s: callback with a wrong msg_signature refused", self.label)
            return CallbackReply(status=403, body=b"invalid signature")
        except (InvalidAppIdException, ExpatError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("wechat %s: unreadable callback (%s)", self.label, type(exc).__name__)
            return CallbackReply(status=400, body=b"bad message")
        self.kv.set(seen_key, "1", expires_at=now + timedelta(seconds=2 * (max_age or 300) + 60))
        if event is not None:
            # storing is idempotent, so a repeated event does no harm
            self.kv.set(
                f"{self.prefix}event:{event['publish_id']}",
                json.dumps(event),
                expires_at=now + timedelta(days=7),
            )
        return CallbackReply(body=b"success")

    def _decrypt(self, q: Mapping[str, str], body: bytes) -> str:
        from wechatpy.crypto import WeChatCrypto

        if not self.aes_key:
            raise ValueError("safe-mode callback but no EncodingAESKey configured")
        crypto = WeChatCrypto(self.token, self.aes_key, self.appid)
        return crypto.decrypt_message(
            body.decode("utf-8"), q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", "")
        )
