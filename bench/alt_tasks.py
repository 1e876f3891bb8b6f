"""The job the alternatives run: sign and POST one document, as a user's own task module would.

Kept to ``requests`` and the standard library on purpose: RQ's default worker forks a work horse per
job, and a task module that imports the whole application would be re-imported in every horse.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from typing import Any

import requests

#: the benchmarks' shared secret (bench._common.SECRET), repeated to keep this module light
SECRET = b"bench-secret-not-a-real-one"

_local = threading.local()


def post_doc(url: str, doc: dict[str, Any], key: str) -> None:
    """The webhook's signature scheme (channels.webhook.sign), one POST, fail on non-2xx."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    ts = str(int(time.time()))
    sig = "sha256=" + hmac.new(SECRET, ts.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    r = session.post(
        url,
        data=body,
        timeout=(10, 10),
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "X-Publisher-Timestamp": ts,
            "X-Publisher-Signature": sig,
            "Idempotency-Key": key,
            "X-Publisher-Event": "publish",
        },
    )
    r.raise_for_status()
