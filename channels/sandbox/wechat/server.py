"""The HTTP face of the WeChat sandbox: one request handler over :meth:`WeChatSandbox.handle`."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.sandbox.wechat.state import DROP


class Handler(BaseHTTPRequestHandler):
    sandbox: Any  # the WeChatSandbox served, set on a subclass per server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            status, payload, ctype = self.sandbox.handle(method, parts.path, query, self.headers, body)
        except Exception as exc:  # an emulator bug must show as a 500, not a hung connection
            status, payload, ctype = 500, f"sandbox error: {exc!r}".encode(), "text/plain"
        if (status, payload, ctype) == DROP:
            self.close_connection = True  # no status line at all: the client sees the connection end
            return
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout fault): nothing to answer

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        self._serve("POST")
