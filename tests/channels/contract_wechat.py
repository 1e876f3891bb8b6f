"""The WeChat channel in the contract suite, plus the helpers its own tests share.

``make_harness`` starts a :class:`WeChatSandbox` on loopback and builds a channel pointed at it, with a
default cover (contract posts carry no images) and short poll intervals.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import Image

from channels.sandbox.wechat import WeChatSandbox
from channels.wechat import WeChatChannel, WeChatConfig
from publisher.channel import Asset, Channel
from publisher.testing import make_env
from tests.channels.harness import Harness

SECRET_ENV = "PUBLISHER_TEST_WECHAT_SECRET"
TOKEN_ENV = "PUBLISHER_TEST_WECHAT_CB_TOKEN"
AES_ENV = "PUBLISHER_TEST_WECHAT_AES_KEY"
CALLBACK_TOKEN = "callbackToken123"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters, as the MP console issues


def image_asset(
    tmp_path: Path,
    name: str,
    *,
    size=(640, 480),
    color=(30, 120, 200),
    fmt: str = "JPEG",
    mode: str = "RGB",
    role: str = "image",
    noise: bool = False,
    **save: Any,
) -> Asset:
    """A real picture written with Pillow, as the core would store it (content-addressed)."""
    im = Image.new(mode, size, color)
    if noise:
        rnd = random.Random(name)
        im = Image.frombytes(mode, size, rnd.randbytes(size[0] * size[1] * len(mode)))
    path = tmp_path / name
    im.save(path, fmt, **save)
    data = path.read_bytes()
    return Asset(
        sha256=hashlib.sha256(data).hexdigest(),
        path=path,
        filename=name,
        content_type=f"image/{fmt.lower()}",
        role=role,
        width=size[0],
        height=size[1],
    )


def make_channel(
    sandbox: WeChatSandbox, tmp_path: Path, *, env=None, name: str = "wechat", **config: Any
) -> WeChatChannel:
    os.environ[SECRET_ENV] = sandbox.secret
    os.environ[TOKEN_ENV] = CALLBACK_TOKEN
    os.environ[AES_ENV] = AES_KEY
    settings = dict(
        appid=sandbox.appid,
        secret_env=SECRET_ENV,
        api_base=sandbox.base_url,
        timeout=5.0,
        poll_intervals=[0.2, 0.3],
        reconcile_grace=30.0,
        callback_token_env=TOKEN_ENV,
        encoding_aes_key_env=AES_ENV,
    )
    settings.update(config)
    return WeChatChannel(name, WeChatConfig(**settings), env or make_env(tmp_path))


class CallbackServer:
    """Stands in for the web app's ``/channels/<name>/callback`` route: forwards to handle_callback."""

    def __init__(self, channel: Channel) -> None:
        outer = self
        self.channel = channel
        self.replies: list[int] = []

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _do(self, method: str) -> None:
                parts = urlsplit(self.path)
                q = {k: v[0] for k, v in parse_qs(parts.query).items()}
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                reply = outer.channel.handle_callback(method, q, dict(self.headers), body)
                outer.replies.append(reply.status)
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def do_GET(self) -> None:  # noqa: N802
                self._do("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._do("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/channels/wechat/callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_harness(tmp_path: Path) -> Harness:
    sandbox = WeChatSandbox(publish_delay=0.1)
    sandbox.start()
    cover = image_asset(tmp_path, "default-cover.jpg", size=(900, 500), color=(163, 31, 36))
    channel = make_channel(sandbox, tmp_path, default_cover=str(cover.path), poll_intervals=[0.1, 0.2])

    def inject(kind: str) -> None:
        if kind == "transient":
            sandbox.inject("busy")
        elif kind == "permanent":
            sandbox.inject("errcode", errcode=48001)
        elif kind == "ambiguous":  # the draft is made, its answer lost (a lost submit: test_wechat.py)
            sandbox.inject("lost_answer", path="/cgi-bin/draft/add")
        else:
            raise ValueError(f"the WeChat harness does not inject {kind!r} faults")

    def remote_text(remote_id: str) -> str:
        for a in sandbox.ledger()["articles"]:
            if a["article_id"] == remote_id:
                return a["content"]
        raise KeyError(remote_id)

    def close() -> None:
        channel.close()
        sandbox.stop()

    return Harness(
        channel=channel,
        live_count=lambda: len(sandbox.live_articles()),
        inject=inject,
        close=close,
        remote_text=remote_text,
    )


class FileKV:
    """A KeyValueStore in a JSON file, shared by processes one at a time (the killed-worker test)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _load(self) -> dict[str, Any]:
        import json

        try:
            return json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def get(self, key: str) -> str | None:
        from datetime import UTC, datetime

        hit = self._load().get(key)
        if hit is None or (hit[1] is not None and datetime.fromisoformat(hit[1]) <= datetime.now(UTC)):
            return None
        return hit[0]

    def set(self, key: str, value: str, *, expires_at=None) -> None:
        import json

        data = self._load()
        data[key] = [value, expires_at.isoformat() if expires_at else None]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.path)

    def delete(self, key: str) -> None:
        import json

        data = self._load()
        if data.pop(key, None) is not None:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data))
            tmp.replace(self.path)
