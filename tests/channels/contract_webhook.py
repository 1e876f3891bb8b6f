"""The webhook channel in the contract suite: a configured channel posting to a local sink."""

from __future__ import annotations

import os

from channels.sandbox.sink import Sink
from channels.webhook import WebhookChannel, WebhookConfig
from publisher.testing import make_env
from tests.channels.harness import Harness

SECRET_ENV = "PUBLISHER_CONTRACT_WEBHOOK_SECRET"
SECRET = "contract-webhook-secret"


def make_harness(tmp_path) -> Harness:
    os.environ[SECRET_ENV] = SECRET  # always this value, so parallel harnesses agree
    sink = Sink(secret=SECRET)
    sink.start()
    channel = WebhookChannel(
        "webhook", WebhookConfig(url=sink.hook_url, secret_env=SECRET_ENV, timeout=5), make_env(tmp_path)
    )

    def inject(kind: str) -> None:
        sink.fail_next({"transient": "503", "permanent": "400"}[kind])

    def remote_text(remote_id: str) -> str:
        item = sink.item(remote_id)
        if item is None or not item["live"]:
            return ""
        payload = item["payload"]
        return f"{payload.get('title', '')}\n{payload.get('body_markdown', '')}"

    def close() -> None:
        channel.close()
        sink.stop()

    return Harness(channel=channel, live_count=sink.live_count, inject=inject, close=close, remote_text=remote_text)
