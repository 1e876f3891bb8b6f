"""The CMS channel against the WordPress sandbox, for the contract suite."""

from __future__ import annotations

import os

from channels.cms import CmsChannel
from channels.sandbox.wordpress import WordPressSandbox
from publisher.testing import make_env
from tests.channels.harness import Harness

APP_PASSWORD = "abcd efgh ijkl mnop qrst uvwx"
PASSWORD_ENV = "PUBLISHER_TEST_CMS_APP_PASSWORD"


def make_channel(tmp_path, base_url: str, **config) -> CmsChannel:
    os.environ[PASSWORD_ENV] = APP_PASSWORD
    cfg = CmsChannel.Config(
        base_url=base_url, username="editor", password_env=PASSWORD_ENV, categories={"公告公示": 1}, **config
    )
    return CmsChannel("cms", cfg, make_env(tmp_path))


def make_harness(tmp_path) -> Harness:
    sandbox = WordPressSandbox(users={"editor": APP_PASSWORD})
    channel = make_channel(tmp_path, sandbox.start())

    def close() -> None:
        channel.close()
        sandbox.stop()

    return Harness(
        channel=channel,
        live_count=sandbox.live_count,
        inject=sandbox.fail_next,
        close=close,
        remote_text=lambda rid: sandbox.posts[int(rid)]["title"] + sandbox.posts[int(rid)]["content"],
    )
