"""The e-mail channel against a real SMTP server on loopback (STARTTLS + AUTH), for the contract suite."""

from __future__ import annotations

import os

from channels.email import EmailChannel
from channels.sandbox.smtp import SmtpSandbox
from publisher.testing import make_env
from tests.channels.harness import Harness

USER, PASSWORD = "publisher", "sandbox-smtp-password"
PASSWORD_ENV = "PUBLISHER_TEST_SMTP_PASSWORD"


def make_channel(tmp_path, sandbox: SmtpSandbox, **config) -> EmailChannel:
    os.environ[PASSWORD_ENV] = PASSWORD
    config.setdefault("lists", {"subscribers": ["a@example.edu.cn", "b@example.edu.cn"]})
    cfg = EmailChannel.Config(
        host=sandbox.host,
        port=sandbox.port,
        security=sandbox.security,
        username=USER if sandbox.users else None,
        password_env=PASSWORD_ENV,
        sender="xxgk@example.edu.cn",
        sender_name="信息公开办公室",
        ca_file=str(sandbox.cert_path) if sandbox.cert_path else None,
        timeout=5,
        **config,
    )
    return EmailChannel("email", cfg, make_env(tmp_path))


def make_harness(tmp_path) -> Harness:
    sandbox = SmtpSandbox(users={USER: PASSWORD}, security="starttls")
    sandbox.start()
    channel = make_channel(tmp_path, sandbox)
    return Harness(channel=channel, live_count=sandbox.live_count, inject=sandbox.fail_next, close=sandbox.stop)
