"""A real SMTP server on loopback (aiosmtpd) for the e-mail channel: STARTTLS or SSL, AUTH, a ledger.

It speaks SMTP as a mail server does (RFC 5321 replies, AUTH PLAIN/LOGIN only after STARTTLS when
TLS is on), with a self-signed certificate made at start (``cert_path`` is what a client trusts).
Every accepted message is kept in :attr:`SmtpSandbox.messages`; a message whose Message-ID was
already accepted is answered 250 but not delivered again (recorded as "duplicate" in the ledger),
as a mailing-list server that de-duplicates would.

Faults (``fail_next``): ``transient`` answers 451 to MAIL FROM, ``permanent`` answers 554,
``ambiguous`` accepts the message, then drops the connection before the reply to DATA.
"""

from __future__ import annotations

import email
import email.policy
import ipaddress
import socket
import ssl
import tempfile
import threading
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from channels.sandbox._http import FaultQueue
from publisher.channel import SandboxHandle

_CERT_LOCK = threading.Lock()
_CERT: tuple[Path, Path] | None = None


def self_signed_cert() -> tuple[Path, Path]:
    """A certificate for localhost/127.0.0.1 and its key, made once per process (EC: fast)."""
    global _CERT
    with _CERT_LOCK:
        if _CERT is not None:
            return _CERT
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=7))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        folder = Path(tempfile.mkdtemp(prefix="publisher-smtp-sandbox-"))
        cert_path, key_path = folder / "cert.pem", folder / "key.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        _CERT = (cert_path, key_path)
        return _CERT


def _free_port(host: str) -> int:
    # aiosmtpd's Controller checks readiness by connecting to its port, so it needs a real number
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class _ImplicitTlsSMTP(SMTP):
    """aiosmtpd only counts STARTTLS as TLS; on an implicit-TLS port (465) the whole session is TLS."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if self._tls_protocol is None and transport.get_extra_info("ssl_object") is not None:
            self._tls_protocol = transport.get_extra_info("ssl_object")


class _Controller(Controller):
    def factory(self):
        if self.ssl_context is not None:
            return _ImplicitTlsSMTP(self.handler, **self.SMTP_kwargs)
        return super().factory()


class SmtpSandbox(FaultQueue):
    def __init__(
        self,
        *,
        users: dict[str, str] | None = None,
        security: Literal["starttls", "ssl", "none"] = "starttls",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if users and security == "none":
            raise ValueError("AUTH without TLS would send the password in clear; use starttls or ssl")
        self.host = host
        self.port = port
        self.users = dict(users or {})
        self.security = security
        self.lock = threading.Lock()
        self.ledger: list[dict[str, Any]] = []
        #: accepted messages, one per Message-ID: dicts with message_id, mail_from, rcpt_tos, message (parsed)
        self.messages: list[dict[str, Any]] = []
        self._faults: deque[str] = deque()
        self._controller: _Controller | None = None
        self.cert_path, self.key_path = self_signed_cert() if security != "none" else (None, None)

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> str:
        tls = None
        if self.security != "none":
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(self.cert_path, self.key_path)
        port = self.port or _free_port(self.host)
        kwargs: dict[str, Any] = {}
        if self.users:
            kwargs.update(authenticator=self._authenticate, auth_required=True, auth_require_tls=True)
        if self.security == "starttls":
            kwargs.update(tls_context=tls, require_starttls=True)
        self._controller = _Controller(
            _Handler(self),
            hostname=self.host,
            port=port,
            ssl_context=tls if self.security == "ssl" else None,
            server_hostname="localhost",
            **kwargs,
        )
        self._controller.start()
        self.port = port
        return self.base_url

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def base_url(self) -> str:
        return f"{'smtps' if self.security == 'ssl' else 'smtp'}://{self.host}:{self.port}"

    def live_count(self) -> int:
        with self.lock:
            return len(self.messages)

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            user, password = auth_data.login.decode(), auth_data.password.decode()
            if self.users.get(user) == password:
                return AuthResult(success=True, auth_data=user)
        return AuthResult(success=False, handled=False)

    def accept(self, envelope, *, dropped: bool) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        mid = (msg.get("Message-ID") or "").strip()
        with self.lock:
            if mid and any(m["message_id"] == mid for m in self.messages):
                self.ledger.append({"action": "duplicate", "message_id": mid})
                return "250 2.0.0 OK: duplicate Message-ID, not delivered again"
            self.messages.append(
                {
                    "message_id": mid,
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": list(envelope.rcpt_tos),
                    "message": msg,
                }
            )
            self.ledger.append(
                {
                    "action": "deliver",
                    "message_id": mid,
                    "rcpt_tos": list(envelope.rcpt_tos),
                    "dropped": dropped,
                }
            )
        return "250 2.0.0 OK: queued"


class _Handler:
    def __init__(self, sandbox: SmtpSandbox) -> None:
        self.sandbox = sandbox

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        fault = self.sandbox.take_fault()
        if fault == "transient":
            return "451 4.3.0 Mail server temporarily rejected message; try again later"
        if fault == "permanent":
            return "554 5.7.1 Message rejected: sender not allowed to relay"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        envelope.sandbox_drop = fault == "ambiguous"
        return "250 2.1.0 OK"

    async def handle_DATA(self, server, session, envelope):
        drop = getattr(envelope, "sandbox_drop", False)
        reply = self.sandbox.accept(envelope, dropped=drop)
        if drop:
            server.transport.abort()  # the message is in, the client never hears so
        return reply


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="SMTP server sandbox (aiosmtpd)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--security", choices=["starttls", "ssl", "none"], default="starttls")
    parser.add_argument("--user", default="publisher")
    parser.add_argument("--password", default="sandbox-smtp-password")
    args = parser.parse_args()
    sandbox = SmtpSandbox(
        users={args.user: args.password} if args.security != "none" else None,
        security=args.security,
        host=args.host,
        port=args.port,
    )
    print(f"SmtpSandbox listening on {sandbox.start()} (certificate: {sandbox.cert_path})", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()


def demo_sandbox(workdir: Path) -> SandboxHandle:
    """The ``publisher.sandboxes`` entry point: a running SMTP server (STARTTLS + AUTH), its email table."""
    import logging

    # aiosmtpd logs a deprecation of its own internals on every AUTH; not the user's concern
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    sandbox = SmtpSandbox(users={"xxgk": "demo-password"}, security="starttls")
    sandbox.start()
    return SandboxHandle(
        config={
            "type": "email",
            "host": sandbox.host,
            "port": sandbox.port,
            "security": "starttls",
            "username": "xxgk",
            "password_env": "PUBLISHER_DEMO_SMTP_PASSWORD",
            "sender": "xxgk@example.edu.cn",
            "sender_name": "信息公开办公室",
            "ca_file": str(sandbox.cert_path),
            "lists": {"subscribers": ["teachers@example.edu.cn", "students@example.edu.cn"]},
        },
        environ={"PUBLISHER_DEMO_SMTP_PASSWORD": "demo-password"},
        stop=sandbox.stop,
        describe=f"an SMTP server on {sandbox.host}:{sandbox.port} (STARTTLS, AUTH)",
    )
