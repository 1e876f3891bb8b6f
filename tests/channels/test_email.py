"""E-mail specifics against a real SMTP server on loopback: TLS, AUTH, the MIME structure, errors."""

from __future__ import annotations

import socket

import pytest

from channels.sandbox.smtp import SmtpSandbox
from publisher.channel import AmbiguousOutcome, PermanentChannelError, Published, TransientChannelError
from publisher.errors import ConfigError
from publisher.testing import make_ctx, make_post
from tests.channels.contract_douyin import image_asset
from tests.channels.contract_email import PASSWORD, PASSWORD_ENV, USER, make_channel


@pytest.fixture
def smtp():
    sandbox = SmtpSandbox(users={USER: PASSWORD}, security="starttls")
    sandbox.start()
    yield sandbox
    sandbox.stop()


def test_starttls_auth_and_a_multipart_message_with_inline_images(tmp_path, smtp):
    ch = make_channel(tmp_path, smtp)
    img = image_asset(tmp_path, role="image")
    post = make_post(
        3,
        body_html=f'<p>见下图。</p><p><img src="asset://{img.sha256}" alt="校门"></p>',
        body_markdown=f"见下图。\n\n![校门](asset://{img.sha256})\n",
        assets=(img,),
    )
    out = ch.publish(post, make_ctx(42))
    assert out == Published(url=None, remote_id="<publisher.delivery-42@example.edu.cn>")
    (got,) = smtp.messages
    assert got["rcpt_tos"] == ["a@example.edu.cn", "b@example.edu.cn"]
    msg = got["message"]
    assert msg["Message-ID"] == out.remote_id
    assert msg["To"] == "xxgk@example.edu.cn"  # subscribers are envelope-only: none sees another
    assert msg["Subject"] == post.title
    assert msg.get_content_type() == "multipart/alternative"
    plain, related = msg.get_payload()
    assert plain.get_content_type() == "text/plain"
    assert "见下图。" in plain.get_content() and "[图片：校门]" in plain.get_content()
    assert post.site_url in plain.get_content()
    assert related.get_content_type() == "multipart/related"
    html, image = related.get_payload()
    cid = image["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in html.get_content() and "asset://" not in html.get_content()
    assert image.get_content_type() == "image/png"
    assert image.get_payload(decode=True) == img.path.read_bytes()


def test_attachments_are_attached(tmp_path, smtp):
    ch = make_channel(tmp_path, smtp)
    pdf = tmp_path / "f.pdf"
    pdf.write_bytes(b"%PDF-1.4 fake")
    from publisher.channel import Asset

    att = Asset(sha256="b" * 64, path=pdf, filename="报名表.pdf", content_type="application/pdf", role="attachment")
    ch.publish(make_post(1, assets=(att,)), make_ctx(1))
    msg = smtp.messages[0]["message"]
    assert msg.get_content_type() == "multipart/mixed"
    (found,) = list(msg.iter_attachments())
    assert found.get_filename() == "报名表.pdf"


def test_implicit_tls(tmp_path):
    sandbox = SmtpSandbox(users={USER: PASSWORD}, security="ssl")
    sandbox.start()
    try:
        ch = make_channel(tmp_path, sandbox)
        assert ch.check_health().ok
        ch.publish(make_post(1), make_ctx(1))
        assert sandbox.live_count() == 1
    finally:
        sandbox.stop()


def test_wrong_password_is_permanent(tmp_path, smtp, monkeypatch):
    from channels.email import EmailChannel

    ch = make_channel(tmp_path, smtp)
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    ch = EmailChannel("email", ch.config, ch.env)
    with pytest.raises(PermanentChannelError) as info:
        ch.publish(make_post(1), make_ctx(1))
    assert info.value.code == 535 and "not-the-password" not in str(info.value)
    health = ch.check_health()
    assert not health.ok and PASSWORD_ENV in health.detail
    assert smtp.live_count() == 0


def test_5xx_is_permanent_with_the_server_reply(tmp_path, smtp):
    ch = make_channel(tmp_path, smtp)
    smtp.fail_next("permanent")
    with pytest.raises(PermanentChannelError, match="554") as info:
        ch.publish(make_post(1), make_ctx(1))
    assert info.value.code == 554


def test_untrusted_certificate_is_permanent(tmp_path, smtp):
    ch = make_channel(tmp_path, smtp)
    ch.config = ch.config.model_copy(update={"ca_file": None})
    with pytest.raises(PermanentChannelError, match="ca_file"):
        ch.publish(make_post(1), make_ctx(1))


def test_no_server_is_transient(tmp_path, smtp):
    ch = make_channel(tmp_path, smtp)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    ch.config = ch.config.model_copy(update={"port": free})
    with pytest.raises(TransientChannelError):
        ch.publish(make_post(1), make_ctx(1))


def test_assume_sent_after_an_ambiguous_failure(tmp_path, smtp):
    ch = make_channel(tmp_path, smtp, on_ambiguous="assume_sent")
    smtp.fail_next("ambiguous")
    ctx = make_ctx(5)
    with pytest.raises(AmbiguousOutcome):
        ch.publish(make_post(1), ctx)
    assert ch.publish(make_post(1), ctx).remote_id == "<publisher.delivery-5@example.edu.cn>"
    assert [e["action"] for e in smtp.ledger] == ["deliver"]  # not even offered twice


def test_resend_after_an_ambiguous_failure_uses_the_same_message_id(tmp_path, smtp):
    ch = make_channel(tmp_path, smtp)
    smtp.fail_next("ambiguous")
    ctx = make_ctx(6)
    with pytest.raises(AmbiguousOutcome):
        ch.publish(make_post(1), ctx)
    ch.publish(make_post(1), ctx)
    assert [e["action"] for e in smtp.ledger] == ["deliver", "duplicate"]
    assert smtp.live_count() == 1


def test_config_checks_the_lists():
    from channels.email import EmailChannel
    from publisher.channel import validate_channel_config

    base = {"host": "smtp.example.edu.cn", "sender": "x@example.edu.cn"}
    with pytest.raises(ConfigError, match="to_list"):
        validate_channel_config(EmailChannel, "mail", {**base, "lists": {"staff": ["a@b.c"]}})
    cfg = validate_channel_config(EmailChannel, "mail", {**base, "lists": {"staff": ["a@b.c"]}, "to_list": "staff"})
    assert cfg.port == 587 and cfg.security == "starttls"


def test_validate_refuses_oversized_messages(tmp_path, smtp):
    ch = make_channel(tmp_path, smtp, max_message_bytes=100)
    img = image_asset(tmp_path, role="image")
    assert ch.validate(make_post(1, assets=(img,)))
    assert ch.validate(make_post(1)) == []
