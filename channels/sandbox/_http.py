"""The common HTTP plumbing of the sandboxes: a threaded loopback server, faults and a ledger.

A sandbox subclasses :class:`HttpSandbox` and implements :meth:`HttpSandbox.handle`, which takes a
:class:`Request` and answers a :class:`Reply`, :class:`Late` (the reply, sent after a delay outside
the sandbox's lock: a service that did the work but answers after the client's timeout), or
:data:`DROP` to close the connection without an answer (the work done, the response lost).

Faults are queued (:meth:`FaultQueue.fail_next`) or, for chaos runs, drawn at random: with
:meth:`FaultQueue.set_fault_rate` a share of the calls that may fault gets a kind from a mix.

A sandbox run as its own process (:func:`serve_main`) is steered over HTTP: ``POST
/__sandbox__/faults`` ``{"kind", "times"}``, ``POST /__sandbox__/config`` ``{"fault_rate",
"fault_mix", "seed"}``, ``GET /__sandbox__/ledger`` (:meth:`HttpSandbox.snapshot`).
"""

from __future__ import annotations

import argparse
import email.parser
import email.policy
import json
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        if not self.body:
            return {}
        return json.loads(self.body.decode("utf-8"))

    def form(self) -> dict[str, str]:
        """URL-encoded or multipart form fields (text fields only; files via :meth:`files`)."""
        ctype = self.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            return {k: v[1].decode("utf-8") for k, v in self._multipart().items() if v[0] is None}
        parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        return {k: v[0] for k, v in parsed.items()}

    def files(self) -> dict[str, tuple[str, bytes]]:
        """Multipart file fields: name -> (filename, content)."""
        return {k: (v[0], v[1]) for k, v in self._multipart().items() if v[0] is not None}

    def _multipart(self) -> dict[str, tuple[str | None, bytes]]:
        head = f"Content-Type: {self.headers.get('content-type', '')}\r\nMIME-Version: 1.0\r\n\r\n"
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head.encode() + self.body)
        out: dict[str, tuple[str | None, bytes]] = {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name:
                out[str(name)] = (part.get_filename(), part.get_payload(decode=True) or b"")
        return out


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON, bytes/str -> as is
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None


#: answer nothing and close the connection (the work may have been done)
DROP = object()


@dataclass
class Late:
    """Answer ``reply`` only after ``seconds`` (waited outside the sandbox's lock)."""

    reply: Any
    seconds: float


class _Handler(BaseHTTPRequestHandler):
    server_version = "PublisherSandbox/1.0"

    def _serve(self) -> None:
        sandbox: HttpSandbox = self.server.sandbox  # type: ignore[attr-defined]
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = Request(
            method=self.command,
            path=split.path,
            query={k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()},
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            reply = sandbox._dispatch(req)
        except Exception as exc:  # a sandbox bug must show as a 500, not a hung client
            reply = Reply(500, {"error": f"sandbox error: {type(exc).__name__}: {exc}"})
        if reply is DROP:
            self.close_connection = True
            return
        assert isinstance(reply, Reply)
        if isinstance(reply.body, dict | list):
            data = json.dumps(reply.body, ensure_ascii=False).encode("utf-8")
            ctype = reply.content_type or "application/json; charset=UTF-8"
        elif isinstance(reply.body, str):
            data = reply.body.encode("utf-8")
            ctype = reply.content_type or "text/html; charset=UTF-8"
        else:
            data = reply.body or b""
            ctype = reply.content_type or "application/octet-stream"
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up waiting (a timeout fault): nobody to answer

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


class QuietServer(ThreadingHTTPServer):
    """A threaded server that does not print a traceback when a client drops its connection.

    Clients time out and worker processes get killed mid-request in chaos runs: that is expected.
    """

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class FaultQueue:
    """Queued faults and a ledger, shared by every sandbox; needs ``self.lock``, ``self._faults``,
    ``self.ledger``."""

    #: faults a test may queue with :meth:`fail_next`; subclasses extend
    fault_kinds: tuple[str, ...] = ("transient", "permanent", "ambiguous")
    #: with nothing queued, the share of the calls that may fault which draw a kind from ``fault_mix``
    fault_rate: float = 0.0
    fault_mix: tuple[str, ...] = ()
    lock: Any
    _faults: deque[str]
    ledger: list[dict[str, Any]]

    # -- faults and ledger ----------------------------------------------------------------------------
    def fail_next(self, kind: str, times: int = 1) -> None:
        """Make the next ``times`` mutating calls fail with ``kind`` (see :attr:`fault_kinds`)."""
        if kind not in self.fault_kinds:
            raise ValueError(f"{type(self).__name__} knows faults {self.fault_kinds}, not {kind!r}")
        with self.lock:
            self._faults.extend([kind] * times)

    def set_fault_rate(self, rate: float, mix: tuple[str, ...] | list[str] = (), seed: int | None = None) -> None:
        """Serve a fault at ``rate`` (0-1) of the calls that may fault, each of a kind drawn from ``mix``."""
        if not 0 <= rate <= 1:
            raise ValueError(f"fault_rate must be between 0 and 1, not {rate!r}")
        mix = tuple(mix) or tuple(k for k in self.fault_kinds if k != "permanent")
        unknown = [k for k in mix if k not in self.fault_kinds]
        if unknown:
            raise ValueError(f"{type(self).__name__} knows faults {self.fault_kinds}, not {unknown}")
        with self.lock:
            self.fault_rate, self.fault_mix = float(rate), mix
            self._rng = random.Random(seed)

    def take_fault(self) -> str | None:
        with self.lock:
            stats = self.__dict__.setdefault("_fault_stats", {"checked": 0, "served": {}})
            stats["checked"] += 1
            if self._faults:
                kind = self._faults.popleft()
            elif self.fault_rate and self._rng.random() < self.fault_rate:
                kind = self._rng.choice(self.fault_mix)
            else:
                return None
            stats["served"][kind] = stats["served"].get(kind, 0) + 1
            return kind

    def fault_stats(self) -> dict[str, Any]:
        """``{"checked": calls that could have faulted, "served": {kind: count}}``."""
        with self.lock:
            stats = self.__dict__.get("_fault_stats", {"checked": 0, "served": {}})
            return {"checked": stats["checked"], "served": dict(stats["served"])}

    def record(self, action: str, **details: Any) -> None:
        with self.lock:
            self.ledger.append({"action": action, **details})


class HttpSandbox(FaultQueue):
    """Base of the HTTP sandboxes. Thread-safe: handlers run on the server's threads."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.lock = threading.RLock()
        #: every call that changed something: dicts with at least "action"
        self.ledger: list[dict[str, Any]] = []
        self._faults: deque[str] = deque()
        self._httpd: QuietServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> str:
        self._httpd = QuietServer((self.host, self.port), _Handler)
        self._httpd.sandbox = self  # type: ignore[attr-defined]
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> HttpSandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- requests -------------------------------------------------------------------------------------
    def _dispatch(self, req: Request) -> Reply | object:
        if req.path.startswith("/__sandbox__/"):
            return self._admin(req)
        with self.lock:
            reply = self.handle(req)
        if isinstance(reply, Late):
            time.sleep(reply.seconds)  # the work is done; only the answer is late
            return reply.reply
        return reply

    def handle(self, req: Request) -> Reply | Late | object:
        raise NotImplementedError

    def snapshot(self) -> dict[str, Any]:
        """What ``GET /__sandbox__/ledger`` answers; subclasses add what they keep."""
        with self.lock:
            return {"ledger": list(self.ledger), "faults": self.fault_stats()}

    def _admin(self, req: Request) -> Reply:
        try:
            if req.path == "/__sandbox__/ledger" and req.method == "GET":
                return Reply(200, self.snapshot())
            data = req.json() if req.method == "POST" else None
            if req.path == "/__sandbox__/faults" and isinstance(data, dict):
                self.fail_next(str(data["kind"]), int(data.get("times", 1)))
                return Reply(200, {"ok": True})
            if req.path == "/__sandbox__/config" and isinstance(data, dict):
                self.set_fault_rate(float(data.get("fault_rate", 0)), data.get("fault_mix") or (), data.get("seed"))
                return Reply(200, {"ok": True})
        except (KeyError, ValueError, TypeError) as exc:
            return Reply(400, {"error": str(exc)})
        return Reply(404, {"error": f"no sandbox route {req.method} {req.path}"})


def serve_main(
    build: Callable[[argparse.Namespace], HttpSandbox],
    add_args: Callable[[argparse.ArgumentParser], None],
    description: str,
) -> None:
    """``python -m channels.sandbox.X --port N``: run a sandbox until interrupted."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 lets the OS choose")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of the calls answered with a fault")
    parser.add_argument("--fault-mix", default="", help="comma-separated fault kinds drawn at --fault-rate")
    parser.add_argument("--seed", type=int, default=None, help="seed of the fault draw")
    add_args(parser)
    args = parser.parse_args()
    sandbox = build(args)
    if args.fault_rate:
        sandbox.set_fault_rate(args.fault_rate, [k for k in args.fault_mix.split(",") if k], args.seed)
    print(f"{type(sandbox).__name__} listening on {sandbox.start()}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
