"""Publishing in the WeChat sandbox: ``freepublish/*`` jobs, their PUBLISHJOBFINISH callback, and mass send."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import struct
import threading
import time
from typing import Any
from urllib.parse import urlencode

import requests

from channels.sandbox.wechat.state import Answer


class PublishMixin:
    """Runs publish jobs that finish after ``publish_delay`` and tells ``callback_url`` as WeChat does."""

    def r_submit(self, method, query, headers, body):
        self._require_token(query)
        if not self.verified:
            raise Answer(48001)
        data = self._body_json(body)
        media_id = data.get("media_id") or ""
        with self._lock:
            draft = self._s.drafts.get(media_id)
            if draft is None:
                raise Answer(40007)
            if any(j["media_id"] == media_id and j["publish_status"] == 1 for j in self._s.jobs.values()):
                raise Answer(40007)
            publish_id = str(next(self._ids))
            msg_data_id = str(next(self._ids))
            outcome = self._s.pending_audit.pop(0) if self._s.pending_audit else 0
            self._s.jobs[publish_id] = {
                "publish_id": publish_id,
                "msg_data_id": msg_data_id,
                "media_id": media_id,
                "publish_status": 1,
                "outcome": outcome,
                "article_id": None,
                "submitted_at": time.time(),
            }
        t = threading.Timer(self.publish_delay, self._finish_job, args=(publish_id,))
        t.daemon = True
        self._timers.append(t)
        t.start()
        return {"errcode": 0, "errmsg": "ok", "publish_id": publish_id, "msg_data_id": msg_data_id}

    def _finish_job(self, publish_id: str) -> None:
        with self._lock:
            job = self._s.jobs.get(publish_id)
            if job is None or job["publish_status"] != 1:
                return
            draft = self._s.drafts.get(job["media_id"])
            if job["outcome"] != 0 or draft is None:
                job["publish_status"] = job["outcome"] or 3
                job["fail_idx"] = [1]
            else:
                article_id = secrets.token_urlsafe(33)
                urls = [f"https://mp.weixin.qq.com/s/{secrets.token_urlsafe(16)}" for _ in draft["news_item"]]
                items = [dict(it, url=u, is_deleted=False) for it, u in zip(draft["news_item"], urls, strict=True)]
                self._s.articles[article_id] = {
                    "article_id": article_id,
                    "publish_id": publish_id,
                    "msg_data_id": job["msg_data_id"],
                    "draft_media_id": job["media_id"],
                    "url": urls[0],
                    "urls": urls,
                    "news_item": items,
                    "deleted": False,
                    "publish_time": int(time.time()),
                    "seq": len(self._s.articles),
                }
                del self._s.drafts[job["media_id"]]
                job.update(publish_status=0, article_id=article_id, urls=urls, fail_idx=[])
            event = dict(job)
        self._send_callback(event)

    def _event_xml(self, job: dict) -> str:
        if job["publish_status"] == 0:
            items = "".join(
                f"<item><idx>{i}</idx><article_url><![CDATA[{u}]]></article_url></item>"
                for i, u in enumerate(job["urls"], start=1)
            )
            info = (
                f"<publish_id>{job['publish_id']}</publish_id><publish_status>0</publish_status>"
                f"<article_id><![CDATA[{job['article_id']}]]></article_id>"
                f"<article_detail><count>{len(job['urls'])}</count>{items}</article_detail>"
            )
        else:
            fails = "".join(f"<fail_idx>{i}</fail_idx>" for i in job.get("fail_idx", [1]))
            info = (
                f"<publish_id>{job['publish_id']}</publish_id>"
                f"<publish_status>{job['publish_status']}</publish_status>{fails}"
            )
        return (
            "<xml>"
            f"<ToUserName><![CDATA[{self.original_id}]]></ToUserName>"
            "<FromUserName><![CDATA[oV5CrjpxgaGXNHIQigzNlgLTnwic]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime>"
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[PUBLISHJOBFINISH]]></Event>"
            f"<PublishEventInfo>{info}</PublishEventInfo></xml>"
        )

    def _send_callback(self, job: dict) -> None:
        url, token = self.callback_url, self.callback_token
        if not url or not token:
            return
        xml = self._event_xml(job)
        timestamp, nonce = str(int(time.time())), str(secrets.randbelow(10**10))
        params = {
            "signature": _sha1(token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "openid": "oV5CrjpxgaGXNHIQigzNlgLTnwic",
        }
        body = xml
        if self.callback_mode == "aes":
            encrypt = aes_encrypt(self.encoding_aes_key or "", self.appid, xml)
            params |= {"encrypt_type": "aes", "msg_signature": _sha1(token, timestamp, nonce, encrypt)}
            body = (
                f"<xml><ToUserName><![CDATA[{self.original_id}]]></ToUserName>"
                f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
            )
        record = {"publish_id": job["publish_id"], "attempts": 0, "status": None}
        with self._lock:
            self._s.callbacks.append(record)
        sep = "&" if "?" in url else "?"
        for _ in range(3):  # WeChat retries three times when it gets no answer in time
            record["attempts"] += 1
            try:
                r = requests.post(
                    f"{url}{sep}{urlencode(params)}",
                    data=body.encode("utf-8"),
                    timeout=self.callback_timeout,
                    headers={"Content-Type": "text/xml"},
                )
                record["status"] = r.status_code
                if r.status_code == 200:
                    return
            except requests.RequestException as exc:
                record["status"] = type(exc).__name__

    def r_publish_get(self, method, query, headers, body):
        self._require_token(query)
        data = self._body_json(body)
        with self._lock:
            job = self._s.jobs.get(str(data.get("publish_id") or ""))
            if job is None:
                raise Answer(40007)
            out: dict[str, Any] = {"publish_id": job["publish_id"], "publish_status": job["publish_status"]}
            if job["publish_status"] in (0, 5) and job.get("article_id"):
                out["article_id"] = job["article_id"]
                out["article_detail"] = {
                    "count": len(job["urls"]),
                    "item": [{"idx": i, "article_url": u} for i, u in enumerate(job["urls"], start=1)],
                }
            out["fail_idx"] = job.get("fail_idx", [])
            return out

    def r_publish_delete(self, method, query, headers, body):
        self._require_token(query)
        data = self._body_json(body)
        with self._lock:
            art = self._s.articles.get(data.get("article_id") or "")
            if art is None:
                raise Answer(53600)
            index = int(data.get("index", 0))
            if index == 0:
                for it in art["news_item"]:
                    it["is_deleted"] = True
            elif 1 <= index <= len(art["news_item"]):
                art["news_item"][index - 1]["is_deleted"] = True
            else:
                raise Answer(53600)
            art["deleted"] = all(it["is_deleted"] for it in art["news_item"])
            if art["deleted"]:
                self._s.jobs[art["publish_id"]]["publish_status"] = 5
        return {"errcode": 0, "errmsg": "ok"}

    def r_getarticle(self, method, query, headers, body):
        self._require_token(query)
        data = self._body_json(body)
        with self._lock:
            art = self._s.articles.get(data.get("article_id") or "")
            if art is None:
                raise Answer(53600)
            return {"news_item": self._public_items(art["news_item"])}

    def r_publish_batchget(self, method, query, headers, body):
        self._require_token(query)
        offset, count, no_content = self._page(body)
        with self._lock:
            # as WeChat does: a deleted article stays listed, its news items marked is_deleted
            rows = sorted(self._s.articles.values(), key=lambda a: a["seq"], reverse=True)
            page = rows[offset : offset + count]
            return {
                "total_count": len(rows),
                "item_count": len(page),
                "item": [
                    {
                        "article_id": a["article_id"],
                        "content": {
                            "news_item": self._public_items(a["news_item"], not no_content),
                            "create_time": a["publish_time"],
                            "update_time": a["publish_time"],
                        },
                        "update_time": a["publish_time"],
                    }
                    for a in page
                ],
            }

    def r_sendall(self, method, query, headers, body):
        self._require_token(query)
        if not self.verified:
            raise Answer(48001)
        data = self._body_json(body)
        if data.get("msgtype") != "mpnews":
            raise Answer(40008)
        cid = str(data.get("clientmsgid") or "")
        if len(cid.encode()) > 64:
            raise Answer(45067)
        with self._lock:
            if cid and cid in self._s.mass:
                prev = self._s.mass[cid]
                raise Answer(45065, {"msg_id": prev["msg_id"]})
            media_id = (data.get("mpnews") or {}).get("media_id") or ""
            if media_id not in self._s.drafts:
                raise Answer(40007)
            send = {
                "msg_id": next(self._ids),
                "msg_data_id": next(self._ids),
                "media_id": media_id,
                "clientmsgid": cid,
                "filter": data.get("filter"),
                "time": time.time(),
            }
            self._s.mass[cid or str(send["msg_id"])] = send
        return {
            "errcode": 0,
            "errmsg": "send job submission success",
            "msg_id": send["msg_id"],
            "msg_data_id": send["msg_data_id"],
        }


def _sha1(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def aes_encrypt(encoding_aes_key: str, appid: str, xml: str) -> str:
    """WeChat's safe-mode encryption, written from the documentation (not shared with the client)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = base64.b64decode(encoding_aes_key + "=")
    raw = xml.encode("utf-8")
    plain = os.urandom(16) + struct.pack(">I", len(raw)) + raw + appid.encode("utf-8")
    pad = 32 - len(plain) % 32
    plain += bytes([pad]) * pad
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode("ascii")
