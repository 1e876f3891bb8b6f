"""E-mail to subscriber lists over SMTP: one HTML + plain-text message per item, images inline.

The message is ``multipart/alternative`` (plain text, then HTML); the HTML part is
``multipart/related`` with each body image attached under a Content-ID and referenced as
``cid:...``, so no image is fetched from the web when the message is opened. Attachments of the
item are attached. Subscribers are sent as envelope recipients only (``To`` is the sender), so no
subscriber sees another's address.

Never twice for one delivery
    The Message-ID is derived from the delivery id (``<publisher.delivery-<id>@<domain>>``).
    ``data_sent`` is saved before the message is sent and ``handed_over`` as soon as the server
    answers 250, before anything else. A later attempt that finds ``handed_over`` does nothing. One
    that finds only ``data_sent`` — the connection broke after the message went out but before the
    server's answer, which is reported as AmbiguousOutcome — sends again with the *same* Message-ID
    (``on_ambiguous = "resend"``, the default): list servers and mail clients drop a repeated
    Message-ID. Set ``on_ambiguous = "assume_sent"`` to count such a message as delivered instead.

Errors: SMTP 4xx replies and connection failures are transient, 5xx replies permanent, a failure
after the message data was sent but before the reply ambiguous.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from html import escape
from typing import Literal

from pydantic import Field, model_validator

from channels._smtp import connect_smtp
from publisher.channel import (
    AmbiguousOutcome,
    Asset,
    Channel,
    ChannelConfig,
    ChannelEnv,
    DeliveryContext,
    HealthReport,
    PermanentChannelError,
    Post,
    Published,
    TransientChannelError,
    env_secret,
)
from publisher.errors import ConfigError

_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\(asset://([0-9a-f]{64})\)")


class EmailConfig(ChannelConfig):
    host: str
    port: int = 587
    #: "starttls" (port 587), "ssl" (implicit TLS, port 465) or "none" (a trusted relay only)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = "PUBLISHER_SMTP_PASSWORD"
    #: the From address (also the envelope sender)
    sender: str
    sender_name: str = ""
    #: list name -> addresses
    lists: dict[str, list[str]] = Field(min_length=1)
    #: the list items are sent to
    to_list: str = "subscribers"
    reply_to: str | None = None
    #: shown in List-Unsubscribe (mail clients offer an unsubscribe button)
    unsubscribe_url: str | None = None
    #: the domain of the Message-ID; default: the sender's domain
    message_id_domain: str | None = None
    on_ambiguous: Literal["resend", "assume_sent"] = "resend"
    #: a CA bundle to trust (a server with a private certificate); None = the system's
    ca_file: str | None = None
    max_message_bytes: int = 20 * 1024 * 1024
    timeout: float = 30.0

    @model_validator(mode="after")
    def _list_known(self) -> EmailConfig:
        if self.to_list not in self.lists:
            raise ValueError(f"to_list {self.to_list!r} is not one of the lists {sorted(self.lists)}")
        if not self.lists[self.to_list]:
            raise ValueError(f"list {self.to_list!r} has no addresses")
        if self.username and self.security == "none":
            raise ValueError("a login without TLS would send the password in clear; use starttls or ssl")
        return self


class EmailChannel(Channel):
    type_name = "email"
    label = "E-mail (SMTP)"
    Config = EmailConfig
    default_max_concurrency = 1

    config: EmailConfig

    def __init__(self, name: str, config: EmailConfig, env: ChannelEnv) -> None:
        super().__init__(name, config, env)
        self._password = None
        if config.username:
            if not config.password_env:
                raise ConfigError(f"channel {name}: username is set, so name the password's variable (password_env)")
            self._password = env_secret(config.password_env, what=f"channel {name}: the SMTP password")

    # -- the message ------------------------------------------------------------------------------------
    def message_id(self, ctx: DeliveryContext) -> str:
        domain = self.config.message_id_domain or self.config.sender.rpartition("@")[2] or "publisher.invalid"
        return f"<publisher.delivery-{ctx.delivery_id}@{domain}>"

    @staticmethod
    def content_id(asset: Asset) -> str:
        return f"img-{asset.sha256[:20]}@publisher"

    def build_message(self, post: Post, ctx: DeliveryContext) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = post.title
        msg["From"] = formataddr((self.config.sender_name, self.config.sender))
        msg["To"] = self.config.sender
        msg["Date"] = format_datetime(self.env.clock())
        msg["Message-ID"] = self.message_id(ctx)
        if self.config.reply_to:
            msg["Reply-To"] = self.config.reply_to
        if self.config.unsubscribe_url:
            msg["List-Unsubscribe"] = f"<{self.config.unsubscribe_url}>"
        msg.set_content(self._plain_text(post))
        msg.add_alternative(self._html(post), subtype="html")
        html_part = msg.get_payload()[1]
        for asset in post.referenced_assets():
            maintype, _, subtype = asset.content_type.partition("/")
            html_part.add_related(
                asset.path.read_bytes(),
                maintype,
                subtype,
                cid=f"<{self.content_id(asset)}>",
                filename=asset.filename,
                disposition="inline",
            )
        for asset in post.attachments:
            maintype, _, subtype = asset.content_type.partition("/")
            msg.add_attachment(asset.path.read_bytes(), maintype, subtype, filename=asset.filename)
        return msg

    def _plain_text(self, post: Post) -> str:
        body = _MD_IMAGE.sub(lambda m: f"[图片{('：' + m.group(1)) if m.group(1) else ''}]", post.body_markdown)
        lines = [post.title, "", body.strip()]
        if post.site_url:
            lines += ["", f"原文：{post.site_url}"]
        lines += ["", f"{post.department}  {post.publish_at.astimezone(self.env.timezone):%Y-%m-%d}"]
        return "\n".join(lines) + "\n"

    def _html(self, post: Post) -> str:
        body = post.html_with_assets(lambda a: f"cid:{self.content_id(a)}")
        link = f'<p><a href="{escape(post.site_url)}">在网站上阅读原文</a></p>' if post.site_url else ""
        return (
            f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{escape(post.title)}</title></head>'
            f"<body><h1>{escape(post.title)}</h1>{body}{link}"
            f"<p>{escape(post.department)} "
            f"{post.publish_at.astimezone(self.env.timezone):%Y-%m-%d}</p></body></html>"
        )

    # -- review time --------------------------------------------------------------------------------------
    def validate(self, post: Post) -> list[str]:
        size = sum(a.path.stat().st_size for a in post.assets if a.path.exists())
        if size > self.config.max_message_bytes * 3 // 4:  # base64 grows the data by a third
            return [
                f"the images and attachments add up to {size / 2**20:.1f} MB; with encoding that exceeds the "
                f"mail limit of {self.config.max_message_bytes / 2**20:.0f} MB — link large files instead"
            ]
        return []

    # -- delivery -------------------------------------------------------------------------------------------
    def _connect(self) -> smtplib.SMTP:
        return connect_smtp(self.config, self._password)

    def publish(self, post: Post, ctx: DeliveryContext) -> Published:
        mid = self.message_id(ctx)
        if ctx.state.get("handed_over"):
            return Published(url=None, remote_id=mid)
        if ctx.state.get("data_sent") and self.config.on_ambiguous == "assume_sent":
            ctx.save_state(handed_over=True, assumed=True)
            return Published(url=None, remote_id=mid)
        recipients = self.config.lists[self.config.to_list]
        data = self.build_message(post, ctx).as_bytes(policy=self._policy())
        data_sent = False
        try:
            smtp = self._connect()
            try:
                code, reply = smtp.mail(self.config.sender)
                if code != 250:
                    raise smtplib.SMTPSenderRefused(code, reply, self.config.sender)
                refused = {}
                for rcpt in recipients:
                    code, reply = smtp.rcpt(rcpt)
                    if code not in (250, 251):
                        refused[rcpt] = (code, reply)
                if len(refused) == len(recipients):
                    raise smtplib.SMTPRecipientsRefused(refused)
                ctx.save_state(data_sent=True, message_id=mid)
                data_sent = True
                smtp.data(data)
                ctx.save_state(handed_over=True, recipients=len(recipients) - len(refused), refused=sorted(refused))
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    smtp.quit()  # the server has the message; a failed goodbye changes nothing
            finally:
                smtp.close()
        except smtplib.SMTPAuthenticationError as exc:
            raise _by_code(
                exc.smtp_code,
                f"the SMTP server refused the login of {self.config.username!r}: "
                f"check the password in ${self.config.password_env}",
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentChannelError(
                f"the SMTP server {self.config.host} does not offer "
                f"{self.config.security.upper()} or AUTH; check security in the settings"
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({c for c, _ in exc.recipients.values()})
            raise _by_code(
                min(codes),  # a 4xx among them: worth trying again later
                f"the SMTP server refused every recipient of list "
                f"{self.config.to_list!r} ({_reply(next(iter(exc.recipients.values())))})",
            ) from exc
        except smtplib.SMTPResponseException as exc:
            step = "the message" if data_sent else "the sender"
            raise _by_code(
                exc.smtp_code, f"the SMTP server refused {step}: {exc.smtp_code} {_text(exc.smtp_error)}"
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            raise PermanentChannelError(
                f"the SMTP server's certificate is not trusted ({exc.verify_message}); set ca_file in the settings"
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            if data_sent:
                raise AmbiguousOutcome(
                    f"the connection to the SMTP server broke after the message was sent "
                    f"({type(exc).__name__}); it may have been accepted"
                ) from exc
            raise TransientChannelError(
                f"cannot reach the SMTP server {self.config.host}:{self.config.port} ({type(exc).__name__}: {exc})"
            ) from exc
        return Published(url=None, remote_id=mid)

    def _policy(self):
        from email.policy import SMTP

        return SMTP

    def check_health(self) -> HealthReport:
        try:
            smtp = self._connect()
            try:
                code, _ = smtp.noop()
                smtp.quit()
            finally:
                smtp.close()
        except smtplib.SMTPAuthenticationError:
            return HealthReport(
                ok=False,
                detail=f"the SMTP server refused the login of {self.config.username!r}: "
                f"check the password in ${self.config.password_env}",
            )
        except (smtplib.SMTPException, OSError) as exc:
            return HealthReport(
                ok=False,
                detail=f"cannot use the SMTP server {self.config.host}:{self.config.port}: {type(exc).__name__}: {exc}",
            )
        n = len(self.config.lists[self.config.to_list])
        return HealthReport(
            ok=code == 250,
            detail=f"SMTP {self.config.host}:{self.config.port} "
            f"({self.config.security}) accepts us; list {self.config.to_list!r} has {n} addresses",
        )


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _reply(pair: tuple[int, bytes]) -> str:
    return f"{pair[0]} {_text(pair[1])}"


def _by_code(code: int, message: str) -> PermanentChannelError | TransientChannelError:
    """SMTP's own rule: 4xx means try again later, 5xx means do not."""
    if 400 <= code < 500:
        return TransientChannelError(message, code=code)
    return PermanentChannelError(message, code=code)
