"""Shared pieces of the campus sign-in tests: the sandboxes, a live web server, and the redirect walk."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from channels.sandbox.campus import DEMO_PASSWORD

#: the mapping a typical campus would write (docs/auth.md)
MAPPING = {
    "display_name": "cn",
    "department": "ou",
    "roles": [
        {"attribute": "memberOf", "value": "xxgk-heads", "role": "department_head"},
        {"attribute": "memberOf", "value": "xxgk-editors", "role": "editor"},
        {"attribute": "memberOf", "value": "xxgk-secrecy", "role": "confidentiality_reviewer"},
    ],
    "default_role": "viewer",
}


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def live_server(app: Any, sock: socket.socket) -> Iterator[str]:
    """The web app under uvicorn on ``sock`` (so the CAS server's single logout can reach it)."""
    import uvicorn

    from publisher.web import create_app

    srv = uvicorn.Server(uvicorn.Config(create_app(app), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert srv.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        sock.close()


def campus_form(url: str, hidden: dict[str, str], uid: str, password: str = DEMO_PASSWORD) -> requests.Response:
    """Post a sandbox's log-in form as a browser would; the answer is the redirect back to us."""
    return requests.post(url, data={**hidden, "username": uid, "password": password}, allow_redirects=False, timeout=10)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def path_of(url: str) -> str:
    s = urlsplit(url)
    return s.path + ("?" + s.query if s.query else "")
