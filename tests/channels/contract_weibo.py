"""The Weibo channel against the Weibo sandbox, for the contract suite."""

from __future__ import annotations

import os

from channels.sandbox.weibo import WeiboSandbox
from channels.weibo import WeiboChannel
from publisher.testing import make_env
from tests.channels.harness import Harness

TOKEN = "sandbox-weibo-token"
TOKEN_ENV = "PUBLISHER_TEST_WEIBO_TOKEN"


def make_channel(tmp_path, base_url: str, **config) -> WeiboChannel:
    os.environ[TOKEN_ENV] = TOKEN
    config.setdefault("safe_domain", "127.0.0.1")
    cfg = WeiboChannel.Config(api_base=base_url, web_base=base_url, access_token_env=TOKEN_ENV, **config)
    return WeiboChannel("weibo", cfg, make_env(tmp_path))


def make_harness(tmp_path) -> Harness:
    sandbox = WeiboSandbox(access_token=TOKEN, safe_domain="127.0.0.1")
    channel = make_channel(tmp_path, sandbox.start())

    def close() -> None:
        channel.close()
        sandbox.stop()

    return Harness(channel=channel, live_count=sandbox.live_count, inject=sandbox.fail_next, close=close)
