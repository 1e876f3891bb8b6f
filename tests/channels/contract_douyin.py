"""The Douyin channel against the Douyin sandbox, for the contract suite (its posts need a picture)."""

from __future__ import annotations

import hashlib
import io
import os

from channels.douyin import DouyinChannel
from channels.sandbox.douyin import DouyinSandbox
from publisher.channel import Asset
from publisher.testing import make_env
from publisher.testing import make_post as base_make_post
from tests.channels.harness import Harness

TOKEN, OPEN_ID = "sandbox-douyin-token", "sandbox-open-id"
TOKEN_ENV, OPEN_ID_ENV = "PUBLISHER_TEST_DOUYIN_TOKEN", "PUBLISHER_TEST_DOUYIN_OPEN_ID"


def image_asset(tmp_path, role: str = "cover", color=(200, 30, 30), fmt: str = "PNG") -> Asset:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buf, fmt)
    data = buf.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    ext = "png" if fmt == "PNG" else "jpg"
    path = tmp_path / f"{sha}.{ext}"
    path.write_bytes(data)
    return Asset(
        sha256=sha,
        path=path,
        filename=f"封面.{ext}",
        content_type=f"image/{'png' if ext == 'png' else 'jpeg'}",
        role=role,
        width=64,
        height=48,
    )


def make_post(tmp_path, item_id: int = 1, **overrides):
    overrides.setdefault("assets", (image_asset(tmp_path),))
    return base_make_post(item_id, **overrides)


def make_channel(tmp_path, base_url: str, **config) -> DouyinChannel:
    os.environ[TOKEN_ENV], os.environ[OPEN_ID_ENV] = TOKEN, OPEN_ID
    cfg = DouyinChannel.Config(
        api_base=base_url,
        access_token_env=TOKEN_ENV,
        open_id_env=OPEN_ID_ENV,
        note_url_template=base_url + "/note/{item_id}",
        **config,
    )
    return DouyinChannel("douyin", cfg, make_env(tmp_path))


def make_harness(tmp_path) -> Harness:
    sandbox = DouyinSandbox(access_token=TOKEN, open_id=OPEN_ID)
    channel = make_channel(tmp_path, sandbox.start())

    def close() -> None:
        channel.close()
        sandbox.stop()

    return Harness(channel=channel, live_count=sandbox.live_count, inject=sandbox.fail_next, close=close)
