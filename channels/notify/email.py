"""E-mail over SMTP: one plain-text message per notification (or digest) to the person's address.

The Message-ID is made from the row's dedupe key, so a message sent again after a sender was killed
between the server's acceptance and the record carries the same Message-ID: a server that
de-duplicates (the SMTP sandbox does, as mailing-list servers do) keeps one; others may deliver a
second copy — at most once per kill (docs/notify.md).

Settings: ``[notify.transports.email]`` with ``host``, ``port``, ``security`` ("starttls", "ssl",
"none"), ``sender``, ``sender_name``, ``username`` and ``password_env`` (the variable holding the
password), ``ca_file`` (a private CA, e.g. the sandbox's certificate).
"""

from __future__ import annotations

import contextlib
import hashlib
import smtplib
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import model_validator

from channels._smtp import connect_smtp
from publisher.notifier import (
    Message,
    Notifier,
    NotifierConfig,
    NotifyPermanent,
    NotifyTransient,
    secret_from_env,
)


class EmailNotifyConfig(NotifierConfig):
    host: str
    port: int = 587
    security: Literal["starttls", "ssl", "none"] = "starttls"
    sender: str
    sender_name: str = "信息公开办公室"
    username: str | None = None
    password_env: str | None = None
    ca_file: Path | None = None
    timeout: float = 30.0

    @model_validator(mode="after")
    def _login_needs_tls(self) -> EmailNotifyConfig:
        if self.username and self.security == "none":
            raise ValueError("a login without TLS would send the password in clear; use starttls or ssl")
        if self.username and not self.password_env:
            raise ValueError("username needs password_env (the variable holding the password)")
        return self


class EmailNotifier(Notifier):
    name: ClassVar[str] = "email"
    Config: ClassVar[type[NotifierConfig]] = EmailNotifyConfig
    config: EmailNotifyConfig

    def __init__(self, config: EmailNotifyConfig) -> None:
        super().__init__(config)
        self._password = secret_from_env(config.password_env, self.name) if config.password_env else None

    def message_id(self, message: Message) -> str:
        digest = hashlib.sha256(message.key.encode("utf-8")).hexdigest()[:32]
        domain = self.config.sender.rpartition("@")[2] or "localhost"
        return f"<notify-{digest}@{domain}>"

    def build(self, message: Message) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = message.subject
        msg["From"] = Address(self.config.sender_name, addr_spec=self.config.sender)
        msg["To"] = message.address
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = self.message_id(message)
        msg.set_content(message.text)
        return msg

    def _connect(self) -> smtplib.SMTP:
        return connect_smtp(self.config, self._password)

    def send(self, message: Message) -> None:
        if "@" not in message.address:
            raise NotifyPermanent(f"e-mail: {message.address!r} is not an e-mail address (publisher notify set)")
        data = self.build(message)
        where = f"{self.config.host}:{self.config.port}"
        try:
            smtp = self._connect()
            try:
                smtp.send_message(data)
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    smtp.quit()
            finally:
                smtp.close()
        except smtplib.SMTPAuthenticationError as exc:
            raise NotifyPermanent(
                f"e-mail: the SMTP server {where} refused the login of {self.config.username!r} "
                f"({exc.smtp_code}); check ${self.config.password_env}"
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            code = min(c for c, _ in exc.recipients.values())
            cls = NotifyTransient if 400 <= code < 500 else NotifyPermanent
            raise cls(f"e-mail: the SMTP server {where} refused {message.address} ({code})") from exc
        except smtplib.SMTPResponseException as exc:
            cls = NotifyTransient if 400 <= exc.smtp_code < 500 else NotifyPermanent
            raise cls(f"e-mail: the SMTP server {where} answered {exc.smtp_code}") from exc
        except ssl.SSLCertVerificationError as exc:
            raise NotifyPermanent(f"e-mail: the certificate of {where} is not trusted ({exc.verify_message})") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise NotifyTransient(f"e-mail: cannot reach the SMTP server {where} ({type(exc).__name__})") from exc
